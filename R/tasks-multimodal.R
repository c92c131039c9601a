# Multimodal verbs: RNA + protein (totalVI beside per-modality PCA) and RNA + ATAC (MultiVI beside
# per-modality PCA / LSI) from a Seurat object with the assays side by side, or a
# SingleCellExperiment with the second modality in an altExp (python/isthmus/tl/_rna_protein.py,
# _rna_atac.py). Seurat's weighted nearest neighbours (FindMultiModalNeighbors) is the other
# classical baseline, run on the per-modality reductions these verbs add.

#' Joint RNA + protein or RNA + ATAC embedding: totalVI, MultiVI, or the per-modality baseline
#'
#' `method = "totalvi"` trains totalVI on the raw RNA and protein (ADT) counts of the same cells
#' and adds: the joint latent space as reduction "totalvi" (SCE: reducedDim "TOTALVI"); the
#' denoised protein (expected counts without background, per cell) as assay "totalvi_protein"; and the
#' probability that each protein count is background as assay "totalvi_background" (SCE: altExps
#' of those names). Antibodies with no count in any cell are left out, with a warning.
#'
#' `method = "multivi"` trains MultiVI on the raw RNA and ATAC peak counts and adds the joint
#' latent space as reduction "multivi" (SCE: "MULTIVI"). Partly paired data are welcome: a cell
#' whose ATAC counts are all zero (as [read_h5mu()] stores the cells a MuData's ATAC lacks, flagged
#' in meta.data `has_ATAC`) is read as "ATAC not measured", and likewise for RNA.
#'
#' `method = "pca"` is the classical route: PCA of the log-normalised variable genes (reduction
#' "rna_pca") and of the CLR-normalised proteins ("protein_pca") or LSI of the peaks (TF-IDF, SVD,
#' first component dropped: "atac_lsi"), as Seurat's WNN workflow uses them:
#' `FindMultiModalNeighbors(object, reduction.list = list("rna_pca", "atac_lsi"), ...)`.
#'
#' The record (parameters, seconds, versions, the model's directory) goes to
#' `Tool(object, "isthmus")` (SCE: `metadata(object)$isthmus`).
#'
#' @param object A Seurat object with both assays, or a SingleCellExperiment whose protein or
#'   ATAC counts are the altExp `protein.assay` / `atac.assay` (its RNA counts: the assay "counts");
#'   or (the default method) the RNA counts as a features x cells matrix, with `protein` or `atac`.
#' @param method "totalvi", "multivi" or "pca".
#' @param rna.assay The Seurat assay with the raw RNA counts.
#' @param protein.assay,atac.assay The Seurat assay (SCE: altExp) with the raw protein or peak
#'   counts. totalVI uses `protein.assay` (default "ADT"), MultiVI `atac.assay` (default "ATAC", or
#'   "peaks"); "pca" uses the one given, or whichever of ADT / ATAC the object has.
#' @param batch A meta.data / colData column with each cell's batch, or `NULL`.
#' @param n_latent totalVI / MultiVI: dimensions of the latent space (`NULL`: totalVI 20,
#'   MultiVI scvi-tools' default, which grows with the number of features).
#' @param n_comps pca: components per modality.
#' @param max_epochs Training epochs (`NULL`: scvi-tools' default; MultiVI's is up to 500 with
#'   early stopping).
#' @param model.dir Where to save the trained model (default: a temporary directory; see
#'   [SaveModel()]).
#' @param seed.use Random seed: the same seed gives the same result on the same machine.
#' @param verbose Print a progress line about every tenth of training.
#' @param protein,atac Default method: the second modality's raw counts, features x the same cells.
#' @param meta.data Default method: a data.frame with the batch column.
#' @param features totalVI / MultiVI: the RNA genes the model trains on: `NULL` (the default) takes
#'   the RNA assay's variable features when it has them, else 2000 by the field's standard
#'   selection on the counts; `"all"` every gene; or gene names. The record lists them.
#' @inheritParams IntegrateCells
#' @param ... Passed to `scvi.model.TOTALVI()` / `scvi.model.MULTIVI()` (e.g. `n_layers_encoder`).
#' @return The object with the reductions, assays and record added; the default method returns a
#'   list (`reductions`, `assays`, `records`).
#' @export
IntegrateModalities <- function(object, ...) UseMethod("IntegrateModalities")

#' @rdname IntegrateModalities
#' @export
IntegrateModalities.default <- function(object, protein = NULL, atac = NULL, method = c("totalvi", "multivi", "pca"),
                                        batch = NULL, features = NULL, n_latent = NULL, n_comps = 20, max_epochs = NULL,
                                        model.dir = NULL,
                                        accelerator = getOption("isthmus.accelerator", "auto"), devices = "auto",
                                        backend = getOption("isthmus.backend", "inprocess"), batch_size = NULL,
                                        seed.use = 0, verbose = TRUE, meta.data = NULL, ...) {
  .local_backend(backend)
  method <- .choose_method(method, "IntegrateModalities")
  if (is.null(protein) == is.null(atac)) stop("isthmus: give the second modality: protein or atac counts.", call. = FALSE)
  kind <- if (!is.null(protein)) "protein" else "atac"
  if (method == "totalvi" && kind != "protein") stop("isthmus: totalVI models protein: give protein counts.", call. = FALSE)
  if (method == "multivi" && kind != "atac") stop("isthmus: MultiVI here models ATAC: give atac counts.", call. = FALSE)
  rna <- .task_anndata(object, meta.data, batch)
  second <- .task_anndata(protein %||% atac, NULL, what = paste0(kind, " counts"), arg = kind)
  if (method == "totalvi") n_latent <- n_latent %||% 20
  kwargs <- list(method = method, batch_key = batch, genes = .genes_argument(features), n_comps = n_comps,
                 max_epochs = max_epochs,
                 model_dir = model.dir %||% .session_model_dir(method), random_state = seed.use,
                 accelerator = accelerator, devices = devices, batch_size = batch_size, verbose = verbose, ...)
  kwargs$n_latent <- n_latent  # NULL leaves the model's own default
  modalities <- if (kind == "protein") list(rna = rna, prot = second) else list(rna = rna, atac = second)
  task <- if (kind == "protein") "rna_protein" else "rna_atac"
  kwargs[[kind]] <- names(modalities)[2]
  kwargs$rna <- "rna"
  kwargs$key_added <- "X_joint"
  out <- .run_core(task, list(list(modalities = modalities)), kwargs)
  record <- out$record
  obsm <- function(key, name, reduction.key, from = "rna") {
    stats::setNames(list(list(embedding = out$written[[paste0("obsm/", key)]], key = reduction.key, record = record,
                              assay = from)), name)
  }
  reductions <- switch(method,
    totalvi = obsm("X_joint", "totalvi", "TOTALVI_"),
    multivi = obsm("X_joint", "multivi", "MULTIVI_"),
    c(obsm("X_rna_pca", "rna_pca", "RNAPC_"),
      if (kind == "protein") obsm("X_protein_pca", "protein_pca", "PROTEINPC_", kind) else
        obsm("X_atac_lsi", "atac_lsi", "ATACLSI_", kind)))
  assays <- list()
  if (method == "totalvi") {
    proteins <- .as_chr(out$value$proteins)
    for (part in c("denoised", "background")) {
      values <- t(as.matrix(out$value[[part]]))
      dimnames(values) <- list(proteins, colnames(object))
      name <- if (part == "denoised") "totalvi_protein" else "totalvi_background"
      assays[[name]] <- list(values = methods::as(values, "CsparseMatrix"), record = record)
    }
  }
  name <- if (method != "pca") method else paste0("rna_", kind, "_pca")
  .task_result(reductions = reductions, assays = assays, records = stats::setNames(list(record), name))
}

#' @rdname IntegrateModalities
#' @export
IntegrateModalities.Seurat <- function(object, method = c("totalvi", "multivi", "pca"), rna.assay = "RNA",
                                       protein.assay = NULL, atac.assay = NULL, batch = NULL, features = NULL,
                                       n_latent = NULL,
                                       n_comps = 20, max_epochs = NULL, model.dir = NULL,
                                       accelerator = getOption("isthmus.accelerator", "auto"), devices = "auto",
                                       backend = getOption("isthmus.backend", "inprocess"), batch_size = NULL,
                                       seed.use = 0, verbose = TRUE,
                                       ...) {
  .local_backend(backend)
  method <- .choose_method(method, "IntegrateModalities")
  .check_task_object(object)
  second <- .second_modality(object, method, protein.assay, atac.assay)
  rna <- .object_parts(object, if (.is_seurat(object)) rna.assay, "counts", columns = batch)
  counts <- .modality_counts(object, second$assay)
  result <- IntegrateModalities.default(rna$counts, protein = if (second$kind == "protein") counts,
                                        atac = if (second$kind == "atac") counts, method = method, batch = batch,
                                        features = .model_features(object, rna$assay, features),
                                        n_latent = n_latent, n_comps = n_comps, max_epochs = max_epochs,
                                        model.dir = model.dir, seed.use = seed.use,
                                        accelerator = accelerator, devices = devices, batch_size = batch_size,
                                        verbose = verbose,
                                        meta.data = rna$meta.data, ...)
  # each reduction records the assay it was computed from
  for (name in names(result$reductions)) {
    from <- result$reductions[[name]]$assay
    result$reductions[[name]]$assay <- if (identical(from, "rna")) rna.assay else second$assay
  }
  .put_result(object, result)
}

#' @rdname IntegrateModalities
#' @method IntegrateModalities SingleCellExperiment
#' @export
IntegrateModalities.SingleCellExperiment <- IntegrateModalities.Seurat

# Which second modality a method reads: protein for totalVI, ATAC for MultiVI; the baseline takes
# the assay named, or the one the object has.
.second_modality <- function(object, method, protein.assay, atac.assay) {
  if (!is.null(protein.assay) && !is.null(atac.assay)) {
    stop("isthmus: name either protein.assay or atac.assay, not both.", call. = FALSE)
  }
  present <- if (.is_seurat(object)) SeuratObject::Assays(object) else SingleCellExperiment::altExpNames(object)
  atac_default <- c(intersect(c("ATAC", "peaks"), present), "ATAC")[1]
  if (method == "totalvi") {
    if (!is.null(atac.assay)) stop("isthmus: totalVI models protein: give protein.assay, not atac.assay.", call. = FALSE)
    return(list(kind = "protein", assay = protein.assay %||% "ADT"))
  }
  if (method == "multivi") {
    if (!is.null(protein.assay)) stop("isthmus: MultiVI here models ATAC: give atac.assay, not protein.assay.", call. = FALSE)
    return(list(kind = "atac", assay = atac.assay %||% atac_default))
  }
  if (!is.null(protein.assay)) return(list(kind = "protein", assay = protein.assay))
  if (!is.null(atac.assay)) return(list(kind = "atac", assay = atac.assay))
  has <- c(protein = "ADT" %in% present, atac = any(c("ATAC", "peaks") %in% present))
  if (sum(has) != 1) {
    stop("isthmus: say which second modality the per-modality baseline should use: protein.assay = \"...\" ",
         "or atac.assay = \"...\".", call. = FALSE)
  }
  if (has[["protein"]]) list(kind = "protein", assay = "ADT") else list(kind = "atac", assay = atac_default)
}

#' @rdname IntegrateModalities
#' @export
RunTotalVI <- function(object, ...) IntegrateModalities(object, method = "totalvi", ...)

#' @rdname IntegrateModalities
#' @export
RunMultiVI <- function(object, ...) IntegrateModalities(object, method = "multivi", ...)

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
    stop("isthmus: no altExp '", assay, "' with the second modality's counts; altExps: ",
         paste(SingleCellExperiment::altExpNames(object), collapse = ", "), call. = FALSE)
  }
  alt <- SingleCellExperiment::altExp(object, assay)
  .task_counts(alt, NULL, "counts")$matrix
}
