# DeconvolveBulk(): cell-type fractions of bulk RNA-seq samples from a single-cell reference
# (python/isthmus/tl/_bulk.py).

#' Deconvolve bulk RNA-seq samples into cell-type fractions with a single-cell reference
#'
#' method "scaden": a Scaden-style ensemble of three fully connected networks (Menden et al.
#' 2020; PyTorch) trained on pseudo-bulks simulated from the reference (random fractions, half of
#' them leaving types out, random depths; log2(x + 1) and per-sample min-max scaling, as Scaden).
#' Baselines: "nnls", non-negative least squares on the reference's mean profiles (as
#' [DeconvolveSpots()]), and "music", a MuSiC-style weighted NNLS (Wang et al. 2019) that trusts
#' less the genes whose expression varies between the reference's donors or batches (`batch`).
#' Fractions are of cells (each type's share of the counts divided by its counts per cell).
#'
#' @param bulk The bulk samples: a genes x samples count matrix (dense or sparse), or a
#'   SummarizedExperiment / DESeqDataSet (assay `bulk.assay`).
#' @param reference A Seurat or SingleCellExperiment single-cell reference with raw counts and
#'   `labels`; for a matrix `bulk`, also a genes x cells matrix with `reference.meta.data`.
#' @param labels The reference's cell-type column.
#' @param method "scaden", "nnls" or "music".
#' @param batch The reference's donor / batch column ("music" needs it: two or more values).
#' @param bulk.values "counts" (integers required) or "tpm" (TPM or FPKM; the record says which).
#' @param bulk.assay SummarizedExperiment: the assay holding the bulk values (default "counts"
#'   when there is one, else the first).
#' @param reference.assay The reference's assay (Seurat; default its default assay).
#' @param min.gene.overlap The least share of the bulk's genes the reference must have.
#' @param min.cells.per.type Reference types with fewer cells are left out (with a warning).
#' @param n_pseudobulks,cells_per_pseudobulk Scaden's simulated training samples and cells per sample.
#' @param max_steps,learning_rate Scaden's training: mini-batch steps per network (5000) and Adam's rate.
#' @param reference.meta.data Matrix `reference`: a data.frame with its `labels` (and `batch`) columns.
#' @param ... Not used.
#' @inheritParams IntegrateCells
#' @return For a matrix: a data.frame of fractions, samples x cell types (rows sum to 1), with the
#'   record as attribute "record". For a SummarizedExperiment: the object with colData columns
#'   `<method>_<type>` and the record in `metadata(object)$isthmus[[method]]`.
#' @examples
#' \dontrun{
#' fractions <- DeconvolveBulk(bulk_counts, pbmc_seurat, labels = "cell_type", method = "nnls")
#' }
#' @export
DeconvolveBulk <- function(bulk, ...) UseMethod("DeconvolveBulk")

#' @rdname DeconvolveBulk
#' @export
DeconvolveBulk.default <- function(bulk, reference, labels = "cell_type", method = c("scaden", "nnls", "music"),
                                   batch = NULL, bulk.values = c("counts", "tpm"), reference.assay = NULL,
                                   layer = "counts", min.gene.overlap = 0.3, min.cells.per.type = 10,
                                   n_pseudobulks = 2000, cells_per_pseudobulk = 100, max_steps = 5000,
                                   learning_rate = 1e-4, model.dir = NULL,
                                   accelerator = getOption("isthmus.accelerator", "auto"), devices = "auto",
                                   backend = getOption("isthmus.backend", "inprocess"),
                                   batch_size = NULL, seed.use = 0, verbose = TRUE, reference.meta.data = NULL, ...) {
  .local_backend(backend)
  method <- .choose_method(method, "DeconvolveBulk")
  bulk.values <- if (identical(bulk.values, c("counts", "tpm"))) "counts" else bulk.values
  if (inherits(bulk, "data.frame")) bulk <- as.matrix(bulk)
  samples <- .task_anndata(bulk, what = "bulk values", arg = "bulk")
  ref <- if (inherits(reference, c("Seurat", "SingleCellExperiment"))) {
    parts <- .object_parts(reference, reference.assay, layer, columns = c(labels, batch), arg = "reference")
    .task_anndata(parts$counts, parts$meta.data, c(labels, batch), arg = "reference")
  } else {
    .task_anndata(reference, reference.meta.data, c(labels, batch), arg = "reference")
  }
  kwargs <- list(labels_key = labels, method = method, batch_key = batch, bulk_values = bulk.values, layer = NULL,
                 bulk_layer = NULL, min_gene_overlap = min.gene.overlap, min_cells_per_type = min.cells.per.type,
                 n_pseudobulks = n_pseudobulks, cells_per_pseudobulk = cells_per_pseudobulk, max_steps = max_steps,
                 learning_rate = learning_rate,
                 model_dir = if (method == "scaden") model.dir %||% .session_model_dir(method),
                 key_added = "deconvolution_bulk", random_state = seed.use, accelerator = accelerator,
                 devices = devices, batch_size = batch_size, verbose = verbose)
  out <- .run_core("deconvolve_bulk", list(samples, ref), kwargs)
  fractions <- out$value
  rownames(fractions) <- colnames(bulk)
  attr(fractions, "record") <- out$record
  fractions
}

#' @rdname DeconvolveBulk
#' @export
DeconvolveBulk.SummarizedExperiment <- function(bulk, reference, labels = "cell_type",
                                                method = c("scaden", "nnls", "music"), batch = NULL,
                                                bulk.values = c("counts", "tpm"), bulk.assay = NULL, ...) {
  method <- .choose_method(method, "DeconvolveBulk")
  assays <- SummarizedExperiment::assayNames(bulk)
  bulk.assay <- bulk.assay %||% (if ("counts" %in% assays) "counts" else assays[1])
  if (is.null(bulk.assay) || !bulk.assay %in% assays) {
    stop("isthmus: the bulk has no assay '", bulk.assay %||% "", "'; assays: ", paste(assays, collapse = ", "), ".",
         call. = FALSE)
  }
  values <- SummarizedExperiment::assay(bulk, bulk.assay)
  if (is.null(colnames(values))) colnames(values) <- paste0("sample", seq_len(ncol(values)))
  fractions <- DeconvolveBulk.default(values, reference, labels = labels, method = method, batch = batch,
                                      bulk.values = bulk.values, ...)
  record <- attr(fractions, "record")
  for (type in names(fractions)) SummarizedExperiment::colData(bulk)[[paste0(method, "_", type)]] <- fractions[[type]]
  .put_record(bulk, method, record)
}
