# Label transfer: scANVI with scArches surgery vs kNN / linear SVM on a shared PCA
# (python/isthmus/tl/_transfer.py). The query comes back as Seurat's TransferData leaves it.

#' Transfer cell-type labels from an annotated reference to a query
#'
#' method "scanvi": a scANVI model of the reference (trained here, or reused: a saved model's
#' directory as `reference`, or the "scanvi" model recorded in a reference object by
#' [RunSCANVI()] with the same labels) is fine-tuned on the query by scArches surgery: only the
#' weights for the query's batches train, the reference part stays as it is. Baselines "knn"
#' and "svm" classify the query in a PCA fitted on the reference.
#'
#' Results in the query, as Seurat's `TransferData()` + `AddMetaData()` leave them:
#' meta.data (SCE: colData) `predicted.id` ("unknown" where the best score is below
#' `threshold`) and `prediction.score.max`; the per-label scores as an assay "predictions"
#' (rows: labels and "max"; SCE: colData columns `prediction.score.<label>`); the query's
#' latent space as reduction "scanvi" (baselines: "ref.pca"); the record (with the gene overlap)
#' in `Tool(query, "isthmus")$transfer`.
#'
#' @param query A Seurat or SingleCellExperiment object with raw counts; or (the default method) a
#'   features x cells matrix of raw counts, which returns the result as a plain list.
#' @param reference A Seurat or SingleCellExperiment object with raw counts and `labels`, or the
#'   directory of a saved scANVI model (see [SaveModel()]); for the default method, a features x
#'   cells matrix with `reference.meta.data`, or a model directory.
#' @param labels The reference's cell-type column; NA means unlabelled.
#' @param method "scanvi", "knn" or "svm".
#' @param batch A batch column (reference and, if the query has it, query); the query's batches
#'   are new batches to the model.
#' @param threshold Below this best score the label is "unknown".
#' @param min.gene.overlap The least share of the reference's genes the query must have.
#' @param query_epochs Epochs of surgery on the query.
#' @param retrain Train a new reference model even if `reference` records one.
#' @param features scANVI: the genes the reference model trains on (as in [IntegrateCells()]: the
#'   reference's variable features by default, `"all"`, or gene names).
#' @param assay,layer Where the raw counts are (both objects).
#' @param meta.data,reference.meta.data Default method: data.frames of the query's and the
#'   reference's cell columns (labels, batch).
#' @param ... Not used.
#' @inheritParams IntegrateCells
#' @return The query with the predictions added; the default method returns a list (`columns`,
#'   `assays$predictions`, `reductions`, `records`).
#' @export
TransferLabels <- function(query, ...) UseMethod("TransferLabels")

#' @rdname TransferLabels
#' @export
TransferLabels.default <- function(query, reference, labels = NULL, method = c("scanvi", "knn", "svm"), batch = NULL,
                                   threshold = 0.5, min.gene.overlap = 0.5, n_latent = 10, max_epochs = NULL,
                                   scanvi_epochs = 20, query_epochs = 100, model.dir = NULL, allow.non.integer = FALSE,
                                   features = NULL, accelerator = getOption("isthmus.accelerator", "auto"), devices = "auto",
                                   backend = getOption("isthmus.backend", "inprocess"), batch_size = NULL,
                                   seed.use = 0, verbose = TRUE, meta.data = NULL, reference.meta.data = NULL, ...) {
  .local_backend(backend)
  method <- .choose_method(method, "TransferLabels")
  reference_model <- NULL
  ref_adata <- NULL
  if (is.character(reference)) {
    if (method != "scanvi") stop("isthmus: a saved model as reference works with method = 'scanvi'.", call. = FALSE)
    if (!dir.exists(reference)) stop("isthmus: no directory ", reference, call. = FALSE)
    reference_model <- normalizePath(reference)
  } else {
    if (is.null(labels)) stop("isthmus: labels (the reference's cell-type column) is required.", call. = FALSE)
    ref_adata <- .task_anndata(reference, reference.meta.data, c(labels, batch), arg = "reference")
  }
  adata <- .task_anndata(query, meta.data, batch, arg = "query")
  kwargs <- list(labels_key = labels %||% "", method = method, batch_key = batch, layer = NULL,
                 reference_model = reference_model, threshold = threshold, min_gene_overlap = min.gene.overlap,
                 n_latent = n_latent, max_epochs = max_epochs, scanvi_epochs = scanvi_epochs,
                 query_epochs = query_epochs, allow_non_integer = allow.non.integer, genes = .genes_argument(features),
                 model_dir = if (method == "scanvi" && is.null(reference_model)) model.dir %||% .session_model_dir("scanvi-reference"),
                 random_state = seed.use,
                 accelerator = accelerator, devices = devices, batch_size = batch_size, verbose = verbose)
  out <- .run_core("transfer_labels", list(ref_adata, adata), kwargs)
  obs <- out$written[startsWith(names(out$written), "obs/transfer_")]
  names(obs) <- sub("^obs/transfer_", "", names(obs))
  score_cols <- setdiff(grep("^prediction\\.score\\.", names(obs), value = TRUE), "prediction.score.max")
  scores <- do.call(rbind, lapply(obs[c(score_cols, "prediction.score.max")], as.numeric))
  dimnames(scores) <- list(c(sub("^prediction\\.score\\.", "", score_cols), "max"), colnames(query))
  columns <- data.frame(predicted.id = .as_chr(obs[["predicted.id"]]),
                        prediction.score.max = as.numeric(obs[["prediction.score.max"]]))
  score_columns <- as.data.frame(lapply(obs[score_cols], as.numeric), optional = TRUE)
  name <- if (method == "scanvi") "scanvi" else "ref.pca"
  reduction <- list(embedding = out$written[["obsm/X_transfer"]], key = if (method == "scanvi") "SCANVI_" else "refpca_",
                    record = out$record)
  .task_result(reductions = stats::setNames(list(reduction), name), columns = columns,
               assays = list(predictions = list(values = scores, seurat.only = TRUE, quiet.names = TRUE,
                                                columns = score_columns)),
               records = list(transfer = out$record))
}

#' @rdname TransferLabels
#' @export
TransferLabels.Seurat <- function(query, reference, labels = NULL, method = c("scanvi", "knn", "svm"), batch = NULL,
                                  threshold = 0.5, min.gene.overlap = 0.5, assay = NULL, layer = "counts",
                                  n_latent = 10, max_epochs = NULL, scanvi_epochs = 20, query_epochs = 100,
                                  retrain = FALSE, model.dir = NULL, allow.non.integer = FALSE, features = NULL,
                                  accelerator = getOption("isthmus.accelerator", "auto"), devices = "auto",
                                  backend = getOption("isthmus.backend", "inprocess"), batch_size = NULL,
                                  seed.use = 0,
                                  verbose = TRUE, ...) {
  .local_backend(backend)
  method <- .choose_method(method, "TransferLabels")
  .check_task_object(query, "query")
  reference_parts <- NULL
  if (!is.character(reference)) {
    .check_task_object(reference, "reference")
    if (is.null(labels)) stop("isthmus: labels (the reference's cell-type column) is required.", call. = FALSE)
    recorded <- .get_record(reference, .default_reduction_name(reference, "scanvi"))
    if (method == "scanvi" && !retrain && !is.null(recorded) && identical(recorded$params$labels_key, labels) &&
        dir.exists(recorded$model_dir %||% "")) {
      if (verbose) message("isthmus: reusing the reference's scANVI model (", recorded$model_dir, ")")
      reference <- recorded$model_dir
    } else {
      reference_parts <- .object_parts(reference, assay, layer, columns = c(labels, batch), arg = "reference")
      features <- .model_features(reference, reference_parts$assay, features)
      reference <- reference_parts$counts
    }
  }
  parts <- .object_parts(query, assay, layer, columns = batch, arg = "query")
  # the batch crosses for each object that has it (a reference-only batch makes the query one new batch)
  result <- TransferLabels.default(parts$counts, reference, labels = labels, method = method,
                                   batch = batch, threshold = threshold,
                                   min.gene.overlap = min.gene.overlap, n_latent = n_latent, max_epochs = max_epochs,
                                   scanvi_epochs = scanvi_epochs, query_epochs = query_epochs, model.dir = model.dir,
                                   allow.non.integer = allow.non.integer, features = features, seed.use = seed.use,
                                   accelerator = accelerator, devices = devices, batch_size = batch_size,
                                   verbose = verbose,
                                   meta.data = parts$meta.data, reference.meta.data = reference_parts$meta.data)
  .put_result(query, result, parts$assay)
}

#' @rdname TransferLabels
#' @method TransferLabels SingleCellExperiment
#' @export
TransferLabels.SingleCellExperiment <- TransferLabels.Seurat
