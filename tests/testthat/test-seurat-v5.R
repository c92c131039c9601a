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
