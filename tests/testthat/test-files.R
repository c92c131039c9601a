test_that(".h5ad written from R reads back identical (Seurat and SCE)", {
  data("pbmc_small", package = "SeuratObject")
  file <- withr::local_tempfile(fileext = ".h5ad")
  quietly(write_h5ad(pbmc_small, file))
  expect_true(file.exists(file))
  back <- read_h5ad(file)
  expect_same_seurat(back, pbmc_small)
  sce <- quietly(Seurat::as.SingleCellExperiment(pbmc_small))
  file2 <- withr::local_tempfile(fileext = ".h5ad")
  write_h5ad(sce, file2)
  back_sce <- read_h5ad(file2, to = "SingleCellExperiment")
  expect_identical(SummarizedExperiment::assay(back_sce, "logcounts"), SummarizedExperiment::assay(sce, "logcounts"))
})

test_that(".h5mu written from R reads back identical", {
  obj <- mop_seurat()
  file <- withr::local_tempfile(fileext = ".h5mu")
  quietly(write_h5mu(obj, file))
  expect_same_seurat(quietly(read_h5mu(file)), obj)
})

test_that("a .h5ad made by Python reads into Seurat with its chunked reader", {
  obj <- quietly(read_h5ad(extdata("pbmc_3batch_symphony.h5ad")))
  expect_equal(dim(obj), c(1767, 1200))
  expect_true(all(c("batch", "cell_type") %in% names(obj@meta.data)))
  expect_equal(sum(layer_data(obj, "data")),
               py_value(reticulate::import("anndata")$read_h5ad(extdata("pbmc_3batch_symphony.h5ad")), "X.sum()"))
})

test_that("big vectors come over in chunks into one R vector", {
  handles <- reticulate::import("isthmus.io._parts")$HANDLES
  np <- reticulate::import("numpy", convert = FALSE)
  h <- handles$add(np$arange(0, 10, dtype = "float64"), "double")
  expect_identical(isthmus:::.fetch_vector(h, chunk = 3), as.numeric(0:9))
  h2 <- handles$add(np$arange(0L, 7L, dtype = "int64"), "integer")
  expect_identical(isthmus:::.fetch_vector(h2, chunk = 2), 0:6)
})
