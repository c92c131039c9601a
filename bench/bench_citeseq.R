# RNA + protein end to end from R on the bundled ECCITE-seq cells (500 cells, 49 ADTs; no cell
# labels): totalVI (RunTotalVI) and the classical joint route (per-modality PCA, then Seurat's
# weighted nearest neighbours), each clustered, and compared with the clusters of each modality
# alone. Without labels the question is agreement: do the joint clusters keep what RNA alone and
# protein alone each separate? ARI / NMI between clusterings (sklearn's, through the same Python).
#   Rscript bench/bench_citeseq.R [seeds]          (default 3 totalVI seeds)
# Clusters: Seurat's FindClusters (Louvain, resolution 0.8) on a 20-NN graph of each
# representation (WNN: its own wsnn graph). Prints markdown tables (BENCHMARKS.md, "RNA + protein").
suppressPackageStartupMessages({
  library(Seurat)
  library(isthmus)
})
args <- commandArgs(trailingOnly = TRUE)
n_seeds <- if (length(args)) as.integer(args[[1]]) else 3L

obj <- suppressWarnings(read_h5mu(system.file("extdata", "citeseq_eccite_500_citefuse.h5mu", package = "isthmus")))
cat(sprintf("%d cells, %d genes, %d ADTs; totalVI seeds: %d\n", ncol(obj), nrow(obj[["RNA"]]), nrow(obj[["ADT"]]),
            n_seeds))

clusters_of <- function(object, reduction, dims, name) {
  object <- FindNeighbors(object, reduction = reduction, dims = seq_len(dims), k.param = 20,
                          graph.name = paste0(name, c("_nn", "_snn")), verbose = FALSE)
  object <- FindClusters(object, graph.name = paste0(name, "_snn"), resolution = 0.8, random.seed = 0, verbose = FALSE)
  as.character(object$seurat_clusters)
}

timed <- function(expr) {
  started <- proc.time()[["elapsed"]]
  value <- force(expr)
  list(value = value, seconds = proc.time()[["elapsed"]] - started)
}

base <- timed(IntegrateModalities(obj, method = "pca", protein.assay = "ADT", n_comps = 20, verbose = FALSE))
obj <- base$value
clusters <- list(
  "RNA alone (PCA)" = clusters_of(obj, "rna_pca", 20, "rna"),
  "protein alone (CLR PCA)" = clusters_of(obj, "protein_pca", 20, "protein")
)
wnn <- timed(suppressWarnings(FindMultiModalNeighbors(obj, reduction.list = list("rna_pca", "protein_pca"),
                                                      dims.list = list(1:20, 1:20), verbose = FALSE)))
wnn_obj <- FindClusters(wnn$value, graph.name = "wsnn", resolution = 0.8, random.seed = 0, verbose = FALSE)
clusters[["WNN (Seurat)"]] <- as.character(wnn_obj$seurat_clusters)
seconds <- c("RNA alone (PCA)" = base$seconds, "protein alone (CLR PCA)" = base$seconds,
             "WNN (Seurat)" = base$seconds + wnn$seconds)
for (seed in seq_len(n_seeds) - 1L) {
  fit <- timed(RunTotalVI(obj, seed.use = seed, verbose = FALSE))
  name <- sprintf("totalVI seed %d", seed)
  clusters[[name]] <- clusters_of(fit$value, "totalvi", 20, "totalvi")
  seconds[[name]] <- fit$seconds
  cat(sprintf("  %s: %.0f s\n", name, fit$seconds))
}

metrics <- reticulate::import("sklearn.metrics") # after isthmus has bound reticulate to its Python
agreement <- function(a, b) c(ARI = metrics$adjusted_rand_score(a, b), NMI = metrics$normalized_mutual_info_score(a, b))
rows <- lapply(names(clusters), function(method) {
  rna <- agreement(clusters[[method]], clusters[["RNA alone (PCA)"]])
  protein <- agreement(clusters[[method]], clusters[["protein alone (CLR PCA)"]])
  wnn_agreement <- agreement(clusters[[method]], clusters[["WNN (Seurat)"]])
  data.frame(method = method, clusters = length(unique(clusters[[method]])),
             `ARI vs RNA` = rna[["ARI"]], `NMI vs RNA` = rna[["NMI"]],
             `ARI vs protein` = protein[["ARI"]], `NMI vs protein` = protein[["NMI"]],
             `ARI vs WNN` = wnn_agreement[["ARI"]], seconds = seconds[[method]], check.names = FALSE)
})
table <- do.call(rbind, rows)
cat("\n| ", paste(names(table), collapse = " | "), " |\n|", strrep("---|", ncol(table)), "\n", sep = "")
for (i in seq_len(nrow(table))) {
  cells <- vapply(table[i, ], function(v) if (is.numeric(v) && v != round(v)) sprintf("%.3f", v) else as.character(v), "")
  cat("| ", paste(cells, collapse = " | "), " |\n", sep = "")
}
totalvi <- grep("^totalVI", names(clusters), value = TRUE)
if (length(totalvi) > 1) {
  pairs <- utils::combn(totalvi, 2)
  between <- apply(pairs, 2, function(p) metrics$adjusted_rand_score(clusters[[p[1]]], clusters[[p[2]]]))
  cat(sprintf("\ntotalVI clusters between seeds: ARI %.3f (min %.3f)\n", mean(between), min(between)))
}
