# CompareMethods(): DL methods and their classical baselines run side by side on the user's own
# object, scored with the field's standard metrics (python/isthmus/tl/_compare.py).

#' Do the deep-learning methods help on this data? Run them beside the baselines and score them
#'
#' task "integration": scVI, scANVI, Harmony and PCA (log-normalised, variable genes, scaled),
#' each trained on the object and scored with scib-metrics against `labels`: bio conservation
#' (isolated labels, k-means NMI / ARI, silhouette, cLISI) and batch correction (BRAS, iLISI,
#' kBET, graph connectivity, PC regression), plus the aggregate scores and wall time. scANVI
#' sees the labels it is scored on, so its bio conservation is optimistic.
#' task "label_transfer": the cells of `query.batches` are the query and the rest the
#' reference (minus `holdout.labels`); scANVI surgery, kNN and SVM are scored by accuracy,
#' macro-F1 and expected calibration error against the query's own labels, with the share
#' called "unknown" (for held-out labels that is the right answer).
#' task "deconvolution": `object` is a labelled single-cell reference (e.g. the one you would
#' give [DeconvolveSpots()]); each cell type is split in two halves, one half summed into
#' pseudo-spots of known composition (`n_spots = 200` by default, 5-10 cells each), the other
#' used as the reference; DestVI, Stereoscope and NNLS are scored by RMSE, Jensen-Shannon
#' divergence and Pearson against the true cell fractions.
#'
#' @param object A Seurat or SingleCellExperiment object with raw counts.
#' @param task "integration", "label_transfer" or "deconvolution".
#' @param methods Which methods (default: all of the task's).
#' @param batch,labels The batch and cell-type columns.
#' @param query.batches label_transfer: the batch values that form the query.
#' @param holdout.labels label_transfer: labels removed from the reference.
#' @param png A file for the plot (methods x metrics), or `NULL` for none.
#' @param ... Passed to the methods (e.g. `n_latent`, `query_epochs`).
#' @inheritParams IntegrateCells
#' @return A data.frame with columns method, category, metric, value (tidy: one row per score);
#'   attribute "png" has the plot's path.
#' @export
CompareMethods <- function(object, task = c("integration", "label_transfer", "deconvolution"), methods = NULL, batch = NULL,
                           labels, query.batches = NULL, holdout.labels = NULL, png = NULL, assay = NULL,
                           layer = "counts", max_epochs = NULL, seed.use = 42, verbose = TRUE, ...) {
  task <- match.arg(task)
  input <- .task_input(object, assay, layer, columns = c(batch, labels), allow_na = labels)
  kwargs <- list(task = task, methods = if (!is.null(methods)) as.list(methods), batch_key = batch,
                 labels_key = labels, query_batches = if (!is.null(query.batches)) as.list(as.character(query.batches)),
                 holdout_labels = as.list(as.character(holdout.labels)), layer = NULL,
                 max_epochs = .as_int_or_null(max_epochs), random_state = as.integer(seed.use), verbose = verbose, ...)
  title <- paste0("isthmus: ", task, " methods on ", ncol(object), " cells")
  out <- .py_core()$compare(input$adata, kwargs, if (!is.null(png)) normalizePath(png, mustWork = FALSE), title)
  table <- as.data.frame(out$table, stringsAsFactors = FALSE)
  rownames(table) <- NULL
  attr(table, "png") <- if (nzchar(out$png)) out$png
  table
}
