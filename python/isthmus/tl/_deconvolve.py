"""Spot deconvolution: the share of each reference cell type in every spot of a spatial dataset.

DestVI (a conditional scVI learnt on the reference, then a spot model built from its decoder) and
Stereoscope (per-type negative binomial rates learnt on the reference, spots as their non-negative
mixture), both from scvi-tools, against non-negative least squares on per-type mean profiles.

Pseudo-spots (sums of labelled single cells, so their composition is known) and the scores the
deconvolution benchmarks use (RMSE, Jensen-Shannon divergence, Pearson; Li et al. 2022, Nat Methods)
measure how well each method recovers a known truth.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import sparse

from . import _classical, _common, _runner, _spatial
from ._registry import Method, register
from ._runner import Fit, Task, register_task

# The reference's cell types as the scvi-tools models see them (a column of the lean copy only).
_TYPES_COLUMN = "_isthmus_cell_type"
# Model names in the progress lines.
_LABELS = {"destvi": ("CondSCVI", "DestVI"), "stereoscope": ("RNAStereoscope", "SpatialStereoscope")}
# (reference, spatial) epochs when reference_epochs / max_epochs are None; see deconvolve()
DEFAULT_EPOCHS = {"destvi": (300, 300), "stereoscope": (400, 2000)}


# ---- inputs -----------------------------------------------------------------------------------


def _lean(counts, obs_names, var_names, obs: dict | None = None):
    """A bare AnnData of counts: the models register and write their own columns into it, never into
    the user's objects."""
    import anndata as ad

    return ad.AnnData(X=counts, obs=pd.DataFrame(obs or {}, index=pd.Index(obs_names).astype(str)),
                      var=pd.DataFrame(index=pd.Index(var_names).astype(str)))


def _columns(adata, layer, genes: pd.Index):
    """The counts of ``genes`` (CSR float32 for the models; sparse rows stay sparse)."""
    matrix = _common.matrix_of(adata, layer)[:, adata.var_names.get_indexer(genes)]
    return sparse.csr_matrix(matrix, dtype=np.float32)


def _nnls(reference_counts, types: pd.Series, spot_counts, order: list[str]) -> np.ndarray:
    """Each type's share of every spot's counts by non-negative least squares.

    Signatures: the mean over a type's cells of library-size-normalised counts (each cell sums to
    one), so every signature is a distribution over genes and each type weighs the same however many
    cells it has. A spot normalised the same way is fitted as a non-negative mix of them
    (scipy.optimize.nnls); the weights, normalised to one, are shares of the spot's counts.
    """
    from scipy.optimize import nnls

    normalised = _classical.normalise_total(reference_counts, 1.0, np.float64)
    signatures = np.vstack([np.asarray(normalised[np.flatnonzero(types.to_numpy() == name)].mean(axis=0)).ravel()
                            for name in order])
    design = signatures.T  # genes x types
    spots = _classical.normalise_total(spot_counts, 1.0, np.float64).toarray()
    weights = np.vstack([nnls(design, spot)[0] for spot in spots])
    totals = weights.sum(axis=1, keepdims=True)
    # a spot no signature explains at all (all weights 0) gets no preference: even shares
    return np.divide(weights, totals, out=np.full_like(weights, 1.0 / len(order)), where=totals > 0)


def _counts_per_cell(reference_counts, types: pd.Series, order: list[str]) -> np.ndarray:
    """Each type's mean counts per cell in the reference, on the genes used."""
    library = np.asarray(reference_counts.sum(axis=1)).ravel()
    return np.array([library[types.to_numpy() == name].mean() for name in order])


def _destvi_models(reference_lean, spatial_lean):
    """CondSCVI on the cells, and DestVI built from it on the spots (untrained)."""
    import scvi

    scvi.model.CondSCVI.setup_anndata(reference_lean, labels_key=_TYPES_COLUMN)
    # a learnt mixture-of-Gaussians prior per cell type, which DestVI's spot model (prior_mode
    # "mog", its default) takes over as is; scvi-tools 1.4's from_rna_model also fails with a
    # KeyError unless the prior is named here
    reference_model = scvi.model.CondSCVI(reference_lean, prior="mog")
    # from_rna_model registers the spots itself
    return reference_model, lambda trained: scvi.model.DestVI.from_rna_model(spatial_lean, trained)


def _stereoscope_models(reference_lean, spatial_lean):
    """RNAStereoscope on the cells, and SpatialStereoscope built from it on the spots (untrained)."""
    import scvi

    scvi.external.RNAStereoscope.setup_anndata(reference_lean, labels_key=_TYPES_COLUMN)
    reference_model = scvi.external.RNAStereoscope(reference_lean)

    def spatial_model(trained):
        scvi.external.SpatialStereoscope.setup_anndata(spatial_lean)
        return scvi.external.SpatialStereoscope.from_rna_model(spatial_lean, trained)

    return reference_model, spatial_model


# how each DL method builds its pair of models (reference first, then the spot model from it)
_MODEL_PAIRS = {"destvi": _destvi_models, "stereoscope": _stereoscope_models}


def _scvi_deconvolution(method, reference_lean, spatial_lean, *, max_epochs, reference_epochs, model_dir,
                        random_state, verbose):
    """Reference model on the cells, spatial model built from it on the spots; the spatial model is
    saved in ``model_dir``, the reference model beside it in ``model_dir/reference``."""
    reference_label, spatial_label = _LABELS[method]
    _common.seed_everything(random_state)
    reference_model, spatial_from = _MODEL_PAIRS[method](reference_lean, spatial_lean)
    _common.train(reference_model, label=reference_label, max_epochs=reference_epochs, verbose=verbose)
    _common.seed_everything(random_state)
    spatial_model = spatial_from(reference_model)
    _common.train(spatial_model, label=spatial_label, max_epochs=max_epochs, verbose=verbose)
    proportions = spatial_model.get_proportions()
    directory = _common.model_directory(model_dir, method)
    _common.save_model(spatial_model, directory)
    _common.save_model(reference_model, os.path.join(directory, "reference"))
    return np.asarray(proportions.to_numpy(), dtype=np.float64), [str(c) for c in proportions.columns], directory


# ---- the task ---------------------------------------------------------------------------------


def _prepare(call, entry) -> None:
    """What every method shares, before any training: the checks, the genes (shared, then the most
    variable in the reference), the kept cell types and lean copies of both datasets."""
    spatial, reference, layer = call.spatial, call.reference, call.layer
    _common.check_column(reference, call.labels_key, "cell type")
    _common.matrix_of(spatial, layer), _common.matrix_of(reference, layer)  # both hold the layer
    _spatial.check_spots_have_counts(spatial, layer)
    _common.check_counts(spatial, layer, allow_non_integer=entry.kind == "baseline")
    _common.check_counts(reference, layer, allow_non_integer=entry.kind == "baseline")
    shared = _spatial.shared_genes(reference, spatial, min_overlap=call.min_gene_overlap, verbose=call.verbose)
    labels = _spatial.reference_labels(reference, call.labels_key, min_cells=int(call.min_cells_per_type))
    cells = labels.notna().to_numpy()
    kept_types = sorted(labels[cells].unique())
    left_out = sorted(set(reference.obs[call.labels_key].astype(str)) - set(kept_types))

    reference_counts = _columns(reference, layer, shared)[cells]
    types = labels[cells]
    genes = shared
    if call.n_top_genes is not None and int(call.n_top_genes) < len(shared):
        if entry.kind == "dl":
            import torch  # noqa: F401  (loaded first, so that variable_genes keeps its thread count)
        variable = _classical.variable_genes(_classical.log_normalise(reference_counts), int(call.n_top_genes))
        genes = shared[variable]
        reference_counts = reference_counts[:, variable]
    spatial_counts = _columns(spatial, layer, genes)
    spatial_lean = _lean(spatial_counts, spatial.obs_names, genes)
    _spatial.check_spots_have_counts(spatial_lean, None,
                                     what=f"spatial data (counting only the {len(genes)} genes used: those shared "
                                          "with the reference, most variable there)")
    # reference cells with no counts on these genes carry nothing to learn from
    has_counts = np.asarray(reference_counts.sum(axis=1)).ravel() > 0
    reference_counts, types = reference_counts[has_counts], types[has_counts]
    if call.verbose:
        print(f"isthmus: deconvolving {spatial.n_obs} spots into {len(kept_types)} cell types with {entry.name} on "
              f"{len(genes)} genes ({int(has_counts.sum())} reference cells).", flush=True)
    call.prepared = dict(
        genes=genes, kept_types=kept_types, reference_counts=reference_counts, types=types,
        spatial_counts=spatial_counts, spatial_lean=spatial_lean,
        reference_names=reference.obs_names[cells][has_counts],
        facts={"spatial_genes": int(spatial.n_vars), "reference_genes": int(reference.n_vars),
               "shared_genes": int(len(shared)), "share_of_spatial": float(len(shared) / max(spatial.n_vars, 1)),
               "genes_used": int(len(genes)), "reference_cells_used": int(has_counts.sum()),
               "cell_types": list(kept_types), "cell_types_left_out": list(left_out)})


def _proportions(call, values, columns, directory="") -> Fit:
    """The methods' shares as a spots x types frame: shares of cells (``cell_fractions``) or of counts."""
    prepared = call.prepared
    kept_types = prepared["kept_types"]
    proportions = pd.DataFrame(values, index=call.spatial.obs_names.copy(), columns=columns).loc[:, kept_types]
    counts_per_cell = _counts_per_cell(prepared["reference_counts"], prepared["types"], kept_types)
    if call.cell_fractions:  # shares of counts -> shares of cells
        proportions = proportions / counts_per_cell
    proportions = proportions.div(proportions.sum(axis=1), axis=0)
    proportions.columns.name = None
    # a list beside cell_types, not a dict: type names such as "L2/3" cannot be .h5ad keys
    fit = Fit(value=proportions, model_dir=directory,
              record={**prepared["facts"], "counts_per_cell": [float(v) for v in counts_per_cell]})
    fit.put(call.spatial, "obsm", call.key_added, proportions)
    return fit


def _fit_nnls(call) -> Fit:
    prepared = call.prepared
    values = _nnls(prepared["reference_counts"], prepared["types"], prepared["spatial_counts"], prepared["kept_types"])
    fit = _proportions(call, values, prepared["kept_types"])
    fit.record.update(max_epochs="", reference_epochs="")
    return fit


def _fit_scvi_models(call) -> Fit:
    prepared = call.prepared
    reference_epochs = int(DEFAULT_EPOCHS[call.method][0] if call.reference_epochs is None else call.reference_epochs)
    max_epochs = int(DEFAULT_EPOCHS[call.method][1] if call.max_epochs is None else call.max_epochs)
    reference_lean = _lean(prepared["reference_counts"], prepared["reference_names"], prepared["genes"],
                           {_TYPES_COLUMN: pd.Categorical(prepared["types"].to_numpy(),
                                                          categories=prepared["kept_types"])})
    values, columns, directory = _scvi_deconvolution(
        call.method, reference_lean, prepared["spatial_lean"], max_epochs=max_epochs,
        reference_epochs=reference_epochs, model_dir=call.model_dir, random_state=call.random_state,
        verbose=call.verbose)
    fit = _proportions(call, values, columns, directory)
    fit.record.update(max_epochs=max_epochs, reference_epochs=reference_epochs)
    return fit


register(Method("deconvolve", "destvi", _fit_scvi_models, "dl",
                "CondSCVI on the reference, then DestVI on the spots (scvi-tools)",
                needs=("counts", "reference", "labels"), saves_model=True, writes=("obsm/{key}",),
                r_verb="DeconvolveSpots"))
register(Method("deconvolve", "stereoscope", _fit_scvi_models, "dl",
                "RNAStereoscope on the reference, then SpatialStereoscope on the spots (scvi-tools)",
                needs=("counts", "reference", "labels"), saves_model=True, writes=("obsm/{key}",),
                r_verb="DeconvolveSpots"))
register(Method("deconvolve", "nnls", _fit_nnls, "baseline",
                "non-negative least squares on the reference's mean profiles per type",
                needs=("reference", "labels"), writes=("obsm/{key}",), r_verb="DeconvolveSpots"))


def deconvolve(
    spatial,
    reference,
    *,
    labels_key: str,
    method: str = "destvi",
    layer: str | None = "counts",
    min_gene_overlap: float = 0.3,
    min_cells_per_type: int = 10,
    n_top_genes: int | None = 2000,
    cell_fractions: bool = True,
    max_epochs: int | None = None,
    reference_epochs: int | None = None,
    model_dir: str | None = None,
    key_added: str = "deconvolution",
    accelerator: str = "auto",
    devices: int | str | Sequence[int] = "auto",
    batch_size: int | None = None,
    random_state: int = 0,
    verbose: bool = True,
) -> pd.DataFrame:
    """Estimate the proportion of each ``reference.obs[labels_key]`` cell type in every spot.

    Returns a spots x cell types frame of proportions (rows sum to 1; columns are the cell types,
    sorted) and writes:

    - ``spatial.obsm[key_added]``: that frame;
    - ``spatial.uns[key_added]``: the record: method, seconds, the saved model's directory (DL
      methods; "" for NNLS) and the parameters, with the gene overlap (``spatial_genes``,
      ``reference_genes``, ``shared_genes``, ``share_of_spatial``), ``genes_used``,
      ``reference_cells_used``, ``cell_types`` and ``cell_types_left_out``, ``counts_per_cell``
      (each kept type's mean counts per reference cell on the genes used, in ``cell_types`` order)
      and the epochs actually run.

    Nothing else in ``spatial`` or ``reference`` changes: the models run on lean copies holding only
    the genes used; a call that fails writes nothing.

    Methods (the DL ones train on the CPU):

    - "destvi": scvi-tools' CondSCVI on the reference, with its learnt mixture-of-Gaussians prior per
      type, then DestVI built from it on the spots; proportions from ``get_proportions()`` (DestVI's
      extra type, which absorbs what no reference type explains, left out). Epochs: CondSCVI
      ``reference_epochs`` (None: 300, scvi-tools' default), DestVI ``max_epochs`` (None: 300, not
      scvi-tools' 2000: one DestVI step decodes every type for every spot, about 0.2-0.4 s per
      128 spots on one CPU thread with a few hundred genes, so 2000 epochs of a 3,000-spot slide
      would take hours; on pseudo-spots of known composition 150-300 epochs already beat NNLS,
      see bench/bench_spatial_deconvolution.py).
    - "stereoscope": scvi-tools' RNAStereoscope on the reference (``reference_epochs``, None: 400,
      scvi-tools' default), then SpatialStereoscope from it (``max_epochs``, None: 2000, not
      scvi-tools' 400: each spot's loadings move once per epoch, and at 400 they are far from
      converged on small data (hippocampus pseudo-spots, shares of counts: Pearson 0.26 after
      400 + 400 epochs, 0.61 after 2000 + 2000); its steps are cheap). Its noise term is left
      out. Even so it converges slowly, and on the benchmark's small data it stays behind NNLS.
    - "nnls": the classical baseline, no training: per-type signatures (the mean of the type's
      cells' library-normalised counts), each spot normalised the same way and fitted as their
      non-negative mix (scipy.optimize.nnls).

    ``cell_fractions`` (default True): every method above estimates each type's share of the spot's
    *counts* (signatures / decoders are per-count profiles scaled by the spot's library), and a
    neuron brings several times the counts of a glial cell. Each share is divided by the type's
    mean counts per cell in the reference (``counts_per_cell``) and renormalised, giving shares of
    *cells*, what pseudo-spot truths and most users mean by proportions (RCTD and cell2location
    model per-type library size for the same reason). A platform-wide difference in depth
    cancels out. False returns the methods' own shares of counts.

    The DL models are saved: the spatial model in ``model_dir`` (a fresh temporary directory when
    None), the reference model in its "reference" sub-directory.

    Genes: those in both objects (the overlap is reported; refused when fewer than
    ``min_gene_overlap`` of the spatial data's genes are in the reference; 0.3, as in map_cells:
    spatial panels and HVG-subset files often share less than half their genes with a reference,
    while under a third usually means other gene identifiers or another species), then the
    ``n_top_genes`` most variable in the reference (scanpy's "seurat" flavour on log-normalised
    counts; None keeps every shared gene): the same genes for every method.

    ``layer`` names the raw counts in both objects (None: X). Bad input is refused before any
    work: NA labels, spots with no counts (in all genes, or in the genes used), non-integer counts
    for the DL methods (which model counts). ``min_cells_per_type`` (default 10): a type with fewer
    reference cells is left out, with a warning naming it. A signature is a mean over the type's
    cells and single-cell counts vary between cells about as much as their mean (coefficient of
    variation ~1), so ten cells leave a gene's mean about 30% uncertain, and fewer would make the
    signature one or two particular cells; CondSCVI also fits a ten-component mixture prior per
    type, which fewer cells than components cannot inform. RCTD asks 25 by default; ten keeps
    the rarer types of small references.
    """
    return _runner.run("deconvolve", locals())


register_task(Task("deconvolve", deconvolve, key=lambda call, entry: call.key_added,
                   record_at=lambda call, entry, fit: (call.spatial, call.key_added), prepare=_prepare,
                   not_recorded=("spatial", "reference")))


# ---- pseudo-spots and scores --------------------------------------------------------------------


def split_halves(adata, *, labels_key: str, min_cells: int = 10, random_state: int = 0):
    """Each cell type with at least ``2 * min_cells`` cells split at random into two halves: one a
    reference, the other the cells that make pseudo-spots, so that no cell is in both. Returns
    (reference, held out, the types dropped for having too few cells)."""
    labels = adata.obs[labels_key].astype(str)
    sizes = labels.value_counts()
    kept = sizes.index[sizes >= 2 * min_cells]
    if len(kept) < 2:
        raise ValueError(f"isthmus: fewer than two cell types have {2 * min_cells} cells or more; too few to split.")
    adata = adata[labels.isin(kept).to_numpy()].copy()
    adata.obs[labels_key] = adata.obs[labels_key].astype(str)
    rng = np.random.default_rng(random_state)
    first = np.zeros(adata.n_obs, dtype=bool)
    for name in kept:
        cells = np.flatnonzero(adata.obs[labels_key].to_numpy() == name)
        first[rng.choice(cells, cells.size // 2, replace=False)] = True
    return adata[first].copy(), adata[~first].copy(), sorted(set(sizes.index) - set(kept))


def pseudo_spots(
    reference,
    *,
    labels_key: str,
    n_spots: int = 500,
    cells_per_spot: tuple[int, int] = (5, 10),
    types_per_spot: tuple[int, int] = (1, 4),
    layer: str | None = "counts",
    random_state: int = 0,
):
    """Spots of known composition made by summing the counts of labelled single cells.

    Each spot draws a number of cells uniformly in ``cells_per_spot`` (inclusive; Visium's 55 um
    spot holds about 1-10 cells) and a number of cell types uniformly in ``types_per_spot``
    (inclusive): a real spot holds cells of a few neighbouring types, not of all of them, and a
    flat Dirichlet over every type would make every spot an unrealistic even mixture. Those types
    are chosen at random, their proportions drawn from a flat Dirichlet over them, and the cells
    shared out accordingly (one cell each first, so every chosen type is present; the rest
    multinomially). Cells are drawn without replacement within a spot where a type has enough.

    Returns ``(spots, truth)``: an AnnData of integer counts (X, and ``layers[layer]`` too when
    ``layer`` is not None, so a call with the same ``layer`` reads them) with ``obs["n_cells"]``,
    and a spots x cell types frame of the true cell proportions (the cells actually drawn; columns
    every type of the reference, sorted).
    """
    import anndata as ad

    lo, hi = (int(v) for v in cells_per_spot)
    t_lo, t_hi = (int(v) for v in types_per_spot)
    if not 1 <= lo <= hi:
        raise ValueError("isthmus: cells_per_spot is (fewest, most) cells, with 1 <= fewest <= most.")
    if not 1 <= t_lo <= t_hi:
        raise ValueError("isthmus: types_per_spot is (fewest, most) types, with 1 <= fewest <= most.")
    _common.check_column(reference, labels_key, "cell type")
    counts = sparse.csr_matrix(_common.matrix_of(reference, layer))
    labels = reference.obs[labels_key].astype(str).to_numpy()
    order = sorted(set(labels))
    members = {name: np.flatnonzero(labels == name) for name in order}
    rng = np.random.default_rng(random_state)

    picks, truth = [], np.zeros((int(n_spots), len(order)))
    for spot in range(int(n_spots)):
        n_cells = int(rng.integers(lo, hi + 1))
        n_types = int(min(rng.integers(t_lo, t_hi + 1), len(order), n_cells))
        chosen = rng.choice(len(order), size=n_types, replace=False)
        shares = rng.dirichlet(np.ones(n_types))
        per_type = 1 + rng.multinomial(n_cells - n_types, shares)
        rows = []
        for index, k in zip(chosen, per_type):
            pool = members[order[index]]
            rows.append(rng.choice(pool, size=k, replace=k > pool.size))
            truth[spot, index] = k / n_cells
        picks.append(np.concatenate(rows))
    # spots x cells 0/1 (or multiplicity) matrix times the cells' counts: every spot in one product
    assign = sparse.csr_matrix((np.ones(sum(p.size for p in picks)),
                                (np.repeat(np.arange(len(picks)), [p.size for p in picks]), np.concatenate(picks))),
                               shape=(len(picks), reference.n_obs))
    summed = (assign @ counts.astype(np.float64)).tocsr()
    summed.data = np.rint(summed.data)
    summed = summed.astype(np.int64)
    names = [f"pseudospot_{i:05d}" for i in range(len(picks))]
    spots = ad.AnnData(X=summed, obs=pd.DataFrame({"n_cells": [p.size for p in picks]}, index=names),
                       var=pd.DataFrame(index=reference.var_names.copy()))
    if layer is not None:
        spots.layers[layer] = spots.X
    return spots, pd.DataFrame(truth, index=names, columns=order)


def deconvolution_scores(truth: pd.DataFrame, estimate: pd.DataFrame) -> dict[str, float]:
    """How close estimated proportions are to the truth, as the spatial deconvolution benchmarks
    measure it (Li et al. 2022, Nat Methods; lower RMSE / JSD and higher Pearson are better):

    - ``rmse``: root mean squared error over every spot x type entry;
    - ``jsd``: the Jensen-Shannon divergence (base 2, in [0, 1]) between each spot's true and
      estimated composition, averaged over spots;
    - ``pearson``: Pearson correlation of all the proportions (flattened); NaN when either side is
      constant (an even split everywhere, say), where it is undefined.

    Rows are matched by spot name (the estimate must cover every spot of the truth); columns by
    cell-type name, a type missing from either side counting as 0 there.
    """
    from scipy.spatial.distance import jensenshannon

    missing = truth.index.difference(estimate.index)
    if len(missing):
        raise ValueError(f"isthmus: the estimate lacks {len(missing)} of the truth's spots (e.g. {missing[0]}).")
    types = truth.columns.union(estimate.columns)
    p = truth.reindex(columns=types, fill_value=0.0).to_numpy(dtype=float)
    q = estimate.loc[truth.index].reindex(columns=types, fill_value=0.0).to_numpy(dtype=float)
    if not (np.isfinite(q).all() and (q >= 0).all()):
        raise ValueError("isthmus: the estimate holds negative or missing proportions.")
    rmse = float(np.sqrt(np.mean((p - q) ** 2)))
    # jensenshannon returns the distance (the divergence's square root) and normalises each row
    jsd = float(np.mean(jensenshannon(p, q, base=2, axis=1) ** 2))
    flat_p, flat_q = p.ravel(), q.ravel()
    constant = np.ptp(flat_p) == 0 or np.ptp(flat_q) == 0
    pearson = float("nan") if constant else float(np.corrcoef(flat_p, flat_q)[0, 1])
    return {"rmse": rmse, "jsd": jsd, "pearson": pearson}
