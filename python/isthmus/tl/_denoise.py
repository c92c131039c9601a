"""Denoised expression: scVI's normalised expression (the decoder's mean, library-size corrected and
optionally as if every cell came from one batch) against kNN averaging of log-normalised data.

Denoised values are smooth by construction: cells borrow from their neighbours, so genes look
more correlated and groups more different than they are. Use them to look at expression (plots,
gene-gene relations), not for differential expression or other tests, which need the counts.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from .. import _arguments
from . import _classical, _common, _runner
from ._registry import Method, register
from ._runner import Fit, Task, register_task


def _genes(call) -> list[str]:
    """The genes asked for; by default every gene the method covers (a model's training genes)."""
    if call.genes is not None:
        return list(call.genes)
    return list(call.model_genes if call.get("model_genes") is not None else call.adata.var_names)


def _denoised(call, values) -> Fit:
    """The values, and a layer over every gene of the data: NaN for genes not computed (a model
    trained on variable genes covers only those); the record lists the genes covered."""
    genes = _genes(call)
    fit = Fit(value=values, record={"n_genes": len(genes), "genes": genes})
    layer = values
    if len(genes) != call.adata.n_vars or not call.adata.var_names.equals(pd.Index(genes)):
        layer = np.full(call.adata.shape, np.nan, dtype=np.float32)
        layer[:, call.adata.var_names.get_indexer(genes)] = values
    fit.put(call.adata, "layers", _key(call), layer)
    return fit


def _fit_scvi(call) -> Fit:
    model, work = _common.trained_model(call.model, call.adata, "scVI denoising")
    _common.seed_everything(call.random_state)
    normalised = model.get_normalized_expression(
        work, library_size=call.library_size, transform_batch=call.transform_batch, gene_list=_genes(call),
        n_samples=call.n_samples, return_mean=True, return_numpy=True)
    return _denoised(call, np.log1p(np.asarray(normalised, dtype=np.float32)))


def _fit_knn(call) -> Fit:
    counts = _common.matrix_of(call.adata, call.layer)
    if call.use_rep is not None:
        embedding = _common.obsm_of(call.adata, call.use_rep)
    else:
        embedding = _classical.pca_of_counts(counts, random_state=call.random_state)
    lognorm = _classical.log_normalise(counts, target_sum=call.library_size)
    index = call.adata.var_names.get_indexer(_genes(call))
    return _denoised(call, _classical.knn_smooth(lognorm[:, index], embedding, call.n_neighbors))


def _key(call, entry=None) -> str:
    return call.key_added or f"{call.method}_denoised"


def _prepare(call, entry) -> None:
    call.model_genes = None
    if entry.name == "scvi" and call.model is not None:
        call.model_genes = _common.model_var_names(call.model)
    missing = [g for g in _genes(call) if g not in call.adata.var_names]
    if missing:
        raise ValueError(f"isthmus: {len(missing)} genes not in the data, e.g. {missing[:5]}")
    if call.model_genes is not None:
        untrained = [g for g in _genes(call) if g not in call.model_genes]
        if untrained:
            raise ValueError(f"isthmus: {len(untrained)} genes of {_arguments.name('genes')} were not among the "
                             f"{len(call.model_genes)} genes the model was trained on (e.g. {untrained[:5]}); "
                             f"train it on them (RunSCVI's / integrate's {_arguments.name('genes')}) or leave them "
                             "out.")
    if entry.name == "knn":
        _common.check_counts(call.adata, call.layer, allow_non_integer=True)


register(Method("denoise", "scvi", _fit_scvi, "dl", "scVI's normalised expression, averaged over posterior samples",
                needs=("model",), writes=("layers/{key}",), r_verb="DenoiseExpression"))
register(Method("denoise", "knn", _fit_knn, "baseline",
                "log-normalised expression averaged over each cell's nearest neighbours", needs=("counts",),
                writes=("layers/{key}",), r_verb="DenoiseExpression"))


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
    accelerator: str = "auto",
    devices: int | str | Sequence[int] = "auto",
    batch_size: int | None = None,
    random_state: int = 0,
):
    """Denoised, log1p-scaled expression (same scale as log-normalised data: log1p of expression
    per ``library_size`` counts); returns the cells x genes array.

    method "scvi": ``model`` is a trained SCVI/SCANVI model or the directory of one (set up on
    ``adata``'s genes); ``n_samples`` posterior samples are averaged, ``transform_batch`` names
    the batch every cell is shown in. "knn": each cell's log-normalised expression averaged over
    its ``n_neighbors`` nearest cells in ``obsm[use_rep]`` (default: the standard PCA).
    ``genes`` restricts the output (dense: cells x genes floats); by default scVI gives every gene
    the model was trained on (its variable genes, unless it was trained on all), kNN every gene.

    Sets the following fields:

    - ``layers[key_added]`` (default "<method>_denoised"): the values, over every gene of ``adata``:
      NaN for the genes not computed;
    - ``uns[key_added]``: the record (the call's arguments, ``genes``: the genes covered, ``n_genes``,
      seconds, versions).
    """
    return _runner.run("denoise", locals())


register_task(Task("denoise", denoise, key=_key, record_at=lambda call, entry, fit: (call.adata, _key(call)),
                   prepare=_prepare, not_recorded=("adata",)))
