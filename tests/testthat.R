library(testthat)
library(isthmus)

test_check("isthmus", reporter = ProgressReporter$new(show_praise = FALSE))
