"""Synthetic cells from a trained model, and a posterior predictive check against real cells.

scVI's prior N(0, I) knows nothing of cell types, so cells of a chosen type are generated from the
model's aggregate posterior for that type: pick real cells of the type at random, draw a latent
point from each one's posterior q(z|x), decode it in the chosen batch and draw counts from the
likelihood. The classical baseline draws each gene independently from a negative binomial fitted
per group (mean and dispersion by moments), scaled by library sizes drawn from the real cells.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from scipy import sparse

from . import _classical, _common, _runner
from ._registry import Method, register
from ._runner import Fit, Task, register_task


def _choose_cells(adata, groupby, groups, n_cells, rng) -> np.ndarray:
    if groupby is None:
        pool = np.arange(adata.n_obs)
    else:
        values = adata.obs[groupby].astype(str).to_numpy()
        groups = list(groups) if groups is not None else sorted(set(values))
        unknown = [g for g in groups if g not in set(values)]
        if unknown:
            raise ValueError(f"isthmus: no cells with {groupby} = {unknown}.")
        pool = np.flatnonzero(np.isin(values, groups))
    return np.sort(rng.choice(pool, size=int(n_cells), replace=True))
def _nb_sample(counts, real_groups: np.ndarray, source: np.ndarray, rng) -> sparse.csr_matrix:
    """Per group and gene a negative binomial fitted by moments on all real cells of the group;
    each synthetic cell takes the library size of its source cell."""
    counts = sparse.csr_matrix(counts, dtype=np.float64)
    library = np.asarray(counts.sum(axis=1)).ravel()
    out = np.zeros((len(source), counts.shape[1]), dtype=np.float32)
    for group in pd.unique(real_groups[source]):
        members = np.flatnonzero(real_groups == group)
        lib = np.maximum(library[members], 1.0)
        # expression per cell at the group's mean library size, then its per-gene moments
        scaled = sparse.diags(lib.mean() / lib) @ counts[members]
        mean = np.asarray(scaled.mean(axis=0)).ravel()
        var = np.asarray(scaled.multiply(scaled).mean(axis=0)).ravel() - mean**2
        # var = mu + mu^2 / theta gives theta; no extra variance means (nearly) Poisson
        theta = np.where(var > mean, mean**2 / np.maximum(var - mean, 1e-12), 1e6)
        theta = np.maximum(theta, 1e-6)
        rows = np.flatnonzero(real_groups[source] == group)
        mu = np.outer(library[source[rows]] / lib.mean(), mean)
        out[rows] = rng.negative_binomial(theta, theta / (theta + mu))
    return sparse.csr_matrix(out)



def _synthetic(call, source, counts, extra_obs: dict, genes) -> Fit:
    """The synthetic cells over ``genes``: the model's (its training genes) or every gene (the baseline)."""
    import anndata as ad

    adata = call.adata
    obs = pd.DataFrame({"synthetic": True, "source_cell": adata.obs_names[source].to_numpy()},
                       index=[f"synthetic_{i + 1}" for i in range(len(source))])
    if call.groupby is not None:
        obs[call.groupby] = adata.obs[call.groupby].astype(str).to_numpy()[source]
    for name, values in extra_obs.items():
        obs[name] = values
    out = ad.AnnData(X=counts, obs=obs, var=pd.DataFrame(index=pd.Index(genes).copy()))
    out.layers["counts"] = counts
    return Fit(value=out)


def _fit_scvi(call) -> Fit:
    adata = call.adata
    rng = np.random.default_rng(call.random_state)
    source = _choose_cells(adata, call.groupby, call.groups, call.n_cells, rng)
    model, work = _common.trained_model(call.model, adata, "generation with scVI")
    batch_key = model.adata_manager.registry["setup_args"].get("batch_key")
    _common.seed_everything(call.random_state)
    transform = [call.transform_batch] if call.transform_batch else None
    samples = model.posterior_predictive_sample(work, indices=source, n_samples=1, transform_batch=transform)
    counts = sparse.csr_matrix(samples.to_scipy_sparse() if hasattr(samples, "to_scipy_sparse")
                               else np.asarray(samples), dtype=np.float32)
    extra = {}
    if batch_key:
        extra[batch_key] = call.transform_batch or adata.obs[batch_key].astype(str).to_numpy()[source]
    fit = _synthetic(call, source, counts, extra, work.var_names)
    fit.record.update(batch_key=batch_key, genes=[str(g) for g in work.var_names])
    return fit


def _fit_nb(call) -> Fit:
    adata = call.adata
    rng = np.random.default_rng(call.random_state)
    source = _choose_cells(adata, call.groupby, call.groups, call.n_cells, rng)
    real_groups = adata.obs[call.groupby].astype(str).to_numpy() if call.groupby is not None else np.zeros(adata.n_obs)
    counts = _nb_sample(_common.matrix_of(adata, call.layer), real_groups, source, rng)
    return _synthetic(call, source, counts, {}, adata.var_names)


def _prepare(call, entry) -> None:
    _common.check_column(call.adata, call.groupby, "group", allow_na=True)
    if entry.name == "nb":
        _common.check_counts(call.adata, call.layer)


register(Method("generate", "scvi", _fit_scvi, "dl",
                "counts drawn from scVI's posterior of real cells of the chosen groups, decoded in a batch",
                needs=("model",), r_verb="GenerateCells"))
register(Method("generate", "nb", _fit_nb, "baseline",
                "counts drawn gene by gene from a negative binomial fitted per group", needs=("counts",),
                r_verb="GenerateCells"))


def generate(
    adata,
    *,
    n_cells: int,
    method: str = "scvi",
    model=None,
    layer: str | None = "counts",
    groupby: str | None = None,
    groups: Sequence[str] | None = None,
    transform_batch: str | None = None,
    accelerator: str = "auto",
    devices: int | str | Sequence[int] = "auto",
    batch_size: int | None = None,
    random_state: int = 0,
):
    """Return a new AnnData of ``n_cells`` synthetic cells (counts in X and ``layers["counts"]``);
    ``adata`` itself is not changed.

    ``groupby``/``groups`` condition on a cell-type (or any) column: sources are drawn only from
    those groups. ``transform_batch`` (scVI) decodes every synthetic cell in that batch.
    The new AnnData holds: obs ``synthetic`` (True), ``source_cell`` (the real cell it was drawn
    from), the group column and the batch; ``uns["generate"]``: the record. ``model``: a trained
    SCVI/SCANVI or its directory, set up on ``adata``'s genes.
    """
    return _runner.run("generate", locals())


register_task(Task("generate", generate, key=lambda call, entry: "generate",
                   record_at=lambda call, entry, fit: (fit.value, "generate"), prepare=_prepare, not_recorded=("adata",)))


def _gene_summaries(counts) -> pd.DataFrame:
    lognorm = _classical.log_normalise(counts)
    mean = np.asarray(lognorm.mean(axis=0)).ravel()
    var = np.asarray(lognorm.multiply(lognorm).mean(axis=0)).ravel() - mean**2
    zeros = 1.0 - np.asarray((sparse.csr_matrix(counts) > 0).mean(axis=0)).ravel()
    return pd.DataFrame({"mean": mean, "var": var, "zero_fraction": zeros})


def _two_sample_auc(real, synthetic, random_state: int) -> float:
    """Cross-validated AUC of a classifier telling synthetic from real cells in a shared PCA;
    0.5 means it cannot tell them apart."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.metrics import roc_auc_score

    if min(real.shape[0], synthetic.shape[0]) < 5:  # too few for 5-fold cross-validation
        return float("nan")
    pooled = sparse.vstack([sparse.csr_matrix(real), sparse.csr_matrix(synthetic)]).tocsr()
    truth = np.r_[np.zeros(real.shape[0]), np.ones(synthetic.shape[0])]
    pcs = _classical.ScaledPCA(n_comps=20, random_state=random_state).fit_transform(
        _classical.log_normalise(pooled))
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=random_state)
    scores = cross_val_predict(LogisticRegression(max_iter=1000), pcs, truth, cv=folds, method="predict_proba")[:, 1]
    return float(roc_auc_score(truth, scores))


def check_generated(real, synthetic, *, layer: str | None = "counts", groupby: str | None = None,
                    random_state: int = 0) -> pd.DataFrame:
    """Posterior predictive check: per group (or overall), how generated cells compare with real
    ones, on the synthetic cells' genes (a model's training genes). Columns: group, n_real, n_synthetic,
    mean_correlation and variance_correlation (Pearson,
    per gene, on log-normalised data), zero_fraction_error (mean absolute difference per gene) and
    classifier_auc (0.5 = indistinguishable, 1 = fully separable)."""
    random_state = _runner.validate(check_generated, locals())["random_state"]  # the checks every task has
    for data in (real, synthetic):
        _common.check_column(data, groupby, "group", allow_na=True)
    real_counts = _common.matrix_of(real, layer)
    synthetic_counts = synthetic.layers["counts"] if "counts" in synthetic.layers else synthetic.X
    # on the synthetic cells' genes: a model trained on variable genes generates only those
    missing = synthetic.var_names.difference(real.var_names)
    if len(missing):
        raise ValueError(f"isthmus: the synthetic cells have {len(missing)} genes the real cells lack (e.g. "
                         f"{', '.join(map(str, missing[:5]))}); compare cells of the same genes.")
    real_counts = real_counts[:, real.var_names.get_indexer(synthetic.var_names)]
    if groupby is None:
        groups = [(None, np.ones(real.n_obs, bool), np.ones(synthetic.n_obs, bool))]
    else:
        real_groups = real.obs[groupby].astype(str).to_numpy()
        synthetic_groups = synthetic.obs[groupby].astype(str).to_numpy()
        groups = [(g, real_groups == g, synthetic_groups == g) for g in pd.unique(synthetic_groups)]
    rows = []
    for group, in_real, in_synthetic in groups:
        r, s = real_counts[in_real], synthetic_counts[in_synthetic]
        a, b = _gene_summaries(r), _gene_summaries(s)
        rows.append({
            "group": "all" if group is None else group,
            "n_real": int(in_real.sum()), "n_synthetic": int(in_synthetic.sum()),
            "mean_correlation": float(np.corrcoef(a["mean"], b["mean"])[0, 1]),
            "variance_correlation": float(np.corrcoef(a["var"], b["var"])[0, 1]),
            "zero_fraction_error": float(np.abs(a["zero_fraction"] - b["zero_fraction"]).mean()),
            "classifier_auc": _two_sample_auc(r, s, random_state),
        })
    return pd.DataFrame(rows)
