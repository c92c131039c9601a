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
#' @param object A Seurat or SingleCellExperiment object with raw counts; or (the default method)
#'   a features x cells matrix of raw counts, which returns the values as a plain list.
#' @param method "scvi" or "knn".
#' @param model scVI: the name of a model recorded in the object ("scvi", "scanvi") or a saved
#'   model's directory (the default method: a directory).
#' @param features Genes to return (default: every gene the method covers: for scVI the genes the
#'   model was trained on, its variable genes unless it was trained on all; the result is dense,
#'   cells x features).
#' @param transform.batch scVI: show every cell as if from this batch.
#' @param reduction kNN: the reduction whose neighbours are averaged (default: a PCA computed the
#'   standard way).
#' @param k kNN: neighbours per cell.
#' @param new.assay Name of the new assay.
#' @param meta.data Default method: a data.frame of the cell columns the model was set up with.
#' @param embedding Default method, kNN: a cells x dimensions matrix whose neighbours are averaged.
#' @param ... Not used.
#' @inheritParams IntegrateCells
#' @return The object with the denoised assay and its record added; the default method returns a
#'   list (`assays`: name -> values, features x cells; `records`).
#' @export
DenoiseExpression <- function(object, ...) UseMethod("DenoiseExpression")

#' @rdname DenoiseExpression
#' @export
DenoiseExpression.default <- function(object, method = c("scvi", "knn"), model = NULL, features = NULL,
                                      transform.batch = NULL, k = 15, new.assay = NULL,
                                      accelerator = getOption("isthmus.accelerator", "auto"), devices = "auto",
                                      backend = getOption("isthmus.backend", "inprocess"), batch_size = NULL,
                                      seed.use = 0,
                                      meta.data = NULL, embedding = NULL, ...) {
  .local_backend(backend)
  method <- .choose_method(method, "DenoiseExpression")
  model_dir <- if (method == "scvi") .saved_model_dir(model)
  adata <- .task_anndata(object, meta.data, if (method == "scvi") .model_columns(model_dir), embedding = embedding)
  kwargs <- list(method = method, model = model_dir, layer = NULL, genes = features, transform_batch = transform.batch,
                 n_neighbors = k, use_rep = if (!is.null(embedding)) "X_input", random_state = seed.use,
                 accelerator = accelerator, devices = devices, batch_size = batch_size)
  out <- .run_core("denoise", list(adata), kwargs, .names = .r_names(n_neighbors = "k"))
  values <- t(out$value)
  # the genes covered: those asked for, else every gene the method covers (a model's training genes)
  dimnames(values) <- list(.as_chr(out$record$params$genes), colnames(object))
  name <- new.assay %||% paste0(method, "_denoised")
  .task_result(assays = stats::setNames(list(list(values = values, record = out$record)), name),
               records = stats::setNames(list(out$record), name))
}

#' @rdname DenoiseExpression
#' @export
DenoiseExpression.Seurat <- function(object, method = c("scvi", "knn"), model = "scvi", features = NULL,
                                     transform.batch = NULL, reduction = NULL, k = 15, new.assay = NULL, assay = NULL,
                                     layer = "counts",
                                     accelerator = getOption("isthmus.accelerator", "auto"), devices = "auto",
                                     backend = getOption("isthmus.backend", "inprocess"), batch_size = NULL,
                                     seed.use = 0, ...) {
  .local_backend(backend)
  method <- .choose_method(method, "DenoiseExpression")
  .check_task_object(object)
  model_dir <- if (method == "scvi") .model_dir(object, model)
  columns <- if (method == "scvi") .model_columns(model_dir)
  parts <- .object_parts(object, assay, layer, columns = columns, embedding = reduction)
  result <- DenoiseExpression.default(parts$counts, method = method, model = model_dir, features = features,
                                      transform.batch = transform.batch, k = k, new.assay = new.assay,
                                      seed.use = seed.use,
                                      accelerator = accelerator, devices = devices, batch_size = batch_size,
                                      meta.data = parts$meta.data, embedding = parts$embedding)
  .put_result(object, result, parts$assay)
}

#' @rdname DenoiseExpression
#' @method DenoiseExpression SingleCellExperiment
#' @export
DenoiseExpression.SingleCellExperiment <- DenoiseExpression.Seurat

# The default methods' `model`: a saved scVI / scANVI model's directory (no object to look a
# record up in).
.saved_model_dir <- function(model) {
  if (!is.character(model) || length(model) != 1 || !dir.exists(model)) {
    stop("isthmus: model must be the directory of a saved scVI / scANVI model.", call. = FALSE)
  }
  normalizePath(model)
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
#' @param object A Seurat or SingleCellExperiment object with raw counts; or (the default method)
#'   a features x cells matrix of raw counts, which returns the synthetic cells as a plain list.
#' @param n Number of cells to generate.
#' @param groupby,groups Condition on a column (e.g. cell type) and some of its values (default:
#'   all, in proportion to the real cells).
#' @inheritParams DenoiseExpression
#' @return A new object of the same class with the synthetic counts and meta.data `synthetic`
#'   (TRUE), `source_cell`, the group and batch columns. Merge it with the real cells if needed.
#'   The default method returns a list: `counts` (features x synthetic cells), `meta.data` and
#'   `records`.
#' @export
GenerateCells <- function(object, ...) UseMethod("GenerateCells")

#' @rdname GenerateCells
#' @export
GenerateCells.default <- function(object, n, method = c("scvi", "nb"), model = NULL, groupby = NULL, groups = NULL,
                                  transform.batch = NULL,
                                  accelerator = getOption("isthmus.accelerator", "auto"), devices = "auto",
                                  backend = getOption("isthmus.backend", "inprocess"), batch_size = NULL,
                                  seed.use = 0, meta.data = NULL, ...) {
  .local_backend(backend)
  method <- .choose_method(method, "GenerateCells")
  model_dir <- if (method == "scvi") .saved_model_dir(model)
  columns <- c(if (method == "scvi") .model_columns(model_dir), groupby)
  adata <- .task_anndata(object, meta.data, columns)
  kwargs <- list(n_cells = n, method = method, model = model_dir, layer = NULL, groupby = groupby,
                 groups = if (!is.null(groups)) as.list(as.character(groups)), transform_batch = transform.batch,
                 random_state = seed.use, accelerator = accelerator, devices = devices, batch_size = batch_size)
  out <- .run_core("generate", list(adata), kwargs)
  generated <- as_sce(.py_task("counts_in_x", out$value), x_assay = "counts")
  list(counts = SummarizedExperiment::assay(generated, "counts"),
       meta.data = as.data.frame(SummarizedExperiment::colData(generated)), records = list(generate = out$record))
}

#' @rdname GenerateCells
#' @export
GenerateCells.Seurat <- function(object, n, method = c("scvi", "nb"), model = "scvi", groupby = NULL, groups = NULL,
                                 transform.batch = NULL, assay = NULL, layer = "counts",
                                 accelerator = getOption("isthmus.accelerator", "auto"), devices = "auto",
                                 backend = getOption("isthmus.backend", "inprocess"), batch_size = NULL,
                                 seed.use = 0, ...) {
  .local_backend(backend)
  method <- .choose_method(method, "GenerateCells")
  .check_task_object(object)
  model_dir <- if (method == "scvi") .model_dir(object, model)
  columns <- c(if (method == "scvi") .model_columns(model_dir), groupby)
  parts <- .object_parts(object, assay, layer, columns = columns)
  generated <- GenerateCells.default(parts$counts, n = n, method = method, model = model_dir, groupby = groupby,
                                     groups = groups, transform.batch = transform.batch, seed.use = seed.use,
                                     accelerator = accelerator, devices = devices, batch_size = batch_size,
                                     meta.data = parts$meta.data)
  out <- if (.is_seurat(object)) {
    SeuratObject::CreateSeuratObject(counts = generated$counts, assay = parts$assay, meta.data = generated$meta.data)
  } else {
    SingleCellExperiment::SingleCellExperiment(assays = list(counts = generated$counts),
                                               colData = S4Vectors::DataFrame(generated$meta.data, check.names = FALSE))
  }
  .put_result(out, .task_result(records = generated$records))
}

#' @rdname GenerateCells
#' @method GenerateCells SingleCellExperiment
#' @export
GenerateCells.SingleCellExperiment <- GenerateCells.Seurat

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
CheckGeneratedCells <- function(real, synthetic, groupby = NULL, assay = NULL, layer = "counts", seed.use = 0) {
  real_in <- .object_parts(real, assay, layer, columns = groupby, arg = "real")
  synthetic_in <- .object_parts(synthetic, assay, layer, columns = groupby, arg = "synthetic")
  data <- list(.task_anndata(real_in$counts, real_in$meta.data, groupby, arg = "real"),
               .task_anndata(synthetic_in$counts, synthetic_in$meta.data, groupby, arg = "synthetic"))
  .run_core("check_generated", data, list(layer = NULL, groupby = groupby, random_state = seed.use))$value
}
