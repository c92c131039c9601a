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

test_that("scanpy's own Visium layout (no isthmus record) becomes a VisiumV1 image", {
  seu <- dlpfc_visium_seurat()
  adata <- quietly(as_anndata(seu))
  plain <- py_value(adata, "copy()")
  py_value(plain, "uns.pop('isthmus')")
  back <- quietly(as_seurat(plain, assay = "Spatial"))
  img <- back@images[[1]]
  expect_s4_class(img, "VisiumV1")
  expect_equal(img@coordinates$imagerow, seu@images$slice151673@coordinates$imagerow)
  expect_equal(img@scale.factors$lowres, 0.045)
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
