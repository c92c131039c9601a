# Spatial both ways, checked by the real clients (issue 15): scanpy's sc.pl.spatial on what
# isthmus writes from a Seurat Visium object (made by Seurat's own Read10X_Image) and from a
# SpatialExperiment, and Seurat's SpatialDimPlot on what isthmus reads from a file in scanpy's
# Visium layout. Every plot is saved to PNG and must show the spots: they are drawn in pure red
# and counted, and the same plot with a wrong spot size (Seurat 4's hires scale factor) shows
# almost none, so the count tells a drawn spot from a missing one.

spatial_dir <- function() extdata("dlpfc_151673_spatial")

# The DLPFC slice as Load10X_Spatial() builds it: counts, and the image Read10X_Image() reads
# from the Space Ranger folder (real H&E image, positions, scale factors).
dlpfc_visium_real <- function() {
  x <- read_counts("dlpfc_151673_visium_top1000.h5ad")
  seu <- Seurat::CreateSeuratObject(counts = x$counts, assay = "Spatial", meta.data = x$meta)
  image <- quietly(Seurat::Read10X_Image(image.dir = spatial_dir()))
  image <- image[colnames(seu)]
  SeuratObject::DefaultAssay(image) <- "Spatial"
  seu[["slice1"]] <- image
  seu
}

red_pixels <- function(png_file) {
  p <- png::readPNG(png_file)
  sum(p[, , 1] > 0.8 & p[, , 2] < 0.2 & p[, , 3] < 0.2)
}

# sc.pl.spatial of an .h5ad, every spot in pure red, saved to PNG; returns the PNG path
scanpy_plot <- function(h5ad, library_id, spot_diameter = NULL) {
  reticulate::py_run_string(paste(
    "def _isthmus_plot(h5ad, png, library_id, spot_diameter):",
    "    import matplotlib",
    "    matplotlib.use('Agg')",
    "    import matplotlib.pyplot as plt, pandas as pd, scanpy as sc",
    "    adata = sc.read_h5ad(h5ad)",
    "    if spot_diameter is not None:",
    "        adata.uns['spatial'][library_id]['scalefactors']['spot_diameter_fullres'] = spot_diameter",
    "    adata.obs['hit'] = pd.Categorical(['spot'] * adata.n_obs)",
    "    sc.pl.spatial(adata, color='hit', palette=['#ff0000'], library_id=library_id, show=False, legend_loc=None,",
    "                  frameon=False, title='')",
    "    plt.savefig(png, dpi=150)",
    "    plt.close('all')",
    sep = "\n"))
  png <- tempfile(fileext = ".png")
  reticulate::py_eval("_isthmus_plot", convert = TRUE)(h5ad, png, library_id, spot_diameter)
  png
}

test_that("scanpy plots the spots of a Seurat Visium object (Read10X_Image) that isthmus wrote", {
  seu <- dlpfc_visium_real()
  file <- withr::local_tempfile(fileext = ".h5ad")
  quietly(write_h5ad(seu, file))
  if (utils::packageVersion("Seurat") < "5.0.0") {
    # Seurat 4's Read10X_Image keeps the hires scale factor as the spot size: replaced, and said
    expect_true(any(grepl("spot_diameter_fullres", conversion_report()$part)))
  }
  spots <- red_pixels(scanpy_plot(file, "slice1"))
  tiny <- red_pixels(scanpy_plot(file, "slice1", spot_diameter = 0.150015))
  expect_gt(spots, 5000)  # 3639 spots of a few pixels each
  expect_gt(spots, 20 * max(tiny, 1))
})

# The layout scanpy's Visium reader writes, built from the same Space Ranger folder.
scanpy_visium_file <- function(path) {
  reticulate::py_run_string(paste(
    "def _isthmus_scanpy_visium(counts_h5ad, folder, path):",
    "    import json, anndata as ad, numpy as np, pandas as pd",
    "    from matplotlib.image import imread",
    "    adata = ad.read_h5ad(counts_h5ad)",
    "    pos = pd.read_csv(folder + '/tissue_positions_list.txt', header=None, index_col=0,",
    "                      names=['barcode', 'in_tissue', 'array_row', 'array_col', 'pxl_row_in_fullres', 'pxl_col_in_fullres'])",
    "    pos = pos.loc[adata.obs_names]",
    "    adata.obs[['in_tissue', 'array_row', 'array_col']] = pos[['in_tissue', 'array_row', 'array_col']]",
    "    adata.obsm['spatial'] = pos[['pxl_col_in_fullres', 'pxl_row_in_fullres']].to_numpy()",
    "    with open(folder + '/scalefactors_json.json') as fh:",
    "        scalefactors = json.load(fh)",
    "    adata.uns['spatial'] = {'151673': {'images': {'lowres': imread(folder + '/tissue_lowres_image.png')},",
    "                                       'scalefactors': scalefactors,",
    "                                       'metadata': {'chemistry_description': \"Spatial 3' v1\", 'software_version': 'spaceranger-1.0.0'}}}",
    "    adata.write_h5ad(path)",
    sep = "\n"))
  reticulate::py_eval("_isthmus_scanpy_visium", convert = TRUE)(extdata("dlpfc_151673_visium_top1000.h5ad"), spatial_dir(), path)
  path
}

test_that("Seurat's SpatialDimPlot draws the tissue and spots of a scanpy Visium file, and scanpy the file written back", {
  file <- scanpy_visium_file(withr::local_tempfile(fileext = ".h5ad"))
  obj <- quietly(read_h5ad(file))
  expect_length(SeuratObject::Images(obj), 1)
  obj$hit <- factor("spot")
  png <- withr::local_tempfile(fileext = ".png")
  plot <- Seurat::SpatialDimPlot(obj, group.by = "hit", cols = c(spot = "#ff0000"), pt.size.factor = 1.6,
                                 image.alpha = 1, stroke = NA) + ggplot2::theme(legend.position = "none")
  ggplot2::ggsave(png, plot, width = 5, height = 5, dpi = 100)
  expect_gt(red_pixels(png), 5000)
  pixels <- png::readPNG(png)
  tissue <- sum(abs(pixels[, , 1] - pixels[, , 2]) > 0.05 & !(pixels[, , 1] > 0.8 & pixels[, , 2] < 0.2))
  expect_gt(tissue, 1000)  # the H&E image is drawn under the spots (pink / purple pixels)
  # written back: the library id, scale factors and metadata are scanpy's again, and it plots
  out <- withr::local_tempfile(fileext = ".h5ad")
  quietly(write_h5ad(obj, out))
  back <- reticulate::import("anndata")$read_h5ad(out)
  expect_identical(py_value(back, "list(uns['spatial'].keys())"), "151673")
  expect_identical(py_value(back, "uns['spatial']['151673']['metadata']['software_version']"), "spaceranger-1.0.0")
  expect_equal(py_value(back, "uns['spatial']['151673']['scalefactors']['spot_diameter_fullres']"), 96.40082438014726)
  expect_gt(red_pixels(scanpy_plot(out, "151673")), 5000)
})

test_that("scanpy plots the spots of a SpatialExperiment that isthmus wrote", {
  skip_if_not_installed("SpatialExperiment")
  x <- read_counts("dlpfc_151673_visium_top1000.h5ad")
  pos <- utils::read.csv(file.path(spatial_dir(), "tissue_positions_list.txt"), header = FALSE, row.names = 1,
                         col.names = c("barcode", "in_tissue", "array_row", "array_col", "pxl_row_in_fullres", "pxl_col_in_fullres"))
  pos <- pos[colnames(x$counts), ]
  spe <- SpatialExperiment::SpatialExperiment(
    assays = list(counts = x$counts), colData = S4Vectors::DataFrame(x$meta, sample_id = "151673"),
    spatialCoords = as.matrix(pos[, c("pxl_col_in_fullres", "pxl_row_in_fullres")]),
    imgData = SpatialExperiment::readImgData(spatial_dir(), sample_id = "151673"))
  file <- withr::local_tempfile(fileext = ".h5ad")
  quietly(write_h5ad(spe, file))
  # imgData() keeps no spot size: estimated from the spot spacing, and said
  expect_true(any(grepl("spot_diameter_fullres", conversion_report()$part)))
  spot <- py_value(reticulate::import("anndata")$read_h5ad(file), "uns['spatial']['151673']['scalefactors']['spot_diameter_fullres']")
  expect_equal(spot, 96.4, tolerance = 0.05)  # Space Ranger's value for this slice
  expect_gt(red_pixels(scanpy_plot(file, "151673")), 5000)
})
