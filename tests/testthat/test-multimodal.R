# RNA + protein from R: totalVI and the classical baselines (per-modality PCA, Seurat's WNN) on the
# bundled ECCITE-seq cells (RNA, ADT and HTO assays).

eccite_seurat <- function() quietly(read_h5mu(extdata("citeseq_eccite_500_citefuse.h5mu")))

test_that("RunTotalVI adds the joint space, the denoised protein and the background probability", {
  obj <- eccite_seurat()
  expect_setequal(SeuratObject::Assays(obj), c("RNA", "ADT", "hto"))
  out <- RunTotalVI(obj, max_epochs = 3, n_latent = 6, verbose = FALSE)
  emb <- SeuratObject::Embeddings(out, "totalvi")
  expect_equal(dim(emb), c(ncol(obj), 6))
  expect_identical(rownames(emb), colnames(obj))
  denoised <- layer_data(out[["totalvi_protein"]], "data")
  background <- layer_data(out[["totalvi_background"]], "data")
  expect_identical(rownames(denoised), rownames(obj[["ADT"]]))
  expect_identical(colnames(background), colnames(obj))
  expect_true(all(denoised@x >= 0))
  expect_true(all(background@x >= 0 & background@x <= 1))
  record <- isthmus_records(out, "totalvi")
  expect_true(dir.exists(record$model_dir))
  expect_identical(unlist(record$params$proteins), rownames(obj[["ADT"]]))
  # the input assays are untouched
  expect_identical(layer_data(out[["ADT"]], "counts"), layer_data(obj[["ADT"]], "counts"))
})

test_that("the classical route: per-modality PCA feeds Seurat's weighted nearest neighbours", {
  obj <- eccite_seurat()
  out <- IntegrateModalities(obj, method = "pca", n_comps = 10)
  expect_equal(dim(SeuratObject::Embeddings(out, "rna_pca")), c(ncol(obj), 10))
  expect_equal(dim(SeuratObject::Embeddings(out, "protein_pca")), c(ncol(obj), 10))
  wnn <- quietly(Seurat::FindMultiModalNeighbors(out, reduction.list = list("rna_pca", "protein_pca"),
                                                 dims.list = list(1:10, 1:10), verbose = FALSE))
  expect_true("wsnn" %in% SeuratObject::Graphs(wnn))
  expect_true("rna_protein_pca" %in% names(isthmus_records(out)))
})

test_that("a SingleCellExperiment with the proteins in an altExp works the same way", {
  obj <- eccite_seurat()
  adt <- SingleCellExperiment::SingleCellExperiment(assays = list(counts = layer_data(obj[["ADT"]], "counts")))
  sce <- SingleCellExperiment::SingleCellExperiment(assays = list(counts = layer_data(obj[["RNA"]], "counts")),
                                                    altExps = list(ADT = adt))
  out <- IntegrateModalities(sce, method = "pca", n_comps = 5)
  expect_equal(dim(SingleCellExperiment::reducedDim(out, "PROTEIN_PCA")), c(ncol(sce), 5))
})

test_that("bad input: a missing assay, NA batches, normalised protein values; the object stays as it was", {
  obj <- eccite_seurat()
  expect_error(RunTotalVI(obj, protein.assay = "CITE", verbose = FALSE), "no assay 'CITE'")
  obj$half <- rep(c("a", NA), length.out = ncol(obj))
  expect_error(RunTotalVI(obj, batch = "half", verbose = FALSE), "column 'half' has 250 NA")
  adt <- layer_data(obj[["ADT"]], "counts")
  bad <- obj
  # the same assay class the object has (SeuratObject 5 warns when a v5 assay is replaced by a v3 one)
  make_assay <- if (inherits(obj[["ADT"]], "Assay5")) SeuratObject::CreateAssay5Object else SeuratObject::CreateAssayObject
  bad[["ADT"]] <- make_assay(counts = adt / 2)
  before <- bad
  expect_error(RunTotalVI(bad, max_epochs = 1, verbose = FALSE), "non-integer")
  expect_identical(bad, before)
})
