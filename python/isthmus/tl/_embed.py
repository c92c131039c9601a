"""Embedding, clustering and batch integration: scVI / scANVI latent spaces beside the classical
PCA and Harmony, written the scanpy way (obsm["X_<method>"], uns["<method>"])."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .. import _arguments
from . import _classical, _common, _on_disk, _runner, _scvi_models
from ._registry import Method, lookup, method_names, register
from ._runner import Fit, Task, register_task


# ---- the methods: each one function of the call, registered below --------------------------------


def _latent(call, latent) -> Fit:
    fit = Fit(record={"layer": call.layer or "X"})
    fit.put(call.adata, "obsm", _key(call), np.asarray(latent, dtype=np.float32))
    return fit


def _fit_scvi(call, *, scanvi: bool = False) -> Fit:
    labels = _common.labels_with_unlabelled(call.adata, call.labels_key) if scanvi else None
    genes, source = call.model_genes
    # the model's registry goes here, not into the user's object; on the genes chosen
    work = _common.lean_copy(call.adata, genes, layer=call.layer, verbose=call.verbose)
    model = _scvi_models.fit_scvi(
        work, layer=call.layer, batch_key=call.batch_key, labels=labels,
        categorical_covariate_keys=call.categorical_covariate_keys,
        continuous_covariate_keys=call.continuous_covariate_keys, n_latent=call.n_latent, max_epochs=call.max_epochs,
        allow_non_integer=call.allow_non_integer, random_state=call.random_state, verbose=call.verbose,
        **call.model_kwargs)
    if scanvi:
        model = _scvi_models.fit_scanvi(model, work, max_epochs=call.scanvi_epochs,
                                        random_state=call.random_state, verbose=call.verbose)
    fit = _latent(call, model.get_latent_representation())
    fit.model = fit.value = model  # integrate() returns the trained model
    fit.record.update(epochs_trained=len(model.history.get("elbo_train", [])), **_common.gene_facts(genes, source),
                      counts_on_disk=_on_disk.is_backed(call.adata))
    return fit


def _fit_scanvi(call) -> Fit:
    return _fit_scvi(call, scanvi=True)


def _standard_pca(call) -> np.ndarray:
    """``obsm[use_rep]`` when given, else the standard route (log-normalise, variable genes per
    batch, scale, PCA) on the counts."""
    if call.use_rep is not None:
        return _common.obsm_of(call.adata, call.use_rep).astype(np.float32)
    counts = _common.matrix_of(call.adata, call.layer)
    batch = call.adata.obs[call.batch_key].to_numpy() if call.batch_key is not None else None
    return _classical.pca_of_counts(counts, n_comps=call.n_comps, n_top_genes=call.n_top_genes, batch=batch,
                                    random_state=call.random_state)


def _fit_pca(call) -> Fit:
    pcs = _standard_pca(call)
    fit = _latent(call, pcs)
    fit.record.update(n_comps=int(pcs.shape[1]))
    return fit


def _fit_harmony(call) -> Fit:
    pcs = _standard_pca(call)
    fit = _latent(call, _classical.harmony(pcs, call.adata.obs[call.batch_key], random_state=call.random_state))
    fit.record.update(n_comps=int(pcs.shape[1]))
    return fit


# ---- the task ---------------------------------------------------------------------------------------


def _key(call, entry=None) -> str:
    return call.key_added or f"X_{call.method}"


def _prepare(call, entry) -> None:
    adata = call.adata
    if "labels" in entry.needs and call.labels_key is None:
        raise ValueError(f"isthmus: {entry.name} needs {_arguments.name('labels_key')} (a cell-type column; NA = "
                         "unlabelled).")
    if "batch" in entry.needs and call.batch_key is None:
        raise ValueError(f"isthmus: {entry.name} needs {_arguments.name('batch_key')} (a batch column).")
    _common.check_column(adata, call.batch_key, "batch")
    _common.check_column(adata, call.labels_key, "labels", allow_na=True)
    if entry.kind == "dl":  # covariates are scVI's; the classical routes ignore them
        for key in [*(_scvi_models._as_list(call.categorical_covariate_keys) or []),
                    *(_scvi_models._as_list(call.continuous_covariate_keys) or [])]:
            _common.check_column(adata, key, "covariate")
        call.model_genes = _common.model_genes(adata, call.genes, layer=call.layer, batch_key=call.batch_key,
                                               n_top_genes=call.n_top_genes)


_WRITES = ("obsm/{key}",)
for _name, _fit, _kind, _needs, _saves, _verb, _summary in (
    ("scvi", _fit_scvi, "dl", ("counts",), True, "IntegrateCells",
     "scVI latent space, the batch (and covariates) as covariates"),
    ("scanvi", _fit_scanvi, "dl", ("counts", "labels"), True, "IntegrateCells",
     "scANVI from a trained scVI, guided by labels (NA = unlabelled)"),
    ("harmony", _fit_harmony, "baseline", ("batch",), False, "IntegrateCells",
     "Harmony on the standard PCA (or on a given embedding)"),
    ("pca", _fit_pca, "baseline", (), False, None,
     "the uncorrected standard PCA: log-normalise, variable genes, scale, PCA"),
):
    register(Method("integrate", _name, _fit, _kind, _summary, needs=_needs, writes=_WRITES, saves_model=_saves,
                    multi_device=_kind == "dl", r_verb=_verb))


def integrate(
    adata,
    *,
    batch_key: str | None,
    method: str = "scvi",
    labels_key: str | None = None,
    layer: str | None = "counts",
    categorical_covariate_keys: Sequence[str] | None = None,
    continuous_covariate_keys: Sequence[str] | None = None,
    genes: str | Sequence[str] = "variable",
    n_latent: int = 10,
    max_epochs: int | None = None,
    scanvi_epochs: int | None = 20,
    n_comps: int = 30,
    n_top_genes: int = 2000,
    use_rep: str | None = None,
    allow_non_integer: bool = False,
    model_dir: str | None = None,
    key_added: str | None = None,
    accelerator: str = "auto",
    devices: int | str | Sequence[int] = "auto",
    strategy: str = "auto",
    batch_size: int | None = None,
    random_state: int = 0,
    verbose: bool = True,
    **model_kwargs: Any,
):
    """Embed cells so that batches mix and cell types stay apart.

    method: "scvi" (latent space of scVI with the batch as covariate), "scanvi" (scVI then scANVI
    using ``labels_key``; NA labels mean unlabelled), "harmony" (Harmony on ``obsm[use_rep]`` or on
    the standard PCA) or "pca" (the uncorrected standard PCA: log-normalise, variable genes, scale).
    ``tl.methods("integrate")`` lists them.

    genes (scVI / scANVI): "variable" (default): the data's own variable genes
    (``var["highly_variable"]``) when it marks some, else the ``n_top_genes`` most variable on the
    counts by scanpy's "seurat_v3" flavour, per batch when ``batch_key`` is given (every gene when
    there are no more); "all": every gene; or a list of gene names. The record lists the genes used
    (``genes_used``, ``n_genes_used``, ``genes_from``). The classical routes choose their own
    ``n_top_genes`` variable genes on log-normalised data.

    Counts larger than memory: ``adata`` opened in backed mode (``anndata.read_h5ad(path,
    backed="r")``, counts in X, ``layer=None``) trains scVI / scANVI from a memory-mapped copy of the
    model's genes in the temporary directory (about 8 bytes per non-zero count; one copy that every
    DDP rank maps), with the same result as in memory; the record says ``counts_on_disk``.

    accelerator: "auto" (default: the GPU when torch sees one, else the CPU), "cpu" or "gpu";
    devices: "auto" (one) or a device count / GPU indices; several train one model with Lightning's
    DDP, one process per device, which Lightning starts by running the calling script again (from R
    isthmus does it in a worker process; in a notebook it cannot); strategy: Lightning's DDP strategy
    for several devices ("auto": "ddp_find_unused_parameters_true", scvi-tools' advice for its models);
    batch_size: the models' minibatch size (None: each model's own). The record's ``device`` says where
    the model ran ("cpu", "cuda:0", "cuda:0,cuda:1 (ddp...)").

    Sets the following fields:

    - ``obsm[key_added]`` (default "X_<method>"): the latent space, cells x dimensions, float32;
    - ``uns[key_added without "X_"]``: the record (the call's arguments, model keyword arguments
      included; seconds; versions; the saved model's directory).

    Returns the trained scvi-tools model, or None for the classical methods.
    """
    return _runner.run("integrate", locals())


register_task(Task("integrate", integrate, key=_key,
                   record_at=lambda call, entry, fit: (call.adata, _key(call).removeprefix("X_")),
                   prepare=_prepare, not_recorded=("adata",)))


def embed(adata, *, method: str = "scvi", batch_key: str | None = None, **kwargs):
    """A low-dimensional embedding for neighbours, clusters and UMAP: scVI's latent space (batch
    and covariates regressed out when given) or the standard PCA: the methods of
    :func:`integrate` that need neither batches nor labels. Same options and outputs."""
    entry = lookup("integrate", method)
    if {"batch", "labels"} & set(entry.needs):
        usable = [m for m in method_names("integrate") if not {"batch", "labels"} & set(lookup("integrate", m).needs)]
        raise ValueError(f"isthmus: {method!r} is an integration method (it needs batches or labels); embed() "
                         f"offers {', '.join(usable)}. Use integrate() for it.")
    return integrate(adata, batch_key=batch_key, method=method, **kwargs)


def cluster(adata, *, use_rep: str, resolution: float = 1.0, n_neighbors: int = 15, key_added: str | None = None,
            random_state: int = 0) -> np.ndarray:
    """Leiden clusters on the kNN graph of ``obsm[use_rep]``; writes obs[key_added] (default
    "leiden_<rep>") and returns the labels. The graph is kept under its own key, so the user's
    own neighbours are not overwritten."""
    import scanpy as sc

    checked = _runner.validate(cluster, locals())  # the same argument checks as every task
    resolution, n_neighbors, random_state = checked["resolution"], checked["n_neighbors"], checked["random_state"]
    _common.obsm_of(adata, use_rep)  # a clear error before scanpy's
    name = key_added or f"leiden_{use_rep.removeprefix('X_')}"
    sc.pp.neighbors(adata, use_rep=use_rep, n_neighbors=n_neighbors, random_state=random_state,
                    key_added=f"{name}_neighbors")
    sc.tl.leiden(adata, resolution=resolution, neighbors_key=f"{name}_neighbors", key_added=name,
                 flavor="igraph", n_iterations=2, directed=False, random_state=random_state)
    return adata.obs[name].to_numpy()
