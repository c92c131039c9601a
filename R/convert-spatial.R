# Seurat spatial images <-> the layout scanpy and squidpy read:
#   obsm["spatial"]                        full-resolution pixel coordinates, columns (x, y) =
#                                          (imagecol, imagerow) in Seurat's Visium terms
#   uns["spatial"][library]["images"]      {"lowres": H x W x 3 image}
#   uns["spatial"][library]["scalefactors"] tissue_lowres_scalef, tissue_hires_scalef,
#                                          spot_diameter_fullres, fiducial_diameter_fullres
# SlideSeq has coordinates only (obsm["spatial"] = x, y). What scanpy has no place for (array
# row/col, in_tissue, the image's key and class) is kept in uns["isthmus"]["images"].

.images_to_parts <- function(obj, report) {
  images <- SeuratObject::Images(obj)
  if (!length(images)) return(NULL)
  cells <- colnames(obj)
  coords <- matrix(NA_real_, nrow = length(cells), ncol = 2, dimnames = list(cells, c("x", "y")))
  uns <- list()
  record <- list()
  for (name in images) {
    img <- obj@images[[name]]
    img_cells <- rownames(img@coordinates)
    at <- match(img_cells, cells)
    if (anyNA(at)) stop("isthmus: image '", name, "' has coordinates for cells not in the object.", call. = FALSE)
    rec <- list(class = class(img)[1], key = img@key, assay = img@assay, cells = img_cells)
    if (inherits(img, "VisiumV1")) {
      xy <- img@coordinates[, c("imagecol", "imagerow")]
      sf <- img@scale.factors
      uns[[name]] <- list(
        images = list(lowres = img@image),
        scalefactors = list(tissue_lowres_scalef = sf$lowres, tissue_hires_scalef = sf$hires,
                            spot_diameter_fullres = sf$spot, fiducial_diameter_fullres = sf$fiducial),
        metadata = list(source = "Seurat VisiumV1")
      )
      rec$spot_radius <- img@spot.radius
      rec$grid <- .uns_to_py(img@coordinates[, c("tissue", "row", "col"), drop = FALSE],
                             paste0("image ", name, " coordinates"), report)
    } else if (inherits(img, "SlideSeq") || all(c("x", "y") %in% names(img@coordinates))) {
      xy <- img@coordinates[, c("x", "y")]
      extra <- setdiff(names(img@coordinates), c("x", "y"))
      if (length(extra)) {
        rec$extra <- .uns_to_py(img@coordinates[, extra, drop = FALSE], paste0("image ", name), report)
      }
    } else {
      .report_dropped(report, paste0("image ", name), paste0("images of class ", class(img)[1], " are not carried"))
      next
    }
    coords[at, ] <- as.matrix(xy)
    record[[name]] <- rec
  }
  if (!length(record)) return(NULL)
  list(obsm = .matrix_to_py(coords, "spatial coordinates", orientation = "same"), uns = uns, record = record)
}

.images_from_parts <- function(obj, global, uns, record, assay, report) {
  obsm <- .named_list(global$obsm)
  if (is.null(obsm$spatial)) return(obj)
  coords <- .matrix_from_py(obsm$spatial)
  cells <- colnames(obj)
  rownames(coords) <- cells
  libraries <- .named_list(uns$spatial)
  if (is.null(record)) {
    # an AnnData from scanpy/squidpy: one image per library in uns["spatial"], or SlideSeq
    record <- list()
    if (length(libraries)) {
      if (length(libraries) > 1) {
        .report_dropped(report, "uns$spatial", "several libraries without a library column: only the first is carried")
      }
      record[[.seurat_image_name(names(libraries)[1])]] <- list(class = "VisiumV1", library = names(libraries)[1], cells = cells)
    } else {
      record$slice1 <- list(class = "SlideSeq", cells = cells)
    }
  }
  for (name in names(record)) {
    rec <- record[[name]]
    img_cells <- intersect(.as_chr(rec$cells), cells)  # the AnnData may have been subset
    xy <- coords[img_cells, , drop = FALSE]
    key <- rec$key %||% .safe_key(name)
    if (identical(rec$class, "VisiumV1")) {
      lib <- libraries[[rec$library %||% name]]
      if (is.null(lib)) {
        .report_dropped(report, paste0("image ", name), "uns$spatial has no entry for it")
        next
      }
      img <- lib$images$lowres %||% lib$images$hires
      if (is.null(lib$images$lowres)) .report_changed(report, paste0("image ", name), "the hires image was used as Seurat keeps one")
      sf <- lib$scalefactors
      grid <- if (!is.null(rec$grid)) rec$grid[img_cells, , drop = FALSE] else
        data.frame(tissue = rep(1L, length(img_cells)), row = 0L, col = 0L, row.names = img_cells)
      coordinates <- data.frame(grid, imagerow = xy[, 2], imagecol = xy[, 1])
      rownames(coordinates) <- img_cells
      lowres <- sf$tissue_lowres_scalef %||% 1
      radius <- rec$spot_radius %||% (sf$fiducial_diameter_fullres * lowres / max(dim(img)))
      image <- methods::new(
        .seurat_spatial("VisiumV1"), image = img,
        scale.factors = .seurat_spatial("scalefactors")(spot = sf$spot_diameter_fullres, fiducial = sf$fiducial_diameter_fullres,
                                                   hires = sf$tissue_hires_scalef, lowres = lowres),
        coordinates = coordinates, spot.radius = radius, assay = rec$assay %||% assay, key = key
      )
    } else {
      coordinates <- data.frame(x = xy[, 1], y = xy[, 2], row.names = img_cells)
      if (!is.null(rec$extra)) coordinates <- cbind(coordinates, rec$extra[img_cells, , drop = FALSE])
      image <- methods::new(.seurat_spatial("SlideSeq"), coordinates = coordinates, assay = rec$assay %||% assay, key = key)
    }
    obj@images[[name]] <- image
  }
  obj
}

.seurat_image_name <- function(x) {
  x <- gsub("[^A-Za-z0-9.]", ".", x)
  if (!grepl("^[A-Za-z]", x)) x <- paste0("slice", x)
  x
}

# Seurat v4 defines its spatial classes in Seurat, SeuratObject 5 in SeuratObject: look in both.
.seurat_spatial <- function(name) {
  for (pkg in c("SeuratObject", "Seurat")) {
    if (!requireNamespace(pkg, quietly = TRUE)) next
    ns <- asNamespace(pkg)
    if (name == "scalefactors") {
      if (name %in% getNamespaceExports(pkg)) return(getExportedValue(pkg, name))
    } else if (methods::isClass(name, where = ns)) {
      return(methods::getClass(name, where = ns))
    }
  }
  stop("isthmus: Seurat's spatial class '", name, "' is not available; install Seurat.", call. = FALSE)
}
