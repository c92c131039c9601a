# PredictPerturbation() and PerturbationScores() from R, for real (R -> Python -> R).

test_that("PredictPerturbation: a Seurat user predicts the CD14+ monocytes' response and gets scores", {
  obj <- kang_seurat()
  before <- obj
  held <- obj$cell_type == "CD14+ Monocytes"
  predicted <- PredictPerturbation(obj, predict = "CD14+ Monocytes", method = "linear")
  expect_s4_class(predicted, "Seurat")
  expect_equal(ncol(predicted), sum(held & obj$condition == "ctrl"))
  expect_setequal(predicted$source_cell, colnames(obj)[held & obj$condition == "ctrl"])
  expect_true(all(predicted$predicted) && all(predicted$condition == "stim") &&
              all(predicted$cell_type == "CD14+ Monocytes"))
  values <- layer_data(predicted, "data")
  expect_true(min(values) >= 0 && max(values) < 15)
  record <- isthmus_records(predicted, "predict_perturbation")
  expect_identical(record$method, "linear")
  expect_identical(record$params$control, "ctrl")
  expect_s3_class(record$scores, "data.frame")
  expect_true(all(c("r2_mean", "pearson_change_top", "energy_distance", "classifier_auc") %in% record$scores$metric))
  expect_identical(obj, before)
  # the same scores from the verb on the objects
  again <- PerturbationScores(obj, predicted)
  expect_equal(again$value, record$scores$value, tolerance = 1e-6)
  # the held-out type's stimulated cells never reach the fit
  without <- obj[, !(held & obj$condition == "stim")]
  alone <- PredictPerturbation(without, predict = "CD14+ Monocytes", method = "linear")
  expect_equal(as.matrix(layer_data(alone, "data")), as.matrix(values), tolerance = 1e-6)
  expect_null(isthmus_records(alone, "predict_perturbation")$scores)
})

test_that("PredictPerturbation: scGen trains, on an SCE too, and names R's arguments in its errors", {
  obj <- kang_seurat(step = 4)
  sce <- SingleCellExperiment::SingleCellExperiment(assays = list(counts = layer_data(obj, "counts")),
                                                    colData = S4Vectors::DataFrame(obj[[]]))
  predicted <- PredictPerturbation(sce, predict = "B cells", max_epochs = 1, n_latent = 4, n_hidden = 16,
                                   verbose = FALSE)
  expect_s4_class(predicted, "SingleCellExperiment")
  expect_true("logcounts" %in% SummarizedExperiment::assayNames(predicted))
  record <- isthmus_records(predicted, "predict_perturbation")
  expect_identical(record$method, "scgen")
  expect_true(dir.exists(record$model_dir))
  expect_error(PredictPerturbation(obj, predict = "Platelets", method = "linear"),
               "no control cells of predict \"Platelets\"")
  expect_error(PredictPerturbation(obj, predict = "B cells", cell.type = "nope", method = "linear"),
               "cell type column 'nope'")
  expect_error(PredictPerturbation(obj, predict = "B cells", perturbed = "ifn", method = "linear"),
               "perturbed \"ifn\" is not a value")
  expect_error(PredictPerturbation(obj, predict = "B cells", seed.use = "a"), "seed.use must be a whole number")
  # a default method for a count matrix and its meta.data
  out <- PredictPerturbation(layer_data(obj, "counts"), predict = "B cells", method = "no_change",
                             meta.data = obj[[]])
  expect_named(out, c("data", "meta.data", "records"))
  expect_equal(ncol(out$data), sum(obj$cell_type == "B cells" & obj$condition == "ctrl"))
})

test_that("CompareMethods(task = 'perturbation') scores the methods per held-out type, with a plot", {
  obj <- kang_seurat(step = 3)
  png <- tempfile(fileext = ".png")
  table <- CompareMethods(obj, task = "perturbation", methods = c("linear", "no_change"), labels = "cell_type",
                          predict = c("B cells", "CD14+ Monocytes"), png = png)
  expect_setequal(unique(table$method), c("linear", "no_change"))
  expect_setequal(setdiff(unique(table$category), "Time"),
                  c("Perturbation (B cells)", "Perturbation (CD14+ Monocytes)"))
  change <- table[table$metric == "r2_change_top" & table$category == "Perturbation (B cells)", ]
  expect_gt(change$value[change$method == "linear"], change$value[change$method == "no_change"])
  expect_true(file.exists(attr(table, "png")))
})
