"""The zero-copy hand-over and the column codec, without R (R's side is tested in testthat)."""

import ctypes

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from isthmus.io._buffers import R_NA_INTEGER, check_nnz_fits_r, matrix_from_r, matrix_to_r, shared_vector
from isthmus.io._frames import frame_from_r, frame_to_r
from isthmus.io._report import ConversionReport


def _spec(arr, kind):
    """What R sends for a vector: its data address, length, type and an owner to keep alive."""
    return {"address": hex(arr.ctypes.data), "length": arr.size, "type": kind, "keep": arr}


def test_shared_vector_is_a_read_only_view_without_copy():
    owner = np.arange(10, dtype=np.float64)
    view = shared_vector(_spec(owner, "double"))
    assert view.ctypes.data == owner.ctypes.data
    assert not view.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        view[0] = 1.0


def test_dgcmatrix_arrays_become_a_csr_of_the_transpose():
    rng = np.random.default_rng(0)
    genes_by_cells = sparse.random(30, 12, density=0.2, format="csc", random_state=rng)
    spec = {
        "kind": "dgc",
        "x": _spec(genes_by_cells.data, "double"),
        "i": _spec(genes_by_cells.indices.astype(np.int32), "integer"),
        "p": _spec(genes_by_cells.indptr.astype(np.int32), "integer"),
        "nrow": 30,
        "ncol": 12,
    }
    cells_by_genes = matrix_from_r(spec)
    assert cells_by_genes.format == "csr" and cells_by_genes.shape == (12, 30)
    np.testing.assert_array_equal(cells_by_genes.toarray(), genes_by_cells.T.toarray())
    assert cells_by_genes.data.ctypes.data == genes_by_cells.data.ctypes.data  # no copy


def test_matrix_to_r_gives_dgcmatrix_arrays_and_checks_nnz():
    m = sparse.random(8, 5, density=0.5, format="csr", random_state=1)
    spec = matrix_to_r(m, what="X")
    assert (spec["nrow"], spec["ncol"]) == (5, 8)
    rebuilt = sparse.csc_matrix((spec["x"], spec["i"], spec["p"]), shape=(5, 8))
    np.testing.assert_array_equal(rebuilt.toarray(), m.T.toarray())
    with pytest.raises(ValueError, match="2\\^31-1"):
        check_nnz_fits_r(2**31, "X")


def test_columns_keep_types_levels_and_missing_values():
    n = 6
    codes = np.array([1, 2, R_NA_INTEGER, 1, 3, 1], dtype=np.int32)
    ints = np.array([1, R_NA_INTEGER, 3, 4, 5, 6], dtype=np.int32)
    spec = {
        "names": ["f", "i", "s"],
        "row_names": [f"c{k}" for k in range(n)],
        "columns": [
            {"type": "factor", "codes": _spec(codes, "integer"), "levels": ["b", "a", "unused", "c"], "ordered": True},
            {"type": "integer", "values": _spec(ints, "integer")},
            {"type": "character", "values": ["x", "", "z", "", "é", "q"], "na": np.array([2], dtype=np.int32)},
        ],
    }
    df = frame_from_r(spec)
    assert list(df["f"].cat.categories) == ["b", "a", "unused", "c"] and df["f"].cat.ordered
    assert pd.isna(df["f"].iloc[2])
    assert str(df["i"].dtype) == "Int32" and pd.isna(df["i"].iloc[1])
    assert df["s"].iloc[1] is None and df["s"].iloc[3] == ""
    back = frame_to_r(df, where="obs", report=ConversionReport())
    np.testing.assert_array_equal(back["columns"][0]["codes"], codes)
    np.testing.assert_array_equal(back["columns"][1]["values"], ints)
    assert list(back["columns"][2]["na"]) == [2]


def test_report_lists_what_is_not_carried():
    r = ConversionReport()
    r.dropped("varp", "no slot")
    assert r.to_dict()["status"] == ["not carried"]
    with pytest.warns(UserWarning, match="varp"):
        r.warn("AnnData -> R")


_ = ctypes  # ctypes documents that addresses are plain integers here
