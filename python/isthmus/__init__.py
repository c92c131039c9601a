"""isthmus: deep learning for single-cell and spatial transcriptomics, from R (Seurat, SCE) and Python.

Subpackages: ``io`` (the R <-> Python bridge and files), ``tl`` (task functions).
``_r`` is the one module the R package calls.
"""

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("isthmus")
except _metadata.PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+unknown"

from . import io, tl  # noqa: E402

__all__ = ["io", "tl", "__version__"]
