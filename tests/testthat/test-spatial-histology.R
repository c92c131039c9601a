# FindSpatialDomains' image features from R: a Seurat Visium object made by Seurat's own
# Read10X_Image (the bundled Space Ranger folder of DLPFC 151673, real H&E image) carries its image
# and scale factors to the core, which reads the same features there as from the PNG itself.

# The first 600 bundled spots with the image Read10X_Image() reads.
dlpfc_with_image <- function() {
  if (is.null(.cache$dlpfc_image)) {
    x <- read_counts("dlpfc_151673_visium_top1000.h5ad")
    seu <- Seurat::CreateSeuratObject(counts = x$counts, assay = "Spatial", meta.data = x$meta)
    image <- quietly(Seurat::Read10X_Image(image.dir = extdata("dlpfc_151673_spatial")))
    image <- image[colnames(seu)]
    SeuratObject::DefaultAssay(image) <- "Spatial"
    seu[["slice1"]] <- image
    .cache$dlpfc_image <- quietly(seu[, colnames(seu)[1:600]])
  }
  .cache$dlpfc_image
}

test_that("the Visium image reaches the core the right way round: the same spot features as from the PNG", {
  obj <- dlpfc_with_image()
  coordinates <- isthmus:::.spatial_coordinates(obj)
  adata <- isthmus:::.task_anndata(isthmus:::.task_counts(obj, NULL, "counts")$matrix, coordinates = coordinates,
                                   uns = list(spatial = isthmus:::.tissue_image(obj)))
  histology <- reticulate::import("isthmus.tl._histology", convert = FALSE)
  # as a plain array: reticulate 1.28 converts a DataFrame through pandas' deprecated Index.format
  from_r <- reticulate::py_to_r(histology$spot_image_features(adata)$to_numpy())
  # the same spots read by Python from the Space Ranger folder itself
  reticulate::py_run_string(paste(
    "def _isthmus_png_features(folder, barcodes):",
    "    import json, numpy as np, pandas as pd, anndata as ad",
    "    from PIL import Image",
    "    from isthmus.tl import _histology",
    "    pos = pd.read_csv(folder + '/tissue_positions_list.txt', header=None, index_col=0)",
    "    a = ad.AnnData(obs=pd.DataFrame(index=list(barcodes)))",
    "    a.obsm['spatial'] = pos.loc[list(barcodes), [5, 4]].to_numpy(dtype=float)",
    "    a.uns['spatial'] = {'s': {'images': {'lowres': np.asarray(Image.open(folder + '/tissue_lowres_image.png').convert('RGB'))},",
    "                              'scalefactors': json.load(open(folder + '/scalefactors_json.json'))}}",
    "    return _histology.spot_image_features(a).to_numpy()",
    sep = "\n"))
  from_png <- reticulate::py_eval("_isthmus_png_features", convert = TRUE)(extdata("dlpfc_151673_spatial"), colnames(obj))
  expect_equal(dim(from_r), c(600L, 8L))
  # Seurat keeps the image as doubles in [0, 1] read from the same PNG: equal up to rounding
  expect_lt(max(abs(from_r - from_png)), 1e-6)
  expect_gt(stats::sd(from_r[, 2]), 0.01)  # the green mean varies across the cortex (WM is darker)
})

test_that("FindSpatialDomains(image_features = TRUE) gives the graph model the image, and says when it cannot", {
  obj <- dlpfc_with_image()
  before <- obj
  plain <- FindSpatialDomains(obj, n.domains = 4, n.seeds = 1, max_epochs = 5, verbose = FALSE)
  imaged <- FindSpatialDomains(obj, n.domains = 4, n.seeds = 1, max_epochs = 5, image_features = TRUE,
                               verbose = FALSE)
  expect_identical(obj, before)
  record <- isthmus_records(imaged, "gat")
  expect_true(record$params$image_features)
  expect_identical(unlist(record$params$image_feature_names),
                   c("red_mean", "green_mean", "blue_mean", "red_sd", "green_sd", "blue_sd", "gradient_mean",
                     "gradient_sd"))
  expect_equal(record$params$image_weight, 0.1)
  expect_false(isthmus_records(plain, "gat")$params$image_features)
  expect_null(isthmus_records(plain, "gat")$params$image_feature_names)
  expect_equal(dim(SeuratObject::Embeddings(imaged, "gat")), c(600L, 30L))
  expect_false(isTRUE(all.equal(SeuratObject::Embeddings(imaged, "gat"), SeuratObject::Embeddings(plain, "gat"))))
  expect_true(is.factor(imaged$gat_domain))

  expect_error(FindSpatialDomains(obj, method = "pca", n.seeds = 1, image_features = TRUE, verbose = FALSE),
               "applies to method \"gat\" only")
  coords <- as.matrix(isthmus:::.spatial_coordinates(obj))
  counts <- isthmus:::.task_counts(obj, NULL, "counts")$matrix
  expect_error(FindSpatialDomains(counts, coords, n.domains = 4, n.seeds = 1, max_epochs = 2, image_features = TRUE,
                                  verbose = FALSE), "no uns\\['spatial'\\]")
  sce <- SingleCellExperiment::SingleCellExperiment(list(counts = counts))
  SingleCellExperiment::reducedDim(sce, "spatial") <- coords
  expect_error(FindSpatialDomains(sce, n.domains = 4, image_features = TRUE, verbose = FALSE),
               "image_features reads a Seurat object's Visium image")
})
