#!/usr/bin/env Rscript
# Why isthmus imports torch with RTLD_DEEPBIND inside R (python/isthmus/_r.py).
# R puts libblas in the process's global symbol scope; a torch imported the usual way then runs its
# matrix products on R's BLAS instead of its own MKL. Times one fixed torch workload
# (bench/torch_gemm_loop.py) in three fresh processes, side by side:
#   python        plain Python
#   R, plain      Python embedded in R by reticulate, torch imported as usual
#   R, isthmus    the same, torch imported by isthmus (RTLD_DEEPBIND)
# Usage: Rscript bench/bench_torch_in_r.R [repeats of the whole comparison, default 3]
args <- commandArgs(trailingOnly = TRUE)
rounds <- if (length(args)) as.integer(args[1]) else 3L
here <- dirname(normalizePath(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1])))
python <- Sys.getenv("ISTHMUS_PYTHON", file.path(isthmus::isthmus_venv_dir(), "bin", "python"))
rscript <- file.path(R.home("bin"), "Rscript")
r_code <- function(deepbind) sprintf(paste(
  "Sys.setenv(RETICULATE_PYTHON = '%s')",
  if (deepbind) "isthmus:::.py_core()$`_import_torch_with_its_own_blas`()" else "invisible(reticulate::import('torch'))",
  "loop <- reticulate::import_from_path('torch_gemm_loop', '%s')",
  "cat(sprintf('%%.4f', loop$run()))", sep = "; "), python, here)
run <- function(cmd, args) {
  out <- system2(cmd, args, stdout = TRUE, stderr = FALSE, env = "LD_LIBRARY_PATH=")
  as.numeric(utils::tail(out, 1))
}
times <- replicate(rounds, c(
  python = run(python, shQuote(file.path(here, "torch_gemm_loop.py"))),
  r_plain = run(rscript, c("-e", shQuote(r_code(FALSE)))),
  r_isthmus = run(rscript, c("-e", shQuote(r_code(TRUE))))
))
med <- apply(times, 1, stats::median)
cat(sprintf("R BLAS: %s\n", sessionInfo()$BLAS))
cat("| process | median time (s) | ratio to plain Python |\n|---|---:|---:|\n")
labels <- c(python = "Python", r_plain = "R + reticulate, torch imported as usual", r_isthmus = "R + isthmus (torch with RTLD_DEEPBIND)")
for (k in names(med)) cat(sprintf("| %s | %.3f | %.2fx |\n", labels[[k]], med[[k]], med[[k]] / med[["python"]]))
