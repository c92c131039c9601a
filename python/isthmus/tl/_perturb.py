"""Perturbation response: what a cell type would look like under a condition it was not measured in.

One cell type (``predict``) is held out: its perturbed cells are never seen by any fit. Its control
cells are turned into predicted perturbed cells from what the other cell types, measured in both
conditions, show about the perturbation:

- "scgen": scGen's latent arithmetic (Lotfollahi et al. 2019, Nat Methods) on an scVI-style VAE
  (scvi-tools' ``SCVI``: negative binomial likelihood on raw counts instead of scGen's Gaussian on
  log-normalised data). The VAE learns every cell of the training set, both conditions; the
  perturbation is the shift between the conditions' mean latent points, balanced by cell type; the
  held-out type's control cells are encoded, shifted and decoded at their own library sizes, and
  each predicted cell's counts are drawn from the decoded negative binomial (scGen's Gaussian
  decoder outputs log-normalised values directly; with a count likelihood a draw is what is on the
  scale of real log-normalised cells). The model is aware of the condition through the latent
  arithmetic only, as scGen is: given to the decoder as a covariate, the condition would be
  removed from the latent space and the shift learnt there would vanish.
- "linear": the same shift, taken in log-normalised expression instead of a latent space (the
  linear baseline of Ahlmann-Eltze et al. 2024, which matched or beat the deep models there).
- "no_change": the control cells themselves (a floor: it predicts the perturbed state as well as
  the two conditions are alike, and their difference not at all).

Every method returns log-normalised expression (log1p of counts per 10,000), so the scores
(:func:`perturbation_scores`) compare like with like.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from scipy import sparse

from .. import _arguments
from . import _classical, _common, _runner
from ._registry import Method, register
from ._runner import Fit, Task, register_task

TARGET_SUM = 1e4  # the scale of every method's output: log1p(counts per 10,000)
DEFAULT_EPOCHS = 100  # scGen's and pertpy's tutorials (the training loop stops there)


# ---- inputs -------------------------------------------------------------------------------------


def _values(adata, key: str) -> np.ndarray:
    return adata.obs[key].astype(str).to_numpy()


def _prepare(call, entry) -> None:
    """The checks and the split every method shares: which cells train (every cell type's cells in
    both conditions, never the held-out type's perturbed cells), the genes (chosen on those cells
    only) and the types whose shift is learnt."""
    adata = call.adata
    _common.check_column(adata, call.condition_key, "condition")
    _common.check_column(adata, call.cell_type_key, "cell type")
    _common.check_counts(adata, call.layer, allow_non_integer=entry.kind == "baseline")
    condition, types = _values(adata, call.condition_key), _values(adata, call.cell_type_key)
    for argument, value in (("control", call.control), ("perturbed", call.perturbed)):
        if value not in set(condition):
            raise ValueError(f"isthmus: {_arguments.name(argument)} {_arguments.value_text(value)} is not a value of "
                             f"the condition column {call.condition_key!r} (it holds "
                             f"{', '.join(sorted(set(condition))[:10])}).")
    if call.control == call.perturbed:
        raise ValueError(f"isthmus: {_arguments.name('control')} and {_arguments.name('perturbed')} must differ.")
    source = (types == call.predict) & (condition == call.control)
    if not source.any():
        raise ValueError(f"isthmus: no {_arguments.name('control')} cells of {_arguments.name('predict')} "
                         f"{_arguments.value_text(call.predict)} in {call.cell_type_key!r}: its response is predicted "
                         f"from its control cells (types: {', '.join(sorted(set(types))[:10])}).")
    in_either = np.isin(condition, [call.control, call.perturbed])
    # the held-out type's perturbed cells are the truth the scores use; no fit sees them
    training = in_either & ~((types == call.predict) & (condition == call.perturbed))
    learnt = sorted(t for t in set(types[training]) - {call.predict}
                    if ((types == t) & (condition == call.control) & training).any()
                    and ((types == t) & (condition == call.perturbed) & training).any())
    if not learnt:
        raise ValueError(f"isthmus: no other cell type has cells in both {_arguments.value_text(call.control)} and "
                         f"{_arguments.value_text(call.perturbed)}; the response is learnt from such types.")
    train = _common.lean_copy(adata[training]) if not training.all() else _common.lean_copy(adata)
    genes, source_of_genes = _common.model_genes(train, call.genes, layer=call.layer)
    matrix = _common.matrix_of(adata, call.layer)
    counts = sparse.csr_matrix(matrix[:, adata.var_names.get_indexer(genes)], dtype=np.float32)
    # every cell's library over all its genes: the scale log-normalised expression is on, whatever genes are used
    library = np.asarray(matrix.sum(axis=1), dtype=np.float64).ravel()
    call.prepared = dict(
        counts=counts, library=library, genes=genes, training=training, source=np.flatnonzero(source), learnt=learnt,
        condition=condition, types=types,
        facts={**_common.gene_facts(genes, source_of_genes), "training_cells": int(training.sum()),
               "source_cells": int(source.sum()), "types_learnt": learnt,
               "held_out_perturbed_cells": int(((types == call.predict) & (condition == call.perturbed)).sum()),
               "output": "log1p(counts per 10,000)"})


def _log_normalised(counts, library: np.ndarray) -> np.ndarray:
    """log1p(counts / the cell's library over every gene * 10,000), dense float64: Seurat's
    LogNormalize, restricted to the genes used after normalising."""
    dense = counts.toarray() if sparse.issparse(counts) else np.asarray(counts)
    scale = np.divide(TARGET_SUM, library, out=np.zeros_like(library), where=library > 0)
    return np.log1p(dense.astype(np.float64) * scale[:, None])


def _balanced_shift(values: np.ndarray, types: np.ndarray, condition: np.ndarray, learnt, control, perturbed):
    """scGen's delta: the mean over cell types of the perturbed cells' mean minus the mean over
    cell types of the control cells' mean, so that every type weighs the same however many cells
    it has (scGen samples each type to equal size for the same end)."""
    def mean_of(kind):
        return np.mean([values[(types == t) & (condition == kind)].mean(axis=0) for t in learnt], axis=0)

    return mean_of(perturbed) - mean_of(control)


def _predicted(call, expression: np.ndarray, extra: dict | None = None) -> Fit:
    """The predicted cells as a new AnnData (log-normalised expression in X), one per source cell."""
    import anndata as ad

    prepared = call.prepared
    source = prepared["source"]
    names = call.adata.obs_names[source]
    obs = pd.DataFrame({"predicted": True, "source_cell": names.to_numpy(),
                        call.cell_type_key: call.predict, call.condition_key: call.perturbed},
                       index=[f"predicted_{i + 1}" for i in range(len(source))])
    out = ad.AnnData(X=np.asarray(expression, dtype=np.float32), obs=obs,
                     var=pd.DataFrame(index=pd.Index(prepared["genes"]).astype(str).copy()))
    fit = Fit(value=out, record={**prepared["facts"], **(extra or {})})
    truth = (prepared["types"] == call.predict) & (prepared["condition"] == call.perturbed)
    if truth.any():  # the held-out type's real perturbed cells are in the data: score the prediction
        fit.record_top["scores"] = perturbation_scores(
            call.adata, out, condition_key=call.condition_key, control=call.control, perturbed=call.perturbed,
            cell_type_key=call.cell_type_key, layer=call.layer, random_state=call.random_state)
    return fit


def _fit_no_change(call) -> Fit:
    prepared = call.prepared
    source = prepared["source"]
    fit = _predicted(call, _log_normalised(prepared["counts"][source], prepared["library"][source]))
    fit.record.update(max_epochs="")
    return fit


def _fit_linear(call) -> Fit:
    prepared = call.prepared
    training = prepared["training"]
    lognorm = _log_normalised(prepared["counts"], prepared["library"])
    shift = _balanced_shift(lognorm[training], prepared["types"][training], prepared["condition"][training],
                            prepared["learnt"], call.control, call.perturbed)
    # log-normalised expression is never negative: a decrease stops at zero
    fit = _predicted(call, np.maximum(lognorm[prepared["source"]] + shift, 0.0))
    fit.record.update(max_epochs="")
    return fit


def _fit_scgen(call) -> Fit:
    import scvi
    import torch

    prepared = call.prepared
    training = prepared["training"]
    counts = prepared["counts"]
    genes = pd.Index(prepared["genes"]).astype(str)
    names = call.adata.obs_names.astype(str)
    lean = ad_lean(counts[training], names[training], genes)
    _common.seed_everything(call.random_state)
    scvi.model.SCVI.setup_anndata(lean)
    # scGen's architecture (Lotfollahi et al. 2019; pertpy's Scgen defaults): 2 hidden layers of 800
    # units, a 100-dimensional latent space, dropout 0.2; the likelihood is scVI's negative binomial
    model = scvi.model.SCVI(lean, n_latent=int(call.n_latent), n_hidden=int(call.n_hidden),
                            n_layers=int(call.n_layers), dropout_rate=0.2, gene_likelihood="nb")
    max_epochs = int(DEFAULT_EPOCHS if call.max_epochs is None else call.max_epochs)
    _common.train(model, label="scGen (scVI)", max_epochs=max_epochs, verbose=call.verbose)
    latent = model.get_latent_representation(lean)
    shift = _balanced_shift(latent, prepared["types"][training], prepared["condition"][training],
                            prepared["learnt"], call.control, call.perturbed)
    source = prepared["source"]
    source_lean = ad_lean(counts[source], names[source], genes)
    model.adata_manager.transfer_fields(source_lean)  # registers the source cells as the training cells were
    z = model.get_latent_representation(source_lean) + shift
    module = model.module
    module.eval()
    device = next(module.parameters()).device
    library = np.maximum(np.asarray(counts[source].sum(axis=1)).ravel(), 1.0)  # on the model's genes
    with torch.no_grad():
        generative = module.generative(
            z=torch.as_tensor(z, dtype=torch.float32, device=device),
            library=torch.as_tensor(np.log(library)[:, None], dtype=torch.float32, device=device),
            batch_index=torch.zeros((len(source), 1), dtype=torch.long, device=device))
        # counts drawn from the likelihood at the source cell's library on these genes: log-normalised,
        # a drawn cell is compared like with like with the real cells' log-normalised counts (the log of
        # the expected counts would sit above their mean log: log E[x] >= E[log x])
        torch.manual_seed(int(call.random_state))
        drawn = generative["px"].sample().cpu().numpy().astype(np.float64)
    fit = _predicted(call, _log_normalised(drawn, prepared["library"][source]),
                     {"max_epochs": max_epochs, "epochs_run": len(model.history["elbo_train"]),
                      "latent_shift_norm": float(np.linalg.norm(shift))})
    fit.model = model
    return fit


def ad_lean(counts, obs_names, var_names):
    import anndata as ad

    return ad.AnnData(X=counts, obs=pd.DataFrame(index=pd.Index(obs_names)), var=pd.DataFrame(index=var_names))


register(Method("predict_perturbation", "scgen", _fit_scgen, "dl",
                "scGen's latent arithmetic on an scVI-style VAE (negative binomial, scvi-tools): the shift between "
                "conditions learnt on the other cell types, balanced by type, added to the held-out type's control "
                "cells and decoded",
                needs=("counts", "labels", "condition"), saves_model=True, r_verb="PredictPerturbation"))
register(Method("predict_perturbation", "linear", _fit_linear, "baseline",
                "the same balanced shift in log-normalised expression, added to the control cells",
                needs=("labels", "condition"), r_verb="PredictPerturbation"))
register(Method("predict_perturbation", "no_change", _fit_no_change, "baseline",
                "the control cells themselves (log-normalised): a floor no method should fall under",
                needs=("labels", "condition"), r_verb="PredictPerturbation"))


def predict_perturbation(
    adata,
    *,
    predict: str,
    method: str = "scgen",
    condition_key: str = "condition",
    control: str = "ctrl",
    perturbed: str = "stim",
    cell_type_key: str = "cell_type",
    layer: str | None = "counts",
    genes: str | Sequence[str] = "variable",
    n_latent: int = 100,
    n_hidden: int = 800,
    n_layers: int = 2,
    max_epochs: int | None = None,
    model_dir: str | None = None,
    accelerator: str = "auto",
    devices: int | str | Sequence[int] = "auto",
    batch_size: int | None = None,
    random_state: int = 0,
    verbose: bool = True,
):
    """Predict how the cells of type ``predict`` respond to ``perturbed`` from their ``control`` cells.

    Returns a new AnnData, one predicted cell per control cell of ``predict`` (``adata`` itself is
    not changed), holding **log-normalised expression** (log1p of counts per 10,000) in X for the
    genes used, and in obs: ``predicted`` (True), ``source_cell`` (the control cell it was made
    from), ``cell_type_key`` (``predict``) and ``condition_key`` (``perturbed``). Its
    ``uns["predict_perturbation"]`` is the record: method, seconds, model directory (scgen),
    parameters, the genes used, ``training_cells``, ``source_cells``, ``types_learnt`` (the types
    whose shift was learnt), ``held_out_perturbed_cells`` and, when the held-out type's real
    perturbed cells are in ``adata``, ``scores`` (:func:`perturbation_scores`).

    What the fits see: every cell of ``adata`` whose condition is ``control`` or ``perturbed``,
    except the ``perturbed`` cells of ``predict``. Those, when present, are only the truth the
    scores measure against; changing them changes no prediction. The genes are chosen on the
    training cells alone: ``genes`` "variable" (default; the data's own ``var["highly_variable"]``,
    else scanpy's seurat_v3 selection of 2000 genes on the counts, every gene when there are fewer),
    "all" or gene names; the same genes for every method.

    Methods (see the module's text): "scgen" (default; scvi-tools' SCVI with scGen's architecture:
    ``n_latent`` 100, ``n_hidden`` 800, ``n_layers`` 2, dropout 0.2, as in scGen's paper and
    pertpy's Scgen, a negative binomial likelihood on ``layer``'s raw counts; ``max_epochs`` None
    is 100, scGen's tutorials'; trained on ``accelerator`` / ``devices`` with ``batch_size``
    (None: scvi-tools' 128); the shift is the mean over learnt types of each type's mean latent
    point under ``perturbed`` minus the same under ``control``; predicted cells are decoded at their
    source cell's library size, counts drawn from the negative binomial (seeded by
    ``random_state``) and log-normalised on the source cell's library), "linear" (the
    same shift in log-normalised expression, floored at 0) and "no_change".

    ``layer`` holds raw counts (None: X); the baselines accept non-integer values (they
    log-normalise them).
    """
    return _runner.run("predict_perturbation", locals())


register_task(Task("predict_perturbation", predict_perturbation, key=lambda call, entry: "predict_perturbation",
                   record_at=lambda call, entry, fit: (fit.value, "predict_perturbation"), prepare=_prepare,
                   not_recorded=("adata",)))


# ---- scores -------------------------------------------------------------------------------------


def _r2(truth: np.ndarray, estimate: np.ndarray) -> float:
    """Coefficient of determination of ``estimate`` against ``truth`` (1 - SS_res / SS_tot): unlike
    a squared correlation it also counts a bias or a wrong scale against the prediction."""
    total = float(((truth - truth.mean()) ** 2).sum())
    return float("nan") if total == 0 else 1.0 - float(((truth - estimate) ** 2).sum()) / total


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    def constant(x):  # to float32 rounding: the output is stored as float32
        return np.ptp(x) <= 1e-6 * max(1.0, float(np.abs(x).max()))

    if constant(a) or constant(b):
        return float("nan")  # undefined for a constant (e.g. "no change": a change of zero everywhere)
    return float(np.corrcoef(a, b)[0, 1])


def _energy_distance(x: np.ndarray, y: np.ndarray) -> float:
    """E-distance between two point clouds (2 E|x - y| - E|x - x'| - E|y - y'|; 0 for the same
    distribution), as scPerturb's benchmarks use it."""
    from scipy.spatial.distance import cdist

    return float(2 * cdist(x, y).mean() - cdist(x, x).mean() - cdist(y, y).mean())


def _classifier_auc(x: np.ndarray, y: np.ndarray, random_state: int) -> float:
    """Cross-validated AUC of a logistic regression telling predicted from real cells (0.5: it cannot)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    if min(len(x), len(y)) < 5:
        return float("nan")
    data, truth = np.vstack([x, y]), np.r_[np.zeros(len(x)), np.ones(len(y))]
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=random_state)
    scores = cross_val_predict(LogisticRegression(max_iter=1000), data, truth, cv=folds, method="predict_proba")[:, 1]
    return float(roc_auc_score(truth, scores))


def perturbation_scores(
    adata,
    predicted,
    *,
    condition_key: str = "condition",
    control: str = "ctrl",
    perturbed: str = "stim",
    cell_type_key: str = "cell_type",
    layer: str | None = "counts",
    n_top_genes: int = 100,
    n_comps: int = 20,
    random_state: int = 0,
) -> pd.DataFrame:
    """How close predicted perturbed cells are to the real ones, per cell type of ``predicted``.

    ``adata`` holds the real cells (raw counts in ``layer``; log-normalised here to log1p of counts
    per 10,000), ``predicted`` the predicted ones in that same log-normalised scale (what
    :func:`predict_perturbation` returns), on a subset of ``adata``'s genes. Long format: cell_type,
    metric, value, with the metrics

    - ``r2_mean`` / ``pearson_mean``: the predicted vs the real perturbed cells' mean expression,
      every gene (R^2 as 1 - SS_res / SS_tot; high even for "no change", since the two conditions'
      means are alike);
    - ``r2_mean_top`` / ``pearson_mean_top``: the same on the ``n_top_genes`` (100) genes whose
      mean changes most (absolute difference of the real means, perturbed minus control): the genes
      that respond, as scGen's figures show them;
    - ``r2_change`` / ``pearson_change`` and ``..._top``: the predicted change from control (predicted
      mean minus the real control mean) against the real change: the metric "no change" cannot
      win (its change is zero: Pearson is undefined there, NaN, and R^2 at most 0);
    - ``energy_distance``: E-distance between predicted and real perturbed cells in the first
      ``n_comps`` principal components of the real cells of the type (both conditions; lower is
      better, 0 for the same distribution);
    - ``classifier_auc``: cross-validated AUC of a logistic regression telling predicted from real
      perturbed cells in those components (0.5: it cannot; 1: it always can).
    """
    checked = _runner.validate(perturbation_scores, locals())
    n_top_genes, n_comps, random_state = checked["n_top_genes"], checked["n_comps"], checked["random_state"]
    for key, what in ((condition_key, "condition"), (cell_type_key, "cell type")):
        _common.check_column(adata, key, what)
    _common.check_column(predicted, cell_type_key, "cell type")
    missing = pd.Index(predicted.var_names).difference(adata.var_names)
    if len(missing):
        raise ValueError(f"isthmus: the predicted cells have {len(missing)} genes the real cells lack (e.g. "
                         f"{', '.join(map(str, missing[:5]))}); score cells of the same genes.")
    # log-normalised on every gene of the real data (the library size a prediction was made at)
    matrix = _common.matrix_of(adata, layer)
    real = _log_normalised(sparse.csr_matrix(matrix)[:, adata.var_names.get_indexer(predicted.var_names)],
                           np.asarray(matrix.sum(axis=1), dtype=np.float64).ravel())
    guess = (predicted.X.toarray() if sparse.issparse(predicted.X) else np.asarray(predicted.X)).astype(np.float64)
    condition, types = _values(adata, condition_key), _values(adata, cell_type_key)
    rows = []
    for cell_type in pd.unique(_values(predicted, cell_type_key)):
        in_type = types == cell_type
        stim, ctrl = real[in_type & (condition == perturbed)], real[in_type & (condition == control)]
        mine = guess[_values(predicted, cell_type_key) == cell_type]
        if not len(stim) or not len(ctrl):
            raise ValueError(f"isthmus: {cell_type!r} needs real cells in both {control!r} and {perturbed!r} to be "
                             "scored.")
        real_mean, control_mean, predicted_mean = stim.mean(axis=0), ctrl.mean(axis=0), mine.mean(axis=0)
        real_change, predicted_change = real_mean - control_mean, predicted_mean - control_mean
        top = np.argsort(-np.abs(real_change), kind="stable")[: min(n_top_genes, len(real_change))]
        scores = {
            "r2_mean": _r2(real_mean, predicted_mean), "pearson_mean": _pearson(real_mean, predicted_mean),
            "r2_mean_top": _r2(real_mean[top], predicted_mean[top]),
            "pearson_mean_top": _pearson(real_mean[top], predicted_mean[top]),
            "r2_change": _r2(real_change, predicted_change), "pearson_change": _pearson(real_change, predicted_change),
            "r2_change_top": _r2(real_change[top], predicted_change[top]),
            "pearson_change_top": _pearson(real_change[top], predicted_change[top]),
        }
        # the principal components of the type's real cells, both conditions, scaled genes
        from sklearn.decomposition import PCA

        both = np.vstack([ctrl, stim])
        mean, sd = both.mean(axis=0), both.std(axis=0)
        sd[sd == 0] = 1.0
        pca = PCA(n_components=min(n_comps, both.shape[0] - 1, both.shape[1]), random_state=random_state)
        pca.fit((both - mean) / sd)
        real_pcs, predicted_pcs = pca.transform((stim - mean) / sd), pca.transform((mine - mean) / sd)
        scores["energy_distance"] = _energy_distance(predicted_pcs, real_pcs)
        scores["classifier_auc"] = _classifier_auc(real_pcs, predicted_pcs, random_state)
        rows += [{"cell_type": cell_type, "metric": k, "value": float(v)} for k, v in scores.items()]
    return pd.DataFrame(rows)
