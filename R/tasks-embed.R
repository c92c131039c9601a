# Embedding, integration and clustering verbs: scVI / scANVI latent spaces beside Harmony and
# PCA, one call each from a Seurat or SingleCellExperiment object (python/isthmus/tl/_embed.py).

#' Integrate batches or embed cells with scVI, scANVI or Harmony
#'
#' Trains the model on the raw counts (shared with Python, not copied) and adds its latent space
#' as a reduction named after the method (Seurat: "scvi", "scanvi", "harmony" with keys "SCVI_",
#' ...; SingleCellExperiment: reducedDim "SCVI", ...). The record (method, parameters, seed,
#' versions, seconds, the model's directory) goes to `Tool(object, "isthmus")` (SCE:
#' `metadata(object)$isthmus`) and the reduction's `misc`. Use the reduction as you would
#' "pca": `FindNeighbors(object, reduction = "scvi")`, `RunUMAP(object, reduction = "scvi", ...)`,
#' or [ClusterCells()].
#'
#' `RunSCVI()` and `RunSCANVI()` are `IntegrateCells()` with `method` set.
#'
#' @param object A Seurat or SingleCellExperiment object; or (the default method) a features x
#'   cells matrix of raw counts, which returns the result as a plain list instead of an object.
#' @param method "scvi", "scanvi" (needs `labels`) or "harmony" (on `reduction` if the object has
#'   it, else on a PCA computed the standard way).
#' @param batch A meta.data / colData column with each cell's batch (sample, chemistry, ...), or
#'   `NULL` (scVI then only embeds). NA is an error.
#' @param labels scANVI: a column with cell types; NA means unlabelled.
#' @param categorical.covariates,continuous.covariates scVI/scANVI: more columns to regress out
#'   (e.g. donor; percent.mt).
#' @param assay Seurat assay (default: the active one).
#' @param layer Where the raw counts are: "counts" (Seurat layer / SCE assay).
#' @param reduction Harmony: the reduction to correct (default: Seurat "pca", SCE "PCA"; computed
#'   the standard way if the object has none).
#' @param n_latent Dimensions of the latent space.
#' @param max_epochs Training epochs (`NULL`: scvi-tools' default for the data size).
#' @param scanvi_epochs scANVI's epochs after scVI's.
#' @param features The genes the count models (scVI, scANVI) train on: `NULL` (the default) takes
#'   the object's variable features (Seurat `VariableFeatures()`, run `FindVariableFeatures()`
#'   first; an SCE's logical `rowData(sce)$highly_variable`, as AnnData marks them) when it has
#'   them, else the field's standard selection on the counts (2000 genes,
#'   scanpy's "seurat_v3" flavour, per batch when `batch` is given); `"all"` trains on every gene;
#'   or a vector of gene names. The record lists the genes used (`genes_used`). Harmony ignores it.
#' @param accelerator Where the models train: `"auto"` (the GPU when torch sees one, else the CPU),
#'   `"cpu"` or `"gpu"`. Its default is the session option `isthmus.accelerator` (e.g.
#'   `options(isthmus.accelerator = "cpu")`), else `"auto"`. The record's `device` says where the
#'   model ran ("cpu", "cuda:0").
#' @param devices `"auto"` (one device), a number of devices, or GPU indices (`c(0, 1)`; `list(1)`
#'   for GPU 1 alone). Several devices train scVI, scANVI, totalVI and MultiVI with Lightning's DDP,
#'   one process per device, in a worker process (see the README); `IntegrateCells()` and
#'   `IntegrateModalities()` pass Lightning's `strategy =` on from `...` (default
#'   `"ddp_find_unused_parameters_true"`). The other methods take one device.
#' @param backend Where the call runs: `"inprocess"` (in this R session's Python, the counts handed
#'   over without a copy) or `"worker"` (a separate Python process, the data through a temporary
#'   .h5ad: a crash, an out-of-memory kill or a CUDA error there becomes an R error and this session
#'   and the object are left as they were; Esc / Ctrl-C stops it). Its default is the session
#'   option `isthmus.backend`, else `"inprocess"`. Several `devices` always run in a worker.
#' @param batch_size The models' minibatch size (`NULL`: each model's own, 128 for scVI).
#' @param model.dir Where to save the trained model (default: a temporary directory; see
#'   [SaveModel()]).
#' @param reduction.name,reduction.key Name and key of the new reduction.
#' @param allow.non.integer Let count models train on non-integer values (e.g. ambient-corrected
#'   counts); normalised data is refused otherwise.
#' @param seed.use Random seed (0, as in the Python core, for every verb): the same seed gives the
#'   same result on the same machine.
#' @param verbose Print a progress line about every tenth of training.
#' @param meta.data Default method: a data.frame of cell columns (batch, labels, covariates), one
#'   row per column of `object`.
#' @param embedding Default method, Harmony: a cells x dimensions matrix to correct (default: a
#'   PCA computed the standard way).
#' @param ... Passed to `scvi.model.SCVI()` (e.g. `n_layers`, `gene_likelihood`).
#' @return The object with the reduction and the record added; the default method returns a list
#'   (`reductions`: name -> embedding, key and record; `records`).
#' @export
IntegrateCells <- function(object, ...) UseMethod("IntegrateCells")

#' @rdname IntegrateCells
#' @export
IntegrateCells.default <- function(object, meta.data = NULL, method = c("scvi", "scanvi", "harmony"), batch = NULL,
                                   labels = NULL, categorical.covariates = NULL, continuous.covariates = NULL,
                                   features = NULL,
                                   embedding = NULL, n_latent = 10, max_epochs = NULL, scanvi_epochs = 20,
                                   model.dir = NULL, allow.non.integer = FALSE,
                                   accelerator = getOption("isthmus.accelerator", "auto"), devices = "auto",
                                   backend = getOption("isthmus.backend", "inprocess"), batch_size = NULL,
                                   seed.use = 0, verbose = TRUE, ...) {
  .local_backend(backend)
  method <- .choose_method(method, "IntegrateCells")
  adata <- .task_anndata(object, meta.data, c(batch, labels, categorical.covariates, continuous.covariates),
                         embedding = if (method == "harmony") embedding)
  out <- .integrate_in_python(adata, method, batch, labels, categorical.covariates, continuous.covariates,
                              n_latent, max_epochs, scanvi_epochs, allow.non.integer, model.dir, seed.use, verbose,
                              use_rep = if (method == "harmony" && !is.null(embedding)) "X_input",
                              genes = .genes_argument(features), accelerator = accelerator, devices = devices,
                              batch_size = batch_size, ...)
  reduction <- list(embedding = out$written[[paste0("obsm/X_", method)]], key = paste0(toupper(method), "_"),
                    record = out$record)
  .task_result(reductions = stats::setNames(list(reduction), method), records = stats::setNames(list(out$record), method))
}

#' @rdname IntegrateCells
#' @export
IntegrateCells.Seurat <- function(object, method = c("scvi", "scanvi", "harmony"), batch = NULL, labels = NULL,
                                  categorical.covariates = NULL, continuous.covariates = NULL, features = NULL,
                                  assay = NULL, layer = "counts", reduction = NULL, n_latent = 10, max_epochs = NULL,
                                  scanvi_epochs = 20, model.dir = NULL, reduction.name = NULL, reduction.key = NULL,
                                  allow.non.integer = FALSE,
                                  accelerator = getOption("isthmus.accelerator", "auto"), devices = "auto",
                                  backend = getOption("isthmus.backend", "inprocess"), batch_size = NULL,
                                  seed.use = 0, verbose = TRUE, ...) {
  .local_backend(backend)
  method <- .choose_method(method, "IntegrateCells")
  reduction <- reduction %||% .default_reduction_name(object, "pca")
  has_pca <- method == "harmony" && reduction %in% .reduction_names(object)
  parts <- .object_parts(object, assay, layer, columns = c(batch, labels, categorical.covariates, continuous.covariates),
                         embedding = if (has_pca) reduction)
  result <- IntegrateCells.default(parts$counts, parts$meta.data, method = method, batch = batch, labels = labels,
                                   categorical.covariates = categorical.covariates,
                                   continuous.covariates = continuous.covariates, embedding = parts$embedding,
                                   features = .model_features(object, parts$assay, features),
                                   n_latent = n_latent, max_epochs = max_epochs, scanvi_epochs = scanvi_epochs,
                                   model.dir = model.dir, allow.non.integer = allow.non.integer, seed.use = seed.use,
                                   accelerator = accelerator, devices = devices, batch_size = batch_size,
                                   verbose = verbose, ...)
  if (!is.null(reduction.key)) result$reductions[[method]]$key <- reduction.key
  names <- stats::setNames(list(reduction.name %||% .default_reduction_name(object, method)), method)
  .put_result(object, result, parts$assay, names)
}

#' @rdname IntegrateCells
#' @method IntegrateCells SingleCellExperiment
#' @export
IntegrateCells.SingleCellExperiment <- IntegrateCells.Seurat

# tl.integrate (python/isthmus/tl/_embed.py) with the R arguments as its keywords; shared by
# IntegrateCells() and the IntegrateLayers() methods (integrate-layers.R). `...`: more keywords
# (genes, accelerator, devices, batch_size, model keyword arguments).
.integrate_in_python <- function(adata, method, batch, labels, categorical.covariates, continuous.covariates,
                                 n_latent, max_epochs, scanvi_epochs, allow.non.integer, model.dir, seed.use, verbose,
                                 use_rep = NULL, ...) {
  kwargs <- list(method = method, batch_key = batch, labels_key = labels, layer = NULL,
                 categorical_covariate_keys = categorical.covariates, continuous_covariate_keys = continuous.covariates,
                 n_latent = n_latent, max_epochs = max_epochs, scanvi_epochs = scanvi_epochs, use_rep = use_rep,
                 allow_non_integer = allow.non.integer, model_dir = model.dir %||% .session_model_dir(method),
                 random_state = seed.use, verbose = verbose, ...)
  .run_core("integrate", list(adata), kwargs)
}

#' @rdname IntegrateCells
#' @export
RunSCVI <- function(object, batch = NULL, ...) IntegrateCells(object, method = "scvi", batch = batch, ...)

#' @rdname IntegrateCells
#' @export
RunSCANVI <- function(object, labels, batch = NULL, ...) {
  IntegrateCells(object, method = "scanvi", batch = batch, labels = labels, ...)
}

#' Leiden clusters on a reduction
#'
#' Builds the k-nearest-neighbour graph of a reduction (e.g. "scvi", "harmony", "pca") and runs
#' Leiden (scanpy with igraph, the same code the Python core and the benchmarks use), so that a
#' DL embedding and its baseline are clustered the same way.
#'
#' @param object A Seurat or SingleCellExperiment object; or (the default method) a cells x
#'   dimensions matrix (an embedding), which returns the clusters as a factor.
#' @param reduction The reduction (SCE: reducedDim) to cluster on.
#' @param dims Which dimensions to use (default: all).
#' @param resolution Leiden resolution: higher gives more clusters.
#' @param n_neighbors Neighbours per cell in the graph.
#' @param cluster.name The new meta.data / colData column (default "<reduction>_clusters").
#' @param seed.use Random seed.
#' @param ... Not used.
#' @return The object with a factor column of clusters; the default method returns the factor.
#' @export
ClusterCells <- function(object, ...) UseMethod("ClusterCells")

#' @rdname ClusterCells
#' @export
ClusterCells.default <- function(object, resolution = 1, n_neighbors = 15, seed.use = 0, ...) {
  embedding <- as.matrix(object)
  out <- .run_core("cluster", list(list(obsm = list(X_rep = embedding))),
                   list(use_rep = "X_rep", resolution = resolution, n_neighbors = n_neighbors, key_added = "clusters",
                        random_state = seed.use))
  labels <- .as_chr(out$value)
  factor(labels, levels = as.character(sort(unique(as.integer(labels)))))
}

#' @rdname ClusterCells
#' @export
ClusterCells.Seurat <- function(object, reduction, dims = NULL, resolution = 1, n_neighbors = 15, cluster.name = NULL,
                                seed.use = 0, ...) {
  .check_task_object(object)
  emb <- .embedding_of(object, reduction)
  if (!is.null(dims)) {
    if (!is.numeric(dims) || anyNA(dims) || any(dims < 1 | dims > ncol(emb) | dims != round(dims))) {
      stop("isthmus: dims must be dimensions of reduction '", reduction, "', which has ", ncol(emb), " (e.g. dims = 1:",
           ncol(emb), ").", call. = FALSE)
    }
    emb <- emb[, dims, drop = FALSE]
  }
  df <- data.frame(ClusterCells.default(emb, resolution = resolution, n_neighbors = n_neighbors, seed.use = seed.use))
  names(df) <- cluster.name %||% paste0(reduction, "_clusters")
  .put_result(object, .task_result(columns = df))
}

#' @rdname ClusterCells
#' @method ClusterCells SingleCellExperiment
#' @export
ClusterCells.SingleCellExperiment <- ClusterCells.Seurat
