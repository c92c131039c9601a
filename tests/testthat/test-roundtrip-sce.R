expect_same_sce <- function(got, want) {
  expect_identical(dimnames(got), dimnames(want))
  expect_identical(SummarizedExperiment::assayNames(got), SummarizedExperiment::assayNames(want))
  for (a in SummarizedExperiment::assayNames(want)) {
    expect_identical(SummarizedExperiment::assay(got, a), SummarizedExperiment::assay(want, a), label = paste("assay", a))
  }
  expect_identical(as.list(SummarizedExperiment::colData(got)), as.list(SummarizedExperiment::colData(want)))
  expect_identical(rownames(SummarizedExperiment::colData(got)), rownames(SummarizedExperiment::colData(want)))
  expect_identical(as.list(SummarizedExperiment::rowData(got)), as.list(SummarizedExperiment::rowData(want)))
  expect_identical(SingleCellExperiment::reducedDimNames(got), SingleCellExperiment::reducedDimNames(want))
  for (r in SingleCellExperiment::reducedDimNames(want)) {
    expect_identical(SingleCellExperiment::reducedDim(got, r), SingleCellExperiment::reducedDim(want, r), label = paste("reducedDim", r))
  }
  expect_identical(S4Vectors::metadata(got), S4Vectors::metadata(want))
}

sce_from_seurat <- function(obj) {
  sce <- quietly(Seurat::as.SingleCellExperiment(obj))
  S4Vectors::metadata(sce) <- list(study = "isthmus test", params = list(k = 20L, res = 0.5))
  sce
}

test_that("pbmc_small: SCE -> AnnData -> SCE gives every part back identical", {
  data("pbmc_small", package = "SeuratObject")
  sce <- sce_from_seurat(pbmc_small)
  adata <- as_anndata(sce)
  expect_identical(py_value(adata, "list(obsm.keys())"), c("X_pca", "X_tsne"))
  expect_identical(py_value(adata, "list(layers.keys())"), "counts")
  expect_same_sce(as_sce(adata), sce)
})

test_that("3-batch PBMC: SCE -> AnnData -> SCE round-trips, with X chosen", {
  sce <- sce_from_seurat(pbmc3_seurat())
  adata <- as_anndata(sce, x_layer = "counts")
  expect_equal(py_value(adata, "float(X.sum())"), sum(SummarizedExperiment::assay(sce, "counts")))
  expect_same_sce(as_sce(adata), sce)
})

test_that("SCE colPairs and reducedDim attributes round-trip", {
  data("pbmc_small", package = "SeuratObject")
  sce <- sce_from_seurat(pbmc_small)
  snn <- methods::as(pbmc_small@graphs$RNA_snn, "dgCMatrix")
  dimnames(snn) <- NULL  # colPair<- refuses named indices
  SingleCellExperiment::colPair(sce, "snn") <- snn
  pca <- SingleCellExperiment::reducedDim(sce, "PCA")
  attr(pca, "percentVar") <- seq_len(ncol(pca)) / 100
  SingleCellExperiment::reducedDim(sce, "PCA") <- pca
  back <- as_sce(as_anndata(sce))
  expect_same_sce(back, sce)
  expect_equal(SingleCellExperiment::colPair(back, "snn", asSparse = TRUE),
               SingleCellExperiment::colPair(sce, "snn", asSparse = TRUE))
})

test_that("other sparse classes (triplet, logical) are converted once, to the same values", {
  data("pbmc_small", package = "SeuratObject")
  counts <- layer_data(pbmc_small, "counts")
  sce <- SingleCellExperiment::SingleCellExperiment(list(
    counts = methods::as(counts, "TsparseMatrix"),
    detected = counts > 0
  ))
  expect_warning(adata <- as_anndata(sce, x_layer = "counts"), "logical sparse matrix was carried as numeric")
  back <- as_sce(adata)
  expect_equal(SummarizedExperiment::assay(back, "counts"), counts)
  expect_equal(as.matrix(SummarizedExperiment::assay(back, "detected")), as.matrix(counts > 0) * 1)
})
