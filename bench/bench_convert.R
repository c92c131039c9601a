#!/usr/bin/env Rscript
# Benchmark: in-memory Seurat -> AnnData conversion with isthmus, isthmus::write_h5ad(), and the
# peer anndata2ri (SingleCellExperiment -> AnnData through rpy2), on sparse count matrices of
# 2000 genes x 10k / 100k / 500k cells (5% non-zero, Poisson-like integer counts as doubles).
#
# Usage (from the repository root):
#   Rscript bench/bench_convert.R                           # sizes 10000,100000,500000
#   Rscript bench/bench_convert.R --sizes 10000,100000      # quick run
#   Rscript bench/bench_convert.R --methods anndata2ri --timeout 300
#
# Options:
#   --sizes N,N,...     numbers of cells (default 10000,100000,500000)
#   --methods a,b,...   any of isthmus, write_h5ad, anndata2ri (default: all three)
#   --timeout S         wall-clock limit per worker subprocess in seconds (default 900)
#   --logdir DIR        keep each worker's stdout/stderr there (default: a new directory
#                       bench_convert_logs_<date>_<time> beside R's session temporary directory)
#
# Python: $ISTHMUS_PYTHON if set, else <isthmus::isthmus_venv_dir()>/bin/python. It needs rpy2,
# anndata2ri and anndata for the peer; the isthmus workers use whatever Python isthmus discovers
# (ISTHMUS_PYTHON is passed through to them).
#
# Every method and size runs in its own fresh subprocess (Rscript for the isthmus methods, python
# for anndata2ri), which builds the data itself from a fixed seed (bench/bench_data.R), converts a
# tiny object once as a warm-up (so Python start-up and imports are not counted), then measures
# one conversion: wall time, and the extra peak memory = peak RSS during the conversion (VmHWM,
# reset just before via /proc/self/clear_refs) minus the RSS just before it.

.bench_dir <- function() {
  arg <- grep("^--file=", commandArgs(trailingOnly = FALSE), value = TRUE)
  if (length(arg)) return(dirname(normalizePath(sub("^--file=", "", arg[1]))))
  normalizePath("bench")
}
BENCH_DIR <- .bench_dir()
source(file.path(BENCH_DIR, "bench_data.R"))

.parse_args <- function(args) {
  opts <- list(sizes = c(10000L, 100000L, 500000L), methods = c("isthmus", "write_h5ad", "anndata2ri"),
               timeout = 900, logdir = NA_character_, worker = NA_character_, cells = NA_integer_)
  k <- 1L
  while (k <= length(args)) {
    a <- args[k]
    val <- if (grepl("=", a)) sub("^[^=]*=", "", a) else { k <- k + 1L; args[k] }
    key <- sub("=.*$", "", a)
    switch(key,
      "--sizes" = opts$sizes <- as.integer(as.numeric(strsplit(val, ",")[[1]])),
      "--methods" = opts$methods <- strsplit(val, ",")[[1]],
      "--timeout" = opts$timeout <- as.numeric(val),
      "--logdir" = opts$logdir <- val,
      "--worker" = opts$worker <- val,
      "--cells" = opts$cells <- as.integer(as.numeric(val)),
      stop("unknown argument: ", a, call. = FALSE)
    )
    k <- k + 1L
  }
  bad <- setdiff(opts$methods, c("isthmus", "write_h5ad", "anndata2ri"))
  if (length(bad)) stop("unknown method(s): ", paste(bad, collapse = ", "), call. = FALSE)
  if (anyNA(opts$sizes) || any(opts$sizes < 1)) stop("--sizes must be positive integers", call. = FALSE)
  opts
}

.emit <- function(...) {
  fields <- list(...)
  vals <- vapply(fields, function(v) gsub("[\t\n]", " ", as.character(v)[1]), "")
  cat("BENCH_RESULT\t", paste0(names(fields), "=", vals, collapse = "\t"), "\n", sep = "")
}

.addr <- function(x) tryCatch({ a <- tracemem(x); untracemem(x); a }, error = function(e) NA_character_)

# ---------------------------------------------------------------------------------------------
# Worker (one method, one size, fresh Rscript process)
# ---------------------------------------------------------------------------------------------
run_worker <- function(method, n_cells) {
  suppressPackageStartupMessages({
    library(Matrix)
    library(Seurat)
    library(isthmus)
  })
  make_seurat <- function(n) {
    m <- bench_make_counts(n)
    meta <- bench_make_meta(m)
    # data = counts: CreateSeuratObject() stores the same dgCMatrix in both slots (by reference).
    obj <- CreateSeuratObject(counts = m, meta.data = meta)
    list(obj = obj, nnz = length(m@x), genes = nrow(m), mib = bench_matrix_mib(m))
  }
  h5_file <- tempfile(fileext = ".h5ad")
  convert <- switch(method,
    isthmus = function(obj) isthmus::as_anndata(obj),
    write_h5ad = function(obj) {
      if (file.exists(h5_file)) unlink(h5_file)
      isthmus::write_h5ad(obj, h5_file)
    },
    stop("unknown R worker method ", method)
  )

  progress <- function(...) message(format(Sys.time(), "[%H:%M:%S] "), ...)
  progress("worker ", method, ", ", n_cells, " cells: warm-up on 50 cells")
  t0 <- Sys.time()
  tiny <- make_seurat(50L)
  invisible(convert(tiny$obj))
  warm_s <- as.numeric(difftime(Sys.time(), t0, units = "secs"))
  rm(tiny)

  progress("generating data")
  t0 <- Sys.time()
  d <- make_seurat(n_cells)
  gen_s <- as.numeric(difftime(Sys.time(), t0, units = "secs"))
  obj <- d$obj
  counts <- GetAssayData(obj, slot = "counts", assay = "RNA")
  data <- GetAssayData(obj, slot = "data", assay = "RNA")
  shared <- identical(.addr(counts@x), .addr(data@x)) && !is.na(.addr(counts@x))
  rm(counts, data)

  progress("converting")
  invisible(gc(full = TRUE))
  bench_reset_peak()
  before <- bench_mem()
  t0 <- Sys.time()
  res <- convert(obj)
  conv_s <- as.numeric(difftime(Sys.time(), t0, units = "secs"))
  after <- bench_mem()

  progress("converted in ", sprintf("%.3f", conv_s), " s; checking")
  # Checks, outside the measured section.
  check <- "ok"
  note <- ""
  if (method == "isthmus") {
    note <- tryCatch({
      info <- reticulate::py_run_string(paste(
        "def bench_describe(a):",
        "    import numpy as np",
        "    X = a.X",
        "    d = dict(cls=type(X).__module__ + '.' + type(X).__name__, dtype=str(getattr(X, 'dtype', '?')),",
        "             shape=[int(s) for s in a.shape], nnz=int(getattr(X, 'nnz', -1)),",
        "             layers=list(a.layers.keys()), shared='n/a')",
        "    if 'counts' in a.layers and hasattr(X, 'data') and hasattr(a.layers['counts'], 'data'):",
        "        d['shared'] = str(bool(np.shares_memory(X.data, a.layers['counts'].data)))",
        "    return d",
        sep = "\n"), local = TRUE, convert = TRUE)$bench_describe(res)
      if (!identical(as.integer(info$shape), c(n_cells, d$genes)) || !isTRUE(info$nnz == d$nnz)) {
        check <- "MISMATCH"
      }
      sprintf("X %s %s shape %dx%d nnz %s; layers [%s]; X.data shares memory with layers['counts'].data: %s",
              info$cls, info$dtype, info$shape[[1]], info$shape[[2]], fmt(info$nnz, 0),
              paste(unlist(info$layers), collapse = ", "), info$shared)
    }, error = function(e) { check <<- "check failed"; conditionMessage(e) })
  } else {
    size <- file.size(h5_file)
    if (is.na(size)) check <- "no file"
    note <- sprintf("h5ad file %.1f MiB", size / 2^20)
    note <- paste0(note, tryCatch({
      info <- reticulate::py_run_string(paste(
        "def bench_h5(path):",
        "    import h5py",
        "    with h5py.File(path, 'r') as f:",
        "        X = f['X']",
        "        enc = str(X.attrs.get('encoding-type', 'dense'))",
        "        shape = [int(s) for s in X.attrs['shape']] if 'shape' in X.attrs else [int(s) for s in X.shape]",
        "        nnz = int(X['data'].shape[0]) if 'data' in X else -1",
        "        comp = str(X['data'].compression if 'data' in X else X.compression)",
        "        layers = list(f['layers'].keys()) if 'layers' in f else []",
        "        n_obs = len(f['obs'][f['obs'].attrs['_index']])",
        "    return dict(enc=enc, shape=shape, nnz=nnz, comp=comp, layers=layers, n_obs=n_obs)",
        sep = "\n"), local = TRUE, convert = TRUE)$bench_h5(h5_file)
      if (!identical(as.integer(info$shape), c(n_cells, d$genes)) || !isTRUE(info$nnz == d$nnz)) {
        check <- "MISMATCH"
      }
      sprintf("; X %s shape %dx%d nnz %s compression %s; layers [%s]; obs rows %d",
              info$enc, info$shape[[1]], info$shape[[2]], fmt(info$nnz, 0), info$comp,
              paste(unlist(info$layers), collapse = ", "), info$n_obs)
    }, error = function(e) { check <<- "check failed"; paste0("; ", conditionMessage(e)) }))
    unlink(h5_file)
  }

  .emit(status = "ok", cells = n_cells, genes = d$genes, nnz = d$nnz,
        mat_mib = sprintf("%.3f", d$mib), gen_s = sprintf("%.3f", gen_s),
        warm_s = sprintf("%.3f", warm_s), conv_s = sprintf("%.4f", conv_s),
        rss_before = sprintf("%.1f", before[["rss"]]), hwm = sprintf("%.1f", after[["hwm"]]),
        rss_after = sprintf("%.1f", after[["rss"]]), check = check,
        data_is_counts = shared, note = note)
  invisible(NULL)
}

# ---------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------
find_python <- function() {
  env <- Sys.getenv("ISTHMUS_PYTHON", "")
  if (nzchar(env)) return(list(path = env, source = "ISTHMUS_PYTHON"))
  venv <- tryCatch(isthmus::isthmus_venv_dir(), error = function(e) NA_character_)
  if (is.na(venv)) {
    stop("set ISTHMUS_PYTHON (isthmus is not installed, so its venv cannot be found)", call. = FALSE)
  }
  list(path = file.path(venv, "bin", "python"), source = "isthmus::isthmus_venv_dir()")
}

# Rscript prepends R's own library directories to LD_LIBRARY_PATH (etc/ldpaths), among them
# /usr/lib/x86_64-linux-gnu, where a system libpython can shadow the venv's own (a pyenv Python
# built with --enable-shared then runs another patch release's libpython). The Python worker gets
# LD_LIBRARY_PATH without those leading entries, i.e. as it was in the shell that started R.
python_env <- function() {
  ld <- Sys.getenv("LD_LIBRARY_PATH", "")
  parts <- strsplit(ld, ":", fixed = TRUE)[[1]]
  r_added <- function(p) {
    p %in% c(R.home("lib"), normalizePath(R.home("lib"), mustWork = FALSE), "/usr/lib/x86_64-linux-gnu",
             "/usr/lib64", "/usr/lib") || grepl("/lib/server/?$", p)
  }
  while (length(parts) && r_added(parts[1])) parts <- parts[-1]
  if (length(parts)) paste0("LD_LIBRARY_PATH=", shQuote(paste(parts, collapse = ":")))
  else "-u LD_LIBRARY_PATH"
}

parse_result <- function(lines) {
  line <- tail(grep("^BENCH_RESULT\t", lines, value = TRUE), 1)
  if (!length(line)) return(NULL)
  parts <- strsplit(line, "\t", fixed = TRUE)[[1]][-1]
  stats::setNames(as.list(sub("^[^=]*=", "", parts)), sub("=.*$", "", parts))
}

run_one <- function(method, n_cells, python, timeout, logdir) {
  log_out <- file.path(logdir, sprintf("%s_%d.out", method, n_cells))
  log_err <- file.path(logdir, sprintf("%s_%d.err", method, n_cells))
  env <- character()
  if (method == "anndata2ri") {
    cmd <- python$path
    env <- python_env()
    args <- c(file.path(BENCH_DIR, "anndata2ri_convert.py"), "--cells", n_cells,
              "--data-script", file.path(BENCH_DIR, "bench_data.R"))
  } else {
    cmd <- file.path(R.home("bin"), "Rscript")
    args <- c(file.path(BENCH_DIR, "bench_convert.R"), "--worker", method, "--cells", n_cells)
  }
  t0 <- Sys.time()
  rc <- suppressWarnings(system2("env", c(env, "timeout", "--kill-after=30", timeout, shQuote(cmd),
                                          shQuote(args)), stdout = log_out, stderr = log_err))
  wall <- as.numeric(difftime(Sys.time(), t0, units = "secs"))
  out <- if (file.exists(log_out)) readLines(log_out, warn = FALSE) else character()
  res <- parse_result(out)
  if (is.null(res) || rc != 0) {
    status <- if (rc %in% c(124L, 137L) && wall >= timeout) sprintf("timeout (%gs)", timeout)
              else if (rc == 137L) "failed (killed, rc 137: out of memory?)"
              else sprintf("failed (rc %d)", rc)
    err <- if (file.exists(log_err)) readLines(log_err, warn = FALSE) else character()
    err <- err[!grepl("^R\\[write to console\\]|site-library.*contains no packages|^\\s*$", err)]
    tl <- tail(c(out, err), 15)
    res <- list(status = status, cells = n_cells, tail = if (length(tl)) tl else "(no output)")
  }
  res$method <- method
  res$cells <- as.integer(n_cells)
  res$worker_wall_s <- wall
  res
}

print_versions <- function(python) {
  pkgs <- c("Seurat", "SeuratObject", "SingleCellExperiment", "Matrix", "reticulate", "isthmus")
  v <- vapply(pkgs, function(p) tryCatch(as.character(utils::packageVersion(p)),
                                         error = function(e) "not installed"), "")
  cat("## Versions\n\n")
  cat("- ", R.version.string, "\n", sep = "")
  cat("- R packages: ", paste(pkgs, v, collapse = ", "), "\n", sep = "")
  pv <- tryCatch(suppressWarnings(system2("env", c(python_env(), shQuote(python$path),
                                                  shQuote(file.path(BENCH_DIR, "anndata2ri_convert.py")),
                                                  "--versions"), stdout = TRUE, stderr = FALSE)),
                 error = function(e) character())
  if (length(pv)) {
    kv <- strsplit(pv, "\t", fixed = TRUE)
    cat("- Python (", python$path, ", from ", python$source, "): ",
        paste(vapply(kv, paste, "", collapse = " "), collapse = ", "), "\n", sep = "")
  } else {
    cat("- Python (", python$path, "): could not be run\n", sep = "")
  }
  cat("- isthmus: ", isthmus_install_info(), "\n", sep = "")
  git <- tryCatch(suppressWarnings(system2("git", c("-C", shQuote(dirname(BENCH_DIR)), "describe", "--always",
                                                     "--dirty"), stdout = TRUE, stderr = FALSE)),
                  error = function(e) character())
  if (length(git) == 1L && nzchar(git)) cat("- Repository checkout: ", git, "\n", sep = "")
  cat("- Machine: ", parallel::detectCores(), " CPU cores, ",
      tryCatch(sprintf("%.1f GiB RAM", as.numeric(gsub("[^0-9]", "", grep("^MemTotal", readLines("/proc/meminfo"), value = TRUE))) / 2^20),
               error = function(e) "? RAM"), "\n\n", sep = "")
}

isthmus_install_info <- function() {
  desc <- tryCatch(system.file("DESCRIPTION", package = "isthmus"), error = function(e) "")
  if (!nzchar(desc)) return("not installed")
  sprintf("installed in %s (installed %s)", dirname(desc),
          format(file.mtime(desc), "%Y-%m-%d %H:%M:%S"))
}

fmt <- function(x, digits) {
  x <- suppressWarnings(as.numeric(x))
  ifelse(is.na(x), "", formatC(x, format = "f", digits = digits, big.mark = ","))
}

label <- c(isthmus = "isthmus as_anndata()", write_h5ad = "isthmus write_h5ad()",
           anndata2ri = "anndata2ri (SCE route)")

main <- function(opts) {
  python <- find_python()
  # Not under tempdir(): R deletes that at exit, and the logs should outlive the run.
  logdir <- if (is.na(opts$logdir)) {
    file.path(dirname(tempdir()), format(Sys.time(), "bench_convert_logs_%Y%m%d_%H%M%S"))
  } else opts$logdir
  dir.create(logdir, showWarnings = FALSE, recursive = TRUE)

  cat("# isthmus conversion benchmark\n\n")
  cat("Run: ", format(Sys.time(), "%Y-%m-%d %H:%M:%S %Z"), "\n\n", sep = "")
  print_versions(python)
  cat("Data: 2000 genes x N cells dgCMatrix, 5% non-zero (100 per cell), counts 1 + Poisson(1.5) ",
      "stored as doubles, fixed seed, plus 4 cell metadata columns. Each method and size runs in ",
      "its own fresh subprocess (timeout ", opts$timeout, " s) after a warm-up conversion of a 50-cell ",
      "object.\n\n", sep = "")
  cat("- isthmus: Seurat v4 object from `CreateSeuratObject(counts = m, meta.data = meta)`; its RNA ",
      "assay's `data` is the same dgCMatrix as `counts` (shared by reference, not a copy); ",
      "measured: `ad <- isthmus::as_anndata(obj)`.\n", sep = "")
  cat("- isthmus write_h5ad: same object; measured: `isthmus::write_h5ad(obj, file)` (uncompressed .h5ad ",
      "in tempdir()).\n", sep = "")
  cat("- anndata2ri: `SingleCellExperiment(assays = list(counts = m), colData = meta)`; measured: ",
      "`with localconverter(anndata2ri.converter): ro.conversion.get_conversion().rpy2py(sce)`.\n", sep = "")
  cat("- Extra peak = VmHWM during the conversion minus VmRSS just before it (peak reset via ",
      "/proc/self/clear_refs); retained = VmRSS after minus before. MiB = 2^20 bytes.\n\n", sep = "")

  installed_before <- isthmus_install_info()
  results <- list()
  for (n in opts$sizes) {
    for (method in opts$methods) {
      message(sprintf("[%s] %s, %d cells ...", format(Sys.time(), "%H:%M:%S"), method, n))
      r <- run_one(method, n, python, opts$timeout, logdir)
      message(sprintf("    -> %s%s", r$status, if (identical(r$status, "ok")) sprintf(", %.3f s", as.numeric(r$conv_s)) else ""))
      results[[length(results) + 1L]] <- r
    }
  }

  get <- function(r, k) if (is.null(r[[k]])) NA else r[[k]]
  mat_mib <- vapply(opts$sizes, function(n) {
    m <- NA_real_
    for (r in results) if (r$cells == n && !is.null(r$mat_mib)) m <- as.numeric(r$mat_mib)
    if (is.na(m)) m <- (12 * 100 * n + 4 * (n + 1)) / 2^20
    m
  }, 0)
  names(mat_mib) <- opts$sizes

  cat("## Results\n\n")
  cat("| cells | nnz | matrix MiB (x+i+p) | method | status | conversion time (s) | extra peak RSS (MiB) |",
      " extra peak / matrix | retained RSS (MiB) | RSS before (MiB) | data gen (s) | check |\n", sep = "")
  cat("|---:|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---|\n")
  for (r in results) {
    n <- as.character(r$cells)
    ok <- identical(r$status, "ok")
    extra <- if (ok) as.numeric(r$hwm) - as.numeric(r$rss_before) else NA
    retained <- if (ok) as.numeric(r$rss_after) - as.numeric(r$rss_before) else NA
    cat(sprintf("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
                fmt(r$cells, 0), fmt(if (is.null(r$nnz)) 100 * r$cells else r$nnz, 0), fmt(mat_mib[[n]], 1), label[[r$method]], r$status,
                fmt(get(r, "conv_s"), 3), fmt(extra, 1), fmt(extra / mat_mib[[n]], 2), fmt(retained, 1),
                fmt(get(r, "rss_before"), 0), fmt(get(r, "gen_s"), 1),
                if (ok) r$check else ""))
  }

  cat("\n## Speed ratio (anndata2ri time / isthmus time)\n\n")
  cat("| cells | isthmus as_anndata() (s) | isthmus write_h5ad() (s) | anndata2ri (s) |",
      " anndata2ri / as_anndata() | anndata2ri / write_h5ad() |\n", sep = "")
  cat("|---:|---:|---:|---:|---:|---:|\n")
  conv <- function(n, method) {
    for (r in results) if (r$cells == n && r$method == method) {
      return(if (identical(r$status, "ok")) as.numeric(r$conv_s) else r$status)
    }
    "not run"
  }
  show <- function(v) if (is.numeric(v)) fmt(v, 3) else v
  ratio <- function(a, b) if (is.numeric(a) && is.numeric(b)) sprintf("%.1fx", a / b) else "n/a"
  for (n in opts$sizes) {
    i <- conv(n, "isthmus"); w <- conv(n, "write_h5ad"); a <- conv(n, "anndata2ri")
    cat(sprintf("| %s | %s | %s | %s | %s | %s |\n", fmt(n, 0), show(i), show(w), show(a),
                ratio(a, i), ratio(a, w)))
  }

  cat("\n## Notes per run\n\n")
  for (r in results) {
    cat(sprintf("- %s, %s cells: ", label[[r$method]], fmt(r$cells, 0)))
    if (identical(r$status, "ok")) {
      cat(sprintf("warm-up (50 cells, incl. first imports) %.2f s; worker wall %.1f s; %s%s\n",
                  as.numeric(r$warm_s), r$worker_wall_s, r$note,
                  if (!is.null(r$data_is_counts)) sprintf("; RNA data is counts (same address): %s", r$data_is_counts) else ""))
    } else {
      cat(r$status, "; last output:\n\n", sep = "")
      cat(paste0("      ", r$tail), sep = "\n")
      cat("\n")
    }
  }
  if (!identical(installed_before, isthmus_install_info())) {
    cat("\n**Warning: the isthmus package was reinstalled during this run (", installed_before, " -> ",
        isthmus_install_info(), "); the isthmus rows may mix versions.**\n", sep = "")
  }
  cat("\nWorker logs: ", logdir, "\n", sep = "")
  invisible(results)
}

opts <- .parse_args(commandArgs(trailingOnly = TRUE))
if (!is.na(opts$worker)) {
  run_worker(opts$worker, opts$cells)
} else {
  main(opts)
}
