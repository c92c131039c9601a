rscript <- file.path(R.home("bin"), "Rscript")
run_r <- function(code, env = character()) {
  out <- suppressWarnings(system2(rscript, c("-e", shQuote(code)), stdout = TRUE, stderr = TRUE, env = env))
  paste(out, collapse = "\n")
}

test_that("loading the package does not start Python", {
  out <- run_r("library(isthmus); cat('started:', reticulate::py_available(initialize = FALSE))")
  expect_match(out, "started: FALSE")
})

test_that("a broken ISTHMUS_PYTHON gives an error that names it and the fix", {
  out <- run_r("library(isthmus); data('pbmc_small', package = 'SeuratObject'); tryCatch(as_anndata(pbmc_small), error = function(e) cat(conditionMessage(e)))",
               env = "ISTHMUS_PYTHON=/nonexistent/python")
  expect_match(out, "ISTHMUS_PYTHON")
  expect_match(out, "/nonexistent/python")
  expect_match(out, "install_isthmus")
})

test_that("the discovery order is ISTHMUS_PYTHON, then the option, then the virtualenv", {
  withr::local_envvar(ISTHMUS_PYTHON = "")
  withr::local_options(isthmus.python = NULL, isthmus.venv = tempfile())
  expect_null(isthmus:::.discover_python())
  fake <- withr::local_tempfile()
  file.create(fake)
  withr::local_options(isthmus.python = fake)
  expect_identical(isthmus:::.discover_python()$source, "option isthmus.python")
  withr::local_envvar(ISTHMUS_PYTHON = fake)
  expect_identical(isthmus:::.discover_python()$source, "environment variable ISTHMUS_PYTHON")
})

test_that("isthmus_doctor() reports the Python, versions and no problems here", {
  out <- utils::capture.output(res <- isthmus_doctor())
  expect_match(paste(out, collapse = "\n"), "Python in use")
  expect_true(nzchar(res$versions$numpy))
  expect_true(nzchar(res$versions$`scvi-tools`))
  expect_length(res$problems, 0)
})
