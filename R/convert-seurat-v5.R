# Seurat v5 (SeuratObject >= 5: Assay5 with layers). Written against SeuratObject 5's documented
# API (Layers(), LayerData(), Features(), VariableFeatures(), CreateAssay5Object()) and kept
# apart from the v4 path; SeuratObject 5 cannot be installed on the CI machine, so this file is
# exercised by the Seurat v5 job (R 4.5 root), not by the default test run.
#
# Split layers (counts.g1, counts.g2, ... one per sample after split()) are joined into one
# matrix per kind and the split is kept in uns so the way back restores it.

.use_assay5 <- function() {
  utils::packageVersion("SeuratObject") >= "5.0.0" &&
    identical(getOption("Seurat.object.assay.version", "v5"), "v5")
}

.assay5_to_parts <- function(assay_obj, assay, cells, x_slot, report) {
  layers <- SeuratObject::Layers(assay_obj)
  features <- SeuratObject::Features(assay_obj)
  .check_names(features, paste0("features of assay ", assay))
  kinds <- unique(sub("\\..*$", "", layers))
  mats <- list()
  split <- list()
  for (kind in intersect(kinds, c("counts", "data"))) {
    names_k <- layers[sub("\\..*$", "", layers) == kind]
    if (length(names_k) > 1) {
      # join the split layers into one features x cells matrix in the object's cell order
      pieces <- lapply(names_k, function(l) SeuratObject::LayerData(assay_obj, layer = l, features = features))
      joined <- do.call(cbind, pieces)
      joined <- joined[, cells, drop = FALSE]
      split[[kind]] <- list(layers = names_k,
                            cells = lapply(pieces, colnames))
      mats[[kind]] <- joined
    } else {
      mats[[kind]] <- SeuratObject::LayerData(assay_obj, layer = names_k, features = features, cells = cells)
    }
  }
  specs <- lapply(names(mats), function(k) .matrix_to_py(mats[[k]], paste0("assay ", assay, " layer ", k), sparse_only = TRUE))
  names(specs) <- names(mats)
  if (!x_slot %in% names(specs)) {
    stop("isthmus: assay ", assay, " has no '", x_slot, "' layer to put in X; it has: ",
         paste(layers, collapse = ", "), ". Choose another `x`.", call. = FALSE)
  }
  hv <- SeuratObject::VariableFeatures(assay_obj)
  record <- list(assay = assay, key = SeuratObject::Key(assay_obj), x_slot = x_slot,
                 variable_features = hv, class = "Assay5", split = split)
  parts <- list(var_names = features, X = specs[[x_slot]], layers = specs[setdiff(names(specs), x_slot)],
                obsm = list(), varm = list())
  if ("scale.data" %in% layers) {
    scale <- SeuratObject::LayerData(assay_obj, layer = "scale.data")
    if (identical(rownames(scale), features)) {
      parts$layers[["scale.data"]] <- .matrix_to_py(scale, "scale.data")
    } else {
      parts$obsm[["scale.data"]] <- .matrix_to_py(scale, "scale.data")
      record$scale_data_features <- (rownames(scale))
    }
  }
  var <- assay_obj[[]]
  rownames(var) <- features
  record$highly_variable_added <- !"highly_variable" %in% names(var)
  if (record$highly_variable_added) var$highly_variable <- features %in% hv
  parts$var <- .frame_to_py(var, features, paste0("assay ", assay, " feature metadata"), report)
  parts$record <- record
  parts
}

.assay5_from_parts <- function(parts, assay, cells, record, report) {
  record <- record %||% list()
  features <- .as_chr(parts$var_names)
  x_slot <- record$x_slot %||% "data"
  mats <- list()
  if (!is.null(parts$X)) mats[[x_slot]] <- .matrix_from_py(parts$X)
  for (name in intersect(names(.named_list(parts$layers)), c("counts", "data", "scale.data"))) {
    if (is.null(mats[[name]])) mats[[name]] <- .matrix_from_py(parts$layers[[name]])
  }
  mats <- lapply(mats, function(m) { dimnames(m) <- list(features, cells); m })
  assay_obj <- if (!is.null(mats$counts)) {
    SeuratObject::CreateAssay5Object(counts = mats$counts, data = mats$data)
  } else {
    SeuratObject::CreateAssay5Object(data = mats$data)
  }
  if (!is.null(mats[["scale.data"]])) SeuratObject::LayerData(assay_obj, layer = "scale.data") <- mats[["scale.data"]]
  # restore split layers (counts.g1, ...) exactly as they were
  for (kind in names(record$split %||% list())) {
    s <- record$split[[kind]]
    full <- SeuratObject::LayerData(assay_obj, layer = kind)
    assay_obj[[kind]] <- NULL
    for (k in seq_along(s$layers)) {
      SeuratObject::LayerData(assay_obj, layer = s$layers[[k]]) <- full[, .as_chr(s$cells[[k]]), drop = FALSE]
    }
  }
  var <- .frame_from_py(parts$var)
  if (isTRUE(record$highly_variable_added)) var$highly_variable <- NULL
  if (ncol(var)) assay_obj[[names(var)]] <- var
  hv <- if (!is.null(record$variable_features)) .as_chr(record$variable_features) else features[var$highly_variable %in% TRUE]
  SeuratObject::VariableFeatures(assay_obj) <- hv
  if (!is.null(record$key)) SeuratObject::Key(assay_obj) <- record$key
  list(assay = assay_obj, extra = list())
}
