"""What every task shares: input checks, quiet seeded training with a concise progress line, the
record kept beside each result, and where trained models live on disk."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import logging
import os
import sys
import tempfile
import warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from .. import _arguments, _progress
from . import _on_disk

# A value scANVI reads as "no label"; NA labels in the user's column become this category.
UNLABELLED = "isthmus:unlabelled"


# ---- input checks ---------------------------------------------------------------------------


def matrix_of(adata, layer: str | None):
    _on_disk.check_layer(adata, layer)
    if layer is not None and layer not in adata.layers:
        raise ValueError(f"isthmus: layer {layer!r} not found; layers are {list(adata.layers)}")
    return adata.layers[layer] if layer is not None else adata.X


def check_counts(adata, layer: str | None, *, allow_non_integer: bool = False) -> None:
    """Count models need non-negative integers: refuse normalised data unless the user opts in."""
    mat = matrix_of(adata, layer)
    if _on_disk.is_backed(adata):  # X on disk (matrix_of refuses a layer there): its first cells
        values = _on_disk.value_sample(mat)
    else:
        values = mat.data if sparse.issparse(mat) else np.asarray(mat).ravel()
    sample = values[:1_000_000]
    where = f"layers[{layer!r}]" if layer is not None else "X"
    check_non_negative(sample, where, "count models need raw counts")
    if not sample.size or not sample.any():
        raise ValueError(f"isthmus: {where} holds no counts (every value is zero); pass the raw counts.")
    if not allow_non_integer and not np.all(np.equal(np.mod(sample, 1), 0)):
        raise ValueError(
            f"isthmus: scvi-tools models raw counts, but {where} holds non-integer values. Pass the counts "
            f"(in R: the assay's 'counts' layer), or set {_arguments.setting('allow_non_integer', True)} for "
            "non-negative non-integer data such as ambient-corrected counts."
        )


def check_non_negative(values: np.ndarray, where: str, advice: str) -> None:
    """Counts (and log-normalised values) are never negative; refuse data that are."""
    if values.size and values.min() < 0:
        raise ValueError(f"isthmus: {where} holds negative values; {advice}.")


def obsm_of(adata, key: str) -> np.ndarray:
    if key not in adata.obsm:
        raise ValueError(f"isthmus: obsm[{key!r}] not found; obsm has {list(adata.obsm)}")
    return np.asarray(adata.obsm[key])


def check_column(adata, key: str | None, what: str, *, allow_na: bool = False) -> None:
    if key is None:
        return
    if key not in adata.obs:
        raise ValueError(f"isthmus: {what} column {key!r} is not in the cell metadata (obs).")
    if not allow_na and adata.obs[key].isna().any():
        n = int(adata.obs[key].isna().sum())
        raise ValueError(f"isthmus: {what} column {key!r} has {n} NA values; give every cell a {what}.")
    if what == "batch":
        check_categorical(adata.obs[key], key, what)


def check_categorical(values: pd.Series, key: str, what: str) -> None:
    """A batch is a category: a column of measurements (fractional numbers, or a distinct whole
    number for most cells) given as one is refused rather than read as dozens of batches."""
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return
    known = values.dropna().to_numpy(dtype=np.float64)
    distinct = np.unique(known).size
    fractional = known.size and not np.all(np.equal(np.mod(known, 1), 0))
    if fractional or (distinct > 20 and distinct > known.size / 2):
        raise ValueError(
            f"isthmus: {what} column {key!r} holds continuous numbers ({distinct} distinct values), not "
            f"categories. Give a column of {what} names, or pass a measurement such as the percentage of "
            f"mitochondrial counts as a continuous covariate ({_arguments.name('continuous_covariate_keys')}).")


def mudata_column(mdata, key: str, cells, *, rna: str, what: str = "batch") -> pd.Series:
    """Column ``key`` of a MuData's obs, else of its RNA modality's obs, for ``cells`` (NA for a
    cell it does not cover; callers check NAs)."""
    source = mdata.obs if key in mdata.obs else mdata.mod[rna].obs
    if key not in source:
        raise ValueError(f"isthmus: {what} column {key!r} is neither in the MuData's obs nor in {rna}'s obs.")
    return source[key].reindex(pd.Index(cells))


def gene_overlap(first_genes, second_genes, *, min_overlap: float, first: str = "reference",
                 second: str = "query") -> dict[str, Any]:
    """Share of the ``first`` data's genes found in the ``second``; refused when too few are."""
    first_genes, second_genes = pd.Index(first_genes), pd.Index(second_genes)
    shared = first_genes.intersection(second_genes)
    share = len(shared) / max(len(first_genes), 1)
    report = {"first_genes": len(first_genes), "second_genes": len(second_genes), "shared_genes": len(shared),
              "share_of_first": share}
    if share < min_overlap:
        raise ValueError(
            f"isthmus: the {second} has {len(shared)} of the {first}'s {len(first_genes)} genes ({share:.0%}); at "
            f"least {min_overlap:.0%} are needed (min_gene_overlap). Are both on the same gene identifiers (symbols "
            "vs Ensembl IDs) and species?")
    return report


def labels_with_unlabelled(adata, labels_key: str, min_cells: int = 3) -> pd.Series:
    """The labels as strings, NA meaning "not labelled" (scANVI's unlabelled category). Labels
    with fewer than ``min_cells`` cells cannot be learnt; they become unlabelled, with a warning."""
    labels = adata.obs[labels_key]
    out = labels.astype("object").where(labels.notna(), UNLABELLED).astype(str)
    counts = out[out != UNLABELLED].value_counts()
    rare = sorted(counts.index[counts < min_cells])
    if rare:
        warnings.warn(f"isthmus: labels with fewer than {min_cells} cells are treated as unlabelled: "
                      f"{', '.join(rare)}", UserWarning, stacklevel=3)
        out = out.where(~out.isin(rare), UNLABELLED)
    if (out != UNLABELLED).sum() == 0:
        raise ValueError(f"isthmus: labels column {labels_key!r} has no labelled cell.")
    return out


# ---- training -------------------------------------------------------------------------------


@contextlib.contextmanager
def torch_threads_kept():
    """Put a loaded torch's thread count back afterwards. numba's parallel code (scanpy's variable
    genes and neighbours, UMAP, scVelo) runs on the OpenMP runtime torch shares and, once scvi-tools
    is loaded, sets the count to every core, over OMP_NUM_THREADS or torch.set_num_threads(): on a busy
    machine torch then trains many times slower (DestVI 15x on 2 cores)."""
    torch = sys.modules.get("torch")
    threads = torch.get_num_threads() if torch is not None else None
    try:
        yield
    finally:
        if threads is not None and torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


@contextlib.contextmanager
def interrupt_handler_kept():
    """Put the process's own SIGINT handler back afterwards, at the operating-system level.

    Lightning's trainer, on teardown, re-installs through Python's signal module every handler it
    saw when it started. In a process that embeds Python (R through reticulate) that replaces the
    host's SIGINT handler with Python's: after the first training of an R session, Esc / Ctrl-C
    never reached R again. Python cannot read the host's handler, so it is saved and restored with
    sigaction() itself (POSIX only; elsewhere this does nothing)."""
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        saved = ctypes.create_string_buffer(512)  # larger than struct sigaction on every libc
        kept = libc.sigaction(int(signal.SIGINT), None, saved) == 0
    except (OSError, AttributeError):
        kept = False
    try:
        yield
    finally:
        if kept:
            libc.sigaction(int(signal.SIGINT), saved, None)


def quiet_lightning() -> None:
    # Lightning's start-up lines (seed, GPU/TPU available, tips) say nothing a user can act on
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)


def seed_everything(seed: int) -> None:
    import scvi

    quiet_lightning()
    # scvi-tools' INFO lines ("File ... already downloaded", "Training for N epochs") repeat what
    # the caller knows; the progress callback below is the one voice during training
    scvi.settings.verbosity = logging.WARNING
    scvi.settings.seed = int(seed)  # seeds Python, NumPy and torch


# ---- where models run ------------------------------------------------------------------------

ACCELERATORS = ("auto", "cpu", "gpu", "cuda")


@dataclasses.dataclass(frozen=True)
class Device:
    """Where the models of one task call run, resolved once by the task runner: Lightning's
    ``accelerator`` and ``devices`` for scvi-tools, the torch device for isthmus's own models, the
    ``batch_size`` asked for (None: each model's own) and ``name``, the device the record keeps."""

    accelerator: str = "cpu"
    devices: Any = 1
    batch_size: int | None = None
    # Lightning's strategy when several devices train one model ("ddp..."); None with one device
    strategy: str | None = None

    @property
    def count(self) -> int:
        return len(self.indices)

    @property
    def name(self) -> str:
        if self.accelerator == "cpu":
            return "cpu" if self.count == 1 else f"cpu x{self.count} ({self.strategy})"
        return ",".join(f"cuda:{i}" for i in self.indices) + (f" ({self.strategy})" if self.count > 1 else "")

    @property
    def indices(self) -> list[int]:
        return list(self.devices) if isinstance(self.devices, list) else list(range(int(self.devices)))

    @property
    def torch(self) -> str:
        """The one torch device isthmus's own (single-device) models use."""
        return "cpu" if self.accelerator == "cpu" else f"cuda:{self.indices[0]}"

    def train_kwargs(self) -> dict[str, Any]:
        """scvi-tools' ``train()`` keywords (Lightning's Trainer)."""
        out = {"accelerator": self.accelerator, "devices": self.devices}
        if self.batch_size is not None:
            out["batch_size"] = int(self.batch_size)
        if self.count > 1:
            out["strategy"] = self.strategy
            nodes = cluster_nodes(self.count)
            if nodes > 1:
                out["num_nodes"] = nodes
        return out

    def load_kwargs(self) -> dict[str, Any]:
        """scvi-tools' ``load()`` / ``load_query_data()`` keywords (one device)."""
        return {"accelerator": self.accelerator, "device": self.indices[0] if self.accelerator != "cpu" else "auto"}


_device = Device()  # the CPU outside a task call (tests, the benchmarks' direct calls)


# scvi-tools' advice for its models under DDP: some parameters (e.g. the library-size encoder when
# the observed library is used) take no part in a step's loss, which plain "ddp" refuses
DDP_STRATEGY = "ddp_find_unused_parameters_true"


def resolve_device(accelerator: str, devices: Any = "auto", batch_size: int | None = None,
                   strategy: str | None = "auto") -> Device:
    """``accelerator`` "auto": the GPU when torch sees one (CUDA), else the CPU; "cpu"; "gpu" / "cuda".
    ``devices`` "auto" is one device, a number of devices or a list of GPU indices; several devices
    train one model with Lightning's DDP (``strategy`` "auto": :data:`DDP_STRATEGY`, else any of
    Lightning's DDP strategies by name), which starts one process per device by running the caller's
    script again: a Python script or isthmus's worker, not an R session (:func:`check_several_devices`).
    Errors name the caller's arguments."""
    import torch

    if accelerator not in ACCELERATORS:
        raise ValueError(f"isthmus: {_arguments.name('accelerator')} must be one of "
                         f"{', '.join(map(_arguments.value_text, ACCELERATORS))}; got {_arguments.value_text(accelerator)}.")
    has_gpu = torch.cuda.is_available()
    if accelerator in ("gpu", "cuda") and not has_gpu:
        raise ValueError(f"isthmus: {_arguments.name('accelerator')} = {_arguments.value_text(accelerator)}, but torch sees no GPU "
                         f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'no'}); use "
                         f"{_arguments.value_text('auto')} or {_arguments.value_text('cpu')}.")
    kind = "gpu" if accelerator in ("gpu", "cuda") or (accelerator == "auto" and has_gpu) else "cpu"
    device = Device(kind, _devices(devices, kind, torch.cuda.device_count() if has_gpu else 0), batch_size)
    if device.count == 1:
        return device
    strategy = DDP_STRATEGY if strategy in (None, "auto") else strategy
    if not isinstance(strategy, str) or "ddp" not in strategy:
        raise ValueError(f"isthmus: {_arguments.name('strategy')} must be \"auto\" or one of Lightning's DDP strategies "
                         f"(e.g. {_arguments.value_text(DDP_STRATEGY)}); got {_arguments.value_text(strategy)}.")
    return dataclasses.replace(device, strategy=strategy)


def check_several_devices(device: Device, method: str, multi_device: bool) -> None:
    """Several devices need a method that trains under DDP and a process Lightning can start again
    once per device (it runs ``python <script>`` / ``python -m <module>`` with the same arguments)."""
    if device.count == 1:
        return
    if not multi_device:
        raise ValueError(f"isthmus: {_arguments.name('devices')} = {device.count}: {method} trains on one device; "
                         f"give one (several devices train scVI, scANVI, totalVI and MultiVI).")
    import __main__

    if getattr(__main__, "__spec__", None) is None and not os.path.isfile(getattr(__main__, "__file__", "") or ""):
        raise ValueError(f"isthmus: {_arguments.name('devices')} = {device.count}: Lightning starts one process per "
                         "device by running this program again, which an R session or a notebook cannot be; from R "
                         "isthmus runs it in a worker process, from Python run it in a script.")


def cluster_nodes(devices_per_node: int) -> int:
    """Nodes of a multi-node run, from the launcher's environment (torchrun's WORLD_SIZE, SLURM's
    task count): Lightning needs ``num_nodes`` to match them. 1 on one machine."""
    for variable in ("WORLD_SIZE", "SLURM_NTASKS"):
        world = int(os.environ.get(variable, "0") or 0)
        if world > devices_per_node:
            return world // devices_per_node
    return 1


def is_rank_zero() -> bool:
    """Whether this is the first process of a DDP run (or no DDP run): the other ranks run the same
    program to train, but only the first saves models and hands the result back. Read from the
    launchers' environment (torchrun's RANK, SLURM's task id, Lightning's node and local ranks)."""
    return all(int(os.environ.get(variable, "0") or 0) == 0
               for variable in ("RANK", "SLURM_PROCID", "NODE_RANK", "LOCAL_RANK"))


def _devices(devices: Any, kind: str, n_gpus: int) -> Any:
    shown = _arguments.name("devices")
    if isinstance(devices, str):
        if devices != "auto":
            raise ValueError(f"isthmus: {shown} must be \"auto\", a number of devices or a list of GPU indices; "
                             f"got {_arguments.value_text(devices)}.")
        return 1
    values = list(np.asarray(devices).ravel()) if isinstance(devices, (list, tuple, np.ndarray)) else [devices]
    if not values or not all(float(v).is_integer() and v >= 0 for v in values):
        raise ValueError(f"isthmus: {shown} must be \"auto\", a number of devices or a list of GPU indices; "
                         f"got {_arguments.value_text(devices)}.")
    if isinstance(devices, (list, tuple, np.ndarray)):
        indices = [int(v) for v in values]
        if kind == "cpu":
            raise ValueError(f"isthmus: {shown} lists GPU indices, but the models run on the CPU.")
        if max(indices) >= n_gpus:
            raise ValueError(f"isthmus: {shown} asks for GPU {max(indices)}; torch sees {n_gpus}.")
        count = len(indices)
    else:
        count = int(values[0])
        if count < 1 or (kind == "gpu" and count > n_gpus):
            raise ValueError(f"isthmus: {shown} must be between 1 and {max(n_gpus, 1)}; got {count}.")
        indices = count
    return indices


@contextlib.contextmanager
def using_device(device: Device):
    """Run one task call's models on ``device`` (the runner sets it; :func:`train`, :func:`load_model`
    and the own models read it)."""
    global _device
    before, _device = _device, device
    try:
        yield device
    finally:
        _device = before


def current_device() -> Device:
    return _device


def train(model, *, label: str, max_epochs: int | None, verbose: bool, **train_kwargs) -> None:
    """Train on the call's device (:func:`using_device`) with the concise progress line (the tasks
    time themselves)."""
    train_kwargs = {**_device.train_kwargs(), **train_kwargs}
    if _device.count > 1:  # under DDP scvi-tools keeps the loss history on disk, by default in the working folder
        train_kwargs.setdefault("log_save_dir", os.path.join(tempfile.gettempdir(), "isthmus-lightning-logs"))
    if verbose:
        train_kwargs["callbacks"] = [_progress.lightning_callback(label)]
    with warnings.catch_warnings():
        # small data: fewer batches per epoch than Lightning's logging interval; harmless
        warnings.filterwarnings("ignore", message=".*smaller than the logging interval.*")
        # scArches surgery freezes the reference's layers on purpose
        warnings.filterwarnings("ignore", message=".*module\\(s\\) in eval mode.*")
        if max_epochs is not None:  # None: the model's own default (MultiVI 500, SCVI by data size)
            train_kwargs["max_epochs"] = int(max_epochs)
        model.train(
            enable_progress_bar=False,
            enable_model_summary=False,
            **train_kwargs,
        )


# ---- records and models on disk -------------------------------------------------------------


def versions() -> dict[str, str]:
    from importlib import metadata

    out = {}
    for name in ("isthmus", "scvi-tools", "torch", "anndata", "scanpy"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = ""
    return out


def record(method: str, params: dict[str, Any], *, seconds: float, model_dir: str | None = None) -> dict[str, Any]:
    """What is kept beside a result (uns in Python, Tool()/metadata in R): enough to reproduce or
    reload it. None values become "" so the record survives .h5ad and R lists."""
    return {
        "method": method,
        "params": {k: ("" if v is None else v) for k, v in params.items()},
        "model_dir": model_dir or "",
        "seconds": float(seconds),
        "created": datetime.datetime.now().isoformat(timespec="seconds"),
        "versions": versions(),
    }


def model_directory(model_dir: str | None, method: str) -> str:
    """Where a trained model is saved: the user's directory, or a fresh one under the session's
    temporary directory (enough for later verbs in the same session; save_model() keeps it)."""
    if model_dir:
        return os.path.abspath(os.path.expanduser(model_dir))
    root = os.path.join(tempfile.gettempdir(), "isthmus-models")
    os.makedirs(root, exist_ok=True)
    return tempfile.mkdtemp(prefix=f"{method}-", dir=root)


def save_model(model, model_dir: str) -> str:
    if is_rank_zero():  # under DDP every rank holds the same weights; one writes them
        model.save(model_dir, overwrite=True, save_anndata=False)
    return model_dir


def lean_copy(adata, genes: pd.Index | None = None, *, layer: str | None = None, verbose: bool = False):
    """An AnnData over the same matrices (shared, not copied) with its own obs, var and uns: scvi-tools
    writes its registry (``_scvi_*`` columns and uns entries) into the object a model is set up on,
    and that should not be the user's. ``genes``: only these columns (copied; None: every gene).
    ``layer``: where the model reads counts (on disk they can only be X). ``verbose``: progress of
    the copy of counts on disk."""
    import anndata as ad

    if _on_disk.is_backed(adata):  # counts on disk stay there, the model's genes copied beside them
        _on_disk.check_layer(adata, layer)
        return _on_disk.working_copy(adata, adata.var_names if genes is None else pd.Index(genes),
                                     shared=current_device().count > 1, verbose=verbose)
    if genes is None or len(genes) == adata.n_vars and adata.var_names.equals(pd.Index(genes)):
        return ad.AnnData(X=adata.X, obs=adata.obs.copy(), var=adata.var.copy(), layers=dict(adata.layers.items()))
    at = adata.var_names.get_indexer(genes)
    return ad.AnnData(X=adata.X[:, at], obs=adata.obs.copy(), var=adata.var.iloc[at].copy(),
                      layers={k: v[:, at] for k, v in adata.layers.items()})


# ---- the genes a count model trains on ---------------------------------------------------------

VARIABLE, ALL = "variable", "all"
N_VARIABLE = 2000  # the field's standard number of variable genes (Seurat, scanpy, scvi-tools' tutorials)


def model_genes(adata, genes, *, layer: str | None, batch_key: str | None = None,
                n_top_genes: int = N_VARIABLE) -> tuple[pd.Index, str]:
    """The genes a count model trains on and where they came from (for the record). ``genes``:
    "variable" (the default): the data's own variable genes (``var["highly_variable"]``, what
    Seurat's VariableFeatures() become) when it marks some, else the field's standard selection on
    the counts: scanpy's "seurat_v3" flavour, per batch when there are batches, ``n_top_genes``
    genes (every gene when the data has no more); "all": every gene; or a list of gene names."""
    names = adata.var_names
    if not isinstance(genes, str) and len(genes) == 1 and genes[0] in (VARIABLE, ALL):
        genes = genes[0]  # R's length-1 vector, or the runner's list of one
    if isinstance(genes, str) and genes == ALL:
        return names, "all"
    if isinstance(genes, str) and genes == VARIABLE:
        if "highly_variable" in adata.var and adata.var["highly_variable"].fillna(False).astype(bool).any():
            return names[adata.var["highly_variable"].fillna(False).astype(bool).to_numpy()], "var['highly_variable']"
        if adata.n_vars <= n_top_genes:
            return names, f"all (no more than {n_top_genes} genes)"
        genes, span = _seurat_v3_genes(adata, layer, batch_key, n_top_genes)
        return genes, "seurat_v3" + (" per batch" if batch_key else "") + (f" (loess span {span})" if span != 0.3 else "")
    wanted = pd.Index([genes] if isinstance(genes, str) else [str(g) for g in genes])
    missing = wanted.difference(names)
    if len(missing) or not len(wanted):
        raise ValueError(f"isthmus: {_arguments.name('genes')} must be {_arguments.value_text(VARIABLE)}, "
                         f"{_arguments.value_text(ALL)} or names of the data's genes; {len(missing)} of "
                         f"{len(wanted)} are not in the data (e.g. {', '.join(map(str, missing[:5]))}).")
    return wanted.unique(), "given"


def _seurat_v3_genes(adata, layer, batch_key, n_top_genes: int) -> tuple[pd.Index, float]:
    """scanpy's "seurat_v3" selection (variance of the counts after a fitted mean-variance trend;
    genes ranked by their median rank across batches) on a lean copy of the counts, and the loess
    span of the trend: Seurat's 0.3, or wider where a small batch makes that fit singular (skmisc's
    "near singularities"), as Seurat users widen `loess.span`; an error naming ``genes`` if none fits."""
    import anndata as ad
    import scanpy as sc
    import torch  # noqa: F401  (loaded first, so that its thread count is put back after numba's)

    obs = pd.DataFrame(index=adata.obs_names)
    if batch_key is not None:
        obs["batch"] = adata.obs[batch_key].astype(str).to_numpy()
    counts = matrix_of(adata, layer)
    if _on_disk.is_backed(adata):  # the trend from a seeded sample of cells on disk (all, up to 100,000)
        cells = _on_disk.cells_for_selection(adata.n_obs)
        cells = np.arange(adata.n_obs) if cells is None else cells
        counts, obs = _on_disk.rows(counts, cells), obs.iloc[cells]
    lean = ad.AnnData(X=counts, obs=obs, var=pd.DataFrame(index=adata.var_names))
    with warnings.catch_warnings(), torch_threads_kept():  # training after it runs on the caller's threads
        # allow_non_integer data: the user opted in to non-integer counts
        warnings.filterwarnings("ignore", message=".*expects raw count data.*")
        for span in (0.3, 0.5, 1.0):
            try:
                table = sc.pp.highly_variable_genes(lean, flavor="seurat_v3", n_top_genes=int(n_top_genes), span=span,
                                                    batch_key="batch" if batch_key is not None else None,
                                                    inplace=False)
                break
            except ValueError as error:  # skmisc's loess: "near singularities", "reciprocal condition number"
                if span == 1.0:
                    raise ValueError(f"isthmus: the variable genes could not be chosen (scanpy's seurat_v3 trend: "
                                     f"{error}); give {_arguments.name('genes')} as gene names, or "
                                     f"{_arguments.value_text(ALL)}.") from error
    return adata.var_names[table["highly_variable"].to_numpy(dtype=bool)], span


def gene_facts(genes: pd.Index, source: str) -> dict[str, Any]:
    """What the record keeps about the genes a model was trained on."""
    return {"genes_used": [str(g) for g in genes], "n_genes_used": int(len(genes)), "genes_from": source}


def model_var_names(model) -> pd.Index:
    """The genes a trained scvi-tools model (or the directory of a saved one) was trained on."""
    if not isinstance(model, str):
        return pd.Index(model.adata.var_names)
    import torch

    saved = torch.load(os.path.join(model, "model.pt"), map_location="cpu", weights_only=False)
    return pd.Index(saved["var_names"]).astype(str)


def trained_model(model, adata, task: str):
    """The model a task runs on and the data to run it on: a trained SCVI/SCANVI or the directory of a
    saved one, with ``adata`` as a lean copy (on the model's genes) the model's registry may be
    written into."""
    if model is None:
        raise ValueError(f"isthmus: {task} needs a trained model ({_arguments.name('model')}): run embed/integrate "
                         "first.")
    if isinstance(model, str):
        saved_model_class(model)  # a clear error for a directory with no model
    genes = model_var_names(model)
    missing = genes.difference(adata.var_names)
    if len(missing):
        raise ValueError(f"isthmus: the model was trained on {len(genes)} genes, {len(missing)} of which are not in "
                         f"the data (e.g. {', '.join(map(str, missing[:5]))}); give the data it was trained on.")
    work = lean_copy(adata, genes)
    return (load_model(model, work) if isinstance(model, str) else model), work


# every class of model isthmus saves, by the name scvi-tools writes into a saved registry
SCVI_MODEL_CLASSES = {
    "SCVI": ("scvi.model", "SCVI"), "SCANVI": ("scvi.model", "SCANVI"), "TOTALVI": ("scvi.model", "TOTALVI"),
    "MULTIVI": ("scvi.model", "MULTIVI"), "CondSCVI": ("scvi.model", "CondSCVI"), "DestVI": ("scvi.model", "DestVI"),
    "RNAStereoscope": ("scvi.external", "RNAStereoscope"),
    "SpatialStereoscope": ("scvi.external", "SpatialStereoscope"), "GIMVI": ("scvi.external", "GIMVI"),
    "VELOVI": ("velovi", "VELOVI"),
}


def saved_model_class(model_dir: str) -> str:
    """The class of the model saved in ``model_dir`` (isthmus's own models and every scvi-tools
    model isthmus trains), or a clear error when the directory holds none."""
    import scvi

    from ..models._base import SAVED_FILE, is_saved_module

    if not os.path.isdir(model_dir):
        raise ValueError(f"isthmus: no saved model in {model_dir!r} (no such directory).")
    if is_saved_module(model_dir):
        import json

        with open(os.path.join(model_dir, SAVED_FILE)) as handle:
            return json.load(handle)["class"]
    if not os.path.isfile(os.path.join(model_dir, "model.pt")):
        raise ValueError(f"isthmus: {model_dir!r} holds no saved model (no model.pt); give the directory a model "
                         "was saved in (the record's model_dir, or SaveModel()'s directory).")
    try:
        return scvi.model.base.BaseModelClass.load_registry(model_dir)["model_name"]
    except Exception:  # GIMVI saves its two registries under other keys
        import torch

        saved = torch.load(os.path.join(model_dir, "model.pt"), map_location="cpu", weights_only=False)
        return saved.get("attr_dict", {}).get("registry_", {}).get("model_name", "") or "GIMVI"


def load_model(model_dir: str, adata=None):
    """Reload any model isthmus saved: its own models (no data needed) and the scvi-tools / veloVI
    models, for ``adata`` (the data the model was set up on: same genes and columns).

    For SCVI / SCANVI, ``adata`` needs the model's batch column; a missing label column is added as
    all-unlabelled (a SCANVI model reused on new cells) and a missing counts layer is taken from X.
    """
    import importlib

    name = saved_model_class(model_dir)
    from ..models._base import MODEL_CLASSES, SavableModule

    if name in MODEL_CLASSES:
        return SavableModule.load(model_dir)
    if name not in SCVI_MODEL_CLASSES:
        raise ValueError(f"isthmus: {model_dir!r} holds a {name} model, which isthmus does not load.")
    if adata is None:
        raise ValueError(f"isthmus: a saved {name} model is reloaded for the data it was set up on; pass it (adata).")
    module, attribute = SCVI_MODEL_CLASSES[name]
    model_class = getattr(importlib.import_module(module), attribute)
    quiet_lightning()
    import scvi

    scvi.settings.verbosity = logging.WARNING  # "File ... already downloaded" says nothing here
    if name in ("SCVI", "SCANVI"):
        registry = scvi.model.base.BaseModelClass.load_registry(model_dir)
        setup = registry["setup_args"]
        if setup.get("batch_key"):
            check_column(adata, setup["batch_key"], "batch")
            _check_known_batches(adata, setup["batch_key"], registry)
        if setup.get("labels_key") and setup["labels_key"] not in adata.obs:
            adata.obs[setup["labels_key"]] = UNLABELLED if name == "SCANVI" else "0"
        if setup.get("layer") and setup["layer"] not in adata.layers:
            adata.layers[setup["layer"]] = adata.X
    return model_class.load(model_dir, adata=adata, **_device.load_kwargs())


def _check_known_batches(adata, batch_key: str, registry) -> None:
    """A batch the saved model never saw cannot be decoded (scvi-tools would say so in terms of
    ``extend_categories``); name the batches and what to do instead."""
    try:
        known = registry["field_registries"]["batch"]["state_registry"]["categorical_mapping"]
    except (KeyError, TypeError):
        return
    new = sorted(set(adata.obs[batch_key].astype(str)) - {str(b) for b in known})
    if new:
        raise ValueError(
            f"isthmus: batch column {batch_key!r} has batches the saved model was not trained on: "
            f"{', '.join(new[:5])}{' ...' if len(new) > 5 else ''} (it knows {', '.join(map(str, list(known)[:5]))}). "
            "Embed these cells with a model trained on them, or map them onto the reference by label transfer "
            "(scArches surgery).")
