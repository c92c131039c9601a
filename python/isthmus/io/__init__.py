"""The bridge between R objects and AnnData / MuData.

R calls it through ``isthmus._r``. Python users convert Seurat / SingleCellExperiment ``.rds``
files with :func:`read_rds` and :func:`write_rds`, which run the R package in a subprocess
(the .h5ad / .h5mu file is the contract between the two languages).
"""

from ._report import ConversionReport
from ._rscript import read_rds, write_rds

__all__ = ["ConversionReport", "read_rds", "write_rds"]
