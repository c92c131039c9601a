"""RNA velocity from spliced / unspliced counts: veloVI (a variational model of splicing kinetics,
with the uncertainty of each cell's velocity) beside scVelo, its classical baseline (the dynamical
model as in veloVI's paper; the stochastic model as a fast option).

Both run on scVelo's standard preprocessing of a working copy (genes with enough shared counts,
normalised per cell, the most variable genes, PCA, a kNN graph and the first moments over it); the
user's counts are never changed. The velocity goes back into the user's AnnData under scVelo's
names, so that scVelo's plots and tools read it (``scv.pl.velocity_embedding_stream(adata,
vkey=key_added)``). ``velocity_scores`` gives the two standard scores of velocity benchmarks
(cross-boundary direction correctness and in-cluster coherence) against known transitions.
"""

from __future__ import annotations

import contextlib
import re
import time
import warnings
from typing import Any, Iterable, Mapping, Sequence

import anndata as ad
import numpy as np
import pandas as pd
from scipy import sparse

from .. import _arguments
from . import _common, _runner
from ._registry import Method, register
from ._runner import Fit, Task, register_task

SCVELO_MODES = ("dynamical", "stochastic")
# embeddings computed on the working copy when the user has none under that name
_COMPUTED_BASES = ("umap", "pca")
# posterior samples of each cell's velocity for veloVI's uncertainty, drawn this many cells at a time
_UNCERTAINTY_CHUNK = 512


# ---- input ------------------------------------------------------------------------------------


def spliced_unspliced(spliced, unspliced, *, spliced_layer: str | None = None,
                      unspliced_layer: str | None = None) -> ad.AnnData:
    """One AnnData (X and layers "spliced" / "unspliced") from two AnnDatas of the same cells x genes
    (e.g. two Seurat assays, or two loom layers read separately). Different shapes, or different
    cell or gene names, are refused with both shapes named; the same names in another order are
    put in ``spliced``'s order. Obs and obsm come from ``spliced``."""
    if spliced.shape != unspliced.shape:
        raise ValueError(
            f"isthmus: the spliced counts are {spliced.n_obs} cells x {spliced.n_vars} genes but the unspliced "
            f"counts are {unspliced.n_obs} cells x {unspliced.n_vars} genes; velocity needs both for the same "
            "cells and genes (subset both to the genes and cells they share).")
    for what, mine, theirs in (("cells", spliced.obs_names, unspliced.obs_names),
                               ("genes", spliced.var_names, unspliced.var_names)):
        if mine.equals(theirs):
            continue
        if mine.has_duplicates or theirs.has_duplicates or set(mine) != set(theirs):
            only = mine.difference(theirs)
            raise ValueError(
                f"isthmus: the spliced and unspliced counts have the same shape ({spliced.n_obs} x {spliced.n_vars}) "
                f"but different {what}: {len(only)} {what} of the spliced counts are not in the unspliced"
                + (f" (e.g. {only[0]!r})" if len(only) else " (or names repeat)") + ".")
        unspliced = unspliced[spliced.obs_names] if what == "cells" else unspliced[:, spliced.var_names]
    s = _common.matrix_of(spliced, spliced_layer)
    u = _common.matrix_of(unspliced, unspliced_layer)
    return ad.AnnData(X=s, obs=spliced.obs.copy(), var=pd.DataFrame(index=spliced.var_names),
                      obsm={k: np.asarray(v) for k, v in spliced.obsm.items()},
                      layers={"spliced": s, "unspliced": u})


def _counts(adata, spliced_layer: str, unspliced_layer: str):
    """The two count matrices as float32 CSR copies (the working copy's own), checked."""
    for layer in (spliced_layer, unspliced_layer):
        if layer not in adata.layers:
            raise ValueError(
                f"isthmus: velocity needs spliced and unspliced counts, but layer {layer!r} is not in the data; "
                f"layers are {list(adata.layers)} (X is {adata.n_obs} cells x {adata.n_vars} genes). Name them "
                "with spliced_layer= / unspliced_layer=.")
    s, u = adata.layers[spliced_layer], adata.layers[unspliced_layer]
    if s.shape != u.shape:  # anndata keeps layers in shape; other containers may not
        raise ValueError(f"isthmus: layers[{spliced_layer!r}] is {s.shape[0]} x {s.shape[1]} but "
                         f"layers[{unspliced_layer!r}] is {u.shape[0]} x {u.shape[1]}.")
    for layer in (spliced_layer, unspliced_layer):
        _common.check_counts(adata, layer)
    # copies: scVelo normalises in place, and the user's matrices may be shared (e.g. with R)
    s = sparse.csr_matrix(s, dtype=np.float32, copy=True)
    u = sparse.csr_matrix(u, dtype=np.float32, copy=True)
    empty = np.flatnonzero(np.asarray(s.sum(axis=1)).ravel() == 0)
    if len(empty):
        raise ValueError(
            f"isthmus: {len(empty)} cells have no spliced counts (e.g. {adata.obs_names[empty[0]]!r}); velocity "
            "cannot place them. Remove them first (Seurat: subset(object, nCount_spliced > 0)).")
    return s, u


def _check_embedding(adata, basis: str) -> np.ndarray | None:
    key = f"X_{basis}"
    if key in adata.obsm:
        emb = np.asarray(adata.obsm[key], dtype=np.float64)
        if emb.ndim != 2 or emb.shape[1] < 2:
            raise ValueError(f"isthmus: obsm[{key!r}] needs at least 2 columns to plot velocity on.")
        if not np.isfinite(emb[:, :2]).all():
            raise ValueError(f"isthmus: obsm[{key!r}] has missing values.")
        return emb[:, :2]
    if basis not in _COMPUTED_BASES:
        raise ValueError(f"isthmus: no embedding obsm[{key!r}] to show velocity on; obsm has {list(adata.obsm)}. "
                         f"Name one with basis=, or use basis='umap' / 'pca' to have it computed.")
    return None


# ---- quiet libraries ----------------------------------------------------------------------------


# library noise dropped inside the velocity functions: (category, regular expression the message starts with)
_NOISE = (
    # scVelo 0.3.4 reads one-element arrays as scalars, which NumPy 1.25 deprecates; nothing to fix here
    (DeprecationWarning, r"Conversion of an array with ndim > 0 to a scalar"),
    # scVelo 0.3.4 calls adata.obsm_keys() and friends, which anndata 0.12 deprecates
    (FutureWarning, r"The method \w+_keys is deprecated"),
    # scVelo 0.3.4's recover_dynamics passes a list to pd.unique, which pandas 2.2 deprecates
    (FutureWarning, r"unique with argument that is not"),
    # scVelo 0.3.4's latent_time indexes a Series by position, which pandas 2.2 deprecates
    (FutureWarning, r"Series.__getitem__ treating keys as positions is deprecated"),
    # scVelo's latent_time zeroes columns of a CSR graph; a speed note from SciPy, on a one-off step
    (sparse.SparseEfficiencyWarning, r"Changing the sparsity structure"),
)


@contextlib.contextmanager
def _quiet_scvelo():
    """scVelo's log lines and known library noise, for one call. scVelo's own functions change the
    global warning filters while they run (some turn every DeprecationWarning to "always"), so
    warnings are caught here and all but the known noise are raised again afterwards, under the
    caller's filters."""
    with warnings.catch_warnings(record=True) as caught:
        for category, message in _NOISE:
            warnings.filterwarnings("ignore", message=message, category=category)
        # importing scVelo switches every warning off for the whole session (scvelo.tools.utils calls
        # warnings.simplefilter("ignore")); imported first here, that stays inside this block
        import scvelo as scv

        verbosity = scv.settings.verbosity
        scv.settings.verbosity = 0
        try:
            yield scv
        finally:
            scv.settings.verbosity = verbosity
    for w in caught:
        if not any(issubclass(w.category, c) and re.match(m, str(w.message)) for c, m in _NOISE):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


# ---- the task ---------------------------------------------------------------------------------


def _prepare(call, entry) -> None:
    """Checks, then scVelo's preprocessing and the embedding: the same for both methods."""
    adata = call.adata
    if call.mode not in SCVELO_MODES:
        raise ValueError(f"isthmus: unknown scVelo {_arguments.name('mode')} {call.mode!r}; available: "
                         f"{', '.join(SCVELO_MODES)}")
    if entry.name == "scvelo" and call.model_kwargs:
        raise ValueError(f"isthmus: scVelo takes no model arguments; got {', '.join(call.model_kwargs)}.")
    spliced, unspliced = _counts(adata, call.spliced_layer, call.unspliced_layer)
    call.user_embedding = _check_embedding(adata, call.basis)
    if adata.n_obs < 10:
        raise ValueError(f"isthmus: velocity needs at least 10 cells; the data has {adata.n_obs}.")
    _common.seed_everything(call.random_state)  # seeds NumPy too: scVelo's few random steps follow it
    with _quiet_scvelo(), _common.torch_threads_kept():
        call.work = _preprocess(spliced, unspliced, adata.obs_names, adata.var_names, n_top_genes=call.n_top_genes,
                                min_shared_counts=call.min_shared_counts, n_neighbors=call.n_neighbors,
                                n_pcs=call.n_pcs, random_state=call.random_state, verbose=call.verbose)
        call.embedding = (call.user_embedding if call.user_embedding is not None
                          else _compute_embedding(call.work, call.basis, call.random_state))


def _fit_velovi_method(call) -> Fit:
    with _quiet_scvelo(), _common.torch_threads_kept():
        fitted, latent_kind, model, epochs = _fit_velovi(call.work, max_epochs=call.max_epochs,
                                                         n_samples=call.n_samples, random_state=call.random_state,
                                                         verbose=call.verbose, **call.model_kwargs)
        # veloVI's genes carry no likelihood to filter on
        fit = _velocity_fit(call, fitted, latent_kind, min_likelihood=None,
                            uncertainty=fitted.obs["velocity_uncertainty"].to_numpy(dtype=np.float64))
    fit.model = model
    fit.record.update(epochs_trained=int(epochs), uncertainty="posterior directional variance")
    return fit


def _fit_scvelo_method(call) -> Fit:
    with _quiet_scvelo(), _common.torch_threads_kept():
        fitted, latent_kind = _fit_scvelo(call.work, mode=call.mode, n_jobs=call.n_jobs, verbose=call.verbose)
        # scVelo's dynamical fit filters its genes by likelihood, as scVelo's own latent_time does
        fit = _velocity_fit(call, fitted, latent_kind, min_likelihood=0.1, uncertainty=None)
    fit.record.update(uncertainty="1 - velocity confidence")
    return fit


def _velocity_fit(call, fitted, latent_kind, *, min_likelihood, uncertainty) -> Fit:
    out = _downstream(fitted, embedding=call.embedding, basis=call.basis, n_jobs=call.n_jobs, latent_kind=latent_kind,
                      min_likelihood=min_likelihood, uncertainty=uncertainty)
    out["embedding"] = call.embedding.astype(np.float32)
    out["embedding_computed"] = call.user_embedding is None
    fit = Fit(value=out, record={"embedding_computed": call.user_embedding is None,
                                 "n_genes_preprocessed": int(call.work.n_vars), "n_genes_fitted": len(out["genes"]),
                                 "latent_time": latent_kind})
    fit.with_record = lambda record: out.__setitem__("record", record)
    _put(fit, call.adata, out, key=_key(call), basis=call.basis)
    return fit


def _key(call, entry=None) -> str:
    return call.key_added or "velocity"


_WRITES = ("layers/{key}", "var/{key}_genes", "obs/*latent_time", "obs/{key}_uncertainty", "obs/{key}_confidence",
           "uns/{key}_graph", "uns/{key}_graph_neg", "uns/{key}_params", "obsm/X_{basis}?", "obsm/{key}_{basis}")
register(Method("velocity", "velovi", _fit_velovi_method, "dl",
                "veloVI's posterior velocity, time and intrinsic uncertainty", needs=("spliced_unspliced",),
                saves_model=True, writes=_WRITES, r_verb="RunVelocity"))
register(Method("velocity", "scvelo", _fit_scvelo_method, "baseline",
                "scVelo's dynamical (or stochastic) model", needs=("spliced_unspliced",), writes=_WRITES,
                r_verb="RunVelocity"))


def velocity(
    adata,
    *,
    method: str = "velovi",
    spliced_layer: str = "spliced",
    unspliced_layer: str = "unspliced",
    mode: str = "dynamical",
    basis: str = "umap",
    n_top_genes: int | None = 2000,
    min_shared_counts: int = 20,
    n_neighbors: int = 30,
    n_pcs: int = 30,
    max_epochs: int | None = None,
    n_samples: int = 25,
    model_dir: str | None = None,
    key_added: str | None = None,
    n_jobs: int = 1,
    accelerator: str = "auto",
    devices: int | str | Sequence[int] = "auto",
    batch_size: int | None = None,
    random_state: int = 0,
    verbose: bool = True,
    **model_kwargs: Any,
) -> dict[str, Any]:
    """RNA velocity of each cell, its latent time, uncertainty and confidence.

    ``adata``: cells x genes with raw spliced and unspliced counts in ``layers[spliced_layer]`` and
    ``layers[unspliced_layer]`` (integers; a cell needs spliced counts).

    Preprocessing (scVelo's, on a working copy): genes with at least ``min_shared_counts`` counts
    in both spliced and unspliced, counts normalised per cell, the ``n_top_genes`` most variable
    genes (of log-normalised spliced counts; None: all), PCA (``n_pcs``), ``n_neighbors`` nearest
    neighbours and the first moments of spliced / unspliced over them.

    method "velovi": veloVI (velovi package) on the min-max scaled moments of the genes that
    scVelo's steady-state fit keeps (velovi.preprocess_data), trained for ``max_epochs`` (None:
    velovi's default for the data size, early stopping on); velocity and gene-wise time are
    the posterior means over ``n_samples`` samples, scaled as in veloVI's tutorial (time to 20 h).
    The model is saved in ``model_dir`` (default: a temporary directory). ``model_kwargs`` go to
    ``velovi.VELOVI`` (e.g. ``n_latent``).
    method "scvelo": scVelo, ``mode`` "dynamical" (recover_dynamics, the baseline in veloVI's
    paper; ``n_jobs`` processes) or "stochastic" (fast; no gene-wise times).

    Writes, with ``key`` = ``key_added`` (default "velocity", scVelo's ``vkey``):

    - ``layers[key]``: velocity per cell and gene; genes the method did not fit (filtered out, or
      not kept as velocity genes) are NaN. ``var[key + "_genes"]``: the fitted genes.
    - ``obs["latent_time"]`` (``key + "_latent_time"`` when ``key`` is not "velocity"): scVelo's
      gene-shared latent time (0-1) from the gene-wise times (veloVI's, or the dynamical model's),
      rooted by the velocity graph; for scVelo's stochastic mode, scVelo's velocity pseudotime.
    - ``obs[key + "_uncertainty"]``: veloVI: intrinsic uncertainty, the variance over posterior
      samples of the cosine similarity between a sample of the cell's velocity and its mean
      (veloVI's directional_cosine_sim_variance); scVelo (no posterior): 1 - confidence.
    - ``obs[key + "_confidence"]``: scVelo's velocity confidence (mean correlation of a cell's
      velocity with its neighbours').
    - ``uns[key + "_graph"]``, ``uns[key + "_graph_neg"]``, ``uns[key + "_params"]``: scVelo's
      velocity graph (cells x cells cosine correlations) and its parameters.
    - ``obsm[key + "_" + basis]``: the velocity projected on the first two dimensions of
      ``obsm["X_" + basis]``; when that embedding is missing, ``basis`` "umap" (UMAP of the
      working kNN graph) or "pca" is computed and written to ``obsm["X_" + basis]`` too.
    - ``uns[key]``: the record (method, parameters, seconds, versions, model directory).

    Returns those arrays (velocity of the fitted genes only, ``genes``) and the record. Nothing is
    written when the call fails.
    """
    return _runner.run("velocity", locals())


register_task(Task("velocity", velocity, key=lambda call, entry: {"key": _key(call), "basis": call.basis},
                   record_at=lambda call, entry, fit: (call.adata, _key(call)), prepare=_prepare,
                   not_recorded=("adata",)))


def _preprocess(spliced, unspliced, obs_names, var_names, *, n_top_genes, min_shared_counts, n_neighbors, n_pcs,
                random_state, verbose) -> ad.AnnData:
    import scanpy as sc
    import scvelo as scv

    work = ad.AnnData(X=spliced.copy(), obs=pd.DataFrame(index=obs_names), var=pd.DataFrame(index=var_names),
                      layers={"spliced": spliced, "unspliced": unspliced})
    scv.pp.filter_and_normalize(work, min_shared_counts=int(min_shared_counts))
    if work.n_vars < 2:
        raise ValueError(f"isthmus: {work.n_vars} genes have at least {min_shared_counts} counts in both spliced "
                         "and unspliced; lower min_shared_counts (or check that the unspliced counts are real).")
    sc.pp.log1p(work)
    if n_top_genes is not None and work.n_vars > n_top_genes:
        sc.pp.highly_variable_genes(work, n_top_genes=int(n_top_genes))
        work = work[:, work.var["highly_variable"].to_numpy()].copy()
    n_comps = int(min(n_pcs, work.n_obs - 1, work.n_vars - 1))
    sc.pp.pca(work, n_comps=n_comps, random_state=random_state)
    sc.pp.neighbors(work, n_neighbors=int(min(n_neighbors, work.n_obs - 1)), n_pcs=n_comps,
                    random_state=random_state)
    scv.pp.moments(work, n_pcs=None, n_neighbors=None)
    if verbose:
        print(f"isthmus velocity: {work.n_obs} cells, {work.n_vars} genes after scVelo's preprocessing", flush=True)
    return work


def _compute_embedding(work, basis: str, random_state: int) -> np.ndarray:
    import scanpy as sc

    if basis == "umap":
        sc.tl.umap(work, random_state=random_state)
    return np.asarray(work.obsm[f"X_{basis}"][:, :2], dtype=np.float64)


def _fit_scvelo(work, *, mode, n_jobs, verbose):
    import scvelo as scv

    fitted = work
    started = time.perf_counter()
    if mode == "dynamical":
        scv.tl.recover_dynamics(fitted, n_jobs=int(n_jobs), show_progress_bar=False)
    scv.tl.velocity(fitted, mode=mode)
    if verbose:
        print(f"isthmus scVelo ({mode}): {int(fitted.var['velocity_genes'].sum())} velocity genes "
              f"({time.perf_counter() - started:.1f} s)", flush=True)
    return fitted, "latent_time" if mode == "dynamical" else "velocity_pseudotime"


def _fit_velovi(work, *, max_epochs, n_samples, random_state, verbose, **model_kwargs):
    from velovi import VELOVI, preprocess_data

    # min-max scaled moments of the genes scVelo's steady-state fit keeps (veloVI's own preprocessing)
    fitted = preprocess_data(work)
    if fitted.n_vars < 2:
        raise ValueError("isthmus: no gene passed veloVI's preprocessing (a positive steady-state fit); the data "
                         "may hold too few unspliced counts.")
    _common.seed_everything(random_state)
    VELOVI.setup_anndata(fitted, spliced_layer="Ms", unspliced_layer="Mu")
    model = VELOVI(fitted, **model_kwargs)
    _common.train(model, label="veloVI", max_epochs=max_epochs, verbose=verbose)
    epochs = len(model.history["elbo_train"])  # fewer than max_epochs when early stopping ended it
    _common.seed_everything(random_state)  # posterior samples drawn from a known state
    gene_time = model.get_latent_time(n_samples=int(n_samples), return_numpy=True)
    velocity = model.get_velocity(n_samples=int(n_samples), velo_statistic="mean", return_numpy=True)
    # veloVI's tutorial: gene-wise time scaled to scVelo's 20 h, the velocity with it
    scaling = 20.0 / np.maximum(gene_time.max(axis=0), 1e-12)
    fitted.layers["velocity"] = np.asarray(velocity / scaling, dtype=np.float32)
    fitted.layers["fit_t"] = np.asarray(gene_time * scaling, dtype=np.float32)
    fitted.var["fit_scaling"] = 1.0
    fitted.var["velocity_genes"] = True
    fitted.obs["velocity_uncertainty"] = _directional_variance(model, fitted.n_obs, n_samples=max(int(n_samples), 2))
    return fitted, "latent_time", model, epochs


def _directional_variance(model, n_cells: int, *, n_samples: int) -> np.ndarray:
    """veloVI's intrinsic uncertainty per cell: the variance, over posterior samples of the cell's
    velocity, of each sample's cosine similarity to their mean (vectors centred first), as
    velovi's get_directional_uncertainty (directional_cosine_sim_variance) computes it cell by
    cell; here in blocks of cells, without worker processes."""
    out = np.empty(n_cells, dtype=np.float64)
    for start in range(0, n_cells, _UNCERTAINTY_CHUNK):
        cells = np.arange(start, min(start + _UNCERTAINTY_CHUNK, n_cells))
        samples = np.asarray(model.get_velocity(indices=cells, n_samples=n_samples, return_mean=False,
                                                return_numpy=True), dtype=np.float64)  # samples x cells x genes
        mean = _centred_unit(samples.mean(axis=0))
        cosine = np.clip(np.einsum("scg,cg->sc", _centred_unit(samples), mean), -1.0, 1.0)
        out[cells] = cosine.var(axis=0)
    return out


def _centred_unit(x: np.ndarray) -> np.ndarray:
    centred = x - x.mean(axis=-1, keepdims=True)
    norm = np.linalg.norm(centred, axis=-1, keepdims=True)
    return centred / np.where(norm > 0, norm, 1.0)


def _downstream(fitted, *, embedding, basis, n_jobs, latent_kind, min_likelihood, uncertainty) -> dict[str, Any]:
    """The velocity graph, confidence, latent time and projection on the embedding (scVelo's tools,
    the same for both methods)."""
    import scvelo as scv

    scv.tl.velocity_graph(fitted, n_jobs=int(n_jobs), show_progress_bar=False)
    scv.tl.velocity_confidence(fitted)
    if latent_kind == "latent_time":
        scv.tl.latent_time(fitted, min_likelihood=min_likelihood)
        latent = fitted.obs["latent_time"].to_numpy(dtype=np.float64)
    else:
        scv.tl.velocity_pseudotime(fitted)
        latent = fitted.obs["velocity_pseudotime"].to_numpy(dtype=np.float64)
    fitted.obsm[f"X_{basis}"] = embedding
    scv.tl.velocity_embedding(fitted, basis=basis)
    genes = fitted.var_names[fitted.var["velocity_genes"].to_numpy(dtype=bool)]
    confidence = fitted.obs["velocity_confidence"].to_numpy(dtype=np.float64)
    if uncertainty is None:  # no posterior: scVelo's confidence turned round
        uncertainty = 1.0 - confidence
    params = dict(fitted.uns.get("velocity_params", {}))
    return {
        "velocity": np.asarray(fitted[:, genes].layers["velocity"], dtype=np.float32),
        "genes": [str(g) for g in genes],
        "latent_time": latent,
        "uncertainty": uncertainty,
        "confidence": confidence,
        "velocity_embedding": np.asarray(fitted.obsm[f"velocity_{basis}"], dtype=np.float32),
        "graph": sparse.csr_matrix(fitted.uns["velocity_graph"]),
        "graph_neg": sparse.csr_matrix(fitted.uns["velocity_graph_neg"]),
        "params": params,
    }


def _put(fit, adata, out, *, key: str, basis: str) -> None:
    at = adata.var_names.get_indexer(out["genes"])
    layer = np.full(adata.shape, np.nan, dtype=np.float32)
    layer[:, at] = out["velocity"]
    fitted = np.zeros(adata.n_vars, dtype=bool)
    fitted[at] = True
    fit.put(adata, "layers", key, layer)
    fit.put(adata, "var", f"{key}_genes", fitted)
    fit.put(adata, "obs", "latent_time" if key == "velocity" else f"{key}_latent_time", out["latent_time"])
    fit.put(adata, "obs", f"{key}_uncertainty", out["uncertainty"])
    fit.put(adata, "obs", f"{key}_confidence", out["confidence"])
    fit.put(adata, "uns", f"{key}_graph", out["graph"])
    fit.put(adata, "uns", f"{key}_graph_neg", out["graph_neg"])
    fit.put(adata, "uns", f"{key}_params", {**out["params"], "embeddings": [basis]})
    if out["embedding_computed"]:
        fit.put(adata, "obsm", f"X_{basis}", out["embedding"])
    fit.put(adata, "obsm", f"{key}_{basis}", out["velocity_embedding"])


# ---- scores -----------------------------------------------------------------------------------


def _transition_pairs(transitions) -> list[tuple[str, str]]:
    """(source, target) pairs from a list of pairs, "A -> B" strings, or a mapping source -> target(s)."""
    pairs: list[tuple[str, str]] = []
    items: Iterable = transitions.items() if isinstance(transitions, Mapping) else transitions
    for item in items:
        if isinstance(item, str):
            parts = item.split("->")
            if len(parts) != 2:
                raise ValueError(f"isthmus: transition {item!r} is not of the form 'source -> target'.")
            pairs.append((parts[0].strip(), parts[1].strip()))
            continue
        source, targets = item
        for target in ([targets] if isinstance(targets, str) else targets):
            pairs.append((str(source), str(target)))
    if not pairs:
        raise ValueError("isthmus: no transitions given (e.g. [('Ductal', 'Ngn3 low EP')]).")
    return pairs


def _unit_rows(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norm > 0, x / norm, np.nan)


def velocity_scores(
    adata,
    *,
    cluster_key: str,
    transitions,
    basis: str = "umap",
    vkey: str | Sequence[str] = "velocity",
    n_neighbors: int = 30,
    use_rep: str | None = None,
    coherence: str = "gene",
) -> pd.DataFrame:
    """Cross-boundary direction correctness and in-cluster coherence of velocities.

    The two scores of the velocity benchmarks (VeloAE, UniTVelo and after), written from their
    definitions. Each cell's neighbours are its ``n_neighbors`` nearest cells in
    ``obsm[use_rep]`` (default: the embedding ``obsm["X_" + basis]``).

    - CBDir, per known transition A -> B (``transitions``: pairs, "A -> B" strings or a mapping
      A -> B or [B, ...]): for each cell of A with neighbours in B, the mean cosine between the
      cell's velocity on the embedding (``obsm[vkey + "_" + basis]``) and its displacement to each
      of those neighbours (``X_basis[neighbour] - X_basis[cell]``); averaged over those cells.
      1: velocities point into B; -1: away from it; about 0: no relation.
    - ICCoh, per cluster: the mean cosine similarity between a cell's velocity and the velocity
      of each of its neighbours of the same cluster, averaged over the cluster's cells.
      ``coherence`` "gene": velocities in gene space (``layers[vkey]``, the genes with values in
      every cell; UniTVelo's choice), "embedding": on the embedding.

    Returns a frame with columns vkey, metric ("CBDir" / "ICCoh"), group (the transition "A -> B"
    or the cluster, and "mean": the mean over transitions / clusters), value, n_cells (cells
    scored). ``vkey`` may list several velocities (e.g. one per method) scored on the same
    neighbours.
    """
    n_neighbors = _runner.validate(velocity_scores, {"n_neighbors": n_neighbors})["n_neighbors"]
    from sklearn.neighbors import NearestNeighbors

    _common.check_column(adata, cluster_key, "cluster")
    if coherence not in ("gene", "embedding"):
        raise ValueError(f"isthmus: coherence must be 'gene' or 'embedding', not {coherence!r}.")
    pairs = _transition_pairs(transitions)
    labels = adata.obs[cluster_key].astype(str).to_numpy()
    unknown = sorted({name for pair in pairs for name in pair} - set(labels))
    if unknown:
        raise ValueError(f"isthmus: transitions name clusters that are not in obs[{cluster_key!r}]: "
                         f"{', '.join(unknown)}; its clusters are {', '.join(sorted(set(labels)))}.")
    position = _common.obsm_of(adata, f"X_{basis}")[:, :2].astype(np.float64)
    rep = position if use_rep is None else _common.obsm_of(adata, use_rep).astype(np.float64)
    k = int(min(n_neighbors, adata.n_obs - 1))
    neighbours = NearestNeighbors(n_neighbors=k + 1).fit(rep).kneighbors(rep, return_distance=False)
    neighbours = np.array([row[row != i][:k] for i, row in enumerate(neighbours)])  # without the cell itself
    rows = []
    for name in ([vkey] if isinstance(vkey, str) else list(vkey)):
        moving = _common.obsm_of(adata, f"{name}_{basis}")[:, :2].astype(np.float64)
        rows += _cbdir(name, pairs, labels, position, moving, neighbours)
        if coherence == "gene":
            if name not in adata.layers:
                raise ValueError(f"isthmus: no layers[{name!r}] with gene-space velocities "
                                 "(use coherence='embedding').")
            values = np.asarray(adata.layers[name], dtype=np.float64)
            values = values[:, np.isfinite(values).all(axis=0)]
        else:
            values = moving
        rows += _iccoh(name, labels, values, neighbours)
    return pd.DataFrame(rows, columns=["vkey", "metric", "group", "value", "n_cells"])


def _cbdir(name, pairs, labels, position, moving, neighbours) -> list[dict]:
    direction = _unit_rows(moving)
    rows = []
    for source, target in pairs:
        # each cell's velocity against its displacement to each of its neighbours in the target
        per_cell = _mean_cosines(labels, neighbours, source, target,
                                 lambda cell, into: _unit_rows(position[into] - position[cell]) @ direction[cell])
        rows.append(_score_row(name, "CBDir", f"{source} -> {target}", per_cell))
    return _with_mean(rows, name, "CBDir")


def _iccoh(name, labels, values, neighbours) -> list[dict]:
    unit = _unit_rows(values)
    rows = []
    for cluster in sorted(set(labels)):
        # each cell's velocity against its same-cluster neighbours' velocities
        per_cell = _mean_cosines(labels, neighbours, cluster, cluster, lambda cell, same: unit[same] @ unit[cell])
        rows.append(_score_row(name, "ICCoh", cluster, per_cell))
    return _with_mean(rows, name, "ICCoh")


def _mean_cosines(labels, neighbours, group: str, partner: str, cosines) -> list[float]:
    """For each cell of ``group`` with neighbours of ``partner``: the mean of ``cosines(cell,
    those neighbours)`` (NaN cosines, from zero vectors, left out; cells with only NaN skipped)."""
    per_cell = []
    for cell in np.flatnonzero(labels == group):
        others = neighbours[cell][labels[neighbours[cell]] == partner]
        if not len(others):
            continue
        values = cosines(cell, others)
        if np.isfinite(values).any():
            per_cell.append(np.nanmean(values))
    return per_cell


def _score_row(name: str, metric: str, group: str, per_cell: list[float]) -> dict:
    return {"vkey": name, "metric": metric, "group": group,
            "value": float(np.mean(per_cell)) if per_cell else float("nan"), "n_cells": len(per_cell)}


def _with_mean(rows: list[dict], name: str, metric: str) -> list[dict]:
    """The per-group rows and their mean over the groups that had cells to score."""
    scored = [r["value"] for r in rows if r["n_cells"]]
    return rows + [{"vkey": name, "metric": metric, "group": "mean",
                    "value": float(np.mean(scored)) if scored else float("nan"),
                    "n_cells": sum(r["n_cells"] for r in rows)}]


# ---- plot -------------------------------------------------------------------------------------


def plot_velocity(adata, path: str, *, basis: str = "umap", vkey: str = "velocity", color: str | None = None,
                  title: str | None = None) -> str:
    """scVelo's stream plot of ``obsm[vkey + "_" + basis]`` on ``obsm["X_" + basis]``, cells
    coloured by ``obs[color]``; PNG at ``path``. Draws from a copy of just those fields, so
    nothing (e.g. scanpy's colour palette) is written into ``adata``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    position = _common.obsm_of(adata, f"X_{basis}")[:, :2]
    moving = _common.obsm_of(adata, f"{vkey}_{basis}")[:, :2]
    _common.check_column(adata, color, "colour", allow_na=True)
    obs = adata.obs[[color]].copy() if color is not None else pd.DataFrame(index=adata.obs_names)
    if color is not None and not pd.api.types.is_numeric_dtype(obs[color]):
        obs[color] = obs[color].astype(str).astype("category")
    lean = ad.AnnData(obs=obs, obsm={f"X_{basis}": np.asarray(position, dtype=np.float64),
                                     f"{vkey}_{basis}": np.asarray(moving, dtype=np.float64)})
    fig, ax = plt.subplots(figsize=(6.5, 5))
    with _quiet_scvelo() as scv:
        scv.pl.velocity_embedding_stream(lean, basis=basis, vkey=vkey, color=color, ax=ax, show=False,
                                         title=title or f"{vkey} on {basis}", legend_loc="right margin")
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path
