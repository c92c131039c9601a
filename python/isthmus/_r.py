"""The one module R calls (through reticulate, from R/python.R).

Every function takes and returns plain data: dicts, lists, strings, numbers, NumPy arrays, and
AnnData / MuData objects that R only passes back in. Nothing here knows about Seurat.
"""

from __future__ import annotations

import os
import sys
import warnings
from typing import Any, Mapping

from .io import _parts
from .io._report import ConversionReport

# ---- conversion -----------------------------------------------------------------------------


def anndata_from_r(parts: Mapping[str, Any], copy: bool = False):
    return _parts.anndata_from_parts(parts, copy=bool(copy))


def anndata_on_disk(source: str, kind: str, dataset: str, obs_names, var_names, obs=None, folder: str | None = None):
    """A task's AnnData over counts R has on disk (an HDF5Array / TENxMatrix): an .h5ad in ``folder``
    whose X links to them, opened in backed mode, with the cell columns ``obs`` crossed from R."""
    import os
    import tempfile

    import anndata as ad

    from .tl import _on_disk

    folder = folder or tempfile.mkdtemp(prefix="isthmus-on-disk-")
    os.makedirs(folder, exist_ok=True)
    path = _on_disk.linked_h5ad(os.path.join(folder, "counts.h5ad"), source, kind, dataset, obs_names, var_names)
    adata = ad.read_h5ad(path, backed="r")
    if obs is not None:  # R's frame spec (.frame_to_py), as anndata_from_r reads it
        from .io._frames import frame_from_r

        adata.obs = frame_from_r(obs).set_axis(adata.obs_names)
    return adata


def mudata_from_r(parts: Mapping[str, Any], copy: bool = False):
    return _parts.mudata_from_parts(parts, copy=bool(copy))


def anndata_to_r(adata) -> dict[str, Any]:
    report = ConversionReport()
    parts = _parts.anndata_to_parts(adata, report)
    return {"parts": parts, "report": report.to_dict()}


def mudata_to_r(mdata) -> dict[str, Any]:
    report = ConversionReport()
    parts = _parts.mudata_to_parts(mdata, report)
    presence = {name: mask.astype(bool) for name, mask in _parts.obs_presence(mdata).items()}
    return {"parts": parts, "presence": presence, "report": report.to_dict()}


def fetch(handle: int, start: int, stop: int):
    return _parts.HANDLES.fetch(handle, start, stop)


def release(handle: int) -> None:
    _parts.HANDLES.release(handle)


def release_all() -> None:
    _parts.HANDLES.release_all()


def is_anndata(obj) -> bool:
    import anndata as ad

    return isinstance(obj, ad.AnnData)


def is_mudata(obj) -> bool:
    try:
        import mudata as md
    except ImportError:  # pragma: no cover
        return False
    return isinstance(obj, md.MuData)


# ---- files ------------------------------------------------------------------------------------


def read_h5ad(path: str) -> dict[str, Any]:
    from .io._files import read_h5ad_parts

    report = ConversionReport()
    parts = read_h5ad_parts(path, report)
    return {"parts": parts, "report": report.to_dict()}


def read_h5mu(path: str):
    import mudata as md

    from .io._files import check_h5_file

    check_h5_file(path, expect="h5mu")
    with md.set_options(pull_on_update=False):
        mdata = md.read_h5mu(path)
    return mudata_to_r(mdata)


def _writing(path: str, write) -> None:
    """Run ``write``; if it fails, leave no partial file behind (nor replace nothing we made)."""
    existed = os.path.exists(path)
    try:
        write()
    except BaseException:
        if not existed and os.path.exists(path):
            os.remove(path)
        raise


def write_h5ad(adata, path: str, compression: str | None = None) -> None:
    _writing(path, lambda: adata.write_h5ad(path, compression=compression))


def write_h5mu(mdata, path: str, compression: str | None = None) -> None:
    import mudata as md

    def write():
        with md.set_options(pull_on_update=False):
            mdata.write_h5mu(path, compression=compression)

    _writing(path, write)


# ---- environment ----------------------------------------------------------------------------


def versions() -> dict[str, str]:
    """Versions of the Python stack, for isthmus_doctor() and for the record kept with results."""
    from importlib import metadata

    out = {"python": sys.version.split()[0], "executable": sys.executable}
    for name in ("isthmus", "numpy", "scipy", "pandas", "anndata", "mudata", "scanpy", "torch", "scvi-tools",
                 "lightning", "rpy2", "anndata2ri"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = ""
    return out


def quiet_warnings() -> None:
    """Silence warnings from Lightning and friends that R users cannot act on."""
    warnings.filterwarnings("ignore", module="lightning")
    warnings.filterwarnings("ignore", category=FutureWarning, module="anndata")


# ---- task functions -------------------------------------------------------------------------


_TORCH_IMPORTED_HERE = False


def torch_import_state() -> str:
    """"not imported", "isthmus" (on its own BLAS) or "elsewhere" (maybe on R's BLAS: slow)."""
    if "torch" not in sys.modules:
        return "not imported"
    return "isthmus" if _TORCH_IMPORTED_HERE else "elsewhere"


def _import_torch_with_its_own_blas() -> None:
    """Import torch so that it keeps its own BLAS (MKL) inside the R process.

    R links libblas into the process's global symbol scope; a torch loaded normally then binds
    its sgemm calls to R's BLAS (reference BLAS or OpenBLAS), which made scVI training 4-50x
    slower from R than from Python on the same data. RTLD_DEEPBIND makes torch resolve symbols in
    its own libraries first. Must run before anything imports torch.
    """
    if "torch" in sys.modules or not hasattr(os, "RTLD_DEEPBIND"):
        return
    global _TORCH_IMPORTED_HERE
    flags = sys.getdlopenflags()
    sys.setdlopenflags(flags | os.RTLD_DEEPBIND)
    try:
        import torch  # noqa: F401
    finally:
        sys.setdlopenflags(flags)
    _TORCH_IMPORTED_HERE = True



# Each verb in R makes an AnnData of the counts and the columns it needs, calls one function
# here, and gets plain arrays / frames back to place in the Seurat or SCE object.


# Bridge functions that only move data: they run without torch, so a conversion stays quick.
_DATA_ONLY = {"anndata_from_r", "mudata_from_r", "anndata_to_r", "mudata_to_r", "fetch", "release", "release_all",
              "is_anndata", "is_mudata", "read_h5ad", "read_h5mu", "write_h5ad", "write_h5mu", "versions",
              "torch_import_state", "counts_in_x", "worker_job", "worker_result"}


def call(name: str, *args, argument_names: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Run the bridge function ``name`` for R: {"value": its result, "warnings": isthmus's own
    warnings as text}. R raises those as R warnings, which suppressWarnings(), tryCatch() and
    testthat see; reticulate only prints Python's warnings. Other libraries' warnings are shown
    as before, and everything caught is shown if the call fails.

    The one door from R into the core: every task call first loads torch on its own BLAS
    (``_prepare``), whatever else it imports, and messages name arguments as the R verb does
    (``argument_names``: Python name -> R name)."""
    from . import _arguments

    function = globals().get(name)
    if name.startswith("_") or not callable(function):
        raise ValueError(f"isthmus: no bridge function {name!r}")
    if name not in _DATA_ONLY:
        _prepare()
    failure = None
    with warnings.catch_warnings(record=True) as caught, _arguments.names_of(argument_names, "r"):
        try:
            value = function(*args)
        except BaseException as error:  # raised again below, once what it warned is shown
            failure = error
    # shown only here: inside the block, showing a warning would record it again
    if failure is not None:
        _show(caught)
        raise failure
    ours = [str(w.message) for w in caught if str(w.message).startswith("isthmus:")]
    _show(w for w in caught if not str(w.message).startswith("isthmus:"))
    return {"value": value, "warnings": ours}


def methods_table() -> dict[str, Any]:
    """The method registry (tl.methods()) as columns, for isthmus_methods() and the verbs' choices."""
    from . import tl

    return _columns(tl.methods())


def _show(caught) -> None:
    for w in caught:
        warnings.showwarning(w.message, w.category, w.filename, w.lineno)


def _prepare() -> None:
    _import_torch_with_its_own_blas()
    quiet_warnings()


def _columns(frame) -> dict[str, Any]:
    """A pandas frame as plain columns for R (reticulate's own frame conversion warns under pandas 2)."""
    return {str(name): frame[name].to_numpy() for name in frame.columns}


# ---- the one crossing of a task ---------------------------------------------------------------

# Tasks that draw a figure for the R verb after computing (the figure functions of the core).
_FIGURES = {"compare": "plot_comparison", "interactions": "plot_interactions", "velocity": "plot_velocity"}


def run(name: str, data: list, kwargs: Mapping[str, Any], options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``tl.<name>(*data, **kwargs)`` for an R verb, with one result shape for every task:

    - "written": every entry the task wrote, by its path in the registry's key scheme
      ("obsm/X_scvi", "obs/domains_agreement", "mod/prot/layers/denoised", "uns/scvi");
    - "record": the record (method, parameters, seed, versions, seconds, model directory);
    - "value": what the function returned (a table, labels, a new AnnData).

    ``data`` items are AnnDatas, or plain parts that become one: a dict of AnnDatas of the same
    cells under "modalities" (a MuData) or under "layers" (one AnnData with a layer each, e.g.
    spliced / unspliced), or an "obsm" dict of cells x dimensions matrices (an AnnData of only
    those). A kwarg that is a dict with ".frame" holds a data.frame's columns. ``options``:
    "figure" (a file to draw the task's figure in, checked before the work; "figure_argument" is
    the R argument that named it), "title", "figure_kwargs", and "set_for_user" ({Python argument:
    what the user did}, for arguments the verb set itself, which messages then describe:
    :func:`isthmus._arguments.set_for_user`)."""
    from . import _arguments, tl
    from .tl import _runner

    options = dict(options or {})
    figure = options.get("figure") or None
    _check_output(figure, options.get("figure_argument", "png"))
    kwargs = {key: _argument(value) for key, value in dict(kwargs or {}).items()}  # R's empty list() is []
    with _runner.collecting() as written, warnings.catch_warnings(), \
            _arguments.set_for_user(options.get("set_for_user")):
        # a MuData made for one call: genes that share a name with a peak are no concern of it
        warnings.filterwarnings("ignore", message="var_names are not unique")
        data = [_assembled(item) for item in data]
        value = getattr(tl, name)(*data, **kwargs)
    if figure:
        getattr(tl, _FIGURES[name])(*_figure_input(name, value, data), figure, title=options.get("title"),
                                    **dict(options.get("figure_kwargs") or {}))
    if name not in _runner.TASKS:  # a score or a comparison: only its value counts
        return {"value": _plain_parts(value), "written": {}, "record": None, "figure": figure or ""}
    # uns entries stay in Python (graphs, fitted parameters): R stores the record, which crosses on its own;
    # tables in the record are the task's value, which crosses once
    entries = {path: _plain_parts(v) for path, v in written.entries.items() if not path.startswith("uns/")}
    record = {k: v for k, v in written.record.items() if not hasattr(v, "columns")}
    return {"value": _plain_parts(value), "written": entries, "record": _plain_parts(record), "figure": figure or ""}


def _figure_input(name: str, value, data) -> tuple:
    """What each figure function draws from: the velocity figure the AnnData, the others the table."""
    return (data[0],) if name == "velocity" else (value,)


def _assembled(item):
    """One task input from what R sent (see :func:`run`)."""
    import anndata as ad
    import numpy as np

    if not isinstance(item, Mapping):
        return item
    if "modalities" in item:
        import mudata as md

        with md.set_options(pull_on_update=False):  # run()'s filter covers its name warning
            return md.MuData(dict(item["modalities"]))
    if "layers" in item:
        from .tl import _velocity

        (first, a), (second, b) = list(item["layers"].items())
        joined = _velocity.spliced_unspliced(a, b)
        joined.layers = {first: joined.layers["spliced"], second: joined.layers["unspliced"]}
        return joined
    if "obsm" in item:
        return ad.AnnData(obsm={k: np.asarray(v, dtype=np.float32) for k, v in item["obsm"].items()})
    return item


def _argument(value):
    """A data.frame from R (its columns under ".frame") as a pandas frame; a one-row frame arrives
    as scalars, kept as columns of one value rather than a string's letters."""
    if isinstance(value, Mapping) and ".frame" in value:
        import numpy as np
        import pandas as pd

        return pd.DataFrame({k: list(np.atleast_1d(np.asarray(v, dtype=object))) for k, v in value[".frame"].items()})
    return value


def _plain_parts(value):
    """A result as R reads it without pandas: frames as {".frame": columns, ".rows": row names},
    categorical and object columns as text; AnnDatas, arrays and numbers as they are."""
    import dataclasses

    import numpy as np
    import pandas as pd

    if isinstance(value, pd.DataFrame):
        return {".frame": {str(c): _plain_parts(value[c]) for c in value.columns},
                ".rows": [str(i) for i in value.index]}
    if isinstance(value, (pd.Series, pd.Categorical, pd.Index)):
        array = np.asarray(value)
        return array.astype(str) if array.dtype == object or isinstance(value.dtype, pd.CategoricalDtype) else array
    if isinstance(value, Mapping):
        return {str(k): _plain_parts(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain_parts(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, np.ndarray) and value.dtype == object:
        return value.astype(str)
    return value


def worker_job(task: str, data: list, kwargs: Mapping[str, Any], options: Mapping[str, Any] | None,
               argument_names: Mapping[str, str] | None, folder: str | None = None) -> str:
    """A task call saved for a worker process (``isthmus._worker``) in ``folder`` (default: a new
    temporary one); the job folder's path."""
    from . import _worker

    return _worker.write_job(task, data, kwargs, options, argument_names, folder)


def worker_result(folder: str) -> dict[str, Any]:
    """What the worker process of a job returned: {"value": ..., "warnings": [...]}."""
    from . import _worker

    return _worker.read_result(folder)


def counts_in_x(adata, layer: str = "counts"):
    """An AnnData's counts in X only (the layer moved there), as doubles: R's own number type, so
    that converting it has nothing to report."""
    if layer in adata.layers:
        adata.X = adata.layers.pop(layer)
    adata.X = adata.X.astype("float64")
    return adata


def model_setup(model_dir: str) -> dict[str, Any]:
    """The cell columns and layer a saved scvi-tools model was set up with."""
    import scvi

    return dict(scvi.model.base.BaseModelClass.load_registry(model_dir)["setup_args"])


def _check_output(path: str | None, argument: str) -> None:
    """An output file is checked before the work, so that a typo in its folder does not lose a
    minute of computing."""
    if not path:
        return
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(f"isthmus: {argument} = \"{path}\": the folder {folder} does not exist; create it or "
                         "choose another path.")
    if os.path.isdir(path) or not os.access(folder, os.W_OK):
        raise ValueError(f"isthmus: {argument} = \"{path}\" cannot be written (a folder, or a folder without write "
                         "permission).")
