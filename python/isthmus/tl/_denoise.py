"""Denoised expression: scVI's normalised expression (the decoder's mean, library-size corrected and
optionally as if every cell came from one batch) against kNN averaging of log-normalised data.

Denoised values are smooth by construction: cells borrow from their neighbours, so genes look
more correlated and groups more different than they are. Use them to look at expression (plots,
gene-gene relations), not for differential expression or other tests, which need the counts.
"""

from __future__ import annotations

import time
from typing import Sequence

import numpy as np

from . import _classical, _common

DENOISE_METHODS = ("scvi", "knn")


def denoise(
    adata,
    *,
    method: str = "scvi",
    model=None,
    layer: str | None = "counts",
    genes: Sequence[str] | None = None,
    transform_batch: str | None = None,
    library_size: float = 1e4,
    n_samples: int = 25,
    n_neighbors: int = 15,
    use_rep: str | None = None,
    key_added: str | None = None,
    random_state: int = 0,
):
    """Write denoised, log1p-scaled expression (same scale as log-normalised data: log1p of
    expression per ``library_size`` counts) into ``adata.layers[key_added]`` (default
    "<method>_denoised"); returns the cells x genes array.

    method "scvi": ``model`` is a trained SCVI/SCANVI model or the directory of one (set up on
    ``adata``'s genes); ``n_samples`` posterior samples are averaged, ``transform_batch`` names
    the batch every cell is shown in. "knn": each cell's log-normalised expression averaged over
    its ``n_neighbors`` nearest cells in ``obsm[use_rep]`` (default: the standard PCA).
    ``genes`` restricts the output (dense: cells x genes floats).
    """
    if method not in DENOISE_METHODS:
        raise ValueError(f"isthmus: unknown denoising method {method!r}; available: {', '.join(DENOISE_METHODS)}")
    started = time.perf_counter()
    genes = list(adata.var_names) if genes is None else list(genes)
    missing = [g for g in genes if g not in adata.var_names]
    if missing:
        raise ValueError(f"isthmus: {len(missing)} genes not in the data, e.g. {missing[:5]}")
    if method == "scvi":
        model = _common.trained_model(model, adata, "scVI denoising")
        _common.seed_everything(random_state)
        normalised = model.get_normalized_expression(
            adata, library_size=library_size, transform_batch=transform_batch, gene_list=genes,
            n_samples=n_samples, return_mean=True, return_numpy=True)
        values = np.log1p(np.asarray(normalised, dtype=np.float32))
    else:
        counts = _common.matrix_of(adata, layer)
        if use_rep is not None:
            embedding = _common.obsm_of(adata, use_rep)
        else:
            embedding = _classical.pca_of_counts(counts, random_state=random_state)
        lognorm = _classical.log_normalise(counts, target_sum=library_size)
        values = _classical.knn_smooth(lognorm[:, adata.var_names.get_indexer(genes)], embedding, n_neighbors)
    key = key_added or f"{method}_denoised"
    if len(genes) == adata.n_vars:
        adata.layers[key] = values
    adata.uns[key] = _common.record(method, {"transform_batch": transform_batch, "library_size": float(library_size),
                                             "n_neighbors": int(n_neighbors), "n_genes": len(genes),
                                             "random_state": int(random_state)},
                                    seconds=time.perf_counter() - started)
    return values
