# Multimodal verbs: RNA + protein (totalVI beside per-modality PCA) from a Seurat object with RNA
# and ADT assays or a SingleCellExperiment with the protein counts in an altExp
# (python/isthmus/tl/_rna_protein.py). Seurat's weighted nearest neighbours
# (FindMultiModalNeighbors) is the other classical baseline, run on the same object.

#' Joint RNA + protein embedding: totalVI, or the per-modality PCA baseline
#'
#' `method = "totalvi"` trains totalVI on the raw RNA and protein (ADT) counts of the same cells
#' and adds: the joint latent space as reduction "totalvi" (SCE: reducedDim "TOTALVI"); the
#' denoised protein (expected counts without background, per cell) as assay "totalvi_protein"; and the
#' probability that each protein count is background as assay "totalvi_background" (SCE: altExps
#' of those names). Antibodies with no count in any cell are left out, with a warning.
#' `method = "pca"` is the classical route: PCA of the log-normalised variable genes (reduction
#' "rna_pca") and of the CLR-normalised proteins ("protein_pca"), as Seurat's WNN workflow uses
#' them (`FindMultiModalNeighbors(object, reduction.list = list("rna_pca", "protein_pca"), ...)`).
#' The record (parameters, seconds, versions, the model's directory) goes to
#' `Tool(object, "isthmus")` (SCE: `metadata(object)$isthmus`).
#'
#' @param object A Seurat object with both assays, or a SingleCellExperiment whose protein
#'   counts are the altExp `protein.assay` (its RNA counts: the assay "counts").
#' @param method "totalvi" or "pca".
#' @param rna.assay,protein.assay The Seurat assays (protein: SCE altExp) with the raw counts.
#' @param batch A meta.data / colData column with each cell's batch, or `NULL`.
#' @param n_latent totalVI: dimensions of the latent space.
#' @param n_comps pca: components per modality.
#' @param max_epochs totalVI: training epochs (`NULL`: scvi-tools' default for the data size).
#' @param model.dir Where to save the trained model (default: a temporary directory; see
#'   [SaveModel()]).
#' @param seed.use Random seed: the same seed gives the same result on the same machine.
#' @param verbose Print a progress line about every tenth of training.
#' @param ... Passed to `scvi.model.TOTALVI()` (e.g. `n_layers_encoder`).
#' @return The object with the reductions, assays and record added.
#' @export
IntegrateModalities <- function(object, method = c("totalvi", "pca"), rna.assay = "RNA", protein.assay = "ADT",
                                batch = NULL, n_latent = 20, n_comps = 20, max_epochs = NULL, model.dir = NULL,
                                seed.use = 42, verbose = TRUE, ...) {
  method <- match.arg(method)
  .check_task_object(object)
  rna <- .task_input(object, if (.is_seurat(object)) rna.assay, "counts", columns = batch)
  protein <- .modality_counts(object, protein.assay)
  protein_adata <- .lean_anndata(protein, paste0("protein assay ", protein.assay), NULL)
  kwargs <- list(method = method, batch_key = batch, n_latent = as.integer(n_latent), n_comps = as.integer(n_comps),
                 max_epochs = .as_int_or_null(max_epochs), model_dir = model.dir %||% .session_model_dir(method),
                 random_state = as.integer(seed.use), verbose = verbose, ...)
  out <- .py_core()$rna_protein(rna$adata, protein_adata, kwargs)
  record <- out$record
  if (method == "totalvi") {
    object <- .put_embedding(object, .default_reduction_name(object, "totalvi"), "TOTALVI_", out$latent,
                             rna.assay, record)
    proteins <- as.character(unlist(out$proteins))
    cells <- colnames(object)
    for (part in c("denoised", "background")) {
      values <- t(as.matrix(out[[part]]))
      dimnames(values) <- list(proteins, cells)
      name <- if (part == "denoised") "totalvi_protein" else "totalvi_background"
      object <- .put_expression(object, name, methods::as(values, "CsparseMatrix"), record)
    }
  } else {
    object <- .put_embedding(object, .default_reduction_name(object, "rna_pca"), "RNAPC_", out$rna_pca, rna.assay, record)
    object <- .put_embedding(object, .default_reduction_name(object, "protein_pca"), "PROTEINPC_", out$protein_pca,
                             protein.assay, record)
  }
  .put_record(object, if (method == "pca") "rna_protein_pca" else method, record)
}

#' @rdname IntegrateModalities
#' @export
RunTotalVI <- function(object, ...) IntegrateModalities(object, method = "totalvi", ...)

# Raw counts (features x cells) of a second modality: a Seurat assay, or an SCE altExp.
.modality_counts <- function(object, assay) {
  if (.is_seurat(object)) {
    if (!assay %in% SeuratObject::Assays(object)) {
      stop("isthmus: no assay '", assay, "'; the object has: ", paste(SeuratObject::Assays(object), collapse = ", "),
           call. = FALSE)
    }
    return(.task_counts(object, assay, "counts")$matrix)
  }
  if (!assay %in% SingleCellExperiment::altExpNames(object)) {
    stop("isthmus: no altExp '", assay, "' with the protein counts; altExps: ",
         paste(SingleCellExperiment::altExpNames(object), collapse = ", "), call. = FALSE)
  }
  alt <- SingleCellExperiment::altExp(object, assay)
  .task_counts(alt, NULL, "counts")$matrix
}
