"""AnnData / MuData <-> "parts": the plain nested dict that crosses the R <-> Python boundary.

Parts of one modality (R builds them from a Seurat assay or an SCE; see R/convert-*.R):

    obs_names, var_names      lists of str
    X                         matrix spec or None (see _buffers.matrix_from_r)
    layers, obsm, varm, obsp  {name: matrix spec}
    obs, var                  frame specs (see _frames)
    uns                       nested dict (see uns_from_r)

A MuData adds ``mod`` ({name: parts}) around a global ``obs`` / ``obsm`` / ``obsp`` / ``uns``.
The reverse direction hands big arrays over by handle: R pulls them in chunks (``fetch``), so
reading a file never holds a matrix twice at full size.
"""

from __future__ import annotations

import itertools
from typing import Any, Mapping

import anndata as ad
import numpy as np
import pandas as pd
from scipy import sparse

from ._buffers import matrix_from_r, matrix_to_r, vector_from_r
from ._frames import _as_list, column_from_r, column_to_r, frame_from_r, frame_to_r
from . import _types
from ._report import ConversionReport

# --------------------------------------------------------------------------------------------
# R -> Python


def _named(value: Any) -> Mapping[str, Any]:
    """An R named list arrives as a dict; an empty one as an empty list or None."""
    return value if isinstance(value, Mapping) else {}


def uns_from_r(value: Any) -> Any:
    """R lists -> dicts, recursively; tagged records become frames or matrices."""
    if isinstance(value, Mapping):
        if "__isthmus_frame__" in value:
            return frame_from_r(value["__isthmus_frame__"])
        if "__isthmus_matrix__" in value:
            return matrix_from_r(value["__isthmus_matrix__"], copy=True)
        if "__isthmus_column__" in value:  # a factor or a vector with NA
            column = column_from_r(value["__isthmus_column__"])
            return column if isinstance(column, pd.Categorical) or not isinstance(column, np.ndarray) \
                else np.asarray(column)
        if "__isthmus_array__" in value:  # an R character array, values in column-major order
            spec = value["__isthmus_array__"]
            dim = [int(d) for d in np.atleast_1d(spec["dim"])]
            return np.array(_as_list(spec["values"]), dtype=object).reshape(dim, order="F")
        return {str(k): uns_from_r(v) for k, v in value.items()}
    if isinstance(value, list):
        return [uns_from_r(v) for v in value]
    if isinstance(value, np.ndarray) and value.dtype.kind in "iufb":
        return value.copy()  # reticulate may hand over R memory; uns must own its arrays
    return value


def anndata_from_parts(parts: Mapping[str, Any], copy: bool = False) -> ad.AnnData:
    obs = frame_from_r(parts["obs"])
    var = frame_from_r(parts["var"])

    def matrices(key: str) -> dict[str, Any]:
        out = {}
        for name, spec in _named(parts.get(key)).items():
            if "__isthmus_frame__" in spec:  # a per-cell table (e.g. an SCE reducedDim DataFrame)
                frame = frame_from_r(spec["__isthmus_frame__"])
                frame.index = obs.index if key == "obsm" else var.index
                out[name] = frame
            else:
                out[name] = matrix_from_r(spec, copy)
        return out

    x = matrix_from_r(parts["X"], copy) if parts.get("X") is not None else None
    uns = uns_from_r(_named(parts.get("uns")))
    record = uns.get("isthmus")
    types = record.pop("source_types", None) if isinstance(record, dict) else None
    if isinstance(record, dict) and not record:
        del uns["isthmus"]
    adata = ad.AnnData(
        X=x,
        obs=obs,
        var=var,
        layers=matrices("layers"),
        obsm=matrices("obsm"),
        varm=matrices("varm"),
        obsp=matrices("obsp"),
        varp=matrices("varp"),
        uns=uns,
    )
    raw = parts.get("raw")
    if isinstance(raw, Mapping) and raw.get("X") is not None:
        raw_var = frame_from_r(raw["var"])
        adata.raw = ad.AnnData(X=matrix_from_r(raw["X"], copy), obs=pd.DataFrame(index=obs.index), var=raw_var)
    if types:
        _types.restore(adata, types)
    return adata


def mudata_from_parts(parts: Mapping[str, Any], copy: bool = False):
    import mudata as md

    # the global obs comes from R; mudata must not pull (and rename) modality columns into it
    with md.set_options(pull_on_update=False):
        return _mudata_from_parts(parts, copy)


def _mudata_from_parts(parts: Mapping[str, Any], copy: bool):
    import mudata as md

    mods = {}
    moved: dict[str, tuple[list[str], Mapping[str, Any]]] = {}
    for name, p in _named(parts["mod"]).items():
        record = _named(_named(p.get("uns")).get("isthmus")).get("source_types")
        if isinstance(record, Mapping) and record.get("obs_columns") is not None:
            moved[name] = (_types._names(record.get("obs_columns")), _named(record.get("obs")))
        adata = anndata_from_parts(p, copy)
        if p.get("present") is not None:  # cells R marked absent from this modality
            adata = adata[np.asarray(vector_from_r(p["present"]), dtype=bool)].copy()
        mods[name] = adata
    mdata = md.MuData(mods)
    global_names = _as_list(parts["obs_names"])
    if list(mdata.obs_names) != global_names and set(mdata.obs_names) == set(global_names):
        mdata = mdata[global_names].copy()  # R's cell order, not the union in modality order
    obs = frame_from_r(parts["obs"])
    for name, (columns, dtypes) in moved.items():  # "<mod>:<column>" back into the modality
        m = mdata.mod[name]
        for col in columns:
            key = f"{name}:{col}"
            if key in obs.columns:
                values = obs[key].reindex(m.obs_names)
                m.obs[col] = _types._restore_column(values, str(dtypes[col])) if col in dtypes else values
                obs = obs.drop(columns=key)
    mdata.obs = obs
    for key in ("obsm", "obsp"):
        target = getattr(mdata, key)
        for name, spec in _named(parts.get(key)).items():
            target[name] = matrix_from_r(spec, copy)
    mdata.uns.update(uns_from_r(_named(parts.get("uns"))))
    return mdata


# --------------------------------------------------------------------------------------------
# Python -> R


class ArrayHandles:
    """Big arrays (in memory or h5py datasets) that R fetches in chunks, then releases."""

    def __init__(self) -> None:
        self._arrays: dict[int, Any] = {}
        self._open_files: list[Any] = []
        self._ids = itertools.count(1)

    def keep_open(self, file: Any) -> None:
        """A file whose datasets are handed out stays open until ``release_all``."""
        self._open_files.append(file)

    def add(self, array: Any, kind: str | None = None) -> dict[str, Any]:
        """``kind``: "double" or "integer", the R type to deliver (default: from the dtype)."""
        handle = next(self._ids)
        kind = kind or ("double" if np.dtype(array.dtype).kind == "f" else "integer")
        self._arrays[handle] = (array, np.float64 if kind == "double" else np.int32)
        return {"handle": handle, "length": int(array.shape[0]), "type": kind}

    def fetch(self, handle: int, start: int, stop: int) -> np.ndarray:
        array, dtype = self._arrays[int(handle)]
        return np.asarray(array[int(start) : int(stop)]).astype(dtype, copy=False)

    def release(self, handle: int) -> None:
        self._arrays.pop(int(handle), None)

    def release_all(self) -> None:
        self._arrays.clear()
        for file in self._open_files:
            file.close()
        self._open_files.clear()


HANDLES = ArrayHandles()
# Above this many values a matrix's arrays go by handle; below, reticulate converts them at once.
_BY_HANDLE = 1_000_000


def report_matrix_type(mat: Any, what: str, report: ConversionReport | None, orientation: str = "transpose") -> None:
    """R holds doubles, 32-bit integers and logicals: name any other dtype that changes, and a
    sparse layout that comes back as the other one (cells x features as CSR, the rest as CSC:
    the layouts R's dgCMatrix shares without a copy)."""
    if report is None:
        return
    dtype = np.dtype(mat.dtype)
    if sparse.issparse(mat):
        back = "csr" if orientation == "transpose" else "csc"
        if mat.format != back:
            report.changed(what, f"a {mat.format.upper()} matrix is {back.upper()} in R (the layout R shares without a copy; restored when written back)")
        if dtype != np.float64:
            report.changed(what, f"{dtype} values are doubles in R (a dgCMatrix holds doubles; restored when written back)")
    elif dtype not in (np.float64, np.int32, np.bool_):
        report.changed(what, f"{dtype} values are R {'integers' if dtype.kind in 'iu' else 'doubles'} in R (restored when written back)")


def _matrix_for_r(mat: Any, *, what: str, orientation: str = "transpose",
                  report: ConversionReport | None = None) -> dict[str, Any]:
    report_matrix_type(mat, what, report, orientation)
    spec = matrix_to_r(mat, what=what, orientation=orientation)
    for key in ("x", "i", "p"):
        if key in spec and spec[key].shape[0] > _BY_HANDLE:
            spec[key] = HANDLES.add(spec[key])
    return spec


def uns_to_r(value: Any, *, where: str, report: ConversionReport) -> Any:
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            converted = uns_to_r(v, where=f"{where}[{k!r}]", report=report)
            if converted is not None or v is None:  # a part that was not carried is left out
                out[str(k)] = converted
        return out
    if isinstance(value, pd.DataFrame):
        return {"__isthmus_frame__": frame_to_r(value, where=where, report=report)}
    if isinstance(value, (pd.Categorical, pd.api.extensions.ExtensionArray, pd.Series)):
        # categorical and nullable arrays: an R factor / vector with NA, as a data frame column
        return {"__isthmus_column__": column_to_r(pd.Series(value), where=where, report=report)}
    if isinstance(value, np.ndarray) and value.dtype.names is not None:
        # a record array (scanpy's rank_genes_groups): an R data frame; restored on the way back
        return {"__isthmus_frame__": frame_to_r(pd.DataFrame.from_records(value), where=where, report=report)}
    if isinstance(value, np.ndarray) and value.dtype.kind == "O" and value.ndim == 1 and \
            not all(isinstance(v, str) for v in value):
        # strings with missing values: an R character vector with NA (not the string "None")
        return {"__isthmus_column__": column_to_r(pd.Series(value), where=where, report=report)}
    if sparse.issparse(value):
        return {"__isthmus_matrix__": matrix_to_r(value, what=where, orientation="same")}
    if isinstance(value, (list, tuple)):
        return [uns_to_r(v, where=where, report=report) for v in value]
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "OSU":
            if value.ndim >= 2:
                # reticulate fills an R character matrix in the wrong order: send the values in
                # R's (column-major) order with the dims
                return {"__isthmus_array__": {"values": [str(v) for v in value.ravel(order="F")],
                                              "dim": [int(d) for d in value.shape]}}
            return value.astype(str)
        if value.dtype.kind in "iufb":
            if value.dtype not in (np.float64, np.int32, np.bool_):
                report.changed(where, f"a {value.dtype} array is an R integer / double vector in R "
                                      "(its dtype is restored when written back)")
            if value.size == 1 and value.ndim == 1:
                report.changed(where, "a length-1 array is an R scalar in R (an array again when written back)")
            return value
        report.dropped(where, f"arrays of dtype {value.dtype} have no R counterpart")
        return None
    if isinstance(value, (str, bool, int, float, np.generic)) or value is None:
        return value.item() if isinstance(value, np.generic) else value
    report.dropped(where, f"objects of type {type(value).__name__} have no R counterpart")
    return None


def _mapping_to_r(mapping: Mapping[str, Any], *, where: str, orientation: str, report: ConversionReport):
    out = {}
    for name, value in mapping.items():
        if isinstance(value, pd.DataFrame):
            # obsm DataFrames (e.g. per-cell scores with column names) go as frames
            out[name] = {"__isthmus_frame__": frame_to_r(value, where=f"{where}[{name!r}]", report=report)}
        elif sparse.issparse(value) or isinstance(value, np.ndarray) or hasattr(value, "__array__"):
            mat = value if sparse.issparse(value) else np.asarray(value)
            if not sparse.issparse(mat) and mat.ndim != 2:
                report.dropped(f"{where}[{name!r}]", f"{mat.ndim}-d arrays are not carried")
                continue
            if not sparse.issparse(mat) and mat.dtype.kind not in "iufb":
                report.dropped(f"{where}[{name!r}]", f"dtype {mat.dtype} is not numeric")
                continue
            out[name] = _matrix_for_r(mat, what=f"{where}[{name!r}]", orientation=orientation, report=report)
        else:
            report.dropped(f"{where}[{name!r}]", f"type {type(value).__name__} is not carried")
    return out


def anndata_to_parts(adata: ad.AnnData, report: ConversionReport, where: str = "adata") -> dict[str, Any]:
    if adata.isbacked:
        raise ValueError("isthmus: convert a backed AnnData with read_h5ad(); or call adata.to_memory()")
    x = None
    if adata.X is not None:
        x = _matrix_for_r(adata.X, what=f"{where}.X", report=report)
    parts = {
        "obs_names": [str(n) for n in adata.obs_names],
        "var_names": [str(n) for n in adata.var_names],
        "X": x,
        "layers": _mapping_to_r(adata.layers, where=f"{where}.layers", orientation="transpose", report=report),
        "obs": frame_to_r(adata.obs, where=f"{where}.obs", report=report),
        "var": frame_to_r(adata.var, where=f"{where}.var", report=report),
        "obsm": _mapping_to_r(adata.obsm, where=f"{where}.obsm", orientation="same", report=report),
        "varm": _mapping_to_r(adata.varm, where=f"{where}.varm", orientation="same", report=report),
        "obsp": _mapping_to_r(adata.obsp, where=f"{where}.obsp", orientation="same", report=report),
        "uns": uns_to_r(dict(adata.uns), where=f"{where}.uns", report=report),
    }
    parts["varp"] = _mapping_to_r(adata.varp, where=f"{where}.varp", orientation="same", report=report)
    raw = adata.raw
    if raw is not None:
        parts["raw"] = {
            "var_names": [str(n) for n in raw.var_names],
            "X": _matrix_for_r(raw.X, what=f"{where}.raw.X", report=report),
            "var": frame_to_r(raw.var, where=f"{where}.raw.var", report=report),
        }
        if len(raw.varm):
            report.dropped(f"{where}.raw.varm", "the raw data's varm is not carried (its X and var are)")
    parts["source_types"] = _types.record(X=adata.X, layers=adata.layers, obs=adata.obs, var=adata.var,
                                          obsm=adata.obsm, varm=adata.varm, obsp=adata.obsp, uns=adata.uns,
                                          varp=adata.varp, raw_x=None if raw is None else raw.X,
                                          raw_var_names=None if raw is None else raw.var_names)
    return parts


def _expand_rows(adata: ad.AnnData, obs_names: pd.Index) -> ad.AnnData:
    """The modality over all cells of the MuData: empty rows for cells it did not measure."""
    pos = obs_names.get_indexer(adata.obs_names)
    select = sparse.csr_matrix(
        (np.ones(adata.n_obs), (pos, np.arange(adata.n_obs))), shape=(len(obs_names), adata.n_obs)
    )

    def spread(mat):
        out = select @ mat
        return out.tocsr() if sparse.issparse(out) else np.asarray(out)

    return ad.AnnData(
        X=None if adata.X is None else spread(adata.X),
        obs=pd.DataFrame(index=obs_names),
        var=adata.var,
        layers={k: spread(v) for k, v in adata.layers.items()},
        varm=dict(adata.varm),
        uns=dict(adata.uns),
    )


def check_mudata_axis(mdata) -> None:
    """Seurat and SingleCellExperiment hold modalities of the same cells (MuData's axis 0)."""
    axis = getattr(mdata, "axis", 0)
    if axis != 0:
        what = "features (var)" if axis == 1 else "cells and features"
        raise ValueError(
            f"isthmus: this MuData has axis={axis}: its modalities share {what}, not cells, and Seurat / "
            "SingleCellExperiment have no such layout. Convert each modality on its own (e.g. "
            "as_seurat(mdata$mod[['name']]) or read_h5ad() of each), or build an axis=0 MuData."
        )


def mudata_to_parts(mdata, report: ConversionReport) -> dict[str, Any]:
    check_mudata_axis(mdata)
    obs_names = pd.Index(mdata.obs_names)
    mods = {}
    # a modality's own obs columns travel in the global obs as "<mod>:<column>" (mudata's own
    # spelling, see pull_obs) and go back into the modality on the way out (_mudata_from_parts)
    global_obs = mdata.obs.copy()
    for name, m in mdata.mod.items():
        moved = []
        for col in m.obs.columns:
            key = f"{name}:{col}"
            if key in global_obs.columns:
                report.dropped(f"mdata.mod[{name!r}].obs[{col!r}]", f"the global obs has a column {key!r} already")
                continue
            global_obs[key] = m.obs[col].reindex(obs_names)
            moved.append(str(col))
        partial = m.n_obs != len(obs_names) or not m.obs_names.equals(obs_names)
        if partial:
            if len(m.obsm) or len(m.obsp):
                report.dropped(f"mdata.mod[{name!r}] obsm/obsp", "per-modality obsm / obsp of a "
                               "modality that lacks some cells are not carried (the global ones are)")
            m_full = _expand_rows(m, obs_names)
        else:
            m_full = m
        mods[name] = anndata_to_parts(m_full, report, where=f"mdata.mod[{name!r}]")
        mods[name]["obs"] = frame_to_r(pd.DataFrame(index=obs_names), where=f"mdata.mod[{name!r}].obs", report=report)
        mods[name]["source_types"]["obs"] = _types.record(
            X=None, layers={}, obs=m.obs, var=m.var.iloc[:, :0], obsm={}, varm={}, obsp={}, uns={}).get("obs", {})
        mods[name]["source_types"]["obs_columns"] = moved
    obsm = {k: v for k, v in mdata.obsm.items() if k not in mdata.mod}  # mudata's own presence masks
    return {
        "mod": mods,
        "obs_names": [str(n) for n in mdata.obs_names],
        "obs": frame_to_r(global_obs, where="mdata.obs", report=report),
        "obsm": _mapping_to_r(obsm, where="mdata.obsm", orientation="same", report=report),
        "obsp": _mapping_to_r(mdata.obsp, where="mdata.obsp", orientation="same", report=report),
        "uns": uns_to_r(dict(mdata.uns), where="mdata.uns", report=report),
    }


def obs_presence(mdata) -> dict[str, np.ndarray]:
    """Per modality: which global cells it holds (cells in only some modalities are kept)."""
    return {name: np.asarray(mdata.obs_names.isin(m.obs_names)) for name, m in mdata.mod.items()}


__all__ = [
    "anndata_from_parts",
    "anndata_to_parts",
    "mudata_from_parts",
    "mudata_to_parts",
    "obs_presence",
    "HANDLES",
]
