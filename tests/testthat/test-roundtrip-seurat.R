test_that("pbmc_small: Seurat -> AnnData -> Seurat gives every part back identical", {
  data("pbmc_small", package = "SeuratObject")
  adata <- quietly(as_anndata(pbmc_small))
  report <- conversion_report()
  # what AnnData has no place for is reported, not dropped silently
  expect_setequal(report$part, c("reduction pca jackstraw", "commands"))
  back <- as_seurat(adata)
  expect_same_seurat(back, pbmc_small)
})

test_that("the AnnData has the layout scanpy users expect", {
  data("pbmc_small", package = "SeuratObject")
  adata <- quietly(as_anndata(pbmc_small))
  expect_equal(unlist(py_value(adata, "shape")), c(80, 230))
  expect_setequal(py_value(adata, "list(layers.keys())"), "counts")
  expect_true(all(c("X_pca", "X_tsne") %in% py_value(adata, "list(obsm.keys())")))
  expect_true("RNA_snn" %in% py_value(adata, "list(obsp.keys())"))
  expect_identical(py_value(adata, "list(obs['RNA_snn_res.1'].cat.categories)"), levels(pbmc_small$RNA_snn_res.1))
  # X is the data slot, shared with R: same numbers, read-only in Python
  x <- py_value(adata, "X.toarray()")
  expect_equal(unname(x), unname(t(as.matrix(layer_data(pbmc_small, "data")))))
  expect_false(py_value(adata, "X.data.flags.writeable"))
  hv <- py_value(adata, "var['highly_variable'].to_numpy()")
  expect_setequal(rownames(pbmc_small)[hv], SeuratObject::VariableFeatures(pbmc_small))
})

test_that("counts can be X, and copy = TRUE gives Python its own writable arrays", {
  data("pbmc_small", package = "SeuratObject")
  adata <- quietly(as_anndata(pbmc_small, x_layer = "counts", copy = TRUE))
  expect_true(py_value(adata, "X.data.flags.writeable"))
  expect_equal(py_value(adata, "float(X.sum())"), sum(layer_data(pbmc_small, "counts")))
  expect_same_seurat(as_seurat(adata), pbmc_small)
})

test_that("3-batch PBMC through the Seurat workflow round-trips (factors, UMAP, graphs, misc)", {
  obj <- pbmc3_seurat()
  back <- as_seurat(quietly(as_anndata(obj)))
  expect_same_seurat(back, obj)
})

test_that("cell and feature names with odd characters survive", {
  data("pbmc_small", package = "SeuratObject")
  obj <- pbmc_small
  odd_cells <- paste0(colnames(obj), c(" spaced", "/slash", "é-accent", "comma,", "quote\"", "tab\t", "日本", "#hash"))
  obj <- SeuratObject::RenameCells(obj, new.names = odd_cells)
  counts <- layer_data(obj, "counts")
  rownames(counts)[1:4] <- c("gene.dot", "gene+plus", "gène", "GENE:colon")
  odd <- Seurat::CreateSeuratObject(counts = counts, meta.data = obj@meta.data)
  expect_true("gene.dot" %in% rownames(odd))
  back <- as_seurat(quietly(as_anndata(odd)))
  expect_identical(colnames(back), colnames(odd))
  expect_identical(rownames(back), rownames(odd))
  expect_same_seurat(back, odd)
})

test_that("scale.data of all features travels as a layer", {
  data("pbmc_small", package = "SeuratObject")
  obj <- quietly(Seurat::ScaleData(pbmc_small, features = rownames(pbmc_small), verbose = FALSE))
  adata <- quietly(as_anndata(obj))
  expect_true("scale.data" %in% py_value(adata, "list(layers.keys())"))
  expect_false("scale.data" %in% py_value(adata, "list(obsm.keys())"))
  expect_same_seurat(as_seurat(adata), obj)
})

test_that("loadings of features Seurat renamed come back when the object was read from a file", {
  # the PBMC file has genes such as RP4-633O19__A.1: Seurat spells them with '-', the AnnData written
  # back holds the original names again, and the loadings must still find their rows
  obj <- quietly(read_h5ad(extdata("pbmc_3batch_symphony.h5ad")))
  obj <- Seurat::NormalizeData(obj, verbose = FALSE)
  obj <- Seurat::FindVariableFeatures(obj, nfeatures = 1000, verbose = FALSE)
  obj <- Seurat::RunPCA(Seurat::ScaleData(obj, verbose = FALSE), npcs = 5, verbose = FALSE)
  skip_if_not(any(grepl("--", rownames(SeuratObject::Loadings(obj, "pca")), fixed = TRUE)),
              "this SeuratObject keeps '_' in feature names (Assay5): nothing renamed")
  back <- quietly(as_seurat(quietly(as_anndata(obj))))
  expect_identical(SeuratObject::Loadings(back, "pca"), SeuratObject::Loadings(obj, "pca"))
})
