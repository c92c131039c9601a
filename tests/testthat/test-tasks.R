# Every single-cell verb from R on the bundled real PBMC data (3 chemistries): R -> Python -> R for
# real, trained for an epoch or two. Quality is measured by bench/, not here.

pbmc_sce <- function() {
  x <- read_counts("pbmc_3batch_symphony.h5ad")
  SingleCellExperiment::SingleCellExperiment(assays = list(counts = x$counts), colData = S4Vectors::DataFrame(x$meta))
}
split_by_batch <- function(obj, query = "5p") {
  list(reference = obj[, obj$batch != query], query = obj[, obj$batch == query])
}

test_that("RunSCVI: reduction, record in Tool(), same seed same result, input untouched, progress", {
  obj <- pbmc3_seurat()
  before <- obj
  out <- RunSCVI(obj, batch = "batch", n_latent = 8, max_epochs = 1, seed.use = 1, verbose = FALSE)
  emb <- SeuratObject::Embeddings(out, "scvi")
  expect_equal(dim(emb), c(ncol(obj), 8))
  expect_identical(rownames(emb), colnames(obj))
  expect_identical(SeuratObject::Key(out[["scvi"]]), "SCVI_")
  expect_true(all(is.finite(emb)))
  record <- SeuratObject::Tool(out, "isthmus")$scvi
  expect_identical(record, isthmus_records(out, "scvi"))
  expect_identical(record$method, "scvi")
  expect_equal(record$params$max_epochs, 1)
  expect_equal(record$params$random_state, 1)
  expect_true(file.exists(file.path(record$model_dir, "model.pt")))
  expect_true(nzchar(record$versions[["scvi-tools"]]))
  again <- RunSCVI(obj, batch = "batch", n_latent = 8, max_epochs = 1, seed.use = 1, verbose = FALSE)
  expect_equal(SeuratObject::Embeddings(again, "scvi"), emb)
  expect_identical(obj, before)
  shown <- reticulate::py_capture_output(RunSCVI(obj, batch = "batch", max_epochs = 2, verbose = TRUE))
  expect_match(shown, "isthmus scVI: epoch 2/2  ELBO")
  expect_false(grepl("GPU available|Tip:|LOCAL_RANK", shown))
  silent <- reticulate::py_capture_output(RunSCVI(obj, batch = "batch", max_epochs = 1, verbose = FALSE))
  expect_identical(silent, "")
})

test_that("scVI takes covariates from meta.data; bad columns and non-counts are refused, object kept", {
  obj <- pbmc3_seurat()
  out <- RunSCVI(obj, batch = "batch", categorical.covariates = "cell_type_broad", continuous.covariates = "percent_mito",
                 max_epochs = 1, verbose = FALSE)
  expect_identical(unlist(isthmus_records(out, "scvi")$params$continuous_covariate_keys), "percent_mito")
  expect_error(RunSCVI(obj, batch = "nope", max_epochs = 1, verbose = FALSE), "column 'nope' is not in the cell metadata")
  na <- obj
  na$batch[3] <- NA
  expect_error(RunSCVI(na, batch = "batch", max_epochs = 1, verbose = FALSE), "'batch' has 1 NA values")
  expect_error(RunSCVI(obj, layer = "data", max_epochs = 1, verbose = FALSE), "non-integer")
  expect_error(IntegrateCells(obj, "harmony"), "harmony needs batch")
  expect_error(RunSCANVI(obj, labels = "nope", max_epochs = 1, verbose = FALSE), "'nope' is not in")
})

test_that("Harmony corrects the object's own PCA; scANVI reads NA labels as unlabelled; Leiden clusters", {
  obj <- pbmc3_seurat()
  out <- IntegrateCells(obj, "harmony", batch = "batch")
  expect_equal(dim(SeuratObject::Embeddings(out, "harmony")), dim(SeuratObject::Embeddings(obj, "pca")))
  expect_identical(isthmus_records(out, "harmony")$params$use_rep, "X_input")
  out$partial <- as.character(out$cell_type)
  out$partial[seq(1, ncol(out), by = 2)] <- NA
  out <- quietly(RunSCANVI(out, labels = "partial", batch = "batch", max_epochs = 1, scanvi_epochs = 1, verbose = FALSE))
  expect_true(all(c("harmony", "scanvi") %in% SeuratObject::Reductions(out)))
  expect_identical(SeuratObject::Key(out[["scanvi"]]), "SCANVI_")
  out <- ClusterCells(out, "harmony", resolution = 0.5)
  expect_s3_class(out$harmony_clusters, "factor")
  expect_gt(nlevels(out$harmony_clusters), 2)
  # Leiden on Harmony agrees with the known cell types well beyond chance
  expect_gt(mclust_free_ari(out$harmony_clusters, obj$cell_type), 0.3)
})

test_that("TransferLabels (kNN, SVM) fills meta.data and a predictions assay like TransferData", {
  s <- split_by_batch(pbmc3_seurat())
  for (method in c("knn", "svm")) {
    q <- quietly(TransferLabels(s$query, s$reference, labels = "cell_type", method = method, verbose = FALSE))
    expect_true(all(c("predicted.id", "prediction.score.max") %in% names(q[[]])))
    expect_gt(mean(q$predicted.id == as.character(q$cell_type)), 0.7)
    scores <- layer_data(q[["predictions"]], "data")
    expect_identical(colnames(scores), colnames(q))
    expect_true("max" %in% rownames(scores))
    expect_equal(unname(scores["max", ]), unname(q$prediction.score.max))
    expect_true(all(q$predicted.id[q$prediction.score.max < 0.5] == "unknown"))
    expect_true("ref.pca" %in% SeuratObject::Reductions(q))
    expect_identical(isthmus_records(q, "transfer")$method, method)
  }
  few <- s$query[1:100, ]
  expect_error(TransferLabels(few, s$reference, labels = "cell_type", method = "knn", verbose = FALSE),
               "the query has 100 of the reference's 1767 genes")
})

test_that("scANVI surgery reuses the reference's model, and a saved model in a new R session", {
  s <- split_by_batch(pbmc3_seurat())
  # The reference has 2 HSCs. The Python core's warning about them is an R warning (reticulate
  # itself only prints Python's warnings, which R cannot catch)
  expect_gt(sum(s$reference$cell_type == "HSC"), 0)
  expect_lt(sum(s$reference$cell_type == "HSC"), 3)
  expect_warning(ref <- RunSCANVI(s$reference, labels = "cell_type", batch = "batch", max_epochs = 2,
                                  scanvi_epochs = 1, verbose = FALSE),
                 "labels with fewer than 3 cells are treated as unlabelled: HSC", fixed = TRUE)
  expect_message(q <- TransferLabels(s$query, ref, labels = "cell_type", batch = "batch", query_epochs = 1,
                                     verbose = TRUE), "reusing the reference's scANVI model")
  expect_true("scanvi" %in% SeuratObject::Reductions(q))
  expect_identical(isthmus_records(q, "transfer")$model_dir, isthmus_records(ref, "scanvi")$model_dir)
  dir <- file.path(tempfile("isthmus-ref-"), "scanvi")
  ref <- SaveModel(ref, "scanvi", dir)
  expect_identical(isthmus_records(ref, "scanvi")$model_dir, normalizePath(dir))
  expect_true(file.exists(file.path(dir, "model.pt")))
  # a fresh R session: only the directory is known
  query_file <- tempfile(fileext = ".rds")
  saveRDS(s$query, query_file)
  code <- sprintf(paste0("q <- isthmus::TransferLabels(readRDS('%s'), reference = '%s', batch = 'batch', ",
                         "query_epochs = 1, verbose = FALSE); cat('\\nPREDICTED', length(q$predicted.id), ",
                         "isthmus::isthmus_records(q, 'transfer')$model_dir, '\\n')"), query_file, dir)
  out <- system2(file.path(R.home("bin"), "Rscript"), c("-e", shQuote(code)), stdout = TRUE, stderr = TRUE)
  expect_true(any(grepl(paste("PREDICTED", ncol(s$query), normalizePath(dir)), out, fixed = TRUE)), info = paste(out, collapse = "\n"))
})

test_that("DenoiseExpression: scVI (from the recorded or a saved model) and kNN, as new assays", {
  # every gene, so that any gene can be denoised (by default scVI trains on the variable features)
  obj <- RunSCVI(pbmc3_seurat(), batch = "batch", max_epochs = 20, features = "all", verbose = FALSE)
  genes <- c("CD3E", "MS4A1", "LYZ")
  out <- DenoiseExpression(obj, features = genes, transform.batch = "5p")
  denoised <- layer_data(out[["scvi_denoised"]], "data")
  expect_equal(dim(denoised), c(3, ncol(obj)))
  expect_identical(colnames(denoised), colnames(obj))
  expect_true(all(denoised >= 0))
  # B cells express MS4A1 more than T cells after denoising, as in the counts
  expect_gt(mean(denoised["MS4A1", obj$cell_type == "B"]), mean(denoised["MS4A1", obj$cell_type == "T_CD4"]))
  dir <- tempfile("isthmus-scvi-")
  obj <- SaveModel(obj, "scvi", dir)
  from_dir <- DenoiseExpression(obj, model = dir, features = genes, transform.batch = "5p")
  expect_equal(layer_data(from_dir[["scvi_denoised"]], "data"), denoised, tolerance = 1e-6)
  knn <- DenoiseExpression(obj, method = "knn", reduction = "pca", k = 10)
  expect_equal(dim(knn[["knn_denoised"]]), dim(obj[["RNA"]]))
  expect_identical(isthmus_records(knn, "knn_denoised")$method, "knn")
  expect_error(DenoiseExpression(pbmc3_seurat()), "needs a trained model")
})

test_that("GenerateCells: scVI and NB baselines give flagged synthetic cells; the check compares them", {
  obj <- RunSCVI(pbmc3_seurat(), batch = "batch", max_epochs = 2, verbose = FALSE)
  syn <- GenerateCells(obj, 40, groupby = "cell_type", groups = "B", transform.batch = "5p")
  expect_s4_class(syn, "Seurat")
  expect_equal(dim(syn), c(500, 40))  # the genes the model was trained on: the 500 variable features
  expect_setequal(rownames(syn), SeuratObject::VariableFeatures(obj))
  expect_true(all(syn$synthetic))
  expect_true(all(syn$cell_type == "B") && all(syn$batch == "5p"))
  counts <- layer_data(syn, "counts")
  expect_true(all(counts@x == round(counts@x)))
  expect_identical(isthmus_records(syn, "generate")$method, "scvi")
  nb <- GenerateCells(obj, 40, method = "nb", groupby = "cell_type", groups = "B")
  check <- CheckGeneratedCells(obj, nb, groupby = "cell_type")
  expect_s3_class(check, "data.frame")
  expect_identical(check$group, "B")
  expect_equal(check$n_synthetic, 40)
  expect_gt(check$mean_correlation, 0.8)
  expect_true(check$classifier_auc >= 0 && check$classifier_auc <= 1)
})

test_that("CompareMethods returns a tidy table and a PNG; label transfer is scored with held-out labels", {
  obj <- pbmc3_seurat()
  png <- tempfile(fileext = ".png")
  table <- CompareMethods(obj, methods = c("pca", "harmony"), batch = "batch", labels = "cell_type", png = png)
  expect_identical(names(table), c("method", "category", "metric", "value"))
  expect_setequal(unique(table$method), c("pca", "harmony"))
  expect_true(all(c("Bio conservation", "Batch correction", "Total", "seconds") %in% table$metric))
  expect_true(file.exists(png) && file.size(png) > 1000)
  expect_identical(attr(table, "png"), normalizePath(png))
  lt <- quietly(CompareMethods(obj, "label_transfer", methods = "knn", batch = "batch", labels = "cell_type",
                               query.batches = "5p", holdout.labels = "B", verbose = FALSE))
  scores <- setNames(lt$value, lt$metric)
  expect_gt(scores[["accuracy"]], 0.5)
  expect_true(scores[["heldout_called_unknown"]] >= 0 && scores[["heldout_called_unknown"]] <= 1)
})

test_that("the verbs take a SingleCellExperiment too", {
  sce <- pbmc_sce()
  out <- RunSCVI(sce, batch = "batch", n_latent = 4, max_epochs = 1, verbose = FALSE)
  expect_equal(dim(SingleCellExperiment::reducedDim(out, "SCVI")), c(ncol(sce), 4))
  expect_identical(S4Vectors::metadata(out)$isthmus$SCVI$params$batch_key, "batch")
  expect_identical(dirname(dirname(S4Vectors::metadata(out)$isthmus$SCVI$model_dir)), normalizePath(tempdir()))
  out <- DenoiseExpression(out)  # finds the SCE's "SCVI" record
  expect_equal(dim(SummarizedExperiment::assay(out, "scvi_denoised")), dim(sce))
  s <- split_by_batch(sce)
  q <- quietly(TransferLabels(s$query, s$reference, labels = "cell_type", method = "knn", verbose = FALSE))
  expect_true(all(c("predicted.id", "prediction.score.max", "prediction.score.B") %in% names(SummarizedExperiment::colData(q))))
  expect_true("REF.PCA" %in% SingleCellExperiment::reducedDimNames(q))
  syn <- GenerateCells(sce, 20, method = "nb", groupby = "cell_type")
  expect_s4_class(syn, "SingleCellExperiment")
  expect_true(all(syn$synthetic))
  expect_error(RunSCVI(sce, layer = "logcounts", verbose = FALSE), "no assay 'logcounts'")
})

test_that("each verb's default method takes a count matrix and a data.frame, and returns a plain list", {
  x <- read_counts("pbmc_3batch_symphony.h5ad")
  pca <- SeuratObject::Embeddings(pbmc3_seurat(), "pca")
  result <- IntegrateCells(x$counts, meta.data = x$meta, method = "harmony", batch = "batch", embedding = pca)
  expect_named(result, c("reductions", "columns", "assays", "records", "value"))
  expect_equal(dim(result$reductions$harmony$embedding), dim(pca))
  expect_identical(result$records$harmony$method, "harmony")
  # the same numbers as the Seurat method stores (one code path)
  obj <- IntegrateCells(pbmc3_seurat(), "harmony", batch = "batch")
  expect_equal(unname(SeuratObject::Embeddings(obj, "harmony")), unname(result$reductions$harmony$embedding),
               tolerance = 1e-6)
  clusters <- ClusterCells(result$reductions$harmony$embedding, resolution = 0.5)
  expect_s3_class(clusters, "factor")
  expect_identical(clusters, unname(ClusterCells(obj, "harmony", resolution = 0.5)$harmony_clusters))
  # a matrix without names, or a meta.data of other cells, is refused naming the argument
  expect_error(IntegrateCells(unname(x$counts), method = "harmony"), "object must be a features x cells matrix")
  expect_error(IntegrateCells(x$counts, meta.data = x$meta[1:5, ], method = "harmony"), "meta.data has 5 rows")
})
