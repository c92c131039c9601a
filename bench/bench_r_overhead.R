# The cost of the R route: RunSCVI() on a Seurat object vs the same scvi-tools call in Python
# (isthmus.tl.integrate) on the same counts, same epochs and seed. Runs alternate, so both see
# the same machine load; imports and a warm-up are excluded on both sides.
#   Rscript bench/bench_r_overhead.R [epochs] [repeats]
suppressPackageStartupMessages({
  library(isthmus)
  library(Seurat)
})
args <- commandArgs(trailingOnly = TRUE)
epochs <- if (length(args) >= 1) as.integer(args[1]) else 50L
repeats <- if (length(args) >= 2) as.integer(args[2]) else 3L
file <- system.file("extdata", "pbmc_3batch_symphony.h5ad", package = "isthmus", mustWork = TRUE)
pbmc <- suppressWarnings(read_h5ad(file))
python <- file.path(isthmus_venv_dir(), "bin", "python")
script <- file.path("bench", "scvi_in_python.py")

invisible(RunSCVI(pbmc, batch = "batch", max_epochs = 1, verbose = FALSE))  # warm-up: imports
times <- data.frame(run = integer(), python_s = numeric(), r_s = numeric())
for (i in seq_len(repeats)) {
  out <- system2(python, c(script, file, epochs, 42), stdout = TRUE, stderr = FALSE,
                 env = "LD_LIBRARY_PATH=")
  py <- as.numeric(tail(out, 1))
  r <- system.time(RunSCVI(pbmc, batch = "batch", max_epochs = epochs, seed.use = 42, verbose = FALSE))[["elapsed"]]
  times <- rbind(times, data.frame(run = i, python_s = py, r_s = r))
}
cat(sprintf("\nRunSCVI from R vs isthmus.tl.integrate in Python: %d cells x %d genes, %d epochs, %d runs\n\n",
            ncol(pbmc), nrow(pbmc), epochs, repeats))
cat("| run | Python (s) | R (s) | R / Python |\n|---|---|---|---|\n")
for (i in seq_len(nrow(times))) {
  cat(sprintf("| %d | %.2f | %.2f | %.3f |\n", times$run[i], times$python_s[i], times$r_s[i],
              times$r_s[i] / times$python_s[i]))
}
cat(sprintf("| median | %.2f | %.2f | **%.3f** |\n", stats::median(times$python_s), stats::median(times$r_s),
            stats::median(times$r_s) / stats::median(times$python_s)))
