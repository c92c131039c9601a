# One Seurat assay <-> parts, for both assay classes: Assay (Seurat v4, convert-seurat-v4.R) and
# Assay5 (Seurat v5, convert-seurat-v5.R). What the two share lives here, with the choice between
# them; each class file depends on this one only, never on the other. The object-level route
# (meta.data, reductions, graphs, images) is convert-seurat.R.

.check_names <- function(names, what) {
  if (is.null(names) || anyNA(names) || any(!nzchar(names))) {
    stop("isthmus: ", what, " need non-empty names; set them (e.g. colnames(x) <- ...) and call again.", call. = FALSE)
  }
  dup <- unique(names[duplicated(names)])
  if (length(dup)) {
    stop("isthmus: ", what, " have duplicated names (", paste(utils::head(dup, 5), collapse = ", "),
         if (length(dup) > 5) ", ..." else "", "); AnnData needs unique names. Make them unique ",
         "(e.g. make.unique()) and call again.", call. = FALSE)
  }
}

.check_dimnames <- function(m, rows, cols, what) {
  if (!identical(rownames(m), rows) || !identical(colnames(m), cols)) {
    stop("isthmus: the row/column names of ", what, " do not match the object's features/cells; ",
         "the object is inconsistent. Rebuild that part with matching dimnames.", call. = FALSE)
  }
}

# X is `x_layer` if given, else "data" when the assay has it (it always has in Seurat v4), else
# "counts" (a Seurat v5 object before NormalizeData()).
.choose_x <- function(x_layer, available, assay, layers) {
  if (is.null(x_layer)) x_layer <- if ("data" %in% available) "data" else "counts"
  if (!x_layer %in% available) {
    stop("isthmus: assay ", assay, " has no '", x_layer, "' to put in X; it has: ",
         paste(layers, collapse = ", "), ". Choose another `x_layer`.", call. = FALSE)
  }
  x_layer
}

.use_assay5 <- function(record_class = NULL) {
  utils::packageVersion("SeuratObject") >= "5.0.0" &&
    (identical(record_class, "Assay5") ||
       (is.null(record_class) && identical(getOption("Seurat.object.assay.version", "v5"), "v5")))
}

# SeuratObject 5's layer API (Layers(), LayerData(), DefaultLayer(), CreateAssay5Object() and the
# replacement forms), fetched when called: SeuratObject 4 does not export these, and
# `SeuratObject::LayerData` would make R CMD check warn there. Same lookup as `::`.
.so5 <- function(name) getExportedValue("SeuratObject", name)

# ---- Seurat -> parts --------------------------------------------------------------------------

# One assay: X, layers, var and what is needed to rebuild it exactly.
.seurat_assay_to_parts <- function(assay_obj, assay, cells, x_slot, report) {
  if (inherits(assay_obj, "Assay5")) return(.assay5_to_parts(assay_obj, assay, cells, x_slot, report))
  if (inherits(assay_obj, "Assay")) return(.assay4_to_parts(assay_obj, assay, cells, x_slot, report))
  .report_dropped(report, paste0("assay ", assay), paste0("assays of class ", class(assay_obj)[1], " are not carried"))
  NULL
}

# A Seurat assay's matrix of one kind: a v4 slot or a v5 (possibly split) layer; NULL if none.
.assay_matrix <- function(object, assay, layer) {
  a <- object[[assay]]
  if (inherits(a, "Assay5")) .assay5_matrix(a, layer, colnames(object)) else .assay4_matrix(a, layer)
}

# scale.data, feature metadata (+ highly_variable) and misc of one assay, into parts + record.
.assay_common_parts <- function(parts, record, scale, var, misc, features, assay, report) {
  if (length(scale)) {
    if (identical(rownames(scale), features)) {
      parts$layers[["scale.data"]] <- .matrix_to_py(scale, "scale.data")
    } else {
      # scale.data of the variable features only: a cells x features block in obsm
      parts$obsm[["scale.data"]] <- .matrix_to_py(scale, "scale.data")
      record$scale_data_features <- rownames(scale)
    }
  }
  rownames(var) <- features
  record$highly_variable_added <- !"highly_variable" %in% names(var) && length(record$variable_features) > 0
  if (record$highly_variable_added) var$highly_variable <- features %in% .as_chr(record$variable_features)
  record$character_columns <- .character_columns(var)
  parts$var <- .frame_to_py(var, features, paste0("assay ", assay, " feature metadata"), report)
  # varm entries that belong to no reduction were kept in the assay's misc$varm on the way in
  varm <- misc$varm
  if (is.list(varm) && length(varm) && !is.null(names(varm)) &&
      all(vapply(varm, function(m) is.matrix(m) && is.numeric(m) && nrow(m) == length(features), logical(1)))) {
    for (name in names(varm)) parts$varm[[name]] <- .matrix_to_py(unname(varm[[name]]), paste0("varm ", name), orientation = "same")
    misc$varm <- NULL
  }
  # varp (feature x feature graphs) likewise, in misc$varp
  varp <- misc$varp
  if (is.list(varp) && length(varp) && !is.null(names(varp)) &&
      all(vapply(varp, function(m) inherits(m, "sparseMatrix") && all(dim(m) == length(features)), logical(1)))) {
    for (name in names(varp)) {
      parts$varp[[name]] <- .matrix_to_py(methods::as(methods::as(varp[[name]], "CsparseMatrix"), "dMatrix"),
                                          paste0("varp ", name), orientation = "same")
    }
    misc$varp <- NULL
  }
  if (length(misc)) record$misc <- .uns_to_py(misc, paste0("assay ", assay, " misc"), report)
  parts$record <- record
  parts
}

# The feature metadata and variable features of one modality, for either assay class.
# `fix_names` applies Seurat v4's feature-name rule to the recorded variable features.
.assay_features_from_parts <- function(parts, record, features, fix_names = identity) {
  var <- .restore_character(.frame_from_py(parts$var), record$character_columns)
  rownames(var) <- features
  variable <- if (!is.null(record$variable_features)) {
    fix_names(.as_chr(record$variable_features))
  } else if (is.logical(var$highly_variable)) {
    features[var$highly_variable %in% TRUE]  # scanpy's flag, from an AnnData made elsewhere
  } else character()
  if (isTRUE(record$highly_variable_added)) var$highly_variable <- NULL
  list(var = var, variable = variable)
}

# Seurat's own default key, set explicitly so CreateSeuratObject() has nothing to warn about.
.assay_key <- function(record, assay) record$key %||% paste0(tolower(gsub("[^A-Za-z0-9]", "", assay)), "_")

# ---- parts -> Seurat --------------------------------------------------------------------------

# The Seurat v4 feature-name rules: '_' and '|' become '-'. Applied here to every matrix of the
# assay at once (Seurat renames only the one it is given) and reported.
# SeuratObject 5 (Assay5) allows '_' and still replaces '|' (`underscores = FALSE`).
.seurat_feature_names <- function(features, what, report, underscores = TRUE) {
  fixed <- gsub("|", "-", features, fixed = TRUE)
  if (underscores) fixed <- gsub("_", "-", fixed, fixed = TRUE)
  if (!identical(fixed, features)) {
    chars <- c("'_'", "'|'")[c(underscores && any(grepl("_", features, fixed = TRUE)), any(grepl("|", features, fixed = TRUE)))]
    .report_changed(report, paste0(what, " feature names"),
                    paste0("Seurat replaces ", paste(chars, collapse = " and "), " with '-' in feature names ",
                           "(written back to AnnData, an object read from one gets its original names again)"))
  }
  fixed
}

# The matrices of one modality (X, counts / data / scale.data layers) checked and named, then the
# assay of the class the record (or the session's SeuratObject) asks for.
.assay_from_parts <- function(parts, assay, cells, record, report) {
  features <- .as_chr(parts$var_names)
  record <- record %||% list()
  assay5 <- .use_assay5(record$class)
  features <- .seurat_feature_names(features, paste("assay", assay), report, underscores = !assay5)
  layers <- .named_list(parts$layers)
  mats <- list()
  x <- if (!is.null(parts$X)) .matrix_from_py(parts$X)
  if (is.null(x) && is.null(record$x_slot)) {
    .report_changed(report, paste0("X (assay ", assay, ")"), "the AnnData has no X: the assay's data slot is filled from its counts and becomes X on the way back")
  }
  # Without a record: X is the data slot, unless it holds counts (non-negative integers) and no
  # counts layer exists, as in most .h5ad files written from raw data.
  x_slot <- record$x_slot %||% (if (!"counts" %in% names(layers) && .is_counts(x)) "counts" else "data")
  if (!is.null(x)) mats[[x_slot]] <- x
  for (name in names(layers)) {
    if (name %in% c("counts", "data", "scale.data") && is.null(mats[[name]])) mats[[name]] <- .matrix_from_py(layers[[name]])
  }
  if (is.null(mats$counts) && isTRUE(record$data_is_counts) && !is.null(mats$data)) mats$counts <- mats$data
  if (!length(intersect(names(mats), c("counts", "data")))) {
    stop("isthmus: modality for assay ", assay, " has neither X nor a counts/data layer.", call. = FALSE)
  }
  with_names <- function(m, rows) { dimnames(m) <- list(rows, cells); m }
  mats <- lapply(mats, with_names, rows = features)
  for (name in setdiff(names(mats), "scale.data")) {
    if (!inherits(mats[[name]], "dgCMatrix")) {
      where <- if (identical(name, x_slot) && !is.null(x)) "X" else paste0("layers ", name)
      .report_changed(report, paste0(where, " (assay ", assay, ")"), "a dense matrix is stored sparse: Seurat keeps counts / data as dgCMatrix")
      mats[[name]] <- methods::as(mats[[name]], "CsparseMatrix")
    }
  }
  if (is.null(mats[["scale.data"]]) && !is.null(record$scale_data_features) && !is.null(parts$obsm[["scale.data"]])) {
    # scale.data of the variable features only travels in obsm
    scale_features <- .as_chr(record$scale_data_features)
    if (!assay5) scale_features <- .seurat_feature_names(scale_features, "scale.data", report)
    mats[["scale.data"]] <- with_names(t(.matrix_from_py(parts$obsm[["scale.data"]])), scale_features)
  }
  other <- setdiff(names(layers), c("counts", "data", "scale.data"))
  extra <- lapply(stats::setNames(other, other), function(name) {
    m <- with_names(.matrix_from_py(layers[[name]]), features)
    if (!inherits(m, "dgCMatrix")) {
      .report_changed(report, paste0("layers ", name), "a dense matrix is stored sparse: Seurat keeps an assay's counts as dgCMatrix")
      m <- methods::as(m, "CsparseMatrix")
    }
    if (assay5) .so5("CreateAssay5Object")(counts = m) else SeuratObject::CreateAssayObject(counts = m)
  })
  assay_obj <- if (assay5) .assay5_from_parts(mats, parts, assay, cells, record, report) else
    .assay4_from_parts(mats, parts, assay, cells, record, report)
  list(assay = assay_obj, extra = extra)
}
