"""Latent space of an scVI model (the first task; issue 3 grows it into the full embed/cluster task)."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from scipy import sparse


def _check_counts(adata, layer: str | None) -> None:
    """Count models need non-negative integers; say so instead of training on normalised data."""
    mat = adata.layers[layer] if layer is not None else adata.X
    values = mat.data if sparse.issparse(mat) else np.asarray(mat)
    sample = values[: 1_000_000]
    if sample.size and (sample.min() < 0 or not np.all(np.equal(np.mod(sample, 1), 0))):
        where = f"layers[{layer!r}]" if layer is not None else "X"
        raise ValueError(
            f"isthmus: scVI models raw counts, but {where} holds non-integer or negative values. "
            "Pass the counts (in R: the assay's 'counts' slot/layer)."
        )


def embed(
    adata,
    *,
    method: str = "scvi",
    layer: str | None = "counts",
    batch_key: str | None = None,
    n_latent: int = 10,
    max_epochs: int | None = None,
    random_state: int = 0,
    key_added: str | None = None,
    verbose: bool = True,
    **model_kwargs: Any,
):
    """Fit scVI and write its latent space.

    Writes ``adata.obsm[key_added]`` (default ``"X_scvi"``) and ``adata.uns["scvi"]`` (parameters
    and versions). Returns the trained model. The input matrix is read, never modified.
    """
    if method != "scvi":
        raise ValueError(f"isthmus: unknown embedding method {method!r}; available: 'scvi'")
    import scvi

    if layer is not None and layer not in adata.layers:
        raise ValueError(f"isthmus: layer {layer!r} not found; layers are {list(adata.layers)}")
    _check_counts(adata, layer)
    # Lightning's start-up lines (seed, GPU/TPU available, tips) say nothing a user can act on
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    scvi.settings.verbosity = logging.INFO if verbose else logging.WARNING
    scvi.settings.seed = int(random_state)
    # setup_anndata only adds registry entries to obs/uns (as scvi-tools users expect); the
    # matrices are read, never written, so R's shared read-only memory is safe here.
    scvi.model.SCVI.setup_anndata(adata, layer=layer, batch_key=batch_key)
    model = scvi.model.SCVI(adata, n_latent=int(n_latent), **model_kwargs)
    model.train(
        max_epochs=None if max_epochs is None else int(max_epochs),
        accelerator="cpu",
        enable_progress_bar=bool(verbose),
        enable_model_summary=False,
    )
    key = key_added or "X_scvi"
    adata.obsm[key] = model.get_latent_representation()
    adata.uns["scvi"] = {
        "params": {"n_latent": int(n_latent), "max_epochs": -1 if max_epochs is None else int(max_epochs),
                   "layer": layer or "X", "batch_key": batch_key or "", "random_state": int(random_state)},
        "versions": {"scvi-tools": scvi.__version__},
    }
    return model
