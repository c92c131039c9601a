# The spatial verbs from R on the bundled real data (DLPFC Visium slice; the hippocampus Visium spots
# with their single-cell reference): R -> Python -> R for real, models trained for a few epochs.
# Quality is measured by bench/, not here.

hippocampus <- function() {
  if (is.null(.cache$hippocampus)) {
    .cache$hippocampus <- list(spatial = quietly(read_h5ad(extdata("hippocampus_spatial_visium.h5ad"))),
                               reference = quietly(read_h5ad(extdata("hippocampus_reference_sc.h5ad"))))
  }
  .cache$hippocampus
}

dlpfc_seurat <- function() {
  if (is.null(.cache$dlpfc)) .cache$dlpfc <- dlpfc_visium_seurat()
  .cache$dlpfc
}

test_that("FindSpatialDomains on a Visium Seurat object: domains, agreement, reduction, record; plottable", {
  obj <- dlpfc_seurat()
  before <- obj
  out <- FindSpatialDomains(obj, method = "banksy", n.domains = 7, n.seeds = 2, verbose = FALSE)
  expect_identical(obj, before)
  expect_true(is.factor(out$banksy_domain))
  expect_lte(nlevels(out$banksy_domain), 7)
  expect_true(all(out$banksy_agreement >= 0.5 & out$banksy_agreement <= 1))
  expect_equal(dim(SeuratObject::Embeddings(out, "banksy")), c(ncol(obj), 20))
  expect_identical(SeuratObject::Key(out[["banksy"]]), "BANKSY_")
  record <- isthmus_records(out, "banksy")
  expect_equal(record$params$n_domains, 7)
  expect_length(record$params$seed_ari, 2)
  # the domains follow the cortex layers (measured ARI about 0.5 on these 1000 genes; PCA about 0.35)
  out$layer[out$layer == "nan"] <- NA
  scores <- CompareDomains(out, truth = "layer")
  expect_identical(scores$domains, "banksy_domain")
  expect_gt(scores$ARI, 0.35)
  expect_equal(scores$ARI, mclust_free_ari(out$layer[!is.na(out$layer)], out$banksy_domain[!is.na(out$layer)]))
  expect_equal(scores$n_spots, sum(!is.na(out$layer)))
  expect_error(CompareDomains(obj, truth = "layer"), "no domain columns")
  plot <- Seurat::SpatialDimPlot(out, group.by = "banksy_domain")
  expect_s3_class(plot, "ggplot")
  expect_no_error(ggplot2::ggplot_build(plot))
})

test_that("FindSpatialDomains: the graph model from R repeats with a seed; the plain PCA leaves 'pca' alone", {
  obj <- hippocampus()$spatial
  gat <- FindSpatialDomains(obj, n.domains = 4, n.seeds = 2, max_epochs = 5, seed.use = 3, verbose = FALSE)
  again <- FindSpatialDomains(obj, n.domains = 4, n.seeds = 2, max_epochs = 5, seed.use = 3, verbose = FALSE)
  expect_identical(gat$gat_domain, again$gat_domain)
  expect_equal(SeuratObject::Embeddings(gat, "gat"), SeuratObject::Embeddings(again, "gat"))
  expect_equal(ncol(SeuratObject::Embeddings(gat, "gat")), 30)
  expect_equal(isthmus_records(gat, "gat")$params$seeds, c(3, 4))
  shown <- reticulate::py_capture_output(FindSpatialDomains(obj, method = "gat", n.domains = 4, n.seeds = 1,
                                                            max_epochs = 10, verbose = TRUE))
  expect_match(shown, "isthmus GAT seed 0: epoch 10/10  loss")
  pca <- FindSpatialDomains(obj, method = "pca", n.seeds = 1, verbose = FALSE)
  expect_true("domain_pca" %in% SeuratObject::Reductions(pca))
  expect_false("pca" %in% SeuratObject::Reductions(pca))
})

test_that("spatial verbs take a SingleCellExperiment with coordinates; missing coordinates are explained", {
  obj <- hippocampus()$spatial
  xy <- as.matrix(obj@images[[1]]@coordinates[, c("x", "y")])
  sce <- SingleCellExperiment::SingleCellExperiment(assays = list(counts = layer_data(obj, "counts")))
  expect_error(FindSpatialDomains(sce, method = "pca", verbose = FALSE), "no coordinates")
  SingleCellExperiment::reducedDim(sce, "spatial") <- xy
  out <- FindSpatialDomains(sce, method = "banksy", n.domains = 4, n.seeds = 1, verbose = FALSE)
  expect_true("BANKSY" %in% SingleCellExperiment::reducedDimNames(out))
  expect_length(out$banksy_domain, ncol(sce))
  no_image <- obj
  no_image@images <- list()
  expect_error(FindSpatialDomains(no_image, verbose = FALSE), "no image holding spot coordinates")
  dup <- sce
  SingleCellExperiment::reducedDim(dup, "spatial")[2, ] <- xy[1, ]
  expect_error(FindSpatialDomains(dup, method = "pca", verbose = FALSE), "2 spots share their coordinates")
})

test_that("DeconvolveSpots: proportions as an assay and meta.data columns; DestVI trains from R", {
  pair <- hippocampus()
  nnls <- DeconvolveSpots(pair$spatial, pair$reference, labels = "cell_type", method = "nnls", verbose = FALSE)
  types <- sort(unique(pair$reference$cell_type))
  props <- as.matrix(nnls@meta.data[paste0("nnls_", types)])
  expect_equal(unname(rowSums(props)), rep(1, ncol(pair$spatial)), tolerance = 1e-6)
  expect_true(all(props >= 0))
  expect_true("nnls" %in% SeuratObject::Assays(nnls))
  expect_equal(dim(nnls[["nnls"]]), c(length(types), ncol(pair$spatial)))
  expect_true(all(as.character(nnls$nnls_top) %in% types))
  expect_no_error(ggplot2::ggplot_build(Seurat::SpatialFeaturePlot(nnls, features = "nnls_Astrocyte")))
  destvi <- DeconvolveSpots(pair$spatial, pair$reference, labels = "cell_type", method = "destvi",
                            max_epochs = 3, reference_epochs = 3, verbose = FALSE)
  record <- isthmus_records(destvi, "destvi")
  expect_true(dir.exists(record$model_dir))
  expect_equal(unname(rowSums(as.matrix(destvi@meta.data[paste0("destvi_", types)]))), rep(1, ncol(pair$spatial)),
               tolerance = 1e-5)
  expect_error(DeconvolveSpots(pair$spatial, pair$reference, labels = "nope", method = "nnls", verbose = FALSE),
               "column 'nope' is not in the cell metadata")
  expect_error(DeconvolveSpots(pair$spatial, pair$reference[1:20, ], labels = "cell_type", method = "nnls",
                               verbose = FALSE), "genes .*at least 30% are needed")
})

test_that("MapCells: imputed genes as an assay, cell-type maps; Tangram and kNN from R", {
  pair <- hippocampus()
  missing <- setdiff(rownames(pair$reference), rownames(pair$spatial))
  tangram <- MapCells(pair$spatial, pair$reference, labels = "cell_type", max_epochs = 20, verbose = FALSE)
  expect_true("tangram" %in% SeuratObject::Assays(tangram))
  imputed <- layer_data(tangram[["tangram"]], "data")
  expect_equal(ncol(imputed), ncol(pair$spatial))
  expect_equal(nrow(imputed), length(missing))
  expect_true(all(imputed >= 0))
  types <- sort(unique(pair$reference$cell_type))
  expect_equal(unname(rowSums(as.matrix(tangram@meta.data[paste0("tangram_", types)]))),
               rep(1, ncol(pair$spatial)), tolerance = 1e-5)
  knn <- MapCells(pair$spatial, pair$reference, method = "knn", genes = missing[1:5], verbose = FALSE)
  expect_equal(nrow(knn[["knn"]]), 5)
  expect_false(any(grepl("^knn_", names(knn@meta.data))))  # no labels, no cell-type maps
  expect_error(MapCells(pair$spatial, pair$reference, genes = "NotAGene", method = "knn", verbose = FALSE),
               "NotAGene")
})

test_that("SpatialInteractions: a tidy table and a plot; the spatial test differs from the non-spatial one", {
  obj <- FindSpatialDomains(hippocampus()$spatial, method = "banksy", n.domains = 4, n.seeds = 1,
                            verbose = FALSE)
  png <- tempfile(fileext = ".png")
  spatial <- SpatialInteractions(obj, labels = "banksy_domain", n_perms = 200, plot = png, verbose = FALSE)
  expect_named(spatial, c("source", "target", "ligand", "receptor", "score", "pvalue", "fdr", "n_pairs"))
  expect_gt(nrow(spatial), 0)
  expect_true(all(spatial$pvalue > 0 & spatial$pvalue <= 1))
  expect_false(is.unsorted(spatial$pvalue))
  expect_true(file.exists(attr(spatial, "png")))
  nonspatial <- SpatialInteractions(obj, labels = "banksy_domain", method = "nonspatial", n_perms = 200,
                                    verbose = FALSE)
  expect_false(isTRUE(all.equal(spatial$score, nonspatial$score)))
  own <- data.frame(ligand = c("App", "Apoe"), receptor = c("Aplp1", "Lrp1_Ldlr"))
  custom <- SpatialInteractions(obj, labels = "banksy_domain", resource = own, n_perms = 50, verbose = FALSE)
  expect_true(all(custom$ligand %in% own$ligand))
  expect_error(SpatialInteractions(obj, labels = "banksy_domain", resource = data.frame(a = 1), verbose = FALSE),
               "needs columns 'ligand' and 'receptor'")
})

test_that("the cerebellum Slide-seq pair end to end from R: deconvolution and mapping on SlideSeq coordinates", {
  beads <- quietly(read_h5ad(extdata("cerebellum_spatial_slideseq.h5ad")))
  reference <- quietly(read_h5ad(extdata("cerebellum_reference_sc.h5ad")))
  expect_true(inherits(beads@images[[1]], "SlideSeq"))
  out <- DeconvolveSpots(beads, reference, labels = "cell_type", method = "destvi", max_epochs = 3,
                         reference_epochs = 3, verbose = FALSE)
  out <- DeconvolveSpots(out, reference, labels = "cell_type", method = "nnls", verbose = FALSE)
  types <- sort(unique(reference$cell_type))
  for (method in c("destvi", "nnls")) {
    props <- as.matrix(out@meta.data[paste0(method, "_", types)])
    expect_equal(unname(rowSums(props)), rep(1, ncol(beads)), tolerance = 1e-5)
  }
  # granule cells dominate cerebellar Slide-seq beads: the baseline finds them most often
  expect_identical(names(which.max(table(out$nnls_top))), "Granule")
  out <- MapCells(out, reference, labels = "cell_type", method = "tangram", max_epochs = 10, verbose = FALSE)
  expect_true("tangram" %in% SeuratObject::Assays(out))
  out <- FindSpatialDomains(out, method = "banksy", n.domains = 3, n_neighbors = 10, n.seeds = 1, verbose = FALSE)
  expect_no_error(ggplot2::ggplot_build(Seurat::SpatialDimPlot(out, group.by = "nnls_top")))
  expect_setequal(names(isthmus_records(out)), c("destvi", "nnls", "tangram", "banksy"))
})

test_that("a SpatialExperiment's spatialCoords() feed the spatial verbs", {
  skip_if_not_installed("SpatialExperiment")  # not in this machine's Debian; run in the trixie root
  pair <- hippocampus()
  xy <- as.matrix(pair$spatial@images[[1]]@coordinates[, c("x", "y")])
  spe <- SpatialExperiment::SpatialExperiment(assays = list(counts = layer_data(pair$spatial, "counts")),
                                              spatialCoords = xy)
  out <- FindSpatialDomains(spe, method = "banksy", n.domains = 4, n.seeds = 1, verbose = FALSE)
  expect_s4_class(out, "SpatialExperiment")
  expect_length(out$banksy_domain, ncol(spe))
  from_seurat <- FindSpatialDomains(pair$spatial, method = "banksy", n.domains = 4, n.seeds = 1, verbose = FALSE)
  expect_identical(as.character(out$banksy_domain), as.character(from_seurat$banksy_domain))
  ref <- SingleCellExperiment::SingleCellExperiment(assays = list(counts = layer_data(pair$reference, "counts")),
                                                    colData = S4Vectors::DataFrame(pair$reference@meta.data))
  out <- DeconvolveSpots(out, ref, labels = "cell_type", method = "nnls", verbose = FALSE)
  expect_true("nnls_top" %in% names(SummarizedExperiment::colData(out)))
  # the other spatial verbs take it too
  out <- MapCells(out, ref, labels = "cell_type", method = "knn", verbose = FALSE)
  expect_true("knn" %in% c(SummarizedExperiment::assayNames(out), SingleCellExperiment::altExpNames(out)))
  scores <- CompareDomains(out, truth = "nnls_top")
  expect_identical(scores$domains, "banksy_domain")
  pairs <- SpatialInteractions(out, labels = "banksy_domain", n_perms = 50, verbose = FALSE)
  expect_true(nrow(pairs) > 0)
  expect_s4_class(out, "SpatialExperiment")
})

test_that("CompareMethods(task = 'deconvolution') scores the methods on pseudo-spots of the user's reference", {
  reference <- hippocampus()$reference
  scores <- CompareMethods(reference, task = "deconvolution", methods = "nnls", labels = "cell_type", n_spots = 60L,
                           png = tempfile(fileext = ".png"), verbose = FALSE)
  expect_setequal(scores$metric, c("rmse", "jsd", "pearson", "seconds"))
  expect_gt(scores$value[scores$metric == "pearson"], 0.6)
  expect_true(file.exists(attr(scores, "png")))
})
