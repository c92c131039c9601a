test_that("RNA + ATAC (MOp SNARE-seq2) Seurat -> MuData -> Seurat round-trips", {
  obj <- mop_seurat()
  expect_setequal(SeuratObject::Assays(obj), c("RNA", "ATAC"))
  obj <- quietly(Seurat::NormalizeData(obj, verbose = FALSE))
  obj <- quietly(Seurat::FindVariableFeatures(obj, nfeatures = 300, verbose = FALSE))
  obj <- quietly(Seurat::ScaleData(obj, verbose = FALSE))
  obj <- quietly(Seurat::RunPCA(obj, npcs = 10, verbose = FALSE))
  mdata <- quietly(as_mudata(obj))
  expect_setequal(py_value(mdata, "list(mod.keys())"), c("rna", "atac"))
  expect_equal(py_value(mdata, "mod['atac'].n_vars"), 4000)
  expect_true("X_pca" %in% py_value(mdata, "list(obsm.keys())"))
  expect_true("PCs" %in% py_value(mdata, "list(mod['rna'].varm.keys())"))
  back <- quietly(as_seurat(mdata))  # what the route changes is reported (doubles in R, names); see the corpus
  expect_same_seurat(back, obj)
})

test_that("cells measured in only some modalities are kept, and go back out of them", {
  obj <- mop_seurat()
  mdata <- quietly(as_mudata(obj))
  reticulate::py_run_string("import mudata")
  # drop the ATAC of 30% of cells, as in partly paired data
  atac_names <- py_value(mdata, "mod['atac'].obs_names.tolist()")
  keep <- atac_names[seq(1, length(atac_names)) %% 10 >= 3]
  reticulate::py_set_attr(reticulate::import_main(), "_keep", keep)
  reticulate::py_run_string("mudata.set_options(pull_on_update=False)")
  partial <- reticulate::py_eval("mudata.MuData({'rna': _isthmus_test_obj.mod['rna'], 'atac': _isthmus_test_obj.mod['atac'][_keep].copy()})")
  expect_equal(py_value(partial, "n_obs"), 600)
  seu <- quietly(as_seurat(partial))
  expect_equal(ncol(seu), 600)
  expect_identical(sum(seu$has_ATAC), length(keep))
  atac <- layer_data(seu[["ATAC"]], "counts")
  expect_equal(sum(atac[, !seu$has_ATAC]), 0)
  again <- quietly(as_mudata(seu))
  expect_equal(py_value(again, "mod['atac'].n_obs"), length(keep))
  expect_equal(py_value(again, "mod['rna'].n_obs"), 600)
  expect_false("has_ATAC" %in% py_value(again, "obs.columns.tolist()"))
})

test_that("SCE with an altExp converts to MuData and back", {
  obj <- mop_seurat()
  sce <- quietly(Seurat::as.SingleCellExperiment(obj, assay = "RNA"))
  atac <- SingleCellExperiment::SingleCellExperiment(list(counts = layer_data(obj[["ATAC"]], "counts")))
  SingleCellExperiment::altExp(sce, "ATAC") <- atac
  mdata <- quietly(as_mudata(sce))
  expect_setequal(py_value(mdata, "list(mod.keys())"), c("rna", "atac"))
  back <- quietly(as_sce(mdata))
  expect_identical(SingleCellExperiment::altExpNames(back), "ATAC")
  expect_identical(SummarizedExperiment::assay(SingleCellExperiment::altExp(back, "ATAC"), "counts"),
                   SummarizedExperiment::assay(atac, "counts"))
  expect_identical(SummarizedExperiment::assay(back, "counts"), SummarizedExperiment::assay(sce, "counts"))
  expect_identical(as.list(SummarizedExperiment::colData(back)), as.list(SummarizedExperiment::colData(sce)))
})
