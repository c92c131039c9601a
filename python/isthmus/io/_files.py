"""Reading .h5ad for R without holding a big matrix twice.

Sparse matrices stored as CSR (anndata's default for cells x genes) are handed to R as h5py
datasets, which R pulls in chunks into the dgCMatrix it is filling. Everything else is small
and read with anndata's own element reader.
"""

from __future__ import annotations

from typing import Any

import h5py

from . import _types
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


def _indices_sorted(elem, chunk: int = 1 << 24) -> bool:
    """Whether a CSR group's column indices increase strictly within every row, as a dgCMatrix needs
    (anndata and scipy allow them unsorted or repeated, a repeat adding up: files from
    concatenations or other writers have them).
    Read a chunk at a time, so the check never holds the whole index array."""
    import numpy as np

    indptr = np.asarray(elem["indptr"][:], dtype=np.int64)
    indices = elem["indices"]
    row_starts = indptr[1:-1]
    for start in range(0, indices.shape[0], chunk):
        stop = min(start + chunk + 1, indices.shape[0])  # one past the chunk: pairs across its end
        block = np.asarray(indices[start:stop], dtype=np.int64)
        rises = np.diff(block) > 0
        # a pair (k, k + 1) may fall at a row start, where the index starts again
        at_start = row_starts[(row_starts > start) & (row_starts < stop)] - start - 1
        rises[at_start] = True
        if not rises.all():
            return False
    return True


def _matrix_spec(elem, *, what: str, n_obs: int, n_vars: int, report: ConversionReport) -> dict[str, Any] | None:
    encoding = elem.attrs.get("encoding-type", "")
    if isinstance(elem, h5py.Group) and encoding == "csr_matrix" and not _indices_sorted(elem):
        # read into memory and sorted there (the route below); R's dgCMatrix refuses them unsorted
        report.changed(what.replace("/", " "), "column indices unsorted or repeated within rows in the file; "
                                               "sorted, repeats added up (as scipy reads them)")
    elif isinstance(elem, h5py.Group) and encoding == "csr_matrix":
        if elem["data"].dtype != "float64":
            report.changed(what.replace("/", " "), f"{elem['data'].dtype} values are doubles in R (a dgCMatrix holds doubles; restored when written back)")
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
    # CSC or dense: read into memory and describe it as usual (a CSC file is rare for cells x genes);
    # what R cannot hold (a 3-d array) is reported and left out
    group, _, name = what.partition("/")
    if isinstance(elem, h5py.Group) and encoding == "csc_matrix":
        report.changed(f"{group}[{name!r}]", "a CSC matrix is CSR in R (the layout R shares without a copy; restored when written back)")
    return _mapping_to_r({name: _read_elem(elem)}, where=group, orientation="transpose", report=report).get(name)


_HDF5_HINT = "an .h5ad file is an HDF5 file written by anndata (adata.write_h5ad)"


def check_h5_file(path: str, *, expect: str) -> None:
    """Say what is wrong with a file before h5py / anndata fail on it with their own words.

    ``expect``: "h5ad" or "h5mu"."""
    import os

    if os.path.getsize(path) == 0:
        raise ValueError(f"isthmus: {path} is empty (0 bytes), not an .{expect} file.")
    if not h5py.is_hdf5(path):
        raise ValueError(f"isthmus: {path} is not an HDF5 file, so not an .{expect} file ({_HDF5_HINT}); "
                         "it may be truncated or of another format.")
    with h5py.File(path, "r") as f:
        encoding = f.attrs.get("encoding-type", "")
        encoding = encoding.decode() if isinstance(encoding, bytes) else str(encoding)
        is_mudata = encoding == "MuData" or "mod" in f
        if expect == "h5ad" and is_mudata:
            raise ValueError(f"isthmus: {path} holds a MuData (.h5mu), not an AnnData; read it with read_h5mu().")
        if expect == "h5mu" and not is_mudata:
            hint = " It looks like an AnnData: read it with read_h5ad()." if "obs" in f else ""
            raise ValueError(f"isthmus: {path} is not a MuData file: it has no 'mod' group.{hint}")
        if expect == "h5ad" and not ("obs" in f and "var" in f):
            raise ValueError(f"isthmus: {path} is an HDF5 file but not an AnnData: it has no 'obs' and 'var' "
                             f"(top-level entries: {', '.join(list(f.keys())[:10]) or 'none'}).")


def _legacy_layout(f) -> bool:
    """anndata < 0.7 wrote obs / var as compound datasets (and raw.X at the top level)."""
    return isinstance(f["obs"], h5py.Dataset) or "encoding-type" not in f["obs"].attrs


def read_h5ad_parts(path: str, report: ConversionReport) -> dict[str, Any]:
    check_h5_file(path, expect="h5ad")
    f = h5py.File(path, "r")
    if _legacy_layout(f):
        # the old layout is small in practice; anndata itself knows every variant of it
        import anndata as ad

        from ._parts import anndata_to_parts

        f.close()
        return anndata_to_parts(ad.read_h5ad(path), report, where="adata")
    HANDLES.keep_open(f)
    obs = _read_elem(f["obs"])
    var = _read_elem(f["var"])
    n_obs, n_vars = obs.shape[0], var.shape[0]

    def group(name: str) -> dict[str, Any]:
        return {k: _read_elem(v) for k, v in f[name].items()} if name in f else {}

    layers = {}
    if "layers" in f:
        for name, elem in f["layers"].items():
            spec = _matrix_spec(elem, what=f"layers/{name}", n_obs=n_obs, n_vars=n_vars, report=report)
            if spec is not None:
                layers[name] = spec
    raw = None
    if "raw" in f and "X" in f["raw"]:
        raw_var = _read_elem(f["raw/var"])
        raw = {"var_names": [str(n) for n in raw_var.index],
               "X": _matrix_spec(f["raw/X"], what="raw/X", n_obs=n_obs, n_vars=raw_var.shape[0], report=report),
               "var": frame_to_r(raw_var, where="raw.var", report=report)}
        if "varm" in f["raw"] and len(f["raw/varm"]):
            report.dropped("raw.varm", "the raw data's varm is not carried (its X and var are)")
    varp = group("varp")
    obsm, varm, obsp = group("obsm"), group("varm"), group("obsp")
    uns = _read_elem(f["uns"]) if "uns" in f else {}
    types = _types.record(X=f["X"] if "X" in f else None, layers=dict(f["layers"]) if "layers" in f else {},
                          obs=obs, var=var, obsm=obsm, varm=varm, obsp=obsp, uns=uns, varp=varp,
                          raw_x=f["raw/X"] if raw is not None else None,
                          raw_var_names=raw["var_names"] if raw is not None else None)
    return {
        "source_types": types,
        "raw": raw,
        "varp": _mapping_to_r(varp, where="varp", orientation="same", report=report),
        "obs_names": [str(n) for n in obs.index],
        "var_names": [str(n) for n in var.index],
        "X": _matrix_spec(f["X"], what="adata/X", n_obs=n_obs, n_vars=n_vars, report=report) if "X" in f else None,
        "layers": layers,
        "obs": frame_to_r(obs, where="obs", report=report),
        "var": frame_to_r(var, where="var", report=report),
        "obsm": _mapping_to_r(obsm, where="obsm", orientation="same", report=report),
        "varm": _mapping_to_r(varm, where="varm", orientation="same", report=report),
        "obsp": _mapping_to_r(obsp, where="obsp", orientation="same", report=report),
        "uns": uns_to_r(uns, where="uns", report=report),
    }


__all__ = ["check_h5_file", "read_h5ad_parts"]
