# SingleCellExperiment <-> parts.
#
#  SingleCellExperiment            AnnData
#  assay `x` (logcounts if any)     X; every other assay in layers under its own name
#  colData / rowData                obs / var
#  reducedDims                      obsm[["X_<name>"]] (numeric attributes kept in the record)
#  colPairs                         obsp
#  metadata (named entries)         uns
#  altExps                          MuData modalities (as_mudata())

.sce_assay_matrix <- function(m, what, report) {
  if (inherits(m, "DelayedArray")) {
    .report_changed(report, what, "a DelayedArray was realised in memory")
    m <- methods::as(m, "dgCMatrix")
  }
  if (methods::is(m, "lsparseMatrix") || methods::is(m, "nsparseMatrix")) {
    .report_changed(report, what, "a logical sparse matrix was carried as numeric (0/1)")
  }
  .matrix_to_py(m, what)
}

.sce_x_assay <- function(sce, x) {
  assays <- SummarizedExperiment::assayNames(sce)
  if (!length(assays)) stop("isthmus: the SingleCellExperiment has no assays.", call. = FALSE)
  if (is.null(x)) x <- if ("logcounts" %in% assays) "logcounts" else assays[[1]]
  if (!x %in% assays) stop("isthmus: assay '", x, "' is not in the object; it has: ", paste(assays, collapse = ", "), call. = FALSE)
  x
}

.sce_to_parts <- function(sce, x, report, where = "sce") {
  cells <- colnames(sce)
  features <- rownames(sce)
  .check_names(cells, "cells (colnames)")
  .check_names(features, "features (rownames)")
  x <- .sce_x_assay(sce, x)
  assays <- SummarizedExperiment::assayNames(sce)
  mats <- lapply(stats::setNames(assays, assays), function(a) {
    .sce_assay_matrix(SummarizedExperiment::assay(sce, a, withDimnames = FALSE), paste0(where, " assay ", a), report)
  })
  record <- list(from = "SingleCellExperiment", x_assay = x, reduced_dims = list(), assay_order = assays,
                 character_columns = list(obs = .character_columns(SummarizedExperiment::colData(sce)),
                                          var = .character_columns(SummarizedExperiment::rowData(sce))),
                 main_exp_name = SingleCellExperiment::mainExpName(sce) %||% "")
  parts <- list(obs_names = cells, var_names = features, X = mats[[x]], layers = mats[setdiff(assays, x)],
                obs = .frame_to_py(SummarizedExperiment::colData(sce), cells, paste0(where, " colData"), report),
                var = .frame_to_py(SummarizedExperiment::rowData(sce), features, paste0(where, " rowData"), report),
                obsm = list(), varm = list(), obsp = list(), uns = list())
  for (name in SingleCellExperiment::reducedDimNames(sce)) {
    rd <- SingleCellExperiment::reducedDim(sce, name, withDimnames = FALSE)
    obsm <- paste0("X_", tolower(name))  # scanpy spelling: reducedDim "PCA" <-> obsm "X_pca"
    if (is.data.frame(rd) || methods::is(rd, "DataFrame")) {
      parts$obsm[[obsm]] <- .uns_to_py(as.data.frame(rd, optional = TRUE), paste0(where, " reducedDim ", name), report)
      record$reduced_dims[[name]] <- list(obsm = obsm)
      next
    }
    if (!is.matrix(rd) || !is.numeric(rd)) {
      .report_dropped(report, paste0(where, " reducedDim ", name), paste0("a ", class(rd)[1], " is not a numeric matrix"))
      next
    }
    attrs <- attributes(rd)[setdiff(names(attributes(rd)), c("dim", "dimnames"))]
    parts$obsm[[obsm]] <- .matrix_to_py(rd, paste0("reducedDim ", name), orientation = "same")
    record$reduced_dims[[name]] <- list(obsm = obsm, colnames = colnames(rd) %||% character(),
                                        attributes = .uns_to_py(attrs, paste0(where, " reducedDim ", name, " attributes"), report))
  }
  for (name in SingleCellExperiment::colPairNames(sce)) {
    g <- methods::as(SingleCellExperiment::colPair(sce, name, asSparse = TRUE), "CsparseMatrix")
    parts$obsp[[name]] <- .matrix_to_py(methods::as(g, "dMatrix"), paste0("colPair ", name), orientation = "same")
  }
  if (length(SingleCellExperiment::rowPairNames(sce))) .report_dropped(report, paste0(where, " rowPairs"), "feature x feature graphs are not carried")
  meta <- S4Vectors::metadata(sce)
  if (length(meta)) {
    nms <- names(meta) %||% rep("", length(meta))
    if (any(!nzchar(nms))) .report_dropped(report, paste0(where, " metadata (unnamed entries)"), "uns needs names")
    for (k in which(nzchar(nms) & nms != "isthmus")) {
      value <- .uns_to_py(meta[[k]], paste0(where, " metadata$", nms[[k]]), report)
      if (!is.null(value)) parts$uns[[nms[[k]]]] <- value
    }
  }
  ranges <- SummarizedExperiment::rowRanges(sce)
  if (methods::is(ranges, "GRanges") || (methods::is(ranges, "GRangesList") && sum(lengths(ranges)) > 0)) {
    .report_dropped(report, paste0(where, " rowRanges"), "genomic ranges are not carried")
  }
  parts$uns$isthmus <- record
  if (methods::is(sce, "SpatialExperiment")) parts <- .spe_to_parts(sce, parts, report)
  parts
}

# `spatial`: TRUE builds a SpatialExperiment from obsm["spatial"] (and uns["spatial"]), FALSE a
# SingleCellExperiment; NULL does what the record says (a SpatialExperiment comes back as one).
.sce_from_parts <- function(parts, report, x_assay = NULL, spatial = NULL) {
  uns <- .named_list(parts$uns)
  record <- uns$isthmus %||% list()
  if (!isTRUE(record$from %in% c("SingleCellExperiment", "SpatialExperiment"))) record <- list()  # e.g. from Seurat
  spatial <- .want_spe(spatial, identical(record$from, "SpatialExperiment"), parts, report)
  uns$isthmus <- NULL
  cells <- .as_chr(parts$obs_names)
  features <- .as_chr(parts$var_names)
  assays <- list()
  x_name <- x_assay %||% record$x_assay %||% "X"
  if (!is.null(parts$X)) assays[[x_name]] <- .matrix_from_py(parts$X)
  for (name in names(.named_list(parts$layers))) assays[[name]] <- .matrix_from_py(parts$layers[[name]])
  assays <- lapply(assays, function(m) { dimnames(m) <- list(features, cells); m })
  order <- .as_chr(record$assay_order)
  if (length(order) && setequal(order, names(assays))) assays <- assays[order]
  obs <- .restore_character(.frame_from_py(parts$obs), record$character_columns$obs)
  var <- .restore_character(.frame_from_py(parts$var), record$character_columns$var)
  sce <- SingleCellExperiment::SingleCellExperiment(
    assays = assays,
    colData = S4Vectors::DataFrame(obs, check.names = FALSE, row.names = cells),
    rowData = S4Vectors::DataFrame(var, check.names = FALSE, row.names = features)
  )
  rownames(SummarizedExperiment::rowData(sce)) <- NULL  # rowData takes its names from the object
  rownames(sce) <- features
  reduced <- record$reduced_dims %||% list()
  for (obsm_name in setdiff(names(.named_list(parts$obsm)), if (spatial) "spatial")) {
    rec_name <- Filter(function(r) identical(reduced[[r]]$obsm, obsm_name), names(reduced))
    name <- if (length(rec_name)) rec_name[[1]] else toupper(sub("^X_", "", obsm_name))
    m <- .matrix_from_py(parts$obsm[[obsm_name]])
    if (is.data.frame(m)) m <- S4Vectors::DataFrame(m, check.names = FALSE)  # reducedDims hold data frames too
    rec <- reduced[[name]]
    if (!is.null(rec)) {
      cn <- .as_chr(rec$colnames)
      if (length(cn)) colnames(m) <- cn
      for (a in names(.named_list(rec$attributes))) attr(m, a) <- .uns_from_py(rec$attributes[[a]])
    }
    SingleCellExperiment::reducedDim(sce, name, withDimnames = FALSE) <- m
  }
  for (name in names(.named_list(parts$obsp))) {
    # no dimnames: colPair<- turns the matrix into SelfHits, which refuses named indices
    SingleCellExperiment::colPair(sce, name) <- .matrix_from_py(parts$obsp[[name]])
  }
  if (nzchar(record$main_exp_name %||% "")) SingleCellExperiment::mainExpName(sce) <- record$main_exp_name
  if (length(uns)) S4Vectors::metadata(sce) <- lapply(uns, .uns_from_py)
  if (spatial) sce <- .spe_from_sce(sce, parts, record, report)
  sce
}

# `requested`: the user's `spatial` (NULL: as recorded). Only a request needs coordinates; a
# recorded SpatialExperiment may have had none (spatialCoords with no columns).
.want_spe <- function(requested, recorded, parts, report) {
  if (!(requested %||% recorded)) return(FALSE)
  if (isTRUE(requested) && is.null(.named_list(parts$obsm)$spatial)) {
    stop("isthmus: a SpatialExperiment needs coordinates, and the AnnData has no obsm['spatial'].", call. = FALSE)
  }
  if (!requireNamespace("SpatialExperiment", quietly = TRUE)) {
    .report_changed(report, "SpatialExperiment", "not installed: a SingleCellExperiment with reducedDim SPATIAL is returned")
    return(FALSE)
  }
  TRUE
}
