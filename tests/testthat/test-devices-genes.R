# Where the models run (accelerator, devices, batch_size; the session option) and the genes the count
# models train on (the object's variable features by default), from R for real.

small_pbmc <- function() {
  obj <- pbmc3_seurat()  # 500 variable features (FindVariableFeatures, nfeatures = 500)
  obj[, seq(1, ncol(obj), by = 4)]
}

scvi_of <- function(obj, ...) RunSCVI(obj, batch = "batch", n_latent = 4, max_epochs = 2, verbose = FALSE, ...)

test_that("accelerator 'auto' is the CPU here: same numbers as 'cpu', the record says where it ran", {
  obj <- small_pbmc()
  auto <- scvi_of(obj)
  skip_if(isthmus_records(auto, "scvi")$params$device != "cpu", "auto is the GPU on this machine")
  cpu <- scvi_of(obj, accelerator = "cpu", devices = 1)
  expect_identical(SeuratObject::Embeddings(auto, "scvi"), SeuratObject::Embeddings(cpu, "scvi"))
  expect_equal(isthmus_records(auto, "scvi")$params$device, "cpu")
  expect_equal(isthmus_records(auto, "scvi")$params$accelerator, "auto")
  # the session option is the default of every verb's accelerator, and the record keeps it
  withr::with_options(list(isthmus.accelerator = "cpu"), by_option <- scvi_of(obj))
  expect_equal(isthmus_records(by_option, "scvi")$params$accelerator, "cpu")
  expect_identical(SeuratObject::Embeddings(by_option, "scvi"), SeuratObject::Embeddings(auto, "scvi"))
  # errors name the R argument, before any work; the object is untouched
  expect_error(scvi_of(obj, accelerator = "tpu"), 'accelerator must be one of "auto", "cpu", "gpu", "cuda"')
  expect_error(scvi_of(obj, batch_size = 0), "batch_size must be at least 1; got 0")
  expect_error(withr::with_options(list(isthmus.accelerator = "tpu"), scvi_of(obj)), "accelerator must be one of")
})

test_that("scVI trains on the object's VariableFeatures by default; features chooses others or all", {
  obj <- small_pbmc()
  variable <- SeuratObject::VariableFeatures(obj)
  expect_length(variable, 500)
  trained <- scvi_of(obj)
  params <- isthmus_records(trained, "scvi")$params
  expect_setequal(unlist(params$genes_used), variable)
  expect_equal(params$n_genes_used, 500)
  chosen <- rownames(obj)[1:50]
  params <- isthmus_records(scvi_of(obj, features = chosen), "scvi")$params
  expect_equal(unlist(params$genes_used), chosen)
  expect_equal(params$genes_from, "given")
  params <- isthmus_records(scvi_of(obj, features = "all"), "scvi")$params
  expect_equal(params$n_genes_used, nrow(obj))
  expect_equal(params$genes_from, "all")
  expect_error(scvi_of(obj, features = c(chosen, "NOT_A_GENE")), "features must be .*not in the data")
  # an SCE marks its variable genes in rowData, as AnnData's var["highly_variable"]
  sce <- SingleCellExperiment::SingleCellExperiment(list(counts = layer_data(obj, "counts")),
                                                    colData = obj@meta.data[, "batch", drop = FALSE])
  marked <- rownames(sce) %in% variable[1:300]
  SummarizedExperiment::rowData(sce)$highly_variable <- marked
  params <- isthmus_records(scvi_of(sce), "SCVI")$params  # an SCE names it as its reducedDim
  expect_setequal(unlist(params$genes_used), variable[1:300])
  expect_equal(params$genes_from, "given")
  # without variable features (an SCE, a plain matrix): the standard selection, here every gene
  out <- IntegrateCells(layer_data(obj, "counts"), meta.data = obj@meta.data, batch = "batch", n_latent = 4,
                        max_epochs = 1, verbose = FALSE)
  expect_equal(out$records$scvi$params$n_genes_used, nrow(obj))
  expect_match(out$records$scvi$params$genes_from, "^all \\(no more than 2000")
  # per-gene results say which genes they cover: denoised values for the model's genes
  denoised <- DenoiseExpression(trained, model = "scvi")
  expect_setequal(rownames(denoised[["scvi_denoised"]]), variable)
  expect_setequal(unlist(isthmus_records(denoised, "scvi_denoised")$params$genes), variable)
})
