"""The classical routes every DL method is measured against: log-normalisation, highly variable
genes and PCA (the Seurat/scanpy standard), Harmony on that PCA, and kNN averaging."""

from __future__ import annotations

import numpy as np
from scipy import sparse


def normalise_total(counts, target_sum: float = 1e4, dtype=np.float32) -> sparse.csr_matrix:
    """Each row scaled to sum to ``target_sum`` (rows with no counts stay zero); CSR of ``dtype``."""
    counts = sparse.csr_matrix(counts, dtype=dtype)
    library = np.asarray(counts.sum(axis=1)).ravel()
    scale = np.divide(target_sum, library, out=np.zeros_like(library, dtype=np.float64), where=library > 0)
    return (sparse.diags(scale.astype(dtype)) @ counts).tocsr()


def log_normalise(counts, target_sum: float = 1e4):
    """log1p(counts / library size * 1e4), Seurat's LogNormalize and scanpy's default; CSR float32."""
    out = normalise_total(counts, target_sum)
    out.data = np.log1p(out.data)
    return out


def variable_genes(lognorm, n_top_genes: int, batch=None) -> np.ndarray:
    """Boolean mask of highly variable genes (scanpy's "seurat" flavour on log-normalised data).

    Leaves a loaded torch's thread count as it was: scanpy computes means and variances with numba
    in parallel, and once scvi-tools is loaded that resets the OpenMP thread count torch uses to
    every core, ignoring OMP_NUM_THREADS (DestVI then trained 15 times slower on a busy 2-core machine).
    """
    from ._common import torch_threads_kept

    with torch_threads_kept():
        return _variable_genes(lognorm, n_top_genes, batch)


def _variable_genes(lognorm, n_top_genes: int, batch=None) -> np.ndarray:
    import anndata as ad
    import pandas as pd
    import scanpy as sc

    if n_top_genes >= lognorm.shape[1]:
        return np.ones(lognorm.shape[1], dtype=bool)
    cells = pd.Index([str(i) for i in range(lognorm.shape[0])])  # AnnData wants string cell names
    obs = pd.DataFrame({"batch": pd.Categorical(np.asarray(batch))} if batch is not None else {}, index=cells)
    work = ad.AnnData(X=lognorm, obs=obs)
    sc.pp.highly_variable_genes(work, n_top_genes=n_top_genes, flavor="seurat",
                                batch_key="batch" if batch is not None else None)
    return work.var["highly_variable"].to_numpy()


def gene_moments(dense: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each gene's mean and standard deviation (a constant gene's taken as 1, so it scales to 0)."""
    sd = dense.std(axis=0, ddof=1)
    sd[sd == 0] = 1.0
    return dense.mean(axis=0), sd


def scale_genes(dense: np.ndarray, mean: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """z-scores per gene, clipped at 10 as Seurat's ScaleData and scanpy's scale do."""
    return np.clip((dense - mean) / sd, -10, 10)


class ScaledPCA:
    """Scale genes to unit variance (clipped at 10, as Seurat and scanpy do) and project on the top
    principal components; fitted on one dataset, it projects another into the same space (the shared
    PCA that label-transfer baselines use)."""

    def __init__(self, n_comps: int = 30, random_state: int = 0):
        self.n_comps, self.random_state = n_comps, random_state

    def fit_transform(self, lognorm) -> np.ndarray:
        from sklearn.decomposition import PCA

        dense = np.asarray(lognorm.todense() if sparse.issparse(lognorm) else lognorm, dtype=np.float64)
        self.mean, self.sd = gene_moments(dense)
        n_comps = int(min(self.n_comps, min(dense.shape) - 1))
        self.pca = PCA(n_components=n_comps, svd_solver="arpack", random_state=self.random_state)
        return self.pca.fit_transform(self._scale(dense)).astype(np.float32)

    def transform(self, lognorm) -> np.ndarray:
        dense = np.asarray(lognorm.todense() if sparse.issparse(lognorm) else lognorm, dtype=np.float64)
        return self.pca.transform(self._scale(dense)).astype(np.float32)

    def _scale(self, dense):
        return scale_genes(dense, self.mean, self.sd)


def pca_of_counts(counts, *, n_comps: int = 30, n_top_genes: int = 2000, batch=None, random_state: int = 0):
    """The standard route: log-normalise, pick variable genes (per batch when given), scale, PCA."""
    lognorm = log_normalise(counts)
    genes = variable_genes(lognorm, n_top_genes, batch)
    return ScaledPCA(n_comps, random_state).fit_transform(lognorm[:, genes])


def harmony(pcs: np.ndarray, batch, *, random_state: int = 0, verbose: bool = False) -> np.ndarray:
    import harmonypy
    import pandas as pd

    meta = pd.DataFrame({"batch": np.asarray(batch).astype(str)})
    corrected = np.asarray(harmonypy.run_harmony(pcs, meta, "batch", random_state=random_state,
                                                 verbose=verbose).Z_corr)
    # harmonypy has returned both orientations across versions
    return (corrected if corrected.shape == pcs.shape else corrected.T).astype(np.float32)


def knn_indices(embedding: np.ndarray, k: int) -> np.ndarray:
    """Each cell's k nearest cells (itself first), exact Euclidean."""
    from sklearn.neighbors import NearestNeighbors

    k = min(k, embedding.shape[0])
    return NearestNeighbors(n_neighbors=k).fit(embedding).kneighbors(embedding, return_distance=False)


def knn_smooth(lognorm, embedding: np.ndarray, k: int = 15) -> np.ndarray:
    """Average each cell's log-normalised expression over its k nearest cells in the embedding."""
    neighbours = knn_indices(embedding, k)
    n = neighbours.shape[0]
    weights = sparse.csr_matrix((np.full(neighbours.size, 1.0 / neighbours.shape[1], dtype=np.float32),
                                 neighbours.ravel(), np.arange(0, neighbours.size + 1, neighbours.shape[1])),
                                shape=(n, n))
    return np.asarray((weights @ sparse.csr_matrix(lognorm)).todense(), dtype=np.float32)
