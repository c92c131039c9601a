# Seurat v5 (Assay5, split layers). SeuratObject 5 is not installable on the CI machine's Debian
# release: these run where it is (R 4.5 / Seurat 5 in a Debian trixie root, see issue "Seurat v5").
skip_if_not_v5 <- function() {
  skip_if(utils::packageVersion("SeuratObject") < "5.0.0", "needs SeuratObject 5 (Assay5 layers)")
}

pbmc3_split <- function() {
  x <- read_counts("pbmc_3batch_symphony.h5ad")
  obj <- Seurat::CreateSeuratObject(counts = x$counts, meta.data = x$meta)
  obj[["RNA"]] <- split(obj[["RNA"]], f = obj$batch)
  quietly(Seurat::NormalizeData(obj, verbose = FALSE))
}

test_that("Seurat v5 split layers: one matrix plus the batch in AnnData, the same layers back", {
  skip_if_not_v5()
  obj <- pbmc3_split()
  expect_setequal(SeuratObject::Layers(obj[["RNA"]]),
                  c(paste0("counts.", c("3pv1", "3pv2", "5p")), paste0("data.", c("3pv1", "3pv2", "5p"))))
  adata <- quietly(as_anndata(obj))
  expect_equal(unlist(py_value(adata, "shape")), c(ncol(obj), nrow(obj)))
  expect_equal(py_value(adata, "float(layers['counts'].sum())"), sum(SeuratObject::LayerData(obj, layer = "counts.3pv1")) +
                 sum(SeuratObject::LayerData(obj, layer = "counts.3pv2")) + sum(SeuratObject::LayerData(obj, layer = "counts.5p")))
  back <- as_seurat(adata)
  expect_same_seurat(back, obj)
})

test_that("RunSCVI takes the counts of all split layers", {
  skip_if_not_v5()
  obj <- pbmc3_split()
  out <- RunSCVI(obj, batch = "batch", n_latent = 4, max_epochs = 1, verbose = FALSE)
  expect_equal(dim(SeuratObject::Embeddings(out, "scvi")), c(ncol(obj), 4))
  expect_identical(rownames(SeuratObject::Embeddings(out, "scvi")), colnames(obj))
})

# The Seurat v5 integration workflow up to IntegrateLayers(): split, normalise, variable
# features, scale, PCA.
pbmc3_split_workflow <- function() {
  obj <- pbmc3_split()
  quietly({
    obj <- Seurat::FindVariableFeatures(obj, nfeatures = 800, verbose = FALSE)
    obj <- Seurat::ScaleData(obj, verbose = FALSE)
    obj <- Seurat::RunPCA(obj, npcs = 10, verbose = FALSE)
  })
  obj
}

test_that("IntegrateLayers() with IsthmusSCVIIntegration: the reduction, the batches from the split layers, covariates, the model kept", {
  skip_if_not_v5()
  obj <- pbmc3_split_workflow()
  model_dir <- file.path(tempfile(), "scvi-model")
  out <- Seurat::IntegrateLayers(obj, method = IsthmusSCVIIntegration, new.reduction = "integrated.scvi",
                                 meta.data = obj[[]], continuous.covariates = "nCount_RNA", n_latent = 6,
                                 max_epochs = 2, model.dir = model_dir, verbose = FALSE)
  emb <- SeuratObject::Embeddings(out, "integrated.scvi")
  expect_equal(dim(emb), c(ncol(obj), 6))
  expect_identical(rownames(emb), colnames(obj))
  expect_true(all(is.finite(emb)))
  expect_identical(SeuratObject::Key(out[["integrated.scvi"]]), "integratedscvi_")
  record <- SeuratObject::Misc(out[["integrated.scvi"]], "isthmus")
  expect_identical(record$method, "scvi")
  expect_identical(record$params$batch_key, "split_layer")
  expect_identical(unlist(record$params$continuous_covariate_keys), "nCount_RNA")
  expect_identical(normalizePath(record$model_dir), normalizePath(model_dir))
  expect_true(file.exists(file.path(model_dir, "model.pt")))
  # the genes the model saw are the variable features IntegrateLayers() handed over
  saved <- reticulate::import("torch")$load(file.path(model_dir, "model.pt"), weights_only = FALSE)
  expect_setequal(as.character(saved$var_names), SeuratObject::VariableFeatures(obj))
  # the layers themselves are untouched
  expect_identical(SeuratObject::Layers(out[["RNA"]]), SeuratObject::Layers(obj[["RNA"]]))
  # downstream Seurat steps take the reduction like any other
  out <- quietly(Seurat::FindNeighbors(out, reduction = "integrated.scvi", dims = 1:6, verbose = FALSE))
  expect_true("RNA_snn" %in% SeuratObject::Graphs(out))
  # the integrated object converts to AnnData and back with nothing lost, split layers included
  back <- as_seurat(quietly(as_anndata(out)))
  expect_same_seurat(back, out)
  expect_identical(SeuratObject::Embeddings(back, "integrated.scvi"), emb)
})

test_that("IntegrateLayers() with IsthmusSCANVIIntegration uses the labels (NA = unlabelled)", {
  skip_if_not_v5()
  obj <- pbmc3_split_workflow()
  meta <- obj[[]]
  meta$cell_type[seq(1, nrow(meta), by = 3)] <- NA
  # the data have 2 HSCs: too few to learn, so the core treats them as unlabelled and says so
  expect_warning(out <- Seurat::IntegrateLayers(obj, method = IsthmusSCANVIIntegration, meta.data = meta,
                                                labels = "cell_type", n_latent = 5, max_epochs = 2, scanvi_epochs = 1,
                                                verbose = FALSE),
                 "labels with fewer than 3 cells are treated as unlabelled: HSC", fixed = TRUE)
  expect_equal(dim(SeuratObject::Embeddings(out, "integrated.scanvi")), c(ncol(obj), 5))
  record <- SeuratObject::Misc(out[["integrated.scanvi"]], "isthmus")
  expect_identical(record$params$labels_key, "cell_type")
  expect_true(dir.exists(record$model_dir))
})

test_that("IntegrateLayers() with isthmus's methods refuses what it cannot use, and the object stays as it was", {
  skip_if_not_v5()
  obj <- pbmc3_split_workflow()
  expect_error(Seurat::IntegrateLayers(obj, method = IsthmusSCANVIIntegration), "scANVI needs labels")
  expect_error(Seurat::IntegrateLayers(obj, method = IsthmusSCVIIntegration, categorical.covariates = "cell_type"),
               "meta.data = object\\[\\[\\]\\]")
  expect_error(Seurat::IntegrateLayers(obj, method = IsthmusSCVIIntegration, meta.data = obj[[]],
                                       categorical.covariates = "donor"), "column 'donor' is not in the cell metadata")
  joined <- obj
  joined[["RNA"]] <- SeuratObject::JoinLayers(joined[["RNA"]])
  expect_error(Seurat::IntegrateLayers(joined, method = IsthmusSCVIIntegration, features = rownames(obj)[1:100]),
               "not split into batches")
  # normalised values are not counts: refused by the model's own check
  fake <- obj
  for (l in grep("^counts", SeuratObject::Layers(fake[["RNA"]]), value = TRUE)) {
    SeuratObject::LayerData(fake, layer = l) <- SeuratObject::LayerData(fake, layer = sub("counts", "data", l))
  }
  before <- fake
  expect_error(Seurat::IntegrateLayers(fake, method = IsthmusSCVIIntegration, max_epochs = 1, verbose = FALSE),
               "integer|counts")
  expect_identical(fake, before)
})
