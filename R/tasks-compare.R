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
#' task "perturbation": `labels` is the cell type and `condition` holds `control` and
#' `perturbed`; each cell type measured in both (or only `predict`) is held out in turn and its
#' response predicted from its control cells ([PredictPerturbation()]); scGen, the linear shift
#' and "no change" are scored by [PerturbationScores()] (category "Perturbation (<type>)").
#' task "bulk_deconvolution": `object` is a labelled reference with a `batch` column (donors,
#' batches); each batch (or each of `query.batches`) is held out in turn, 100 pseudo-bulks of 100
#' of its cells are deconvolved against the other batches ([DeconvolveBulk()]); Scaden, NNLS and
#' MuSiC-style NNLS are scored by RMSE, JSD and Pearson (category "Bulk deconvolution (<batch>)").
#'
#' @param object A Seurat or SingleCellExperiment object with raw counts.
#' @param task "integration", "label_transfer", "deconvolution", "perturbation" or
#'   "bulk_deconvolution".
#' @param condition,control,perturbed,predict perturbation: the condition column, its two values
#'   and the cell types to hold out (default: every type measured in both conditions).
#' @param methods Which methods (default: all of the task's).
#' @param batch,labels The batch and cell-type columns.
#' @param query.batches label_transfer: the batch values that form the query.
#' @param holdout.labels label_transfer: labels removed from the reference.
#' @param png A file for the plot (methods x metrics), or `NULL` for none.
#' @param features integration, label_transfer: the genes scVI / scANVI train on (as in
#'   [IntegrateCells()]: the object's variable features by default).
#' @param ... Passed to the methods (e.g. `n_latent`, `query_epochs`).
#' @inheritParams IntegrateCells
#' @return A data.frame with columns method, category, metric, value (tidy: one row per score);
#'   attribute "png" has the plot's path.
#' @export
CompareMethods <- function(object, task = c("integration", "label_transfer", "deconvolution", "perturbation",
                                            "bulk_deconvolution"), methods = NULL, batch = NULL,
                           labels, query.batches = NULL, holdout.labels = NULL, png = NULL, features = NULL, assay = NULL,
                           layer = "counts", max_epochs = NULL, condition = "condition", control = "ctrl",
                           perturbed = "stim", predict = NULL,
                           accelerator = getOption("isthmus.accelerator", "auto"), devices = "auto",
                           backend = getOption("isthmus.backend", "inprocess"), batch_size = NULL,
                           seed.use = 0, verbose = TRUE, ...) {
  .local_backend(backend)
  task <- match.arg(task)
  columns <- c(batch, labels, if (task == "perturbation") condition)
  parts <- .object_parts(object, assay, layer, columns = columns)
  adata <- .task_anndata(parts$counts, parts$meta.data, columns)
  kwargs <- list(task = task, methods = if (!is.null(methods)) as.list(methods), batch_key = batch,
                 labels_key = labels, query_batches = if (!is.null(query.batches)) as.list(as.character(query.batches)),
                 holdout_labels = as.list(as.character(holdout.labels)), layer = NULL,
                 max_epochs = max_epochs, random_state = seed.use,
                 accelerator = accelerator, devices = devices, batch_size = batch_size, verbose = verbose, ...)
  # scVI / scANVI train on the object's variable features, as RunSCVI() would
  if (task %in% c("integration", "label_transfer")) {
    kwargs$genes <- .genes_argument(.model_features(object, parts$assay, features))
  }
  if (task == "perturbation") {
    kwargs <- c(kwargs, list(condition_key = condition, control = control, perturbed = perturbed,
                             predict = if (!is.null(predict)) as.list(predict)))
    # predicted cells are scored at the training genes chosen without the held-out cells
    if (!is.null(features)) kwargs$genes <- .genes_argument(features)
  }
  if (task == "bulk_deconvolution") kwargs$max_epochs <- NULL  # Scaden counts steps (max_steps in ...)
  title <- paste0("isthmus: ", task, " methods on ", ncol(object), " cells")
  options <- list(figure = if (!is.null(png)) normalizePath(png, mustWork = FALSE), title = title)
  out <- .run_core("compare", list(adata), kwargs, options)
  table <- out$value
  rownames(table) <- NULL
  attr(table, "png") <- if (nzchar(out$figure)) out$figure
  table
}

#' Score joint embeddings and neighbour graphs against cell types (bio conservation)
#'
#' For representations already in the object: reductions (totalVI, MultiVI, PCA, LSI, ...) and
#' Seurat Neighbor objects (WNN's "weighted.nn" from [Seurat::FindMultiModalNeighbors()], which
#' has no embedding). Each gets the same scores against `labels` (scib-metrics): Leiden NMI / ARI
#' with the resolution searched over 0.2..2 as scib does, cLISI on the 15-nearest-neighbour graph,
#' and for reductions the label silhouette and isolated-label F1 (`NA` for neighbour graphs).
#' This is how to see on your own labelled data whether a joint DL embedding beats WNN or one
#' modality alone.
#'
#' @param object A Seurat object (or SingleCellExperiment, reductions only).
#' @param labels A meta.data / colData column with the cell types (cells with `NA` are left out).
#' @param reductions Reduction names (SCE: reducedDim names).
#' @param neighbors Seurat Neighbor object names, e.g. "weighted.nn".
#' @param dims Use only the first `dims` dimensions of each reduction (`NULL`: all).
#' @return A data.frame: method, metric, value.
#' @export
CompareEmbeddings <- function(object, labels, reductions = NULL, neighbors = NULL, dims = NULL) {
  .check_task_object(object)
  if (length(reductions) + length(neighbors) == 0) stop("isthmus: give reductions and/or neighbors to score.", call. = FALSE)
  meta <- if (.is_seurat(object)) object[[]] else as.data.frame(SummarizedExperiment::colData(object))
  if (!labels %in% names(meta)) stop("isthmus: no column '", labels, "' in the cell metadata.", call. = FALSE)
  known <- !is.na(meta[[labels]])
  embeddings <- lapply(stats::setNames(nm = reductions), function(name) {
    values <- if (.is_seurat(object)) {
      if (!name %in% SeuratObject::Reductions(object)) stop("isthmus: no reduction '", name, "'.", call. = FALSE)
      SeuratObject::Embeddings(object, name)
    } else {
      if (!name %in% SingleCellExperiment::reducedDimNames(object)) stop("isthmus: no reducedDim '", name, "'.", call. = FALSE)
      as.matrix(SingleCellExperiment::reducedDim(object, name))
    }
    if (!is.null(dims)) values <- values[, seq_len(min(dims, ncol(values))), drop = FALSE]
    values[known, , drop = FALSE]
  })
  graphs <- lapply(stats::setNames(nm = neighbors), function(name) {
    if (!.is_seurat(object) || !name %in% SeuratObject::Neighbors(object)) {
      stop("isthmus: no Neighbor object '", name, "' (see SeuratObject::Neighbors()).", call. = FALSE)
    }
    nn <- object[[name]]
    if (!all(known)) stop("isthmus: neighbour graphs are scored on every cell: give every cell a label.", call. = FALSE)
    # the core's ("neighbors", indices from 0, distances)
    list("neighbors", SeuratObject::Indices(nn) - 1L, SeuratObject::Distances(nn))
  })
  table <- .run_core("bio_scores", list(as.character(meta[[labels]][known]), c(embeddings, graphs)), list())$value
  rownames(table) <- NULL
  table
}
