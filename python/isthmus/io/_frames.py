"""Data-frame columns across the R <-> Python boundary, one column at a time, with exact types.

reticulate's own data.frame conversion loses unused factor levels, turns NA into strings and
integers into doubles; we send each column as a small typed record instead:

    {"type": "factor", "codes": int32 (1-based, NA = INT_MIN), "levels": [...], "ordered": bool}
    {"type": "logical" | "integer", "values": int32 (NA = INT_MIN)}
    {"type": "double", "values": float64 (NA = NaN)}
    {"type": "character", "values": [str, ...], "na": int32 positions (1-based) of NA}

R's NA and NaN in a double column both become NaN in Python and NA on the way back.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd

from ._buffers import R_NA_INTEGER, vector_from_r
from ._report import ConversionReport


def _as_list(value: Any) -> list:
    """reticulate turns a length-1 R character vector into a str and NULL into None."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return list(value)


def column_from_r(spec: Mapping[str, Any]) -> pd.api.extensions.ExtensionArray | np.ndarray:
    kind = spec["type"]
    if kind == "factor":
        codes = vector_from_r(spec["codes"]).astype(np.int64)
        codes = np.where(codes == R_NA_INTEGER, -1, codes - 1)
        return pd.Categorical.from_codes(
            codes, categories=pd.Index(_as_list(spec["levels"]), dtype=object), ordered=bool(spec["ordered"])
        )
    if kind in ("logical", "integer"):
        raw = vector_from_r(spec["values"])
        na = raw == R_NA_INTEGER
        values = raw.astype(bool) if kind == "logical" else raw.astype(np.int32)
        if na.any():
            nullable = pd.arrays.BooleanArray if kind == "logical" else pd.arrays.IntegerArray
            return nullable(values, na)
        return values.copy() if values is raw else values
    if kind == "double":
        return np.array(vector_from_r(spec["values"]), dtype=np.float64)  # own the memory
    if kind == "character":
        values = np.array(_as_list(spec["values"]), dtype=object)
        na = vector_from_r(spec["na"]).astype(np.int64) if spec.get("na") is not None else []
        if len(na):
            values[np.asarray(na) - 1] = None
        return values
    raise ValueError(f"isthmus: unknown column type {kind!r}")


def frame_from_r(spec: Mapping[str, Any]) -> pd.DataFrame:
    names = _as_list(spec["names"])
    columns = spec["columns"] or []
    index = pd.Index(_as_list(spec["row_names"]), dtype=object)
    data = {name: column_from_r(col) for name, col in zip(names, columns)}
    frame = pd.DataFrame(data, index=index)
    frame.columns = pd.Index(names, dtype=object)  # keep duplicates / odd names exactly
    return frame


def column_to_r(series: pd.Series, *, where: str, report: ConversionReport) -> dict[str, Any]:
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        codes = series.cat.codes.to_numpy().astype(np.int32)
        codes = np.where(codes < 0, R_NA_INTEGER, codes + 1).astype(np.int32)
        levels = [str(c) for c in dtype.categories]
        if not all(isinstance(c, str) for c in dtype.categories):
            report.changed(where, "categories that are not strings became character factor levels")
        return {"type": "factor", "codes": codes, "levels": levels, "ordered": bool(dtype.ordered)}
    if pd.api.types.is_bool_dtype(dtype):
        mask = series.isna().to_numpy()
        values = series.to_numpy(dtype=np.int32, na_value=0)
        values[mask] = R_NA_INTEGER
        return {"type": "logical", "values": values.astype(np.int32)}
    if pd.api.types.is_integer_dtype(dtype):
        mask = series.isna().to_numpy()
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        finite = values[~mask]
        if finite.size and (finite.min() <= R_NA_INTEGER or finite.max() > np.iinfo(np.int32).max):
            report.changed(where, "integers beyond R's 32-bit range became doubles")
            return {"type": "double", "values": values}
        out = np.where(mask, R_NA_INTEGER, np.nan_to_num(values)).astype(np.int32)
        if np.dtype(getattr(dtype, "numpy_dtype", dtype)) != np.int32:
            report.changed(where, f"{dtype} values are R integers (int32) in R (the dtype is restored when written back)")
        return {"type": "integer", "values": out}
    if pd.api.types.is_float_dtype(dtype):
        if np.dtype(getattr(dtype, "numpy_dtype", dtype)) != np.float64:
            report.changed(where, f"{dtype} values are R doubles in R (the dtype is restored when written back)")
        return {"type": "double", "values": series.to_numpy(dtype=np.float64, na_value=np.nan)}
    # strings, and anything else as its string form
    mask = series.isna().to_numpy()
    raw = series.to_numpy(dtype=object)
    if not all(isinstance(v, str) for v in raw[~mask]):
        report.changed(where, f"values of type {dtype} were written as character")
    values = ["" if m else str(v) for v, m in zip(raw, mask)]
    return {"type": "character", "values": values, "na": (np.flatnonzero(mask) + 1).astype(np.int32)}


def frame_to_r(frame: pd.DataFrame, *, where: str, report: ConversionReport) -> dict[str, Any]:
    columns = []
    for position, name in enumerate(frame.columns):
        columns.append(column_to_r(frame.iloc[:, position], where=f"{where}[{name!r}]", report=report))
    return {
        "names": [str(c) for c in frame.columns],
        "row_names": [str(i) for i in frame.index],
        "columns": columns,
    }
