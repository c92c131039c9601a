"""Arrays that R hands over without a copy, and the sparse/dense matrices built on them.

R describes a vector by the address of its data, its length and its type, plus ``keep``: an R
closure (wrapped by reticulate as a Python callable) whose environment holds the R object. The
NumPy array we build keeps ``keep`` alive, so R cannot free the memory while Python uses it,
and it is marked read-only, so Python code can never change the user's R object behind its back.

R's dgCMatrix (features x cells, column-compressed) has exactly the memory layout of a SciPy CSR
matrix of cells x features: the three arrays are used as they are.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
from scipy import sparse

# R's NA for integers and logicals: the smallest int32.
R_NA_INTEGER = np.iinfo(np.int32).min
# A dgCMatrix indexes its non-zeros with int32 (@p), so it holds at most this many.
R_MAX_NNZ = 2**31 - 1

_R_TYPES = {"double": np.dtype("<f8"), "integer": np.dtype("<i4"), "logical": np.dtype("<i4")}


class _RMemory:
    """Exposes R-owned memory through the NumPy array interface and pins its R owner."""

    def __init__(self, address: int, length: int, dtype: np.dtype, keep: Any):
        self.keep = keep  # an R closure: while it lives, R's GC keeps the vector
        self.__array_interface__ = {
            "data": (address, True),  # True: read-only
            "shape": (length,),
            "typestr": dtype.str,
            "version": 3,
        }


def shared_vector(spec: Mapping[str, Any]) -> np.ndarray:
    """A read-only NumPy view of an R vector described by ``spec`` (see R's ``.share_vector``)."""
    length = int(spec["length"])
    dtype = _R_TYPES[spec["type"]]
    if length == 0:
        return np.empty(0, dtype=dtype)
    address = int(spec["address"], 16)
    arr = np.asarray(_RMemory(address, length, dtype, spec["keep"]))
    if arr.ctypes.data != address:  # pragma: no cover - would mean NumPy copied
        raise RuntimeError("isthmus: the R vector was copied instead of shared")
    return arr


def vector_from_r(value: Any, copy: bool = False) -> np.ndarray:
    """A NumPy array from what R sent: a shared-vector spec or an already converted array."""
    if isinstance(value, Mapping) and "address" in value:
        arr = shared_vector(value)
        return arr.copy() if copy else arr
    return np.asarray(value).reshape(-1)


def matrix_from_r(spec: Mapping[str, Any], copy: bool = False):
    """Build the Python matrix for an R matrix spec.

    ``spec["kind"]`` is ``"dgc"`` (an R dgCMatrix) or ``"dense"`` (an R numeric matrix). R stores
    both column-major, so the natural zero-copy result is the *transpose* of the R matrix: a CSR
    (or C-ordered) cells x features matrix for an R features x cells matrix. With
    ``spec["orientation"] == "same"`` the result is the R matrix itself (a CSC / F-ordered view),
    used for cells x cells graphs and cells x k embeddings.
    """
    nrow, ncol = int(spec["nrow"]), int(spec["ncol"])
    same = spec.get("orientation", "transpose") == "same"
    if spec["kind"] == "dgc":
        data = vector_from_r(spec["x"], copy)
        indices = vector_from_r(spec["i"], copy)
        indptr = vector_from_r(spec["p"], copy)
        # csr_matrix would copy read-only inputs when it "canonicalises"; build it directly.
        mat = sparse.csr_matrix((ncol, nrow), dtype=data.dtype)
        mat.data, mat.indices, mat.indptr = data, indices, indptr
        return mat.T if same else mat  # .T of a CSR is a CSC view, no copy
    if spec["kind"] == "dense":
        values = vector_from_r(spec["x"], copy)
        if values.dtype == np.int32 and spec.get("type") == "logical":
            values = values.astype(bool)
        mat = values.reshape(ncol, nrow)  # column-major R == row-major transpose
        return mat.T if same else mat
    raise ValueError(f"isthmus: unknown matrix kind {spec['kind']!r}")


def check_nnz_fits_r(nnz: int, what: str) -> None:
    """R's dgCMatrix cannot hold more than 2^31-1 non-zeros: say so before any work is done."""
    if nnz > R_MAX_NNZ:
        raise ValueError(
            f"isthmus: {what} has {nnz:,} non-zero values, more than the 2^31-1 an R dgCMatrix can "
            "hold. Subset cells or features in Python first, or keep the data on disk "
            "(write_h5ad) and read it in parts."
        )


def matrix_to_r(mat, *, what: str, orientation: str = "transpose") -> dict[str, Any]:
    """Describe a Python matrix so R can rebuild it (R side: ``.matrix_from_py``).

    With ``orientation="transpose"`` (layers, X) the R matrix is the transpose of ``mat``: a CSR
    cells x features matrix gives its arrays to a dgCMatrix features x cells unchanged.
    """
    if sparse.issparse(mat):
        if orientation == "transpose":
            csr = mat.tocsr() if mat.format != "csr" else mat
            rows, cols = csr.shape[1], csr.shape[0]
            compressed = csr
        else:
            csc = mat.tocsc() if mat.format != "csc" else mat
            rows, cols = csc.shape
            compressed = csc
        check_nnz_fits_r(compressed.nnz, what)
        if not compressed.has_canonical_format:  # R's dgCMatrix: indices increasing within a column, no repeats
            compressed = compressed.copy()
            compressed.sum_duplicates()  # sorts too; repeated entries add up, as scipy reads them
        return {
            "kind": "dgc",
            "x": np.asarray(compressed.data, dtype=np.float64),
            "i": np.asarray(compressed.indices, dtype=np.int32),
            "p": np.asarray(compressed.indptr, dtype=np.int32),
            "nrow": rows,
            "ncol": cols,
        }
    arr = np.asarray(mat)
    if arr.ndim != 2:
        raise ValueError(f"isthmus: {what} is not a 2-d matrix (shape {arr.shape})")
    if orientation == "transpose":
        arr = arr.T
    kind = "logical" if arr.dtype == bool else "double"
    if arr.dtype.kind in "iu" and (arr.size == 0 or (arr.min() > R_NA_INTEGER and arr.max() <= np.iinfo(np.int32).max)):
        kind = "integer"  # an R integer matrix: integer counts stay integers
    values = arr.astype(np.float64 if kind == "double" else np.int32, copy=False)
    # R wants column-major values of the R matrix.
    return {
        "kind": "dense",
        "type": kind,
        "x": np.ravel(values, order="F"),
        "nrow": arr.shape[0],
        "ncol": arr.shape[1],
    }
