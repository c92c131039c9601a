"""Side-by-side comparison of DL methods and their classical baselines on the user's own data:
one call, one tidy table of the field's standard metrics, one plot."""

from __future__ import annotations

import time
from typing import Sequence

import anndata as ad
import numpy as np
import pandas as pd

from . import _common, _runner
from ._bulk import bulk_scores, deconvolve_bulk, pseudo_bulks
from ._deconvolve import deconvolution_scores, deconvolve, pseudo_spots, split_halves
from ._perturb import perturbation_scores, predict_perturbation
from ._embed import integrate
from ._registry import lookup, method_names
from ._transfer import UNKNOWN, transfer_labels

TASKS = ("integration", "label_transfer", "deconvolution", "perturbation", "bulk_deconvolution")


def scib_scores(adata, *, embeddings: Sequence[str], batch_key: str | None, labels_key: str,
                baseline: str | None = None) -> pd.DataFrame:
    """scib-metrics' bio-conservation and batch-correction scores for obsm ``embeddings``, on the
    cells that have a label; long format (method, category, metric, value)."""
    import logging

    import anndata as ad
    from scib_metrics.benchmark import BatchCorrection, Benchmarker

    logging.getLogger("scib_metrics").setLevel(logging.WARNING)  # per-label "too small, skip" lines

    labelled = adata.obs[labels_key].notna().to_numpy()
    obs = pd.DataFrame({"labels": adata.obs[labels_key].astype(str).to_numpy()[labelled]})
    obs["batch"] = adata.obs[batch_key].astype(str).to_numpy()[labelled] if batch_key else "one batch"
    keys = list(embeddings) + ([baseline] if baseline and baseline not in embeddings else [])
    work = ad.AnnData(obs=obs.set_index(adata.obs_names[labelled]),
                      obsm={k: np.asarray(adata.obsm[k])[labelled] for k in keys})
    # with a single batch, batch correction has nothing to measure
    batch_metrics = BatchCorrection(pcr_comparison=baseline is not None) if batch_key else None
    bench = Benchmarker(work, batch_key="batch", label_key="labels", embedding_obsm_keys=list(embeddings),
                        batch_correction_metrics=batch_metrics, pre_integrated_embedding_obsm_key=baseline,
                        n_jobs=1, progress_bar=False)
    bench.benchmark()
    wide = bench.get_results(min_max_scale=False)
    categories = wide.loc["Metric Type"]
    wide = wide.drop(index="Metric Type")
    rows = []
    for key in wide.index:
        for metric in wide.columns:
            rows.append({"method": key.removeprefix("X_"), "category": categories[metric], "metric": metric,
                         "value": float(wide.loc[key, metric])})
    return pd.DataFrame(rows)


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, n_bins: int = 10) -> float:
    """Mean |accuracy - confidence| over equal-width confidence bins, weighted by bin size."""
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    error = 0.0
    for b in np.unique(bins):
        inside = bins == b
        error += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(error)


def label_transfer_scores(truth, result: pd.DataFrame, holdout_labels: Sequence[str] = ()) -> dict[str, float]:
    """Accuracy and macro-F1 over the query's true labels ("unknown" counts as wrong), expected
    calibration error of prediction.score.max, the share called "unknown", and for labels left out
    of the reference the share of their cells called "unknown" (the right answer for them)."""
    from sklearn.metrics import f1_score

    truth = pd.Series(truth, dtype=str).to_numpy()
    predicted = result["predicted.id"].astype(str).to_numpy()
    known = ~np.isin(truth, list(holdout_labels))
    correct = predicted == truth
    scores = {
        "accuracy": float(correct[known].mean()),
        "macro_f1": float(f1_score(truth[known], predicted[known], labels=np.unique(truth[known]),
                                   average="macro", zero_division=0)),
        "calibration_error": expected_calibration_error(result["prediction.score.max"].to_numpy()[known],
                                                        correct[known]),
        "unknown_share": float((predicted == UNKNOWN).mean()),
    }
    if len(holdout_labels):
        scores["heldout_called_unknown"] = float((predicted[~known] == UNKNOWN).mean()) if (~known).any() else np.nan
    return scores


def compare(
    adata,
    *,
    task: str = "integration",
    methods: Sequence[str] | None = None,
    batch_key: str | None = None,
    labels_key: str,
    query_batches: Sequence[str] | None = None,
    holdout_labels: Sequence[str] = (),
    layer: str | None = "counts",
    max_epochs: int | None = None,
    random_state: int = 0,
    verbose: bool = True,
    **kwargs,
) -> pd.DataFrame:
    """Run DL methods and baselines on ``adata`` and score them; returns a tidy frame with
    columns method, category, metric, value (wall time as metric "seconds").

    ``adata`` itself is not changed. task "integration": methods from scvi, scanvi, harmony, pca (default all; scanvi sees the
    labels, so its bio-conservation is not blind), scored with scib-metrics against the labels.
    task "label_transfer": cells whose ``batch_key`` value is in ``query_batches`` are the query,
    the rest the reference (``holdout_labels`` are removed from it); methods from scanvi, knn, svm;
    scored by accuracy, macro-F1, calibration error and unknown shares against the query's labels.
    task "deconvolution": ``adata`` is a labelled single-cell reference; each cell type is split in
    two halves, one half is summed into pseudo-spots of known composition (``n_spots``, 5-10 cells
    each; see pseudo_spots), the other is the reference; methods from destvi, stereoscope, nnls,
    scored by RMSE, JSD and Pearson against the true cell fractions.
    task "perturbation": ``labels_key`` is the cell type, ``condition_key`` (default "condition")
    holds ``control`` ("ctrl") and ``perturbed`` ("stim"); each cell type measured in both (or only
    ``predict``) is held out in turn and predicted from its control cells (predict_perturbation);
    methods from scgen, linear, no_change, scored by perturbation_scores (category "Perturbation
    (<type>)"; the plot averages over types).
    task "bulk_deconvolution": ``adata`` is a labelled reference with ``batch_key`` (donors,
    batches, chemistries); each batch (or each of ``query_batches``) is held out in turn, ``n_bulks``
    (100) pseudo-bulks of 100 cells are made from its cells (pseudo_bulks) and deconvolved against
    the other batches; methods from scaden, nnls, music, scored by RMSE, JSD and Pearson (bulk_scores,
    overall; category "Bulk deconvolution (<batch>)").
    """
    checked = _runner.validate(compare, {k: v for k, v in locals().items() if k != "kwargs"})
    max_epochs, random_state = checked["max_epochs"], checked["random_state"]
    if task not in TASKS:
        raise ValueError(f"isthmus: unknown task {task!r}; available: {', '.join(TASKS)}")
    available = {"integration": method_names("integrate"), "label_transfer": method_names("transfer_labels"),
                 "deconvolution": method_names("deconvolve"), "perturbation": method_names("predict_perturbation"),
                 "bulk_deconvolution": method_names("deconvolve_bulk")}[task]
    methods = list(methods) if methods is not None else list(available)
    unknown = [m for m in methods if m not in available]
    if unknown:
        raise ValueError(f"isthmus: {task} has no method {unknown}; available: {', '.join(available)}")
    _common.check_column(adata, labels_key, "labels", allow_na=True)
    if adata.obs[labels_key].isna().all():
        raise ValueError(f"isthmus: labels column {labels_key!r} has no label in any cell; the scores compare "
                         "methods against known labels.")
    _common.check_column(adata, batch_key, "batch")
    # the methods run on a working object holding only what they read, so that the user's own
    # embeddings (an X_pca from scanpy, say) are not overwritten by the comparison's
    condition_key = kwargs.get("condition_key", "condition") if task == "perturbation" else None
    if condition_key is not None:
        _common.check_column(adata, condition_key, "condition")
    columns = [c for c in (batch_key, labels_key, condition_key) if c is not None]
    adata = ad.AnnData(X=_common.matrix_of(adata, layer), obs=adata.obs[columns].copy(),
                       var=pd.DataFrame(index=adata.var_names.copy()))
    layer = None
    rows = []
    if task == "integration":
        for method in methods:
            started = time.perf_counter()
            integrate(adata, batch_key=batch_key, method=method, labels_key=labels_key if "labels" in lookup("integrate", method).needs else None,
                      layer=layer, max_epochs=max_epochs, random_state=random_state, verbose=verbose, **kwargs)
            rows.append({"method": method, "category": "Time", "metric": "seconds",
                         "value": time.perf_counter() - started})
        baseline = "X_pca" if "pca" in methods else None
        scores = scib_scores(adata, embeddings=[f"X_{m}" for m in methods], batch_key=batch_key,
                             labels_key=labels_key, baseline=baseline)
        return pd.concat([scores, pd.DataFrame(rows)], ignore_index=True)
    if task == "perturbation":
        return _compare_perturbation(adata, methods, labels_key, max_epochs=max_epochs, random_state=random_state,
                                     verbose=verbose, **kwargs)
    if task == "bulk_deconvolution":
        return _compare_bulk(adata, methods, labels_key, batch_key, query_batches, random_state=random_state,
                             verbose=verbose, **kwargs)
    if task == "deconvolution":
        return _compare_deconvolution(adata, methods, labels_key, max_epochs=max_epochs, random_state=random_state,
                                      verbose=verbose, **kwargs)
    if not query_batches:
        raise ValueError("isthmus: label_transfer needs query_batches: the batch_key values that form the query.")
    in_query = adata.obs[batch_key].astype(str).isin([str(b) for b in query_batches]).to_numpy()
    if not in_query.any() or in_query.all():
        raise ValueError("isthmus: query_batches must select some cells, not all of them.")
    in_reference = ~in_query & ~adata.obs[labels_key].astype(str).isin(list(holdout_labels)).to_numpy()
    for method in methods:
        reference, query = adata[in_reference].copy(), adata[in_query].copy()
        started = time.perf_counter()
        result = transfer_labels(reference, query, labels_key=labels_key, method=method, batch_key=batch_key,
                                 layer=layer, max_epochs=max_epochs, random_state=random_state, verbose=verbose,
                                 **kwargs)
        seconds = time.perf_counter() - started
        scores = label_transfer_scores(query.obs[labels_key], result, holdout_labels)
        rows += [{"method": method, "category": "Label transfer", "metric": k, "value": v} for k, v in scores.items()]
        rows.append({"method": method, "category": "Time", "metric": "seconds", "value": seconds})
    return pd.DataFrame(rows)


def _compare_deconvolution(adata, methods, labels_key, *, max_epochs, random_state, verbose, n_spots: int = 200,
                           min_cells_per_type: int = 10, **kwargs) -> pd.DataFrame:
    reference, held_out, _ = split_halves(adata, labels_key=labels_key, min_cells=min_cells_per_type,
                                          random_state=random_state)
    spots, truth = pseudo_spots(held_out, labels_key=labels_key, n_spots=n_spots, layer=None,
                                random_state=random_state)
    rows = []
    for method in methods:
        started = time.perf_counter()
        estimate = deconvolve(spots.copy(), reference, labels_key=labels_key, method=method, layer=None,
                              min_cells_per_type=min_cells_per_type, max_epochs=max_epochs,
                              random_state=random_state, verbose=verbose, **kwargs)
        seconds = time.perf_counter() - started
        scores = deconvolution_scores(truth, estimate)
        rows += [{"method": method, "category": "Deconvolution", "metric": k, "value": v} for k, v in scores.items()]
        rows.append({"method": method, "category": "Time", "metric": "seconds", "value": seconds})
    return pd.DataFrame(rows)


def _compare_perturbation(adata, methods, labels_key, *, max_epochs, random_state, verbose,
                          condition_key: str = "condition", control: str = "ctrl", perturbed: str = "stim",
                          predict=None, **kwargs) -> pd.DataFrame:
    types = adata.obs[labels_key].astype(str).to_numpy()
    condition = adata.obs[condition_key].astype(str).to_numpy()
    if predict is None:
        held_out = [t for t in pd.unique(types) if ((types == t) & (condition == control)).any()
                    and ((types == t) & (condition == perturbed)).any()]
    else:
        held_out = [predict] if isinstance(predict, str) else list(predict)
    rows = []
    for cell_type in held_out:
        for method in methods:
            started = time.perf_counter()
            predicted = predict_perturbation(adata, predict=cell_type, method=method, condition_key=condition_key,
                                             control=control, perturbed=perturbed, cell_type_key=labels_key,
                                             layer=None, max_epochs=max_epochs, random_state=random_state,
                                             verbose=verbose, **kwargs)
            seconds = time.perf_counter() - started
            scores = perturbation_scores(adata, predicted, condition_key=condition_key, control=control,
                                         perturbed=perturbed, cell_type_key=labels_key, layer=None,
                                         random_state=random_state)
            rows += [{"method": method, "category": f"Perturbation ({cell_type})", "metric": r.metric,
                      "value": r.value} for r in scores.itertuples()]
            rows.append({"method": method, "category": "Time", "metric": "seconds", "value": seconds})
    return pd.DataFrame(rows)


def _compare_bulk(adata, methods, labels_key, batch_key, query_batches, *, random_state, verbose, n_bulks: int = 100,
                  min_cells_per_type: int = 10, **kwargs) -> pd.DataFrame:
    if batch_key is None:
        raise ValueError("isthmus: bulk_deconvolution needs batch_key: pseudo-bulks are made from batches the "
                         "reference does not hold.")
    batches = adata.obs[batch_key].astype(str).to_numpy()
    held_out = [str(b) for b in query_batches] if query_batches else sorted(set(batches))
    if len(set(batches)) < 2:
        raise ValueError("isthmus: bulk_deconvolution needs at least two batches.")
    rows = []
    for batch in held_out:
        reference = adata[batches != batch].copy()
        sizes = reference.obs[labels_key].astype(str).value_counts()
        kept = sizes.index[sizes >= min_cells_per_type]
        cells = adata[(batches == batch) & adata.obs[labels_key].astype(str).isin(kept).to_numpy()].copy()
        bulk, truth = pseudo_bulks(cells, labels_key=labels_key, n_samples=n_bulks, layer=None,
                                   random_state=random_state)
        for method in methods:
            started = time.perf_counter()
            estimate = deconvolve_bulk(bulk.copy(), reference, labels_key=labels_key, method=method,
                                       batch_key=batch_key, layer=None, min_cells_per_type=min_cells_per_type,
                                       random_state=random_state, verbose=verbose, **kwargs)
            seconds = time.perf_counter() - started
            scores = bulk_scores(truth, estimate)
            scores = scores[scores["cell_type"] == "all"]
            rows += [{"method": method, "category": f"Bulk deconvolution ({batch})", "metric": r.metric,
                      "value": r.value} for r in scores.itertuples()]
            rows.append({"method": method, "category": "Time", "metric": "seconds", "value": seconds})
    return pd.DataFrame(rows)


def plot_comparison(table: pd.DataFrame, path: str, title: str | None = None) -> str:
    """A methods x metrics heat map of the comparison table, values printed in the cells; PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    wide = table.pivot_table(index="method", columns="metric", values="value", sort=False)
    scores = wide.drop(columns=[c for c in ("seconds",) if c in wide.columns])
    fig, ax = plt.subplots(figsize=(1.1 * scores.shape[1] + 2.5, 0.55 * scores.shape[0] + 1.8))
    ax.imshow(scores.to_numpy(dtype=float), cmap="viridis", aspect="auto", vmin=0, vmax=1)
    ax.set_xticks(range(scores.shape[1]), scores.columns, rotation=45, ha="right")
    labels = [f"{m} ({wide.loc[m, 'seconds']:.0f} s)" if "seconds" in wide.columns else m for m in scores.index]
    ax.set_yticks(range(scores.shape[0]), labels)
    for i in range(scores.shape[0]):
        for j in range(scores.shape[1]):
            value = scores.iat[i, j]
            ax.text(j, i, "" if np.isnan(value) else f"{value:.2f}", ha="center", va="center",
                    color="white" if value < 0.6 else "black", fontsize=8)
    ax.set_title(title or "isthmus: methods compared on your data")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def neighbours_of_graph(distances, n_neighbors: int):
    """scib-metrics' NeighborsResults from a sparse kNN distance graph (WNN's, which is not an
    embedding): each cell's ``n_neighbors`` nearest stored neighbours, itself first."""
    from scib_metrics.nearest_neighbors import NeighborsResults
    from scipy import sparse

    graph = sparse.csr_matrix(distances)
    n = graph.shape[0]
    indices = np.tile(np.arange(n)[:, None], (1, n_neighbors))
    dists = np.zeros((n, n_neighbors), dtype=np.float32)
    for cell in range(n):
        start, stop = graph.indptr[cell], graph.indptr[cell + 1]
        cols, vals = graph.indices[start:stop], graph.data[start:stop]
        keep = cols != cell
        order = np.argsort(vals[keep])[: n_neighbors - 1]
        indices[cell, 1:1 + len(order)] = cols[keep][order]
        dists[cell, 1:1 + len(order)] = vals[keep][order]
    return NeighborsResults(indices=indices, distances=dists)


def bio_scores(labels, representations: dict, *, n_neighbors: int = 15, seed: int = 0) -> pd.DataFrame:
    """Bio-conservation of joint representations against cell-type ``labels``: Leiden NMI / ARI
    (resolution searched over 0.2..2 as scib does), cLISI on the kNN graph and, for embeddings,
    silhouette of the labels and isolated-label F1. ``representations``: name -> an embedding
    (cells x dims), ("graph", sparse kNN distances) or ("neighbors", indices, distances), each
    cells x k with the cell itself first (Seurat's Neighbor objects), for graph-only methods such
    as WNN, whose embedding metrics are NaN. Long format: method, metric, value."""
    from scib_metrics import clisi_knn, isolated_labels, nmi_ari_cluster_labels_leiden, silhouette_label
    from scib_metrics.nearest_neighbors import pynndescent

    labels = np.asarray(pd.Series(labels).astype(str))
    rows = []
    for name, rep in representations.items():
        is_graph = isinstance(rep, (tuple, list))  # R sends a list
        if is_graph and rep[0] == "graph":
            neighbours = neighbours_of_graph(rep[1], n_neighbors)
        elif is_graph:
            from scib_metrics.nearest_neighbors import NeighborsResults

            neighbours = NeighborsResults(
                indices=np.ascontiguousarray(np.asarray(rep[1])[:, :n_neighbors], dtype=np.int64),
                distances=np.ascontiguousarray(np.asarray(rep[2])[:, :n_neighbors], dtype=np.float32))
        else:
            # C order: matrices from R arrive column-major, which pynndescent's numba code cannot type
            embedding = np.ascontiguousarray(rep, dtype=np.float32)
            neighbours = pynndescent(embedding, n_neighbors=n_neighbors, random_state=seed)
        clusters = nmi_ari_cluster_labels_leiden(neighbours, labels, optimize_resolution=True, seed=seed)
        scores = {"leiden_nmi": clusters["nmi"], "leiden_ari": clusters["ari"],
                  "clisi": clisi_knn(neighbours, labels)}
        if is_graph:
            scores.update(silhouette_label=np.nan, isolated_labels=np.nan)
        else:
            one_batch = np.zeros(len(labels), dtype=int)
            scores.update(silhouette_label=silhouette_label(embedding, labels),
                          isolated_labels=isolated_labels(embedding, labels, one_batch))
        rows += [{"method": name, "metric": metric, "value": float(value)} for metric, value in scores.items()]
    return pd.DataFrame(rows)
