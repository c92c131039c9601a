# One naming rule for the verbs' arguments (README, "Argument names"): Seurat's spelling where
# Seurat has the argument (assay, layer, reduction.name, seed.use, verbose, group.by, dims), the
# exact Python name for model hyperparameters (n_latent, max_epochs, n_neighbors, ...).
#
# The core checks every argument once, in Python, and names it in its messages; this table tells
# it the R name of each Python argument, so that an R user reads `seed.use` and
# `allow.non.integer = TRUE`, never `random_state` or `allow_non_integer=True`. A verb whose
# argument differs from the table's (DenoiseExpression's `k`) passes its own on top.
.python_to_r_names <- c(
  random_state = "seed.use",
  batch_key = "batch",
  labels_key = "labels",
  allow_non_integer = "allow.non.integer",
  categorical_covariate_keys = "categorical.covariates",
  continuous_covariate_keys = "continuous.covariates",
  model_dir = "model.dir",
  use_rep = "reduction",
  n_domains = "n.domains",
  n_seeds = "n.seeds",
  cluster_method = "cluster.method",
  refine_labels = "refine",
  min_gene_overlap = "min.gene.overlap",
  min_cells_per_type = "min.cells.per.type",
  min_cells = "min.cells",
  transform_batch = "transform.batch",
  genes = "features",
  n_cells = "n",
  training_genes = "training.genes",
  impute_genes = "genes",
  reference_model = "reference",
  spliced_layer = "spliced",
  unspliced_layer = "unspliced",
  basis = "reduction",
  query_batches = "query.batches",
  holdout_labels = "holdout.labels",
  condition_key = "condition",
  cell_type_key = "cell.type",
  bulk_values = "bulk.values"
)

# The map handed to Python with a verb's call: the table, with the verb's own differences on top.
.r_names <- function(...) {
  names <- .python_to_r_names
  own <- c(...)
  names[names(own)] <- own
  as.list(names)
}

#' The methods isthmus can run, from its one registry
#'
#' Every task (integration, label transfer, spatial domains, ...) lists its deep-learning
#' methods beside the classical baselines they are measured against; the verbs' `method`
#' arguments offer exactly these. The same table is `isthmus.tl.methods()` in Python.
#'
#' @param task One task's rows (e.g. "integrate", "spatial_domains"), or `NULL` for all.
#' @return A data.frame: task, method, kind ("dl", "baseline" or "classical"), needs, writes
#'   (AnnData keys), saves_model, r_verb (the verb that offers it) and a one-line summary.
#' @export
isthmus_methods <- function(task = NULL) {
  table <- as.data.frame(.py_task("methods_table"), stringsAsFactors = FALSE)
  if (is.null(task)) return(table)
  if (!task %in% table$task) {
    stop("isthmus: no task '", task, "'; tasks: ", paste(unique(table$task), collapse = ", "), call. = FALSE)
  }
  table[table$task == task, , drop = FALSE]
}

# The method a verb was asked for, checked against the registry (the verb's `method` default lists
# the same choices, for the help page and tab completion; a test keeps the two equal).
.choose_method <- function(method, verb) {
  if (!is.character(method) || !length(method)) {
    stop("isthmus: method must be a method name, e.g. method = \"", .registry_methods(verb)[1], "\".", call. = FALSE)
  }
  choices <- .registry_methods(verb)
  if (length(method) > 1) {
    if (!identical(sort(method), sort(choices))) {
      stop("isthmus: method must be one name, not ", length(method), ".", call. = FALSE)
    }
    method <- method[1]  # the verb's default: its first choice
  }
  if (!method %in% choices) {
    stop("isthmus: method = \"", method, "\" is not a method of ", verb, "; choose one of ",
         paste0("\"", choices, "\"", collapse = ", "), ".", call. = FALSE)
  }
  method
}

.registry_methods <- function(verb) {
  table <- .isthmus$methods %||% (.isthmus$methods <- isthmus_methods())
  unique(table$method[table$r_verb == verb])
}
