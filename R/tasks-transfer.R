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
#' @param query A Seurat or SingleCellExperiment object with raw counts.
#' @param reference A Seurat or SingleCellExperiment object with raw counts and `labels`, or the
#'   directory of a saved scANVI model (see [SaveModel()]).
#' @param labels The reference's cell-type column; NA means unlabelled.
#' @param method "scanvi", "knn" or "svm".
#' @param batch A batch column (reference and, if the query has it, query); the query's batches
#'   are new batches to the model.
#' @param threshold Below this best score the label is "unknown".
#' @param min.gene.overlap The least share of the reference's genes the query must have.
#' @param query_epochs Epochs of surgery on the query.
#' @param retrain Train a new reference model even if `reference` records one.
#' @param assay,layer Where the raw counts are (both objects).
#' @inheritParams IntegrateCells
#' @return The query with the predictions added.
#' @export
TransferLabels <- function(query, reference, labels = NULL, method = c("scanvi", "knn", "svm"), batch = NULL,
                           threshold = 0.5, min.gene.overlap = 0.5, assay = NULL, layer = "counts",
                           n_latent = 10, max_epochs = NULL, scanvi_epochs = 20, query_epochs = 100,
                           retrain = FALSE, model.dir = NULL, allow.non.integer = FALSE, seed.use = 42,
                           verbose = TRUE) {
  method <- .choose_method(method, "TransferLabels")
  .check_task_object(query, "query")
  reference_model <- NULL
  if (is.character(reference)) {
    if (method != "scanvi") stop("isthmus: a saved model as reference works with method = 'scanvi'.", call. = FALSE)
    if (!dir.exists(reference)) stop("isthmus: no directory ", reference, call. = FALSE)
    reference_model <- normalizePath(reference)
    ref_adata <- NULL
  } else {
    .check_task_object(reference, "reference")
    if (is.null(labels)) stop("isthmus: labels (the reference's cell-type column) is required.", call. = FALSE)
    recorded <- .get_record(reference, .default_reduction_name(reference, "scanvi"))
    if (method == "scanvi" && !retrain && !is.null(recorded) && identical(recorded$params$labels_key, labels) &&
        dir.exists(recorded$model_dir %||% "")) {
      if (verbose) message("isthmus: reusing the reference's scANVI model (", recorded$model_dir, ")")
      reference_model <- recorded$model_dir
      ref_adata <- NULL
    } else {
      ref_batch <- if (!is.null(batch) && batch %in% names(.cell_meta(reference))) batch
      ref_adata <- .task_input(reference, assay, layer, columns = c(labels, ref_batch))$adata
    }
  }
  query_batch <- if (!is.null(batch) && batch %in% names(.cell_meta(query))) batch
  input <- .task_input(query, assay, layer, columns = query_batch)
  kwargs <- list(labels_key = labels %||% "", method = method, batch_key = batch, layer = NULL,
                 reference_model = reference_model, threshold = threshold, min_gene_overlap = min.gene.overlap,
                 n_latent = n_latent, max_epochs = max_epochs, scanvi_epochs = scanvi_epochs,
                 query_epochs = query_epochs, allow_non_integer = allow.non.integer,
                 model_dir = if (method == "scanvi" && is.null(reference_model)) model.dir %||% .session_model_dir("scanvi-reference"),
                 random_state = seed.use, verbose = verbose)
  out <- .py_task("transfer_labels", ref_adata, input$adata, kwargs)
  .transfer_into(query, out, method, input$assay)
}

.transfer_into <- function(query, out, method, assay) {
  table <- as.data.frame(out$table, stringsAsFactors = FALSE)
  score_cols <- setdiff(grep("^prediction\\.score\\.", names(table), value = TRUE), "prediction.score.max")
  scores <- t(as.matrix(table[c(score_cols, "prediction.score.max")]))
  rownames(scores) <- c(sub("^prediction\\.score\\.", "", score_cols), "max")
  colnames(scores) <- colnames(query)
  meta <- data.frame(predicted.id = table[["predicted.id"]], prediction.score.max = table[["prediction.score.max"]])
  record <- out$record
  if (.is_seurat(query)) {
    # Seurat's feature names cannot hold "_" (it warns and changes them); the labels keep theirs
    # in meta.data, the assay rows follow Seurat's rule
    query <- .set_assay(query, "predictions", suppressWarnings(SeuratObject::CreateAssayObject(data = scores)))
  } else {
    meta <- cbind(meta, table[score_cols])
  }
  query <- .put_columns(query, meta)
  name <- if (method == "scanvi") .default_reduction_name(query, "scanvi") else if (.is_seurat(query)) "ref.pca" else "REF.PCA"
  key <- if (method == "scanvi") "SCANVI_" else "refpca_"
  query <- .put_embedding(query, name, key, out$latent, assay, record)
  .put_record(query, "transfer", record)
}
