test_that("duplicated cell names: clear error, object untouched", {
  data("pbmc_small", package = "SeuratObject")
  sce <- quietly(Seurat::as.SingleCellExperiment(pbmc_small))
  colnames(sce)[2] <- colnames(sce)[1]
  before <- sce
  expect_error(as_anndata(sce), "duplicated names.*make.unique")
  expect_identical(sce, before)
})

test_that("mismatched dimnames: clear error", {
  skip_if(utils::packageVersion("SeuratObject") >= "5.0.0", "SeuratObject 5 refuses to build such an object itself")
  data("pbmc_small", package = "SeuratObject")
  obj <- pbmc_small
  colnames(obj[["RNA"]]@counts)[1] <- "not-a-cell"
  expect_error(as_anndata(obj), "do not match")
})

test_that("a dense matrix where a sparse one is expected: clear error naming the fix", {
  data("pbmc_small", package = "SeuratObject")
  obj <- pbmc_small
  dense <- as.matrix(layer_data(obj, "counts"))
  if (inherits(obj[["RNA"]], "Assay5")) {
    SeuratObject::LayerData(obj, assay = "RNA", layer = "counts") <- dense
  } else {
    obj[["RNA"]]@counts <- dense
  }
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

test_that("AnnData parts R has no slot for are reported; raw and varp find one", {
  data("pbmc_small", package = "SeuratObject")
  adata <- py_value(quietly(as_anndata(pbmc_small, copy = TRUE)), "copy()")
  reticulate::py_set_attr(reticulate::import_main(), "_a", adata)
  reticulate::py_run_string(paste(
    "import pandas as pd, numpy as np",
    "_a.raw = _a",
    "_a.varp['corr'] = np.eye(_a.n_vars)",
    "_a.obsm['scores'] = pd.DataFrame({'s1': np.arange(_a.n_obs, dtype=float)}, index=_a.obs_names)",
    sep = "\n"))
  expect_warning(back <- as_seurat(adata), "not carried")
  report <- conversion_report(back)
  expect_setequal(report$part[report$status == "not carried"], c("adata.raw.varm", "obsm scores"))
  # raw is an assay of its own, varp the assay's misc$varp; both go back where they were
  expect_true("raw" %in% SeuratObject::Assays(back))
  again <- quietly(as_anndata(back))
  expect_identical(py_value(again, "raw.shape"), list(ncol(pbmc_small), nrow(pbmc_small)))
  expect_identical(py_value(again, "raw.X.sum()"), py_value(adata, "raw.X.sum()"))
  expect_identical(py_value(again, "varp['corr'].diagonal().sum()"), as.numeric(nrow(pbmc_small)))
  # an SCE keeps the data frame as a reducedDim, under the obsm key as it is spelled
  sce <- quietly(as_sce(adata))
  expect_identical(SingleCellExperiment::reducedDim(sce, "scores")$s1, as.numeric(seq_len(ncol(pbmc_small)) - 1))
})
