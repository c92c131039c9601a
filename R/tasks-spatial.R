# The spatial verbs (python/isthmus/tl/_domains.py, _deconvolve.py, _map_cells.py, _interactions.py):
# spatial domains, spot deconvolution, cell -> spot mapping with gene imputation, and
# ligand-receptor interactions between neighbouring spots. Coordinates come from the Seurat
# object's images or the SpatialExperiment's spatialCoords() (.spatial_coordinates()).

#' Find spatial domains: a graph attention autoencoder against classical baselines
#'
#' method "gat": our graph attention autoencoder on the spots' neighbour graph (the STAGATE
#' design, in PyTorch); baselines "banksy" (BANKSY, written from its paper: each spot's expression
#' beside its neighbourhood's mean over the 3 `n_neighbors` nearest spots and its azimuthal Gabor
#' filter over twice as many, lambda 0.2 as the authors' Visium runs, then 20 PCs) and "pca" (no
#' space). Every method is clustered the same way:
#' a Gaussian mixture (mclust's EEE model) into `n.domains`, or Leiden when `n.domains` is NULL.
#' Because these models change with the seed, each runs `n.seeds` times; the runs are matched
#' and each spot takes the label most runs give it, then labels are smoothed once over the
#' spatial neighbours (`refine`).
#'
#' Several slices (sections, samples) run as one joint model whose domains carry the same labels
#' in every slice: a Seurat object with several images, a SpatialExperiment with several
#' `sample_id`s, or a `batch` column. Each slice gets its own neighbour graph (no edge joins two
#' slices, so their coordinates may overlap), BANKSY its own neighbourhoods and scaling, and the
#' slices' batch effect is removed from every method's embedding alike by Harmony before the one
#' clustering (the route of Banksy's multi-sample vignette, and of STAGATE and GraphST users).
#' [MatchDomains()] then names the domains after a reference labelling, so that
#' `SpatialDimPlot()` colours line up with it.
#'
#' Results: meta.data (SCE: colData) `<method>_domain` (factor, domains numbered by size) and
#' `<method>_agreement` (share of runs that agree with the consensus: where the domains are
#' unstable), for every spot of every slice; the embedding of the most typical run (after
#' Harmony, with several slices) as reduction `<method>` ("domain_pca" for "pca", so a PCA of your
#' own is left alone); the record, with each run's ARI to the consensus and the spots per slice,
#' in `Tool(object, "isthmus")[[method]]`. Plot with `SpatialDimPlot(object,
#' group.by = "gat_domain")`.
#'
#' @param object A Seurat object with an image (Visium, SlideSeq, FOV) or a SpatialExperiment /
#'   SingleCellExperiment with coordinates; or (the default method) a features x spots matrix of
#'   raw counts with `coordinates`, which returns the result as a plain list.
#' @param method "gat", "banksy" or "pca".
#' @param n.domains The number of domains; NULL: Leiden at `resolution`.
#' @param cluster.method "gmm" (needs `n.domains`) or "leiden"; NULL picks by `n.domains`.
#' @param image The Seurat images whose spots to use (default: all images; several run as the
#'   slices of one model).
#' @param batch A meta.data (colData) column naming each spot's slice (section, sample), for
#'   slices that share one image or coordinate frame; NULL: the image of each spot when there are
#'   several (Seurat), the `sample_id` when there are several (SpatialExperiment), else one slice.
#'   Named as the batch column of [IntegrateCells()], whose role it plays (its effect is removed).
#' @param n.seeds Runs combined into the consensus (seeds `seed.use`, `seed.use + 1`, ...).
#' @param n_neighbors Spatial neighbours per spot (6: the Visium ring; more for Slide-seq beads).
#' @param n_top_genes Variable genes used (scanpy's "seurat_v3" selection on the counts, as STAGATE's).
#' @param max_epochs Training epochs of the graph model.
#' @param resolution Leiden resolution (when `n.domains` is NULL).
#' @param refine Smooth labels over the spatial neighbours once (SpaGCN's rule).
#' @param image_features "gat" only: give the graph model the colour and texture of the tissue
#'   image under each spot (per channel mean and sd over the spot's disk, the grey gradient's mean
#'   and sd), appended to its input. Reads the Seurat object's Visium image (one image: name it
#'   with `image` when there are several); the default method reads `images`. Off by default: on
#'   DLPFC 151673 / 151674 it did not help (see BENCHMARKS.md).
#' @param image_weight With `image_features`: the image features' total variance as a share of
#'   the expression input's (their share of the reconstruction loss).
#' @param images Default method, with `image_features`: the tissue image in scanpy's
#'   `uns$spatial` layout, `list(<library> = list(images = list(lowres = <H x W x 3 array>),
#'   scalefactors = list(tissue_lowres_scalef = , spot_diameter_fullres = )))`, `coordinates`
#'   then in full-resolution pixels.
#' @param coordinates Default method: the spots' (x, y) positions, a spots x 2 matrix.
#' @param meta.data Default method: a data.frame with the `batch` column.
#' @param ... Not used.
#' @inheritParams IntegrateCells
#' @return The object with the domains added; the default method returns a list (`columns`,
#'   `reductions`, `records`).
#' @export
FindSpatialDomains <- function(object, ...) UseMethod("FindSpatialDomains")

#' @rdname FindSpatialDomains
#' @export
FindSpatialDomains.default <- function(object, coordinates, method = c("gat", "banksy", "pca"), n.domains = NULL,
                                       cluster.method = NULL, batch = NULL, n.seeds = 5, n_neighbors = 6,
                                       n_top_genes = 3000, max_epochs = 1000, resolution = 1, refine = TRUE,
                                       image_features = FALSE, image_weight = 0.1, images = NULL,
                                       accelerator = getOption("isthmus.accelerator", "auto"), devices = "auto",
                                       backend = getOption("isthmus.backend", "inprocess"), batch_size = NULL,
                                       seed.use = 0, verbose = TRUE, meta.data = NULL,
                                       ...) {
  .local_backend(backend)
  method <- .choose_method(method, "FindSpatialDomains")
  # a batch the Seurat / SCE method took from the object's images (sample_id): messages describe
  # that, not `batch = "image"`
  set_for_user <- if (!is.null(attr(batch, "set.for.user"))) list(batch_key = attr(batch, "set.for.user"))
  batch <- as.vector(batch)
  # the image crosses only when asked for (a Visium lowres image is about 4 MB of doubles)
  uns <- if (isTRUE(image_features) && !is.null(images)) list(spatial = images)
  adata <- .task_anndata(object, meta.data, batch, coordinates = coordinates, uns = uns)
  kwargs <- list(method = method, n_domains = n.domains, cluster_method = cluster.method, layer = NULL,
                 batch_key = batch, n_seeds = n.seeds, n_neighbors = n_neighbors, n_top_genes = n_top_genes,
                 max_epochs = max_epochs, resolution = resolution, refine_labels = refine,
                 image_features = image_features, image_weight = image_weight, key_added = "domains",
                 random_state = seed.use, accelerator = accelerator, devices = devices, batch_size = batch_size,
                 verbose = verbose)
  out <- .run_core("spatial_domains", list(adata), kwargs, list(set_for_user = set_for_user))
  domains <- .as_chr(out$written[["obs/domains_domain"]])
  domains <- factor(domains, levels = as.character(seq_along(unique(domains))))
  columns <- stats::setNames(data.frame(domains, as.numeric(out$written[["obs/domains_agreement"]])),
                             paste0(method, c("_domain", "_agreement")))
  name <- if (method == "pca") "domain_pca" else method
  reduction <- list(embedding = out$written[["obsm/X_domains"]], key = paste0(toupper(gsub("_", "", name)), "_"),
                    record = out$record)
  .task_result(reductions = stats::setNames(list(reduction), name), columns = columns,
               records = stats::setNames(list(out$record), method))
}

#' @rdname FindSpatialDomains
#' @export
FindSpatialDomains.Seurat <- function(object, method = c("gat", "banksy", "pca"), n.domains = NULL,
                                      cluster.method = NULL, assay = NULL, layer = "counts", image = NULL,
                                      batch = NULL, n.seeds = 5, n_neighbors = 6, n_top_genes = 3000,
                                      max_epochs = 1000, resolution = 1, refine = TRUE, image_features = FALSE,
                                      image_weight = 0.1,
                                      accelerator = getOption("isthmus.accelerator", "auto"), devices = "auto",
                                      backend = getOption("isthmus.backend", "inprocess"), batch_size = NULL,
                                      seed.use = 0, verbose = TRUE, ...) {
  .local_backend(backend)
  method <- .choose_method(method, "FindSpatialDomains")
  parts <- .object_parts(object, assay, layer, columns = batch, spatial = TRUE, image = image)
  meta <- parts$meta.data
  slice <- attr(parts$coordinates, "slice")
  if (is.null(batch) && length(unique(slice)) > 1) {
    # several images (samples): each its own slice, as the user would name it
    batch <- if (.is_seurat(object)) "image" else "sample_id"
    meta <- stats::setNames(data.frame(slice, row.names = colnames(object)), batch)
    # the user typed no batch: messages say what they gave instead
    attr(batch, "set.for.user") <- paste0("the object's ", length(unique(slice)),
                                          if (.is_seurat(object)) " images" else " samples (sample_id)")
  }
  images <- if (isTRUE(image_features)) .tissue_image(object, image)
  result <- FindSpatialDomains.default(parts$counts, parts$coordinates, method = method, n.domains = n.domains,
                                       cluster.method = cluster.method, batch = batch, n.seeds = n.seeds,
                                       n_neighbors = n_neighbors, n_top_genes = n_top_genes,
                                       max_epochs = max_epochs, resolution = resolution, refine = refine,
                                       image_features = image_features, image_weight = image_weight,
                                       images = images, seed.use = seed.use, accelerator = accelerator,
                                       devices = devices, batch_size = batch_size, verbose = verbose,
                                       meta.data = meta)
  .put_result(object, result, parts$assay)
}

# A Seurat object's Visium image in scanpy's uns["spatial"] layout (the lowres image and the
# scale factors, as as_anndata() writes them: .image_uns()), for FindSpatialDomains' image
# features. One image: the spots' image features are read from it, and .spatial_coordinates()
# gives those spots in its full-resolution pixels.
.tissue_image <- function(object, image = NULL) {
  if (!.is_seurat(object)) {
    stop("isthmus: image_features reads a Seurat object's Visium image; for other objects call the default ",
         "method with `images` (scanpy's uns$spatial layout) and coordinates in full-resolution pixels.", call. = FALSE)
  }
  name <- image %||% SeuratObject::Images(object)
  if (length(name) != 1) {
    stop("isthmus: image_features reads one tissue image; the object has ", length(name), " (",
         paste(name, collapse = ", "), "): name one with `image` (and subset the object to its spots).", call. = FALSE)
  }
  img <- object@images[[name]]
  if (!inherits(img, c("VisiumV1", "VisiumV2"))) {
    stop("isthmus: image '", name, "' (", class(img)[1], ") holds no tissue image and scale factors; ",
         "image_features needs a Visium image (Read10X_Image(), Load10X_Spatial()).", call. = FALSE)
  }
  stats::setNames(list(.image_uns(img, paste("Seurat", class(img)[1]), name, .new_report())), name)
}

#' @rdname FindSpatialDomains
#' @method FindSpatialDomains SingleCellExperiment
#' @export
FindSpatialDomains.SingleCellExperiment <- FindSpatialDomains.Seurat

#' Name spatial domains after a reference labelling
#'
#' Each domain takes the name of the reference label it shares most spots with, one domain per
#' label (Hungarian matching on the table of spots both columns label; spots whose reference is NA
#' are left out). The reference may be a manual annotation, or another method's domains. The name
#' is the best match, not a claim that the domain is that label.
#'
#' The new column's levels are the reference's levels, in the reference's order (its factor
#' levels, else sorted), then the domains left over when there are more domains than labels,
#' named "domain" and their own name (e.g. "domain 8"), in their own order.
#' * As many domains as labels: every domain takes a label, and the two columns have the same
#'   levels.
#' * Fewer domains than labels: the labels no domain took stay as unused levels, so the two
#'   columns still have the same levels. In both cases `SpatialDimPlot(object, group.by =
#'   c(reference, name))` gives each domain its label's colour, and the domains of several slices
#'   read against one annotation.
#' * More domains than labels: the extra levels change Seurat's default palette, so the colours
#'   no longer line up by themselves; give `SpatialDimPlot()` `cols`, the reference's colours
#'   named by label plus colours for the extra domains.
#'
#' @param object A Seurat or SingleCellExperiment object.
#' @param column The domain column (e.g. "gat_domain").
#' @param reference The reference labelling's column (e.g. manual layers).
#' @param name The new column (default `<column>_matched`).
#' @return The object with the column added.
#' @export
MatchDomains <- function(object, column, reference, name = paste0(column, "_matched")) {
  .check_task_object(object)
  parts <- .object_parts(object, columns = c(column, reference))
  adata <- .task_anndata(parts$counts, parts$meta.data, c(column, reference))
  # one row per level of the new column; a label no domain took has no spots
  table <- .run_core("match_domains", list(adata),
                     list(domain_key = column, reference_key = reference, key_added = "matched"))$value
  named <- table[table$spots > 0, ]
  domains <- as.character(.cell_meta(object)[[column]])
  matched <- factor(named$matched[match(domains, named$domain)], levels = table$matched)
  .put_columns(object, stats::setNames(data.frame(matched), name))
}

#' Score spatial domains against a manual annotation
#'
#' ARI and NMI of each domain column (default: every meta.data / colData column ending in
#' "_domain", as [FindSpatialDomains()] writes them) against `truth`; spots whose annotation is
#' NA are left out. The way to see, on an annotated slice of your own, whether the graph model
#' beats the classical routes.
#'
#' @param object A Seurat or SingleCellExperiment object.
#' @param truth The annotation column (e.g. manual layers).
#' @param columns Domain columns to score (default: those ending in "_domain").
#' @return A data.frame: domains, ARI, NMI, n_domains, n_spots.
#' @export
CompareDomains <- function(object, truth, columns = NULL) {
  .check_task_object(object)
  meta <- .cell_meta(object)
  columns <- columns %||% grep("_domain$", names(meta), value = TRUE)
  if (!length(columns)) stop("isthmus: no domain columns: run FindSpatialDomains() first or name `columns`.", call. = FALSE)
  parts <- .object_parts(object, columns = c(truth, columns))
  adata <- .task_anndata(parts$counts, parts$meta.data, c(truth, columns))
  .run_core("domain_scores", list(adata), list(truth_key = truth, domain_keys = as.list(columns)))$value
}

# Per-spot cell-type proportions (a spots x types data.frame from the core) as result parts:
# columns `<prefix>_<type>` and `<prefix>_top` (the most abundant type); with `assay.name`, also
# a Seurat assay of the proportions (types x spots, as Seurat's "predictions"), so that
# SpatialFeaturePlot() shows them.
.proportion_parts <- function(proportions, prefix, spots, assay.name = NULL, record = NULL) {
  values <- as.matrix(proportions)
  types <- colnames(values)
  dimnames(values) <- list(spots, types)
  columns <- as.data.frame(values, optional = TRUE)
  names(columns) <- paste0(prefix, "_", types)
  columns[[paste0(prefix, "_top")]] <- factor(types[max.col(values, ties.method = "first")], levels = types)
  assays <- if (!is.null(assay.name)) {
    stats::setNames(list(list(values = t(values), record = record, seurat.only = TRUE, quiet.names = TRUE)), assay.name)
  }
  list(columns = columns, assays = assays %||% list())
}

# The single-cell reference of DeconvolveSpots() / MapCells(): counts and the cell-type column.
.reference_parts <- function(reference, labels, reference.assay, layer) {
  .object_parts(reference, reference.assay, layer, columns = labels, arg = "reference")
}

#' Deconvolve spots into cell-type proportions with a single-cell reference
#'
#' method "destvi" (CondSCVI on the reference, then DestVI on the spots) and "stereoscope"
#' (scvi-tools); baseline "nnls": non-negative least squares of each spot on the reference's
#' per-type mean expression.
#'
#' Results: the proportions (types x spots) as an assay named `assay.name` (default: the method;
#' `SpatialFeaturePlot(object, features = "destvi_Astrocytes")`), and meta.data (SCE: colData)
#' columns `<method>_<type>` plus `<method>_top`, the most abundant type; the record in
#' `Tool(object, "isthmus")[[method]]`.
#'
#' @param object The spatial Seurat / SingleCellExperiment object (raw counts); or (the default
#'   method) a features x spots matrix of raw counts, which returns the result as a plain list.
#' @param reference A Seurat / SingleCellExperiment single-cell reference (raw counts) with `labels`;
#'   for the default method, a features x cells matrix with `reference.meta.data`.
#' @param labels The reference's cell-type column.
#' @param method "destvi", "stereoscope" or "nnls".
#' @param reference.assay The reference's assay (Seurat; default its default assay).
#' @param min.gene.overlap The least share of the spatial data's genes the reference must have.
#' @param min.cells.per.type Cell types with fewer reference cells are left out (with a warning).
#' @param max_epochs,reference_epochs Training epochs of the spatial and the reference model
#'   (NULL: scvi-tools' defaults).
#' @param assay.name The assay the proportions go to (Seurat).
#' @param reference.meta.data Default method: a data.frame with the reference's `labels` column.
#' @param ... Not used.
#' @inheritParams IntegrateCells
#' @return The spatial object with the proportions added; the default method returns a list
#'   (`columns`, `assays`, `records`).
#' @export
DeconvolveSpots <- function(object, ...) UseMethod("DeconvolveSpots")

#' @rdname DeconvolveSpots
#' @export
DeconvolveSpots.default <- function(object, reference, labels, method = c("destvi", "stereoscope", "nnls"),
                                    min.gene.overlap = 0.3, min.cells.per.type = 10, max_epochs = NULL,
                                    reference_epochs = NULL, assay.name = method, model.dir = NULL,
                                    accelerator = getOption("isthmus.accelerator", "auto"), devices = "auto",
                                    backend = getOption("isthmus.backend", "inprocess"), batch_size = NULL,
                                    seed.use = 0,
                                    verbose = TRUE, reference.meta.data = NULL, ...) {
  .local_backend(backend)
  method <- .choose_method(method, "DeconvolveSpots")
  if (missing(labels) || is.null(labels)) stop("isthmus: labels (the reference's cell-type column) is required.", call. = FALSE)
  spatial <- .task_anndata(object)
  ref <- .task_anndata(reference, reference.meta.data, labels, arg = "reference")
  kwargs <- list(labels_key = labels, method = method, layer = NULL, min_gene_overlap = min.gene.overlap,
                 min_cells_per_type = min.cells.per.type, max_epochs = max_epochs, reference_epochs = reference_epochs,
                 key_added = "deconvolution", model_dir = model.dir %||% .session_model_dir(method),
                 random_state = seed.use,
                 accelerator = accelerator, devices = devices, batch_size = batch_size, verbose = verbose)
  out <- .run_core("deconvolve", list(spatial, ref), kwargs)
  parts <- .proportion_parts(out$written[["obsm/deconvolution"]], method, colnames(object), assay.name, out$record)
  .task_result(columns = parts$columns, assays = parts$assays, records = stats::setNames(list(out$record), method))
}

#' @rdname DeconvolveSpots
#' @export
DeconvolveSpots.Seurat <- function(object, reference, labels, method = c("destvi", "stereoscope", "nnls"),
                                   assay = NULL, reference.assay = NULL, layer = "counts", min.gene.overlap = 0.3,
                                   min.cells.per.type = 10, max_epochs = NULL, reference_epochs = NULL,
                                   assay.name = method, model.dir = NULL,
                                   accelerator = getOption("isthmus.accelerator", "auto"), devices = "auto",
                                   backend = getOption("isthmus.backend", "inprocess"), batch_size = NULL,
                                   seed.use = 0, verbose = TRUE, ...) {
  .local_backend(backend)
  method <- .choose_method(method, "DeconvolveSpots")
  if (missing(labels) || is.null(labels)) stop("isthmus: labels (the reference's cell-type column) is required.", call. = FALSE)
  spatial <- .object_parts(object, assay, layer)
  ref <- .reference_parts(reference, labels, reference.assay, layer)
  result <- DeconvolveSpots.default(spatial$counts, ref$counts, labels, method = method,
                                    min.gene.overlap = min.gene.overlap, min.cells.per.type = min.cells.per.type,
                                    max_epochs = max_epochs, reference_epochs = reference_epochs,
                                    assay.name = assay.name, model.dir = model.dir, seed.use = seed.use,
                                    accelerator = accelerator, devices = devices, batch_size = batch_size,
                                    verbose = verbose, reference.meta.data = ref$meta.data)
  .put_result(object, result, spatial$assay)
}

#' @rdname DeconvolveSpots
#' @method DeconvolveSpots SingleCellExperiment
#' @export
DeconvolveSpots.SingleCellExperiment <- DeconvolveSpots.Seurat

#' Map single cells onto spots and impute genes the spatial data did not measure
#'
#' method "tangram": our PyTorch Tangram-style mapping (each cell's probabilities over the spots,
#' fitted so that the mapped cells reproduce every training gene's pattern across spots, by
#' cosine similarity); "gimvi": gimVI's joint model (scvi-tools); baseline "knn": each spot's
#' nearest reference cells in a PCA fitted on the reference.
#'
#' Results: imputed expression (log1p of expression per 10,000 counts) of `genes` as an assay named
#' `assay.name` (default: the method; SCE: an altExp); with `labels`, the mapped cell-type
#' shares as meta.data (SCE: colData) columns `<method>_<type>` and `<method>_top`; the record in
#' `Tool(object, "isthmus")[[method]]`.
#'
#' @inheritParams DeconvolveSpots
#' @param labels The reference's cell-type column (optional: cell-type maps).
#' @param method "tangram", "gimvi" or "knn".
#' @param genes Reference genes to impute (default: those the spatial data does not measure).
#' @param training.genes Shared genes to fit on (default: all shared genes with counts).
#' @param max_epochs Training epochs (NULL: the method's default, 1000 for "tangram", 200 for "gimvi"; "knn" trains nothing).
#' @param learning_rate Optimiser learning rate (NULL: the method's default).
#' @param n_neighbors Reference cells per spot (knn; gimvi's cell-type vote).
#' @return The spatial object with the imputed genes (and cell-type maps) added; the default method
#'   returns a list (`assays`, `columns`, `records`).
#' @export
MapCells <- function(object, ...) UseMethod("MapCells")

#' @rdname MapCells
#' @export
MapCells.default <- function(object, reference, labels = NULL, method = c("tangram", "gimvi", "knn"), genes = NULL,
                             training.genes = NULL, min.gene.overlap = 0.3, max_epochs = NULL, learning_rate = NULL,
                             n_neighbors = 15, assay.name = method, model.dir = NULL,
                             accelerator = getOption("isthmus.accelerator", "auto"), devices = "auto",
                             backend = getOption("isthmus.backend", "inprocess"), batch_size = NULL,
                             seed.use = 0, verbose = TRUE,
                             reference.meta.data = NULL, ...) {
  .local_backend(backend)
  method <- .choose_method(method, "MapCells")
  spatial <- .task_anndata(object)
  ref <- .task_anndata(reference, reference.meta.data, labels, arg = "reference")
  kwargs <- list(method = method, labels_key = labels, impute_genes = genes, training_genes = training.genes,
                 layer = NULL, min_gene_overlap = min.gene.overlap, max_epochs = max_epochs,
                 learning_rate = learning_rate, n_neighbors = n_neighbors, key_added = "mapping",
                 model_dir = model.dir %||% .session_model_dir(method), random_state = seed.use,
                 accelerator = accelerator, devices = devices, batch_size = batch_size, verbose = verbose)
  out <- .run_core("map_cells", list(spatial, ref), kwargs)
  imputed <- t(as.matrix(out$value$imputed))
  colnames(imputed) <- colnames(object)
  assays <- if (nrow(imputed)) {
    stats::setNames(list(list(values = imputed, record = out$record, quiet.names = TRUE)), assay.name)
  }
  cell_types <- out$written[["obsm/mapping_cell_types"]]
  parts <- if (!is.null(cell_types)) .proportion_parts(cell_types, method, colnames(object))
  .task_result(columns = parts$columns, assays = assays %||% list(), records = stats::setNames(list(out$record), method))
}

#' @rdname MapCells
#' @export
MapCells.Seurat <- function(object, reference, labels = NULL, method = c("tangram", "gimvi", "knn"), genes = NULL,
                            training.genes = NULL, assay = NULL, reference.assay = NULL, layer = "counts",
                            min.gene.overlap = 0.3, max_epochs = NULL, learning_rate = NULL, n_neighbors = 15,
                            assay.name = method, model.dir = NULL,
                            accelerator = getOption("isthmus.accelerator", "auto"), devices = "auto",
                            backend = getOption("isthmus.backend", "inprocess"), batch_size = NULL,
                            seed.use = 0, verbose = TRUE, ...) {
  .local_backend(backend)
  method <- .choose_method(method, "MapCells")
  spatial <- .object_parts(object, assay, layer)
  ref <- .reference_parts(reference, labels, reference.assay, layer)
  result <- MapCells.default(spatial$counts, ref$counts, labels = labels, method = method, genes = genes,
                             training.genes = training.genes, min.gene.overlap = min.gene.overlap,
                             max_epochs = max_epochs, learning_rate = learning_rate, n_neighbors = n_neighbors,
                             assay.name = assay.name, model.dir = model.dir, seed.use = seed.use,
                             accelerator = accelerator, devices = devices, batch_size = batch_size, verbose = verbose,
                             reference.meta.data = ref$meta.data)
  .put_result(object, result, spatial$assay)
}

#' @rdname MapCells
#' @method MapCells SingleCellExperiment
#' @export
MapCells.SingleCellExperiment <- MapCells.Seurat

#' Ligand-receptor interactions between neighbouring spots, against the non-spatial test
#'
#' For each pair of labels (source, target) and each ligand-receptor pair of a curated resource
#' (liana's consensus, human or mouse, chosen by gene coverage; or your own data.frame with
#' `ligand` and `receptor` columns, complexes as "A_B"), method "spatial" scores the mean of
#' ligand (source spot) x receptor (target spot) over spatially neighbouring spots; the baseline
#' "nonspatial" scores mean ligand in the source x mean receptor in the target, as CellPhoneDB
#' does. P-values from `n_perms` shuffles of the labels across spots; FDR by Benjamini-Hochberg.
#'
#' @param object A spatial Seurat / SingleCellExperiment object (raw counts).
#' @param labels The spot label column (cell types, domains, or the top deconvolved type).
#' @param method "spatial" or "nonspatial".
#' @param resource "auto", a liana resource name ("consensus", "mouseconsensus", ...), or a
#'   data.frame with `ligand` and `receptor` columns.
#' @param n_neighbors Spatial neighbours per spot.
#' @param n_perms Label shuffles for the p-values.
#' @param expr_prop Least share of spots of a label expressing the ligand (receptor).
#' @param min.cells Labels with fewer spots are left out (with a warning).
#' @param plot A PNG path for a dot plot of the top interactions, or NULL.
#' @param coordinates Default method: the spots' (x, y) positions, a spots x 2 matrix.
#' @param meta.data Default method: a data.frame with the `labels` column.
#' @param image The Seurat image whose spots to use (default: all images, whose positions must
#'   not overlap).
#' @inheritParams FindSpatialDomains
#' @return A data.frame (source, target, ligand, receptor, score, pvalue, fdr, n_pairs), most
#'   significant first; attribute "png" with the plot's path when `plot` is given.
#' @export
SpatialInteractions <- function(object, ...) UseMethod("SpatialInteractions")

#' @rdname SpatialInteractions
#' @export
SpatialInteractions.default <- function(object, coordinates, labels, method = c("spatial", "nonspatial"),
                                        resource = "auto", n_neighbors = 6, n_perms = 1000, expr_prop = 0.1,
                                        min.cells = 5, plot = NULL, seed.use = 0, verbose = TRUE, meta.data = NULL,
                                        ...) {
  method <- .choose_method(method, "SpatialInteractions")
  adata <- .task_anndata(object, meta.data, labels, coordinates = coordinates)
  if (is.data.frame(resource)) {
    if (!all(c("ligand", "receptor") %in% names(resource))) {
      stop("isthmus: a resource data.frame needs columns 'ligand' and 'receptor'.", call. = FALSE)
    }
    resource <- .frame_to_core(lapply(resource[c("ligand", "receptor")], as.character))
  }
  kwargs <- list(labels_key = labels, method = method, resource = resource, layer = NULL,
                 n_neighbors = n_neighbors, n_perms = n_perms, expr_prop = expr_prop, min_cells = min.cells,
                 key_added = "interactions", random_state = seed.use, verbose = verbose)
  options <- list(figure = if (!is.null(plot)) normalizePath(plot, mustWork = FALSE), figure_argument = "plot",
                  title = paste0("isthmus: ", method, " ligand-receptor"))
  out <- .run_core("interactions", list(adata), kwargs, options)
  table <- out$value
  attr(table, "record") <- out$record
  if (nzchar(out$figure)) attr(table, "png") <- out$figure
  table
}

#' @rdname SpatialInteractions
#' @export
SpatialInteractions.Seurat <- function(object, labels, method = c("spatial", "nonspatial"), resource = "auto",
                                       assay = NULL, layer = "counts", image = NULL, n_neighbors = 6, n_perms = 1000,
                                       expr_prop = 0.1, min.cells = 5, plot = NULL, seed.use = 0, verbose = TRUE,
                                       ...) {
  parts <- .object_parts(object, assay, layer, columns = labels, spatial = TRUE, image = image)
  SpatialInteractions.default(parts$counts, parts$coordinates, labels, method = method, resource = resource,
                              n_neighbors = n_neighbors, n_perms = n_perms, expr_prop = expr_prop,
                              min.cells = min.cells, plot = plot, seed.use = seed.use, verbose = verbose,
                              meta.data = parts$meta.data)
}

#' @rdname SpatialInteractions
#' @method SpatialInteractions SingleCellExperiment
#' @export
SpatialInteractions.SingleCellExperiment <- SpatialInteractions.Seurat
