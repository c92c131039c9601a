# The user-facing bridge: as_anndata(), as_mudata(), as_seurat(), as_sce(), and the .h5ad /
# .h5mu readers and writers. Each converter builds the plain parts (convert-seurat.R,
# convert-sce.R), hands them to Python in one call, and reports what it could not carry.

#' Convert a Seurat or SingleCellExperiment object to AnnData
#'
#' The count and data matrices are shared with Python without a copy and are read-only there:
#' Python code cannot change your R object. Use `copy = TRUE` for writable arrays.
#'
#' Where each part goes (Seurat): the assay's `x_layer` (data by default) becomes `X` and the
#' other of counts/data a layer; `scale.data` becomes `layers[["scale.data"]]` when it covers
#' all features, else `obsm[["scale.data"]]`; meta.data -> `obs` (with the active identities
#' in `obs$ident` when meta.data has no such column); meta.features -> `var` (variable features
#' in `var$highly_variable`); reductions -> `obsm[["X_<name>"]]`, loadings -> `varm`
#' (`"PCs"` for pca); graphs -> `obsp`; misc -> `uns`; Visium / SlideSeq images ->
#' `obsm[["spatial"]]` and `uns[["spatial"]]`. For SingleCellExperiment, `x_layer` names the
#' assay for `X` (default: "logcounts" if present, else the first) and the others become
#' layers; reducedDims -> `obsm`, colPairs -> `obsp`, metadata -> `uns`; a SpatialExperiment's
#' spatialCoords -> `obsm[["spatial"]]` and imgData (images, scale factors) -> `uns[["spatial"]]`.
#' What cannot be carried is listed in a warning and in [conversion_report()].
#'
#' @param object A Seurat or SingleCellExperiment object.
#' @param assay Seurat: the assay to convert (default: the active one). Use [as_mudata()] for all.
#' @param x_layer Which matrix becomes `X`. Seurat: "data" or "counts" (default: "data" if the
#'   assay has it, else "counts"). SingleCellExperiment: an assay name (see Details).
#' @param copy Give Python its own writable copy of the matrices instead of shared memory.
#' @param ... Unused.
#' @return A Python AnnData object (reticulate).
#' @export
as_anndata <- function(object, ...) UseMethod("as_anndata")

#' @rdname as_anndata
#' @export
as_anndata.Seurat <- function(object, assay = NULL, x_layer = NULL, copy = FALSE, ...) {
  report <- .new_report()
  parts <- .seurat_to_anndata_parts(object, assay, x_layer, report)
  adata <- .py_task("anndata_from_r", parts, copy)
  .finish_report(adata, report, "Seurat -> AnnData")
}

#' @rdname as_anndata
#' @export
as_anndata.SingleCellExperiment <- function(object, x_layer = NULL, copy = FALSE, ...) {
  report <- .new_report()
  raw_name <- SingleCellExperiment::int_metadata(object)$isthmus_raw  # adata.raw, which goes back there
  for (alt in setdiff(SingleCellExperiment::altExpNames(object), raw_name)) {
    .report_dropped(report, paste0("altExp ", alt), "AnnData holds one modality; use as_mudata() for all")
  }
  parts <- .sce_to_parts(object, x_layer, report)
  adata <- .py_task("anndata_from_r", parts, copy)
  .finish_report(adata, report, "SingleCellExperiment -> AnnData")
}

#' @export
as_anndata.default <- function(object, ...) {
  stop("isthmus: as_anndata() converts Seurat and SingleCellExperiment objects, not ", class(object)[1], ".", call. = FALSE)
}

#' Convert a multi-assay Seurat or SingleCellExperiment (with altExps) object to MuData
#'
#' Each Seurat assay becomes a modality (RNA -> "rna", ATAC/peaks -> "atac", ADT -> "prot",
#' others lower-cased); a SingleCellExperiment's main experiment becomes "rna" (or its
#' `mainExpName()`) and each altExp a modality. meta.data / colData, reductions, graphs and misc
#' go to the MuData's global `obs`, `obsm`, `obsp` and `uns`; loadings go to the `varm` of the
#' modality they belong to. Cells that [as_seurat()] / [as_sce()] marked absent from a modality
#' (meta.data column `has_<assay>`) are left out of that modality again.
#'
#' @inheritParams as_anndata
#' @param assays Seurat: the assays to convert (default: all).
#' @return A Python MuData object.
#' @export
as_mudata <- function(object, ...) UseMethod("as_mudata")

#' @rdname as_mudata
#' @export
as_mudata.Seurat <- function(object, assays = NULL, x_layer = NULL, copy = FALSE, ...) {
  report <- .new_report()
  assays <- assays %||% SeuratObject::Assays(object)
  missing <- setdiff(assays, SeuratObject::Assays(object))
  if (length(missing)) stop("isthmus: assays not in the object: ", paste(missing, collapse = ", "), call. = FALSE)
  cells <- colnames(object)
  # cells marked absent from a modality by as_seurat() stay out of it (see .mark_presence)
  presence <- object@misc$isthmus_presence %||% list()
  object@misc$isthmus_presence <- NULL
  masks <- lapply(presence, function(column) .presence_mask(object@meta.data, column, cells))
  object@meta.data <- object@meta.data[, setdiff(names(object@meta.data), unlist(presence)), drop = FALSE]
  source_mods <- object@tools$isthmus_source_mods %||% list()
  object@tools$isthmus_source_mods <- NULL
  global <- .seurat_global_parts(object, .features_by_assay(object, assays), report)
  mods <- list()
  record <- global$record
  record$assays <- list()
  record$modalities <- list()
  for (assay in assays) {
    a <- .seurat_assay_to_parts(object[[assay]], assay, cells, x_layer, report)
    if (is.null(a)) next
    mod <- .modality_name(assay)
    a$obs_names <- cells
    a$obs <- .empty_frame(cells)  # cell metadata lives in the global obs
    a$varm <- c(a$varm, global$varm[[assay]] %||% list())
    a$present <- masks[[assay]]
    record$assays[[assay]] <- a$record
    record$modalities[[mod]] <- assay
    a$record <- NULL
    types <- source_mods[[assay]]  # dtypes / layouts of the MuData modality this assay was read from
    if (length(types)) a$uns <- list(isthmus = list(source_types = types))
    mods[[mod]] <- a
  }
  uns <- global$uns
  uns$isthmus <- record
  parts <- list(mod = mods, obs_names = global$obs_names, obs = global$obs, obsm = global$obsm,
                obsp = global$obsp, uns = uns)
  mdata <- .py_task("mudata_from_r", parts, copy)
  .finish_report(mdata, report, "Seurat -> MuData")
}

#' @rdname as_mudata
#' @export
as_mudata.SingleCellExperiment <- function(object, x_layer = NULL, copy = FALSE, ...) {
  report <- .new_report()
  presence <- S4Vectors::metadata(object)$isthmus_presence %||% list()
  main_name <- SingleCellExperiment::mainExpName(object) %||% "RNA"
  main <- .modality_name(main_name)
  cells <- colnames(object)
  main_sce <- SingleCellExperiment::removeAltExps(object)
  col <- SummarizedExperiment::colData(main_sce)
  drop_cols <- intersect(unlist(presence), names(col))
  SummarizedExperiment::colData(main_sce) <- col[, setdiff(names(col), drop_cols), drop = FALSE]
  S4Vectors::metadata(main_sce)$isthmus_presence <- NULL
  main_parts <- .sce_to_parts(main_sce, x_layer, report)
  uns <- main_parts$uns
  record <- uns$isthmus
  record$modalities <- list()
  record$modalities[[main]] <- list(main = TRUE, name = main_name)
  mods <- list()
  # colData, reducedDims and colPairs belong to the whole object: global obs / obsm / obsp
  global <- main_parts[c("obs_names", "obs", "obsm", "obsp")]
  main_parts$obs <- .empty_frame(cells)
  main_parts$obsm <- list()
  main_parts$obsp <- list()
  main_parts$uns <- list(isthmus = list(from = "SingleCellExperiment", x_assay = record$x_assay,
                                        source_types = record$source_types))  # the modality's own dtypes
  record$source_types <- NULL
  col_df <- as.data.frame(col)
  main_parts$present <- .presence_mask(col_df, presence[[main_name]], cells)
  mods[[main]] <- main_parts
  for (alt in SingleCellExperiment::altExpNames(object)) {
    alt_sce <- SingleCellExperiment::altExp(object, alt)
    alt_parts <- .sce_to_parts(alt_sce, NULL, report, where = paste0("altExp ", alt))
    mod <- .modality_name(alt)
    alt_parts$present <- .presence_mask(col_df, presence[[alt]], cells)
    record$modalities[[mod]] <- list(main = FALSE, name = alt)
    mods[[mod]] <- alt_parts
  }
  uns$isthmus <- record
  parts <- c(list(mod = mods), global, list(uns = uns))
  mdata <- .py_task("mudata_from_r", parts, copy)
  .finish_report(mdata, report, "SingleCellExperiment -> MuData")
}

#' @export
as_mudata.default <- function(object, ...) {
  stop("isthmus: as_mudata() converts Seurat and SingleCellExperiment objects, not ", class(object)[1], ".", call. = FALSE)
}

.presence_mask <- function(meta, column, cells) {
  if (is.null(column) || !column %in% names(meta)) return(NULL)
  mask <- meta[[column]]
  if (!is.logical(mask) || anyNA(mask)) return(NULL)
  .share_vector(mask)
}

#' Convert AnnData or MuData (a Python object, or a .h5ad / .h5mu file) to Seurat
#'
#' The inverse of [as_anndata()] / [as_mudata()]: objects that came from Seurat come back with
#' every part as it was. For AnnData from elsewhere: `X` becomes the assay's data, a "counts"
#' layer its counts (if there is none, the assay has data only), other layers become assays of
#' their own; `obsm[["X_<name>"]]` become reductions, `obsp` graphs, `uns` misc; Visium data in
#' the scanpy layout becomes a VisiumV1 image. A MuData's modalities become assays (rna -> RNA,
#' atac -> ATAC, prot -> ADT); cells missing from a modality are kept: their columns in that
#' assay are empty and the logical meta.data column `has_<assay>` says which cells it measured.
#'
#' @param data A Python AnnData or MuData object.
#' @param assay The assay name for an AnnData without a Seurat record.
#' @return A Seurat object.
#' @export
as_seurat <- function(data, assay = "RNA") {
  core <- .py_core()
  on.exit(core$release_all(), add = TRUE)
  if (.py_is(data, "mudata")) {
    out <- core$mudata_to_r(data)
    return(.seurat_from_mudata_parts(out, "MuData -> Seurat"))
  }
  if (!.py_is(data, "anndata")) stop("isthmus: as_seurat() takes a Python AnnData or MuData object.", call. = FALSE)
  out <- core$anndata_to_r(data)
  .seurat_from_anndata_parts(out, assay, "AnnData -> Seurat")
}

.seurat_from_anndata_parts <- function(out, assay, direction) {
  report <- .report_merge_py(.new_report(), out$report)
  parts <- out$parts
  record <- parts$uns$isthmus %||% list()
  assay <- if (length(record$assays)) names(record$assays)[1] else assay
  obj <- .seurat_from_parts(list(parts), parts, assay, report)
  if (length(parts$source_types)) obj@tools$isthmus_source <- parts$source_types
  .finish_report(obj, report, direction)
}

.assay_name <- function(mod, record) {
  record$modalities[[mod]] %||% switch(mod, rna = "RNA", atac = "ATAC", prot = "ADT", mod)
}

# A modality's own obsm / obsp (MuData keeps the shared ones globally) have no place in a
# Seurat assay or the main experiment of an SCE: name them.
.report_modality_cells <- function(report, mods, which = names(mods)) {
  for (m in which) {
    p <- mods[[m]]
    # (its obs columns travel in the global obs as "<mod>:<column>")
    for (key in c("obsm", "obsp")) {
      for (name in names(.named_list(p[[key]]))) {
        .report_dropped(report, paste0("mdata.mod['", m, "'].", key, " ", name),
                        paste0("per-modality ", key, " is not carried (the global one is)"))
      }
    }
  }
}

.seurat_from_mudata_parts <- function(out, direction) {
  report <- .report_merge_py(.new_report(), out$report)
  parts <- out$parts
  record <- parts$uns$isthmus %||% list()
  mods <- .named_list(parts$mod)
  .report_modality_cells(report, mods)
  assays <- vapply(names(mods), function(m) {
    name <- .assay_name(m, record)
    if (is.list(name)) name$name else name
  }, character(1))
  obj <- .seurat_from_parts(unname(mods), parts, unname(assays), report)
  types <- stats::setNames(lapply(mods, function(m) m$source_types), assays)
  types <- Filter(length, types)
  if (length(types)) obj@tools$isthmus_source_mods <- types  # given back by as_mudata()
  obj <- .mark_presence(obj, out$presence, names(mods), assays)
  .finish_report(obj, report, direction)
}

# cells absent from a modality: a logical meta.data column, remembered for the way back
.mark_presence <- function(obj, presence, mods, assays) {
  for (k in seq_along(mods)) {
    mask <- as.logical(presence[[mods[[k]]]])
    if (is.null(mask) || all(mask)) next
    column <- paste0("has_", assays[[k]])
    obj@meta.data[[column]] <- mask
    obj@misc$isthmus_presence[[assays[[k]]]] <- column
  }
  obj
}

#' Convert AnnData or MuData to SingleCellExperiment
#'
#' The inverse of [as_anndata()] / [as_mudata()] for SingleCellExperiment. `X` becomes the
#' assay it came from (or `x_assay`; "X" for AnnData from elsewhere, as zellkonverter does),
#' layers the other assays; a MuData's first (or recorded main) modality the main experiment and
#' the others altExps.
#'
#' @param data A Python AnnData or MuData object.
#' @param x_assay The assay name for `X` (default: the recorded one, else "X").
#' @param spatial `TRUE`: return a SpatialExperiment built from `obsm["spatial"]` (spatialCoords)
#'   and `uns["spatial"]` (imgData with each image's scale factor), as scanpy and squidpy lay out
#'   Visium data; `FALSE`: a SingleCellExperiment; `NULL` (default): a SpatialExperiment when the
#'   AnnData came from one.
#' @return A SingleCellExperiment (or SpatialExperiment).
#' @export
as_sce <- function(data, x_assay = NULL, spatial = NULL) {
  core <- .py_core()
  on.exit(core$release_all(), add = TRUE)
  if (.py_is(data, "mudata")) return(.sce_from_mudata_parts(core$mudata_to_r(data), x_assay, "MuData -> SingleCellExperiment"))
  if (!.py_is(data, "anndata")) stop("isthmus: as_sce() takes a Python AnnData or MuData object.", call. = FALSE)
  out <- core$anndata_to_r(data)
  report <- .report_merge_py(.new_report(), out$report)
  .finish_report(.sce_from_parts(out$parts, report, x_assay, spatial), report, "AnnData -> SingleCellExperiment")
}

.sce_from_mudata_parts <- function(out, x_assay, direction) {
  report <- .report_merge_py(.new_report(), out$report)
  parts <- out$parts
  uns <- .named_list(parts$uns)
  record <- uns$isthmus %||% list()
  mods <- .named_list(parts$mod)
  is_main <- vapply(names(mods), function(m) isTRUE(record$modalities[[m]]$main), logical(1))
  main <- if (any(is_main)) names(mods)[is_main][1] else names(mods)[1]
  .report_modality_cells(report, mods, main)  # altExps keep their own colData / reducedDims
  main_parts <- mods[[main]]
  main_parts$obs <- parts$obs
  main_parts$obsm <- parts$obsm
  main_parts$obsp <- parts$obsp
  main_uns <- uns
  main_uns$isthmus$x_assay <- main_parts$uns$isthmus$x_assay %||% record$x_assay
  main_parts$uns <- main_uns
  sce <- .sce_from_parts(main_parts, report, x_assay)
  # the main modality's name, so that as_mudata() gives it back under that name (not "rna")
  if (is.null(SingleCellExperiment::mainExpName(sce))) SingleCellExperiment::mainExpName(sce) <- main
  presence <- list()
  for (m in setdiff(names(mods), main)) {
    name <- record$modalities[[m]]$name %||% m
    SingleCellExperiment::altExp(sce, name) <- .sce_from_parts(mods[[m]], report)
  }
  for (m in names(mods)) {
    mask <- as.logical(out$presence[[m]])
    if (all(mask)) next
    name <- record$modalities[[m]]$name %||% m
    column <- paste0("has_", name)
    SummarizedExperiment::colData(sce)[[column]] <- mask
    presence[[name]] <- column
  }
  if (length(presence)) S4Vectors::metadata(sce)$isthmus_presence <- presence
  .finish_report(sce, report, direction)
}

# ---- files ------------------------------------------------------------------------------------

#' Read and write .h5ad / .h5mu files from R
#'
#' `write_h5ad()` / `write_h5mu()` convert in memory without copying the matrices (see
#' [as_anndata()]) and let anndata / mudata write the file. `read_h5ad()` reads sparse matrices
#' in chunks straight into the R object, so a matrix is never held twice at full size.
#'
#' @param object A Seurat or SingleCellExperiment object.
#' @param file The file path.
#' @param compression `NULL` (default, fastest) or "gzip" / "lzf".
#' @param to What to return: "Seurat", "SingleCellExperiment" (a SpatialExperiment if the file
#'   came from one) or "SpatialExperiment" (see [as_sce()]).
#' @param ... Passed to [as_anndata()] / [as_mudata()].
#' @return `write_*`: the file path, invisibly. `read_*`: the R object.
#' @export
write_h5ad <- function(object, file, compression = NULL, ...) {
  file <- normalizePath(.check_path(file), mustWork = FALSE)
  .check_compression(compression)
  adata <- as_anndata(object, ...)
  .py_core()$write_h5ad(adata, file, compression)
  invisible(file)
}

#' @rdname write_h5ad
#' @export
write_h5mu <- function(object, file, compression = NULL, ...) {
  file <- normalizePath(.check_path(file), mustWork = FALSE)
  .check_compression(compression)
  mdata <- as_mudata(object, ...)
  .py_core()$write_h5mu(mdata, file, compression)
  invisible(file)
}

#' @rdname write_h5ad
#' @export
read_h5ad <- function(file, to = c("Seurat", "SingleCellExperiment", "SpatialExperiment"), ...) {
  to <- match.arg(to)
  .check_path(file)
  if (!file.exists(file)) stop("isthmus: file not found: ", file, call. = FALSE)
  core <- .py_core()
  on.exit(core$release_all(), add = TRUE)
  out <- core$read_h5ad(normalizePath(file))
  if (to == "Seurat") return(.seurat_from_anndata_parts(out, "RNA", "h5ad -> Seurat"))
  report <- .report_merge_py(.new_report(), out$report)
  spatial <- if (to == "SpatialExperiment") TRUE
  .finish_report(.sce_from_parts(out$parts, report, spatial = spatial), report, paste("h5ad ->", to))
}

#' @rdname write_h5ad
#' @export
read_h5mu <- function(file, to = c("Seurat", "SingleCellExperiment"), ...) {
  to <- match.arg(to)
  .check_path(file)
  if (!file.exists(file)) stop("isthmus: file not found: ", file, call. = FALSE)
  core <- .py_core()
  on.exit(core$release_all(), add = TRUE)
  out <- core$read_h5mu(normalizePath(file))
  if (to == "Seurat") return(.seurat_from_mudata_parts(out, "h5mu -> Seurat"))
  .sce_from_mudata_parts(out, NULL, "h5mu -> SingleCellExperiment")
}

# `file` must be one path: a vector of several reached Python as a list (a TypeError there).
.check_path <- function(file) {
  if (!is.character(file) || length(file) != 1 || is.na(file) || !nzchar(file)) {
    stop("isthmus: `file` must be one file path (a single string), not ",
         if (is.character(file)) paste0(length(file), " strings") else paste0("a ", class(file)[1]), ".", call. = FALSE)
  }
  file
}

.check_compression <- function(compression) {
  if (is.null(compression)) return(invisible())
  if (!is.character(compression) || length(compression) != 1 || !compression %in% c("gzip", "lzf")) {
    stop("isthmus: `compression` must be NULL, \"gzip\" or \"lzf\", not ", deparse(compression)[1], ".", call. = FALSE)
  }
}

# How many modalities an object has (used by the Python side's read_rds()).
.n_modalities <- function(object) {
  if (inherits(object, "Seurat")) return(length(SeuratObject::Assays(object)))
  if (inherits(object, "SingleCellExperiment")) return(1L + length(SingleCellExperiment::altExpNames(object)))
  stop("isthmus: not a Seurat or SingleCellExperiment object: ", class(object)[1], call. = FALSE)
}
