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

test_that("with reticulate >= 1.41 and no isthmus environment, the requirements are declared with py_require()", {
  skip_if(utils::packageVersion("reticulate") < "1.41", "py_require() needs reticulate 1.41 (the Seurat v5 job has it)")
  # a fresh R session: declaring requirements must happen before Python starts
  code <- paste(
    "options(isthmus.venv = tempfile()); library(isthmus);",
    "stopifnot(is.null(isthmus:::.discover_python()), isthmus:::.can_py_require());",
    "isthmus:::.declare_py_requirements(); r <- reticulate::py_require();",
    "cat('packages:', r$packages, '\\npython:', r$python_version, '\\nstarted:', reticulate::py_available(initialize = FALSE))")
  out <- run_r(code, env = c("ISTHMUS_PYTHON=", "RETICULATE_PYTHON=", "ISTHMUS_PYTHON_SOURCE=/opt/isthmus-src"))
  expect_match(out, "torch==2.13.0", fixed = TRUE)
  expect_match(out, "scvi-tools==1.4.2", fixed = TRUE)
  expect_match(out, "numpy>=1.26", fixed = TRUE)        # NumPy 2 allowed with reticulate 1.41
  expect_no_match(out, "numpy==1.26.4", fixed = TRUE)
  expect_no_match(out, "pytest", fixed = TRUE)           # test-only packages are not declared
  expect_match(out, "/opt/isthmus-src", fixed = TRUE)   # the isthmus package from the named checkout
  expect_match(out, "python: >=3.10 <3.13", fixed = TRUE)
  expect_match(out, "started: FALSE")                    # declared, not yet resolved
})

test_that("options(isthmus.py_require = FALSE) or an older reticulate keep the clear error instead", {
  withr::local_options(isthmus.py_require = FALSE)
  expect_false(isthmus:::.can_py_require())
  out <- run_r("options(isthmus.venv = tempfile(), isthmus.py_require = FALSE); library(isthmus); data('pbmc_small', package = 'SeuratObject'); tryCatch(as_anndata(pbmc_small), error = function(e) cat(conditionMessage(e)))",
               env = c("ISTHMUS_PYTHON=", "RETICULATE_PYTHON="))
  expect_match(out, "no Python environment for isthmus was found")
  expect_match(out, "install_isthmus")
})
