"""Embedding, clustering and batch integration: scVI / scANVI latent spaces beside the classical
PCA and Harmony, written the scanpy way (obsm["X_<method>"], uns["<method>"])."""

from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np

from . import _classical, _common, _scvi_models

EMBED_METHODS = ("scvi", "pca")
INTEGRATE_METHODS = ("scvi", "scanvi", "harmony", "pca")


def _pca_route(adata, layer, batch_key, n_comps, n_top_genes, random_state):
    counts = _common.matrix_of(adata, layer)
    batch = adata.obs[batch_key].to_numpy() if batch_key is not None else None
    return _classical.pca_of_counts(counts, n_comps=n_comps, n_top_genes=n_top_genes, batch=batch,
                                    random_state=random_state)


def integrate(
    adata,
    *,
    batch_key: str | None,
    method: str = "scvi",
    labels_key: str | None = None,
    layer: str | None = "counts",
    categorical_covariate_keys: Sequence[str] | None = None,
    continuous_covariate_keys: Sequence[str] | None = None,
    n_latent: int = 10,
    max_epochs: int | None = None,
    scanvi_epochs: int | None = 20,
    n_comps: int = 30,
    n_top_genes: int = 2000,
    use_rep: str | None = None,
    allow_non_integer: bool = False,
    model_dir: str | None = None,
    key_added: str | None = None,
    random_state: int = 0,
    verbose: bool = True,
    **model_kwargs: Any,
):
    """Embed cells so that batches mix and cell types stay apart.

    method: "scvi" (latent space of scVI with the batch as covariate), "scanvi" (scVI then scANVI
    using ``labels_key``; NA labels mean unlabelled), "harmony" (Harmony on ``obsm[use_rep]`` or on
    the standard PCA) or "pca" (the uncorrected standard PCA: log-normalise, variable genes, scale).
    Writes ``obsm[key_added]`` (default "X_<method>") and ``uns[key_added without X_]`` (the
    record: parameters, seconds, versions, the saved model's directory). Returns the trained
    scvi-tools model, or None for the classical methods.
    """
    if method not in INTEGRATE_METHODS:
        raise ValueError(f"isthmus: unknown method {method!r}; available: {', '.join(INTEGRATE_METHODS)}")
    if method == "scanvi" and labels_key is None:
        raise ValueError("isthmus: scANVI needs labels_key (a cell-type column; NA = unlabelled).")
    if method == "harmony" and batch_key is None:
        raise ValueError("isthmus: Harmony needs batch_key.")
    _common.check_column(adata, batch_key, "batch")
    _common.check_column(adata, labels_key, "labels", allow_na=True)
    key = key_added or f"X_{method}"
    params: dict[str, Any] = {"batch_key": batch_key, "labels_key": labels_key, "layer": layer or "X",
                              "random_state": int(random_state)}
    model = None
    started = time.perf_counter()
    if method in ("scvi", "scanvi"):
        labels = _common.labels_with_unlabelled(adata, labels_key) if method == "scanvi" else None
        model = _scvi_models.fit_scvi(
            adata, layer=layer, batch_key=batch_key, labels=labels,
            categorical_covariate_keys=categorical_covariate_keys,
            continuous_covariate_keys=continuous_covariate_keys, n_latent=n_latent, max_epochs=max_epochs,
            allow_non_integer=allow_non_integer, random_state=random_state, verbose=verbose, **model_kwargs)
        if method == "scanvi":
            model = _scvi_models.fit_scanvi(model, adata, max_epochs=scanvi_epochs,
                                               random_state=random_state, verbose=verbose)
        latent = model.get_latent_representation()
        params.update(n_latent=int(n_latent), max_epochs=-1 if max_epochs is None else int(max_epochs),
                      scanvi_epochs=int(scanvi_epochs or 0) if method == "scanvi" else "",
                      categorical_covariate_keys=list(_scvi_models._as_list(categorical_covariate_keys) or []),
                      continuous_covariate_keys=list(_scvi_models._as_list(continuous_covariate_keys) or []))
    else:
        if use_rep is not None:
            pcs = _common.obsm_of(adata, use_rep).astype(np.float32)
        else:
            pcs = _pca_route(adata, layer, batch_key, n_comps, n_top_genes, random_state)
        latent = _classical.harmony(pcs, adata.obs[batch_key], random_state=random_state) if method == "harmony" else pcs
        params.update(use_rep=use_rep, n_comps=int(pcs.shape[1]), n_top_genes=int(n_top_genes))
    seconds = time.perf_counter() - started
    saved = _common.save_model(model, _common.model_directory(model_dir, method)) if model is not None else None
    adata.obsm[key] = np.asarray(latent, dtype=np.float32)
    adata.uns[key.removeprefix("X_")] = _common.record(method, params, seconds=seconds, model_dir=saved)
    return model


def embed(adata, *, method: str = "scvi", batch_key: str | None = None, **kwargs):
    """A low-dimensional embedding for neighbours, clusters and UMAP: scVI's latent space (batch
    and covariates regressed out when given) or the standard PCA. Same options and outputs as
    :func:`integrate`."""
    if method not in EMBED_METHODS:
        raise ValueError(f"isthmus: unknown embedding method {method!r}; available: {', '.join(EMBED_METHODS)}")
    return integrate(adata, batch_key=batch_key, method=method, **kwargs)


def cluster(adata, *, use_rep: str, resolution: float = 1.0, n_neighbors: int = 15, key_added: str | None = None,
            random_state: int = 0) -> np.ndarray:
    """Leiden clusters on the kNN graph of ``obsm[use_rep]``; writes obs[key_added] (default
    "leiden_<rep>") and returns the labels. The graph is kept under its own key, so the user's
    own neighbours are not overwritten."""
    import scanpy as sc

    _common.obsm_of(adata, use_rep)  # a clear error before scanpy's
    name = key_added or f"leiden_{use_rep.removeprefix('X_')}"
    sc.pp.neighbors(adata, use_rep=use_rep, n_neighbors=n_neighbors, random_state=random_state,
                    key_added=f"{name}_neighbors")
    sc.tl.leiden(adata, resolution=resolution, neighbors_key=f"{name}_neighbors", key_added=name,
                 flavor="igraph", n_iterations=2, directed=False, random_state=random_state)
    return adata.obs[name].to_numpy()
