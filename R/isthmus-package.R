#' isthmus: deep learning for single-cell and spatial transcriptomics from Seurat and SCE
#'
#' The R half of isthmus: converts Seurat and SingleCellExperiment objects to and from
#' AnnData / MuData (see [as_anndata()]), runs the Python core through reticulate, and puts
#' results back into the R object. Python is started on first use, never when the package loads;
#' see [isthmus_doctor()] for which Python is used and [install_isthmus()] to create it.
#'
#' @keywords internal
#' @useDynLib isthmus, .registration = TRUE, .fixes = "C_"
#' @importClassesFrom Matrix dgCMatrix
"_PACKAGE"
