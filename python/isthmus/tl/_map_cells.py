"""Mapping single cells onto spatial data and imputing the genes the spatial assay did not measure:
a Tangram-style mapping (our own PyTorch model, ``isthmus.models._cell_mapping``) and gimVI (a joint
VAE from scvi-tools), against a kNN baseline on a shared PCA.

Every method returns the imputed genes on one scale, log1p of expression per 1e4 counts of the
reference's genes, so the methods can be compared gene by gene; ``holdout_gene_scores`` measures
how well each predicts measured genes it was not shown (Li et al., Nature Methods 2022).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy import sparse

from .. import _arguments
from . import _classical, _common, _runner, _spatial
from ._registry import Method, register
from ._runner import Fit, Task, register_task
DEFAULT_EPOCHS = {"tangram": 1000, "gimvi": 200}
DEFAULT_LEARNING_RATE = {"tangram": 0.1, "gimvi": 1e-3}
# below this many genes a mapping has too little to go on
MIN_TRAINING_GENES = 10
# the cells x spots mapping is returned dense up to this many entries (80 MB of float32)
DENSE_MAPPING_LIMIT = 20_000_000
# beyond that, each cell keeps its most likely spots, as a sparse matrix
SPARSE_MAPPING_TOP = 50
TARGET_SUM = 1e4


@dataclasses.dataclass
class CellMapping:
    """What ``map_cells`` returns.

    imputed: spots x genes frame, log1p of expression per 1e4 counts of the reference's genes.
    cell_types: spots x cell types frame, rows summing to 1 (None without ``labels_key``).
    mapping: reference cells x spots (rows in ``reference.obs_names`` order, columns in
        ``spatial.obs_names`` order), None for gimVI. "tangram": the probability that each cell lies
        in each spot (rows sum to 1); a dense float32 array up to 20 million entries, beyond that a
        CSR matrix keeping each cell's 50 most likely spots. "knn": CSR weights of the reference
        cells averaged into each spot (columns sum to 1).
    training_genes: the genes the mapping was fitted on.
    record: the record also written to ``spatial.uns[key_added]``.
    """

    method: str
    imputed: pd.DataFrame
    cell_types: pd.DataFrame | None
    mapping: Any
    training_genes: list
    record: dict


# ---- inputs ---------------------------------------------------------------------------------


def _genes_in(genes: Sequence[str] | None, allowed: pd.Index, what: str, where: str) -> list[str] | None:
    if genes is None:
        return None
    if isinstance(genes, str):
        genes = [genes]
    genes = list(dict.fromkeys(map(str, genes)))
    missing = [g for g in genes if g not in allowed]
    if missing:
        raise ValueError(f"isthmus: {len(missing)} of the {what} are not in {where}, e.g. "
                         f"{', '.join(missing[:5])}; pick genes from {where}.")
    return genes


def _dense(matrix) -> np.ndarray:
    return np.asarray(matrix.todense() if sparse.issparse(matrix) else matrix, dtype=np.float32)


def _type_shares(weights, types: pd.Series) -> pd.DataFrame:
    """Per-spot type shares from cells x spots weights; cells whose type is NaN (left out) are ignored."""
    kept = types.notna().to_numpy()
    categories = sorted(types[kept].unique())
    codes = pd.Categorical(types[kept], categories=categories).codes
    indicator = sparse.csr_matrix((np.ones(kept.sum(), dtype=np.float32), (codes, np.arange(kept.sum()))),
                                  shape=(len(categories), kept.sum()))
    sums = _dense(indicator @ weights[kept]).T  # spots x types
    total = sums.sum(axis=1, keepdims=True)
    shares = np.divide(sums, total, out=np.full_like(sums, 1.0 / len(categories)), where=total > 0)
    return pd.DataFrame(shares, columns=categories)


def _neighbour_weights(reference_space: np.ndarray, spot_space: np.ndarray, k: int) -> sparse.csr_matrix:
    """Cells x spots CSR: 1/k for each of a spot's k nearest reference cells (columns sum to 1)."""
    from sklearn.neighbors import NearestNeighbors

    k = int(min(k, reference_space.shape[0]))
    neighbours = NearestNeighbors(n_neighbors=k).fit(reference_space).kneighbors(spot_space, return_distance=False)
    n_spots = spot_space.shape[0]
    return sparse.csr_matrix((np.full(neighbours.size, 1.0 / k, dtype=np.float32),
                              (neighbours.ravel(), np.repeat(np.arange(n_spots), k))),
                             shape=(reference_space.shape[0], n_spots))


def _compact_mapping(mapping: np.ndarray):
    if mapping.size <= DENSE_MAPPING_LIMIT:
        return mapping.astype(np.float32)
    top = min(SPARSE_MAPPING_TOP, mapping.shape[1])
    columns = np.argpartition(-mapping, top - 1, axis=1)[:, :top]
    rows = np.repeat(np.arange(mapping.shape[0]), top)
    values = np.take_along_axis(mapping, columns, axis=1).ravel()
    return sparse.csr_matrix((values.astype(np.float32), (rows, columns.ravel())), shape=mapping.shape)


# ---- methods --------------------------------------------------------------------------------


def _tangram(ref_counts, sp_counts, train_idx, impute_idx, *, max_epochs, learning_rate, random_state, verbose):
    from ..models._cell_mapping import fit_cell_mapping

    ref_norm = _classical.normalise_total(ref_counts, TARGET_SUM)
    sp_norm = _classical.normalise_total(sp_counts[:, train_idx["spatial"]], TARGET_SUM)
    # counts per 1e4 on both sides, linear as in Tangram: predicted spots are sums of cells only on the
    # linear scale (log1p scaling did worse on held-out genes of both bundled pairs)
    cells = _dense(ref_norm[:, train_idx["reference"]])
    spots = _dense(sp_norm)
    module, history = fit_cell_mapping(cells, spots, max_epochs=max_epochs, learning_rate=learning_rate,
                                       random_state=random_state, verbose=verbose,
                                       device=_common.current_device().torch)
    module.eval()
    import torch

    with torch.no_grad():
        mapping = module.mapping().numpy()
    # each spot's imputed profile: the mapping-weighted mean of its cells' normalised expression
    mass = mapping.sum(axis=0)
    predicted = (mapping.T @ _dense(ref_norm[:, impute_idx])) / np.maximum(mass, 1e-12)[:, None]
    return np.log1p(predicted), mapping, {"training_cosine": float(history[-1])}, module


def _knn(ref_counts, sp_counts, train_idx, impute_idx, *, n_neighbors, n_comps, random_state):
    ref_log = _classical.log_normalise(ref_counts[:, train_idx["reference"]])
    sp_log = _classical.log_normalise(sp_counts[:, train_idx["spatial"]])
    # fitted on the reference alone: its axes are cell-type differences; a joint PCA would spend
    # its first axes on the platform difference between cells and spots
    pca = _classical.ScaledPCA(n_comps, random_state)
    ref_pcs = pca.fit_transform(ref_log)
    sp_pcs = pca.transform(sp_log)
    weights = _neighbour_weights(ref_pcs, sp_pcs, n_neighbors)
    lognorm = _classical.log_normalise(ref_counts)[:, impute_idx]
    imputed = _dense(weights.T @ lognorm)
    return imputed, weights, {"n_comps": int(pca.pca.n_components_)}


def _gimvi(reference, ref_counts, sp_counts, spatial_names, train_genes, train_idx, impute_idx, *, max_epochs,
           learning_rate, n_neighbors, model_dir, random_state, verbose):
    import anndata as ad
    import scvi

    # fresh AnnData objects: setup_anndata and GIMVI write into the ones they are given
    seq = ad.AnnData(X=sparse.csr_matrix(ref_counts, dtype=np.float32),
                     obs=pd.DataFrame(index=reference.obs_names.astype(str)),
                     var=pd.DataFrame(index=reference.var_names.astype(str)))
    spatial_in = ad.AnnData(X=sparse.csr_matrix(sp_counts[:, train_idx["spatial"]], dtype=np.float32),
                            obs=pd.DataFrame(index=pd.Index(spatial_names).astype(str)),
                            var=pd.DataFrame(index=pd.Index(train_genes)))
    _common.seed_everything(random_state)
    scvi.external.GIMVI.setup_anndata(seq)
    scvi.external.GIMVI.setup_anndata(spatial_in)
    model = scvi.external.GIMVI(seq, spatial_in)
    _common.train(model, label="gimVI", max_epochs=max_epochs, verbose=verbose,
                  plan_kwargs={"lr": float(learning_rate)})
    scale = model.get_imputed_values(normalized=True)[1]  # spots x reference genes, rows sum to 1
    imputed = np.log1p(TARGET_SUM * np.asarray(scale, dtype=np.float32)[:, impute_idx])
    seq_latent, spatial_latent = model.get_latent_representation()
    weights = _neighbour_weights(np.asarray(seq_latent), np.asarray(spatial_latent), n_neighbors)
    directory = _common.save_model(model, _common.model_directory(model_dir, "gimvi"))
    return imputed, weights, directory


# ---- the task -------------------------------------------------------------------------------


def _prepare(call, entry) -> None:
    """Checks and gene sets every method shares: training genes (in both, with counts in both),
    genes to impute, the reference's types; refused before any training."""
    spatial, reference, layer = call.spatial, call.reference, call.layer
    if not call.key_added:
        raise ValueError(f"isthmus: {_arguments.name('key_added')} must be a non-empty name.")
    call.max_epochs = DEFAULT_EPOCHS.get(entry.name) if call.max_epochs is None else int(call.max_epochs)
    call.learning_rate = (DEFAULT_LEARNING_RATE.get(entry.name) if call.learning_rate is None
                          else float(call.learning_rate))
    for adata in (spatial, reference):  # gimVI models counts; the others need non-negative expression
        _common.check_counts(adata, layer, allow_non_integer=entry.name != "gimvi")
    _spatial.check_spots_have_counts(spatial, layer)
    shared = _spatial.shared_genes(reference, spatial, min_overlap=call.min_gene_overlap, verbose=call.verbose)
    ref_counts = sparse.csr_matrix(_common.matrix_of(reference, layer))
    sp_counts = sparse.csr_matrix(_common.matrix_of(spatial, layer))

    requested = _genes_in(call.training_genes, shared, "training genes", "both the reference and the spatial data")
    candidates = pd.Index(requested if requested is not None else shared)
    ref_detected = np.asarray((ref_counts[:, reference.var_names.get_indexer(candidates)] > 0).sum(axis=0)).ravel()
    sp_detected = np.asarray((sp_counts[:, spatial.var_names.get_indexer(candidates)] > 0).sum(axis=0)).ravel()
    train_genes = list(candidates[(ref_detected > 0) & (sp_detected > 0)])  # a gene with no counts says nothing
    if len(train_genes) < MIN_TRAINING_GENES:
        raise ValueError(f"isthmus: only {len(train_genes)} genes with counts in both datasets to train on; at "
                         f"least {MIN_TRAINING_GENES} are needed. Check the gene identifiers and "
                         f"{_arguments.name('training_genes')}.")
    train_idx = {"reference": reference.var_names.get_indexer(train_genes),
                 "spatial": spatial.var_names.get_indexer(train_genes)}
    for what, counts, names, idx in (("spatial data", sp_counts, spatial.obs_names, train_idx["spatial"]),
                                     ("reference", ref_counts, reference.obs_names, train_idx["reference"])):
        _spatial.check_rows_have_counts(counts[:, idx], names, f"cells/spots of the {what}",
                                        "subset them away or train on more genes.", on=" on the training genes")

    impute = _genes_in(call.impute_genes, reference.var_names, "genes to impute", "the reference")
    if impute is None:
        impute = [g for g in reference.var_names.astype(str) if g not in spatial.var_names]
    types = None
    if call.labels_key is not None:
        types = _spatial.reference_labels(reference, call.labels_key, min_cells=int(call.min_cells_per_type))
    if call.verbose:
        print(f"isthmus: mapping {reference.n_obs} cells onto {spatial.n_obs} spots ({entry.name}) on "
              f"{len(train_genes)} genes; imputing {len(impute)}.", flush=True)
    call.prepared = dict(ref_counts=ref_counts, sp_counts=sp_counts, train_genes=train_genes, train_idx=train_idx,
                         impute=impute, impute_idx=reference.var_names.get_indexer(impute), types=types,
                         facts={"spatial_genes": int(spatial.n_vars), "reference_genes": int(reference.n_vars),
                                "shared_genes": int(len(shared)),
                                "share_of_spatial": float(len(shared) / max(spatial.n_vars, 1)),
                                "training_genes": len(train_genes), "imputed_genes": len(impute),
                                "max_epochs": call.max_epochs if entry.name != "knn" else None,
                                "learning_rate": call.learning_rate if entry.name != "knn" else None,
                                "scale": "log1p(expression per 1e4 counts of the reference's genes)"})


def _mapping(call, imputed, weights, mapping_out, extra, *, model=None, directory="") -> Fit:
    """The result every method returns: imputed genes, cell types (when labels are given), the mapping."""
    prepared = call.prepared
    imputed = pd.DataFrame(np.asarray(imputed, dtype=np.float32), index=call.spatial.obs_names.copy(),
                           columns=pd.Index(prepared["impute"], dtype=object))
    cell_types = None
    if prepared["types"] is not None:
        cell_types = _type_shares(weights, prepared["types"])
        cell_types.index = call.spatial.obs_names.copy()
    result = CellMapping(method=call.method, imputed=imputed, cell_types=cell_types, mapping=mapping_out,
                         training_genes=prepared["train_genes"], record={})
    fit = Fit(value=result, model=model, model_dir=directory or None, record={**prepared["facts"], **extra})
    fit.with_record = lambda record: setattr(result, "record", record)
    if cell_types is not None:
        fit.put(call.spatial, "obsm", f"{call.key_added}_cell_types", cell_types)
    return fit


def _fit_tangram(call) -> Fit:
    p = call.prepared
    imputed, mapping, extra, module = _tangram(p["ref_counts"], p["sp_counts"], p["train_idx"], p["impute_idx"],
                                               max_epochs=call.max_epochs, learning_rate=call.learning_rate,
                                               random_state=call.random_state, verbose=call.verbose)
    return _mapping(call, imputed, mapping, _compact_mapping(mapping), extra, model=module)


def _fit_knn(call) -> Fit:
    p = call.prepared
    imputed, weights, extra = _knn(p["ref_counts"], p["sp_counts"], p["train_idx"], p["impute_idx"],
                                   n_neighbors=call.n_neighbors, n_comps=call.n_comps, random_state=call.random_state)
    return _mapping(call, imputed, weights, weights, extra)


def _fit_gimvi(call) -> Fit:
    p = call.prepared
    imputed, weights, directory = _gimvi(
        call.reference, p["ref_counts"], p["sp_counts"], call.spatial.obs_names, p["train_genes"], p["train_idx"],
        p["impute_idx"], max_epochs=call.max_epochs, learning_rate=call.learning_rate, n_neighbors=call.n_neighbors,
        model_dir=call.model_dir, random_state=call.random_state, verbose=call.verbose)
    return _mapping(call, imputed, weights, None, {}, directory=directory)


_WRITES = ("obsm/{key}_cell_types?",)
register(Method("map_cells", "tangram", _fit_tangram, "dl",
                "Tangram-style mapping of cells onto spots (isthmus's PyTorch model)",
                needs=("reference",), writes=_WRITES, saves_model=True, r_verb="MapCells"))
register(Method("map_cells", "gimvi", _fit_gimvi, "dl", "gimVI, one VAE per dataset with a shared latent space",
                needs=("counts", "reference"), writes=_WRITES, saves_model=True, r_verb="MapCells"))
register(Method("map_cells", "knn", _fit_knn, "baseline",
                "the nearest reference cells of each spot in a PCA fitted on the reference",
                needs=("reference",), writes=_WRITES, r_verb="MapCells"))


def map_cells(
    spatial,
    reference,
    *,
    method: str = "tangram",
    labels_key: str | None = None,
    training_genes: Sequence[str] | None = None,
    impute_genes: Sequence[str] | None = None,
    layer: str | None = "counts",
    min_gene_overlap: float = 0.3,
    min_cells_per_type: int = 3,
    max_epochs: int | None = None,
    learning_rate: float | None = None,
    n_neighbors: int = 15,
    n_comps: int = 30,
    model_dir: str | None = None,
    key_added: str = "mapping",
    accelerator: str = "auto",
    devices: int | str | Sequence[int] = "auto",
    batch_size: int | None = None,
    random_state: int = 0,
    verbose: bool = True,
) -> CellMapping:
    """Map the ``reference`` cells onto the ``spatial`` spots and impute reference genes in the spots.

    Both hold counts in ``layers[layer]`` (``X`` when ``layer`` is None); gimVI needs integer counts.
    The mapping is fitted on ``training_genes`` (default: every gene in both with counts in both);
    ``impute_genes`` (default: the reference's genes the spatial data does not measure) are predicted.
    Refused: spots or cells without counts on the training genes, fewer than ``min_gene_overlap`` of
    the spatial data's genes in the reference (0.3, as in deconvolve: spatial panels and references
    chosen apart often share less than half; the bundled hippocampus pair shares 45%),
    fewer than 10 training genes, genes to impute that the reference lacks, NA cell types.

    Returns a :class:`CellMapping`: ``imputed`` (spots x genes, log1p of expression per 1e4 counts
    of the reference's genes, the scale of every method), ``cell_types``, ``mapping`` and the training
    genes. Writes into ``spatial``, and nowhere else, and only when the call succeeds:

    - ``obsm[f"{key_added}_cell_types"]``: spots x cell types frame of ``labels_key``'s types (rows sum
      to 1), when ``labels_key`` is given; types with fewer than ``min_cells_per_type`` cells are left
      out, with a warning;
    - ``uns[key_added]``: the record (method, parameters, gene counts, seconds; gimVI's model directory).

    method "tangram" (our PyTorch model after Tangram's "cells" mode): a softmax over spots per cell,
    fitted for ``max_epochs`` (1000) full-batch Adam steps at ``learning_rate`` (0.1) so that each
    training gene's predicted pattern (log1p of per-1e4 expression) matches the measured one by cosine
    similarity across spots; the spot-wise term and density prior of
    ``isthmus.models._cell_mapping`` are left off (Tangram's defaults in cells mode: with a cell
    count per spot rarely known, a density prior mostly adds an assumption). Imputed: each spot's
    mapping-weighted mean of its cells' expression; types: mapping-weighted type sums per spot.
    Memory grows as cells x spots.
    "gimvi" (``scvi.external.GIMVI``): one VAE per dataset with a shared latent space (reference: all
    its genes; spatial: the training genes), ``max_epochs`` (200) at ``learning_rate`` (1e-3);
    imputed: the spatial decoder's normalised expression; types: a vote of each spot's
    ``n_neighbors`` nearest reference cells in the shared latent space; the model is saved in
    ``model_dir`` (default: a new directory under the session's temporary directory; the other
    methods save nothing and ignore ``model_dir``).
    "knn" (baseline): a PCA (``n_comps``) of log-normalised, scaled training genes fitted on the
    reference and applied to the spots; each spot's imputed expression is the mean log-normalised
    expression of its ``n_neighbors`` nearest reference cells, its types their vote.
    """
    return _runner.run("map_cells", locals())


register_task(Task("map_cells", map_cells, key=lambda call, entry: call.key_added,
                   record_at=lambda call, entry, fit: (call.spatial, call.key_added), prepare=_prepare,
                   not_recorded=("spatial", "reference")))


# ---- held-out genes: the benchmark metric -----------------------------------------------------


def _spearman_columns(predicted: np.ndarray, measured: np.ndarray) -> np.ndarray:
    """Spearman correlation column by column (average ranks for ties); NaN where a column is constant."""
    from scipy.stats import rankdata

    a = rankdata(predicted, axis=0)
    b = rankdata(measured, axis=0)
    a, b = a - a.mean(axis=0), b - b.mean(axis=0)
    denominator = np.sqrt((a * a).sum(axis=0) * (b * b).sum(axis=0))
    return np.divide((a * b).sum(axis=0), denominator, out=np.full(a.shape[1], np.nan), where=denominator > 0)


def holdout_genes(spatial, reference, *, fraction: float = 0.1, layer: str | None = "counts",
                  random_state: int = 0) -> list[str]:
    """The genes ``holdout_gene_scores`` holds out: ``fraction`` of the shared genes detected in at
    least one spot and one cell, drawn with ``random_state`` (the same split for every method)."""
    if not 0 < fraction < 1:
        raise ValueError("isthmus: fraction is the share of shared genes held out, between 0 and 1.")
    shared = spatial.var_names[spatial.var_names.isin(reference.var_names)]
    sp_counts = sparse.csr_matrix(_common.matrix_of(spatial, layer))
    ref_counts = sparse.csr_matrix(_common.matrix_of(reference, layer))
    detected = ((np.asarray((sp_counts[:, spatial.var_names.get_indexer(shared)] > 0).sum(axis=0)).ravel() > 0)
                & (np.asarray((ref_counts[:, reference.var_names.get_indexer(shared)] > 0).sum(axis=0)).ravel() > 0))
    pool = np.asarray(shared[detected], dtype=object)
    n = max(1, int(round(fraction * len(pool))))
    if len(pool) - n < MIN_TRAINING_GENES:
        raise ValueError(f"isthmus: {len(pool)} shared genes leave too few to train on after holding out {n}.")
    chosen = np.random.default_rng(int(random_state)).choice(len(pool), size=n, replace=False)
    return [str(g) for g in pool[np.sort(chosen)]]


def holdout_gene_scores(spatial, reference, *, method: str = "tangram", fraction: float = 0.1,
                        layer: str | None = "counts", random_state: int = 0, **kwargs) -> pd.DataFrame:
    """Hold out ``fraction`` of the shared genes (see ``holdout_genes``), remove them from a copy of the
    spatial data, map with ``method`` and score each held-out gene: Spearman correlation across spots
    between its imputed and its measured (log-normalised) expression, as in Li et al.'s imputation
    benchmark. ``kwargs`` go to ``map_cells`` (``labels_key`` is ignored). Neither input is changed.

    Returns one row per held-out gene: ``gene``, ``method``, ``spearman``, ``spearman_shuffled`` (the
    same with the spots of the prediction permuted: the chance level), ``detected_share`` (share of
    spots where the gene was measured at all) and ``random_state``. Spearman is NaN where the
    prediction or the measurement is constant across spots.
    """
    import anndata as ad

    held = holdout_genes(spatial, reference, fraction=fraction, layer=layer, random_state=random_state)
    kwargs.pop("labels_key", None)
    kwargs.setdefault("min_gene_overlap", 0.0)  # the overlap is that of the data minus the held-out genes
    keep = ~spatial.var_names.isin(held)
    counts = sparse.csr_matrix(_common.matrix_of(spatial, layer))
    spatial_in = ad.AnnData(X=counts[:, keep], obs=pd.DataFrame(index=spatial.obs_names.copy()),
                            var=pd.DataFrame(index=spatial.var_names[keep].copy()))
    if layer is not None:
        spatial_in.layers[layer] = spatial_in.X
    result = map_cells(spatial_in, reference, method=method, impute_genes=held, layer=layer,
                       random_state=random_state, **kwargs)
    measured = _dense(_classical.log_normalise(counts)[:, spatial.var_names.get_indexer(held)])
    predicted = result.imputed[held].to_numpy()
    permutation = np.random.default_rng(int(random_state) + 1).permutation(predicted.shape[0])
    return pd.DataFrame({
        "gene": held,
        "method": method,
        "spearman": _spearman_columns(predicted, measured),
        "spearman_shuffled": _spearman_columns(predicted[permutation], measured),
        "detected_share": (measured > 0).mean(axis=0),
        "random_state": int(random_state),
    })
