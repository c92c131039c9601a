# Seurat <-> parts, the object level: meta.data, reductions, graphs, misc, images. One assay's
# parts are convert-seurat-assay.R's, which chooses between Seurat v4's Assay (convert-seurat-v4.R)
# and v5's Assay5 (convert-seurat-v5.R). Round-trip facts AnnData has no slot for (reduction keys,
# the Seurat name of each assay, which slot became X ...) are kept in uns[["isthmus"]].
#
#  Seurat                          AnnData
#  assay data (default) / counts   X (choose with `x_layer`), the other in layers[["counts"|"data"]]
#  scale.data                      layers[["scale.data"]] (all features) or obsm[["scale.data"]]
#  meta.data, Idents()             obs (+ obs[["ident"]] when meta.data has no such column)
#  meta.features, VariableFeatures var (+ var[["highly_variable"]]), uns record keeps the order
#  reduction embeddings / loadings obsm[["X_<name>"]] / varm[["PCs"|"<name>_loadings"]]
#  graphs                          obsp[[<name>]]
#  misc                            uns (top level)
#  images (Visium, SlideSeq)       obsm[["spatial"]], uns[["spatial"]] (convert-spatial.R)

# Names that come from Python: the fix is made there.
.check_py_names <- function(names, what) {
  dup <- unique(names[duplicated(names)])
  if (length(dup)) {
    stop("isthmus: the AnnData's ", what, " are not unique (", paste(utils::head(dup, 5), collapse = ", "),
         if (length(dup) > 5) paste0(", ... ", length(dup), " in all") else "", "); R objects need unique names. ",
         "Call adata.", what, "_make_unique() in Python first.", call. = FALSE)
  }
}

.modality_name <- function(assay) {
  switch(assay, RNA = "rna", ATAC = "atac", peaks = "atac", ADT = "prot", tolower(assay))
}

# ---- Seurat -> parts --------------------------------------------------------------------------

.reduction_to_parts <- function(red, name, features_by_assay, report) {
  emb <- red@cell.embeddings
  key <- red@key
  # a reduction read from an obsm key without scanpy's "X_" remembers that key (see .seurat_from_parts)
  obsm <- red@misc$isthmus_obsm %||% paste0("X_", name)
  red@misc$isthmus_obsm <- NULL
  record <- list(key = key, obsm = obsm, colnames = colnames(emb), assay = red@assay.used,
                 global = red@global, stdev = if (length(red@stdev)) array(red@stdev) else NULL)
  attrs <- attributes(emb)[setdiff(names(attributes(emb)), c("dim", "dimnames"))]
  if (length(attrs)) record$attributes <- .uns_to_py(attrs, paste0("reduction ", name, " attributes"), report)
  out <- list(obsm = .matrix_to_py(emb, paste0("reduction ", name), orientation = "same"), varm = list())
  features <- features_by_assay[[red@assay.used]]
  add_loadings <- function(mat, what, varm_name) {
    if (!length(mat)) return(NULL)
    if (is.null(features) || !all(rownames(mat) %in% features)) {
      .report_dropped(report, paste0("reduction ", name, " ", what), "its features are not in the converted assay")
      return(NULL)
    }
    # AnnData's varm spans all features: zero rows for features without loadings (scanpy's own
    # convention for PCA on variable genes); the record keeps which rows are real.
    full <- matrix(0, nrow = length(features), ncol = ncol(mat))
    full[match(rownames(mat), features), ] <- mat
    out$varm[[varm_name]] <<- .matrix_to_py(full, what, orientation = "same")
    list(varm = varm_name, features = rownames(mat), colnames = colnames(mat))
  }
  record$loadings <- add_loadings(red@feature.loadings, "loadings", if (name == "pca") "PCs" else paste0(name, "_loadings"))
  record$projected <- add_loadings(red@feature.loadings.projected, "projected loadings", paste0(name, "_loadings_projected"))
  if (length(red@misc)) record$misc <- .uns_to_py(red@misc, paste0("reduction ", name, " misc"), report)
  if (length(red@jackstraw@empirical.p.values) || length(red@jackstraw@fake.reduction.scores)) {
    .report_dropped(report, paste0("reduction ", name, " jackstraw"), "JackStraw results have no AnnData counterpart")
  }
  out$record <- record
  out
}

# Object-level parts (obs, reductions, graphs, misc, images) shared by the AnnData and MuData routes.
.seurat_global_parts <- function(obj, features_by_assay, report) {
  cells <- colnames(obj)
  .check_names(cells, "cells")
  meta <- obj@meta.data
  if (!identical(rownames(meta), cells)) stop("isthmus: meta.data rows do not match the cells.", call. = FALSE)
  idents <- SeuratObject::Idents(obj)
  # identities that only repeat the project name (nothing set them) carry nothing: no column
  trivial <- nlevels(idents) <= 1 && all(as.character(idents) == obj@project.name)
  ident_added <- !"ident" %in% names(meta) && !trivial
  if (ident_added) meta$ident <- unname(SeuratObject::Idents(obj))
  record <- list(from = "Seurat", project_name = obj@project.name, version = as.character(obj@version),
                 active_assay = SeuratObject::DefaultAssay(obj), ident_added = ident_added,
                 reductions = list(), graphs = list(), uns_added = list(),
                 character_columns = .character_columns(meta))
  parts <- list(obs_names = cells, obs = .frame_to_py(meta, cells, "meta.data", report),
                obsm = list(), varm = list(), obsp = list(), uns = list())
  for (name in SeuratObject::Reductions(obj)) {
    red <- .reduction_to_parts(obj[[name]], name, features_by_assay, report)
    parts$obsm[[red$record$obsm]] <- red$obsm
    parts$varm[[red$record$assay]] <- c(parts$varm[[red$record$assay]], red$varm)
    record$reductions[[name]] <- red$record
    if (name == "pca" && length(obj[[name]]@stdev) && !"pca" %in% names(obj@misc)) {
      parts$uns$pca <- list(variance = array(obj[[name]]@stdev^2))  # what scanpy reads
      record$uns_added <- c(record$uns_added, "pca")
    }
  }
  for (name in names(obj@graphs)) {
    g <- obj@graphs[[name]]
    .check_dimnames(g, cells, cells, paste0("graph ", name))
    parts$obsp[[name]] <- .matrix_to_py(methods::as(g, "dgCMatrix"), paste0("graph ", name), orientation = "same")
    record$graphs[[name]] <- list(assay = if (length(g@assay.used)) g@assay.used else "")
  }
  if (length(obj@neighbors)) .report_dropped(report, "neighbors", "Seurat Neighbor objects are not carried (graphs are)")
  if (length(obj@commands)) .report_dropped(report, "commands", "the Seurat command log has no AnnData counterpart")
  # dtypes and layouts of the AnnData this object was read from (python/isthmus/io/_types.py)
  record$source_types <- obj@tools$isthmus_source
  tools <- obj@tools[setdiff(names(obj@tools), c("isthmus_source", "isthmus_source_mods"))]
  if (length(tools)) record$tools <- .uns_to_py(tools, "tools", report)
  spatial <- .images_to_parts(obj, report)
  if (!is.null(spatial)) {
    parts$obsm[["spatial"]] <- spatial$obsm
    if (length(spatial$uns)) parts$uns[["spatial"]] <- spatial$uns
    record$images <- spatial$record
  }
  if (!is.null(spatial) && is.list(obj@misc$spatial)) {
    parts$uns$spatial <- .merge_spatial_rest(parts$uns$spatial, obj@misc$spatial)
    obj@misc$spatial <- NULL
  }
  clash <- intersect(names(obj@misc), c("isthmus", names(parts$uns)))
  if (length(clash)) .report_dropped(report, paste0("misc$", clash), "the name is reserved in uns")
  misc <- obj@misc[setdiff(names(obj@misc), clash)]
  for (name in names(misc)) {
    value <- .uns_to_py(misc[[name]], paste0("misc$", name), report)
    if (!is.null(value)) parts$uns[[name]] <- value
  }
  parts$record <- record
  parts
}

.features_by_assay <- function(obj, assays) {
  stats::setNames(lapply(assays, function(a) rownames(obj[[a]])), assays)
}

.seurat_to_anndata_parts <- function(obj, assay, x, report) {
  assay <- assay %||% SeuratObject::DefaultAssay(obj)
  if (!assay %in% SeuratObject::Assays(obj)) {
    stop("isthmus: assay '", assay, "' is not in the object; it has: ", paste(SeuratObject::Assays(obj), collapse = ", "), call. = FALSE)
  }
  others <- setdiff(SeuratObject::Assays(obj), assay)
  # assays made from the layers of an AnnData (as_seurat()) go back to being its layers
  as_layers <- Filter(function(o) identical(obj[[o]]@misc$isthmus_layer_of, assay) &&
                        identical(rownames(obj[[o]]), rownames(obj[[assay]])), others)
  raws <- Filter(function(o) identical(obj[[o]]@misc$isthmus_raw_of, assay), others)  # adata.raw
  for (other in setdiff(others, c(as_layers, raws))) .report_dropped(report, paste0("assay ", other), "AnnData holds one assay; use as_mudata() for all")
  global <- .seurat_global_parts(obj, .features_by_assay(obj, assay), report)
  a <- .seurat_assay_to_parts(obj[[assay]], assay, colnames(obj), x, report)
  for (other in as_layers) {
    a$layers[[other]] <- .matrix_to_py(.assay_matrix(obj, other, "counts"), paste0("assay ", other), sparse_only = TRUE)
  }
  # reductions computed on other assays have loadings only there
  varm <- c(global$varm[[assay]] %||% list(), a$varm)
  record <- global$record
  record$assays <- list(a$record)
  names(record$assays) <- assay
  uns <- global$uns
  uns$isthmus <- record
  raw <- NULL
  if (length(raws)) {
    r <- obj[[raws[[1]]]]
    raw_var <- if (inherits(r, "Assay5")) r[[]] else r@meta.features
    raw <- list(var_names = rownames(r), X = .matrix_to_py(.assay_matrix(obj, raws[[1]], "data"), paste0("assay ", raws[[1]]), sparse_only = TRUE),
                var = .frame_to_py(raw_var, rownames(r), paste0("assay ", raws[[1]], " feature metadata"), report))
  }
  list(obs_names = global$obs_names, var_names = a$var_names, X = a$X, layers = a$layers,
       obs = global$obs, var = a$var, obsm = c(global$obsm, a$obsm), varm = varm,
       obsp = global$obsp, varp = a$varp, raw = raw, uns = uns)
}

# ---- parts -> Seurat --------------------------------------------------------------------------

.named_list <- function(x) if (is.null(x) || !length(x)) list() else x

.is_counts <- function(m) {
  if (is.null(m)) return(FALSE)
  values <- if (inherits(m, "dgCMatrix")) m@x else as.vector(m)
  length(values) > 0 && !anyNA(values) && all(values >= 0) && all(values == round(values))
}

.reduction_from_parts <- function(name, emb, rec, varm, feature_names, assay, report) {
  rec <- rec %||% list()
  key <- rec$key %||% .safe_key(name)
  colnames(emb) <- if (!is.null(rec$colnames)) .as_chr(rec$colnames) else paste0(key, seq_len(ncol(emb)))
  loadings_from <- function(lrec) {
    if (is.null(lrec) || is.null(varm[[lrec$varm]])) return(methods::new("matrix"))
    full <- varm[[lrec$varm]]
    # the record names features as Seurat did ('-' for '_' and '|'); the AnnData may hold the
    # original names again (an object first read from a file): match on Seurat's spelling
    seurat_spelling <- function(x) gsub("[_|]", "-", x)
    rows <- match(seurat_spelling(.as_chr(lrec$features)), seurat_spelling(feature_names))
    m <- full[rows, , drop = FALSE]
    dimnames(m) <- list(.seurat_feature_names(.as_chr(lrec$features), "loadings", report), .as_chr(lrec$colnames))
    m
  }
  loadings <- loadings_from(rec$loadings)
  if (is.null(rec$loadings) && name == "pca" && !is.null(varm$PCs)) {
    loadings <- varm$PCs
    dimnames(loadings) <- list(feature_names, colnames(emb)[seq_len(ncol(loadings))])
  }
  red <- SeuratObject::CreateDimReducObject(
    embeddings = emb, loadings = loadings, projected = loadings_from(rec$projected),
    stdev = if (!is.null(rec$stdev)) as.numeric(rec$stdev) else numeric(),
    key = key, assay = rec$assay %||% assay, global = isTRUE(rec$global),
    misc = if (!is.null(rec$misc)) .uns_from_py(rec$misc) else list()
  )
  # e.g. uwot's "scaled:center" on UMAP embeddings
  for (a in names(.named_list(rec$attributes))) attr(red@cell.embeddings, a) <- .uns_from_py(rec$attributes[[a]])
  red
}

.safe_key <- function(name) {
  key <- gsub("[^A-Za-z0-9]", "", toupper(name))
  if (!nzchar(key) || !grepl("^[A-Za-z]", key)) key <- paste0("DR", key)
  paste0(key, "_")
}

# SeuratObject 4's CreateSeuratObject() for one assay, less its nCount / nFeature step (which 4
# cannot switch off; 5 has an option, see .seurat_from_parts): made as its
# CreateSeuratObject.Assay() makes it, the idents and metadata then replaced by the caller.
.seurat4_object_without_counts_summary <- function(assay_obj, assay, project) {
  cells <- colnames(assay_obj)
  methods::new("Seurat", assays = stats::setNames(list(assay_obj), assay),
               meta.data = data.frame(row.names = cells), active.assay = assay,
               active.ident = stats::setNames(factor(rep.int(project, length(cells))), cells),
               project.name = project, version = utils::packageVersion("SeuratObject"))
}

# Builds the Seurat object from one modality (AnnData) or several (MuData): `mods` is a named
# list of modality parts, `global` the object-level parts (obs, obsm, obsp, uns).
.seurat_from_parts <- function(mods, global, assay_names, report) {
  uns <- .named_list(global$uns)
  record <- .uns_from_py(uns$isthmus %||% list())
  if (!identical(record$from, "Seurat")) record <- list()  # e.g. an AnnData that came from an SCE
  uns$isthmus <- NULL
  cells <- .as_chr(global$obs_names)
  if (!length(cells)) stop("isthmus: the AnnData / MuData has 0 cells; a Seurat object needs at least one.", call. = FALSE)
  .check_py_names(cells, "obs_names")
  for (p in mods) .check_py_names(.as_chr(p$var_names), "var_names")
  assay_records <- record$assays %||% list()
  built <- list()
  for (k in seq_along(mods)) {
    assay <- assay_names[[k]]
    built[[assay]] <- .assay_from_parts(mods[[k]], assay, cells, assay_records[[assay]], report)
  }
  first <- names(built)[1]
  project <- record$project_name %||% "SeuratProject"
  # Without CreateSeuratObject()'s nCount / nFeature step: nFeature is colSums(counts > 0), a
  # logical copy of the counts (8 bytes per non-zero count, 3.7 GiB for the cost-curve bench's
  # million cells), and the AnnData's obs replaces that metadata below anyway. SeuratObject 5 skips
  # it under its option, which also covers the assays added after the first.
  if (utils::packageVersion("SeuratObject") >= "5.0.0") {
    calcn <- options(Seurat.object.assay.calcn = FALSE)
    on.exit(options(calcn), add = TRUE)
    obj <- SeuratObject::CreateSeuratObject(counts = built[[first]]$assay, assay = first, project = project)
  } else {
    obj <- .seurat4_object_without_counts_summary(built[[first]]$assay, first, project)
  }
  for (assay in names(built)[-1]) obj[[assay]] <- built[[assay]]$assay
  for (assay in names(built)) {
    # CreateSeuratObject() notes its own flags (calcN) in an Assay5's misc: give back the original
    if (inherits(obj@assays[[assay]], "Assay5")) {
      rec <- assay_records[[assay]]
      misc <- .uns_from_py(rec[["misc"]] %||% list())  # [[ ]]: $ would partially match misc_named
      if (!length(misc)) misc <- if (isTRUE(rec$misc_named)) structure(list(), names = character()) else list()
      obj@assays[[assay]]@misc <- misc
    }
  }
  for (assay in names(built)) {
    for (extra in names(built[[assay]]$extra)) {
      if (extra %in% names(obj@assays)) {
        .report_dropped(report, paste0("layer ", extra), "an assay of that name exists already")
        next
      }
      obj[[extra]] <- built[[assay]]$extra[[extra]]
      # as_anndata() of `assay` gives it back as a layer
      obj@assays[[extra]]@misc$isthmus_layer_of <- assay
    }
  }
  meta <- .restore_character(.frame_from_py(global$obs), record$character_columns)
  rownames(meta) <- cells
  idents <- NULL
  if (isTRUE(record$ident_added) && "ident" %in% names(meta)) {
    idents <- meta$ident
    meta$ident <- NULL
  }
  obj@meta.data <- meta
  if (is.null(idents)) idents <- factor(rep(obj@project.name, length(cells)))
  names(idents) <- cells
  obj@active.ident <- idents
  # reductions
  feature_names <- lapply(mods, function(p) .as_chr(p$var_names))
  names(feature_names) <- assay_names
  varm_by_assay <- lapply(mods, function(p) lapply(.named_list(p$varm), .matrix_from_py))
  names(varm_by_assay) <- assay_names
  reductions <- record$reductions %||% list()
  obsm <- .named_list(global$obsm)
  used_varm <- list()
  for (obsm_name in setdiff(names(obsm), c("spatial", "scale.data"))) {
    rec_name <- Filter(function(r) identical(reductions[[r]]$obsm, obsm_name), names(reductions))
    name <- if (length(rec_name)) rec_name[[1]] else sub("^X_", "", obsm_name)
    emb <- .matrix_from_py(obsm[[obsm_name]])
    if (inherits(emb, "sparseMatrix")) {
      .report_changed(report, paste0("obsm ", obsm_name), "a sparse matrix became a dense reduction (Seurat's embeddings are dense)")
      emb <- as.matrix(emb)
    }
    if (!is.numeric(emb) || !is.matrix(emb)) {
      .report_dropped(report, paste0("obsm ", obsm_name), "a reduction needs a numeric matrix (this is a data frame)")
      next
    }
    rownames(emb) <- cells
    rec <- reductions[[name]]
    if (is.null(rec) && name %in% c(names(obj@assays), names(obj@reductions))) {
      # e.g. a layer and an obsm entry of the same name (anndata's own test files): Seurat keeps
      # one namespace for assays and reductions
      .report_changed(report, paste0("obsm ", obsm_name), paste0("an assay has that name: the reduction is '", name, "_obsm'"))
      name <- paste0(name, "_obsm")
    }
    assay <- rec$assay %||% first
    red_assay <- if (assay %in% names(varm_by_assay)) assay else first
    red <- .reduction_from_parts(name, emb, rec, varm_by_assay[[red_assay]], feature_names[[red_assay]], assay, report)
    if (is.null(rec) && !identical(obsm_name, paste0("X_", name))) red@misc$isthmus_obsm <- obsm_name
    used_varm[[red_assay]] <- c(used_varm[[red_assay]], .as_chr(rec$loadings$varm), .as_chr(rec$projected$varm),
                                if (is.null(rec$loadings) && name == "pca") "PCs")
    obj[[name]] <- red
  }
  for (name in names(.named_list(global$obsp))) {
    g <- .matrix_from_py(global$obsp[[name]])
    if (!inherits(g, "dgCMatrix")) g <- methods::as(g, "CsparseMatrix")
    dimnames(g) <- list(cells, cells)
    g <- SeuratObject::as.Graph(g)
    assay_used <- record$graphs[[name]]$assay %||% first
    if (nzchar(assay_used)) SeuratObject::DefaultAssay(g) <- assay_used
    obj@graphs[[name]] <- g
  }
  # adata.raw: an assay of its own (data only: raw.X is usually normalised), marked for the way back
  for (k in seq_along(mods)) {
    raw <- mods[[k]]$raw
    if (is.null(raw$X)) next
    assay <- assay_names[[k]]
    name <- if (!"raw" %in% names(obj@assays)) "raw" else paste0(assay, "_raw")
    raw_features <- .as_chr(raw$var_names)
    v5 <- inherits(obj@assays[[assay]], "Assay5")
    raw_features <- .seurat_feature_names(raw_features, "raw", report, underscores = !v5)
    m <- .matrix_from_py(raw$X)
    if (!inherits(m, "dgCMatrix")) {
      .report_changed(report, "raw X", "a dense matrix is stored sparse: Seurat keeps an assay's data as dgCMatrix")
      m <- methods::as(m, "CsparseMatrix")
    }
    dimnames(m) <- list(raw_features, cells)
    raw_var <- .frame_from_py(raw$var)
    rownames(raw_var) <- raw_features
    if (v5) {
      a <- .so5("CreateAssay5Object")(data = m)
      if (ncol(raw_var)) a[[names(raw_var)]] <- raw_var
    } else {
      a <- SeuratObject::CreateAssayObject(data = m)
      a@meta.features <- raw_var
    }
    SeuratObject::Key(a) <- .safe_key(paste0(name, "x"))
    a@misc$isthmus_raw_of <- assay
    obj <- .set_assay(obj, name, a)  # a data-only assay: SeuratObject 5's "no counts layer" note is moot
  }
  for (k in seq_along(mods)) {
    varp <- lapply(.named_list(mods[[k]]$varp), .matrix_from_py)
    if (!length(varp)) next
    assay <- assay_names[[k]]
    feats <- rownames(obj[[assay]])
    varp <- lapply(varp, function(g) {
      g <- if (inherits(g, "sparseMatrix")) g else methods::as(g, "CsparseMatrix")
      dimnames(g) <- list(feats, feats)
      g
    })
    obj@assays[[assay]]@misc$varp <- c(obj@assays[[assay]]@misc$varp, varp)
  }
  # varm entries no reduction took: the assay's misc$varm (as_anndata() puts them back in varm)
  for (assay in names(varm_by_assay)) {
    rest <- varm_by_assay[[assay]][setdiff(names(varm_by_assay[[assay]]), used_varm[[assay]])]
    rest <- Filter(function(m) is.matrix(m) && is.numeric(m), rest)
    if (!length(rest)) next
    rest <- lapply(rest, function(m) { rownames(m) <- rownames(obj[[assay]]); m })
    obj@assays[[assay]]@misc$varm <- c(obj@assays[[assay]]@misc$varm, rest)
  }
  obj <- .images_from_parts(obj, global, uns, record$images, first, report)
  uns$spatial <- attr(obj, "spatial_rest")  # what the images have no slot for (NULL: nothing)
  attr(obj, "spatial_rest") <- NULL
  for (name in .as_chr(record$uns_added)) uns[[name]] <- NULL
  obj@misc <- if (length(uns)) lapply(uns, .uns_from_py) else list()
  if (!is.null(record$tools)) obj@tools <- .uns_from_py(record$tools)
  if (!is.null(record$version)) obj@version <- package_version(record$version)
  if (!is.null(record$active_assay) && record$active_assay %in% names(obj@assays)) {
    SeuratObject::DefaultAssay(obj) <- record$active_assay
  }
  obj
}
