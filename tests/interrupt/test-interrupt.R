# Esc / Ctrl-C during in-process training (issue 16 item 3), in a separate R session interrupted
# as a user would. `make test` runs this file on its own (make test-interrupt), in a fresh R
# session: inside the whole testthat suite's session it failed three times of three on 2026-12-01
# (the child's third call was interrupted again, "Execution halted", with nothing on stderr)
# while it passed every time alone, with the tests before it run first (on-disk, bulk,
# perturbation) and in the Seurat 5 root's whole suite; what the long session leaves to the
# child is not found yet (issue 16 note). The child inherits the environment and the signal
# state of the session that starts it.

library(testthat)
library(isthmus)

test_that("Esc / Ctrl-C stops a training in the R process, also after an earlier training", {
  # a separate R session, interrupted as a user would: its second training must stop at once and
  # its third must work (Lightning used to take SIGINT away from R after the first training)
  script <- tempfile(fileext = ".R")
  writeLines(c(
    "library(isthmus)",
    "x <- Matrix::rsparsematrix(300, 200, 0.2, rand.x = function(n) rpois(n, 5) + 1)",
    "dimnames(x) <- list(paste0('g', 1:300), paste0('c', 1:200))",
    "first <- IntegrateCells(x, method = 'scvi', max_epochs = 2, verbose = FALSE)",
    "cat('second-start\\n')",
    "second <- tryCatch(IntegrateCells(x, method = 'scvi', max_epochs = 5000, verbose = FALSE),",
    "                   interrupt = function(e) 'interrupted')",
    "cat('second:', if (identical(second, 'interrupted')) 'interrupted' else 'finished', '\\n')",
    "third <- IntegrateCells(x, method = 'scvi', max_epochs = 2, verbose = FALSE)",
    "cat('third:', nrow(third$reductions$scvi$embedding), '\\n')"), script)
  r <- processx::process$new(file.path(R.home("bin"), "Rscript"), script, stdout = "|", stderr = "|")
  on.exit(if (r$is_alive()) r$kill(), add = TRUE)
  output <- character()
  deadline <- Sys.time() + 240
  while (!any(grepl("second-start", output)) && r$is_alive() && Sys.time() < deadline) {
    r$poll_io(500)
    output <- c(output, r$read_output_lines())
  }
  expect_true(any(grepl("second-start", output)))
  Sys.sleep(10)  # well inside the second training (minutes long), also on a loaded machine
  r$interrupt()
  r$wait(240000)
  output <- c(output, r$read_all_output_lines())
  said <- paste(c(output, "stderr:", r$read_all_error_lines(), "exit status:", r$get_exit_status()), collapse = "\n")
  expect_true(any(grepl("second: interrupted", output)), info = said)
  expect_true(any(grepl("third: 200", output)), info = said)
  expect_false(r$is_alive())
})

