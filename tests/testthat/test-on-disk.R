# Counts larger than memory (issue 16 item 5): a SingleCellExperiment whose counts are an HDF5Array
# crosses as the file it already is (an .h5ad linking to it), and scVI trains from it a minibatch at a
# time (through a memory-mapped copy of its genes); the result comes back into the object as usual.

test_that("scVI trains from an HDF5Array SCE on disk: linked, not realised; the object keeps its counts", {
  skip_if_not_installed("HDF5Array")
  x <- read_counts("pbmc_3batch_symphony.h5ad")
  dense <- as.matrix(x$counts)
  storage.mode(dense) <- "double"
  file <- withr::local_tempfile(fileext = ".h5")
  # written without names, as saveHDF5SummarizedExperiment() does: the SCE holds them
  counts <- HDF5Array::writeHDF5Array(unname(dense), file, "counts", chunkdim = c(nrow(dense), 100L))
  sce <- SingleCellExperiment::SingleCellExperiment(list(counts = counts), colData = x$meta)
  rownames(sce) <- rownames(dense)
  run <- function(object) IntegrateCells(object, "scvi", batch = "batch", features = "all", max_epochs = 3,
                                         n_latent = 5, verbose = FALSE)
  on_disk <- run(sce)
  latent <- SingleCellExperiment::reducedDim(on_disk, "SCVI")
  expect_identical(dim(latent), c(ncol(sce), 5L))
  record <- isthmus_records(on_disk, "SCVI")
  expect_true(record$params$counts_on_disk)
  expect_s4_class(DelayedArray::seed(SummarizedExperiment::assay(on_disk, "counts")), "HDF5ArraySeed")  # on disk
  expect_identical(SingleCellExperiment::reducedDim(run(sce), "SCVI"), latent)  # the same seed repeats
  # in memory the counts cross as before, and the model reads the same minibatches: the same result;
  # a subset of the HDF5Array is a delayed operation, realised in memory
  in_memory <- run(SingleCellExperiment::SingleCellExperiment(list(counts = dense), colData = x$meta))
  expect_false(isthmus_records(in_memory, "SCVI")$params$counts_on_disk)
  expect_identical(SingleCellExperiment::reducedDim(in_memory, "SCVI"), latent)
  subset <- run(sce[, 1:600])
  expect_false(isthmus_records(subset, "SCVI")$params$counts_on_disk)
})
