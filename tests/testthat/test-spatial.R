test_that("a Visium object from the DLPFC slice round-trips coordinates and scale factors", {
  seu <- dlpfc_visium_seurat()
  adata <- quietly(as_anndata(seu))
  # the layout scanpy / squidpy read: obsm spatial (x = imagecol, y = imagerow), uns spatial
  xy <- py_value(adata, "obsm['spatial']")
  coords <- seu@images$slice151673@coordinates
  expect_equal(xy[, 1], coords$imagecol)
  expect_equal(xy[, 2], coords$imagerow)
  sf <- py_value(adata, "uns['spatial']['slice151673']['scalefactors']")
  expect_equal(sf$tissue_lowres_scalef, 0.045)
  expect_equal(sf$spot_diameter_fullres, 89.47)
  expect_equal(dim(py_value(adata, "uns['spatial']['slice151673']['images']['lowres']")), c(600, 600, 3))
  back <- as_seurat(adata)
  expect_identical(back@images$slice151673, seu@images$slice151673)
  expect_identical(Seurat::GetTissueCoordinates(back), Seurat::GetTissueCoordinates(seu))
  expect_same_seurat(back, seu)
})

test_that("scanpy's own Visium layout (no isthmus record) becomes the Visium image class Seurat makes", {
  seu <- dlpfc_visium_seurat()
  adata <- quietly(as_anndata(seu))
  plain <- py_value(adata, "copy()")
  py_value(plain, "uns.pop('isthmus')")
  back <- quietly(as_seurat(plain, assay = "Spatial"))
  img <- back@images[[1]]
  # Seurat >= 5.1 reads Visium into VisiumV2 (centroids + image), earlier versions into VisiumV1
  expect_s4_class(img, if (isthmus:::.has_seurat_spatial("VisiumV2")) "VisiumV2" else "VisiumV1")
  xy <- isthmus:::.image_xy(img, "slice")
  expect_equal(unname(xy[, "y"]), seu@images$slice151673@coordinates$imagerow)
  expect_equal(unname(xy[, "x"]), seu@images$slice151673@coordinates$imagecol)
  expect_equal(img@scale.factors$lowres, 0.045)
})

# Seurat 5.1's Visium class, built the way Read10X_Image() builds it: spot centroids with
# (x = imagerow, y = imagecol) plus the image and scale factors
dlpfc_visium_v2 <- function() {
  v1 <- dlpfc_visium_seurat()
  old <- v1@images$slice151673
  fov <- SeuratObject::CreateFOV(old@coordinates[, c("imagerow", "imagecol")], type = "centroids", radius = 89.47,
                                 assay = "Spatial", key = "slice151673_")
  v1@images$slice151673 <- methods::new("VisiumV2", boundaries = fov@boundaries, molecules = fov@molecules,
                                        assay = "Spatial", key = "slice151673_", image = old@image,
                                        scale.factors = old@scale.factors)
  list(seurat = v1, coordinates = old@coordinates)
}

test_that("a VisiumV2 image round-trips: coordinates the scanpy way round, image, scale factors, radius", {
  skip_if_not(isthmus:::.has_seurat_spatial("VisiumV2"), "VisiumV2 needs Seurat 5.1 (the trixie root)")
  x <- dlpfc_visium_v2()
  seu <- x$seurat
  adata <- quietly(as_anndata(seu))
  xy <- py_value(adata, "obsm['spatial']")
  expect_equal(xy[, 1], x$coordinates$imagecol)  # x along the image's columns, as scanpy plots
  expect_equal(xy[, 2], x$coordinates$imagerow)
  sf <- py_value(adata, "uns['spatial']['slice151673']['scalefactors']")
  expect_equal(sf$tissue_hires_scalef, 0.15)
  expect_equal(dim(py_value(adata, "uns['spatial']['slice151673']['images']['lowres']")), c(600, 600, 3))
  back <- as_seurat(adata)
  expect_identical(back@images$slice151673, seu@images$slice151673)
  expect_same_seurat(back, seu)
  # the spatial verbs see the same positions from either Visium class
  expect_equal(isthmus:::.spatial_coordinates(seu), isthmus:::.spatial_coordinates(dlpfc_visium_seurat()))
  expect_no_error(ggplot2::ggplot_build(Seurat::SpatialDimPlot(back, group.by = "layer")))
})

test_that("an FOV (imaging data) carries its centroids and reports the segmentation it leaves", {
  data("pbmc_small", package = "SeuratObject")
  obj <- pbmc_small
  set.seed(2)
  centroids <- data.frame(x = stats::runif(ncol(obj), 0, 800), y = stats::runif(ncol(obj), 0, 600), row.names = colnames(obj))
  fov <- SeuratObject::CreateFOV(centroids, type = "centroids", radius = 3, assay = "RNA", key = "fov_")
  obj@images$fov <- fov
  adata <- quietly(as_anndata(obj))
  expect_equal(py_value(adata, "obsm['spatial']")[, 1], centroids$x)
  expect_equal(py_value(adata, "obsm['spatial']")[, 2], centroids$y)
  back <- as_seurat(adata)
  expect_s4_class(back@images$fov, "FOV")
  expect_identical(SeuratObject::GetTissueCoordinates(back@images$fov), SeuratObject::GetTissueCoordinates(fov))
  expect_equal(back@images$fov[["centroids"]]@radius, 3)
  # a segmentation (one square per cell) is named in the report, the centroids still go
  squares <- do.call(rbind, lapply(seq_len(ncol(obj)), function(i) {
    data.frame(x = centroids$x[i] + c(-1, 1, 1, -1), y = centroids$y[i] + c(-1, -1, 1, 1), cell = colnames(obj)[i])
  }))
  obj@images$fov <- SeuratObject::CreateFOV(list(centroids = SeuratObject::CreateCentroids(centroids),
                                                 segmentation = SeuratObject::CreateSegmentation(squares)),
                                            assay = "RNA", key = "fov_")
  expect_warning(adata <- as_anndata(obj), "image fov boundaries segmentation: not carried")
  expect_equal(py_value(adata, "obsm['spatial']")[, 2], centroids$y)
})

test_that("SlideSeq coordinates round-trip", {
  data("pbmc_small", package = "SeuratObject")
  obj <- pbmc_small
  set.seed(1)
  coords <- data.frame(x = stats::runif(ncol(obj), 0, 5000), y = stats::runif(ncol(obj), 0, 5000), row.names = colnames(obj))
  obj@images$puck <- methods::new("SlideSeq", coordinates = coords, assay = "RNA", key = "puck_")
  adata <- quietly(as_anndata(obj))
  expect_equal(py_value(adata, "obsm['spatial']")[, 1], coords$x)
  back <- as_seurat(adata)
  expect_identical(back@images$puck, obj@images$puck)
})
