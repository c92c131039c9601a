# Random meta.data: every column type, NAs, unused and reordered factor levels; zero differences.
random_column <- function(n, type) {
  na <- stats::runif(n) < stats::runif(1, 0, 0.3)
  switch(type,
    factor = {
      levels <- sample(c(paste0("lvl", 1:6), "", "NA", "a b", "ü"), sample(1:8, 1))
      x <- factor(sample(levels, n, TRUE), levels = c(sample(levels), "unused_level"))
      x[na] <- NA
      x
    },
    ordered = factor(sample(c("low", "mid", "high"), n, TRUE), levels = c("low", "mid", "high", "extreme"), ordered = TRUE),
    logical = { x <- stats::runif(n) > 0.5; x[na] <- NA; x },
    integer = { x <- sample(c(-2147483647L, 2147483647L, -5:5), n, TRUE); x[na] <- NA; x },
    double = { x <- stats::rnorm(n) * 10^sample(-300:300, 1); x[na] <- NA; x[1] <- Inf; x },
    character = { x <- sample(c("a", "", "NA", "é", "x y", "quote\""), n, TRUE); x[na] <- NA; x }
  )
}

test_that("randomised meta.data round-trips with zero differences (Seurat and SCE)", {
  data("pbmc_small", package = "SeuratObject")
  base <- Seurat::CreateSeuratObject(counts = layer_data(pbmc_small, "counts"))
  set.seed(20261121)
  types <- c("factor", "ordered", "logical", "integer", "double", "character")
  for (case in 1:25) {
    n_cols <- sample(1:8, 1)
    meta <- data.frame(row.names = colnames(base))
    for (k in seq_len(n_cols)) meta[[paste0("col", k, "_", sample(c("x", ".y", " z", "w-1"), 1))]] <- random_column(ncol(base), sample(types, 1))
    obj <- base
    obj@meta.data <- meta
    back <- as_seurat(quietly(as_anndata(obj)))
    expect_identical(back@meta.data, obj@meta.data, label = paste("case", case))
    sce <- SingleCellExperiment::SingleCellExperiment(
      assays = list(counts = layer_data(base, "counts")),
      colData = S4Vectors::DataFrame(meta, check.names = FALSE))
    back_sce <- as_sce(as_anndata(sce))
    expect_identical(as.list(SummarizedExperiment::colData(back_sce)), as.list(S4Vectors::DataFrame(meta, check.names = FALSE)), label = paste("SCE case", case))
  }
})
