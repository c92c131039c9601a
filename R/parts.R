# "Parts": the plain lists that cross to Python (python/isthmus/io/_parts.py documents them).
# This file encodes R values into parts and decodes parts back into R values; it knows
# nothing of Seurat or SingleCellExperiment (convert-*.R map those onto parts).
# Character vectors cross as they are, never as.list(): reticulate converts a whole vector in one
# C++ loop (a length-1 vector arrives as a str, which the Python side accepts), while a list is
# converted element by element, ten times slower for 100k cell names.

# ---- the conversion report --------------------------------------------------------------------

.new_report <- function() {
  env <- new.env(parent = emptyenv())
  env$rows <- data.frame(part = character(), status = character(), detail = character(),
                         stringsAsFactors = FALSE)
  env
}

.report_add <- function(report, part, status, detail) {
  report$rows[nrow(report$rows) + 1L, ] <- list(part, status, detail)
  invisible(report)
}
.report_dropped <- function(report, part, why) .report_add(report, part, "not carried", why)
.report_changed <- function(report, part, how) .report_add(report, part, "changed", how)

.report_merge_py <- function(report, py_report) {
  if (length(py_report$part)) {
    for (k in seq_along(py_report$part)) {
      .report_add(report, py_report$part[[k]], py_report$status[[k]], py_report$detail[[k]])
    }
  }
  invisible(report)
}

# Attach the report to the result and warn once, listing every part.
.finish_report <- function(result, report, direction) {
  force(result)  # callers pass the conversion itself, which adds to the report as it runs
  rows <- report$rows
  if (nrow(rows)) {
    lines <- sprintf("- %s: %s (%s)", rows$part, rows$status, rows$detail)
    warning("isthmus ", direction, ": ", nrow(rows), " part(s) not carried as they were ",
            "(see conversion_report()):\n", paste(lines, collapse = "\n"), call. = FALSE)
  }
  .set_report(result, rows)
}

.set_report <- function(result, rows) {
  if (inherits(result, "python.builtin.object")) {
    # a Python object cannot carry an R attribute safely; keep the last report in the session
    .isthmus$last_report <- rows
    return(result)
  }
  attr(result, "isthmus_report") <- rows
  .isthmus$last_report <- rows
  result
}

#' What a conversion could not carry
#'
#' Every conversion lists the parts it could not carry, or carried in a changed form, as a
#' warning and here.
#'
#' @param x A converted object; if missing, the report of the last conversion in this session.
#' @return A data frame with columns `part`, `status` and `detail` (no rows: nothing was lost).
#' @export
conversion_report <- function(x) {
  rows <- if (missing(x)) .isthmus$last_report else attr(x, "isthmus_report")
  rows %||% data.frame(part = character(), status = character(), detail = character())
}

# ---- matrices ---------------------------------------------------------------------------------

.is_dense_numeric <- function(m) is.matrix(m) && typeof(m) %in% c("double", "integer", "logical")

# An R matrix as a spec Python views without a copy. orientation = "transpose" gives Python the
# transpose (features x cells in R -> cells x features), "same" gives it the matrix as it is.
.matrix_to_py <- function(m, what, orientation = "transpose", sparse_only = FALSE) {
  if (inherits(m, "dgCMatrix")) {
    return(list(kind = "dgc", x = .share_vector(m@x), i = .share_vector(m@i), p = .share_vector(m@p),
                nrow = nrow(m), ncol = ncol(m), orientation = orientation))
  }
  if (inherits(m, "sparseMatrix")) {
    # other sparse classes (triplet, row-compressed, symmetric, pattern, logical): one conversion
    m <- methods::as(methods::as(methods::as(m, "CsparseMatrix"), "generalMatrix"), "dMatrix")
    return(.matrix_to_py(m, what, orientation))
  }
  if (.is_dense_numeric(m)) {
    if (sparse_only) {
      stop("isthmus: ", what, " is a dense matrix where a sparse one is expected (isthmus never ",
           "densifies or sparsifies data silently). Convert it first, e.g. ",
           "`as(x, \"CsparseMatrix\")`, and call again.", call. = FALSE)
    }
    return(list(kind = "dense", type = typeof(m), x = .share_vector(m), nrow = nrow(m), ncol = ncol(m),
                orientation = orientation))
  }
  stop("isthmus: ", what, " is a ", class(m)[1], ", not a numeric matrix.", call. = FALSE)
}

.matrix_from_py <- function(spec) {
  if (!is.null(spec$`__isthmus_frame__`)) return(.frame_from_py(spec$`__isthmus_frame__`))  # e.g. an obsm DataFrame
  if (identical(spec$kind, "dgc")) {
    return(methods::new("dgCMatrix", x = .fetch_vector(spec$x), i = .fetch_vector(spec$i),
                        p = .fetch_vector(spec$p), Dim = c(as.integer(spec$nrow), as.integer(spec$ncol))))
  }
  values <- .fetch_vector(spec$x)
  if (identical(spec$type, "logical")) values <- as.logical(values)
  matrix(values, nrow = spec$nrow, ncol = spec$ncol)
}

# ---- data frames ------------------------------------------------------------------------------

.column_to_py <- function(col, where, report) {
  if (is.factor(col)) {
    if (anyNA(levels(col))) {
      # pandas categories cannot include a missing value: its cells become missing values
      .report_changed(report, where, "the factor level NA became missing values (pandas has no NA category)")
      col <- factor(col, levels = levels(col)[!is.na(levels(col))], ordered = is.ordered(col))
    }
    return(list(type = "factor", codes = .share_vector(col), levels = levels(col),
                ordered = is.ordered(col)))
  }
  if (is.character(col)) {
    na <- which(is.na(col))
    values <- col
    values[na] <- ""
    return(list(type = "character", values = values, na = .share_vector(as.integer(na))))
  }
  if (is.logical(col) || is.integer(col) || is.double(col)) {
    if (!is.null(attr(col, "class")) || !is.null(dim(col))) {
      .report_changed(report, where, paste0("a ", class(col)[1], " column was carried as plain ", typeof(col)))
    }
    return(list(type = typeof(col), values = .share_vector(col)))
  }
  NULL
}

.frame_to_py <- function(df, row_names, where, report) {
  dup <- unique(names(df)[duplicated(names(df))])
  if (length(dup)) {
    stop("isthmus: ", where, " has duplicated column names (", paste(utils::head(dup, 5), collapse = ", "),
         "); AnnData needs unique ones. Rename them (e.g. names(x) <- make.unique(names(x))) and call again.",
         call. = FALSE)
  }
  keep <- list()
  kept_names <- character()
  for (name in names(df)) {
    col <- .column_to_py(df[[name]], paste0(where, "$", name), report)
    if (is.null(col)) {
      .report_dropped(report, paste0(where, "$", name), paste0("columns of class ", class(df[[name]])[1], " are not carried"))
      next
    }
    keep[[length(keep) + 1L]] <- col
    kept_names <- c(kept_names, name)
  }
  list(names = kept_names, row_names = row_names, columns = keep)
}

# A frame with row names only (per-modality obs in a MuData, whose cell metadata is global).
.empty_frame <- function(cells) list(names = character(), row_names = cells, columns = list())

.as_chr <- function(x) if (is.null(x)) character() else as.character(unlist(x, use.names = FALSE))

.column_from_py <- function(spec) {
  switch(spec$type,
    factor = {
      codes <- as.integer(.fetch_vector(spec$codes))
      structure(codes, levels = .as_chr(spec$levels),
                class = if (isTRUE(spec$ordered)) c("ordered", "factor") else "factor")
    },
    logical = as.logical(as.integer(.fetch_vector(spec$values))),
    integer = as.integer(.fetch_vector(spec$values)),
    double = {
      x <- as.double(.fetch_vector(spec$values))
      x[is.nan(x)] <- NA_real_  # Python has one missing value for doubles: NaN
      x
    },
    character = {
      x <- .as_chr(spec$values)
      na <- as.integer(.fetch_vector(spec$na))
      x[na] <- NA_character_
      x
    },
    stop("isthmus: internal: unknown column type ", spec$type, call. = FALSE)
  )
}

# anndata writes string columns to files as categoricals; these two keep R's character columns.
.character_columns <- function(df) {
  names(df)[vapply(names(df), function(n) is.character(df[[n]]), logical(1))]
}

.restore_character <- function(df, columns) {
  for (name in intersect(.as_chr(columns), names(df))) {
    if (is.factor(df[[name]])) df[[name]] <- as.character(df[[name]])
  }
  df
}

.frame_from_py <- function(spec) {
  names <- .as_chr(spec$names)
  row_names <- .as_chr(spec$row_names)
  cols <- lapply(spec$columns, .column_from_py)
  df <- if (length(cols)) {
    structure(cols, names = names, class = "data.frame", row.names = row_names)
  } else {
    data.frame(row.names = row_names)
  }
  if (length(row_names) == 0) attr(df, "row.names") <- integer()
  df
}

# ---- unstructured values (misc, uns, metadata) ------------------------------------------------

.uns_to_py <- function(x, where, report) {
  if (is.null(x)) {
    .report_dropped(report, where, "NULL has no AnnData counterpart")
    return(NULL)
  }
  if (is.data.frame(x)) return(list(`__isthmus_frame__` = .frame_to_py(x, rownames(x), where, report)))
  if (inherits(x, "sparseMatrix")) {
    m <- methods::as(methods::as(x, "CsparseMatrix"), "dMatrix")
    return(list(`__isthmus_matrix__` = .matrix_to_py(m, where, orientation = "same")))
  }
  if (is.factor(x) || (is.atomic(x) && is.null(dim(x)) && is.null(names(x)) && length(x) > 1 && anyNA(x) &&
                        typeof(x) %in% c("logical", "integer", "character"))) {
    # a factor (pandas Categorical) or a vector with NA (a nullable array), as a column is
    return(list(`__isthmus_column__` = .column_to_py(x, where, report)))
  }
  if (is.list(x) && is.null(attr(x, "class"))) {
    out <- list()
    nms <- names(x)
    if (is.null(nms)) {  # an unnamed list, empty ones included, is a Python list
      return(lapply(seq_along(x), function(k) .uns_to_py(x[[k]], paste0(where, "[[", k, "]]"), report)))
    }
    for (k in seq_along(x)) {
      value <- .uns_to_py(x[[k]], paste0(where, "$", nms[[k]]), report)
      if (!is.null(value)) out[[nms[[k]]]] <- value
    }
    return(if (length(out)) out else structure(list(), names = character()))
  }
  if (is.atomic(x) && typeof(x) %in% c("logical", "integer", "double", "character")) {
    if (length(dim(x)) >= 2) {
      # reticulate fills a NumPy string array in the wrong order: send values (column-major) + dims
      if (is.character(x)) return(list(`__isthmus_array__` = list(values = as.vector(x), dim = as.integer(dim(x)))))
      return(x)  # numeric arrays of any rank cross with their dims
    }
    if (length(x) == 1 && is.null(names(x))) return(x)
    if (!is.null(names(x))) .report_changed(report, where, "names of a vector were not carried")
    return(array(unname(x)))
  }
  .report_dropped(report, where, paste0("objects of class ", class(x)[1], " have no AnnData counterpart"))
  NULL
}

.uns_from_py <- function(x) {
  if (is.data.frame(x)) return(x)
  if (is.list(x)) {
    if (!is.null(x$`__isthmus_frame__`)) return(.frame_from_py(x$`__isthmus_frame__`))
    if (!is.null(x$`__isthmus_matrix__`)) return(.matrix_from_py(x$`__isthmus_matrix__`))
    if (!is.null(x$`__isthmus_column__`)) return(.column_from_py(x$`__isthmus_column__`))
    if (!is.null(x$`__isthmus_array__`)) {
      a <- x$`__isthmus_array__`
      return(array(.as_chr(a$values), dim = as.integer(unlist(a$dim))))
    }
    return(lapply(x, .uns_from_py))
  }
  if (is.array(x) && length(dim(x)) == 1) return(as.vector(x))
  x
}
