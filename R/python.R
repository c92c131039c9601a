# The only file that calls reticulate. Everything else talks to Python through .py_task() (or
# .py_core()) and hands over plain data (see python/isthmus/_r.py, the one module called from here).

.isthmus <- new.env(parent = emptyenv())

.onLoad <- function(libname, pkgname) {
  # Nothing here starts Python: the core is imported on first use (.py_core()).
  .isthmus$core <- NULL
}

#' Where isthmus's own Python virtual environment lives
#'
#' @return The directory of the virtualenv that [install_isthmus()] creates.
#' @export
isthmus_venv_dir <- function() {
  getOption("isthmus.venv", file.path(tools::R_user_dir("isthmus", "data"), "venv"))
}

.venv_python <- function(venv) file.path(venv, "bin", "python")

# The discovery order: ISTHMUS_PYTHON, option(isthmus.python), then isthmus's own virtualenv.
.python_candidates <- function() {
  list(
    list(source = "environment variable ISTHMUS_PYTHON", path = Sys.getenv("ISTHMUS_PYTHON", "")),
    list(source = "option isthmus.python", path = getOption("isthmus.python", "")),
    list(source = "isthmus's virtualenv (install_isthmus())", path = .venv_python(isthmus_venv_dir()))
  )
}

.discover_python <- function() {
  for (candidate in .python_candidates()) {
    if (nzchar(candidate$path) && file.exists(candidate$path)) return(candidate)
    if (nzchar(candidate$path) && !grepl("virtualenv", candidate$source)) {
      stop("isthmus: the Python named by the ", candidate$source, " (", candidate$path,
           ") does not exist. Fix the path, or unset it to use isthmus's own environment ",
           "(install_isthmus()).", call. = FALSE)
    }
  }
  NULL
}

.fix_text <- paste(
  "Run isthmus::install_isthmus() to create isthmus's Python environment, or point",
  "ISTHMUS_PYTHON (or options(isthmus.python = ...)) at a Python that has the isthmus package;",
  "isthmus_doctor() shows what is in use."
)

# Imports isthmus._r once per session. Before Python starts we only *configure* which Python
# reticulate will start (RETICULATE_PYTHON); if Python already runs, we use it as it is.
.py_core <- function() {
  if (!is.null(.isthmus$core)) return(.isthmus$core)
  if (!reticulate::py_available(initialize = FALSE)) {
    candidate <- .discover_python()
    if (!is.null(candidate)) {
      Sys.setenv(RETICULATE_PYTHON = candidate$path)
    } else if (.can_py_require()) {
      .declare_py_requirements()
      message("isthmus: no isthmus environment was found, so reticulate builds one from the declared ",
              "requirements (py_require(); minutes the first time, cached afterwards).")
    } else {
      stop("isthmus: no Python environment for isthmus was found. ", .fix_text, call. = FALSE)
    }
    Sys.setenv(PYTHONUNBUFFERED = "1")  # training progress appears as it happens
  }
  core <- tryCatch(
    reticulate::import("isthmus._r", convert = TRUE),
    error = function(e) {
      stop("isthmus: the Python in use (", .python_in_use(), ") cannot import the isthmus ",
           "package: ", conditionMessage(e), "\n", .fix_text, call. = FALSE)
    }
  )
  .isthmus$core <- core
  core
}

# Calls the bridge function `name` of isthmus._r: the one door into the core (it also loads torch
# on its own BLAS before anything else can). The isthmus warnings it raised come back as text and
# are raised here as R warnings, so that suppressWarnings(), tryCatch() and testthat see them
# (reticulate only prints Python's warnings).
# `.names`: the verb's map from the core's argument names to its own (.r_names()), so that the
# core's one validation names what the user typed.
.py_task <- function(name, ..., .names = .r_names()) {
  out <- .py_core()$call(name, ..., argument_names = .names)
  for (text in out$warnings) warning(text, call. = FALSE)
  out$value
}

# reticulate >= 1.41 can build an environment from declared requirements (py_require(), with
# uv). isthmus uses that route only when it finds no environment of its own; options(
# isthmus.py_require = FALSE) turns it off.
.can_py_require <- function() {
  isTRUE(getOption("isthmus.py_require", TRUE)) && utils::packageVersion("reticulate") >= "1.41" &&
    !nzchar(Sys.getenv("RETICULATE_PYTHON", ""))
}

# The tested requirements (inst/python/requirements.txt) minus the test-only packages. NumPy 2 is
# allowed: the pin exists for reticulate < 1.41, which cannot load NumPy 2. The isthmus Python
# package comes from ISTHMUS_PYTHON_SOURCE (a checkout) or PyPI, as for install_isthmus().
.py_requirements <- function() {
  lines <- trimws(readLines(.requirements_file()))
  lines <- lines[nzchar(lines) & !startsWith(lines, "#")]
  name <- sub("[=<>!~ ].*$", "", lines)
  keep <- !name %in% c("rpy2", "anndata2ri", "pytest")
  lines <- lines[keep]
  name <- name[keep]
  lines[name == "numpy"] <- "numpy>=1.26"
  lines[name == "zarr"] <- "zarr>=2.18"
  source <- Sys.getenv("ISTHMUS_PYTHON_SOURCE", "")
  isthmus <- if (nzchar(source)) normalizePath(source) else paste0("isthmus==", utils::packageVersion("isthmus"))
  c("torch==2.13.0", lines, isthmus)
}

.declare_py_requirements <- function() {
  getExportedValue("reticulate", "py_require")(packages = .py_requirements(), python_version = ">=3.10,<3.13")  # reticulate >= 1.41
}

.python_in_use <- function() {
  if (!reticulate::py_available(initialize = FALSE)) return("not started")
  reticulate::py_config()$python
}

# ---- handing data over ------------------------------------------------------------------------

# An R vector as a zero-copy, read-only NumPy array on the Python side. `keep` is a closure
# whose environment holds `x`: reticulate wraps it as a Python callable that pins the R object
# for as long as the NumPy array lives.
.share_vector <- function(x) {
  if (!typeof(x) %in% c("double", "integer", "logical")) {
    stop("isthmus: internal: cannot share a vector of type ", typeof(x), call. = FALSE)
  }
  keep <- local({
    held <- x
    function() invisible(length(held))
  })
  list(
    address = .Call(C_isthmus_data_address, x),
    length = length(x),
    type = typeof(x),
    keep = keep
  )
}

# Python -> R: a vector that is either converted already or waits behind a handle, to be
# pulled in chunks into one preallocated R vector (a big matrix is never held twice in full).
.fetch_vector <- function(value, chunk = 2^24) {
  if (!is.list(value) || is.null(value$handle)) return(as.vector(value))
  core <- .py_core()
  n <- value$length
  out <- if (identical(value$type, "double")) numeric(n) else integer(n)
  start <- 0
  while (start < n) {
    stop_at <- min(start + chunk, n)
    out[(start + 1):stop_at] <- as.vector(core$fetch(value$handle, start, stop_at))
    start <- stop_at
  }
  core$release(value$handle)
  out
}

.py_is <- function(x, what) {
  inherits(x, "python.builtin.object") && isTRUE(.py_core()[[paste0("is_", what)]](x))
}

# ---- installation and diagnosis --------------------------------------------------------------

.requirements_file <- function() {
  system.file("python", "requirements.txt", package = "isthmus", mustWork = TRUE)
}

# R puts its own library directories on LD_LIBRARY_PATH; a Python started from R would then load
# the system's libpython instead of its own (a pyenv Python ends up without ssl, say).
.python_subprocess_env <- "LD_LIBRARY_PATH="

# The interpreter behind `python3` on the PATH (resolving pyenv-style shims).
.system_python <- function() {
  exe <- Sys.which("python3")
  if (!nzchar(exe)) return("")
  real <- tryCatch(system2(exe, c("-c", shQuote("import sys; print(sys.executable)")), stdout = TRUE, stderr = FALSE,
                           env = .python_subprocess_env),
                   error = function(e) character(), warning = function(w) character())
  if (length(real) == 1 && file.exists(real)) real else unname(exe)
}

#' Create isthmus's Python environment
#'
#' Builds a virtualenv (by default in [isthmus_venv_dir()]) with the pinned, tested versions of
#' the Python stack, then installs the isthmus Python package into it. A second call with the
#' same requirements and source reuses what is there and returns quickly.
#'
#' @param python The Python (3.10 or newer) used to create the virtualenv.
#' @param envdir Where to create it.
#' @param package What pip installs as the isthmus Python package: a path to a source checkout
#'   (the repository root) or a pip requirement. By default the environment variable
#'   `ISTHMUS_PYTHON_SOURCE`, else `isthmus==<this R package's version>` from PyPI.
#' @param editable Install a source checkout in editable mode (for development).
#' @param force Rebuild even if the environment looks current.
#' @return The path of the environment's Python, invisibly.
#' @export
install_isthmus <- function(python = .system_python(), envdir = isthmus_venv_dir(),
                            package = NULL, editable = FALSE, force = FALSE) {
  if (!nzchar(python)) stop("isthmus: python3 was not found; install Python 3.10 or newer.", call. = FALSE)
  package <- package %||% Sys.getenv("ISTHMUS_PYTHON_SOURCE", "")
  if (!nzchar(package)) package <- paste0("isthmus==", utils::packageVersion("isthmus"))
  if (dir.exists(package)) package <- normalizePath(package)
  reqs <- .requirements_file()
  stamp_file <- file.path(envdir, "isthmus-stamp.txt")
  stamp <- c(paste("requirements", tools::md5sum(reqs)), paste("package", package), paste("editable", editable))
  venv_python <- .venv_python(envdir)
  if (!force && file.exists(stamp_file) && file.exists(venv_python) &&
      identical(readLines(stamp_file), stamp)) {
    message("isthmus: Python environment is current: ", envdir)
    return(invisible(venv_python))
  }
  run <- function(cmd, args) {
    message("isthmus: ", basename(cmd), " ", paste(args, collapse = " "))
    status <- system2(cmd, args, env = .python_subprocess_env)
    if (!identical(status, 0L)) stop("isthmus: `", cmd, " ", paste(args, collapse = " "), "` failed.", call. = FALSE)
  }
  dir.create(dirname(envdir), recursive = TRUE, showWarnings = FALSE)
  if (!file.exists(venv_python)) run(python, c("-m", "venv", shQuote(envdir)))
  pip <- c("-m", "pip", "install", "--disable-pip-version-check", "-q")
  # torch first and alone: asking for it by exact version picks the CPU build where one is
  # available locally instead of pulling several GB of CUDA packages through a dependency.
  run(venv_python, c(pip, "torch==2.13.0"))
  run(venv_python, c(pip, "-r", shQuote(reqs)))
  target <- if (dir.exists(package) && editable) c("-e", shQuote(package)) else shQuote(package)
  run(venv_python, c(pip, "--no-deps", target))
  writeLines(stamp, stamp_file)
  message("isthmus: Python environment ready: ", envdir)
  invisible(venv_python)
}

#' Which Python isthmus uses, its versions, and known problems with their fixes
#'
#' Starts Python if it is not running yet (that is the point), using the discovery order:
#' `ISTHMUS_PYTHON`, `options(isthmus.python)`, then isthmus's own virtualenv.
#'
#' @return A list (invisibly) with `python`, `source`, `versions` and `problems`.
#' @export
isthmus_doctor <- function() {
  problems <- character()
  candidate <- if (reticulate::py_available(initialize = FALSE)) NULL else .discover_python()
  source <- if (is.null(candidate)) "already running in this R session" else candidate$source
  if (is.null(candidate) && !reticulate::py_available(initialize = FALSE)) {
    source <- "none found"
    problems <- c(problems, paste("No Python environment for isthmus.", .fix_text))
  }
  versions <- list()
  ok <- tryCatch({ .py_core(); TRUE }, error = function(e) {
    problems <<- c(problems, conditionMessage(e))
    FALSE
  })
  if (ok) {
    versions <- .py_core()$versions()
    numpy <- versions$numpy
    if (nzchar(numpy) && numeric_version(numpy) >= "2.0" && utils::packageVersion("reticulate") < "1.41") {
      problems <- c(problems, paste0(
        "NumPy ", numpy, " with reticulate ", utils::packageVersion("reticulate"),
        ": reticulate before 1.41 cannot load NumPy 2. Fix: pip install 'numpy<2' 'zarr<3' in that ",
        "environment (install_isthmus() pins numpy 1.26.4), or update reticulate to 1.41 or newer."))
    }
    rpy2 <- versions$rpy2
    if (nzchar(rpy2) && numeric_version(rpy2) >= "3.6" && getRversion() < "4.5") {
      problems <- c(problems, paste0(
        "rpy2 ", rpy2, " needs R 4.5 or newer (this is R ", getRversion(), "; it fails with ",
        "'undefined symbol: R_getVar'). Fix: pip install 'rpy2==3.5.17' and remove rpy2-rinterface / ",
        "rpy2-robjects if they are installed beside it."))
    }
    if (identical(.py_core()$torch_import_state(), "elsewhere")) {
      problems <- c(problems, paste(
        "torch was imported in this R session before isthmus could load it, so it may run its matrix",
        "products on R's BLAS (45x slower in bench/bench_torch_in_r.R). Fix: restart R and let an isthmus",
        "function be the first to use torch."))
    }
    missing <- names(Filter(function(v) !nzchar(v), versions[c("isthmus", "numpy", "anndata", "torch", "scvi-tools")]))
    if (length(missing)) {
      problems <- c(problems, paste("Missing Python packages:", paste(missing, collapse = ", "), "-", .fix_text))
    }
  }
  cat("isthmus doctor\n")
  cat("  Python in use: ", .python_in_use(), "\n", sep = "")
  cat("  chosen by:     ", source, "\n", sep = "")
  for (name in c("isthmus", "numpy", "scipy", "anndata", "mudata", "torch", "scvi-tools", "rpy2")) {
    if (!is.null(versions[[name]])) cat(sprintf("  %-14s %s\n", paste0(name, ":"), if (nzchar(versions[[name]])) versions[[name]] else "not installed"))
  }
  cat(sprintf("  %-14s %s\n", "reticulate:", utils::packageVersion("reticulate")))
  if (length(problems)) {
    cat("Problems:\n")
    for (p in problems) cat("  * ", p, "\n", sep = "")
  } else {
    cat("No known problems.\n")
  }
  invisible(list(python = .python_in_use(), source = source, versions = versions, problems = problems))
}

`%||%` <- function(a, b) if (is.null(a)) b else a
