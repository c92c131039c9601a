# SpatialExperiment <-> AnnData. SpatialExperiment is not in this machine's Debian release: these
# run in the Seurat v5 job (R 4.5 in a Debian trixie root, `make test`).

# The DLPFC slice as a SpatialExperiment, the way read10xVisium() lays one out: counts, the
# manual layers in colData, sample_id, full-resolution pixel coordinates and two images with
# their scale factors (the shared data has no tissue image, so they are painted).
dlpfc_spe <- function() {
  x <- read_counts("dlpfc_151673_visium_top1000.h5ad")
  seu <- quietly(read_h5ad(extdata("dlpfc_151673_visium_top1000.h5ad")))
  xy <- as.matrix(seu@images[[1]]@coordinates[, c("x", "y")]) * 20
  colnames(xy) <- c("pxl_col_in_fullres", "pxl_row_in_fullres")
  meta <- S4Vectors::DataFrame(x$meta[, "layer", drop = FALSE], sample_id = "151673")
  spe <- SpatialExperiment::SpatialExperiment(assays = list(counts = x$counts), colData = meta, spatialCoords = xy)
  set.seed(3)
  paint <- function(n) grDevices::as.raster(array(stats::runif(n * n * 3), dim = c(n, n, 3)))
  for (image in list(c("lowres", 0.045, 60), c("hires", 0.15, 200))) {
    spe <- SpatialExperiment::addImg(spe, imageSource = {
      f <- tempfile(fileext = ".png")
      grDevices::png(f, width = as.integer(image[3]), height = as.integer(image[3]))
      op <- graphics::par(mar = c(0, 0, 0, 0)); plot(paint(as.integer(image[3]))); graphics::par(op)
      grDevices::dev.off()
      f
    }, scaleFactor = as.numeric(image[2]), sample_id = "151673", image_id = image[1], load = TRUE)
  }
  spe
}

test_that("a SpatialExperiment of the DLPFC slice round-trips coordinates, images with scale factors, and labels", {
  skip_if_not_installed("SpatialExperiment")
  spe <- dlpfc_spe()
  adata <- quietly(as_anndata(spe, x_layer = "counts"))
  # the layout scanpy and squidpy read
  expect_equal(py_value(adata, "obsm['spatial']"), unname(SpatialExperiment::spatialCoords(spe)))
  sf <- py_value(adata, "uns['spatial']['151673']['scalefactors']")
  expect_equal(sf$tissue_lowres_scalef, 0.045)
  expect_equal(sf$tissue_hires_scalef, 0.15)
  expect_equal(dim(py_value(adata, "uns['spatial']['151673']['images']['hires']")), c(200, 200, 3))
  expect_identical(as.character(py_value(adata, "obs['layer'].astype(str).tolist()")),
                   as.character(ifelse(is.na(spe$layer), "nan", as.character(spe$layer))))
  # a SpatialImage holds 8-bit colours: the rounding of the images is reported
  expect_warning(back <- as_sce(adata), "pixel values are rounded")
  expect_s4_class(back, "SpatialExperiment")
  expect_identical(SpatialExperiment::spatialCoords(back), SpatialExperiment::spatialCoords(spe))
  expect_identical(SummarizedExperiment::colData(back), SummarizedExperiment::colData(spe))
  expect_identical(SummarizedExperiment::assay(back, "counts"), SummarizedExperiment::assay(spe, "counts"))
  got <- SpatialExperiment::imgData(back)
  want <- SpatialExperiment::imgData(spe)
  expect_identical(got[, c("sample_id", "image_id", "scaleFactor")], want[, c("sample_id", "image_id", "scaleFactor")])
  for (k in seq_len(nrow(want))) {
    # the same colours ("#rrggbbff" from a PNG comes back as "#RRGGBB")
    expect_identical(grDevices::col2rgb(SpatialExperiment::imgRaster(got$data[[k]]), alpha = TRUE),
                     grDevices::col2rgb(SpatialExperiment::imgRaster(want$data[[k]]), alpha = TRUE))
  }
  # through a file too
  file <- tempfile(fileext = ".h5ad")
  quietly(write_h5ad(spe, file))
  from_file <- quietly(read_h5ad(file, to = "SingleCellExperiment"))
  expect_s4_class(from_file, "SpatialExperiment")
  expect_identical(SpatialExperiment::spatialCoords(from_file), SpatialExperiment::spatialCoords(spe))
  expect_identical(SpatialExperiment::imgData(from_file)$scaleFactor, want$scaleFactor)
})

test_that("scanpy's Visium layout (no isthmus record) becomes a SpatialExperiment on request", {
  skip_if_not_installed("SpatialExperiment")
  spe <- dlpfc_spe()
  adata <- quietly(as_anndata(spe))
  plain <- py_value(adata, "copy()")
  py_value(plain, "uns.pop('isthmus')")
  py_value(plain, "obs.pop('sample_id')")
  py_value(plain, "uns['spatial']['151673']['scalefactors'].update({'spot_diameter_fullres': 89.5})")
  expect_false(methods::is(quietly(as_sce(plain)), "SpatialExperiment"))
  expect_warning(back <- as_sce(plain, spatial = TRUE), "8-bit colours")
  expect_s4_class(back, "SpatialExperiment")
  # what imgData() has no place for stays in metadata$spatial, and goes back into uns['spatial']
  expect_equal(S4Vectors::metadata(back)$spatial$`151673`$scalefactors$spot_diameter_fullres, 89.5)
  again <- quietly(as_anndata(back))
  expect_equal(py_value(again, "uns['spatial']['151673']['scalefactors']['spot_diameter_fullres']"), 89.5)
  expect_equal(py_value(again, "uns['spatial']['151673']['scalefactors']['tissue_hires_scalef']"), 0.15)
  expect_identical(unique(back$sample_id), "151673")  # the library's name
  expect_equal(unname(SpatialExperiment::spatialCoords(back)), unname(SpatialExperiment::spatialCoords(spe)))
  expect_setequal(SpatialExperiment::imgData(back)$image_id, c("lowres", "hires"))
  expect_equal(SpatialExperiment::scaleFactors(back, image_id = "hires"), 0.15)
  # a spatial verb reads the coordinates of the converted object
  out <- FindSpatialDomains(back, method = "banksy", layer = "X", n.domains = 4, n.seeds = 1, verbose = FALSE)
  expect_length(unique(out$banksy_domain), 4)
  expect_error(as_sce(py_value(plain, "copy()")$`__class__`(X = py_value(plain, "X")), spatial = TRUE),
               "no obsm\\['spatial'\\]")
})

test_that("a SpatialExperiment without coordinates or images comes back as one", {
  skip_if_not_installed("SpatialExperiment")
  x <- read_counts("dlpfc_151673_visium_top1000.h5ad")
  spe <- SpatialExperiment::SpatialExperiment(assays = list(counts = x$counts[, 1:50]))
  back <- as_sce(quietly(as_anndata(spe)))
  expect_s4_class(back, "SpatialExperiment")
  expect_identical(dim(SpatialExperiment::spatialCoords(back)), dim(SpatialExperiment::spatialCoords(spe)))
  expect_identical(back$sample_id, spe$sample_id)
})
