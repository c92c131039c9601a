# Shared data generation for bench/bench_convert.R. It is sourced by the R workers (isthmus) and,
# through rpy2, by the Python worker (bench/anndata2ri_convert.py), so every method converts
# exactly the same matrix and cell metadata for a given size and seed.

# A genes x cells dgCMatrix with exactly `density` non-zeros per column and Poisson-like integer
# counts stored as doubles. Per cell, the genes are split into k = n_genes * density equal bins
# and one random gene is drawn in each bin: the row indices come out distinct and sorted without
# any per-column loop or sort, so 50M non-zeros take a few seconds.
bench_make_counts <- function(n_cells, n_genes = 2000L, density = 0.05, seed = 1L) {
  set.seed(seed)
  n_cells <- as.integer(n_cells)
  n_genes <- as.integer(n_genes)
  k <- as.integer(round(n_genes * density))
  bin <- n_genes %/% k
  stopifnot(k >= 1L, bin * k == n_genes)
  nnz <- as.double(k) * n_cells
  stopifnot(nnz < .Machine$integer.max)
  nnz <- as.integer(nnz)
  i <- rep.int(seq.int(0L, by = bin, length.out = k), n_cells) +
    as.integer(runif(nnz) * bin)  # truncation = floor for non-negative values
  x <- as.double(1L + rpois(nnz, lambda = 1.5))
  p <- seq.int(0L, by = k, length.out = n_cells + 1L)
  cls <- methods::getClass("dgCMatrix", where = asNamespace("Matrix"))
  methods::new(cls, i = i, p = p, x = x, Dim = c(n_genes, n_cells),
               Dimnames = list(paste0("Gene", seq_len(n_genes)), paste0("Cell", seq_len(n_cells))))
}

# A few cell-level columns (factor, character, double, integer), the same for Seurat and SCE.
bench_make_meta <- function(m, seed = 2L) {
  set.seed(seed)
  n <- ncol(m)
  data.frame(
    sample = factor(sample(c("s1", "s2", "s3", "s4"), n, replace = TRUE)),
    batch = sample(c("b1", "b2"), n, replace = TRUE),
    score = stats::rnorm(n),
    n_counts = as.integer(Matrix::colSums(m)),
    row.names = colnames(m),
    stringsAsFactors = FALSE
  )
}

# Size of the count matrix's x + i + p slots in MiB.
bench_matrix_mib <- function(m) {
  (8 * length(m@x) + 4 * length(m@i) + 4 * length(m@p)) / 2^20
}

# VmRSS / VmHWM of this process in MiB (from /proc/self/status, which reports kB).
bench_mem <- function() {
  s <- readLines("/proc/self/status")
  get <- function(key) {
    line <- grep(paste0("^", key, ":"), s, value = TRUE)
    as.numeric(gsub("[^0-9]", "", line)) / 1024
  }
  c(rss = get("VmRSS"), hwm = get("VmHWM"))
}

# Resets the peak RSS (VmHWM) of this process to its current RSS.
bench_reset_peak <- function() {
  writeLines("5", "/proc/self/clear_refs")
  invisible(NULL)
}
