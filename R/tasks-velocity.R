# RNA velocity verbs: veloVI beside scVelo (python/isthmus/tl/_velocity.py) from a Seurat object with
# assays "spliced" and "unspliced" (as SeuratWrappers' ReadVelocity() / as.Seurat() of a velocyto
# loom makes them) or a SingleCellExperiment with assays of those names (as zellkonverter reads an
# scVelo .h5ad). The velocity's R plot and the benchmark scores live here too.

utils::globalVariables(".data")  # ggplot2's pronoun for the plot's columns

#' RNA velocity: veloVI, or scVelo's dynamical / stochastic model
#'
#' Estimates each cell's RNA velocity from its spliced and unspliced counts. `method = "velovi"`
#' trains veloVI (a variational model of splicing kinetics; its posterior gives each cell's
#' velocity uncertainty); `method = "scvelo"` runs scVelo, the classical baseline: its dynamical
#' model (`mode = "dynamical"`, the baseline in veloVI's paper; minutes on a laptop) or the fast
#' stochastic model. Both use scVelo's standard preprocessing of the counts (genes with at least 20
#' shared counts, normalised, the `n_top_genes` most variable, PCA, `n_neighbors` neighbours and
#' moments), computed on a copy: the object's assays are not changed.
#'
#' Results (SingleCellExperiment names in parentheses):
#' * assay `<method>_velocity` (an altExp of that name, its assay "logcounts"): velocity of the fitted
#'   genes only (the genes the method kept; veloVI: those with a positive steady-state fit) as `data`;
#' * meta.data (colData) `<method>_latent_time` (gene-shared latent time, 0-1, rooted by the
#'   velocity graph; scVelo stochastic: velocity pseudotime), `<method>_uncertainty` (veloVI: the
#'   variance of the direction of the cell's velocity over posterior samples; scVelo, which has no
#'   posterior: 1 - confidence) and `<method>_confidence` (scVelo's velocity confidence: how well
#'   the cell's velocity agrees with its neighbours');
#' * reduction `<method>_velocity_<reduction>` (reducedDim in upper case): the velocity projected
#'   on the first two dimensions of `reduction`, the arrows [VelocityPlot()] draws. When
#'   `reduction` is "umap" and the object has none, a UMAP of the preprocessed data is computed
#'   and added as reduction "umap" ("UMAP") too;
#' * the record (parameters, seconds, versions, veloVI's model directory) in
#'   `Tool(object, "isthmus")[[method]]` (`metadata(object)$isthmus`).
#'
#' @param object A Seurat object with assays `spliced` and `unspliced` (raw counts, the same genes),
#'   or a SingleCellExperiment with assays of those names.
#' @param method "velovi" or "scvelo".
#' @param spliced,unspliced The assays with the spliced and unspliced counts.
#' @param reduction The embedding to show velocity on (e.g. "umap"; the first two dimensions).
#' @param mode scVelo: "dynamical" or "stochastic".
#' @param n_top_genes,n_neighbors,n_pcs scVelo's preprocessing: variable genes kept (`NULL`: all
#'   that pass the count filter), neighbours and principal components of the moments.
#' @param max_epochs veloVI: training epochs (`NULL`: velovi's default for the data size, with
#'   early stopping).
#' @param model.dir veloVI: where to save the model (default: a temporary directory; see
#'   [SaveModel()]).
#' @param group.by With `png`: the column that colours the cells.
#' @param png A file for scVelo's stream plot of the result, or `NULL`.
#' @param seed.use Random seed: the same seed gives the same result on the same machine.
#' @param verbose Print progress lines.
#' @inheritParams IntegrateCells
#' @param ... Passed to the Python function (e.g. `n_jobs` for scVelo's dynamical model,
#'   `min_shared_counts`, `n_samples`, or veloVI's `n_latent`).
#' @param meta.data Default method: a data.frame with the `group.by` column.
#' @param embedding Default method: a cells x 2 (or more) matrix to show velocity on; `NULL`
#'   computes a UMAP.
#' @return The object with the assay, columns, reduction(s) and record added; the default method
#'   (`object`: the spliced counts, features x cells; `unspliced`: the unspliced counts) returns a
#'   list (`assays`, `columns`, `reductions`, `records`).
#' @export
RunVelocity <- function(object, ...) UseMethod("RunVelocity")

#' @rdname RunVelocity
#' @export
RunVelocity.default <- function(object, unspliced, method = c("velovi", "scvelo"), embedding = NULL,
                                mode = c("dynamical", "stochastic"), n_top_genes = 2000, n_neighbors = 30, n_pcs = 30,
                                max_epochs = NULL, model.dir = NULL, group.by = NULL, png = NULL,
                                accelerator = getOption("isthmus.accelerator", "auto"), devices = "auto",
                                backend = getOption("isthmus.backend", "inprocess"), batch_size = NULL,
                                seed.use = 0,
                                verbose = TRUE, meta.data = NULL, ...) {
  .local_backend(backend)
  method <- .choose_method(method, "RunVelocity")
  mode <- match.arg(mode)
  if (!is.null(embedding) && NCOL(embedding) < 2) stop("isthmus: the embedding has fewer than 2 dimensions.", call. = FALSE)
  .check_columns(meta.data, group.by)  # only the figure reads it
  spliced <- .task_anndata(object, meta.data, group.by,
                           embedding = if (!is.null(embedding)) as.matrix(embedding)[, 1:2, drop = FALSE],
                           what = "spliced counts")
  kwargs <- list(method = method, mode = mode, basis = if (is.null(embedding)) "umap" else "input",
                 n_top_genes = n_top_genes, n_neighbors = n_neighbors, n_pcs = n_pcs, max_epochs = max_epochs,
                 model_dir = model.dir %||% .session_model_dir(method), key_added = "velocity",
                 random_state = seed.use,
                 accelerator = accelerator, devices = devices, batch_size = batch_size, verbose = verbose, ...)
  options <- list(figure = if (!is.null(png)) normalizePath(png, mustWork = FALSE),
                  title = paste0("isthmus: ", method, if (method == "scvelo") paste0(" (", mode, ")"), " velocity"),
                  figure_kwargs = list(basis = kwargs$basis, color = group.by))
  data <- list(list(layers = list(spliced = spliced,
                                  unspliced = .task_anndata(unspliced, what = "unspliced counts", arg = "unspliced"))))
  out <- .run_core("velocity", data, kwargs, options)
  # the object's parts, all computed before anything is stored
  record <- out$record
  cells <- colnames(object)
  values <- t(as.matrix(out$value$velocity))
  dimnames(values) <- list(.as_chr(out$value$genes), cells)
  columns <- stats::setNames(data.frame(as.numeric(out$value$latent_time), as.numeric(out$value$uncertainty),
                                        as.numeric(out$value$confidence)),
                             paste0(method, c("_latent_time", "_uncertainty", "_confidence")))
  reductions <- list()
  if (isTRUE(out$value$embedding_computed)) {
    reductions$umap <- list(embedding = out$value$embedding, key = "UMAP_", record = record)
  }
  reductions$velocity <- list(embedding = out$value$velocity_embedding, key = paste0(toupper(method), "VEL_"), record = record)
  .task_result(reductions = reductions, columns = columns,
               assays = stats::setNames(list(list(values = values, record = record)), paste0(method, "_velocity")),
               records = stats::setNames(list(record), method))
}

#' @rdname RunVelocity
#' @export
RunVelocity.Seurat <- function(object, method = c("velovi", "scvelo"), spliced = "spliced", unspliced = "unspliced",
                               reduction = "umap", mode = c("dynamical", "stochastic"), n_top_genes = 2000,
                               n_neighbors = 30, n_pcs = 30, max_epochs = NULL, model.dir = NULL, group.by = NULL,
                               png = NULL,
                               accelerator = getOption("isthmus.accelerator", "auto"), devices = "auto",
                               backend = getOption("isthmus.backend", "inprocess"), batch_size = NULL,
                               seed.use = 0, verbose = TRUE, ...) {
  .local_backend(backend)
  method <- .choose_method(method, "RunVelocity")
  .check_task_object(object)
  counts <- .velocity_counts(object, spliced, unspliced)
  found <- .find_reduction(object, reduction)
  if (is.null(found) && !identical(tolower(reduction), "umap")) {
    stop("isthmus: no ", if (.is_seurat(object)) "reduction" else "reducedDim", " '", reduction, "'; the object has: ",
         paste(.reduction_names(object), collapse = ", "), ". Name one, or use reduction = \"umap\" to have a ",
         "UMAP computed.", call. = FALSE)
  }
  embedding <- if (!is.null(found)) .embedding_of(object, found)
  if (!is.null(embedding) && ncol(embedding) < 2) {
    stop("isthmus: reduction '", found, "' has fewer than 2 dimensions.", call. = FALSE)
  }
  meta <- .cell_meta(object)
  .check_columns(meta, group.by)
  result <- RunVelocity.default(counts$spliced, counts$unspliced, method = method, embedding = embedding, mode = mode,
                                n_top_genes = n_top_genes, n_neighbors = n_neighbors, n_pcs = n_pcs,
                                max_epochs = max_epochs, model.dir = model.dir, group.by = group.by, png = png,
                                seed.use = seed.use,
                                accelerator = accelerator, devices = devices, batch_size = batch_size,
                                verbose = verbose, meta.data = meta[group.by], ...)
  on <- found %||% .default_reduction_name(object, "umap")
  result$reductions$velocity$key <- .safe_key(paste0(method, "vel", on))
  names <- list(umap = on, velocity = .velocity_reduction(object, method, on))
  .put_result(object, result, counts$assay, names)
}

#' @rdname RunVelocity
#' @method RunVelocity SingleCellExperiment
#' @export
RunVelocity.SingleCellExperiment <- RunVelocity.Seurat

# The spliced and unspliced counts (features x cells), the same genes and cells in the same order.
.velocity_counts <- function(object, spliced, unspliced) {
  one <- function(name, kind) {
    if (.is_seurat(object)) {
      if (!name %in% SeuratObject::Assays(object)) {
        stop("isthmus: no assay '", name, "' with the ", kind, " counts; the object has: ",
             paste(SeuratObject::Assays(object), collapse = ", "), ". RNA velocity needs spliced and unspliced ",
             "counts (velocyto, STARsolo --soloFeatures Velocyto, alevin-fry), one assay each.", call. = FALSE)
      }
      return(.task_counts(object, name, "counts"))
    }
    if (!name %in% SummarizedExperiment::assayNames(object)) {
      stop("isthmus: no assay '", name, "' with the ", kind, " counts; the SingleCellExperiment has: ",
           paste(SummarizedExperiment::assayNames(object), collapse = ", "), ".", call. = FALSE)
    }
    .task_counts(object, NULL, name)
  }
  s <- one(spliced, "spliced")
  u <- one(unspliced, "unspliced")
  shape <- function(x) paste0(x$what, ": ", nrow(x$matrix), " genes x ", ncol(x$matrix), " cells")
  if (!identical(dim(s$matrix), dim(u$matrix))) {
    stop("isthmus: the spliced counts (", shape(s), ") and the unspliced counts (", shape(u), ") differ in shape; ",
         "velocity needs both for the same genes and cells (subset both to the genes they share).", call. = FALSE)
  }
  for (part in c("genes", "cells")) {
    names_s <- if (part == "genes") rownames(s$matrix) else colnames(s$matrix)
    names_u <- if (part == "genes") rownames(u$matrix) else colnames(u$matrix)
    if (!identical(names_s, names_u) && !setequal(names_s, names_u)) {
      only <- setdiff(names_s, names_u)
      stop("isthmus: the spliced counts (", shape(s), ") and the unspliced counts (", shape(u), ") hold different ",
           part, ": ", length(only), " of the spliced ", part, " are not in the unspliced (e.g. '", only[1], "').",
           call. = FALSE)
    }
  }
  unspliced_m <- u$matrix
  if (!identical(rownames(unspliced_m), rownames(s$matrix)) || !identical(colnames(unspliced_m), colnames(s$matrix))) {
    unspliced_m <- unspliced_m[rownames(s$matrix), colnames(s$matrix), drop = FALSE]
  }
  list(spliced = s$matrix, unspliced = unspliced_m, what = c(s$what, u$what), assay = s$assay)
}

# A reduction by name, or by the same name in another case (Seurat "umap", SCE "UMAP"); NULL if none.
.find_reduction <- function(object, reduction) {
  available <- .reduction_names(object)
  if (reduction %in% available) return(reduction)
  same <- available[tolower(available) == tolower(reduction)]
  if (length(same)) same[1] else NULL
}

.velocity_reduction <- function(object, method, embedding) {
  .default_reduction_name(object, paste0(method, "_velocity_", tolower(embedding)))
}

# A method's velocity (fitted genes x cells) as RunVelocity() stored it.
.velocity_values <- function(object, method) {
  name <- paste0(method, "_velocity")
  if (.is_seurat(object)) {
    if (!name %in% SeuratObject::Assays(object)) return(NULL)
    return(as.matrix(.assay_matrix(object, name, "data")))
  }
  if (name %in% SummarizedExperiment::assayNames(object)) return(as.matrix(SummarizedExperiment::assay(object, name)))
  if (!name %in% SingleCellExperiment::altExpNames(object)) return(NULL)
  as.matrix(SummarizedExperiment::assay(SingleCellExperiment::altExp(object, name), 1))
}

#' Plot RNA velocity on an embedding: grid-averaged arrows over the cells (ggplot2)
#'
#' The cells of `reduction`, coloured by `group.by`, and arrows of the velocity that
#' [RunVelocity()] projected on it, averaged over a square grid (as scVelo's
#' `velocity_embedding_grid()`, with square bins in place of its Gaussian kernel): each arrow
#' starts at the mean position of the cells of its bin and points along their mean velocity.
#'
#' @param object A Seurat or SingleCellExperiment object after [RunVelocity()].
#' @param method The velocity to draw: "velovi" or "scvelo".
#' @param reduction The embedding the velocity was projected on.
#' @param group.by The column that colours the cells (Seurat default: the identities).
#' @param n.grid Bins along each axis.
#' @param min.cells Bins with fewer cells get no arrow.
#' @param arrow.scale Arrow length relative to a bin.
#' @param pt.size Size of the cells' points.
#' @return A ggplot.
#' @export
VelocityPlot <- function(object, method = "velovi", reduction = "umap", group.by = NULL, n.grid = 20,
                         min.cells = 3, arrow.scale = 1.5, pt.size = 0.8) {
  if (!requireNamespace("ggplot2", quietly = TRUE)) stop("isthmus: VelocityPlot() needs the ggplot2 package.", call. = FALSE)
  .check_task_object(object)
  found <- .find_reduction(object, reduction) %||% reduction
  name <- .velocity_reduction(object, method, found)
  if (!name %in% .reduction_names(object)) {
    stop("isthmus: no ", method, " velocity on '", reduction, "' (", if (.is_seurat(object)) "reduction" else "reducedDim",
         " '", name, "'): run RunVelocity(object, method = \"", method, "\", reduction = \"", reduction, "\") first.",
         call. = FALSE)
  }
  position <- .embedding_of(object, found)[, 1:2, drop = FALSE]
  moving <- .embedding_of(object, name)[, 1:2, drop = FALSE]
  cells <- data.frame(x = position[, 1], y = position[, 2])
  if (!is.null(group.by)) {
    .check_columns(.cell_meta(object), group.by)
    cells$group <- .cell_meta(object)[[group.by]]
  } else if (.is_seurat(object)) {
    cells$group <- SeuratObject::Idents(object)
  }
  arrows <- .velocity_grid(position, moving, n.grid, min.cells, arrow.scale)
  plot <- ggplot2::ggplot(cells, ggplot2::aes(.data$x, .data$y))
  plot <- plot + if (is.null(cells$group)) {
    ggplot2::geom_point(size = pt.size, colour = "grey70")
  } else {
    ggplot2::geom_point(ggplot2::aes(colour = .data$group), size = pt.size, alpha = 0.5)
  }
  plot + ggplot2::geom_segment(data = arrows, ggplot2::aes(x = .data$x, y = .data$y, xend = .data$xend, yend = .data$yend),
                               arrow = ggplot2::arrow(length = ggplot2::unit(0.07, "cm"), type = "closed"), linewidth = 0.35) +
    ggplot2::labs(x = colnames(position)[1], y = colnames(position)[2], colour = group.by,
                  title = paste0(method, " velocity")) +
    ggplot2::theme_classic()
}

# Arrows on a square grid: per bin with at least `min.cells` cells, the mean position and the mean
# velocity, scaled so that the longest arrows (90th percentile) span `arrow.scale` bins.
.velocity_grid <- function(position, moving, n.grid, min.cells, arrow.scale) {
  ok <- stats::complete.cases(position, moving)
  position <- position[ok, , drop = FALSE]
  moving <- moving[ok, , drop = FALSE]
  bin <- function(v) {
    breaks <- seq(min(v), max(v), length.out = n.grid + 1)
    if (diff(range(v)) == 0) rep(1L, length(v)) else findInterval(v, breaks, rightmost.closed = TRUE)
  }
  key <- paste(bin(position[, 1]), bin(position[, 2]))
  n <- as.vector(table(key)[key])
  keep <- n >= min.cells
  if (!any(keep)) return(data.frame(x = numeric(), y = numeric(), xend = numeric(), yend = numeric()))
  mean_of <- function(v) as.vector(tapply(v[keep], key[keep], mean))
  grid <- data.frame(x = mean_of(position[, 1]), y = mean_of(position[, 2]), vx = mean_of(moving[, 1]),
                     vy = mean_of(moving[, 2]))
  length_ <- sqrt(grid$vx^2 + grid$vy^2)
  spacing <- min(diff(range(position[, 1])), diff(range(position[, 2]))) / n.grid
  reference <- stats::quantile(length_, 0.9, names = FALSE)
  factor <- if (reference > 0) arrow.scale * spacing / reference else 0
  grid$xend <- grid$x + grid$vx * factor
  grid$yend <- grid$y + grid$vy * factor
  grid[c("x", "y", "xend", "yend")]
}

#' Score velocities against known transitions: cross-boundary direction and in-cluster coherence
#'
#' The two standard scores of RNA velocity benchmarks (VeloAE, UniTVelo, and the papers after
#' them), for each method [RunVelocity()] ran on the object. Neighbours: each cell's `n_neighbors`
#' nearest cells on `reduction`.
#' * CBDir (cross-boundary direction correctness), per known transition A -> B: for the cells of
#'   A next to cells of B, the mean cosine between the cell's velocity on the embedding and the
#'   direction to those neighbours in B. 1: into B; 0: unrelated; -1: backwards.
#' * ICCoh (in-cluster coherence), per cluster: the mean cosine similarity between a cell's velocity
#'   and its same-cluster neighbours' (`coherence = "gene"`: the velocity of the fitted genes;
#'   "embedding": on the embedding).
#' Rows with group "mean" average the transitions / clusters.
#'
#' @param object A Seurat or SingleCellExperiment object after [RunVelocity()].
#' @param group.by The cluster column the transitions refer to.
#' @param transitions The known transitions: a named character vector or list
#'   (`c("Ductal" = "Ngn3 low EP", ...)`; a list entry may name several targets), or "A -> B" strings.
#' @param methods The methods to score (default: every method with a velocity on `reduction`).
#' @param reduction The embedding the velocities were projected on.
#' @param n_neighbors Neighbours per cell.
#' @param coherence "gene" or "embedding".
#' @return A data.frame: method, metric, group, value, n_cells.
#' @export
VelocityScores <- function(object, group.by, transitions, methods = NULL, reduction = "umap", n_neighbors = 30,
                           coherence = c("gene", "embedding")) {
  coherence <- match.arg(coherence)
  .check_task_object(object)
  found <- .find_reduction(object, reduction) %||% reduction
  ran <- c("velovi", "scvelo")[.velocity_reduction(object, c("velovi", "scvelo"), found) %in% .reduction_names(object)]
  methods <- methods %||% ran
  if (!length(methods)) {
    stop("isthmus: no velocity on '", reduction, "' to score: run RunVelocity() first.", call. = FALSE)
  }
  missing <- setdiff(methods, ran)
  if (length(missing)) {
    stop("isthmus: no ", missing[1], " velocity on '", reduction, "': run RunVelocity(object, method = \"", missing[1],
         "\", reduction = \"", reduction, "\") first.", call. = FALSE)
  }
  meta <- .cell_meta(object)
  .check_columns(meta, group.by)
  pairs <- .transition_pairs(transitions)
  position <- .embedding_of(object, found)[, 1:2, drop = FALSE]
  tables <- lapply(methods, function(method) {
    values <- .velocity_values(object, method)
    if (is.null(values)) stop("isthmus: no ", method, "_velocity assay (altExp): run RunVelocity() again.", call. = FALSE)
    moving <- .embedding_of(object, .velocity_reduction(object, method, found))[, 1:2, drop = FALSE]
    obsm <- list(X_emb = .matrix_to_py(position, "embedding", orientation = "same"),
                 velocity_emb = .matrix_to_py(moving, "velocity embedding", orientation = "same"))
    adata <- .lean_anndata(values, paste0(method, " velocity"), meta[group.by], obsm,
                           layers = list(velocity = .matrix_to_py(values, paste0(method, " velocity"))))
    table <- .run_core("velocity_scores", list(adata),
                       list(cluster_key = group.by, transitions = pairs, basis = "emb", vkey = "velocity",
                            n_neighbors = n_neighbors, coherence = coherence))$value
    data.frame(method = method, table[c("metric", "group", "value", "n_cells")], stringsAsFactors = FALSE)
  })
  out <- do.call(rbind, tables)
  rownames(out) <- NULL
  out
}

# Transitions as a list of c(source, target) pairs, from a named vector / list or "A -> B" strings.
.transition_pairs <- function(transitions) {
  if (is.null(names(transitions))) {
    parts <- strsplit(as.character(unlist(transitions)), "->", fixed = TRUE)
    if (!length(parts) || any(lengths(parts) != 2)) {
      stop("isthmus: transitions must be a named vector (c(\"A\" = \"B\")) or \"A -> B\" strings.", call. = FALSE)
    }
    return(lapply(parts, trimws))
  }
  pairs <- list()
  for (i in seq_along(transitions)) {
    for (target in as.character(unlist(transitions[[i]]))) pairs[[length(pairs) + 1]] <- c(names(transitions)[i], target)
  }
  pairs
}
