# What the verbs need from a Seurat or SingleCellExperiment object, and how results go back in,
# written once per class here so that each verb (tasks-*.R) is written once for both.
#
# Every verb is an S3 generic, Seurat's way (RunPCA.default -> RunPCA.Seurat):
#   <Verb>.default(counts, meta.data, ...)  a features x cells matrix and a data.frame of cells in;
#                                           a plain result (.task_result()) out, for any R user
#   <Verb>.Seurat / .SingleCellExperiment   pick the assay, layer, columns and reductions
#                                           (.object_parts()), call .default, store its result
#                                           with .put_result()
#
#   crossing .run_core()     the one call into the core: lean AnnDatas + the Python keywords in,
#                            one result shape out (written entries by registry path, record, value)
#   input    .task_anndata() counts + the named cell columns (+ embedding, coordinates) as an AnnData
#   output   .put_result()   reductions, meta.data / colData columns, assays and records, for both
#                            classes: Seurat reduction (lower-case name, key) / SCE reducedDim
#                            (upper-case); a new Seurat assay (data) / SCE assay or altExp;
#                            Tool(object, "isthmus") / metadata(object)$isthmus

# ---- the one crossing ----------------------------------------------------------------------------

# Runs tl.<task> in the core (isthmus._r.run) and returns its one result shape: `written` (every
# entry the task wrote, named by its registry path, e.g. "obsm/X_scvi"), `record` and `value`,
# tables as data.frames. `data`: lean AnnDatas, or list(modalities = ...) / list(layers = ...) /
# list(obsm = ...) parts the core assembles; `options`: a figure file and its title.
# With options(isthmus.backend = "worker") the task runs in a worker process (worker.R).
.run_core <- function(task, data, kwargs, options = NULL, .names = .r_names(), backend = NULL) {
  backend <- .backend(backend)
  if (backend != "worker" && .several_devices(kwargs$devices)) {
    # Lightning's DDP starts one process per device by running the calling program again: a worker
    # can be run again, an R session cannot
    message("isthmus: ", .device_count(kwargs$devices), " devices train in a worker process (Lightning's DDP).")
    backend <- "worker"
  }
  out <- if (backend == "worker") .run_in_worker(task, data, kwargs, options, .names) else
    .py_task("run", task, data, kwargs, options, .names = .names)
  .from_core(out)
}

# `devices` as a count of devices: "auto" is one, a number is a count, a list or several numbers are
# GPU indices (reticulate hands a length-1 vector over as a number, a list as a list).
.device_count <- function(devices) {
  if (is.null(devices) || is.character(devices) || !is.numeric(unlist(devices))) return(1L)
  if (is.list(devices) || length(devices) > 1) return(length(devices))  # GPU indices
  as.integer(devices)
}
.several_devices <- function(devices) isTRUE(.device_count(devices) > 1)

# Tables from the core ({".frame": columns, ".rows": names}) as data.frames, everywhere in a result.
.from_core <- function(x) {
  if (!is.list(x) || is.data.frame(x)) return(x)
  if (!is.null(x[[".frame"]])) {
    columns <- lapply(x[[".frame"]], function(v) if (is.list(v)) .as_chr(v) else as.vector(v))
    frame <- as.data.frame(columns, stringsAsFactors = FALSE, optional = TRUE)
    if (!length(columns)) frame <- data.frame(row.names = seq_along(.as_chr(x[[".rows"]])))
    return(frame)
  }
  lapply(x, .from_core)
}

# A data.frame as an argument of the core (a pandas frame there).
.frame_to_core <- function(frame) list(.frame = lapply(frame, function(v) if (is.factor(v)) as.character(v) else v))

# ---- the genes a count model trains on ------------------------------------------------------------

# The `features` a count model trains on, from a Seurat / SCE object: the user's when given, else
# Seurat's VariableFeatures() when the assay has them, or an SCE's rowData "highly_variable"; NULL
# leaves the choice to the core (the standard selection on the counts).
.model_features <- function(object, assay, features) {
  if (!is.null(features)) return(features)
  if (.is_seurat(object)) {
    variable <- SeuratObject::VariableFeatures(object, assay = assay %||% SeuratObject::DefaultAssay(object))
  } else {
    # an SCE marks them as AnnData does (zellkonverter and as_sce() carry var["highly_variable"] over)
    marked <- SummarizedExperiment::rowData(object)[["highly_variable"]]
    variable <- if (is.logical(marked) && any(marked, na.rm = TRUE)) rownames(object)[which(marked)]
  }
  if (length(variable)) variable else NULL
}

# `features` as the core's `genes`: NULL is "variable" (the core's standard selection), "all" every
# gene, else the names.
.genes_argument <- function(features) {
  if (is.null(features)) return("variable")
  if (!is.character(features) || anyNA(features) || !length(features)) {
    stop("isthmus: features must be gene names, \"all\" or NULL (the variable genes).", call. = FALSE)
  }
  if (length(features) == 1) features else as.list(features)
}

# ---- results -------------------------------------------------------------------------------------

# What every verb's .default returns and .put_result() stores:
#   reductions  name -> list(embedding = cells x dims, key = "SCVI_", assay = the assay it came from)
#   columns     a data.frame of new cell columns, one row per cell
#   assays      name -> list(values = features x cells, record = the record; quiet.names = TRUE where
#               rows are labels that may hold "_" (Seurat changes those, as its own TransferData
#               does); seurat.only = TRUE for an assay only Seurat's plots need, with `columns`
#               that an SCE keeps instead)
#   records     name -> record (Tool(object, "isthmus") / metadata(object)$isthmus)
#   value       what the verb returns besides (a table), when it has one
.task_result <- function(reductions = list(), columns = NULL, assays = list(), records = list(), value = NULL) {
  list(reductions = reductions, columns = columns, assays = assays, records = records, value = value)
}

# A result into a Seurat or SingleCellExperiment object. Reduction names follow each class's custom
# (Seurat "scvi", SCE "SCVI") unless `names` (default name -> the user's name) sets them.
.put_result <- function(object, result, assay = NULL, names = list()) {
  for (name in names(result$reductions)) {
    r <- result$reductions[[name]]
    shown <- names[[name]] %||% .default_reduction_name(object, name)
    object <- .put_embedding(object, shown, r$key, r$embedding, r$assay %||% assay, r$record)
  }
  if (length(result$columns)) object <- .put_columns(object, result$columns)
  for (name in names(result$assays)) {
    a <- result$assays[[name]]
    if (isTRUE(a$seurat.only) && !.is_seurat(object)) {
      # an assay only Seurat's plots need (scores, proportions): an SCE keeps its columns instead
      if (length(a$columns)) object <- .put_columns(object, a$columns)
      next
    }
    object <- .put_expression(object, names[[name]] %||% name, a$values, a$record, quiet.names = isTRUE(a$quiet.names))
  }
  for (name in names(result$records)) object <- .put_record(object, names[[name]] %||% name, result$records[[name]])
  object
}

.is_seurat <- function(object) inherits(object, "Seurat")

.check_task_object <- function(object, arg = "object") {
  if (!inherits(object, c("Seurat", "SingleCellExperiment"))) {
    stop("isthmus: ", arg, " must be a Seurat or SingleCellExperiment object, not ", class(object)[1], ".",
         call. = FALSE)
  }
}

.cell_meta <- function(object) {
  if (.is_seurat(object)) object@meta.data else as.data.frame(SummarizedExperiment::colData(object))
}

.task_counts <- function(object, assay, layer) {
  if (.is_seurat(object)) {
    assay <- assay %||% SeuratObject::DefaultAssay(object)
    m <- .assay_matrix(object, assay, layer)
    if (!length(m)) stop("isthmus: assay ", assay, " has no '", layer, "' layer.", call. = FALSE)
    return(list(matrix = m, assay = assay, what = paste0("assay ", assay, " ", layer)))
  }
  if (!layer %in% SummarizedExperiment::assayNames(object)) {
    stop("isthmus: the SingleCellExperiment has no assay '", layer, "'; assays: ",
         paste(SummarizedExperiment::assayNames(object), collapse = ", "), call. = FALSE)
  }
  list(matrix = SummarizedExperiment::assay(object, layer), assay = NULL, what = paste0("assay ", layer))
}

.reduction_names <- function(object) {
  if (.is_seurat(object)) SeuratObject::Reductions(object) else SingleCellExperiment::reducedDimNames(object)
}

.embedding_of <- function(object, reduction) {
  if (!reduction %in% .reduction_names(object)) {
    stop("isthmus: no ", if (.is_seurat(object)) "reduction" else "reducedDim", " '", reduction,
         "'; the object has: ", paste(.reduction_names(object), collapse = ", "), call. = FALSE)
  }
  if (.is_seurat(object)) SeuratObject::Embeddings(object, reduction) else SingleCellExperiment::reducedDim(object, reduction)
}

# The parts of a Seurat / SCE object that a verb's .default takes: the counts (shared with
# Python, not copied), the named cell columns the object has (the core checks them once: missing,
# NA, kind, and names them in its message), and an embedding or coordinates when asked for.
.object_parts <- function(object, assay = NULL, layer = "counts", columns = NULL, embedding = NULL,
                          spatial = FALSE, image = NULL, arg = "object") {
  .check_task_object(object, arg)
  counts <- .task_counts(object, assay, layer)
  meta <- .cell_meta(object)
  list(counts = counts$matrix, what = counts$what, assay = counts$assay,
       meta.data = meta[intersect(unique(unlist(columns)), names(meta))],
       embedding = if (!is.null(embedding)) .embedding_of(object, embedding),
       coordinates = if (spatial) .spatial_coordinates(object, image))
}

# A .default's input as the core's AnnData: features x cells counts, the named columns of
# `meta.data` (only those it has cross; the core names any that are missing), an embedding
# (obsm "X_input") and spatial coordinates (obsm "spatial"), both cells x dimensions; `uns`, a
# named list for the AnnData's uns (FindSpatialDomains' tissue image).
.task_anndata <- function(counts, meta.data = NULL, columns = NULL, embedding = NULL, coordinates = NULL,
                          what = "counts", arg = "object", uns = NULL) {
  if (length(dim(counts)) != 2 || is.null(rownames(counts)) || is.null(colnames(counts))) {
    stop("isthmus: ", arg, " must be a features x cells matrix with row names (features) and column names ",
         "(cells), or a Seurat or SingleCellExperiment object.", call. = FALSE)
  }
  n <- ncol(counts)
  for (part in list(list("meta.data", meta.data), list("embedding", embedding), list("coordinates", coordinates))) {
    if (!is.null(part[[2]]) && NROW(part[[2]]) != n) {
      stop("isthmus: ", part[[1]], " has ", NROW(part[[2]]), " rows but ", arg, " has ", n, " cells (columns); ",
           "give one row per cell.", call. = FALSE)
    }
  }
  if (!is.null(meta.data) && !is.data.frame(meta.data)) {
    stop("isthmus: meta.data must be a data.frame of cell columns.", call. = FALSE)
  }
  columns <- intersect(unique(unlist(columns)), names(meta.data))
  obsm <- list()
  if (!is.null(embedding)) obsm$X_input <- .matrix_to_py(as.matrix(embedding), "embedding", orientation = "same")
  if (!is.null(coordinates)) {
    xy <- as.matrix(coordinates)[, 1:2, drop = FALSE]
    storage.mode(xy) <- "double"
    obsm$spatial <- .matrix_to_py(xy, "spatial coordinates", orientation = "same")
  }
  uns <- if (length(uns)) .uns_to_py(uns, "uns", .new_report()) else list()
  .lean_anndata(counts, what, if (length(columns)) meta.data[columns], obsm, uns = uns)
}

# Columns that only R reads (plot colours, VelocityScores' groups) must exist; the columns that
# cross to the core are checked there.
.check_columns <- function(meta, columns) {
  missing <- setdiff(columns, names(meta))
  if (length(missing)) stop("isthmus: column '", missing[1], "' is not in the cell metadata.", call. = FALSE)
}

# A features x cells matrix (shared with Python, not copied) and a few cell columns as an AnnData.
# Counts on disk (an HDF5Array or TENxMatrix the object holds as is) cross as the file they are:
# the core opens it in backed mode and trains from a memory-mapped copy of the model's genes
# (.counts_on_disk()).
.lean_anndata <- function(counts, what, columns, obsm = list(), layers = list(), uns = list()) {
  cells <- colnames(counts)
  features <- rownames(counts)
  obs <- if (length(columns)) .frame_to_py(columns, cells, "meta.data", .new_report()) else .empty_frame(cells)
  on_disk <- .counts_on_disk(counts)
  if (!is.null(on_disk) && !length(obsm) && !length(layers) && !length(uns)) {
    return(.py_task("anndata_on_disk", on_disk$file, on_disk$kind, on_disk$dataset, cells, features, obs,
                    tempfile("isthmus-on-disk-")))
  }
  if (methods::is(counts, "DelayedArray")) counts <- methods::as(counts, "dgCMatrix")  # computed in memory
  parts <- list(obs_names = cells, var_names = features, X = .matrix_to_py(counts, what), layers = layers,
                obs = obs, var = .empty_frame(features), obsm = obsm, varm = list(), obsp = list(), uns = uns)
  .py_task("anndata_from_r", parts, FALSE)
}

# Where counts on disk are: an HDF5-backed DelayedMatrix with no delayed operation on it but names
# (the names cross from R; a subset or a transformation would have to be computed, so such counts
# are realised in memory as before). A dense HDF5Array of features x cells is stored cells x
# features (R's column order is HDF5's transposed shape), as AnnData's X; a TENxMatrix (10x HDF5)
# holds compressed columns per cell, AnnData's rows.
.counts_on_disk <- function(counts) {
  if (!methods::is(counts, "DelayedArray") || !requireNamespace("HDF5Array", quietly = TRUE) ||
      !DelayedArray::isPristine(counts, ignore.dimnames = TRUE)) return(NULL)
  seed <- DelayedArray::seed(counts)
  if (methods::is(seed, "HDF5ArraySeed")) {
    return(list(file = normalizePath(HDF5Array::path(seed)), kind = "dense", dataset = seed@name))
  }
  if (methods::is(seed, "TENxMatrixSeed")) {
    return(list(file = normalizePath(HDF5Array::path(seed)), kind = "tenx", dataset = seed@group))
  }
  NULL
}

# Spots' (x, y) as scanpy orients them: Seurat from its images (.image_xy(): Visium in
# full-resolution pixels, FOV centroids, SlideSeq), a SpatialExperiment from spatialCoords(),
# another SCE from a reducedDim "spatial". Every cell needs a position: a merged object with
# cells in no image is refused (subset it, or name the `image`). Attribute "slice": each cell's
# image (Seurat) or sample_id (SpatialExperiment), whose positions are in a frame of their own;
# NULL for another SCE.
.spatial_coordinates <- function(object, image = NULL) {
  cells <- colnames(object)
  slice <- NULL
  if (.is_seurat(object)) {
    images <- image %||% SeuratObject::Images(object)
    if (!length(images)) {
      stop("isthmus: the Seurat object has no image holding spot coordinates (Visium, SlideSeq, FOV); ",
           "spatial verbs need one.", call. = FALSE)
    }
    missing <- setdiff(images, names(object@images))
    if (length(missing)) stop("isthmus: no image '", missing[1], "'; the object has: ",
                              paste(SeuratObject::Images(object), collapse = ", "), call. = FALSE)
    xy <- matrix(NA_real_, length(cells), 2, dimnames = list(cells, c("x", "y")))
    slice <- rep(NA_character_, length(cells))
    for (name in images) {
      coords <- .image_xy(object@images[[name]], name)
      at <- match(rownames(coords), cells)
      xy[at[!is.na(at)], ] <- coords[!is.na(at), ]
      slice[at[!is.na(at)]] <- name
    }
  } else {
    xy <- if (methods::is(object, "SpatialExperiment")) SpatialExperiment::spatialCoords(object) else {
      name <- grep("^spatial$", SingleCellExperiment::reducedDimNames(object), ignore.case = TRUE, value = TRUE)
      if (!length(name)) {
        stop("isthmus: the SingleCellExperiment has no coordinates: use a SpatialExperiment or put them in ",
             "reducedDim(sce, \"spatial\").", call. = FALSE)
      }
      SingleCellExperiment::reducedDim(object, name[1])
    }
    xy <- as.matrix(xy)[, 1:2, drop = FALSE]
    if (methods::is(object, "SpatialExperiment")) slice <- as.character(object$sample_id)
  }
  lost <- !stats::complete.cases(xy)
  if (any(lost)) {
    stop("isthmus: ", sum(lost), " cells have no spatial coordinates (e.g. ", cells[which(lost)[1]], "); subset ",
         "the object to the cells of one image (or name it with `image`).", call. = FALSE)
  }
  storage.mode(xy) <- "double"
  attr(xy, "slice") <- slice
  xy
}

.default_reduction_name <- function(object, method) if (.is_seurat(object)) tolower(method) else toupper(method)

.put_embedding <- function(object, name, key, latent, assay, record) {
  latent <- as.matrix(latent)
  dimnames(latent) <- list(colnames(object), paste0(key, seq_len(ncol(latent))))
  if (.is_seurat(object)) {
    object[[name]] <- SeuratObject::CreateDimReducObject(embeddings = latent, key = key, assay = assay,
                                                         misc = list(isthmus = record))
  } else {
    SingleCellExperiment::reducedDim(object, name) <- latent
  }
  object
}

.put_columns <- function(object, df) {
  if (.is_seurat(object)) {
    rownames(df) <- colnames(object)
    return(SeuratObject::AddMetaData(object, df))
  }
  for (col in names(df)) SummarizedExperiment::colData(object)[[col]] <- df[[col]]
  object
}

# `values`: features x cells. Seurat: a new assay holding it as `data`; SCE: an assay when it
# covers every gene, else an altExp (an SCE assay must match the object's rows).
.put_expression <- function(object, name, values, record, quiet.names = FALSE) {
  dimnames(values) <- dimnames(values) %||% list(NULL, colnames(object))
  if (.is_seurat(object)) {
    # Seurat's feature names cannot hold "_": it warns and changes them; for label-named rows
    # (cell types, scores) that is expected, so it stays quiet there
    assay <- if (quiet.names) suppressWarnings(SeuratObject::CreateAssayObject(data = values)) else
      SeuratObject::CreateAssayObject(data = values)
    SeuratObject::Key(assay) <- .safe_key(name)
    assay@misc <- list(isthmus = record)
    object <- .set_assay(object, name, assay)
  } else if (identical(rownames(values), rownames(object))) {
    SummarizedExperiment::assay(object, name, withDimnames = FALSE) <- values
  } else {
    SingleCellExperiment::altExp(object, name) <- SingleCellExperiment::SingleCellExperiment(
      assays = list(logcounts = values))
  }
  object
}

# A data-only assay (denoised values, prediction scores) into a Seurat object. SeuratObject 5
# then warns that the new assay has no counts layer while computing nCount; that is the point
# of such an assay (Seurat's own TransferData assay does the same), so only that warning goes.
.set_assay <- function(object, name, assay) {
  withCallingHandlers(object[[name]] <- assay, warning = function(w) {
    if (grepl("Layer counts isn't present", conditionMessage(w), fixed = TRUE)) invokeRestart("muffleWarning")
  })
  object
}

.put_record <- function(object, name, record) {
  if (.is_seurat(object)) {
    records <- .records(object) %||% list()
    records[[name]] <- record
    object@tools[["isthmus"]] <- records
  } else {
    S4Vectors::metadata(object)$isthmus[[name]] <- record
  }
  object
}

.records <- function(object) {
  if (.is_seurat(object)) object@tools[["isthmus"]] else S4Vectors::metadata(object)$isthmus
}

.get_record <- function(object, name) .records(object)[[name]]

#' The models and results isthmus recorded in an object
#'
#' Each isthmus verb keeps a record of what it ran: method, parameters, seed, versions, wall
#' time and, for the deep-learning models, the directory of the trained model. Seurat:
#' `Tool(object, "isthmus")`; SingleCellExperiment: `metadata(object)$isthmus`.
#'
#' @param object A Seurat or SingleCellExperiment object.
#' @param name One record (e.g. "scvi"); `NULL` for all.
#' @return A list.
#' @export
isthmus_records <- function(object, name = NULL) {
  .check_task_object(object)
  records <- .records(object)
  if (is.null(name)) return(records %||% list())
  records[[name]] %||% stop("isthmus: no record '", name, "'; the object has: ",
                            paste(names(records), collapse = ", "), call. = FALSE)
}

#' Keep a trained model: copy it to a directory and record the new place
#'
#' Models are trained into a temporary directory that disappears when the R session ends.
#' `SaveModel()` copies one to `dir` and updates the object's record, so that a later session
#' can reuse it (e.g. `TransferLabels(query, reference = dir)`, or `model = dir` in
#' [DenoiseExpression()] and [GenerateCells()]).
#'
#' @param object A Seurat or SingleCellExperiment object holding the record.
#' @param name The record's name (e.g. "scvi", "scanvi").
#' @param dir The directory to save into (created; an existing model there is replaced).
#' @return The object with the record's `model_dir` updated.
#' @export
SaveModel <- function(object, name, dir) {
  if (!is.character(dir) || length(dir) != 1 || !nzchar(dir)) {
    stop("isthmus: dir must be one directory path.", call. = FALSE)
  }
  if (file.exists(dir) && !dir.exists(dir)) {
    stop("isthmus: dir = \"", dir, "\" is a file, not a directory; give a directory to save the model in (your ",
         "file is left as it is).", call. = FALSE)
  }
  record <- isthmus_records(object, name)
  if (!nzchar(record$model_dir %||% "") || !dir.exists(record$model_dir)) {
    stop("isthmus: record '", name, "' has no model on disk (was it a classical method, or the session that ",
         "trained it ended?).", call. = FALSE)
  }
  dir.create(dir, recursive = TRUE, showWarnings = FALSE)
  ok <- file.copy(list.files(record$model_dir, full.names = TRUE), dir, overwrite = TRUE, recursive = TRUE)
  if (!all(ok)) stop("isthmus: could not copy the model to ", dir, call. = FALSE)
  record$model_dir <- normalizePath(dir)
  .put_record(object, name, record)
}

# A model given as a directory, or by the name of a record in the object.
.model_dir <- function(object, model) {
  if (is.null(model)) {
    stop("isthmus: this needs a trained model: run RunSCVI() or RunSCANVI() first, or pass model = a saved ",
         "model's directory.", call. = FALSE)
  }
  if (dir.exists(model)) return(normalizePath(model))
  # "scvi" finds an SCE's "SCVI" record too (reduction names follow each class's custom)
  record <- .get_record(object, model) %||% .get_record(object, .default_reduction_name(object, model))
  if (is.null(record) || !nzchar(record$model_dir %||% "")) {
    stop("isthmus: no trained model '", model, "' in the object and no such directory; this needs a trained ",
         "model: run RunSCVI() or RunSCANVI() first, or pass model = a saved model's directory.", call. = FALSE)
  }
  if (!dir.exists(record$model_dir)) {
    stop("isthmus: the model recorded as '", model, "' is gone (", record$model_dir, "); it was trained in an ",
         "earlier session without SaveModel().", call. = FALSE)
  }
  record$model_dir
}

# Where a model is trained to unless the user names a directory: inside R's session temporary
# directory, so that it goes when the session ends (SaveModel() keeps it).
.session_model_dir <- function(method) {
  root <- file.path(tempdir(), "isthmus-models")
  dir.create(root, showWarnings = FALSE)
  tempfile(paste0(method, "-"), tmpdir = root)
}

