# RNA velocity from R: veloVI and scVelo on the bundled pancreas cells (assays spliced / unspliced),
# run for real through Python; every other cell and few epochs, to keep the file quick.

pancreas_small <- function() {
  obj <- pancreas_seurat()
  obj[, seq(1, ncol(obj), by = 2)]
}

pancreas_transitions <- list("Ductal" = "Ngn3 low EP", "Ngn3 low EP" = "Ngn3 high EP",
                             "Ngn3 high EP" = "Pre-endocrine",
                             "Pre-endocrine" = c("Alpha", "Beta", "Delta", "Epsilon"))

test_that("RunVelocity with veloVI adds the velocity, time, uncertainty, a UMAP and the velocity on it", {
  obj <- pancreas_small()
  expect_false("umap" %in% SeuratObject::Reductions(obj))
  out <- RunVelocity(obj, method = "velovi", n_top_genes = 800, max_epochs = 15, n_samples = 5L, verbose = FALSE)
  cells <- colnames(obj)
  expect_identical(rownames(SeuratObject::Embeddings(out, "umap")), cells)  # computed, as none was there
  arrows <- SeuratObject::Embeddings(out, "velovi_velocity_umap")
  expect_equal(dim(arrows), c(length(cells), 2))
  expect_true(all(is.finite(arrows)))
  velocity <- layer_data(out[["velovi_velocity"]], "data")
  expect_identical(colnames(velocity), cells)
  expect_true(all(rownames(velocity) %in% rownames(obj[["spliced"]])))
  expect_gt(nrow(velocity), 10)
  expect_lt(nrow(velocity), 800)
  meta <- out@meta.data
  expect_true(all(meta$velovi_latent_time >= 0 & meta$velovi_latent_time <= 1))
  expect_gt(stats::sd(meta$velovi_latent_time), 0.05)
  expect_true(all(meta$velovi_uncertainty >= 0))
  expect_true(all(is.finite(meta$velovi_confidence)))
  record <- isthmus_records(out, "velovi")
  expect_true(dir.exists(record$model_dir))
  expect_equal(record$params$n_genes_fitted, nrow(velocity))
  # the counts are untouched
  expect_identical(layer_data(out[["unspliced"]], "counts"), layer_data(obj[["unspliced"]], "counts"))

  # scVelo beside it on the same UMAP, then both scored and drawn
  both <- RunVelocity(out, method = "scvelo", mode = "stochastic", n_top_genes = 800, verbose = FALSE)
  expect_true(all(c("velovi_velocity_umap", "scvelo_velocity_umap") %in% SeuratObject::Reductions(both)))
  expect_identical(SeuratObject::Embeddings(both, "umap"), SeuratObject::Embeddings(out, "umap"))  # reused
  scores <- VelocityScores(both, group.by = "clusters", transitions = pancreas_transitions)
  expect_setequal(unique(scores$method), c("velovi", "scvelo"))
  expect_setequal(unique(scores$metric), c("CBDir", "ICCoh"))
  expect_equal(sum(scores$metric == "CBDir" & scores$method == "scvelo"), 7 + 1)  # 7 transitions and their mean
  expect_true(all(abs(scores$value[scores$n_cells > 0]) <= 1))
  plot <- VelocityPlot(both, method = "scvelo", group.by = "clusters")
  expect_s3_class(plot, "ggplot")
  built <- ggplot2::ggplot_build(plot)
  expect_length(built$data, 2)
  expect_gt(nrow(built$data[[2]]), 20)  # arrows on the grid
})

test_that("scVelo on the object's own reduction, with scVelo's stream plot", {
  obj <- pancreas_small()
  png <- withr::local_tempfile(fileext = ".png")
  out <- RunVelocity(obj, method = "scvelo", mode = "stochastic", reduction = "pca", group.by = "clusters",
                     png = png, verbose = FALSE)
  expect_false("umap" %in% SeuratObject::Reductions(out))
  expect_equal(dim(SeuratObject::Embeddings(out, "scvelo_velocity_pca")), c(ncol(obj), 2))
  expect_equal(out$scvelo_uncertainty, 1 - out$scvelo_confidence, tolerance = 1e-6)
  expect_gt(file.size(png), 5000)
  scores <- VelocityScores(out, group.by = "clusters", transitions = c("Ngn3 high EP -> Pre-endocrine"),
                           reduction = "pca", coherence = "embedding")
  expect_equal(nrow(scores), 2 + 8 + 1)  # CBDir: the transition and the mean; ICCoh: 8 clusters and the mean
})

test_that("a SingleCellExperiment with spliced / unspliced assays works the same way", {
  obj <- pancreas_small()
  sce <- SingleCellExperiment::SingleCellExperiment(
    assays = list(spliced = layer_data(obj[["spliced"]], "counts"), unspliced = layer_data(obj[["unspliced"]], "counts")),
    colData = S4Vectors::DataFrame(clusters = obj$clusters, row.names = colnames(obj)))
  out <- RunVelocity(sce, method = "scvelo", mode = "stochastic", n_top_genes = 800, verbose = FALSE)
  expect_true(all(c("UMAP", "SCVELO_VELOCITY_UMAP") %in% SingleCellExperiment::reducedDimNames(out)))
  expect_true("scvelo_velocity" %in% SingleCellExperiment::altExpNames(out))
  expect_identical(colnames(SingleCellExperiment::altExp(out, "scvelo_velocity")), colnames(sce))
  expect_true(all(c("scvelo_latent_time", "scvelo_uncertainty", "scvelo_confidence") %in%
                    names(SummarizedExperiment::colData(out))))
  expect_identical(isthmus_records(out, "scvelo")$method, "scvelo")
  expect_s3_class(VelocityPlot(out, method = "scvelo", reduction = "UMAP", group.by = "clusters"), "ggplot")
  scores <- VelocityScores(out, group.by = "clusters", transitions = pancreas_transitions)
  expect_identical(unique(scores$method), "scvelo")
  expect_error(RunVelocity(sce, unspliced = "ambiguous"), "no assay 'ambiguous'.*spliced, unspliced")
})

test_that("bad input is named and a failed call leaves the object as it was", {
  obj <- pancreas_small()
  expect_error(RunVelocity(obj, unspliced = "ambiguous"), "no assay 'ambiguous'")
  expect_error(RunVelocity(obj, reduction = "tsne"), "no reduction 'tsne'")
  expect_error(VelocityPlot(obj), "run RunVelocity")
  make_assay <- if (inherits(obj[["unspliced"]], "Assay5")) SeuratObject::CreateAssay5Object else SeuratObject::CreateAssayObject
  unspliced <- layer_data(obj[["unspliced"]], "counts")
  # SeuratObject 5 warns when an assay is replaced by one of other features: remove it first
  fewer <- obj
  fewer[["unspliced"]] <- NULL
  fewer[["unspliced"]] <- make_assay(counts = unspliced[-1, ])
  expect_error(RunVelocity(fewer, verbose = FALSE),
               "spliced.*2000 genes x 370 cells.*unspliced.*1999 genes x 370 cells.*differ in shape")
  renamed <- obj
  other <- unspliced
  rownames(other) <- paste0("other-", rownames(other))
  renamed[["unspliced"]] <- NULL
  renamed[["unspliced"]] <- make_assay(counts = other)
  expect_error(RunVelocity(renamed, verbose = FALSE), "hold different genes: 2000 of the spliced genes")
  halved <- obj
  halved[["unspliced"]] <- make_assay(counts = unspliced / 2)
  before <- halved
  expect_error(RunVelocity(halved, method = "scvelo", verbose = FALSE), "non-integer")
  expect_identical(halved, before)
  expect_error(VelocityScores(obj, group.by = "clusters", transitions = pancreas_transitions), "RunVelocity")
})
