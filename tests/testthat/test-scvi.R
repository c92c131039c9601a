test_that("Seurat -> Python -> 1-epoch scVI -> latent space back as a DimReduc", {
  obj <- pbmc3_seurat()
  before <- obj
  out <- RunSCVI(obj, batch = "batch", n_latent = 8, max_epochs = 1, seed.use = 1, verbose = FALSE)
  expect_true("scvi" %in% SeuratObject::Reductions(out))
  emb <- SeuratObject::Embeddings(out, "scvi")
  expect_equal(dim(emb), c(ncol(obj), 8))
  expect_identical(rownames(emb), colnames(obj))
  expect_identical(SeuratObject::Key(out[["scvi"]]), "SCVI_")
  expect_true(all(is.finite(emb)))
  expect_equal(out[["scvi"]]@misc$isthmus$params$max_epochs, 1)
  # the same seed gives the same latent space
  again <- RunSCVI(obj, batch = "batch", n_latent = 8, max_epochs = 1, seed.use = 1, verbose = FALSE)
  expect_equal(SeuratObject::Embeddings(again, "scvi"), emb)
  # the input object is unchanged
  expect_identical(obj, before)
})

test_that("RunSCVI refuses a missing or NA batch column and non-count data", {
  data("pbmc_small", package = "SeuratObject")
  expect_error(RunSCVI(pbmc_small, batch = "nope", max_epochs = 1, verbose = FALSE), "batch column 'nope' is not")
  obj <- pbmc_small
  obj$b <- ifelse(seq_len(ncol(obj)) %% 2 == 0, "a", NA)
  expect_error(RunSCVI(obj, batch = "b", max_epochs = 1, verbose = FALSE), "NA values")
  expect_error(RunSCVI(pbmc_small, layer = "data", max_epochs = 1, verbose = FALSE), "non-integer")
})

test_that("RunSCVI on a SingleCellExperiment adds reducedDim SCVI and its record", {
  data("pbmc_small", package = "SeuratObject")
  sce <- quietly(Seurat::as.SingleCellExperiment(pbmc_small))
  out <- RunSCVI(sce, batch = "groups", n_latent = 4, max_epochs = 1, seed.use = 3, verbose = FALSE)
  rd <- SingleCellExperiment::reducedDim(out, "SCVI")
  expect_equal(dim(rd), c(ncol(sce), 4))
  expect_identical(rownames(rd), colnames(sce))
  expect_identical(S4Vectors::metadata(out)$isthmus$SCVI$params$batch_key, "groups")
})
