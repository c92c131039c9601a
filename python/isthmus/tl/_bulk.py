"""Bulk deconvolution: the share of each single-cell reference cell type in bulk RNA-seq samples.

A Scaden-style ensemble of fully connected networks (Menden et al. 2020; isthmus's own PyTorch
model, :mod:`isthmus.models._scaden`) trained on pseudo-bulks simulated from the reference, against
two classical baselines: non-negative least squares on the reference's mean profiles (the spot
route's, :func:`isthmus.tl._deconvolve._nnls`) and a MuSiC-style weighted NNLS (Wang et al. 2019)
that trusts less the genes whose expression varies between the reference's donors or batches.

Pseudo-bulks of known composition (:func:`pseudo_bulks`) are what Scaden trains on and what the
benchmarks score against (on cells of batches the reference never saw).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from scipy import sparse

from .. import _arguments, _progress
from . import _common, _runner, _spatial
from ._deconvolve import _counts_per_cell, _nnls
from ._registry import Method, register
from ._runner import Fit, Task, register_task

BULK_VALUES = ("counts", "tpm")


# ---- pseudo-bulks -------------------------------------------------------------------------------


def pseudo_bulks(
    reference,
    *,
    labels_key: str,
    n_samples: int = 500,
    cells_per_sample: int = 100,
    sparse_share: float = 0.5,
    depth: tuple[float, float] = (0.5, 1.0),
    layer: str | None = "counts",
    random_state: int = 0,
):
    """Bulk samples of known composition summed from labelled single cells, as Scaden simulates them.

    Each sample draws cell-type fractions uniformly at random (normalised to sum to 1); a
    ``sparse_share`` of the samples (Scaden: half) first leave out a random number of types (all but
    one at most), so that the networks also see samples without some types. ``cells_per_sample``
    cells (Scaden's default 100) are shared out by the fractions and drawn, with replacement, from
    each type's cells; their counts are summed. Each sample's library is then thinned binomially to
    a share drawn uniformly in ``depth`` (default 0.5-1: bulk samples differ in depth; (1, 1) keeps
    the sums).

    Returns ``(bulk, truth)``: an AnnData of integer counts (X, samples x genes) and a samples x
    types frame of the true cell fractions (the cells actually drawn; every type, sorted).
    """
    import anndata as ad

    _common.check_column(reference, labels_key, "cell type")
    counts = sparse.csr_matrix(_common.matrix_of(reference, layer), dtype=np.float64)
    labels = reference.obs[labels_key].astype(str).to_numpy()
    order = sorted(set(labels))
    members = [np.flatnonzero(labels == name) for name in order]
    rng = np.random.default_rng(int(random_state))
    n_types, n_cells = len(order), int(cells_per_sample)
    rows, columns, truth = [], [], np.zeros((int(n_samples), n_types))
    for sample in range(int(n_samples)):
        fractions = rng.random(n_types)
        if rng.random() < sparse_share and n_types > 1:
            dropped = rng.choice(n_types, size=int(rng.integers(1, n_types)), replace=False)
            fractions[dropped] = 0.0
        per_type = rng.multinomial(n_cells, fractions / fractions.sum())
        for k in np.flatnonzero(per_type):
            rows.append(np.full(per_type[k], sample))
            columns.append(rng.choice(members[k], size=per_type[k], replace=True))
        truth[sample] = per_type / per_type.sum()
    rows, columns = np.concatenate(rows), np.concatenate(columns)
    assign = sparse.csr_matrix((np.ones(rows.size), (rows, columns)), shape=(int(n_samples), reference.n_obs))
    summed = (assign @ counts).toarray()
    lo, hi = depth
    if hi < 1.0 or lo < 1.0:
        share = rng.uniform(lo, hi, size=(summed.shape[0], 1))
        summed = rng.binomial(np.rint(summed).astype(np.int64), np.broadcast_to(share, summed.shape))
    names = [f"pseudobulk_{i:05d}" for i in range(int(n_samples))]
    bulk = ad.AnnData(X=sparse.csr_matrix(np.rint(summed).astype(np.int64)), obs=pd.DataFrame(index=names),
                      var=pd.DataFrame(index=reference.var_names.copy()))
    return bulk, pd.DataFrame(truth, index=names, columns=order)


# ---- the methods --------------------------------------------------------------------------------


def _fit_nnls(call) -> Fit:
    prepared = call.prepared
    shares_of_counts = _nnls(prepared["reference_counts"], prepared["types"], prepared["bulk_counts"],
                             prepared["kept_types"])
    return _proportions(call, _cell_fractions(shares_of_counts, prepared))


def _cell_fractions(shares_of_counts: np.ndarray, prepared) -> np.ndarray:
    """Shares of a sample's counts -> shares of its cells (each type's mean counts per cell)."""
    fractions = shares_of_counts / prepared["counts_per_cell"]
    return fractions / fractions.sum(axis=1, keepdims=True)


def _batch_profiles(prepared, batch: np.ndarray):
    """Per type: the mean over batches of the batch's mean relative expression (each cell's counts
    over its library) and its variance between batches (0 for a type seen in one batch)."""
    from . import _classical

    relative = _classical.normalise_total(prepared["reference_counts"], 1.0, np.float64)
    types = prepared["types"].to_numpy()
    means, variances = [], []
    for name in prepared["kept_types"]:
        per_batch = [np.asarray(relative[np.flatnonzero((types == name) & (batch == b))].mean(axis=0)).ravel()
                     for b in np.unique(batch[types == name])]
        stacked = np.vstack(per_batch)
        means.append(stacked.mean(axis=0))
        variances.append(stacked.var(axis=0, ddof=1) if len(per_batch) > 1 else np.zeros(stacked.shape[1]))
    return np.vstack(means).T, np.vstack(variances).T  # genes x types


def _fit_music(call, max_iterations: int = 100, tolerance: float = 1e-5) -> Fit:
    """MuSiC's weighted NNLS (Wang et al. 2019, Nat Commun; "music_basic"): the design is each type's
    mean relative expression (over batches) times its mean counts per cell, so the weights are
    fractions of cells; each gene is weighted by 1 / (sum_k w_k^2 * scaled cross-batch variance_gk +
    the sample's residual variance), re-estimated until the fractions settle."""
    from scipy.optimize import nnls

    prepared = call.prepared
    batch = prepared["batches"]
    profiles, variances = _batch_profiles(prepared, batch)
    size = prepared["counts_per_cell"] / prepared["counts_per_cell"].mean()
    design = profiles * size  # genes x types
    spread = variances * size**2
    bulk = prepared["bulk_counts"]
    library = np.asarray(bulk.sum(axis=1)).ravel()
    values = np.zeros((bulk.shape[0], design.shape[1]))
    iterations = []
    for i in range(bulk.shape[0]):
        y = np.asarray(bulk[i].todense()).ravel() / library[i]
        weights_of_types = nnls(design, y)[0]
        for iteration in range(1, max_iterations + 1):
            residual = float(np.mean((y - design @ weights_of_types) ** 2))
            gene_variance = spread @ weights_of_types**2 + residual
            root = np.sqrt(1.0 / np.maximum(gene_variance, 1e-300))
            root = root / root.max()  # scale-free: only the genes' relative weights matter to NNLS
            updated = nnls(design * root[:, None], y * root)[0]
            settled = np.abs(updated / max(updated.sum(), 1e-300) -
                             weights_of_types / max(weights_of_types.sum(), 1e-300)).max() < tolerance
            weights_of_types = updated
            if settled:
                break
        iterations.append(iteration)
        total = weights_of_types.sum()
        values[i] = weights_of_types / total if total > 0 else 1.0 / design.shape[1]
    fit = _proportions(call, values)
    fit.record.update(batches=[str(b) for b in np.unique(batch)], music_iterations_max=int(max(iterations)))
    return fit


def _fit_scaden(call) -> Fit:
    import torch

    from ..models._scaden import ScadenEnsemble, fit_scaden, scaden_input

    prepared = call.prepared
    device = _common.current_device()
    _common.seed_everything(call.random_state)
    reference = _lean(prepared["reference_counts"], prepared["genes"],
                      {"type": prepared["types"].to_numpy()})
    simulated, truth = pseudo_bulks(reference, labels_key="type", n_samples=int(call.n_pseudobulks),
                                    cells_per_sample=int(call.cells_per_pseudobulk), layer=None,
                                    random_state=call.random_state)
    _progress.say("Scaden", f"{simulated.n_obs} pseudo-bulks of {int(call.cells_per_pseudobulk)} cells simulated "
                  "from the reference", call.verbose)
    truth = truth.reindex(columns=prepared["kept_types"], fill_value=0.0)
    torch.manual_seed(int(call.random_state))
    model = ScadenEnsemble(n_genes=len(prepared["genes"]), n_types=len(prepared["kept_types"]))
    fit_scaden(model, scaden_input(simulated.X.toarray()), truth.to_numpy(), max_steps=int(call.max_steps),
               batch_size=int(device.batch_size or 128), learning_rate=float(call.learning_rate),
               seed=call.random_state, verbose=call.verbose, device=device.torch)
    with torch.no_grad():
        x = torch.as_tensor(scaden_input(prepared["bulk_counts"].toarray()), device=device.torch)
        values = model(x).cpu().numpy().astype(np.float64)
    fit = _proportions(call, values / values.sum(axis=1, keepdims=True))
    fit.model = model.to("cpu")
    fit.record.update(max_steps=int(call.max_steps), n_pseudobulks=int(call.n_pseudobulks),
                      cells_per_pseudobulk=int(call.cells_per_pseudobulk),
                      final_mse={k: float(np.mean(v[-50:])) for k, v in model.history_.items()})
    return fit


def _lean(counts, genes, obs: dict):
    import anndata as ad

    return ad.AnnData(X=counts, obs=pd.DataFrame(obs, index=[str(i) for i in range(counts.shape[0])]),
                      var=pd.DataFrame(index=pd.Index(genes).astype(str)))


def _proportions(call, values: np.ndarray) -> Fit:
    prepared = call.prepared
    frame = pd.DataFrame(values, index=call.bulk.obs_names.copy(), columns=prepared["kept_types"])
    fit = Fit(value=frame, record=dict(prepared["facts"]))
    fit.put(call.bulk, "obsm", call.key_added, frame)
    return fit


# ---- the task -----------------------------------------------------------------------------------


def _check_bulk(bulk, layer, bulk_values: str) -> None:
    matrix = _common.matrix_of(bulk, layer)
    values = matrix.data if sparse.issparse(matrix) else np.asarray(matrix).ravel()
    where = f"the bulk's layers[{layer!r}]" if layer is not None else "the bulk"
    _common.check_non_negative(values, where, "pass counts, or TPM / FPKM values that are not log-transformed")
    if bulk_values == "counts" and not np.all(np.equal(np.mod(values[:1_000_000], 1), 0)):
        raise ValueError(f"isthmus: {where} holds non-integer values, not counts. For TPM or FPKM set "
                         f"{_arguments.setting('bulk_values', 'tpm')}; other normalisations (log values, "
                         "z-scores) cannot be deconvolved: pass the counts.")
    library = np.asarray(matrix.sum(axis=1)).ravel()
    if (library <= 0).any():
        raise ValueError(f"isthmus: {int((library <= 0).sum())} bulk samples have no counts "
                         f"(e.g. {bulk.obs_names[np.flatnonzero(library <= 0)[0]]}).")


def _prepare(call, entry) -> None:
    bulk, reference = call.bulk, call.reference
    if call.bulk_values not in BULK_VALUES:
        raise ValueError(f"isthmus: {_arguments.name('bulk_values')} must be "
                         f"{' or '.join(map(_arguments.value_text, BULK_VALUES))}; got "
                         f"{_arguments.value_text(call.bulk_values)}.")
    _common.check_column(reference, call.labels_key, "cell type")
    _common.check_column(reference, call.batch_key, "batch")
    if entry.name == "music":
        if call.batch_key is None:
            raise ValueError(f"isthmus: music needs {_arguments.name('batch_key')}: the reference's donors or "
                             "batches, between which it measures each gene's variability.")
        if reference.obs[call.batch_key].nunique() < 2:
            raise ValueError(f"isthmus: music needs at least two donors or batches in {call.batch_key!r}.")
    _check_bulk(bulk, call.bulk_layer, call.bulk_values)
    _common.check_counts(reference, call.layer, allow_non_integer=entry.kind == "baseline")
    report = _common.gene_overlap(bulk.var_names, reference.var_names, min_overlap=call.min_gene_overlap,
                                  first="bulk", second="reference")
    labels = _spatial.reference_labels(reference, call.labels_key, min_cells=int(call.min_cells_per_type))
    cells = labels.notna().to_numpy()
    kept_types = sorted(labels[cells].unique())
    left_out = sorted(set(reference.obs[call.labels_key].astype(str)) - set(kept_types))
    shared = bulk.var_names[bulk.var_names.isin(reference.var_names)]
    reference_counts = sparse.csr_matrix(
        _common.matrix_of(reference, call.layer)[:, reference.var_names.get_indexer(shared)], dtype=np.float64)[cells]
    expressed = np.asarray(reference_counts.sum(axis=0)).ravel() > 0  # a gene no reference cell has says nothing
    genes = shared[expressed]
    reference_counts = reference_counts[:, expressed]
    has_counts = np.asarray(reference_counts.sum(axis=1)).ravel() > 0
    reference_counts, types = reference_counts[has_counts], labels[cells][has_counts]
    bulk_counts = sparse.csr_matrix(_common.matrix_of(bulk, call.bulk_layer)[:, bulk.var_names.get_indexer(genes)],
                                    dtype=np.float64)
    lost = np.asarray(bulk_counts.sum(axis=1)).ravel() <= 0
    if lost.any():
        raise ValueError(f"isthmus: {int(lost.sum())} bulk samples have no counts on the {len(genes)} genes shared "
                         f"with the reference (e.g. {bulk.obs_names[np.flatnonzero(lost)[0]]}).")
    batches = (reference.obs[call.batch_key].astype(str).to_numpy()[cells][has_counts]
               if call.batch_key is not None else None)
    if call.verbose:
        print(f"isthmus: deconvolving {bulk.n_obs} bulk samples into {len(kept_types)} cell types with {entry.name} on "
              f"{len(genes)} genes ({int(has_counts.sum())} reference cells).", flush=True)
    call.prepared = dict(
        genes=genes, kept_types=kept_types, reference_counts=reference_counts, types=types, bulk_counts=bulk_counts,
        batches=batches, counts_per_cell=_counts_per_cell(reference_counts, types, kept_types),
        facts={"bulk_values": call.bulk_values, "bulk_genes": int(bulk.n_vars), "reference_genes": int(reference.n_vars),
               "shared_genes": int(report["shared_genes"]), "share_of_bulk": float(report["share_of_first"]),
               "genes_used": int(len(genes)), "reference_cells_used": int(has_counts.sum()),
               "cell_types": list(kept_types), "cell_types_left_out": list(left_out)})


register(Method("deconvolve_bulk", "scaden", _fit_scaden, "dl",
                "Scaden-style ensemble of three fully connected networks (PyTorch) trained on pseudo-bulks "
                "simulated from the reference",
                needs=("bulk", "reference", "labels"), saves_model=True, writes=("obsm/{key}",), r_verb="DeconvolveBulk"))
register(Method("deconvolve_bulk", "nnls", _fit_nnls, "baseline",
                "non-negative least squares on the reference's mean profiles per type (the spot route's)",
                needs=("bulk", "reference", "labels"), writes=("obsm/{key}",), r_verb="DeconvolveBulk"))
register(Method("deconvolve_bulk", "music", _fit_music, "baseline",
                "MuSiC-style weighted NNLS: genes variable between the reference's donors / batches weigh less",
                needs=("bulk", "reference", "labels", "batch"), writes=("obsm/{key}",), r_verb="DeconvolveBulk"))


def deconvolve_bulk(
    bulk,
    reference,
    *,
    labels_key: str = "cell_type",
    method: str = "scaden",
    batch_key: str | None = None,
    bulk_values: str = "counts",
    layer: str | None = "counts",
    bulk_layer: str | None = None,
    min_gene_overlap: float = 0.3,
    min_cells_per_type: int = 10,
    n_pseudobulks: int = 2000,
    cells_per_pseudobulk: int = 100,
    max_steps: int = 5000,
    learning_rate: float = 1e-4,
    model_dir: str | None = None,
    key_added: str = "deconvolution_bulk",
    accelerator: str = "auto",
    devices: int | str | Sequence[int] = "auto",
    batch_size: int | None = None,
    random_state: int = 0,
    verbose: bool = True,
) -> pd.DataFrame:
    """Estimate the fraction of cells of each ``reference.obs[labels_key]`` type in every bulk sample.

    ``bulk``: an AnnData of samples x genes (counts in X, or ``bulk_layer``); ``reference``: a
    labelled single-cell AnnData (raw counts in ``layer``; None: X). Returns a samples x cell types
    frame of fractions of cells (rows sum to 1; columns the kept types, sorted) and writes:

    - ``bulk.obsm[key_added]``: that frame;
    - ``bulk.uns[key_added]``: the record: method, seconds, model directory (scaden), parameters,
      ``bulk_values``, the gene overlap (``bulk_genes``, ``reference_genes``, ``shared_genes``,
      ``share_of_bulk``), ``genes_used``, ``reference_cells_used``, ``cell_types``,
      ``cell_types_left_out`` and each method's facts (Scaden's steps and final losses, MuSiC's
      batches).

    Methods:

    - "scaden" (default): Scaden's design (Menden et al. 2020, Sci Adv), in PyTorch: three fully
      connected networks (M256, M512, M1024: hidden layers and dropout as in the paper), trained
      each for ``max_steps`` (Scaden's 5000) mini-batches of ``batch_size`` (None: Scaden's 128)
      with Adam (``learning_rate`` 1e-4, Scaden's) on the mean squared error of the fractions;
      their softmax outputs are averaged. Training data: ``n_pseudobulks`` (default 2000; Scaden
      simulates 1000 per reference dataset) pseudo-bulks of ``cells_per_pseudobulk`` (100, Scaden's)
      reference cells each, with random fractions, half of them leaving some types out and each
      thinned to a random depth (:func:`pseudo_bulks`). Input: log2(x + 1), each sample min-max
      scaled to [0, 1] (Scaden's), which is why TPM / FPKM bulks work too. On the CPU 5000 steps
      of the three networks take about a minute or two per thousand genes.
    - "nnls": non-negative least squares of each sample (library-normalised) on the types' mean
      library-normalised profiles (the spot route's signatures), shares of counts turned into
      shares of cells by each type's mean counts per cell.
    - "music": MuSiC-style weighted NNLS (Wang et al. 2019, Nat Commun): the design is each type's
      mean relative expression over ``batch_key``'s donors / batches times its mean counts per cell,
      and genes are weighted by the inverse of the bulk variance their cross-batch variability
      implies at the current fractions plus the residual variance, iterated until the fractions
      settle. Needs ``batch_key`` with two or more batches.

    Genes: those in both objects that some reference cell expresses; refused, naming the overlap,
    when fewer than ``min_gene_overlap`` (0.3) of the bulk's genes are in the reference (other gene
    identifiers or another species). ``bulk_values``: "counts" (default; integers are required) or
    "tpm" (TPM or FPKM: non-integer, non-negative values; the record keeps which). Reference types
    with fewer than ``min_cells_per_type`` (10) cells are left out, with a warning naming them (a
    mean profile over fewer cells is one or two particular cells); a bulk of such types spreads
    their share over the others.
    """
    return _runner.run("deconvolve_bulk", locals())


register_task(Task("deconvolve_bulk", deconvolve_bulk, key=lambda call, entry: call.key_added,
                   record_at=lambda call, entry, fit: (call.bulk, call.key_added), prepare=_prepare,
                   not_recorded=("bulk", "reference")))


# ---- scores -------------------------------------------------------------------------------------


def bulk_scores(truth: pd.DataFrame, estimate: pd.DataFrame) -> pd.DataFrame:
    """Estimated against true fractions, long format (cell_type, metric, value): per type and
    "all": ``rmse``, ``pearson`` (NaN where either side is constant); "all" also ``jsd`` (mean
    per-sample Jensen-Shannon divergence, base 2). Rows are matched by sample name, columns by type
    (a type missing from either side counts as 0)."""
    from ._deconvolve import deconvolution_scores

    overall = deconvolution_scores(truth, estimate)
    types = truth.columns.union(estimate.columns)
    p = truth.reindex(columns=types, fill_value=0.0)
    q = estimate.loc[truth.index].reindex(columns=types, fill_value=0.0)
    rows = [{"cell_type": "all", "metric": k, "value": float(v)} for k, v in overall.items()]
    for name in types:
        a, b = p[name].to_numpy(float), q[name].to_numpy(float)
        constant = np.ptp(a) == 0 or np.ptp(b) == 0
        rows += [{"cell_type": name, "metric": "rmse", "value": float(np.sqrt(np.mean((a - b) ** 2)))},
                 {"cell_type": name, "metric": "pearson",
                  "value": float("nan") if constant else float(np.corrcoef(a, b)[0, 1])}]
    return pd.DataFrame(rows)
