"""Reading .h5ad for R without holding a big matrix twice.

Sparse matrices stored as CSR (anndata's default for cells x genes) are handed to R as h5py
datasets, which R pulls in chunks into the dgCMatrix it is filling. Everything else is small
and read with anndata's own element reader.
"""

from __future__ import annotations

from typing import Any

import h5py

from ._buffers import check_nnz_fits_r
from ._frames import frame_to_r
from ._parts import HANDLES, _mapping_to_r, uns_to_r
from ._report import ConversionReport


def _read_elem(elem):
    try:
        from anndata.io import read_elem
    except ImportError:  # anndata < 0.11
        from anndata.experimental import read_elem
    return read_elem(elem)


def _matrix_spec(elem, *, what: str, n_obs: int, n_vars: int) -> dict[str, Any]:
    encoding = elem.attrs.get("encoding-type", "")
    if isinstance(elem, h5py.Group) and encoding == "csr_matrix":
        nnz = elem["data"].shape[0]
        check_nnz_fits_r(nnz, what)
        return {
            "kind": "dgc",
            "x": HANDLES.add(elem["data"], "double"),
            "i": HANDLES.add(elem["indices"], "integer"),
            "p": HANDLES.add(elem["indptr"], "integer"),
            "nrow": n_vars,
            "ncol": n_obs,
        }
    # CSC or dense: read into memory and describe it as usual (a CSC file is rare for cells x genes)
    return _mapping_to_r({"m": _read_elem(elem)}, where=what, orientation="transpose", report=ConversionReport())["m"]


def read_h5ad_parts(path: str, report: ConversionReport) -> dict[str, Any]:
    f = h5py.File(path, "r")
    HANDLES.keep_open(f)
    obs = _read_elem(f["obs"])
    var = _read_elem(f["var"])
    n_obs, n_vars = obs.shape[0], var.shape[0]

    def group(name: str) -> dict[str, Any]:
        return {k: _read_elem(v) for k, v in f[name].items()} if name in f else {}

    layers = {}
    if "layers" in f:
        for name, elem in f["layers"].items():
            layers[name] = _matrix_spec(elem, what=f"layers[{name!r}]", n_obs=n_obs, n_vars=n_vars)
    if "raw" in f:
        report.dropped("raw", "read the file with anndata and convert adata.raw.to_adata() to keep it")
    if "varp" in f and len(f["varp"]):
        report.dropped("varp", "feature x feature graphs have no Seurat/SCE slot")
    return {
        "obs_names": [str(n) for n in obs.index],
        "var_names": [str(n) for n in var.index],
        "X": _matrix_spec(f["X"], what="X", n_obs=n_obs, n_vars=n_vars) if "X" in f else None,
        "layers": layers,
        "obs": frame_to_r(obs, where="obs", report=report),
        "var": frame_to_r(var, where="var", report=report),
        "obsm": _mapping_to_r(group("obsm"), where="obsm", orientation="same", report=report),
        "varm": _mapping_to_r(group("varm"), where="varm", orientation="same", report=report),
        "obsp": _mapping_to_r(group("obsp"), where="obsp", orientation="same", report=report),
        "uns": uns_to_r(_read_elem(f["uns"]) if "uns" in f else {}, where="uns", report=report),
    }


__all__ = ["read_h5ad_parts"]
