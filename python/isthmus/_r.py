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
              "torch_import_state"}


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


def integrate(adata, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """tl.integrate for R: the latent space and its record (the model stays on disk)."""
    from . import tl

    key = f"X_{kwargs['method']}"
    tl.integrate(adata, key_added=key, **kwargs)
    return {"latent": adata.obsm[key], "record": dict(adata.uns[kwargs["method"]])}


def cluster(embedding, kwargs: Mapping[str, Any]) -> list[str]:
    import anndata as ad
    import numpy as np

    from . import tl

    work = ad.AnnData(obsm={"X_rep": np.asarray(embedding, dtype=np.float32)})
    return [str(x) for x in tl.cluster(work, use_rep="X_rep", key_added="clusters", **kwargs)]


def transfer_labels(reference, query, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    from . import tl

    result = tl.transfer_labels(reference, query, key_added="transfer", **kwargs)
    return {"table": _columns(result), "latent": query.obsm["X_transfer"],
            "record": dict(query.uns["transfer"])}


def rna_protein(rna, protein, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """tl.rna_protein for R: two lean AnnDatas of the same cells (RNA counts with the batch column;
    protein counts) as one MuData; the per-cell and per-protein results back as arrays."""
    import mudata as md

    from . import tl

    with md.set_options(pull_on_update=False):
        mdata = md.MuData({"rna": rna, "prot": protein})
        out = tl.rna_protein(mdata, rna="rna", protein="prot", key_added="X_joint", **kwargs)
    keys = ("latent", "denoised", "background", "proteins", "rna_pca", "protein_pca")
    return {**{k: out[k] for k in keys if k in out}, "record": dict(out["record"])}


def rna_atac(rna, atac, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """tl.rna_atac for R: two lean AnnDatas over the same cells (RNA counts with the batch column;
    peak counts, all-zero for cells without ATAC) as one MuData; the embeddings back as arrays."""
    import mudata as md

    from . import tl

    with md.set_options(pull_on_update=False), warnings.catch_warnings():
        # genes that share a name with a peak are no concern of this throwaway MuData
        warnings.filterwarnings("ignore", message="var_names are not unique")
        mdata = md.MuData({"rna": rna, "atac": atac})
        out = tl.rna_atac(mdata, rna="rna", atac="atac", key_added="X_joint", **kwargs)
    keys = ("latent", "rna_pca", "atac_lsi")
    return {**{k: out[k] for k in keys if k in out}, "record": dict(out["record"])}


def denoise(adata, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    from . import tl

    values = tl.denoise(adata, key_added="denoised", **kwargs)
    return {"values": values, "record": dict(adata.uns["denoised"])}


def generate(adata, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """A new AnnData of synthetic cells (counts in X only; R converts it with as_seurat() /
    as_sce()) and its record."""
    from . import tl

    synthetic = tl.generate(adata, **kwargs)
    record = dict(synthetic.uns.pop("generate"))
    del synthetic.layers["counts"]
    synthetic.X = synthetic.X.astype("float64")  # R's own number type: the conversion has nothing to report
    return {"adata": synthetic, "record": record}


def model_setup(model_dir: str) -> dict[str, Any]:
    """The cell columns and layer a saved scvi-tools model was set up with."""
    import scvi

    return dict(scvi.model.base.BaseModelClass.load_registry(model_dir)["setup_args"])


def check_generated(real, synthetic, kwargs: Mapping[str, Any]):
    from . import tl

    return _columns(tl.check_generated(real, synthetic, **kwargs))


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


def compare(adata, kwargs: Mapping[str, Any], png: str | None, title: str | None) -> dict[str, Any]:
    from . import tl

    _check_output(png, "png")
    table = tl.compare(adata, **kwargs)
    if png:
        tl.plot_comparison(table, png, title=title)
    return {"table": _columns(table), "png": png or ""}


def bio_scores(labels, embeddings: Mapping[str, Any], neighbors: Mapping[str, Any]) -> dict[str, Any]:
    """tl.bio_scores for R: reductions as matrices; Seurat Neighbor objects as (indices from 1,
    distances)."""
    import numpy as np

    from . import tl

    representations = {name: np.asarray(value) for name, value in embeddings.items()}
    for name, (indices, distances) in neighbors.items():
        representations[name] = ("neighbors", np.asarray(indices, dtype=np.int64) - 1, np.asarray(distances))
    return _columns(tl.bio_scores(list(labels), representations))


# ---- spatial ----------------------------------------------------------------------------------


def spatial_domains(adata, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    from . import tl

    domains = tl.spatial_domains(adata, key_added="domains", **kwargs)
    return {"domains": [str(x) for x in domains], "agreement": adata.obs["domains_agreement"].to_numpy(),
            "embedding": adata.obsm["X_domains"], "record": dict(adata.uns["domains"])}


def domain_scores(adata, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    from . import tl

    return _columns(tl.domain_scores(adata, **kwargs))


def _proportions(frame) -> dict[str, Any]:
    return {"values": frame.to_numpy(dtype="float64"), "types": [str(c) for c in frame.columns]}


def deconvolve(spatial, reference, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    from . import tl

    proportions = tl.deconvolve(spatial, reference, key_added="deconvolution", **kwargs)
    return {**_proportions(proportions), "record": dict(spatial.uns["deconvolution"])}


def map_cells(spatial, reference, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    from . import tl

    result = tl.map_cells(spatial, reference, key_added="mapping", **kwargs)
    return {"imputed": result.imputed.to_numpy(dtype="float64"), "genes": [str(g) for g in result.imputed.columns],
            "cell_types": None if result.cell_types is None else _proportions(result.cell_types),
            "record": dict(spatial.uns["mapping"])}


def interactions(adata, kwargs: Mapping[str, Any], png: str | None, title: str | None) -> dict[str, Any]:
    from . import tl

    _check_output(png, "plot")
    kwargs = dict(kwargs)
    if isinstance(kwargs.get("resource"), Mapping):  # a data.frame from R, as columns
        import numpy as np
        import pandas as pd

        # a one-row data.frame arrives as scalars: keep each column a column, not a string's letters
        kwargs["resource"] = pd.DataFrame({k: list(np.atleast_1d(np.asarray(v, dtype=object)))
                                           for k, v in kwargs["resource"].items()})
    table = tl.interactions(adata, key_added="interactions", **kwargs)
    if png:
        tl.plot_interactions(table, png, title=title)
    record = {k: v for k, v in adata.uns["interactions"].items() if k != "table"}
    return {"table": _columns(table), "png": png or "", "record": record}


# ---- RNA velocity -----------------------------------------------------------------------------


def velocity(spliced, unspliced, kwargs: Mapping[str, Any], png: str | None, title: str | None) -> dict[str, Any]:
    """tl.velocity for R: two lean AnnDatas of the same cells x genes (spliced counts, with the
    colour column and the user's embedding as obsm["X_input"]; unspliced counts) joined into one;
    the per-cell and per-gene results back as arrays (velocity: cells x fitted genes)."""
    from . import tl
    from .tl import _velocity

    _check_output(png, "png")
    kwargs = dict(kwargs)
    color = kwargs.pop("color", None)
    adata = _velocity.spliced_unspliced(spliced, unspliced)
    out = tl.velocity(adata, key_added="velocity", **kwargs)
    if png:
        tl.plot_velocity(adata, png, basis=kwargs.get("basis", "umap"), color=color, title=title)
    keys = ("velocity", "genes", "latent_time", "uncertainty", "confidence", "embedding", "velocity_embedding",
            "embedding_computed")
    return {**{k: out[k] for k in keys}, "png": png or "", "record": dict(out["record"])}


def velocity_scores(adata, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """tl.velocity_scores for R, one method at a time: X holds its velocity (cells x its fitted
    genes), obsm["X_emb"] the embedding and obsm["velocity_emb"] the velocity on it."""
    from . import tl

    adata.layers["velocity"] = adata.X
    return _columns(tl.velocity_scores(adata, basis="emb", vkey="velocity", **kwargs))
