# Several slices at once (issue 17, items 4 and 6): a Seurat object with two images and a
# SpatialExperiment with two samples run as one joint model, R -> Python -> R for real; the
# domains named after a reference labelling. Quality is measured by bench/bench_spatial_domains.py.

# The DLPFC slice twice, as two images of one Seurat object whose positions collide (the same
# coordinates), the second copy with a batch effect: every other gene's counts tripled.
two_slices <- function() {
  if (!is.null(.cache$two_slices)) return(.cache$two_slices)
  one <- dlpfc_visium_seurat()
  counts <- layer_data(one, "counts")
  tripled <- Matrix::Diagonal(x = ifelse(seq_len(nrow(counts)) %% 2 == 0, 3, 1)) %*% counts
  tripled <- methods::as(tripled, "CsparseMatrix")
  dimnames(tripled) <- dimnames(counts)
  pieces <- list(a = counts, b = tripled)
  both <- do.call(cbind, lapply(names(pieces), function(s) {
    x <- pieces[[s]]
    colnames(x) <- paste0(s, "_", colnames(x))
    x
  }))
  layer <- one$layer
  layer[layer == "nan"] <- NA
  meta <- data.frame(layer = factor(rep(layer, 2)), row.names = colnames(both))
  seu <- Seurat::CreateSeuratObject(counts = both, assay = "Spatial", meta.data = meta)
  for (s in names(pieces)) {
    image <- one@images[[1]]
    rownames(image@coordinates) <- paste0(s, "_", rownames(image@coordinates))
    image@key <- paste0(s, "_")
    seu@images[[s]] <- image
  }
  .cache$two_slices <- seu
  seu
}

# the share of spots whose twin in the other slice has the same label
twin_agreement <- function(labels) {
  n <- length(labels) / 2
  mean(as.character(labels[seq_len(n)]) == as.character(labels[n + seq_len(n)]))
}

test_that("FindSpatialDomains on a Seurat object with two images whose coordinates collide: one labelling", {
  obj <- two_slices()
  before <- obj
  out <- FindSpatialDomains(obj, method = "pca", n.domains = 7, n.seeds = 1, verbose = FALSE)
  expect_identical(obj, before)
  expect_false(anyNA(out$pca_domain))
  expect_length(out$pca_domain, ncol(obj))
  # the same spot has the same domain in both images, and every domain holds spots of both
  expect_gt(twin_agreement(out$pca_domain), 0.9)
  slice <- sub("_.*", "", colnames(out))
  shares <- prop.table(table(out$pca_domain, slice), 1)[, "a"]
  expect_true(all(shares > 0.3 & shares < 0.7))
  record <- isthmus_records(out, "pca")
  expect_identical(record$params$batch_key, "image")
  expect_equal(unlist(record$params$slices), c(a = ncol(obj) / 2, b = ncol(obj) / 2))
  expect_true(record$params$harmony)
  expect_equal(nrow(SeuratObject::Embeddings(out, "domain_pca")), ncol(obj))
  # one image is a plain run
  single <- FindSpatialDomains(dlpfc_visium_seurat(), method = "pca", n.domains = 7, n.seeds = 1, verbose = FALSE)
  expect_identical(isthmus_records(single, "pca")$params$batch_key, "")
  expect_null(isthmus_records(single, "pca")$params$slices)
  # a batch column that joins the two images: their positions collide inside one slice
  obj$section <- "one"
  expect_error(FindSpatialDomains(obj, method = "pca", n.domains = 7, batch = "section", verbose = FALSE),
               "share their coordinates with another spot of the same slice")
  expect_error(FindSpatialDomains(obj, method = "pca", n.domains = 7, batch = "slyce", verbose = FALSE),
               "batch = \"slyce\": no such column")
  obj$section <- ifelse(slice == "a", "a", "b")
  obj$section[1:3] <- "c"
  expect_error(FindSpatialDomains(obj, method = "banksy", n.domains = 7, batch = "section", verbose = FALSE),
               "slice 'c' has 3 spots; each slice needs more than n_neighbors = 6")
})

test_that("MatchDomains names the domains after the layers; SpatialDimPlot colours then line up", {
  obj <- two_slices()
  out <- FindSpatialDomains(obj, method = "banksy", n.domains = 7, n.seeds = 1, verbose = FALSE)
  expect_gt(twin_agreement(out$banksy_domain), 0.9)
  matched <- MatchDomains(out, "banksy_domain", reference = "layer")
  expect_identical(levels(matched$banksy_domain_matched), levels(obj$layer))  # 7 domains on 7 layers
  # the renaming is one to one: seven (domain, name) pairs, the same partition
  expect_equal(length(unique(paste(matched$banksy_domain_matched, out$banksy_domain))), 7)
  known <- !is.na(out$layer)
  agree <- mean(as.character(matched$banksy_domain_matched[known]) == as.character(out$layer[known]))
  expect_gt(agree, 0.4)
  fills <- function(column) {
    plot <- Seurat::SpatialDimPlot(matched, group.by = column, images = "a")
    scale <- ggplot2::ggplot_build(plot)$plot$scales$get_scales("fill")
    scale$map(levels(obj$layer))
  }
  expect_identical(fills("banksy_domain_matched"), fills("layer"))
  expect_false(anyNA(fills("layer")))
  expect_error(MatchDomains(out, "banksy_domain", reference = "nope"), "'nope'")
})

test_that("a slice taken from the object's images is named as the user gave it, not as batch = \"image\"", {
  obj <- two_slices()
  slice <- sub("_.*", "", colnames(obj))
  # SeuratObject 5's subset() turns validation off for its own work; setting the images it keeps
  # calls the validity check, which then warns "Not validating Seurat objects" (not isthmus's)
  few <- suppressWarnings(subset(obj, cells = c(colnames(obj)[slice == "a"], colnames(obj)[slice == "b"][1:3])))
  expect_identical(SeuratObject::Images(few), c("a", "b"))
  message <- tryCatch(FindSpatialDomains(few, method = "pca", n.domains = 7, verbose = FALSE),
                      error = conditionMessage)
  expect_match(message, "the object's 2 images: slice 'b' has 3 spots; each slice needs more than n_neighbors = 6",
               fixed = TRUE)
  expect_no_match(message, "batch")
  # a batch the user typed is still named as typed
  few$section <- sub("_.*", "", colnames(few))
  expect_error(FindSpatialDomains(few, method = "pca", n.domains = 7, batch = "section", verbose = FALSE),
               "batch = \"section\": slice 'b' has 3 spots")
})

test_that("MatchDomains with more or with fewer domains than labels: the labels' levels first, in their order", {
  obj <- two_slices()
  layer <- obj$layer
  known <- !is.na(layer)
  # the layers under other names, NA spots in domain "1"
  codes <- stats::setNames(as.character(seq_len(nlevels(layer))), rev(levels(layer)))
  domains <- unname(codes[as.character(layer)])
  domains[!known] <- "1"

  # one domain more than labels: it comes after them, named as a domain
  more <- domains
  more[1:40] <- "8"
  obj$more <- factor(more, levels = as.character(1:8))
  matched <- MatchDomains(obj, "more", reference = "layer")$more_matched
  expect_identical(levels(matched), c(levels(layer), "domain 8"))
  expect_true(all(matched[1:40] == "domain 8"))
  expect_identical(as.character(matched[known & more != "8"]), as.character(layer[known & more != "8"]))

  # two layers in one domain: the label left over stays a level, so the colours still line up
  obj$layer <- factor(layer, levels = rev(levels(layer)))  # the reference's order, not sorted
  fewer <- domains
  fewer[fewer == codes[["Layer_2"]]] <- codes[["Layer_3"]]  # Layer_3 is the larger: it keeps its name
  obj$fewer <- fewer
  out <- MatchDomains(obj, "fewer", reference = "layer", name = "named")
  expect_identical(levels(out$named), rev(levels(layer)))
  expect_false("Layer_2" %in% out$named)
  expect_true(all(out$named[which(layer == "Layer_2")] == "Layer_3"))
  expect_identical(as.character(out$named[known & layer != "Layer_2"]), as.character(layer[known & layer != "Layer_2"]))
  # the colour of each label the domains carry, as SpatialDimPlot gives it (a label no spot
  # carries has no colour in the domains' plot)
  carried <- levels(droplevels(out$named))
  fills <- function(column) {
    plot <- Seurat::SpatialDimPlot(out, group.by = column, images = "a")
    scale <- ggplot2::ggplot_build(plot)$plot$scales$get_scales("fill")
    scale$map(carried)
  }
  expect_identical(fills("named"), fills("layer"))
  expect_false(anyNA(fills("named")) || "grey50" %in% fills("named"))
})

test_that("FindSpatialDomains on a SpatialExperiment with two samples: sample_id gives the slices", {
  skip_if_not_installed("SpatialExperiment")  # not in this machine's Debian; run in the trixie root
  obj <- two_slices()
  xy <- do.call(rbind, lapply(c("a", "b"), function(s) {
    as.matrix(obj@images[[s]]@coordinates[, c("imagecol", "imagerow")])
  }))
  colnames(xy) <- c("x", "y")
  spe <- SpatialExperiment::SpatialExperiment(
    assays = list(counts = layer_data(obj, "counts")),
    colData = S4Vectors::DataFrame(layer = obj$layer, row.names = colnames(obj)),
    sample_id = sub("_.*", "", colnames(obj)), spatialCoords = xy[colnames(obj), ])
  out <- FindSpatialDomains(spe, method = "pca", n.domains = 7, n.seeds = 1, verbose = FALSE)
  expect_s4_class(out, "SpatialExperiment")
  expect_length(out$pca_domain, ncol(spe))
  expect_gt(twin_agreement(out$pca_domain), 0.9)
  expect_identical(isthmus_records(out, "pca")$params$batch_key, "sample_id")
  # the same spots, positions and slices as the Seurat object's two images: the same domains
  from_seurat <- FindSpatialDomains(obj, method = "pca", n.domains = 7, n.seeds = 1, verbose = FALSE)
  expect_identical(as.character(out$pca_domain), as.character(from_seurat$pca_domain))
  matched <- MatchDomains(out, "pca_domain", reference = "layer")
  expect_identical(levels(matched$pca_domain_matched), levels(obj$layer))
  # a sample too small for its neighbour graph is named as the user gave it, not as sample_id
  few <- spe[, c(which(spe$sample_id == "a"), which(spe$sample_id == "b")[1:3])]
  expect_error(FindSpatialDomains(few, method = "pca", n.domains = 7, verbose = FALSE),
               "the object's 2 samples (sample_id): slice 'b' has 3 spots", fixed = TRUE)
})
