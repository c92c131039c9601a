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
  # an antibody without counts in any cell is left out, with an R warning naming it
  zero <- adt
  zero[1, ] <- 0
  silent <- obj
  silent[["ADT"]] <- make_assay(counts = zero)
  expect_warning(out <- IntegrateModalities(silent, method = "pca", n_comps = 5),
                 paste0("1 antibodies have no counts in any cell and are left out: ", rownames(adt)[1]), fixed = TRUE)
  expect_true("protein_pca" %in% SeuratObject::Reductions(out))
})

# ---- RNA + ATAC: MultiVI and the per-modality PCA / LSI baseline (MOp SNARE-seq2, 600 nuclei) ----

test_that("RunMultiVI adds the joint space of RNA and ATAC, with the record", {
  obj <- mop_seurat()
  out <- RunMultiVI(obj, batch = "batch", n_latent = 5, max_epochs = 2, verbose = FALSE)
  emb <- SeuratObject::Embeddings(out, "multivi")
  expect_equal(dim(emb), c(ncol(obj), 5))
  expect_identical(rownames(emb), colnames(obj))
  expect_true(all(is.finite(emb)))
  record <- isthmus_records(out, "multivi")
  expect_equal(record$params$n_paired, ncol(obj))
  expect_identical(record$params$batch_key, "batch")
  expect_true(dir.exists(record$model_dir))
  expect_identical(layer_data(out[["ATAC"]], "counts"), layer_data(obj[["ATAC"]], "counts"))
})

test_that("partly paired: nuclei without ATAC keep their place in MultiVI; the baselines refuse them", {
  obj <- mop_seurat()
  atac <- layer_data(obj[["ATAC"]], "counts")
  lost <- seq_len(ncol(obj)) %% 10 < 3 # the ATAC of 30% of nuclei, as read_h5mu stores cells a modality lacks
  atac[, lost] <- 0
  atac <- Matrix::drop0(atac)
  make_assay <- if (inherits(obj[["ATAC"]], "Assay5")) SeuratObject::CreateAssay5Object else SeuratObject::CreateAssayObject
  obj[["ATAC"]] <- make_assay(counts = atac)
  out <- RunMultiVI(obj, max_epochs = 2, verbose = FALSE)
  expect_equal(nrow(SeuratObject::Embeddings(out, "multivi")), ncol(obj))
  params <- isthmus_records(out, "multivi")$params
  expect_equal(c(params$n_paired, params$n_rna_only), c(sum(!lost), sum(lost)))
  before <- obj
  expect_error(IntegrateModalities(obj, method = "pca"), "180 of 600 cells lack one modality")
  expect_identical(obj, before)
})

test_that("the classical route: PCA of RNA, LSI of ATAC, then Seurat's weighted nearest neighbours", {
  obj <- mop_seurat()
  out <- IntegrateModalities(obj, method = "pca", atac.assay = "ATAC", batch = "batch", n_comps = 15)
  expect_equal(dim(SeuratObject::Embeddings(out, "rna_pca")), c(ncol(obj), 15))
  expect_equal(dim(SeuratObject::Embeddings(out, "atac_lsi")), c(ncol(obj), 15))
  expect_true("rna_atac_pca" %in% names(isthmus_records(out)))
  wnn <- quietly(Seurat::FindMultiModalNeighbors(out, reduction.list = list("rna_pca", "atac_lsi"),
                                                 dims.list = list(1:15, 1:15), verbose = FALSE))
  wnn <- quietly(Seurat::FindClusters(wnn, graph.name = "wsnn", resolution = 0.8, verbose = FALSE))
  # the joint clusters follow the cell types (a real check: shuffled cells score about 0)
  agreement <- mclust_free_ari(wnn$seurat_clusters, obj$cell_type)
  expect_gt(agreement, 0.2)
  expect_lt(mclust_free_ari(withr::with_seed(1, sample(wnn$seurat_clusters)), obj$cell_type), 0.05)
  # the same scores for reductions and for WNN's neighbour graph, which has no embedding
  scores <- CompareEmbeddings(wnn, labels = "cell_type", reductions = c("rna_pca", "atac_lsi"), neighbors = "weighted.nn")
  expect_setequal(scores$method, c("rna_pca", "atac_lsi", "weighted.nn"))
  value <- function(method, metric) scores$value[scores$method == method & scores$metric == metric]
  expect_gt(value("weighted.nn", "leiden_ari"), 0.2)
  expect_true(is.na(value("weighted.nn", "silhouette_label")))
  expect_gt(value("rna_pca", "silhouette_label"), 0)
  expect_error(CompareEmbeddings(wnn, labels = "cell_type", reductions = "umap"), "no reduction 'umap'")
})

test_that("a SingleCellExperiment with the peaks in an altExp runs MultiVI", {
  obj <- mop_seurat()
  atac <- SingleCellExperiment::SingleCellExperiment(assays = list(counts = layer_data(obj[["ATAC"]], "counts")))
  sce <- SingleCellExperiment::SingleCellExperiment(assays = list(counts = layer_data(obj[["RNA"]], "counts")),
                                                    altExps = list(ATAC = atac))
  out <- RunMultiVI(sce, n_latent = 4, max_epochs = 1, verbose = FALSE)
  expect_equal(dim(SingleCellExperiment::reducedDim(out, "MULTIVI")), c(ncol(sce), 4))
})

test_that("bad input: genes as ATAC, an ambiguous baseline, a protein assay for MultiVI; nothing changes", {
  obj <- mop_seurat()
  genes <- layer_data(obj[["RNA"]], "counts")
  make_assay <- if (inherits(obj[["RNA"]], "Assay5")) SeuratObject::CreateAssay5Object else SeuratObject::CreateAssayObject
  obj[["GA"]] <- make_assay(counts = genes)
  before <- obj
  expect_error(RunMultiVI(obj, atac.assay = "GA", max_epochs = 1, verbose = FALSE), "not peak regions")
  expect_error(RunMultiVI(obj, protein.assay = "GA", verbose = FALSE), "give atac.assay")
  obj[["ADT"]] <- make_assay(counts = genes[1:20, ])
  expect_error(IntegrateModalities(obj, method = "pca"), "say which second modality")
  expect_error(RunMultiVI(before, atac.assay = "peaks", verbose = FALSE), "no assay 'peaks'")
  expect_identical(before[["GA"]], obj[["GA"]])
})
