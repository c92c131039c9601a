# DeconvolveBulk() from R, for real: bulk samples against a Seurat reference in one call.

bulk_and_reference <- function() {
  obj <- pbmc3_seurat()
  obj <- obj[, obj$cell_type %in% c("B", "Mono_CD14", "NK", "T_CD4", "T_CD8")]
  in_bulk <- obj$batch == "5p"
  # a bulk matrix: each sample the summed counts of random 5p cells (genes x samples)
  counts <- layer_data(obj, "counts")[, in_bulk]
  set.seed(1)
  bulk <- sapply(1:8, function(i) Matrix::rowSums(counts[, sample(ncol(counts), 60, replace = TRUE)]))
  colnames(bulk) <- paste0("sample", 1:8)
  list(bulk = bulk, reference = obj[, !in_bulk])
}

test_that("DeconvolveBulk: a bulk matrix against a Seurat reference in one call, each method", {
  x <- bulk_and_reference()
  fractions <- DeconvolveBulk(x$bulk, x$reference, labels = "cell_type", method = "nnls", verbose = FALSE)
  expect_s3_class(fractions, "data.frame")
  expect_identical(rownames(fractions), colnames(x$bulk))
  expect_setequal(names(fractions), c("B", "Mono_CD14", "NK", "T_CD4", "T_CD8"))
  expect_equal(unname(rowSums(fractions)), rep(1, 8), tolerance = 1e-6)
  expect_identical(attr(fractions, "record")$method, "nnls")
  expect_identical(attr(fractions, "record")$params$bulk_values, "counts")
  music <- DeconvolveBulk(x$bulk, x$reference, labels = "cell_type", method = "music", batch = "batch",
                          verbose = FALSE)
  expect_equal(unname(rowSums(music)), rep(1, 8), tolerance = 1e-6)
  scaden <- DeconvolveBulk(x$bulk, x$reference, labels = "cell_type", max_steps = 5, n_pseudobulks = 32,
                           cells_per_pseudobulk = 20, verbose = FALSE)
  expect_equal(unname(rowSums(scaden)), rep(1, 8), tolerance = 1e-5)
  expect_true(dir.exists(attr(scaden, "record")$model_dir))
})

test_that("DeconvolveBulk: a SummarizedExperiment gets colData columns; bad bulks are refused in R's words", {
  x <- bulk_and_reference()
  se <- SummarizedExperiment::SummarizedExperiment(assays = list(counts = x$bulk))
  out <- DeconvolveBulk(se, x$reference, labels = "cell_type", method = "nnls", verbose = FALSE)
  expect_true(all(paste0("nnls_", c("B", "Mono_CD14", "NK", "T_CD4", "T_CD8")) %in% names(SummarizedExperiment::colData(out))))
  expect_identical(S4Vectors::metadata(out)$isthmus$nnls$method, "nnls")
  tpm <- t(t(x$bulk) / colSums(x$bulk)) * 1e6
  expect_error(DeconvolveBulk(tpm, x$reference, method = "nnls", verbose = FALSE),
               "non-integer values, not counts. For TPM or FPKM set bulk.values = \"tpm\"")
  from_tpm <- DeconvolveBulk(tpm, x$reference, method = "nnls", bulk.values = "tpm", verbose = FALSE)
  expect_identical(attr(from_tpm, "record")$params$bulk_values, "tpm")
  ensembl <- x$bulk
  rownames(ensembl) <- paste0("ENSG", seq_len(nrow(ensembl)))
  expect_error(DeconvolveBulk(ensembl, x$reference, method = "nnls", verbose = FALSE),
               "the reference has 0 of the bulk's .* genes \\(0%\\)")
  expect_error(DeconvolveBulk(x$bulk, x$reference, method = "music", verbose = FALSE), "music needs batch")
})

test_that("CompareMethods(task = 'bulk_deconvolution') holds each batch out in turn", {
  obj <- pbmc3_seurat()
  obj <- obj[, !obj$cell_type %in% c("HSC", "MK")]  # too few cells for a reference profile
  table <- CompareMethods(obj, task = "bulk_deconvolution", methods = c("nnls", "music"), batch = "batch",
                          labels = "cell_type", query.batches = "5p", n_bulks = 20, verbose = FALSE)
  expect_setequal(unique(table$category), c("Bulk deconvolution (5p)", "Time"))
  expect_setequal(table$metric, c("rmse", "jsd", "pearson", "seconds"))
  rmse <- table[table$metric == "rmse", ]
  expect_true(all(rmse$value > 0 & rmse$value < 0.5))
})

test_that("DeconvolveBulk dispatches on SummarizedExperiment subclasses (as a DESeqDataSet is one)", {
  x <- bulk_and_reference()
  methods::setClass("IsthmusTestBulk", contains = "SummarizedExperiment", where = globalenv())
  on.exit(methods::removeClass("IsthmusTestBulk", where = globalenv()), add = TRUE)
  se <- methods::new("IsthmusTestBulk", SummarizedExperiment::SummarizedExperiment(assays = list(counts = x$bulk)))
  out <- DeconvolveBulk(se, x$reference, labels = "cell_type", method = "nnls", verbose = FALSE)
  expect_s4_class(out, "IsthmusTestBulk")
  expect_true("nnls_B" %in% names(SummarizedExperiment::colData(out)))
})

test_that("DeconvolveBulk and PredictPerturbation run in the worker process too", {
  withr::local_options(isthmus.backend = "worker")
  x <- bulk_and_reference()
  fractions <- DeconvolveBulk(x$bulk, x$reference, labels = "cell_type", method = "nnls", verbose = FALSE)
  expect_equal(unname(rowSums(fractions)), rep(1, 8), tolerance = 1e-6)
  predicted <- PredictPerturbation(kang_seurat(step = 4), predict = "B cells", method = "linear")
  expect_s3_class(isthmus_records(predicted, "predict_perturbation")$scores, "data.frame")
})
