# RunSCVI(): scVI's latent space as a Seurat reduction / SCE reducedDim. The first DL verb; the
# embedding task (issue 3) extends it with clustering and the PCA baseline.

#' Run scVI and add its latent space to the object
#'
#' Trains an scVI model (scvi-tools) on the raw counts and stores the latent space as a
#' reduction (Seurat: reduction `reduction.name`, key `reduction.key`; SingleCellExperiment:
#' `reducedDim(x, "SCVI")`). Only the counts and the batch column cross to Python, shared
#' without a copy.
#'
#' @param object A Seurat or SingleCellExperiment object.
#' @param assay Seurat assay (default: the active one).
#' @param layer Which matrix holds the raw counts: "counts" (Seurat slot / SCE assay).
#' @param batch A meta.data / colData column with the batch of each cell, or `NULL`.
#' @param n_latent Dimensions of the latent space.
#' @param max_epochs Training epochs (`NULL`: scvi-tools' default for the data size).
#' @param reduction.name,reduction.key Name and key of the new reduction.
#' @param seed.use Random seed (scvi-tools seeds torch, NumPy and Python with it).
#' @param verbose Show training progress.
#' @param ... Passed to `scvi.model.SCVI()` (e.g. `n_layers`, `gene_likelihood`).
#' @return The object with the reduction added.
#' @export
RunSCVI <- function(object, ...) UseMethod("RunSCVI")

.run_scvi_on_parts <- function(parts, batch, n_latent, max_epochs, seed.use, verbose, ...) {
  adata <- .py_core()$anndata_from_r(parts, FALSE)
  .py_core()$quiet_warnings()
  .py_core()$embed(adata, method = "scvi", layer = NULL, batch_key = batch, n_latent = as.integer(n_latent),
                   max_epochs = if (is.null(max_epochs)) NULL else as.integer(max_epochs),
                   random_state = as.integer(seed.use), verbose = verbose, ...)
}

.lean_parts <- function(counts, meta, batch, cells, features, what) {
  if (!is.null(batch)) {
    if (!batch %in% names(meta)) stop("isthmus: batch column '", batch, "' is not in the cell metadata.", call. = FALSE)
    if (anyNA(meta[[batch]])) stop("isthmus: batch column '", batch, "' has NA values; give every cell a batch.", call. = FALSE)
  }
  obs <- if (is.null(batch)) .empty_frame(cells) else .frame_to_py(meta[batch], cells, "meta.data", .new_report())
  list(obs_names = cells, var_names = features,
       X = .matrix_to_py(counts, what, sparse_only = TRUE), layers = list(),
       obs = obs, var = .empty_frame(features),
       obsm = list(), varm = list(), obsp = list(), uns = list())
}

#' @rdname RunSCVI
#' @export
RunSCVI.Seurat <- function(object, assay = NULL, layer = "counts", batch = NULL, n_latent = 10,
                           max_epochs = NULL, reduction.name = "scvi", reduction.key = "SCVI_",
                           seed.use = 42, verbose = TRUE, ...) {
  assay <- assay %||% SeuratObject::DefaultAssay(object)
  counts <- .assay_matrix(object, assay, layer)
  if (!length(counts)) stop("isthmus: assay ", assay, " has no '", layer, "'; scVI needs raw counts.", call. = FALSE)
  parts <- .lean_parts(counts, object@meta.data, batch, colnames(object), rownames(counts), paste0("assay ", assay, " ", layer))
  out <- .run_scvi_on_parts(parts, batch, n_latent, max_epochs, seed.use, verbose, ...)
  latent <- out$latent
  dimnames(latent) <- list(colnames(object), paste0(reduction.key, seq_len(ncol(latent))))
  object[[reduction.name]] <- SeuratObject::CreateDimReducObject(
    embeddings = latent, key = reduction.key, assay = assay, misc = list(isthmus = out$uns)
  )
  object
}

#' @rdname RunSCVI
#' @export
RunSCVI.SingleCellExperiment <- function(object, layer = "counts", batch = NULL, n_latent = 10, max_epochs = NULL,
                                         reduction.name = "SCVI", seed.use = 42, verbose = TRUE, ...) {
  counts <- SummarizedExperiment::assay(object, layer)
  meta <- as.data.frame(SummarizedExperiment::colData(object))
  parts <- .lean_parts(counts, meta, batch, colnames(object), rownames(object), paste0("assay ", layer))
  out <- .run_scvi_on_parts(parts, batch, n_latent, max_epochs, seed.use, verbose, ...)
  latent <- out$latent
  dimnames(latent) <- list(colnames(object), paste0("SCVI_", seq_len(ncol(latent))))
  SingleCellExperiment::reducedDim(object, reduction.name) <- latent
  S4Vectors::metadata(object)$isthmus[[reduction.name]] <- out$uns
  object
}
