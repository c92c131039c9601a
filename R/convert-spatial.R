# Seurat spatial images <-> the layout scanpy and squidpy read:
#   obsm["spatial"]                        full-resolution pixel coordinates, columns (x, y) =
#                                          (imagecol, imagerow) in Seurat's Visium terms
#   uns["spatial"][library]["images"]      {"lowres": H x W x 3 image}
#   uns["spatial"][library]["scalefactors"] tissue_lowres_scalef, tissue_hires_scalef,
#                                          spot_diameter_fullres, fiducial_diameter_fullres
# Classes: VisiumV1 (Seurat v4 and v5), VisiumV2 (Seurat >= 5.1: an FOV of spot centroids plus
# the image), FOV (Xenium, CosMx, MERFISH: cell centroids) and SlideSeq (coordinates only).
# What scanpy has no place for (array row/col, in_tissue, the image's key and class, the
# centroid radius) is kept in uns["isthmus"]["images"]. Cell segmentations and transcript
# molecules of an FOV are not carried (the report says so).

# One image's positions as scanpy orients them, a cells x (x, y) matrix: x runs along the
# image's columns, y down its rows. VisiumV2 stores its centroids as (x = imagerow,
# y = imagecol) (Seurat's Read10X_Image), so those swap; FOV and SlideSeq keep their x, y.
.image_xy <- function(img, name) {
  if (inherits(img, "VisiumV1")) {
    xy <- img@coordinates[, c("imagecol", "imagerow")]
  } else if (inherits(img, "FOV")) {
    found <- SeuratObject::GetTissueCoordinates(.fov_centroids(img, name))
    xy <- found[, c("x", "y")]
    rownames(xy) <- found$cell
    if (inherits(img, "VisiumV2")) xy <- xy[, c("y", "x")]
  } else if (.has_xy_coordinates(img)) {
    xy <- img@coordinates[, c("x", "y")]
  } else {
    stop("isthmus: image '", name, "' (", class(img)[1], ") has no x/y coordinates.", call. = FALSE)
  }
  xy <- as.matrix(xy)
  dimnames(xy) <- list(rownames(xy), c("x", "y"))
  storage.mode(xy) <- "double"
  xy
}

# SlideSeq and other classes that keep x, y in a coordinates table
.has_xy_coordinates <- function(img) {
  methods::.hasSlot(img, "coordinates") && all(c("x", "y") %in% names(img@coordinates))
}

# An FOV's cell centroids: its "centroids" boundary, else its default one if that holds centroids.
.fov_centroids <- function(img, name) {
  boundaries <- names(img@boundaries)
  pick <- if ("centroids" %in% boundaries) "centroids" else SeuratObject::DefaultBoundary(img)
  if (!length(pick) || !inherits(img@boundaries[[pick]], "Centroids")) {
    stop("isthmus: image '", name, "' has no cell centroids (boundaries: ", paste(boundaries, collapse = ", "),
         "); spatial positions need them.", call. = FALSE)
  }
  img@boundaries[[pick]]
}

.centroid_radius <- function(img, name) {
  r <- methods::slot(.fov_centroids(img, name), "radius")
  if (length(r)) r else NULL
}

.image_uns <- function(img, source, name, report) {
  sf <- img@scale.factors
  spot <- sf$spot
  if (length(spot) && length(sf$hires) && isTRUE(spot == sf$hires) && spot < 1 && length(sf$fiducial)) {
    # Seurat 4's Read10X_Image stored the hires scale factor as the spot size; Space Ranger's spot
    # diameter is about 2/3 of its fiducial diameter (e.g. 96.4 / 144.6 px for DLPFC 151673)
    spot <- sf$fiducial * 2 / 3
    .report_changed(report, paste0("image ", name, " spot_diameter_fullres"),
                    paste0("Seurat kept the hires scale factor (", signif(sf$hires, 3), ") as the spot size; ",
                           "written as 2/3 of fiducial_diameter_fullres (", signif(spot, 4), " px)"))
  }
  list(images = list(lowres = img@image),
       scalefactors = list(tissue_lowres_scalef = sf$lowres, tissue_hires_scalef = sf$hires,
                           spot_diameter_fullres = spot, fiducial_diameter_fullres = sf$fiducial),
       metadata = list(source = source))
}

.images_to_parts <- function(obj, report) {
  images <- SeuratObject::Images(obj)
  if (!length(images)) return(NULL)
  cells <- colnames(obj)
  coords <- matrix(NA_real_, nrow = length(cells), ncol = 2, dimnames = list(cells, c("x", "y")))
  uns <- list()
  record <- list()
  for (name in images) {
    img <- obj@images[[name]]
    if (!inherits(img, c("VisiumV1", "FOV")) && !.has_xy_coordinates(img)) {
      .report_dropped(report, paste0("image ", name), paste0("images of class ", class(img)[1], " are not carried"))
      next
    }
    xy <- .image_xy(img, name)
    at <- match(rownames(xy), cells)
    if (anyNA(at)) stop("isthmus: image '", name, "' has coordinates for cells not in the object.", call. = FALSE)
    # other FOV subclasses come back as plain FOVs of their centroids
    class <- if (inherits(img, "FOV") && !inherits(img, "VisiumV2")) "FOV" else class(img)[1]
    rec <- list(class = class, key = img@key, assay = img@assay, cells = rownames(xy))
    if (inherits(img, "VisiumV1")) {
      uns[[name]] <- .image_uns(img, "Seurat VisiumV1", name, report)
      rec$spot_radius <- img@spot.radius
      rec$grid <- .uns_to_py(img@coordinates[, c("tissue", "row", "col"), drop = FALSE],
                             paste0("image ", name, " coordinates"), report)
    } else if (inherits(img, "FOV")) {
      if (inherits(img, "VisiumV2")) uns[[name]] <- .image_uns(img, "Seurat VisiumV2", name, report)
      rec$radius <- .centroid_radius(img, name)
      others <- setdiff(names(img@boundaries), "centroids")
      if (length(others)) {
        .report_dropped(report, paste0("image ", name, " boundaries ", paste(others, collapse = ", ")),
                        "cell segmentations are not carried; the centroids are")
      }
      if (length(img@molecules)) {
        .report_dropped(report, paste0("image ", name, " molecules"), "transcript positions are not carried")
      }
    } else {
      extra <- setdiff(names(img@coordinates), c("x", "y"))
      if (length(extra)) {
        rec$extra <- .uns_to_py(img@coordinates[, extra, drop = FALSE], paste0("image ", name), report)
      }
    }
    coords[at, ] <- xy
    record[[name]] <- rec
  }
  if (!length(record)) return(NULL)
  list(obsm = .matrix_to_py(coords, "spatial coordinates", orientation = "same"), uns = uns, record = record)
}

# Returns the object, with attribute "spatial_rest": what of uns["spatial"] a Seurat image has
# no slot for (other images, metadata, extra scale factors, the library id when the image name
# differs), kept in misc$spatial so that as_anndata() writes uns["spatial"] back as it was.
.images_from_parts <- function(obj, global, uns, record, assay, report) {
  obsm <- .named_list(global$obsm)
  if (is.null(obsm$spatial)) return(obj)
  rest <- list()
  coords <- .matrix_from_py(obsm$spatial)
  cells <- colnames(obj)
  rownames(coords) <- cells
  libraries <- .named_list(uns$spatial)
  record_in <- record
  if (is.null(record)) {
    # an AnnData from scanpy/squidpy: one image per library in uns["spatial"], or SlideSeq
    record <- list()
    if (length(libraries)) {
      # the class Seurat itself now makes for Visium data (VisiumV2 since Seurat 5.1)
      visium <- if (.has_seurat_spatial("VisiumV2")) "VisiumV2" else "VisiumV1"
      libs <- names(libraries)
      by_cell <- as.character(obj@meta.data$library_id %||% rep(NA_character_, length(cells)))
      if (length(libs) > 1 && all(by_cell %in% libs) &&
          !anyDuplicated(vapply(libs, .seurat_image_name, character(1)))) {
        # squidpy's layout: obs["library_id"] says which slice (image) each spot belongs to
        for (lib in libs) record[[.seurat_image_name(lib)]] <- list(class = visium, library = lib, cells = cells[by_cell == lib])
      } else {
        if (length(libs) > 1) {
          .report_dropped(report, paste0("uns$spatial ", paste(libs[-1], collapse = ", ")),
                          "several libraries and no obs column library_id naming each spot's: only the first is carried")
        }
        record[[.seurat_image_name(libs[1])]] <- list(class = visium, library = libs[1], cells = cells)
      }
    } else {
      record$slice1 <- list(class = "SlideSeq", cells = cells)
    }
  }
  for (name in names(record)) {
    rec <- record[[name]]
    img_cells <- intersect(.as_chr(rec$cells), cells)  # the AnnData may have been subset
    xy <- coords[img_cells, , drop = FALSE]
    key <- rec$key %||% .safe_key(name)
    if (rec$class %in% c("VisiumV1", "VisiumV2")) {
      lib <- libraries[[rec$library %||% name]]
      if (is.null(lib)) {
        .report_dropped(report, paste0("image ", name), "uns$spatial has no entry for it")
        next
      }
      used <- if (!is.null(lib$images$lowres)) "lowres" else "hires"
      img <- lib$images[[used]]
      if (is.null(img)) {
        .report_dropped(report, paste0("uns$spatial$", rec$library %||% name), "it has no lowres or hires image")
        next
      }
      if (max(img, na.rm = TRUE) > 1) img <- img / 255  # Seurat plots colours in [0, 1]; scanpy may keep uint8
      sf <- lib$scalefactors
      if (is.null(record_in)) {
        keep <- lib
        keep$images[[used]] <- NULL
        four <- c("tissue_lowres_scalef", "tissue_hires_scalef", "spot_diameter_fullres", "fiducial_diameter_fullres")
        keep$scalefactors[four] <- NULL
        keep$absent_scalefactors <- setdiff(four, names(lib$scalefactors))  # Seurat fills them in; not written back
        keep$isthmus_image <- used
        keep$library <- rec$library
        keep$pixel_max <- if (max(lib$images[[used]], na.rm = TRUE) > 1) 255
        rest[[name]] <- Filter(length, keep)
      }
      lowres <- sf$tissue_lowres_scalef %||% 1
      scale_factors <- .seurat_spatial("scalefactors")(spot = sf$spot_diameter_fullres, fiducial = sf$fiducial_diameter_fullres,
                                                       hires = sf$tissue_hires_scalef, lowres = lowres)
      if (identical(rec$class, "VisiumV2")) {
        # Seurat's own construction (Read10X_Image): centroids as (imagerow, imagecol)
        fov <- SeuratObject::CreateFOV(data.frame(imagerow = xy[, 2], imagecol = xy[, 1], row.names = img_cells),
                                       type = "centroids", radius = rec$radius %||% sf$spot_diameter_fullres,
                                       assay = rec$assay %||% assay, key = key)
        image <- methods::new(.seurat_spatial("VisiumV2"), boundaries = fov@boundaries, molecules = fov@molecules,
                              assay = fov@assay, key = fov@key, image = img, scale.factors = scale_factors)
      } else {
        grid <- if (!is.null(rec$grid)) rec$grid[img_cells, , drop = FALSE] else
          data.frame(tissue = rep(1L, length(img_cells)), row = 0L, col = 0L, row.names = img_cells)
        coordinates <- data.frame(grid, imagerow = xy[, 2], imagecol = xy[, 1])
        rownames(coordinates) <- img_cells
        radius <- rec$spot_radius %||% (sf$fiducial_diameter_fullres * lowres / max(dim(img)))
        image <- methods::new(.seurat_spatial("VisiumV1"), image = img, scale.factors = scale_factors,
                              coordinates = coordinates, spot.radius = radius, assay = rec$assay %||% assay, key = key)
      }
    } else if (identical(rec$class, "FOV")) {
      image <- SeuratObject::CreateFOV(data.frame(x = xy[, 1], y = xy[, 2], row.names = img_cells), type = "centroids",
                                       radius = rec$radius, assay = rec$assay %||% assay, key = key)
    } else {
      coordinates <- data.frame(x = xy[, 1], y = xy[, 2], row.names = img_cells)
      if (!is.null(rec$extra)) coordinates <- cbind(coordinates, rec$extra[img_cells, , drop = FALSE])
      image <- methods::new(.seurat_spatial("SlideSeq"), coordinates = coordinates, assay = rec$assay %||% assay, key = key)
    }
    obj@images[[name]] <- image
  }
  if (length(rest)) attr(obj, "spatial_rest") <- rest
  obj
}

# uns["spatial"] of as_anndata(): the images' entries, completed by what misc$spatial kept of
# the AnnData they were read from, under their library ids.
.merge_spatial_rest <- function(spatial, rest) {
  for (name in intersect(names(rest), names(spatial))) {
    r <- rest[[name]]
    entry <- spatial[[name]]
    used <- r$isthmus_image %||% "lowres"
    if (!identical(used, "lowres")) names(entry$images)[names(entry$images) == "lowres"] <- used
    if (identical(r$pixel_max, 255)) entry$images[[used]] <- entry$images[[used]] * 255
    for (img in names(r$images)) entry$images[[img]] <- r$images[[img]]
    entry$scalefactors <- c(entry$scalefactors, r$scalefactors)
    entry$scalefactors[.as_chr(r$absent_scalefactors)] <- NULL
    entry$metadata <- r$metadata  # the original metadata, not isthmus's note of the source
    for (other in setdiff(names(r), c("images", "scalefactors", "metadata", "isthmus_image", "library", "pixel_max", "absent_scalefactors"))) {
      entry[[other]] <- r[[other]]
    }
    entry <- Filter(Negate(is.null), entry)
    library <- r$library %||% name
    spatial[[name]] <- NULL
    spatial[[library]] <- entry
  }
  spatial
}

.seurat_image_name <- function(x) {
  x <- gsub("[^A-Za-z0-9._]", ".", x)
  if (!grepl("^[A-Za-z]", x)) x <- paste0("slice", x)
  x
}

# Seurat v4 defines its spatial classes in Seurat, SeuratObject 5 in SeuratObject (VisiumV2 is
# in Seurat 5.1+): look in both.
.find_seurat_spatial <- function(name) {
  for (pkg in c("SeuratObject", "Seurat")) {
    if (!requireNamespace(pkg, quietly = TRUE)) next
    ns <- asNamespace(pkg)
    if (name == "scalefactors") {
      if (name %in% getNamespaceExports(pkg)) return(getExportedValue(pkg, name))
    } else if (methods::isClass(name, where = ns)) {
      return(methods::getClass(name, where = ns))
    }
  }
  NULL
}

.has_seurat_spatial <- function(name) !is.null(.find_seurat_spatial(name))

.seurat_spatial <- function(name) {
  .find_seurat_spatial(name) %||%
    stop("isthmus: Seurat's spatial class '", name, "' is not available; install Seurat.", call. = FALSE)
}
