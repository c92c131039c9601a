# Denoising and generation from a trained scVI/scANVI model, each beside its classical baseline
# (python/isthmus/tl/_denoise.py, _generate.py).

#' Denoised expression from scVI, or kNN-smoothed expression
#'
#' method "scvi": the model's normalised expression, averaged over posterior samples, corrected
#' for library size (and shown as if every cell came from `transform.batch`, if given); method
#' "knn": each cell's log-normalised expression averaged over its nearest cells in a reduction.
#' Both are on the log-normalised scale (`log1p` of expression per 10,000 counts), so they plot
#' next to Seurat's `data`. Seurat: a new assay (`new.assay`, default "<method>_denoised")
#' holding it as `data`; SingleCellExperiment: an assay of that name (an altExp when only some
#' `features` are asked for).
#'
#' **Not for differential expression.** Denoised values borrow from similar cells: genes look
#' more correlated and groups more different than the counts support. Test on the counts.
#'
#' @param object A Seurat or SingleCellExperiment object with raw counts.
#' @param method "scvi" or "knn".
#' @param model scVI: the name of a model recorded in the object ("scvi", "scanvi") or a saved
#'   model's directory.
#' @param features Genes to return (default: all; the result is dense, cells x features).
#' @param transform.batch scVI: show every cell as if from this batch.
#' @param reduction kNN: the reduction whose neighbours are averaged (default: a PCA computed the
#'   standard way).
#' @param k kNN: neighbours per cell.
#' @param new.assay Name of the new assay.
#' @inheritParams IntegrateCells
#' @return The object with the denoised assay and its record added.
#' @export
DenoiseExpression <- function(object, method = c("scvi", "knn"), model = "scvi", features = NULL,
                              transform.batch = NULL, reduction = NULL, k = 15, new.assay = NULL, assay = NULL,
                              layer = "counts", seed.use = 42) {
  method <- .choose_method(method, "DenoiseExpression")
  .check_task_object(object)
  model_dir <- if (method == "scvi") .model_dir(object, model)
  columns <- if (method == "scvi") .model_columns(model_dir)
  input <- .task_input(object, assay, layer, columns = columns, embedding = reduction)
  kwargs <- list(method = method, model = model_dir, layer = NULL, genes = features, transform_batch = transform.batch,
                 n_neighbors = k, use_rep = if (!is.null(reduction)) "X_input", random_state = seed.use)
  out <- .py_task("denoise", input$adata, kwargs, .names = .r_names(n_neighbors = "k"))
  values <- t(out$values)
  dimnames(values) <- list(features %||% input$features, colnames(object))
  name <- new.assay %||% paste0(method, "_denoised")
  object <- .put_expression(object, name, values, out$record)
  .put_record(object, name, out$record)
}

# The cell columns a saved model was set up with (batch, labels, covariates).
.model_columns <- function(model_dir) {
  setup <- .py_task("model_setup", model_dir)
  unique(unlist(setup[c("batch_key", "labels_key", "categorical_covariate_keys", "continuous_covariate_keys")]))
}

#' Generate synthetic cells from a trained model, or from a negative-binomial baseline
#'
#' method "scvi": cells of the chosen groups are drawn from the model's aggregate posterior
#' (a real cell of the group is picked at random, a latent point drawn from its posterior and
#' decoded, counts drawn from the likelihood), optionally all in one batch (`transform.batch`);
#' method "nb": each gene drawn from a negative binomial fitted per group. Use it to enrich a
#' rare cell type for a classifier, or to see what the model has learnt ([CheckGeneratedCells()]).
#'
#' @param object A Seurat or SingleCellExperiment object with raw counts.
#' @param n Number of cells to generate.
#' @param groupby,groups Condition on a column (e.g. cell type) and some of its values (default:
#'   all, in proportion to the real cells).
#' @inheritParams DenoiseExpression
#' @return A new object of the same class with the synthetic counts and meta.data `synthetic`
#'   (TRUE), `source_cell`, the group and batch columns. Merge it with the real cells if needed.
#' @export
GenerateCells <- function(object, n, method = c("scvi", "nb"), model = "scvi", groupby = NULL, groups = NULL,
                          transform.batch = NULL, assay = NULL, layer = "counts", seed.use = 42) {
  method <- .choose_method(method, "GenerateCells")
  .check_task_object(object)
  model_dir <- if (method == "scvi") .model_dir(object, model)
  columns <- c(if (method == "scvi") .model_columns(model_dir), groupby)
  input <- .task_input(object, assay, layer, columns = columns)
  kwargs <- list(n_cells = n, method = method, model = model_dir, layer = NULL, groupby = groupby,
                 groups = if (!is.null(groups)) as.list(as.character(groups)), transform_batch = transform.batch,
                 random_state = seed.use)
  generated <- .py_task("generate", input$adata, kwargs)
  out <- if (.is_seurat(object)) as_seurat(generated$adata, assay = input$assay) else as_sce(generated$adata, x_assay = "counts")
  .put_record(out, "generate", generated$record)
}

#' Posterior predictive check: do generated cells look like real ones?
#'
#' Per group (or overall): correlation of per-gene means and variances (log-normalised),
#' mean absolute difference of per-gene zero fractions, and the cross-validated AUC of a
#' classifier telling synthetic from real cells (0.5: indistinguishable; 1: fully separable).
#'
#' @param real,synthetic Seurat or SingleCellExperiment objects with counts for the same genes.
#' @param groupby Compare within each value of this column (in both objects).
#' @inheritParams IntegrateCells
#' @return A data.frame, one row per group.
#' @export
CheckGeneratedCells <- function(real, synthetic, groupby = NULL, assay = NULL, layer = "counts", seed.use = 42) {
  real_in <- .task_input(real, assay, layer, columns = groupby)
  synthetic_in <- .task_input(synthetic, assay, layer, columns = groupby)
  out <- .py_task("check_generated", real_in$adata, synthetic_in$adata,
                                    list(layer = NULL, groupby = groupby, random_state = as.integer(seed.use)))
  as.data.frame(out, stringsAsFactors = FALSE)
}
