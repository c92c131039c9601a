# Test objects built from the real data in inst/extdata, the way a Seurat user would build them.

extdata <- function(name) system.file("extdata", name, package = "isthmus", mustWork = TRUE)

quietly <- function(expr) suppressWarnings(suppressMessages(expr))

# A layer of a Seurat object or assay, by the argument each SeuratObject version takes
# (`layer` since 5.0, where `slot` is deprecated; `slot` before).
layer_data <- function(x, layer) {
  if (utils::packageVersion("SeuratObject") >= "5.0.0") SeuratObject::GetAssayData(x, layer = layer)
  else SeuratObject::GetAssayData(x, slot = layer)
}

# counts (genes x cells dgCMatrix) and cell metadata of an .h5ad, read through isthmus's reader
read_counts <- function(name) {
  obj <- quietly(read_h5ad(extdata(name)))
  list(counts = layer_data(obj, "counts"), meta = obj@meta.data)
}

# The 3-chemistry PBMC data through the standard Seurat workflow: every part filled.
pbmc3_seurat <- function() {
  if (!is.null(.cache$pbmc3)) return(.cache$pbmc3)
  x <- read_counts("pbmc_3batch_symphony.h5ad")
  obj <- Seurat::CreateSeuratObject(counts = x$counts, meta.data = x$meta, project = "pbmc3")
  obj$cell_type <- factor(obj$cell_type)
  obj$batch <- factor(obj$batch)
  quietly({
    obj <- Seurat::NormalizeData(obj, verbose = FALSE)
    obj <- Seurat::FindVariableFeatures(obj, nfeatures = 500, verbose = FALSE)
    obj <- Seurat::ScaleData(obj, verbose = FALSE)
    obj <- Seurat::RunPCA(obj, npcs = 20, verbose = FALSE)
    obj <- Seurat::FindNeighbors(obj, dims = 1:20, verbose = FALSE)
    obj <- Seurat::FindClusters(obj, resolution = 0.5, verbose = FALSE)
    obj <- Seurat::RunUMAP(obj, dims = 1:10, verbose = FALSE, seed.use = 1)
  })
  obj@misc$note <- list(source = "symphony", n = 3L, weights = c(0.5, 0.25, 0.25))
  .cache$pbmc3 <- obj
  obj
}
.cache <- new.env()

# A Visium object from the DLPFC slice: coordinates from the file, a placeholder image (the
# shared data has no tissue image) and Visium's usual scale factors.
dlpfc_visium_seurat <- function() {
  x <- read_counts("dlpfc_151673_visium_top1000.h5ad")
  obj <- quietly(read_h5ad(extdata("dlpfc_151673_visium_top1000.h5ad")))
  # an .h5ad with obsm["spatial"] and no image reads as SlideSeq-like coordinates
  spatial <- as.matrix(obj@images[[1]]@coordinates[, c("x", "y")])
  seu <- Seurat::CreateSeuratObject(counts = x$counts, assay = "Spatial", meta.data = x$meta)
  lowres <- 0.045
  image <- array(0.9, dim = c(600, 600, 3))
  coords <- data.frame(tissue = 1L, row = as.integer(round(spatial[, 2] / 10)), col = as.integer(round(spatial[, 1] / 10)),
                       imagerow = spatial[, 2] * 20, imagecol = spatial[, 1] * 20, row.names = colnames(seu))
  seu@images$slice151673 <- methods::new(
    "VisiumV1", image = image,
    scale.factors = Seurat::scalefactors(spot = 89.47, fiducial = 144.54, hires = 0.15, lowres = lowres),
    coordinates = coords, spot.radius = 144.54 * lowres / 600, assay = "Spatial", key = "slice151673_"
  )
  seu
}

# RNA + ATAC (MOp SNARE-seq2 subset) as a two-assay Seurat object.
mop_seurat <- function() {
  obj <- quietly(read_h5mu(extdata("mop_snareseq2_600cells.h5mu")))
  obj
}

# Mouse pancreas with spliced / unspliced counts (739 cells x 2000 genes) as read from scVelo's
# .h5ad: assays RNA (= spliced), spliced and unspliced, meta.data `clusters`, reduction "pca".
pancreas_seurat <- function() {
  if (is.null(.cache$pancreas)) .cache$pancreas <- quietly(read_h5ad(extdata("pancreas_velocity_739_top2000.h5ad")))
  .cache$pancreas
}

# Every part the bridge promises, compared one by one so a failure names the part.
expect_same_seurat <- function(got, want, assays = SeuratObject::Assays(want)) {
  expect_identical(colnames(got), colnames(want))
  expect_identical(got@meta.data, want@meta.data)
  expect_identical(SeuratObject::Idents(got), SeuratObject::Idents(want))
  expect_identical(SeuratObject::DefaultAssay(got), SeuratObject::DefaultAssay(want))
  for (a in assays) {
    g <- got[[a]]
    w <- want[[a]]
    expect_identical(class(g), class(w), label = paste(a, "class"))
    expect_identical(rownames(g), rownames(w), label = paste(a, "features"))
    if (inherits(w, "Assay5")) {  # Seurat v5: layers, in order, with their default
      expect_identical(SeuratObject::Layers(g), SeuratObject::Layers(w), label = paste(a, "layers"))
      for (l in SeuratObject::Layers(w)) {
        expect_identical(SeuratObject::LayerData(g, layer = l), SeuratObject::LayerData(w, layer = l), label = paste(a, l))
      }
      expect_identical(SeuratObject::DefaultLayer(g), SeuratObject::DefaultLayer(w), label = paste(a, "default layer"))
      expect_identical(g[[]], w[[]], label = paste(a, "feature metadata"))
      expect_identical(g@misc, w@misc, label = paste(a, "misc"))
    } else {
      for (slot in c("counts", "data", "scale.data")) {
        expect_identical(methods::slot(g, slot), methods::slot(w, slot), label = paste(a, slot))
      }
      expect_identical(g@meta.features, w@meta.features, label = paste(a, "meta.features"))
    }
    expect_identical(SeuratObject::VariableFeatures(g), SeuratObject::VariableFeatures(w), label = paste(a, "variable features"))
    expect_identical(SeuratObject::Key(g), SeuratObject::Key(w), label = paste(a, "key"))
  }
  expect_identical(sort(SeuratObject::Reductions(got)), sort(SeuratObject::Reductions(want)))
  for (r in SeuratObject::Reductions(want)) {
    for (slot in c("cell.embeddings", "feature.loadings", "feature.loadings.projected", "stdev", "key", "assay.used", "global", "misc")) {
      expect_identical(methods::slot(got[[r]], slot), methods::slot(want[[r]], slot), label = paste(r, slot))
    }
  }
  expect_identical(got@graphs, want@graphs)
  expect_identical(got@misc, want@misc)
  expect_identical(got@project.name, want@project.name)
}

# The value of a Python expression about `obj`, e.g. py_value(adata, "X.shape").
py_value <- function(obj, expr) {
  main <- reticulate::import_main(convert = FALSE)
  reticulate::py_set_attr(main, "_isthmus_test_obj", obj)
  expr <- if (grepl("^(list|float|int|len|str)\\(", expr)) sub("\\(", "(_isthmus_test_obj.", expr) else paste0("_isthmus_test_obj.", expr)
  reticulate::py_eval(expr)
}

# Adjusted Rand index without mclust (not in Debian's R set).
mclust_free_ari <- function(a, b) {
  tab <- table(a, b)
  pairs <- function(x) sum(choose(x, 2))
  index <- pairs(tab)
  expected <- pairs(rowSums(tab)) * pairs(colSums(tab)) / choose(sum(tab), 2)
  maximum <- (pairs(rowSums(tab)) + pairs(colSums(tab))) / 2
  (index - expected) / (maximum - expected)
}

# An AnnData of ones (n_obs x n_vars) with Python `lines` run on it as `_a` (to add the parts a
# test is about), returned for conversion
anndata_of_ones <- function(n_obs, n_vars, ...) {
  ad <- reticulate::import("anndata")
  np <- reticulate::import("numpy", convert = FALSE)
  adata <- ad$AnnData(X = np$ones(reticulate::tuple(as.integer(n_obs), as.integer(n_vars))))
  reticulate::py_set_attr(reticulate::import_main(), "_a", adata)
  reticulate::py_run_string(paste(c("import numpy as np", ...), collapse = "\n"))
  adata
}

# Kang 2018 PBMC, control vs IFN-beta (5 cell types x 2 conditions), as a Seurat object (every
# `step`-th cell, to keep the tests quick).
kang_seurat <- function(step = 2) {
  x <- read_counts("kang_ifnb_pbmc_1556cells_muscat.h5ad")
  keep <- seq(1, ncol(x$counts), by = step)
  Seurat::CreateSeuratObject(counts = x$counts[, keep], meta.data = x$meta[keep, ], project = "kang")
}
