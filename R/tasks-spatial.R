# The spatial verbs (python/isthmus/tl/_domains.py, _deconvolve.py, _map_cells.py, _interactions.py):
# spatial domains, spot deconvolution, cell -> spot mapping with gene imputation, and
# ligand-receptor interactions between neighbouring spots. Coordinates come from the Seurat
# object's images or the SpatialExperiment's spatialCoords() (.spatial_coordinates()).

#' Find spatial domains: a graph attention autoencoder against classical baselines
#'
#' method "gat": our graph attention autoencoder on the spots' neighbour graph (the STAGATE
#' design, in PyTorch); baselines "neighbor_pca" (BANKSY-style: each spot's expression beside its
#' neighbourhood's mean, then PCA) and "pca" (no space). Every method is clustered the same way:
#' a Gaussian mixture (mclust's EEE model) into `n.domains`, or Leiden when `n.domains` is NULL.
#' Because these models change with the seed, each runs `n.seeds` times; the runs are matched
#' and each spot takes the label most runs give it, then labels are smoothed once over the
#' spatial neighbours (`refine`).
#'
#' Results: meta.data (SCE: colData) `<method>_domain` (factor, domains numbered by size) and
#' `<method>_agreement` (share of runs that agree with the consensus: where the domains are
#' unstable); the embedding of the most typical run as reduction `<method>` ("domain_pca" for
#' "pca", so a PCA of your own is left alone); the record, with each run's ARI to the
#' consensus, in `Tool(object, "isthmus")[[method]]`. Plot with `SpatialDimPlot(object,
#' group.by = "gat_domain")`.
#'
#' @param object A Seurat object with an image (Visium, SlideSeq, FOV) or a SpatialExperiment /
#'   SingleCellExperiment with coordinates (`spatialCoords()`, or reducedDim "spatial"); raw counts.
#' @param method "gat", "neighbor_pca" or "pca".
#' @param n.domains The number of domains; NULL: Leiden at `resolution`.
#' @param cluster.method "gmm" (needs `n.domains`) or "leiden"; NULL picks by `n.domains`.
#' @param image The Seurat image whose spots to use (default: all images).
#' @param n.seeds Runs combined into the consensus (seeds `seed.use`, `seed.use + 1`, ...).
#' @param n_neighbors Spatial neighbours per spot (6: the Visium ring; more for Slide-seq beads).
#' @param n_top_genes Variable genes used.
#' @param max_epochs Training epochs of the graph model.
#' @param resolution Leiden resolution (when `n.domains` is NULL).
#' @param refine Smooth labels over the spatial neighbours once (SpaGCN's rule).
#' @inheritParams IntegrateCells
#' @return The object with the domains added.
#' @export
FindSpatialDomains <- function(object, method = c("gat", "neighbor_pca", "pca"), n.domains = NULL,
                               cluster.method = NULL, assay = NULL, layer = "counts", image = NULL, n.seeds = 5,
                               n_neighbors = 6, n_top_genes = 3000, max_epochs = 1000, resolution = 1,
                               refine = TRUE, seed.use = 0, verbose = TRUE) {
  method <- .choose_method(method, "FindSpatialDomains")
  input <- .task_input(object, assay, layer, spatial = TRUE, image = image)
  kwargs <- list(method = method, n_domains = n.domains, cluster_method = cluster.method, layer = NULL,
                 n_seeds = n.seeds, n_neighbors = n_neighbors, n_top_genes = n_top_genes, max_epochs = max_epochs,
                 resolution = resolution, refine_labels = refine, random_state = seed.use, verbose = verbose)
  out <- .py_task("spatial_domains", input$adata, kwargs)
  domains <- factor(out$domains, levels = as.character(seq_along(unique(out$domains))))
  columns <- stats::setNames(data.frame(domains, out$agreement), paste0(method, c("_domain", "_agreement")))
  object <- .put_columns(object, columns)
  name <- if (method == "pca") "domain_pca" else method
  object <- .put_embedding(object, .default_reduction_name(object, name), paste0(toupper(gsub("_", "", name)), "_"),
                           out$embedding, input$assay, out$record)
  .put_record(object, method, out$record)
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
  input <- .task_input(object, columns = c(truth, columns))
  as.data.frame(.py_task("domain_scores", input$adata, list(truth_key = truth, domain_keys = as.list(columns))),
                stringsAsFactors = FALSE)
}

# Per-spot cell-type proportions into the object: meta.data / colData columns `<prefix>_<type>`
# and `<prefix>_top` (the most abundant type); with `assay.name`, also a Seurat assay of the
# proportions (types x spots, as Seurat's "predictions"), so that SpatialFeaturePlot() shows them.
.put_proportions <- function(object, proportions, prefix, assay.name = NULL, record = NULL) {
  values <- proportions$values
  types <- .as_chr(proportions$types)
  dimnames(values) <- list(colnames(object), types)
  columns <- as.data.frame(values, optional = TRUE)
  names(columns) <- paste0(prefix, "_", types)
  columns[[paste0(prefix, "_top")]] <- factor(types[max.col(values, ties.method = "first")], levels = types)
  object <- .put_columns(object, columns)
  if (!is.null(assay.name) && .is_seurat(object)) {
    # Seurat's feature names cannot hold "_" (it warns and changes them); meta.data keeps them
    assay <- suppressWarnings(SeuratObject::CreateAssayObject(data = t(values)))
    SeuratObject::Key(assay) <- .safe_key(assay.name)
    assay@misc <- list(isthmus = record)
    object <- .set_assay(object, assay.name, assay)
  }
  object
}

# The single-cell reference of DeconvolveSpots() / MapCells(): counts and the cell-type column.
.reference_input <- function(reference, labels, reference.assay, layer) {
  .check_task_object(reference, "reference")
  .task_input(reference, reference.assay, layer, columns = labels)$adata
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
#' @param object The spatial Seurat / SingleCellExperiment object (raw counts).
#' @param reference A Seurat / SingleCellExperiment single-cell reference (raw counts) with `labels`.
#' @param labels The reference's cell-type column.
#' @param method "destvi", "stereoscope" or "nnls".
#' @param reference.assay The reference's assay (Seurat; default its default assay).
#' @param min.gene.overlap The least share of the spatial data's genes the reference must have.
#' @param min.cells.per.type Cell types with fewer reference cells are left out (with a warning).
#' @param max_epochs,reference_epochs Training epochs of the spatial and the reference model
#'   (NULL: the method's defaults).
#' @param assay.name The assay the proportions go to (Seurat).
#' @inheritParams IntegrateCells
#' @return The spatial object with the proportions added.
#' @export
DeconvolveSpots <- function(object, reference, labels, method = c("destvi", "stereoscope", "nnls"),
                            assay = NULL, reference.assay = NULL, layer = "counts", min.gene.overlap = 0.3,
                            min.cells.per.type = 10, max_epochs = NULL, reference_epochs = NULL,
                            assay.name = method, model.dir = NULL, seed.use = 0, verbose = TRUE) {
  method <- .choose_method(method, "DeconvolveSpots")
  if (is.null(labels)) stop("isthmus: labels (the reference's cell-type column) is required.", call. = FALSE)
  spatial <- .task_input(object, assay, layer)
  ref <- .reference_input(reference, labels, reference.assay, layer)
  kwargs <- list(labels_key = labels, method = method, layer = NULL, min_gene_overlap = min.gene.overlap,
                 min_cells_per_type = min.cells.per.type, max_epochs = max_epochs, reference_epochs = reference_epochs,
                 model_dir = model.dir %||% .session_model_dir(method), random_state = seed.use, verbose = verbose)
  out <- .py_task("deconvolve", spatial$adata, ref, kwargs)
  object <- .put_proportions(object, out, method, assay.name, out$record)
  .put_record(object, method, out$record)
}

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
#' @return The spatial object with the imputed genes (and cell-type maps) added.
#' @export
MapCells <- function(object, reference, labels = NULL, method = c("tangram", "gimvi", "knn"), genes = NULL,
                     training.genes = NULL, assay = NULL, reference.assay = NULL, layer = "counts",
                     min.gene.overlap = 0.3, max_epochs = NULL, learning_rate = NULL, n_neighbors = 15,
                     assay.name = method, model.dir = NULL, seed.use = 0, verbose = TRUE) {
  method <- .choose_method(method, "MapCells")
  spatial <- .task_input(object, assay, layer)
  ref <- .reference_input(reference, labels, reference.assay, layer)
  kwargs <- list(method = method, labels_key = labels, impute_genes = genes, training_genes = training.genes,
                 layer = NULL, min_gene_overlap = min.gene.overlap, max_epochs = max_epochs,
                 learning_rate = learning_rate, n_neighbors = n_neighbors,
                 model_dir = model.dir %||% .session_model_dir(method), random_state = seed.use, verbose = verbose)
  out <- .py_task("map_cells", spatial$adata, ref, kwargs)
  imputed <- t(out$imputed)
  dimnames(imputed) <- list(.as_chr(out$genes), colnames(object))
  # Seurat's feature names cannot hold "_" (it warns and changes them, as for any assay)
  if (nrow(imputed)) object <- suppressWarnings(.put_expression(object, assay.name, imputed, out$record))
  if (!is.null(out$cell_types)) object <- .put_proportions(object, out$cell_types, method)
  .put_record(object, method, out$record)
}

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
#' @inheritParams FindSpatialDomains
#' @return A data.frame (source, target, ligand, receptor, score, pvalue, fdr, n_pairs), most
#'   significant first; attribute "png" with the plot's path when `plot` is given.
#' @export
SpatialInteractions <- function(object, labels, method = c("spatial", "nonspatial"), resource = "auto",
                                assay = NULL, layer = "counts", image = NULL, n_neighbors = 6, n_perms = 1000,
                                expr_prop = 0.1, min.cells = 5, plot = NULL, seed.use = 0, verbose = TRUE) {
  method <- .choose_method(method, "SpatialInteractions")
  input <- .task_input(object, assay, layer, columns = labels, spatial = TRUE, image = image)
  if (is.data.frame(resource)) {
    if (!all(c("ligand", "receptor") %in% names(resource))) {
      stop("isthmus: a resource data.frame needs columns 'ligand' and 'receptor'.", call. = FALSE)
    }
    resource <- lapply(resource[c("ligand", "receptor")], as.character)  # a dict of columns in Python
  }
  kwargs <- list(labels_key = labels, method = method, resource = resource, layer = NULL,
                 n_neighbors = n_neighbors, n_perms = n_perms, expr_prop = expr_prop, min_cells = min.cells,
                 random_state = seed.use, verbose = verbose)
  out <- .py_task("interactions", input$adata, kwargs, plot, paste0("isthmus: ", method, " ligand-receptor"))
  table <- as.data.frame(lapply(out$table, function(x) if (is.list(x)) .as_chr(x) else x), stringsAsFactors = FALSE)
  attr(table, "record") <- out$record
  if (nzchar(out$png)) attr(table, "png") <- out$png
  table
}
