# PredictPerturbation(): how a held-out cell type would respond to a perturbation
# (python/isthmus/tl/_perturb.py). Like GenerateCells(), it returns a new object: the predicted cells.

#' Predict how a cell type responds to a perturbation it was not measured under
#'
#' The cells of type `predict` under `perturbed` are held out: no fit sees them (when they are
#' in the object they are only the truth the scores measure against; changing them changes no
#' prediction). Their control cells are turned into predicted perturbed cells from what the
#' other cell types, measured in both conditions, show:
#' method "scgen": scGen's latent arithmetic (Lotfollahi et al. 2019) on an scVI-style VAE with a
#' negative binomial likelihood (scvi-tools): the shift between the conditions' mean latent
#' points, balanced by cell type, added to the control cells' latent points and decoded at their
#' library sizes; scGen's architecture (`n_latent` 100, `n_hidden` 800, `n_layers` 2) and 100
#' epochs by default. Baselines: "linear", the same balanced shift in log-normalised expression
#' (the linear baseline that matched the deep models in Ahlmann-Eltze et al. 2024), and
#' "no_change", the control cells themselves.
#'
#' @param object A Seurat or SingleCellExperiment object with raw counts, both conditions and a
#'   cell-type column; or (the default method) a features x cells matrix of raw counts with
#'   `meta.data`, which returns a plain list.
#' @param predict The cell type whose response is predicted.
#' @param method "scgen", "linear" or "no_change".
#' @param condition,control,perturbed The condition column and its two values.
#' @param cell.type The cell-type column.
#' @param features Genes to use: `NULL` (the variable genes, chosen on the training cells only,
#'   so never from the held-out cells; every gene when there are at most 2000), "all", or names.
#' @param n_latent,n_hidden,n_layers scGen's VAE (latent dimensions, hidden units, layers).
#' @param max_epochs scGen's training epochs (`NULL`: 100).
#' @param scores With the held-out type's real perturbed cells in the object: score the prediction
#'   against them ([PerturbationScores()]) and keep the table in the record (`$scores`).
#' @param meta.data Default method: a data.frame of the cells' columns.
#' @param ... Not used.
#' @inheritParams IntegrateCells
#' @return A new object of the same class: one predicted cell per control cell of `predict`, its
#'   log-normalised expression (log1p of counts per 10,000) as the `data` of assay `assay`
#'   (Seurat) or assay "logcounts" (SCE), meta.data `predicted` (TRUE), `source_cell` (the control
#'   cell it was made from), the cell type and the condition (`perturbed`); the record (with
#'   `scores`) in `Tool(object, "isthmus")$predict_perturbation` / `metadata(sce)$isthmus`. The
#'   default method returns a list: `data` (features x predicted cells), `meta.data`, `records`.
#' @examples
#' \dontrun{
#' predicted <- PredictPerturbation(kang, predict = "CD14+ Monocytes", method = "linear")
#' Tool(predicted, "isthmus")$predict_perturbation$scores
#' }
#' @export
PredictPerturbation <- function(object, ...) UseMethod("PredictPerturbation")

#' @rdname PredictPerturbation
#' @export
PredictPerturbation.default <- function(object, predict, method = c("scgen", "linear", "no_change"),
                                        condition = "condition", control = "ctrl", perturbed = "stim",
                                        cell.type = "cell_type", features = NULL, n_latent = 100, n_hidden = 800,
                                        n_layers = 2, max_epochs = NULL, model.dir = NULL, scores = TRUE,
                                        accelerator = getOption("isthmus.accelerator", "auto"), devices = "auto",
                                        backend = getOption("isthmus.backend", "inprocess"),
                                        batch_size = NULL, seed.use = 0, verbose = TRUE, meta.data = NULL, ...) {
  .local_backend(backend)
  method <- .choose_method(method, "PredictPerturbation")
  if (missing(predict)) stop("isthmus: predict (the cell type whose response is predicted) is required.", call. = FALSE)
  adata <- .task_anndata(object, meta.data, c(condition, cell.type))
  kwargs <- list(predict = predict, method = method, condition_key = condition, control = control,
                 perturbed = perturbed, cell_type_key = cell.type, layer = NULL, genes = .genes_argument(features),
                 n_latent = n_latent, n_hidden = n_hidden, n_layers = n_layers, max_epochs = max_epochs,
                 model_dir = if (method == "scgen") model.dir %||% .session_model_dir(method),
                 random_state = seed.use, accelerator = accelerator, devices = devices, batch_size = batch_size,
                 verbose = verbose)
  out <- .run_core("predict_perturbation", list(adata), kwargs)
  record <- out$record
  if (isTRUE(scores) && (record$params$held_out_perturbed_cells %||% 0) > 0) {
    record$scores <- .run_core("perturbation_scores", list(adata, out$value),
                               list(condition_key = condition, control = control, perturbed = perturbed,
                                    cell_type_key = cell.type, layer = NULL, random_state = seed.use))$value
  }
  predicted <- as_sce(.py_task("counts_in_x", out$value, "none"), x_assay = "logcounts")  # X as R's doubles
  list(data = as.matrix(SummarizedExperiment::assay(predicted, "logcounts")),
       meta.data = as.data.frame(SummarizedExperiment::colData(predicted)),
       records = list(predict_perturbation = record))
}

#' @rdname PredictPerturbation
#' @export
PredictPerturbation.Seurat <- function(object, predict, method = c("scgen", "linear", "no_change"),
                                       condition = "condition", control = "ctrl", perturbed = "stim",
                                       cell.type = "cell_type", features = NULL, n_latent = 100, n_hidden = 800,
                                       n_layers = 2, max_epochs = NULL, model.dir = NULL, scores = TRUE, assay = NULL,
                                       layer = "counts",
                                       accelerator = getOption("isthmus.accelerator", "auto"), devices = "auto",
                                       backend = getOption("isthmus.backend", "inprocess"),
                                       batch_size = NULL, seed.use = 0, verbose = TRUE, ...) {
  .local_backend(backend)
  method <- .choose_method(method, "PredictPerturbation")
  parts <- .object_parts(object, assay, layer, columns = c(condition, cell.type))
  out <- PredictPerturbation.default(parts$counts, predict = predict, method = method, condition = condition,
                                     control = control, perturbed = perturbed, cell.type = cell.type,
                                     features = features, n_latent = n_latent, n_hidden = n_hidden,
                                     n_layers = n_layers, max_epochs = max_epochs, model.dir = model.dir,
                                     scores = scores, accelerator = accelerator, devices = devices,
                                     batch_size = batch_size, seed.use = seed.use, verbose = verbose,
                                     meta.data = parts$meta.data)
  predicted <- if (.is_seurat(object)) {
    # SeuratObject 4 sets the new assay's key to the lower-case assay name and then warns that it
    # lacks the "_" it adds itself; SeuratObject 5 looks for a counts layer the predicted cells
    # cannot have (they are log-normalised values) and says it found none: nothing for the user to do
    withCallingHandlers(
      SeuratObject::CreateSeuratObject(SeuratObject::CreateAssayObject(data = out$data), assay = parts$assay,
                                       meta.data = out$meta.data),
      warning = function(w) {
        if (grepl("^Keys should be|^Layer counts isn't present", conditionMessage(w))) invokeRestart("muffleWarning")
      })
  } else {
    SingleCellExperiment::SingleCellExperiment(assays = list(logcounts = out$data),
                                               colData = S4Vectors::DataFrame(out$meta.data, check.names = FALSE))
  }
  .put_result(predicted, .task_result(records = out$records))
}

#' @rdname PredictPerturbation
#' @method PredictPerturbation SingleCellExperiment
#' @export
PredictPerturbation.SingleCellExperiment <- PredictPerturbation.Seurat

#' Score predicted perturbed cells against the real ones
#'
#' Per cell type of `predicted`: R^2 (1 - SS_res / SS_tot) and Pearson of the predicted vs real
#' perturbed mean expression (every gene: `r2_mean`, `pearson_mean`; the 100 genes whose mean
#' responds most: `..._top`), the same for the predicted vs real change from control
#' (`r2_change`, `pearson_change`, `..._top`: the metrics "no change" cannot win), the energy
#' distance and a classifier's AUC between predicted and real perturbed cells in the first 20
#' principal components of the type's real cells. All on log-normalised expression.
#'
#' @param object The real cells (Seurat / SCE with raw counts, both conditions).
#' @param predicted What [PredictPerturbation()] returned.
#' @inheritParams PredictPerturbation
#' @return A data.frame: cell_type, metric, value.
#' @export
PerturbationScores <- function(object, predicted, condition = "condition", control = "ctrl", perturbed = "stim",
                               cell.type = "cell_type", assay = NULL, layer = "counts", seed.use = 0) {
  real <- .object_parts(object, assay, layer, columns = c(condition, cell.type))
  guess <- if (.is_seurat(predicted)) {
    list(counts = .assay_matrix(predicted, SeuratObject::DefaultAssay(predicted), "data"), meta.data = predicted[[]])
  } else {
    list(counts = SummarizedExperiment::assay(predicted, "logcounts"),
         meta.data = as.data.frame(SummarizedExperiment::colData(predicted)))
  }
  data <- list(.task_anndata(real$counts, real$meta.data, c(condition, cell.type)),
               .task_anndata(guess$counts, guess$meta.data, cell.type, what = "predicted expression",
                             arg = "predicted"))
  table <- .run_core("perturbation_scores", data,
                     list(condition_key = condition, control = control, perturbed = perturbed,
                          cell_type_key = cell.type, layer = NULL, random_state = seed.use))$value
  rownames(table) <- NULL
  table
}
