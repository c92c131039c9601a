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
  # an AnnData without X (layers only, or nothing) came in: none goes back out either
  if (is.null(x) && (!length(assays) || isTRUE(SingleCellExperiment::int_metadata(sce)$isthmus_no_x))) return(NULL)
  if (is.null(x)) x <- if ("logcounts" %in% assays) "logcounts" else assays[[1]]
  if (!x %in% assays) stop("isthmus: assay '", x, "' is not in the object; it has: ", paste(assays, collapse = ", "), call. = FALSE)
  x
}

# scanpy spelling: reducedDim "PCA" <-> obsm "X_pca". Other names (obsm "spatial", "X_Foo",
# reducedDim "corral") keep their spelling both ways, so a name survives a round trip.
.obsm_name <- function(reduced_dim) {
  if (!startsWith(reduced_dim, "X_") && identical(reduced_dim, toupper(reduced_dim)) &&
      !identical(reduced_dim, tolower(reduced_dim))) paste0("X_", tolower(reduced_dim)) else reduced_dim
}

.reduced_dim_name <- function(obsm) {
  rest <- sub("^X_", "", obsm)
  if (startsWith(obsm, "X_") && identical(rest, tolower(rest)) && !identical(rest, toupper(rest))) toupper(rest) else obsm
}

# varm has no SingleCellExperiment slot: it travels as a rowData column "varm" holding a
# DataFrame of matrices (as zellkonverter keeps it).
.varm_from_row_data <- function(row_data) {
  vm <- if ("varm" %in% names(row_data)) row_data[["varm"]]
  if (!methods::is(vm, "DataFrame") || !length(vm) ||
      !all(vapply(as.list(vm), function(m) is.matrix(m) && is.numeric(m), logical(1)))) return(NULL)
  lapply(as.list(vm), unname)
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
  col_data <- SummarizedExperiment::colData(sce)
  # the sample_id a SpatialExperiment needs, made by .spe_from_sce for an AnnData without one
  if (isTRUE(SingleCellExperiment::int_metadata(sce)$isthmus_sample_id_added)) col_data$sample_id <- NULL
  row_data <- SummarizedExperiment::rowData(sce)
  varm <- .varm_from_row_data(row_data)
  if (!is.null(varm)) row_data$varm <- NULL
  parts <- list(obs_names = cells, var_names = features, X = if (!is.null(x)) mats[[x]], layers = mats[setdiff(assays, x)],
                varp = list(),
                obs = .frame_to_py(col_data, cells, paste0(where, " colData"), report),
                var = .frame_to_py(row_data, features, paste0(where, " rowData"), report),
                obsm = list(), varm = lapply(varm, .matrix_to_py, what = paste0(where, " rowData$varm"), orientation = "same"),
                obsp = list(), uns = list())
  for (name in SingleCellExperiment::reducedDimNames(sce)) {
    rd <- SingleCellExperiment::reducedDim(sce, name, withDimnames = FALSE)
    obsm <- .obsm_name(name)
    if (is.data.frame(rd) || methods::is(rd, "DataFrame")) {
      parts$obsm[[obsm]] <- .uns_to_py(as.data.frame(rd, optional = TRUE), paste0(where, " reducedDim ", name), report)
      record$reduced_dims[[name]] <- list(obsm = obsm)
      next
    }
    if (inherits(rd, "sparseMatrix")) {  # e.g. a sparse obsm entry read from an AnnData
      parts$obsm[[obsm]] <- .matrix_to_py(rd, paste0("reducedDim ", name), orientation = "same")
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
  for (name in SingleCellExperiment::rowPairNames(sce)) {
    g <- methods::as(SingleCellExperiment::rowPair(sce, name, asSparse = TRUE), "CsparseMatrix")
    parts$varp[[name]] <- .matrix_to_py(methods::as(g, "dMatrix"), paste0("rowPair ", name), orientation = "same")
  }
  raw_name <- SingleCellExperiment::int_metadata(sce)$isthmus_raw
  if (!is.null(raw_name) && raw_name %in% SingleCellExperiment::altExpNames(sce)) {
    # adata.raw, kept as an altExp by .sce_from_parts
    raw <- SingleCellExperiment::altExp(sce, raw_name)
    parts$raw <- list(var_names = rownames(raw),
                      X = .sce_assay_matrix(SummarizedExperiment::assay(raw, 1, withDimnames = FALSE), paste0(where, " altExp ", raw_name), report),
                      var = .frame_to_py(SummarizedExperiment::rowData(raw), rownames(raw), paste0(where, " altExp ", raw_name, " rowData"), report))
  }
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
  record$source_types <- SingleCellExperiment::int_metadata(sce)$isthmus_source
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
  .check_py_names(cells, "obs_names")
  .check_py_names(features, "var_names")
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
    name <- if (length(rec_name)) rec_name[[1]] else .reduced_dim_name(obsm_name)
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
    # SelfHits built here from every stored entry: colPair<- given the matrix would drop NaN
    # entries (NaN != 0 is NA), e.g. scanpy's distances of unreachable neighbours
    g <- .matrix_from_py(parts$obsp[[name]])
    g <- methods::as(if (inherits(g, "sparseMatrix")) g else methods::as(g, "CsparseMatrix"), "TsparseMatrix")
    SingleCellExperiment::colPair(sce, name) <- S4Vectors::SelfHits(
      from = g@i + 1L, to = g@j + 1L, nnode = ncol(sce), value = g@x, sort.by.query = TRUE)
  }
  varm <- lapply(.named_list(parts$varm), .matrix_from_py)
  varm <- Filter(function(m) is.matrix(m) && is.numeric(m), varm)
  if (length(varm)) {
    if ("varm" %in% names(SummarizedExperiment::rowData(sce))) {
      .report_dropped(report, "varm", "rowData already has a column 'varm'")
    } else {
      vm <- S4Vectors::make_zero_col_DFrame(nrow(sce))
      for (name in names(varm)) vm[[name]] <- varm[[name]]
      SummarizedExperiment::rowData(sce)$varm <- vm
    }
  }
  if (nzchar(record$main_exp_name %||% "")) SingleCellExperiment::mainExpName(sce) <- record$main_exp_name
  if (length(uns)) S4Vectors::metadata(sce) <- lapply(uns, .uns_from_py)
  for (name in names(.named_list(parts$varp))) {
    g <- .matrix_from_py(parts$varp[[name]])
    g <- methods::as(if (inherits(g, "sparseMatrix")) g else methods::as(g, "CsparseMatrix"), "TsparseMatrix")
    SingleCellExperiment::rowPair(sce, name) <- S4Vectors::SelfHits(
      from = g@i + 1L, to = g@j + 1L, nnode = nrow(sce), value = g@x, sort.by.query = TRUE)
  }
  if (!is.null(parts$raw$X)) {
    # adata.raw: an altExp of the same cells (its features may differ), marked for the way back
    raw_name <- if ("raw" %in% SingleCellExperiment::altExpNames(sce)) "adata_raw" else "raw"
    raw_features <- .as_chr(parts$raw$var_names)
    m <- .matrix_from_py(parts$raw$X)
    dimnames(m) <- list(raw_features, cells)
    raw_var <- .frame_from_py(parts$raw$var)
    raw <- SingleCellExperiment::SingleCellExperiment(
      assays = list(X = m), rowData = S4Vectors::DataFrame(raw_var, check.names = FALSE, row.names = raw_features))
    SingleCellExperiment::altExp(sce, raw_name) <- raw
    SingleCellExperiment::int_metadata(sce)$isthmus_raw <- raw_name
  }
  if (is.null(parts$X)) SingleCellExperiment::int_metadata(sce)$isthmus_no_x <- TRUE
  # dtypes and layouts R cannot hold, given back on the way out (python/isthmus/io/_types.py)
  if (length(parts$source_types)) SingleCellExperiment::int_metadata(sce)$isthmus_source <- parts$source_types
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
