test_that("duplicated cell names: clear error, object untouched", {
  data("pbmc_small", package = "SeuratObject")
  sce <- quietly(Seurat::as.SingleCellExperiment(pbmc_small))
  colnames(sce)[2] <- colnames(sce)[1]
  before <- sce
  expect_error(as_anndata(sce), "duplicated names.*make.unique")
  expect_identical(sce, before)
})

test_that("mismatched dimnames: clear error", {
  data("pbmc_small", package = "SeuratObject")
  obj <- pbmc_small
  colnames(obj[["RNA"]]@counts)[1] <- "not-a-cell"
  expect_error(as_anndata(obj), "do not match")
})

test_that("a dense matrix where a sparse one is expected: clear error naming the fix", {
  data("pbmc_small", package = "SeuratObject")
  obj <- pbmc_small
  obj[["RNA"]]@counts <- as.matrix(obj[["RNA"]]@counts)
  expect_error(as_anndata(obj), "dense matrix where a sparse one is expected.*CsparseMatrix")
})

test_that("an unknown assay or X is named in the error", {
  data("pbmc_small", package = "SeuratObject")
  expect_error(as_anndata(pbmc_small, assay = "ADT"), "assay 'ADT' is not in the object")
  expect_error(as_anndata(pbmc_small, x_layer = "spliced"), "no 'spliced'")
  expect_error(as_anndata(list()), "converts Seurat and SingleCellExperiment")
  expect_error(as_seurat(list()), "Python AnnData or MuData")
})

test_that("more non-zeros than a dgCMatrix holds: clear error before any work", {
  buffers <- reticulate::import("isthmus.io._buffers")
  expect_error(buffers$check_nnz_fits_r(2^31, "X"), "2\\^31-1")
  expect_silent(buffers$check_nnz_fits_r(2^31 - 1, "X"))
})

test_that("a failed conversion back leaves nothing half-done", {
  expect_error(read_h5ad(tempfile(fileext = ".h5ad")), "file not found")
})
