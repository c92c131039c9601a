# Seurat v5's assay class (SeuratObject >= 5: Assay5 with layers) <-> parts. It depends on the
# shared assay helpers (convert-seurat-assay.R) only, never on the v4 file. Written against SeuratObject 5's documented
# API (Layers(), LayerData(), Features(), VariableFeatures(), DefaultLayer(), CreateAssay5Object())
# and kept apart from the v4 path. SeuratObject 5 cannot be installed on the CI machine's own
# Debian release; this file was checked under R 4.5 / Seurat 5.2.1 in a Debian trixie root (the
# Seurat v5 test job is its own issue).
#
# Split layers (counts.g1, counts.g2, ... one per sample after split()) are joined into one
# matrix per kind; the split, the layer order and the default layers are kept in the record so
# the way back restores them.

.layer_kind <- function(layers) sub("\\..*$", "", layers)

# One features x cells matrix for a layer kind ("counts"), joining split layers (counts.g1, ...)
# in the object's cell order; `split` says which cells each split layer held.
.assay5_joined <- function(assay_obj, kind, cells) {
  layers <- .so5("Layers")(assay_obj)
  names_k <- layers[.layer_kind(layers) == kind]
  features <- SeuratObject::Features(assay_obj)
  if (length(names_k) == 1) {
    return(list(matrix = .so5("LayerData")(assay_obj, layer = names_k, features = features, cells = cells),
                split = list(layers = names_k)))
  }
  pieces <- lapply(names_k, function(l) .so5("LayerData")(assay_obj, layer = l, features = features))
  list(matrix = do.call(cbind, pieces)[, cells, drop = FALSE],
       split = list(layers = names_k, cells = lapply(pieces, colnames)))
}

# One layer kind of an Assay5 ("counts"), split layers joined; NULL if it has none.
.assay5_matrix <- function(assay_obj, layer, cells) {
  if (!layer %in% .layer_kind(.so5("Layers")(assay_obj))) return(NULL)
  .assay5_joined(assay_obj, layer, cells)$matrix
}

.assay5_to_parts <- function(assay_obj, assay, cells, x_slot, report) {
  layers <- .so5("Layers")(assay_obj)
  features <- SeuratObject::Features(assay_obj)
  .check_names(features, paste0("features of assay ", assay))
  mats <- list()
  split <- list()
  for (kind in intersect(unique(.layer_kind(layers)), c("counts", "data"))) {
    joined <- .assay5_joined(assay_obj, kind, cells)
    mats[[kind]] <- joined$matrix
    if (length(joined$split$layers) > 1) split[[kind]] <- joined$split
  }
  x_slot <- .choose_x(x_slot, names(mats), assay, layers)
  specs <- lapply(names(mats), function(k) .matrix_to_py(mats[[k]], paste0("assay ", assay, " layer ", k), sparse_only = TRUE))
  names(specs) <- names(mats)
  hv <- SeuratObject::VariableFeatures(assay_obj)
  record <- list(assay = assay, key = SeuratObject::Key(assay_obj), x_slot = x_slot,
                 variable_features = hv, class = "Assay5", split = split, layers = layers,
                 default_layer = .so5("DefaultLayer")(assay_obj),
                 misc_named = !is.null(names(assay_obj@misc)),  # an empty misc may be list() or a named list()
                 layer_maps = colnames(assay_obj@cells))        # column order of the cells / features maps
  parts <- list(var_names = features, X = specs[[x_slot]], layers = specs[setdiff(names(specs), x_slot)],
                obsm = list(), varm = list())
  other <- setdiff(layers, c(unlist(lapply(split, `[[`, "layers")), "counts", "data", "scale.data"))
  for (l in other) .report_dropped(report, paste0("assay ", assay, " layer ", l), "only counts, data and scale.data layers are carried")
  scale <- if ("scale.data" %in% layers) .so5("LayerData")(assay_obj, layer = "scale.data")
  .assay_common_parts(parts, record, scale, assay_obj[[]], assay_obj@misc, features, assay, report)
}

.assay5_from_parts <- function(mats, parts, assay, cells, record, report) {
  features <- rownames(mats[[1]])
  assay_obj <- .so5("CreateAssay5Object")(counts = mats$counts, data = mats$data)
  # split layers (counts.g1, ...) back from the joined matrix, in the object's cell order; the
  # joined layer can only be removed once the split ones exist
  for (kind in names(record$split %||% list())) {
    s <- record$split[[kind]]
    full <- .so5("LayerData")(assay_obj, layer = kind)
    for (k in seq_along(s$cells)) {
      assay_obj <- .so5("LayerData<-")(assay_obj, layer = .as_chr(s$layers)[[k]],
                                       value = full[, .as_chr(s$cells[[k]]), drop = FALSE])
    }
    # SeuratObject warns that the default layer moves; the original default is restored below
    assay_obj <- withCallingHandlers(
      .so5("LayerData<-")(assay_obj, layer = kind, value = NULL),
      warning = function(w) if (grepl("default layer", conditionMessage(w))) invokeRestart("muffleWarning")
    )
  }
  if (!is.null(mats[["scale.data"]])) assay_obj <- .so5("LayerData<-")(assay_obj, layer = "scale.data", value = mats[["scale.data"]])
  order <- .as_chr(record$layers)
  if (length(order) && setequal(order, .so5("Layers")(assay_obj)) && !identical(order, .so5("Layers")(assay_obj))) {
    assay_obj@layers <- assay_obj@layers[order]
  }
  maps <- .as_chr(record$layer_maps)  # which cells / features each layer holds, in the original order
  if (length(maps) && setequal(maps, colnames(assay_obj@cells)) && !identical(maps, colnames(assay_obj@cells))) {
    assay_obj@cells <- assay_obj@cells[, maps, drop = FALSE]
    assay_obj@features <- assay_obj@features[, maps, drop = FALSE]
  }
  if (length(.as_chr(record$default_layer))) assay_obj <- .so5("DefaultLayer<-")(assay_obj, value = .as_chr(record$default_layer))
  feats <- .assay_features_from_parts(parts, record, features)
  if (ncol(feats$var)) assay_obj[[names(feats$var)]] <- feats$var
  if (length(feats$variable)) SeuratObject::VariableFeatures(assay_obj) <- feats$variable
  SeuratObject::Key(assay_obj) <- .assay_key(record, assay)
  assay_obj
}
