# The method registry seen from R, and the one validation in the core: bad input is refused before
# any work, by a message that names the R argument the user typed. Each case was found trying the
# verbs as a new user would.

test_that("every verb offers exactly the registry's methods, and isthmus_methods() lists them", {
  table <- isthmus_methods()
  expect_true(all(c("task", "method", "kind", "needs", "r_verb", "summary") %in% names(table)))
  expect_true(all(table$kind %in% c("dl", "baseline", "classical")))
  verbs <- unique(table$r_verb[nzchar(table$r_verb)])
  expect_setequal(verbs, c("IntegrateCells", "DenoiseExpression", "GenerateCells", "TransferLabels",
                           "DeconvolveSpots", "MapCells", "FindSpatialDomains", "SpatialInteractions",
                           "IntegrateModalities", "RunVelocity", "PredictPerturbation", "DeconvolveBulk"))
  for (verb in verbs) {
    # each S3 method of the verb (matrix, Seurat, SingleCellExperiment; DeconvolveBulk's
    # SummarizedExperiment) offers the same choices
    expect_false(is.null(utils::getS3method(verb, "default", envir = asNamespace("isthmus"), optional = TRUE)))
    for (class in c("default", "Seurat", "SingleCellExperiment", "SummarizedExperiment")) {
      method <- utils::getS3method(verb, class, envir = asNamespace("isthmus"), optional = TRUE)
      if (is.null(method)) next
      offered <- eval(formals(method)$method)
      expect_setequal(offered, table$method[table$r_verb == verb])
    }
  }
  expect_identical(isthmus_methods("spatial_domains")$method, c("gat", "banksy", "pca"))
  expect_error(isthmus_methods("nope"), "no task 'nope'; tasks: ")
})

test_that("argument types and ranges are checked before any work, in the R argument's name", {
  obj <- pbmc3_seurat()
  before <- obj
  expect_error(RunSCVI(obj, batch = "batch", max_epochs = "two"), "max_epochs must be a whole number; got \"two\"")
  expect_error(RunSCVI(obj, batch = "batch", max_epochs = -1), "max_epochs must be at least 1; got -1")
  expect_error(RunSCVI(obj, batch = "batch", max_epochs = 2.7), "max_epochs must be a whole number; got 2.7")
  expect_error(RunSCVI(obj, batch = "batch", seed.use = "abc"), "seed.use must be a whole number")
  expect_error(RunSCVI(obj, batch = "batch", n_latent = c(5, 10)), "n_latent must be a single value, not 2 \\(c\\(5, 10\\)\\)")
  expect_error(RunSCVI(obj, batch = "batch", n_latent = 0), "n_latent must be at least 1; got 0")
  expect_error(RunSCVI(obj, batch = c("batch", "cell_type")), "batch must be a single value, not 2")
  expect_error(RunSCVI(obj, batch = "percent_mito", max_epochs = 1),
               "batch column 'percent_mito' holds continuous numbers.*continuous.covariates")
  expect_error(IntegrateCells(obj, method = "harmony"), "harmony needs batch")
  expect_error(IntegrateCells(obj, method = "magic"), "method = \"magic\" is not a method of IntegrateCells")
  expect_error(TransferLabels(obj, obj, labels = "cell_type", method = "knn", threshold = "high"),
               "threshold must be a number; got \"high\"")
  expect_identical(obj, before)
  set.seed(1)
  ten <- matrix(stats::rnorm(ncol(obj) * 10), ncol = 10, dimnames = list(colnames(obj), paste0("TEN_", 1:10)))
  obj[["ten"]] <- SeuratObject::CreateDimReducObject(embeddings = ten, key = "TEN_", assay = "RNA")
  expect_error(ClusterCells(obj, reduction = "ten", resolution = "high"), "resolution must be a number")
  expect_error(ClusterCells(obj, reduction = "ten", dims = 1:50), "dims must be dimensions of reduction 'ten', which has 10")
})

test_that("messages about counts name R's arguments; degenerate data are refused", {
  obj <- pbmc3_seurat()
  expect_error(RunSCVI(obj, layer = "data", max_epochs = 1, verbose = FALSE), "allow.non.integer = TRUE")
  counts <- layer_data(obj[["RNA"]], "counts")
  counts@x[] <- 0
  zero <- SeuratObject::CreateSeuratObject(counts = counts, meta.data = obj[[]])
  expect_error(RunSCVI(zero, max_epochs = 1, verbose = FALSE), "holds no counts \\(every value is zero\\)")
})

test_that("outputs are checked before the work, and SaveModel never overwrites a file", {
  obj <- pbmc3_seurat()
  expect_error(CompareMethods(obj, methods = "pca", batch = "batch", labels = "cell_type", png = "/no/such/dir/c.png"),
               "png = \"/no/such/dir/c.png\": the folder /no/such/dir does not exist")
  obj$nothing <- NA_character_
  expect_error(CompareMethods(obj, methods = "pca", batch = "batch", labels = "nothing"), "has no label in any cell")
  out <- IntegrateCells(obj, method = "harmony", batch = "batch", verbose = FALSE)
  file <- tempfile(fileext = ".txt")
  writeLines("mine", file)
  expect_error(SaveModel(out, "harmony", file), "is a file, not a directory")
  expect_identical(readLines(file), "mine")
})

test_that("a model directory as the first call of a session loads torch on its own BLAS", {
  dir <- tempfile("isthmus-scvi-")
  obj <- SaveModel(RunSCVI(pbmc3_seurat(), batch = "batch", max_epochs = 1, verbose = FALSE), "scvi", dir)
  file <- tempfile(fileext = ".rds")
  saveRDS(pbmc3_seurat(), file)
  gene <- SeuratObject::VariableFeatures(obj)[1]  # one the model was trained on (its variable features)
  code <- sprintf(paste0("o <- isthmus::DenoiseExpression(readRDS('%s'), model = '%s', features = '%s'); ",
                         "cat('\\nSTATE', isthmus:::.py_core()$torch_import_state(), '\\n')"), file, dir, gene)
  out <- system2(file.path(R.home("bin"), "Rscript"), c("-e", shQuote(code)), stdout = TRUE, stderr = TRUE)
  expect_true(any(grepl("STATE isthmus", out, fixed = TRUE)), info = paste(out, collapse = "\n"))
})
