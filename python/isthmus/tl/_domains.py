"""Spatial domains: our graph attention autoencoder (isthmus.models, STAGATE design) against two
classical routes, non-spatial PCA and BANKSY (written from its paper), all clustered the same
way, with a consensus over seeds and a spatial refinement of the labels.

Run-to-run instability is the first complaint about the DL domain methods: a different seed can
move a layer boundary. Here every method runs ``n_seeds`` times; the runs' labels are matched to
the most typical run (the one with the highest mean ARI to the others) and each spot takes the
label most runs give it. The per-seed labels and their agreement with the consensus are kept, so
the instability is visible rather than hidden.
"""

from __future__ import annotations

import functools
import time
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import sparse

from .. import _arguments, _progress
from . import _classical, _common, _histology, _runner, _spatial
from ._registry import Method, register
from ._runner import Fit, Task, register_task

CLUSTER_METHODS = ("gmm", "leiden")


# ---- embeddings -----------------------------------------------------------------------------


def _log_hvg(counts, n_top_genes: int, slices=None):
    """The log-normalised ``n_top_genes`` most variable genes, chosen as STAGATE chooses them (and
    the field does for counts): scanpy's "seurat_v3" flavour on the raw counts, then library size to
    1e4 and log1p over all genes (per spot: slices of different depth need nothing more). With
    several slices the genes are chosen per slice and ranked across them (scanpy's ``batch_key``
    rule), so that one slice's genes do not decide. (Before issue 17 this was the "seurat" flavour
    on log-normalised data; BENCHMARKS.md has both.)"""
    import anndata as ad

    lognorm = _classical.log_normalise(counts)
    several = slices is not None and len(np.unique(slices)) > 1
    obs = pd.DataFrame({"slice": np.asarray(slices).astype(str)} if several else {},
                       index=[str(i) for i in range(counts.shape[0])])
    lean = ad.AnnData(X=counts, obs=obs, var=pd.DataFrame(index=[str(j) for j in range(counts.shape[1])]))
    # the count models' own rule (every gene when there are no more than n_top_genes)
    genes, _ = _common.model_genes(lean, _common.VARIABLE, layer=None, batch_key="slice" if several else None,
                                   n_top_genes=n_top_genes)
    return lognorm[:, np.sort(genes.astype(int).to_numpy())]


# Up to this many spots the graph model trains on the whole graph at once (a step per epoch, as
# STAGATE, best for a Visium slice); above it, on spatial tiles of TILE_SPOTS spots (single-cell
# resolution slices: Xenium, MERFISH, Visium HD), so that memory follows the tile.
FULL_GRAPH_SPOTS = 50_000
TILE_SPOTS = 10_000


def _gat_tiles(call):
    """The tiles the graph model trains on: None (the whole graph) or lists of spots."""
    from ..models._spatial_graph import spatial_tiles

    size = call.batch_size or (TILE_SPOTS if call.adata.n_obs > FULL_GRAPH_SPOTS else None)
    if size is None or size >= call.adata.n_obs:
        return None
    if call.slices is None:
        return spatial_tiles(call.xy, int(size))
    # slices share a coordinate frame: each is tiled on its own (a tile of two slices would be
    # two patches that no edge joins, cut by quantiles of both)
    return [spots[tile] for spots in _spatial.each_slice(call.slices)
            for tile in spatial_tiles(call.xy[spots], int(size))]


def _gat_features(lognorm, n_comps: int) -> np.ndarray:
    """STAGATE reconstructs log-normalised HVGs. It reconstructs here their leading ``n_comps``
    principal components instead: PCA is a rotation, so the loss is the same on the subspace that
    holds the signal, and an epoch costs about a tenth (0.06 s vs 0.67 s on 3639 spots x 3000
    genes, 2 CPU cores). Above FULL_GRAPH_SPOTS the PCA reads the sparse matrix (its gene x gene
    covariance), never a dense copy of it."""
    from sklearn.decomposition import PCA

    n_comps = int(min(n_comps, min(lognorm.shape) - 1))
    if lognorm.shape[0] > FULL_GRAPH_SPOTS:
        pca = PCA(n_components=n_comps, svd_solver="covariance_eigh")
        return pca.fit_transform(sparse.csr_matrix(lognorm, dtype=np.float32)).astype(np.float32)
    dense = np.asarray(lognorm.todense(), dtype=np.float32)
    return PCA(n_components=n_comps, svd_solver="randomized", random_state=0).fit_transform(dense)


# The graph model's MSE per gene, as STAGATE's (True), or per input component (False): its input
# is ``n_comps`` components of G genes, so per gene the loss is n_comps / G of per component, and
# the weight decay and gradient clipping weigh as they do in STAGATE, against its loss over the G
# genes. Per component they weighed G / n_comps (15) times less; per gene, with STAGATE's
# initialisation, the seeds' ARI spread on DLPFC fell from sd 0.017 / 0.033 to 0.010 / 0.002
# (BENCHMARKS.md, issue 17, "STAGATE's loss scale and initialisation").
GAT_LOSS_PER_GENE = True


def _gat_embedding(features, graph, *, tiles, seed, max_epochs, verbose, loss_scale=1.0):
    from ..models._spatial_graph import fit_graph_autoencoder

    with_self = (graph + sparse.identity(graph.shape[0], format="csr")).tocoo()
    edges = np.vstack([with_self.col, with_self.row])  # source j -> target i
    return fit_graph_autoencoder(features, edges, max_epochs=max_epochs, tiles=tiles, seed=seed, verbose=verbose,
                                 label=f"GAT seed {seed}", device=_common.current_device().torch,
                                 loss_scale=loss_scale)


def _banksy_kernel(xy, k, m):
    """BANKSY's neighbourhood kernel (Singhal et al. 2024, Methods): over each spot's ``k`` nearest
    other spots, Gaussian weights exp(-d^2 / r^2) normalised to sum 1 per spot, r the median of
    the spot's own ``k`` distances (the median-scaled kernel; a Gaussian of sd r / sqrt(2)), times
    exp(i m phi) for harmonic ``m`` (phi the angle from the spot to its neighbour).
    Returns the real weights and, for m > 0, the complex harmonic weights, as sparse spots x spots."""
    from sklearn.neighbors import NearestNeighbors

    n = xy.shape[0]
    distance, index = NearestNeighbors(n_neighbors=k + 1).fit(xy).kneighbors(xy)
    distance, index = distance[:, 1:], index[:, 1:]  # the spot itself left out
    sigma = np.median(distance, axis=1, keepdims=True)
    sigma[sigma == 0] = 1.0
    weights = np.exp(-(distance ** 2) / sigma ** 2)
    weights /= weights.sum(axis=1, keepdims=True)
    rows = np.repeat(np.arange(n), k)
    real = sparse.csr_matrix((weights.ravel(), (rows, index.ravel())), shape=(n, n))
    if m == 0:
        return real, None
    offset = xy[index] - xy[:, None, :]
    phase = np.exp(1j * m * np.arctan2(offset[..., 1], offset[..., 0]))
    return real, sparse.csr_matrix(((weights * phase).ravel(), (rows, index.ravel())), shape=(n, n))


def _zscore(block):
    """z-scores per gene (population sd; a constant gene becomes 0)."""
    sd = block.std(axis=0)
    return (block - block.mean(axis=0)) / np.where(sd > 0, sd, 1.0)


def banksy_features(expression, xy, *, k_geom: int = 18, lambda_: float = 0.2, max_m: int = 1):
    """BANKSY's neighbour-augmented matrix (Singhal et al., Nat Genet 2024, Methods), written from
    the paper's description: beside each spot's own expression x_i,

    - H0, the neighbourhood mean: sum_j w_ij x_j over its ``k_geom`` nearest spots, Gaussian
      weights normalised to sum 1 (:func:`_banksy_kernel`);
    - H1 (``max_m`` = 1), the azimuthal Gabor filter: |sum_j w_ij (x_j - mu_i) exp(i phi_ij)| over
      its ``2 k_geom`` nearest spots, mu_i the plain mean of those spots, so that a gradient of
      expression across the spot gives a large value and a uniform neighbourhood 0.

    Each block is z-scored per gene and weighted: the own expression sqrt(1 - lambda), the
    neighbourhood terms share lambda, harmonic m getting a share proportional to 2^-m (H0
    sqrt(2 lambda / 3), H1 sqrt(lambda / 3)), so that lambda = 0 is the spots' own z-scored
    expression. Returns spots x (genes * (max_m + 2)).

    Where our reading of the paper needed a detail, it was settled against the authors' package
    run as a black box (bench/bench_banksy_oracle.py, DLPFC 151673): the kernel's width (each
    spot's median neighbour distance, in exp(-d^2 / r^2)), the mean subtracted in the AGF (the
    plain mean, not the weighted one: correlation of the AGF blocks 0.99999 vs 0.997), the 2^-m
    shares of lambda; population standard deviations in the z-scores, no clipping. No code of
    theirs was read or used (pybanksy is GPL-3.0)."""
    dense = np.asarray(expression.todense() if sparse.issparse(expression) else expression, dtype=np.float64)
    n = dense.shape[0]
    blocks = [_zscore(dense)]
    for m in range(max_m + 1):
        k = int(min(k_geom * (m + 1), n - 1))
        real, harmonic = _banksy_kernel(xy, k, m)
        if m == 0:
            blocks.append(_zscore(real @ dense))
        else:
            plain = real.copy()
            plain.data[:] = 1.0 / k  # the neighbours' plain mean
            mean = plain @ dense
            total = np.asarray(harmonic.sum(axis=1))  # sum_j w_ij exp(i m phi_ij)
            gabor = harmonic @ dense - total * mean
            blocks.append(_zscore(np.abs(gabor)))
    shares = 2.0 ** -np.arange(max_m + 1)
    shares = lambda_ * shares / shares.sum()
    scales = [np.sqrt(1 - lambda_), *np.sqrt(shares)]
    return np.hstack([scale * block for scale, block in zip(scales, blocks)])


def _banksy_pca(matrix, *, n_comps, seed):
    """BANKSY's embedding: the leading ``n_comps`` principal components (20, the authors' default)
    of :func:`banksy_features`, seeded so that a seed repeats."""
    from sklearn.decomposition import PCA

    n_comps = int(min(n_comps, min(matrix.shape) - 1))
    return PCA(n_components=n_comps, svd_solver="arpack", random_state=seed).fit_transform(matrix).astype(np.float32)


def _banksy_embedding(lognorm, xy, *, n_comps, k_geom, lambda_, max_m=1, seed):
    """BANKSY's matrix and its PCA in one call (the task builds the matrix once for all seeds)."""
    return _banksy_pca(banksy_features(lognorm, xy, k_geom=k_geom, lambda_=lambda_, max_m=max_m), n_comps=n_comps,
                       seed=seed)


# ---- clustering, consensus, refinement ------------------------------------------------------


GMM_STARTS = 20


def _gmm(embedding, n_domains, seed=0, n_init=GMM_STARTS):
    """A Gaussian mixture with one covariance shared by the domains: mclust's EEE model, which
    STAGATE and GraphST use, in scikit-learn; returns the labels of the best likelihood of
    ``n_init`` EM runs, each started from k-means++.

    mclust starts EM from a deterministic model-based hierarchical agglomeration, so its labels
    are a function of the embedding alone. This is the same in spirit: many starts keep the
    highest-likelihood fit (the maximum-likelihood estimate both aim at), and the starts are drawn
    with a fixed ``seed`` (the task passes 0, whatever the run's seed). With 3 random starts per
    run, the clustering alone moved one fixed embedding's ARI by up to 0.10 (PCA on DLPFC
    151673: 0.324-0.423). 20 starts settle PCA and the graph model (sd 0.016 or less over
    starting seeds) but not every embedding: BANKSY's still moves by 0.36-0.52 with the seed
    of the starts (BENCHMARKS.md), so a fixed seed makes the labels
    repeat, not the optimum certain. A single
    deterministic start from Ward's agglomeration (mclust's hierarchical step for the EII model)
    was tried too: on the neighbourhood baseline it stopped at a lower likelihood (-33.17 vs
    -32.88 per spot, ARI 0.46 vs 0.53); elsewhere it was within 0.002 per spot of 20 starts."""
    from sklearn.mixture import GaussianMixture

    model = GaussianMixture(n_components=n_domains, covariance_type="tied", n_init=int(n_init),
                            random_state=int(seed))
    return model.fit_predict(embedding.astype(np.float64))


def _leiden(embedding, seed, *, resolution, n_domains=None, n_neighbors=15):
    """Leiden on the kNN graph; with ``n_domains`` the resolution is searched (bisection, as SpaGCN
    and GraphST do) for that many clusters."""
    import anndata as ad
    import scanpy as sc

    work = ad.AnnData(obsm={"X": embedding}, obs=pd.DataFrame(index=[str(i) for i in range(len(embedding))]))
    sc.pp.neighbors(work, use_rep="X", n_neighbors=n_neighbors, random_state=seed)

    def run(res):
        sc.tl.leiden(work, resolution=res, flavor="igraph", n_iterations=2, directed=False, random_state=seed)
        return work.obs["leiden"].astype(int).to_numpy()

    if n_domains is None:
        return run(resolution)
    low, high, best = 0.01, 3.0, None
    for _ in range(20):
        middle = (low + high) / 2
        labels = run(middle)
        found = len(np.unique(labels))
        if best is None or abs(found - n_domains) < abs(len(np.unique(best)) - n_domains):
            best = labels
        if found == n_domains:
            break
        low, high = (middle, high) if found < n_domains else (low, middle)
    return best


def _relabel_to(labels: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Rename ``labels`` so that they match ``reference`` as well as possible (Hungarian matching
    on the contingency table); clusters without a partner keep new, distinct numbers."""
    from scipy.optimize import linear_sum_assignment

    ours, theirs = np.unique(labels), np.unique(reference)
    table = pd.crosstab(labels, reference).reindex(index=ours, columns=theirs, fill_value=0).to_numpy()
    rows, cols = linear_sum_assignment(-table)
    mapping = {ours[r]: theirs[c] for r, c in zip(rows, cols)}
    spare = iter(range(int(max(theirs.max(), ours.max())) + 1, 10 ** 6))
    for label in ours:
        mapping.setdefault(label, next(spare))
    return np.array([mapping[x] for x in labels])


def consensus(runs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Majority label per spot over runs (spots x runs, integer labels), after matching each run's
    labels to the most typical run. Returns the consensus, each run's ARI to it, and per spot the
    share of runs that agree with it (a map of where the domains are unstable)."""
    from sklearn.metrics import adjusted_rand_score

    n_runs = runs.shape[1]
    if n_runs == 1:
        return runs[:, 0], np.ones(1), np.ones(runs.shape[0])
    agreement = np.ones((n_runs, n_runs))
    for i in range(n_runs):
        for j in range(i + 1, n_runs):
            agreement[i, j] = agreement[j, i] = adjusted_rand_score(runs[:, i], runs[:, j])
    typical = int(agreement.mean(axis=1).argmax())
    matched = np.column_stack([_relabel_to(runs[:, r], runs[:, typical]) for r in range(n_runs)])
    labels = np.unique(matched)
    votes = np.stack([(matched == label).sum(axis=1) for label in labels], axis=1)
    # ties go to the typical run's label
    votes = votes + 0.5 * (matched[:, [typical]] == labels[None, :])
    result = labels[votes.argmax(axis=1)]
    agreement = (matched == result[:, None]).mean(axis=1)
    return result, np.array([adjusted_rand_score(result, runs[:, r]) for r in range(n_runs)]), agreement


def refine(labels: np.ndarray, graph: sparse.csr_matrix) -> np.ndarray:
    """SpaGCN's refinement: a spot whose label fewer than half of its spatial neighbours share
    takes its neighbours' majority label when more than half of them agree on it. One pass."""
    out = labels.copy()
    for i in range(graph.shape[0]):
        neighbours = graph.indices[graph.indptr[i]:graph.indptr[i + 1]]
        if neighbours.size == 0:
            continue
        values, counts = np.unique(labels[neighbours], return_counts=True)
        own = counts[values == labels[i]].sum()
        if own < neighbours.size / 2 and counts.max() > neighbours.size / 2:
            out[i] = values[counts.argmax()]
    return out


# ---- the task -------------------------------------------------------------------------------


def _slices(call) -> np.ndarray | None:
    """Each spot's slice (``obs[batch_key]`` as strings), or None; refused with the caller's name
    for the argument when the column is missing, has NAs or holds measurements, or when a slice
    has too few spots for its own neighbour graph."""
    key = call.batch_key
    if key is None:
        return None
    shown = _arguments.setting("batch_key", key)
    obs = call.adata.obs
    if key not in obs:
        raise ValueError(f"isthmus: {shown}: no such column in the spots' metadata; name the column that says "
                         "which slice (section, image, sample) each spot belongs to.")
    if obs[key].isna().any():
        raise ValueError(f"isthmus: {shown}: {int(obs[key].isna().sum())} spots have no slice (NA); give every "
                         "spot its slice.")
    _common.check_categorical(obs[key], key, "slice")
    slices = obs[key].astype(str).to_numpy()
    names, counts = np.unique(slices, return_counts=True)
    small = counts <= int(call.n_neighbors)
    if small.any():
        raise ValueError(f"isthmus: {shown}: slice {names[small][0]!r} has {counts[small][0]} spots; each slice "
                         f"needs more than {_arguments.setting('n_neighbors', int(call.n_neighbors))} for its own "
                         "neighbour graph (leave it out, or join it to its neighbouring section).")
    return slices


def _prepare(call, entry) -> None:
    """Checks and inputs all methods share: the clustering choice, coordinates, the slices, the
    spatial graph (block diagonal over the slices: no edge joins two slices) and the
    log-normalised variable genes (chosen per slice and then ranked across them, scanpy's
    ``batch_key`` rule, so that one slice's genes do not decide)."""
    adata = call.adata
    call.cluster_method = call.cluster_method or ("gmm" if call.n_domains else "leiden")
    if call.cluster_method not in CLUSTER_METHODS:
        raise ValueError(f"isthmus: unknown {_arguments.name('cluster_method')} {call.cluster_method!r}; available: "
                         f"{', '.join(CLUSTER_METHODS)}")
    if call.cluster_method == "gmm" and not call.n_domains:
        raise ValueError(f"isthmus: {_arguments.name('cluster_method')} 'gmm' needs {_arguments.name('n_domains')} "
                         "(the number of domains to find).")
    if call.n_domains is not None and not call.n_domains < adata.n_obs:
        raise ValueError(f"isthmus: {_arguments.name('n_domains')} must be below the number of spots "
                         f"({adata.n_obs}); got {call.n_domains}.")
    call.slices = _slices(call)
    call.xy = _spatial.coordinates(adata, call.spatial_key, call.slices, slices_argument="batch_key")
    _spatial.check_spots_have_counts(adata, call.layer)
    call.graph = _spatial.neighbour_graph(call.xy, call.n_neighbors, call.slices)
    call.lognorm = _log_hvg(_common.matrix_of(adata, call.layer), call.n_top_genes, call.slices)
    call.n_comps_used = call.n_comps or DEFAULT_COMPS[entry.name]
    if call.image_features:  # read before any training, so a missing image fails at once
        call.image_table = _histology.checked_image_features(adata, entry, call.spatial_key, call.image_weight)


def _several_slices(call) -> bool:
    return call.slices is not None and len(np.unique(call.slices)) > 1


def _gat(call, seed):
    if call.get("gat_features") is None:  # once for every seed
        call.gat_features, call.gat_tiles = _gat_features(call.lognorm, call.n_comps_used), _gat_tiles(call)
        if call.get("image_table") is not None:
            call.gat_features = np.hstack([call.gat_features, _histology.image_block(
                call.image_table, call.gat_features, weight=call.image_weight)])
        if call.gat_tiles is not None:
            _progress.say(call.method, f"training on {len(call.gat_tiles)} spatial tiles of about "
                                       f"{call.adata.n_obs // len(call.gat_tiles)} spots", call.verbose)
    scale = call.gat_features.shape[1] / call.lognorm.shape[1] if GAT_LOSS_PER_GENE else 1.0
    return _gat_embedding(call.gat_features, call.graph, tiles=call.gat_tiles, seed=seed,
                          max_epochs=int(call.max_epochs), verbose=call.verbose, loss_scale=scale)


# BANKSY's k_geom = 3 n_neighbors: 18 on Visium, the first two hexagonal rings (6 + 12), as the authors' DLPFC runs
BANKSY_K_PER_RING = 3


def _banksy(call, seed):
    if call.get("banksy_matrix") is None:  # once for every seed
        k_geom = BANKSY_K_PER_RING * int(call.n_neighbors)
        if call.slices is None:
            call.banksy_matrix = banksy_features(call.lognorm, call.xy, k_geom=k_geom, lambda_=call.lambda_)
        else:
            # each slice's neighbourhoods and z-scores its own (Banksy's runBanksyPCA(group = sample)),
            # one PCA over all spots
            lognorm, matrix = sparse.csr_matrix(call.lognorm), None
            for spots in _spatial.each_slice(call.slices):
                block = banksy_features(lognorm[spots], call.xy[spots], k_geom=k_geom, lambda_=call.lambda_)
                matrix = np.empty((lognorm.shape[0], block.shape[1])) if matrix is None else matrix
                matrix[spots] = block
            call.banksy_matrix = matrix
    return _banksy_pca(call.banksy_matrix, n_comps=call.n_comps_used, seed=seed), None


def _pca(call, seed):
    return _classical.ScaledPCA(call.n_comps_used, seed).fit_transform(call.lognorm), None


def _fit_domains(call, embed) -> Fit:
    """The shared route: an embedding per seed (the method's own part: the embedding and the trained
    model, if any), clustered the same way for every method, then the consensus over seeds and the
    spatial refinement. The most typical run's model is the one saved."""
    started = time.perf_counter()
    seeds = [int(call.random_state) + i for i in range(int(call.n_seeds))]
    embeddings, runs, models = [], [], []
    for seed in seeds:
        embedding, model = embed(call, seed)
        if _several_slices(call):
            # the slices' batch effect taken out of every method's embedding alike before the one
            # clustering, so that a domain is the same label in every slice; seed 0 whatever the
            # run's, as the mixture: a function of the embedding
            embedding = _classical.harmony(embedding, call.slices, random_state=0)
        models.append(model)
        labels = (_gmm(embedding, int(call.n_domains)) if call.cluster_method == "gmm"
                  else _leiden(embedding, seed, resolution=call.resolution, n_domains=call.n_domains))
        embeddings.append(embedding)
        runs.append(labels)
        if call.n_seeds > 1:
            _progress.say(call.method, f"seed {seed} done, {len(np.unique(labels))} domains "
                                       f"({time.perf_counter() - started:.1f} s)", call.verbose)
    runs = np.column_stack(runs)
    labels, seed_ari, agreement = consensus(runs)
    if call.refine_labels:
        labels = refine(labels, call.graph)
    # domains numbered 1.. by size, so the largest is "1" whatever the seed
    order = pd.Series(labels).value_counts().index
    names = {old: str(new) for new, old in enumerate(order, start=1)}
    domains = pd.Categorical([names[x] for x in labels], categories=[str(i) for i in range(1, len(order) + 1)])

    key = _key(call)
    typical = int(np.argmax(seed_ari))
    fit = Fit(value=pd.Series(domains, index=call.adata.obs_names, name=f"{key}_domain"), model=models[typical],
              record={"cluster_method": call.cluster_method, "seeds": seeds, "n_comps": int(call.n_comps_used),
                      "seed_ari": [float(a) for a in seed_ari]})
    if call.get("gat_features") is not None:  # how the graph model trained: the whole graph or tiles
        fit.record["graph_tiles"] = len(call.gat_tiles) if call.gat_tiles is not None else 1
    if call.get("image_table") is not None:
        fit.record["image_feature_names"] = list(call.image_table.columns)
    if call.get("banksy_matrix") is not None:  # BANKSY's neighbourhoods: the mean's and the AGF's (twice as many)
        fit.record.update(k_geom=BANKSY_K_PER_RING * int(call.n_neighbors), agf_harmonics=1)
    if call.slices is not None:  # spots per slice, and whether Harmony joined them
        names, counts = np.unique(call.slices, return_counts=True)
        fit.record.update(slices={str(n): int(c) for n, c in zip(names, counts)}, harmony=_several_slices(call))
    fit.put(call.adata, "obs", f"{key}_domain", domains)
    fit.put(call.adata, "obs", f"{key}_agreement", agreement)
    fit.put(call.adata, "obsm", f"X_{key}", embeddings[typical])
    fit.put(call.adata, "obsm", f"{key}_seed_domains", runs.astype(np.int32))
    return fit


def _key(call, entry=None) -> str:
    return call.key_added or call.method


DEFAULT_COMPS = {"gat": 200, "banksy": 20, "pca": 30}
ALIASES = {"neighbor_pca": "banksy"}  # the old name of the neighbourhood baseline
_WRITES = ("obs/{key}_domain", "obs/{key}_agreement", "obsm/X_{key}", "obsm/{key}_seed_domains")
for _name, _embed, _kind, _options, _summary in (
    ("gat", _gat, "dl", ("image_features",),
     "graph attention autoencoder on the spatial neighbour graph (STAGATE design)"),
    ("banksy", _banksy, "baseline", (),
     "BANKSY: neighbourhood mean and azimuthal Gabor filter beside each spot, PCA"),
    ("pca", _pca, "baseline", (), "PCA of log-normalised, scaled variable genes (no space)"),
):
    register(Method("spatial_domains", _name, functools.partial(_fit_domains, embed=_embed), _kind, _summary,
                    needs=("counts", "coordinates"), writes=_WRITES, saves_model=_kind == "dl",
                    options=_options, r_verb="FindSpatialDomains"))


def spatial_domains(
    adata,
    *,
    method: str = "gat",
    n_domains: int | None = None,
    cluster_method: str | None = None,
    layer: str | None = "counts",
    spatial_key: str = _spatial.SPATIAL_KEY,
    batch_key: str | None = None,
    n_seeds: int = 5,
    n_neighbors: int = 6,
    n_top_genes: int = 3000,
    n_comps: int | None = None,
    max_epochs: int = 1000,
    resolution: float = 1.0,
    lambda_: float = 0.2,
    refine_labels: bool = True,
    image_features: bool = False,
    image_weight: float = 0.1,
    model_dir: str | None = None,
    key_added: str | None = None,
    accelerator: str = "auto",
    devices: int | str | Sequence[int] = "auto",
    batch_size: int | None = None,
    random_state: int = 0,
    verbose: bool = True,
) -> pd.Series:
    """Find spatial domains; returns the consensus labels (a categorical Series over spots).

    method "gat": our graph attention autoencoder (STAGATE design) on the ``n_neighbors`` spatial
    neighbour graph (6 = the Visium ring; use more for Slide-seq beads), embedding 30-d.
    "banksy": BANKSY (written from its paper, :func:`banksy_features`), each spot's expression
    beside its neighbourhood mean over the ``3 * n_neighbors`` nearest spots (k_geom, 18 on Visium)
    and its azimuthal Gabor filter over twice as many, mixed by ``lambda_`` (0.2: the authors'
    setting for Visium spots, which already average several cells; they advise 0.8 for domains in
    single-cell-resolution data), 20 PCs; "neighbor_pca" is its former name. "pca": log-normalised,
    scaled HVGs, 30 PCs (no space). Every method reads the same ``n_top_genes`` variable genes,
    chosen by scanpy's "seurat_v3" flavour on the counts, log-normalised (STAGATE's preprocessing).
    Every method is clustered the same way: ``cluster_method``
    "gmm" (mclust's EEE, best likelihood of 20 starts drawn with a fixed seed, so a function of the
    embedding alone; needs ``n_domains``; the default when it is given) or "leiden" (the default
    otherwise; ``resolution``, or the resolution that gives ``n_domains``). Each of ``n_seeds`` runs
    (seeds ``random_state``, ``random_state + 1``, ...) is clustered, then the runs are combined by
    majority (see :func:`consensus`) and, with ``refine_labels``, smoothed once over the spatial
    neighbours (:func:`refine`).

    batch_key: the ``obs`` column that says which slice (section, image, sample) each spot belongs
    to; several slices then run as one joint model, whose domains carry the same labels in every
    slice. The slices may share a coordinate frame (positions repeat across them): the neighbour
    graph is built per slice with no edge between slices, so BANKSY's neighbourhoods, the graph
    model's attention and the refinement stay inside each slice; BANKSY z-scores each slice's
    blocks on its own (Banksy's ``group``), the variable genes are chosen per slice and ranked
    across them, and the graph model trains once on all slices (tiles, when it tiles, never span
    two). The slices' batch effect is then taken out of each method's embedding alike by Harmony
    (harmonypy, seed 0), the field's route for joint domains (Banksy's multi-sample vignette runs
    it on the BANKSY PCs, STAGATE and GraphST users on the latent space), before the one
    clustering. Each slice needs more than ``n_neighbors`` spots.

    image_features ("gat" only): give the graph model the colour and texture of the tissue image
    under each spot (:func:`isthmus.tl._histology.spot_image_features`: per channel mean and sd over
    the spot's disk, and the grey gradient's mean and sd), z-scored, rotated to principal
    components and appended to its input with ``image_weight`` times the expression's total
    variance. Needs ``uns["spatial"][library]`` (an image and its scale factors) and
    ``obsm[spatial_key]`` in full-resolution pixels, scanpy's Visium layout. Off by default: on
    DLPFC 151673 / 151674 it did not help (BENCHMARKS.md).

    batch_size ("gat"): spots per spatial tile for mini-batch training; None: the whole graph each
    epoch up to 50,000 spots (a Visium slice), tiles of 10,000 spots above (Xenium, MERFISH, Visium
    HD), so memory follows the tile. The record's ``graph_tiles`` says how many (1: the whole graph).

    Writes, with ``key`` = ``key_added`` or the method name:
    ``obs[f"{key}_domain"]`` consensus labels ("1", "2", ...; categorical, numbered by size),
    ``obs[f"{key}_agreement"]`` share of runs giving each spot its consensus label (before refinement),
    ``obsm[f"X_{key}"]`` the embedding of the most typical run (with several slices, after Harmony:
    the one clustered),
    ``obsm[f"{key}_seed_domains"]`` each run's labels before consensus (spots x seeds),
    ``uns[key]`` the record, with each run's ARI to the consensus ("seed_ari"), with ``batch_key``
    the spots per slice ("slices") and whether Harmony joined them ("harmony"), with
    ``image_features`` the image features' names ("image_feature_names"), and, for "gat", the
    directory its most typical run's model was saved in (``model_dir``; a temporary one by default).
    """
    method = ALIASES.get(method, method)
    return _runner.run("spatial_domains", locals())


register_task(Task("spatial_domains", spatial_domains, key=_key,
                   record_at=lambda call, entry, fit: (call.adata, _key(call)), prepare=_prepare,
                   not_recorded=("adata",)))


def domain_scores(adata, *, truth_key: str, domain_keys=None) -> pd.DataFrame:
    """ARI and NMI of each domain column (default: every ``obs`` column ending in "_domain")
    against a manual annotation ``obs[truth_key]``; spots without an annotation are left out."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    _common.check_column(adata, truth_key, "annotation", allow_na=True)
    keys = list(domain_keys) if domain_keys is not None else [c for c in adata.obs if str(c).endswith("_domain")]
    if not keys:
        raise ValueError("isthmus: no domain columns to score: run spatial_domains() first or name domain_keys.")
    truth = adata.obs[truth_key]
    known = truth.notna().to_numpy()
    rows = []
    for key in keys:
        _common.check_column(adata, key, "domain")
        labels = adata.obs[key].astype(str).to_numpy()[known]
        rows.append({"domains": key, "ARI": adjusted_rand_score(truth[known].astype(str), labels),
                     "NMI": normalized_mutual_info_score(truth[known].astype(str), labels),
                     "n_domains": len(np.unique(labels)), "n_spots": int(known.sum())})
    return pd.DataFrame(rows)


def _ordered_labels(column: pd.Series) -> list[str]:
    """A label column's labels as strings: a categorical's in its order, others sorted."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        return [str(c) for c in column.cat.categories]
    return sorted(column.dropna().astype(str).unique())


def match_domains(adata, *, domain_key: str, reference_key: str, key_added: str | None = None) -> pd.DataFrame:
    """Name each domain after the reference label it shares most spots with, one domain per label
    (Hungarian matching on the contingency table of the spots both columns label; spots without a
    reference label are left out of the table), so that a plot of the domains reads against the
    reference: the domains of several slices, or of two methods, against a manual annotation.
    The name is the best match, not a claim that the domain is that label.

    Writes ``obs[key_added]`` (default ``f"{domain_key}_matched"``), categorical: first every
    reference label in the reference's own order (its categories, else sorted), a matched domain
    under its label, then the domains left over when there are more domains than labels, as
    "domain <name>" in their own order. With fewer domains than labels, the labels no domain took
    stay as unused categories, so both columns have the same categories in the same order and the
    default palettes of scanpy and Seurat (a colour per category, by its place) give each domain
    its label's colour. With more domains, the extra categories change those palettes: give the
    plot the reference's colours, and others for the extra domains.
    Returns a table, one row per category in that order: domain (None for a label no domain
    took), matched, spots (of the domain), shared (of those, spots whose reference label is the
    matched one)."""
    from scipy.optimize import linear_sum_assignment

    _common.check_column(adata, domain_key, "domain")
    _common.check_column(adata, reference_key, "reference", allow_na=True)
    domains = adata.obs[domain_key].astype(str).to_numpy()
    reference = adata.obs[reference_key]
    known = reference.notna().to_numpy()
    if not known.any():
        raise ValueError(f"isthmus: the reference column {reference_key!r} has no labels (all NA).")
    levels = _ordered_labels(reference)
    labels = [label for label in levels if (reference[known].astype(str) == label).any()]  # those with spots
    ours = [d for d in _ordered_labels(adata.obs[domain_key]) if (domains == d).any()]
    table = pd.crosstab(domains[known], reference[known].astype(str).to_numpy()).reindex(
        index=ours, columns=labels, fill_value=0)
    pairs = linear_sum_assignment(-table.to_numpy())
    names = {ours[r]: labels[c] for r, c in zip(*pairs)}
    for domain in ours:
        if domain not in names:  # a name that cannot pass for a reference label
            names[domain] = f"domain {domain}" if f"domain {domain}" not in levels else f"domain {domain} (unmatched)"
    order = levels + [names[d] for d in ours if names[d] not in levels]
    matched = pd.Categorical([names[d] for d in domains], categories=order)
    adata.obs[key_added or f"{domain_key}_matched"] = pd.Series(matched, index=adata.obs_names)
    by_name = {name: domain for domain, name in names.items()}
    rows = []
    for name in order:
        domain = by_name.get(name)  # None: a label no domain took
        rows.append({"domain": domain, "matched": name,
                     "spots": int((domains == domain).sum()) if domain is not None else 0,
                     "shared": int(table.loc[domain, name]) if domain is not None and name in labels else 0})
    return pd.DataFrame(rows)
