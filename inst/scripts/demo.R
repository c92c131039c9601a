# isthmus demo: a Seurat object from bundled real data (human PBMC, 3 10x chemistries) goes to
# Python and back: the bridge (lossless, zero-copy), then scVI's batch-corrected latent space
# next to Seurat's PCA, plotted for a person to look at.
#   Rscript inst/scripts/demo.R [output directory]     (`make demo` runs it)
suppressPackageStartupMessages({
  library(isthmus)
  library(Seurat)
})
out_dir <- commandArgs(trailingOnly = TRUE)[1]
if (is.na(out_dir)) out_dir <- file.path("build", "demo")
dir.create(out_dir, recursive = TRUE, showWarnings = FALSE)
step <- function(...) cat("\n==>", ..., "\n")

step("Reading the bundled PBMC data (1200 cells x 1767 genes, 3 chemistries) into Seurat")
file <- system.file("extdata", "pbmc_3batch_symphony.h5ad", package = "isthmus", mustWork = TRUE)
pbmc <- read_h5ad(file)
pbmc$batch <- factor(pbmc$batch)
pbmc$cell_type <- factor(pbmc$cell_type)
pbmc <- NormalizeData(pbmc, verbose = FALSE)
pbmc <- FindVariableFeatures(pbmc, nfeatures = 1000, verbose = FALSE)
pbmc <- ScaleData(pbmc, verbose = FALSE)
pbmc <- RunPCA(pbmc, npcs = 20, verbose = FALSE)
pbmc <- FindNeighbors(pbmc, dims = 1:20, verbose = FALSE)
pbmc <- FindClusters(pbmc, resolution = 0.5, verbose = FALSE)
print(pbmc)

step("Seurat -> AnnData (counts and data shared with Python, not copied)")
adata <- as_anndata(pbmc)
print(adata)
print(conversion_report())

step("AnnData -> Seurat: is every part back as it was?")
back <- as_seurat(adata)
parts <- c(
  counts = identical(GetAssayData(back, "counts"), GetAssayData(pbmc, "counts")),
  data = identical(GetAssayData(back, "data"), GetAssayData(pbmc, "data")),
  scale.data = identical(GetAssayData(back, "scale.data"), GetAssayData(pbmc, "scale.data")),
  meta.data = identical(back@meta.data, pbmc@meta.data),
  idents = identical(Idents(back), Idents(pbmc)),
  variable.features = identical(VariableFeatures(back), VariableFeatures(pbmc)),
  pca = identical(Embeddings(back, "pca"), Embeddings(pbmc, "pca")),
  loadings = identical(Loadings(back, "pca"), Loadings(pbmc, "pca")),
  graphs = identical(back@graphs, pbmc@graphs)
)
print(parts)
stopifnot(all(parts))

step("scVI on the counts, batch = chemistry (20 epochs on the CPU)")
pbmc <- RunSCVI(pbmc, batch = "batch", n_latent = 10, max_epochs = 20, seed.use = 0)
pbmc <- RunUMAP(pbmc, reduction = "pca", dims = 1:20, reduction.name = "umap_pca", verbose = FALSE, seed.use = 1)
pbmc <- RunUMAP(pbmc, reduction = "scvi", dims = 1:10, reduction.name = "umap_scvi", verbose = FALSE, seed.use = 1)

# How well do cells of one chemistry mix with the others? Share of each cell's 20 nearest
# neighbours that come from another batch (higher = better mixed), per embedding.
mixing <- function(emb) {
  nn <- RANN_free_knn(emb, 20)
  b <- pbmc$batch
  mean(rowMeans(matrix(b[nn] != rep(b, 20), ncol = 20)))
}
RANN_free_knn <- function(emb, k) {
  d <- as.matrix(stats::dist(emb))
  diag(d) <- Inf
  t(apply(d, 1, function(r) order(r)[seq_len(k)]))
}
cat(sprintf("cross-batch share of 20 nearest neighbours: PCA %.3f, scVI %.3f\n",
            mixing(Embeddings(pbmc, "pca")), mixing(Embeddings(pbmc, "scvi"))))

png_file <- file.path(out_dir, "isthmus-demo.png")
grDevices::png(png_file, width = 1400, height = 1200, res = 110)
print(patchwork::wrap_plots(
  DimPlot(pbmc, reduction = "umap_pca", group.by = "batch") + ggplot2::ggtitle("PCA: batch"),
  DimPlot(pbmc, reduction = "umap_scvi", group.by = "batch") + ggplot2::ggtitle("scVI: batch"),
  DimPlot(pbmc, reduction = "umap_pca", group.by = "cell_type", label = TRUE) + ggplot2::ggtitle("PCA: cell type"),
  DimPlot(pbmc, reduction = "umap_scvi", group.by = "cell_type", label = TRUE) + ggplot2::ggtitle("scVI: cell type"),
  ncol = 2
))
invisible(grDevices::dev.off())
step("Wrote", png_file)
