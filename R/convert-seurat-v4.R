# Seurat v4's assay class (Assay: counts / data / scale.data slots) <-> parts. It depends on the
# shared assay helpers (convert-seurat-assay.R) only, never on the v5 file.

# Whether two sparse matrices share their values' memory (an assay made from counts only has
# data = counts).
.same_memory <- function(a, b) {
  inherits(a, "dgCMatrix") && inherits(b, "dgCMatrix") && length(a@x) > 0 &&
    identical(.Call(C_isthmus_data_address, a@x), .Call(C_isthmus_data_address, b@x))
}

.assay4_to_parts <- function(assay_obj, assay, cells, x_slot, report) {
  features <- rownames(assay_obj@data)
  .check_names(features, paste0("features of assay ", assay))
  slots <- list()
  for (slot in c("counts", "data")) {
    m <- methods::slot(assay_obj, slot)
    if (length(m) == 0) next
    .check_dimnames(m, features, cells, paste0("assay ", assay, " ", slot))
    slots[[slot]] <- .matrix_to_py(m, paste0("assay ", assay, " slot ", slot), sparse_only = TRUE)
  }
  x_slot <- .choose_x(x_slot, names(slots), assay, names(slots))
  parts <- list(var_names = features, X = slots[[x_slot]], layers = slots[setdiff(names(slots), x_slot)],
                obsm = list(), varm = list())
  record <- list(assay = assay, key = SeuratObject::Key(assay_obj), x_slot = x_slot,
                 variable_features = SeuratObject::VariableFeatures(assay_obj),
                 class = "Assay",
                 # data is counts itself (an assay made from counts only): the layer for it may be
                 # left out on the Python side (the AnnData it was read from had none), and is rebuilt
                 data_is_counts = .same_memory(assay_obj@counts, assay_obj@data))
  scale <- assay_obj@scale.data
  if (length(scale) && !identical(colnames(scale), cells)) {
    stop("isthmus: scale.data of assay ", assay, " has other cells than the assay.", call. = FALSE)
  }
  .assay_common_parts(parts, record, scale, assay_obj@meta.features, assay_obj@misc, features, assay, report)
}

# One slot of an Assay ("counts", "data", "scale.data"); NULL for any other name.
.assay4_matrix <- function(assay_obj, layer) {
  if (!layer %in% c("counts", "data", "scale.data")) return(NULL)
  methods::slot(assay_obj, layer)
}

.assay4_from_parts <- function(mats, parts, assay, cells, record, report) {
  features <- rownames(mats[[1]])
  assay_obj <- if (!is.null(mats$counts)) {
    a <- SeuratObject::CreateAssayObject(counts = mats$counts)
    if (!is.null(mats$data)) a@data <- mats$data  # a v4 Assay: the slot itself (SetAssayData's arguments changed in v5)
    a
  } else {
    SeuratObject::CreateAssayObject(data = mats$data)
  }
  if (!is.null(mats[["scale.data"]])) assay_obj@scale.data <- mats[["scale.data"]]
  feats <- .assay_features_from_parts(parts, record, features,
                                      function(x) .seurat_feature_names(x, "variable", report))
  assay_obj@meta.features <- feats$var
  if (length(feats$variable)) SeuratObject::VariableFeatures(assay_obj) <- feats$variable
  SeuratObject::Key(assay_obj) <- .assay_key(record, assay)
  if (!is.null(record[["misc"]])) assay_obj@misc <- .uns_from_py(record[["misc"]])
  assay_obj
}
