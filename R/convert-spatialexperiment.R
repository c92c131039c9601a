# SpatialExperiment <-> the layout scanpy and squidpy read (the SingleCellExperiment parts go
# as in convert-sce.R):
#
#  SpatialExperiment                      AnnData
#  spatialCoords()                        obsm["spatial"] (its columns in order: x, y for Visium's
#                                         pxl_col_in_fullres, pxl_row_in_fullres)
#  imgData(): a row per sample and image  uns["spatial"][sample_id]["images"][image_id]
#    the image                              H x W x 3 RGB in [0, 1]
#    scaleFactor                            uns["spatial"][sample_id]["scalefactors"]
#                                           ["tissue_<image_id>_scalef"] (lowres / hires as 10x)
#  colData sample_id                      obs["sample_id"]
# The coordinate column names and the image order are kept in the record. SpatialExperiment is
# a Suggests: without it a recorded SpatialExperiment comes back as a SingleCellExperiment with
# reducedDim "spatial" (the report says so).

.spe_to_parts <- function(spe, parts, report) {
  coords <- SpatialExperiment::spatialCoords(spe)
  record <- parts$uns$isthmus
  record$from <- "SpatialExperiment"
  record$spatial_coords_names <- colnames(coords) %||% character()
  record$spatial_coords_rownames <- !is.null(rownames(coords))
  if (ncol(coords)) {
    storage.mode(coords) <- "double"
    parts$obsm$spatial <- .matrix_to_py(unname(coords), "spatialCoords", orientation = "same")
  }
  images <- SpatialExperiment::imgData(spe)
  libraries <- list()
  for (k in seq_len(nrow(images))) {
    sample <- images$sample_id[[k]]
    id <- images$image_id[[k]]
    img <- images$data[[k]]
    if (!methods::is(img, "LoadedSpatialImage")) {
      .report_changed(report, paste0("image ", sample, "/", id), paste0("a ", class(img)[1], " was read into memory"))
    }
    libraries[[sample]]$images[[id]] <- .raster_to_array(SpatialExperiment::imgRaster(img))
    libraries[[sample]]$scalefactors[[paste0("tissue_", id, "_scalef")]] <- images$scaleFactor[[k]]
  }
  if (length(libraries)) {
    # metadata$spatial keeps what imgData() has no place for (Space Ranger metadata, other scale
    # factors; see .spe_from_sce): the images and their scale factors join it
    kept <- parts$uns$spatial
    if (!is.null(kept) && !is.list(kept)) .report_changed(report, "metadata$spatial", "replaced by the images of imgData()")
    if (!is.list(kept)) kept <- list()
    for (sample in names(libraries)) {
      entry <- kept[[sample]] %||% list()
      entry$images <- libraries[[sample]]$images
      entry$scalefactors <- c(libraries[[sample]]$scalefactors,
                              entry$scalefactors[setdiff(names(entry$scalefactors), names(libraries[[sample]]$scalefactors))])
      kept[[sample]] <- entry
    }
    for (sample in names(libraries)) {
      if (!is.null(kept[[sample]]$scalefactors$spot_diameter_fullres)) next
      # scanpy's plot needs a spot size, which imgData() does not keep (read10xVisium drops it)
      in_sample <- if (ncol(coords) >= 2) which(as.character(spe$sample_id) == sample) else integer()
      spot <- .estimate_spot_diameter(coords[in_sample, 1:2, drop = FALSE])
      if (is.null(spot)) next
      kept[[sample]]$scalefactors$spot_diameter_fullres <- spot
      .report_changed(report, paste0("uns$spatial$", sample, "$scalefactors$spot_diameter_fullres"),
                      paste0("a SpatialExperiment keeps no spot size: estimated as 0.7 x the median distance ",
                             "between neighbouring spots (", signif(spot, 4), " px; Space Ranger's ratio for DLPFC 151673)"))
    }
    parts$uns$spatial <- kept
  }
  record$image_samples <- as.character(images$sample_id)
  record$image_ids <- as.character(images$image_id)
  parts$uns$isthmus <- record
  parts
}

# Space Ranger's spot_diameter_fullres is about 0.70 x the distance between neighbouring spot
# centres (DLPFC 151673: 96.4 px for 137 px). Measured on at most 500 spots (against all).
.estimate_spot_diameter <- function(xy) {
  if (nrow(xy) < 2) return(NULL)
  probe <- unique(round(seq(1, nrow(xy), length.out = min(500, nrow(xy)))))
  nearest <- vapply(probe, function(i) {
    d <- sqrt((xy[, 1] - xy[i, 1])^2 + (xy[, 2] - xy[i, 2])^2)
    d[i] <- Inf
    min(d)
  }, numeric(1))
  nearest <- nearest[is.finite(nearest) & nearest > 0]
  if (!length(nearest)) return(NULL)
  0.7 * stats::median(nearest)
}

# An SCE built from the parts (its obsm "spatial" left out of reducedDims) into a
# SpatialExperiment: coordinates from obsm["spatial"], images from uns["spatial"].
.spe_from_sce <- function(sce, parts, record, report) {
  spatial <- .named_list(parts$obsm)$spatial
  coords <- if (is.null(spatial)) matrix(numeric(), ncol(sce), 0) else .matrix_from_py(spatial)
  coord_names <- .as_chr(record$spatial_coords_names)
  colnames(coords) <- if (length(coord_names) == ncol(coords)) coord_names else c("x", "y", "z")[seq_len(ncol(coords))]
  if (!isFALSE(record$spatial_coords_rownames)) rownames(coords) <- colnames(sce)
  libraries <- .named_list(.named_list(parts$uns)$spatial)
  meta <- S4Vectors::metadata(sce)
  # what imgData() has no place for stays in metadata$spatial (the images and their scale
  # factors move to imgData(); .spe_to_parts puts them back together)
  rest <- lapply(libraries, function(lib) {
    lib <- .named_list(lib)
    carried <- paste0("tissue_", names(.named_list(lib$images)), "_scalef")
    lib$images <- NULL
    lib$scalefactors <- .named_list(lib$scalefactors)[setdiff(names(.named_list(lib$scalefactors)), carried)]
    if (!length(lib$scalefactors)) lib$scalefactors <- NULL
    lib
  })
  rest <- Filter(length, rest)
  meta$spatial <- if (length(rest)) rest
  S4Vectors::metadata(sce) <- meta
  if (is.null(sce$sample_id)) {
    # scanpy keeps the slice of each cell in obs["library_id"] (squidpy) or has one library
    sce$sample_id <- if (!is.null(sce$library_id)) as.character(sce$library_id) else
      (names(libraries)[1] %||% "sample01")
    SingleCellExperiment::int_metadata(sce)$isthmus_sample_id_added <- TRUE  # not written back to obs
  }
  spe <- methods::as(sce, "SpatialExperiment")
  SpatialExperiment::spatialCoords(spe) <- coords
  rows <- list()
  recorded <- Map(c, .as_chr(record$image_samples), .as_chr(record$image_ids))
  wanted <- if (length(recorded)) recorded else
    unlist(lapply(names(libraries), function(s) lapply(names(.named_list(libraries[[s]]$images)), function(i) c(s, i))),
           recursive = FALSE)
  for (pair in wanted) {
    lib <- libraries[[pair[1]]]
    pixels <- lib$images[[pair[2]]]
    if (is.null(pixels)) next
    scale <- lib$scalefactors[[paste0("tissue_", pair[2], "_scalef")]]
    if (is.null(scale)) {
      .report_changed(report, paste0("image ", pair[1], "/", pair[2]), "no scale factor: 1 was used")
      scale <- 1
    }
    image <- SpatialExperiment::SpatialImage(.array_to_raster(pixels))
    .report_changed(report, paste0("uns$spatial$", pair[1], "$images$", pair[2]),
                    "a SpatialImage is a raster of 8-bit colours: pixel values are rounded to 1/255")
    rows[[length(rows) + 1]] <- S4Vectors::DataFrame(sample_id = pair[1], image_id = pair[2],
                                                     data = I(list(image)), scaleFactor = as.numeric(scale))
  }
  if (length(rows)) SpatialExperiment::imgData(spe) <- do.call(rbind, rows)
  spe
}

# A raster (a matrix of colours) as the H x W x 3 array scanpy plots: RGB in [0, 1], plus an
# alpha channel only where some pixel is not opaque.
.raster_to_array <- function(raster) {
  raster <- as.matrix(raster)
  channels <- t(grDevices::col2rgb(raster, alpha = TRUE)) / 255
  if (all(channels[, 4] == 1)) channels <- channels[, 1:3, drop = FALSE]
  array(channels, dim = c(nrow(raster), ncol(raster), ncol(channels)))
}

.array_to_raster <- function(pixels) {
  if (max(pixels, na.rm = TRUE) > 1) pixels <- pixels / 255  # uint8 images from scanpy's readers
  grDevices::as.raster(pixels)
}
