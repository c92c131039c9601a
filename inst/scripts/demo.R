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
  counts = identical(GetAssayData(back, slot = "counts"), GetAssayData(pbmc, slot = "counts")),
  data = identical(GetAssayData(back, slot = "data"), GetAssayData(pbmc, slot = "data")),
  scale.data = identical(GetAssayData(back, slot = "scale.data"), GetAssayData(pbmc, slot = "scale.data")),
  meta.data = identical(back@meta.data, pbmc@meta.data),
  idents = identical(Idents(back), Idents(pbmc)),
  variable.features = identical(VariableFeatures(back), VariableFeatures(pbmc)),
  pca = identical(Embeddings(back, "pca"), Embeddings(pbmc, "pca")),
  loadings = identical(Loadings(back, "pca"), Loadings(pbmc, "pca")),
  graphs = identical(back@graphs, pbmc@graphs)
)
print(parts)
stopifnot(all(parts))

step("scVI on the counts, batch = chemistry (100 epochs on the CPU, about a minute)")
pbmc <- RunSCVI(pbmc, batch = "batch", n_latent = 10, max_epochs = 100, seed.use = 0)
pbmc <- RunUMAP(pbmc, reduction = "pca", dims = 1:20, reduction.name = "umap_pca", reduction.key = "UMAPPCA_",
                verbose = FALSE, seed.use = 1)
pbmc <- RunUMAP(pbmc, reduction = "scvi", dims = 1:10, reduction.name = "umap_scvi", reduction.key = "UMAPSCVI_",
                verbose = FALSE, seed.use = 1)

# How well do cells of one chemistry mix with the others? Share of each cell's 20 nearest
# neighbours that come from another batch (higher = better mixed), per embedding.
nearest <- function(emb, k) {  # exact kNN; 1200 cells fit a distance matrix
  d <- as.matrix(stats::dist(emb))
  diag(d) <- Inf
  t(apply(d, 1, function(r) order(r)[seq_len(k)]))
}
mixing <- function(emb, k = 20) {
  nn <- nearest(emb, k)
  b <- pbmc$batch
  mean(b[nn] != b[row(nn)])
}
same_type <- function(emb, k = 20) {  # share of neighbours with the cell's own type (biology kept)
  nn <- nearest(emb, k)
  ct <- pbmc$cell_type
  mean(ct[nn] == ct[row(nn)])
}
scores <- data.frame(
  embedding = c("PCA (Seurat)", "scVI (isthmus)"),
  batch_mixing = c(mixing(Embeddings(pbmc, "pca")), mixing(Embeddings(pbmc, "scvi"))),
  same_cell_type = c(same_type(Embeddings(pbmc, "pca")), same_type(Embeddings(pbmc, "scvi")))
)
cat("Share of each cell's 20 nearest neighbours from another batch (batch_mixing, higher = better mixed)\n",
    "and of its own cell type (same_cell_type, higher = biology kept):\n", sep = "")
print(scores, digits = 3, row.names = FALSE)

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
