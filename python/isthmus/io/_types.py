"""The dtypes and sparse layouts R cannot hold, recorded on the way into R and restored on the way
back out (issue 15: float32 stays float32, int64 stays int64, a CSC layer stays CSC, a dense X
stays dense, a length-1 uns array stays an array).

R keeps the record with the object (SingleCellExperiment: ``int_metadata(sce)$isthmus_source``;
Seurat: ``obj@tools$isthmus_source``) and hands it back in ``uns["isthmus"]["source_types"]``.
Only parts that would change are listed, so the record is small and empty for R-born objects.

    {"X": {"dtype": "float32", "format": "dense"}, "layers": {name: {...}}, "obsm": ..., "varm": ...,
     "obsp": ..., "obs": {column: dtype}, "var": {column: dtype}, "uns": {"a/b/c": {...}},
     "layer_names": [...]}
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd
from scipy import sparse

# what comes back from R without a record: dense float64 / int32 / bool, CSR (cells x features)
# or CSC (obsm, varm, obsp) float64
_KEPT_DENSE = {np.dtype("float64"), np.dtype("int32"), np.dtype("bool")}


def _describe(value: Any, back_format: str) -> dict[str, str] | None:
    """dtype and layout of a matrix (in memory or an h5py element), if R would change them."""
    fmt, dtype = None, None
    if sparse.issparse(value):
        fmt, dtype = value.format, value.dtype
    elif hasattr(value, "attrs") and hasattr(value, "keys"):  # an h5py group: a sparse matrix
        enc = value.attrs.get("encoding-type", "")
        enc = enc.decode() if isinstance(enc, bytes) else str(enc)
        if enc not in ("csr_matrix", "csc_matrix"):
            return None
        fmt, dtype = enc[:3], value["data"].dtype
    elif hasattr(value, "dtype") and hasattr(value, "shape") and len(value.shape) == 2:
        fmt, dtype = "dense", value.dtype
    else:
        return None
    dtype = np.dtype(dtype)
    if fmt == "dense":
        # X and layers may come back sparse (Seurat keeps counts / data sparse): note dense ones
        if dtype in _KEPT_DENSE and back_format != "csr":
            return None
    elif fmt == back_format and dtype == np.float64:
        return None
    return {"dtype": dtype.str, "format": fmt}


def _columns(frame: pd.DataFrame) -> dict[str, str]:
    out = {}
    for name in frame.columns:
        dtype = frame[name].dtype
        if isinstance(dtype, pd.CategoricalDtype) or dtype == object:
            continue
        if str(dtype) in ("float64", "int32", "bool", "Int32", "boolean"):
            continue
        if pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
            out[str(name)] = str(dtype)
    return out


def _uns(value: Any, path: str, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping):
        for k, v in value.items():
            _uns(v, f"{path}/{k}" if path else str(k), out)
    elif isinstance(value, pd.api.extensions.ExtensionArray) and not isinstance(value, pd.Categorical):
        if str(value.dtype) not in ("Int32", "boolean"):  # what R's integer / logical give back
            out[path] = {"extension": str(value.dtype)}
    elif isinstance(value, np.ndarray) and value.dtype.names is not None:
        out[path] = {"recarray": [[name, value.dtype[name].str] for name in value.dtype.names]}
    elif isinstance(value, np.ndarray) and value.dtype.kind in "iufb":
        length1 = value.ndim == 1 and value.size == 1
        if value.dtype not in _KEPT_DENSE or length1:
            out[path] = {"dtype": value.dtype.str, "length1": bool(length1)}


def _renamed_by_seurat(names) -> list[str] | None:
    """Feature names Seurat rewrites ('_', '|' -> '-'), kept to be given back."""
    names = [str(n) for n in names]
    return names if any("_" in n or "|" in n for n in names) else None


def record(*, X: Any, layers: Mapping[str, Any], obs: pd.DataFrame, var: pd.DataFrame, obsm: Mapping[str, Any],
           varm: Mapping[str, Any], obsp: Mapping[str, Any], uns: Mapping[str, Any],
           varp: Mapping[str, Any] | None = None, raw_x: Any = None,
           raw_var_names: Any = None) -> dict[str, Any]:
    out: dict[str, Any] = {"layer_names": [str(k) for k in layers], "x_absent": X is None,
                           "var_columns": [str(c) for c in var.columns]}
    for key, names in (("var_names", var.index), ("raw_var_names", raw_var_names if raw_var_names is not None else [])):
        kept = _renamed_by_seurat(names)
        if kept:
            out[key] = kept
    x = _describe(X, "csr") if X is not None else None
    if x:
        out["X"] = x
    raw = _describe(raw_x, "csr") if raw_x is not None else None
    if raw:
        out["raw_X"] = raw
    for key, mapping, back in (("layers", layers, "csr"), ("obsm", obsm, "csc"), ("varm", varm, "csc"),
                               ("obsp", obsp, "csc"), ("varp", varp or {}, "csc")):
        found = {str(k): d for k, v in mapping.items() if (d := _describe(v, back))}
        if found:
            out[key] = found
    for key, frame in (("obs", obs), ("var", var)):
        found = _columns(frame)
        if found:
            out[key] = found
    found: dict[str, Any] = {}
    _uns(uns, "", found)
    if found:
        out["uns"] = found
    return out


def _restore_matrix(value: Any, want: Mapping[str, str]) -> Any:
    dtype = np.dtype(want["dtype"])
    fmt = want["format"]
    if dtype.kind in "iu":
        values = value.data if sparse.issparse(value) else np.asarray(value)
        # only values that are still integers of that range go back to an integer dtype
        if values.size and (not np.all(np.isfinite(values)) or np.any(values != np.round(values))
                            or values.min() < np.iinfo(dtype).min or values.max() > np.iinfo(dtype).max):
            return value
    if fmt == "dense":
        out = value.toarray() if sparse.issparse(value) else np.asarray(value)
        return out.astype(dtype, copy=False)
    if not sparse.issparse(value):
        value = sparse.csr_matrix(value)
    out = value.asformat(fmt)
    return out.astype(dtype, copy=False) if out.dtype != dtype else out


def _restore_column(series: pd.Series, dtype: str) -> pd.Series:
    try:
        if dtype.startswith(("int", "uint")) and series.isna().any():
            return series  # a missing value has no place in a NumPy integer column
        return series.astype(dtype)
    except (TypeError, ValueError):
        return series


def _get(uns: Mapping[str, Any], path: str):
    parent = uns
    keys = path.split("/")
    for k in keys[:-1]:
        if not isinstance(parent, Mapping) or k not in parent:
            return None, None
        parent = parent[k]
    return (parent, keys[-1]) if isinstance(parent, Mapping) and keys[-1] in parent else (None, None)


def _original_names(current, kept) -> list[str] | None:
    """``current`` names with Seurat's rewriting undone, where each maps back to one original."""
    if kept is None:
        return None
    kept = [kept] if isinstance(kept, str) else [str(k) for k in kept]
    back: dict[str, str | None] = {}
    for name in kept:
        for rewritten in {name.replace("|", "-"), name.replace("|", "-").replace("_", "-")}:
            back[rewritten] = None if rewritten in back and back[rewritten] != name else name
    out = []
    for name in map(str, current):
        original = name if name in kept else back.get(name)
        if original is None:
            return None  # a name R made up or an ambiguous one: keep the names as they are
        out.append(original)
    return out if len(set(out)) == len(out) else None


def restore(adata, types: Mapping[str, Any]) -> None:
    """Give ``adata`` (built from R) back the dtypes, layouts and names ``types`` recorded."""
    if not types:
        return
    names = _original_names(adata.var_names, types.get("var_names"))
    if names is not None:
        adata.var_names = names
    if adata.raw is not None and types.get("raw_var_names") is not None:
        raw_names = _original_names(adata.raw.var_names, types.get("raw_var_names"))
        if raw_names is not None:
            raw = adata.raw.to_adata()
            raw.var_names = raw_names
            adata.raw = raw
    # a layer R added (Seurat's data beside counts) that is X itself goes: it was not in the file
    names = types.get("layer_names")
    if names is not None and adata.X is not None:
        names = set(_names(names))
        for name in [k for k in adata.layers if k not in names]:
            if _same_memory(adata.layers[name], adata.X):
                del adata.layers[name]
    if types.get("x_absent") and adata.X is not None:
        # Seurat made X from a layer (v4: data is counts; v5: counts is the only layer): the file had none
        if any(_same_memory(m, adata.X) for m in adata.layers.values()):
            adata.X = None
        else:
            missing = [n for n in _names(types.get("layer_names")) if n not in adata.layers]
            if len(missing) == 1:
                adata.layers[missing[0]] = adata.X
                adata.X = None
    if types.get("var_columns") is not None:
        # columns Seurat 5 adds when variable features are set (from highly_variable)
        kept = set(_names(types.get("var_columns")))
        added = [c for c in ("var.features", "var.features.rank") if c in adata.var.columns and c not in kept]
        if added:
            adata.var = adata.var.drop(columns=added)
    if "X" in types and adata.X is not None:
        adata.X = _restore_matrix(adata.X, types["X"])
    if "raw_X" in types and adata.raw is not None:
        raw = adata.raw.to_adata()
        raw.X = _restore_matrix(raw.X, types["raw_X"])
        adata.raw = raw
    for key in ("layers", "obsm", "varm", "obsp", "varp"):
        target = getattr(adata, key)
        for name, want in dict(types.get(key) or {}).items():
            if name in target and not isinstance(target[name], pd.DataFrame):
                target[name] = _restore_matrix(target[name], want)
    for key in ("obs", "var"):
        frame = getattr(adata, key)
        for name, dtype in dict(types.get(key) or {}).items():
            if name in frame.columns:
                frame[name] = _restore_column(frame[name], str(dtype))
    for path, want in dict(types.get("uns") or {}).items():
        parent, k = _get(adata.uns, path)
        if parent is None:
            continue
        if want.get("recarray") is not None and isinstance(parent[k], pd.DataFrame):
            fields = [(str(f[0]), str(f[1])) for f in want["recarray"]]
            frame = parent[k]
            if [f[0] for f in fields] == [str(c) for c in frame.columns]:
                parent[k] = np.rec.fromarrays([frame[c].to_numpy() for c in frame.columns], dtype=fields)
            continue
        if want.get("extension") is not None:
            try:
                parent[k] = pd.array(parent[k], dtype=str(want["extension"]))
            except (TypeError, ValueError):
                pass  # values R changed so that the dtype no longer fits: keep them as they are
            continue
        if isinstance(parent[k], pd.DataFrame) or "dtype" not in want:
            continue
        value = np.asarray(parent[k])
        if value.dtype.kind not in "iufb":
            continue
        if want.get("length1"):
            value = value.reshape(1)
        dtype = np.dtype(want["dtype"])
        if dtype.kind in "iu" and value.size and np.any(value != np.round(value)):
            continue
        parent[k] = value.astype(dtype)


def _names(value: Any) -> list[str]:
    """A list of names from R: one name arrives as a str, none as None or an empty list."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _same_memory(a: Any, b: Any) -> bool:
    da = a.data if sparse.issparse(a) else a
    db = b.data if sparse.issparse(b) else b
    try:
        return np.shares_memory(np.asarray(da), np.asarray(db))
    except (TypeError, ValueError):
        return False
