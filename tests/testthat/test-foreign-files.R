# Files and objects made elsewhere (issue 15): clear refusals, values in the right cells, and
# every change named by conversion_report(). The corpus of other tools' files runs in
# tests/python/test_corpus.py.

report_parts <- function(x) paste(conversion_report(x)$part, conversion_report(x)$detail)

test_that("files that are not AnnData get a message saying what is wrong with the file", {
  empty <- withr::local_tempfile(fileext = ".h5ad")
  file.create(empty)
  expect_error(read_h5ad(empty), "is empty \\(0 bytes\\)")
  noise <- withr::local_tempfile(fileext = ".h5ad")
  writeBin(as.raw(c(1:200, 7:90)), noise)
  expect_error(read_h5ad(noise), "not an HDF5 file")
  other <- withr::local_tempfile(fileext = ".h5ad")
  h5py <- reticulate::import("h5py")
  f <- h5py$File(other, "w")
  f$create_dataset("numbers", data = reticulate::r_to_py(as.numeric(1:3)))
  f$close()
  expect_error(read_h5ad(other), "HDF5 file but not an AnnData.*numbers")
  mu <- withr::local_tempfile(fileext = ".h5mu")
  quietly(write_h5mu(mop_seurat(), mu))
  expect_error(read_h5ad(mu), "holds a MuData.*read_h5mu")
  expect_error(read_h5ad(c(mu, mu)), "`file` must be one file path")
})

test_that("an AnnData with 0 cells, duplicated names or axis=1 MuData is refused clearly", {
  ad <- reticulate::import("anndata")
  np <- reticulate::import("numpy", convert = FALSE)
  zero <- ad$AnnData(X = np$zeros(reticulate::tuple(0L, 3L)))
  expect_error(as_seurat(zero), "0 cells")
  dup <- ad$AnnData(X = np$ones(reticulate::tuple(3L, 2L)))
  dup$obs_names <- c("a", "a", "b")
  expect_error(as_sce(dup), "obs_names are not unique \\(a\\).*obs_names_make_unique")
  expect_error(as_seurat(dup), "obs_names are not unique")
})

test_that("a failed write leaves no file, and a bad compression names the argument", {
  data("pbmc_small", package = "SeuratObject")
  file <- withr::local_tempfile(fileext = ".h5ad")
  expect_error(write_h5ad(pbmc_small, file, compression = "zip"), "`compression` must be NULL")
  expect_false(file.exists(file))
})

test_that("R-side objects: NA factor level, duplicated columns, integer counts, '|' in gene names", {
  data("pbmc_small", package = "SeuratObject")
  obj <- pbmc_small
  obj$with_na_level <- factor(c(NA, "a", "b")[(seq_len(ncol(obj)) %% 3) + 1], levels = c("a", NA, "b"), exclude = NULL)
  back <- quietly(as_seurat(quietly(as_anndata(obj))))
  expect_false(anyNA(levels(back$with_na_level)))
  expect_identical(unname(is.na(back$with_na_level)), is.na(as.character(obj$with_na_level)))
  quietly(as_anndata(obj))
  expect_true(any(grepl("with_na_level.*factor level NA", report_parts())))

  dup <- pbmc_small
  dup@meta.data <- cbind(dup@meta.data, dup@meta.data[, "groups", drop = FALSE])
  before <- dup
  expect_error(as_anndata(dup), "duplicated column names \\(groups\\).*make.unique")
  expect_identical(dup, before)

  counts <- as.matrix(layer_data(pbmc_small, "counts"))
  storage.mode(counts) <- "integer"
  sce <- SingleCellExperiment::SingleCellExperiment(list(counts = counts))
  back_sce <- quietly(as_sce(as_anndata(sce)))
  expect_identical(SummarizedExperiment::assay(back_sce, "counts"), counts)

  piped <- pbmc_small
  m <- layer_data(piped, "counts")
  rownames(m) <- paste0(rownames(m), "|x")
  file <- withr::local_tempfile(fileext = ".h5ad")
  quietly(write_h5ad(SingleCellExperiment::SingleCellExperiment(list(counts = m, logcounts = log1p(m))), file))
  expect_warning(read <- read_h5ad(file), "'\\|' with '-'")
  expect_identical(rownames(layer_data(read, "counts")), rownames(layer_data(read, "data")))
  expect_no_error(quietly(as_anndata(read)))
})

test_that("uns arrays keep their values in the right cells and their dims, both ways", {
  adata <- anndata_of_ones(4, 3,
                           "_a.uns['letters'] = np.array([['a', 'b', 'c'], ['d', 'e', 'f']])",
                           "_a.uns['cube'] = np.arange(24.0).reshape(2, 3, 4)")
  sce <- quietly(as_sce(adata))
  letters_r <- S4Vectors::metadata(sce)$letters
  expect_identical(letters_r, matrix(c("a", "d", "b", "e", "c", "f"), 2))
  cube <- S4Vectors::metadata(sce)$cube
  expect_identical(dim(cube), c(2L, 3L, 4L))
  expect_identical(cube[2, 3, 4], 23)  # numpy's [1, 2, 3]
  back <- quietly(as_anndata(sce))
  expect_identical(py_value(back, "uns['letters'][1, 2]"), "f")
  expect_identical(py_value(back, "uns['cube'].shape"), list(2L, 3L, 4L))
  expect_identical(py_value(back, "uns['cube'][1, 2, 3]"), 23)
})

test_that("obsm keys keep their spelling and varm survives both routes", {
  adata <- anndata_of_ones(5, 4,
                           "_a.obsm['array'] = np.arange(10.0).reshape(5, 2)",
                           "_a.obsm['X_pca'] = np.arange(15.0).reshape(5, 3)",
                           "_a.varm['PCs'] = np.arange(12.0).reshape(4, 3)",
                           "_a.varm['other'] = np.arange(8.0).reshape(4, 2)")
  for (to in c("Seurat", "SCE")) {
    obj <- quietly(if (to == "Seurat") as_seurat(adata) else as_sce(adata))
    back <- quietly(as_anndata(obj))
    expect_setequal(py_value(back, "list(obsm.keys())"), c("array", "X_pca"))
    expect_setequal(py_value(back, "list(varm.keys())"), c("PCs", "other"))
    expect_identical(py_value(back, "varm['other'].tolist()"), lapply(0:3, function(k) as.numeric(2 * k + 0:1)))
  }
})

test_that("a Seurat 4 Visium image writes a spot diameter scanpy can draw, and says so", {
  obj <- quietly(read_h5ad(extdata("dlpfc_151673_visium_top1000.h5ad")))
  skip_if_not(.has_seurat_spatial <- isthmus:::.has_seurat_spatial("VisiumV1"), "no VisiumV1 class")
  cells <- colnames(obj)[1:50]
  obj <- suppressWarnings(obj[, cells])  # SeuratObject 5 notes "Not validating Seurat objects" on a subset
  xy <- matrix(runif(100, 100, 500), 50)
  sf <- isthmus:::.seurat_spatial("scalefactors")(spot = 0.150015, fiducial = 144.6, hires = 0.150015, lowres = 0.045)
  img <- methods::new(isthmus:::.seurat_spatial("VisiumV1"), image = array(0.5, c(30, 30, 3)), scale.factors = sf,
                      coordinates = data.frame(tissue = 1L, row = 0L, col = 0L, imagerow = xy[, 2], imagecol = xy[, 1],
                                               row.names = cells),
                      spot.radius = 0.01, assay = "RNA", key = "slice1_")
  obj@images$slice1 <- img
  adata <- quietly(as_anndata(obj))
  expect_true(any(grepl("spot_diameter_fullres.*2/3", report_parts())))
  spot <- py_value(adata, "uns['spatial']['slice1']['scalefactors']['spot_diameter_fullres']")
  expect_equal(spot, 144.6 * 2 / 3)
})

test_that("a CSR matrix whose indices are unsorted or repeated within rows (valid in anndata) reads into a valid dgCMatrix", {
  file <- withr::local_tempfile(fileext = ".h5ad")
  quietly(as_anndata(pbmc3_seurat()))  # isthmus's Python, started
  # as concatenations and some writers leave them: row 0 holds genes 2, 0; row 1 genes 3, 1, 0, 3
  # (a repeat: scipy adds the two up)
  reticulate::py_run_string(sprintf(paste(
    "import anndata as ad, numpy as np, pandas as pd, scipy.sparse as sp",
    "X = sp.csr_matrix((np.array([5., 1., 7., 2., 3., 4.]), np.array([2, 0, 3, 1, 0, 3]), np.array([0, 2, 6])), shape=(2, 4))",
    "assert not X.has_sorted_indices",
    "ad.AnnData(X, obs=pd.DataFrame(index=['c1', 'c2']), var=pd.DataFrame(index=list('abcd'))).write_h5ad(%s)",
    sep = "\n"), shQuote(file)))
  expect_warning(obj <- read_h5ad(file, to = "SingleCellExperiment"), "unsorted or repeated within rows in the file")
  counts <- SummarizedExperiment::assay(obj, "X")
  expect_true(methods::validObject(counts))
  expect_equal(as.matrix(counts), matrix(c(1, 0, 5, 0, 3, 2, 0, 11), 4, dimnames = list(letters[1:4], c("c1", "c2"))))
})
