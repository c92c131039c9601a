# scVI and scANVI as methods of Seurat v5's IntegrateLayers(). Its contract (Seurat 5.0-5.2):
# IntegrateLayers() calls `method(object = <the assay>, assay, orig = <orig.reduction>, layers,
# scale.layer, features, ...)` and assigns every element of the named list it gets back into
# the Seurat object. The method sees only the assay, so cell columns (labels, covariates) come
# in through `meta.data`, and the batches are the assay's split layers (counts.<batch>), as for
# Seurat's own methods.

#' scVI and scANVI for Seurat v5's `IntegrateLayers()`
#'
#' Use as `IntegrateLayers(object, method = IsthmusSCVIIntegration, ...)` on an object whose
#' assay is split by batch (`object[["RNA"]] <- split(object[["RNA"]], f = object$batch)`). The
#' model trains on the raw counts of the split layers (whichever layers `IntegrateLayers()`
#' names, their counts are used) with one batch per layer, and the latent space comes back as the
#' reduction `new.reduction`. Beyond SeuratWrappers' `scVIIntegration()`, these:
#' * use cell columns: pass `meta.data = object[[]]` and name the columns in `labels` (scANVI's
#'   cell types; NA = unlabelled), `categorical.covariates` and `continuous.covariates`;
#' * keep the trained model: its directory is in the reduction's
#'   `Misc(object[[new.reduction]], "isthmus")$model_dir` (give `model.dir` to choose it; a
#'   temporary one otherwise) and can be reused by [TransferLabels()], [DenoiseExpression()] or
#'   [GenerateCells()] with `model = <that directory>`;
#' * run in isthmus's own Python environment, with its checks (normalised data refused, NA
#'   columns named) and a progress line about every tenth of training.
#' The record (method, parameters, seed, versions, seconds) is in the same `Misc()` entry.
#'
#' @param object,assay,orig,layers,scale.layer,features Filled in by `IntegrateLayers()`.
#'   `features` (by default the assay's 2000 variable features) are the genes the model sees.
#' @param new.reduction,reduction.key Name and key of the reduction returned.
#' @param meta.data The Seurat object's cell table (`object[[]]`), needed for `labels`,
#'   `categorical.covariates`, `continuous.covariates` or `batch`.
#' @param batch A `meta.data` column to use as the batch instead of the split layers (the assay
#'   need not be split then).
#' @param labels scANVI: the `meta.data` column with cell types.
#' @inheritParams IntegrateCells
#' @param ... Passed to `scvi.model.SCVI()` (e.g. `n_layers`, `gene_likelihood`).
#' @return A named list holding the reduction, which `IntegrateLayers()` adds to the object.
#' @examples
#' \dontrun{
#' obj[["RNA"]] <- split(obj[["RNA"]], f = obj$batch)
#' obj <- NormalizeData(obj) |> FindVariableFeatures() |> ScaleData() |> RunPCA()
#' obj <- IntegrateLayers(obj, method = IsthmusSCVIIntegration, new.reduction = "integrated.scvi",
#'                        meta.data = obj[[]], continuous.covariates = "percent.mt")
#' obj <- IntegrateLayers(obj, method = IsthmusSCANVIIntegration, new.reduction = "integrated.scanvi",
#'                        meta.data = obj[[]], labels = "cell_type")
#' obj <- FindNeighbors(obj, reduction = "integrated.scvi") |> RunUMAP(reduction = "integrated.scvi", dims = 1:10)
#' }
#' @export
IsthmusSCVIIntegration <- function(object, assay = NULL, orig = NULL, layers = NULL, scale.layer = NULL,
                                   features = NULL, new.reduction = "integrated.scvi", reduction.key = NULL,
                                   meta.data = NULL, batch = NULL, categorical.covariates = NULL,
                                   continuous.covariates = NULL, n_latent = 10, max_epochs = NULL,
                                   model.dir = NULL, allow.non.integer = FALSE,
                                   accelerator = getOption("isthmus.accelerator", "auto"), devices = "auto",
                                   backend = getOption("isthmus.backend", "inprocess"), batch_size = NULL,
                                   seed.use = 0, verbose = TRUE, ...) {
  .local_backend(backend)
  .integrate_layers("scvi", object, assay, layers, features, new.reduction, reduction.key, meta.data, batch,
                    labels = NULL, categorical.covariates, continuous.covariates, n_latent, max_epochs,
                    scanvi_epochs = NULL, model.dir, allow.non.integer, seed.use, verbose, accelerator = accelerator,
                    devices = devices, batch_size = batch_size, ...)
}

#' @rdname IsthmusSCVIIntegration
#' @export
IsthmusSCANVIIntegration <- function(object, assay = NULL, orig = NULL, layers = NULL, scale.layer = NULL,
                                     features = NULL, new.reduction = "integrated.scanvi", reduction.key = NULL,
                                     meta.data = NULL, labels = NULL, batch = NULL, categorical.covariates = NULL,
                                     continuous.covariates = NULL, n_latent = 10, max_epochs = NULL,
                                     scanvi_epochs = 20, model.dir = NULL, allow.non.integer = FALSE,
                                     accelerator = getOption("isthmus.accelerator", "auto"), devices = "auto",
                                     backend = getOption("isthmus.backend", "inprocess"), batch_size = NULL,
                                     seed.use = 0, verbose = TRUE, ...) {
  .local_backend(backend)
  if (is.null(labels)) {
    stop("isthmus: scANVI needs labels: pass meta.data = object[[]] and labels = \"<cell-type column>\".",
         call. = FALSE)
  }
  .integrate_layers("scanvi", object, assay, layers, features, new.reduction, reduction.key, meta.data, batch,
                    labels, categorical.covariates, continuous.covariates, n_latent, max_epochs, scanvi_epochs,
                    model.dir, allow.non.integer, seed.use, verbose, accelerator = accelerator, devices = devices,
                    batch_size = batch_size, ...)
}

.integrate_layers <- function(method, object, assay, layers, features, new.reduction, reduction.key, meta.data,
                              batch, labels, categorical.covariates, continuous.covariates, n_latent, max_epochs,
                              scanvi_epochs, model.dir, allow.non.integer, seed.use, verbose, ...) {
  if (!inherits(object, "StdAssay")) {
    stop("isthmus: IsthmusSCVIIntegration() and IsthmusSCANVIIntegration() are methods for Seurat v5's ",
         "IntegrateLayers() (a v5 assay); for other objects use RunSCVI() / RunSCANVI().", call. = FALSE)
  }
  features <- if (length(features)) features else SeuratObject::Features(object)
  missing <- setdiff(features, SeuratObject::Features(object))
  if (length(missing)) {
    stop("isthmus: ", length(missing), " features are not in the assay (e.g. ", missing[1], ").", call. = FALSE)
  }
  counts <- .split_counts(object, layers, features)
  cells <- colnames(counts$matrix)
  columns <- c(batch, labels, categorical.covariates, continuous.covariates)
  if (length(columns) && is.null(meta.data)) {
    stop("isthmus: columns (", paste(columns, collapse = ", "), ") were named but not their table: pass ",
         "meta.data = object[[]].", call. = FALSE)
  }
  obs <- if (length(columns)) {
    missing <- setdiff(cells, rownames(meta.data))
    if (length(missing)) stop("isthmus: meta.data has no row for ", length(missing), " cells of the assay (e.g. ",
                              missing[1], "); pass the same object's meta.data.", call. = FALSE)
    # the core checks the columns (missing, NA, kind) once, and names them
    meta.data[cells, intersect(unique(columns), names(meta.data)), drop = FALSE]
  } else data.frame(row.names = cells)
  if (is.null(batch)) {
    if (length(unique(counts$batch)) < 2) {
      stop("isthmus: the assay is not split into batches, so there is nothing to integrate: split it ",
           "(object[[\"RNA\"]] <- split(object[[\"RNA\"]], f = object$batch)) or name a `batch` column.", call. = FALSE)
    }
    batch <- "split_layer"
    obs[[batch]] <- factor(counts$batch, levels = unique(counts$batch))
  }
  adata <- .lean_anndata(counts$matrix, paste0("assay counts layers ", paste(counts$layers, collapse = ", ")), obs)
  # `features` are the genes already (IntegrateLayers passes the assay's VariableFeatures)
  out <- .integrate_in_python(adata, method, batch, labels, categorical.covariates, continuous.covariates, n_latent,
                              max_epochs, scanvi_epochs, allow.non.integer, model.dir, seed.use, verbose,
                              genes = "all", ...)
  key <- reduction.key %||% SeuratObject::Key(gsub("[^A-Za-z0-9]", "", new.reduction), quiet = TRUE)
  latent <- as.matrix(out$written[[paste0("obsm/X_", method)]])
  dimnames(latent) <- list(cells, paste0(key, seq_len(ncol(latent))))
  reduction <- SeuratObject::CreateDimReducObject(embeddings = latent, key = key, assay = assay,
                                                  misc = list(isthmus = out$record))
  stats::setNames(list(reduction), new.reduction)
}

# The raw counts behind IntegrateLayers()' `layers` (data.g1, ... or counts.g1, ...): the counts
# layer of each batch, joined in the assay's cell order, with each cell's batch (the layer's
# suffix). Only `features` are read.
.split_counts <- function(assay_obj, layers, features) {
  available <- .so5("Layers")(assay_obj)
  wanted <- sub("^[^.]+", "counts", layers %||% grep("^counts", available, value = TRUE))
  wanted <- unique(wanted)
  missing <- setdiff(wanted, available)
  if (length(missing)) {
    stop("isthmus: scVI trains on raw counts, and the assay has no layer ", missing[1], " (it has: ",
         paste(available, collapse = ", "), ").", call. = FALSE)
  }
  pieces <- lapply(wanted, function(l) .so5("LayerData")(assay_obj, layer = l, features = features))
  batch <- rep(sub("^counts\\.?", "", wanted), vapply(pieces, ncol, integer(1)))
  matrix <- do.call(cbind, pieces)
  order <- match(intersect(colnames(assay_obj), colnames(matrix)), colnames(matrix))
  list(matrix = matrix[, order, drop = FALSE], batch = batch[order], layers = wanted)
}
