# Seurat v5's IntegrateLayers(): isthmus's scVI / scANVI methods beside Seurat's own CCA and RPCA
# (and Harmony where the harmony package is installed), on the 3-chemistry PBMC data split into
# layers by batch, the Seurat v5 integration workflow. Scored with scib-metrics (the same scoring
# as CompareMethods()). Needs Seurat 5: run it in the trixie root of the Seurat v5 job:
#   tools/seurat5-root.sh R 'source("bench/bench_integrate_layers.R")'
# Prints a markdown table (BENCHMARKS.md, "Seurat v5 IntegrateLayers").
suppressPackageStartupMessages({
  library(Seurat)
  library(isthmus)
})
stopifnot(packageVersion("SeuratObject") >= "5.0.0")
seed <- 42

obj <- suppressWarnings(read_h5ad(system.file("extdata", "pbmc_3batch_symphony.h5ad", package = "isthmus")))
counts <- SeuratObject::LayerData(obj, layer = "counts")
obj <- CreateSeuratObject(counts = counts, meta.data = obj[[]])
obj[["RNA"]] <- split(obj[["RNA"]], f = obj$batch)
obj <- NormalizeData(obj, verbose = FALSE)
obj <- FindVariableFeatures(obj, nfeatures = 2000, verbose = FALSE)
obj <- ScaleData(obj, verbose = FALSE)
obj <- RunPCA(obj, npcs = 30, verbose = FALSE, seed.use = seed)
cat(sprintf("%d cells, %d genes, batches: %s\n", ncol(obj), nrow(obj), paste(unique(obj$batch), collapse = ", ")))

methods <- list(
  cca = list(method = CCAIntegration),
  rpca = list(method = RPCAIntegration),
  scvi = list(method = IsthmusSCVIIntegration, meta.data = obj[[]], seed.use = seed),
  scanvi = list(method = IsthmusSCANVIIntegration, meta.data = obj[[]], labels = "cell_type", seed.use = seed)
)
if (requireNamespace("harmony", quietly = TRUE)) methods$harmony <- list(method = HarmonyIntegration)
seconds <- c()
for (name in names(methods)) {
  args <- c(list(object = obj, new.reduction = paste0("integrated.", name), verbose = FALSE), methods[[name]])
  started <- Sys.time()
  obj <- suppressWarnings(do.call(IntegrateLayers, args))
  seconds[name] <- as.numeric(difftime(Sys.time(), started, units = "secs"))
  cat(sprintf("%-7s %.1f s\n", name, seconds[name]))
}

# score every reduction (and the unintegrated PCA) with scib-metrics
adata <- suppressWarnings(as_anndata(obj))
keys <- c("X_pca", paste0("X_integrated.", names(methods)))
compare <- reticulate::import("isthmus.tl._compare")
scores <- compare$scib_scores(adata, embeddings = keys, batch_key = "batch", labels_key = "cell_type",
                              baseline = "X_pca")
scores <- reticulate::py_to_r(scores)
aggregate <- scores[scores$category == "Aggregate score", ]
table <- reshape(aggregate[, c("method", "metric", "value")], idvar = "method", timevar = "metric", direction = "wide")
names(table) <- sub("^value\\.", "", names(table))
table$method <- sub("^integrated\\.", "", table$method)
table$seconds <- ifelse(table$method %in% names(seconds), round(seconds[table$method], 1), NA)
cat("\n| method | Bio conservation | Batch correction | Total | seconds |\n|---|---|---|---|---|\n")
for (k in seq_len(nrow(table))) {
  cat(sprintf("| %s | %.3f | %.3f | %.3f | %s |\n", table$method[k], table[["Bio conservation"]][k],
              table[["Batch correction"]][k], table$Total[k], format(table$seconds[k])))
}
cat(sprintf("\n%s, Seurat %s, SeuratObject %s; scVI/scANVI: scvi-tools defaults (epochs by data size), seed %d\n",
            R.version.string, packageVersion("Seurat"), packageVersion("SeuratObject"), seed))
