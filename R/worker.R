# Tasks in a worker process (`options(isthmus.backend = "worker")`): the core runs the task in a
# Python process of its own (python/isthmus/_worker.py) instead of inside R. A crash, a CUDA
# error or an out-of-memory kill there ends that process only: the R session and the user's
# object are untouched, and the verb stops with an R error that says what happened. Progress
# lines stream to the console as the worker prints them; an interrupt (Esc / Ctrl-C) kills it.
#
# The data cross as .h5ad files in a temporary job folder (written by the R session's own Python,
# read by the worker); the result comes back in the same shape as the in-process route's.

# The backend a task call uses: "inprocess" (default) or "worker".
.backend <- function(backend = NULL) {
  backend <- backend %||% getOption("isthmus.backend", "inprocess")
  if (!is.character(backend) || length(backend) != 1 || !backend %in% c("inprocess", "worker")) {
    stop("isthmus: backend must be \"inprocess\" or \"worker\" (options(isthmus.backend = ...)).", call. = FALSE)
  }
  backend
}

# A verb's `backend` argument, for the length of the call: every core call the verb makes (some
# make several, and a Seurat method's call to the default method reads the option as its default)
# runs there. The option is put back on exit, as withr::local_options() does.
.local_backend <- function(backend, frame = parent.frame()) {
  old <- options(isthmus.backend = .backend(backend))
  do.call(on.exit, list(substitute(options(old), list(old = old)), add = TRUE), envir = frame)
  invisible()
}

.run_in_worker <- function(task, data, kwargs, options, .names) {
  job <- tempfile("isthmus-job-")  # in R's session folder: gone with the session at the latest
  dir.create(job)
  on.exit(unlink(job, recursive = TRUE), add = TRUE)
  .py_task("worker_job", task, data, kwargs, options, .names, job)
  status <- .run_worker_process(job)
  if (!identical(status$exit, 0L) && !file.exists(file.path(job, "error.pkl"))) {
    stop("isthmus: the worker process running ", task, " ", .worker_death(status), "; your R session and ",
         "object are unchanged.", call. = FALSE)
  }
  out <- .py_core()$call("worker_result", job, argument_names = .names)$value  # raises the worker's error
  for (text in out$warnings) warning(text, call. = FALSE)
  out$value
}

# Starts `python -m isthmus._worker <job>` with the R session's Python, prints its lines as they
# come, and waits. An interrupt of R (or any error) kills the worker on the way out.
.run_worker_process <- function(job) {
  python <- reticulate::py_config()$python
  env <- c(Sys.getenv(), LD_LIBRARY_PATH = "", PYTHONUNBUFFERED = "1")
  worker <- processx::process$new(python, c("-m", "isthmus._worker", job), stdout = "|", stderr = "2>&1",
                                  env = env, cleanup = TRUE, cleanup_tree = TRUE)
  on.exit(if (worker$is_alive()) worker$kill_tree(), add = TRUE)
  while (worker$is_alive() || worker$is_incomplete_output()) {
    worker$poll_io(200)
    for (line in worker$read_output_lines()) message(line)
  }
  worker$wait()
  list(exit = worker$get_exit_status())
}

# What a worker's exit status says: a negative status is the signal that ended it (processx).
.worker_death <- function(status) {
  code <- status$exit
  if (is.null(code) || is.na(code)) return("ended without a result")
  if (code == -9L) return("was killed (signal 9; most often the system running out of memory)")
  if (code == -11L) return("crashed (segmentation fault in a native library)")
  if (code < 0L) return(paste0("was ended by signal ", -code))
  paste0("ended with exit status ", code, " and no result")
}
