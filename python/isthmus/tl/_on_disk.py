"""Counts larger than memory: count models train from an .h5ad opened in backed mode
(``anndata.read_h5ad(path, backed="r")``), whose X stays on disk and is read a minibatch at a time
by scvi-tools' data loader. This module keeps the rest of a task from loading it whole:

- :func:`working_copy`: the AnnData a model is set up on (scvi-tools writes its registry into
  obs/uns, which should not be the user's): the same file reopened when the model takes every
  gene, else the chosen genes copied to a temporary backed .h5ad a block of cells at a time;
- :func:`value_sample`: the values the count checks look at, from the first cells only;
- :func:`cells_for_selection`: the cells the variable-gene selection reads (every cell up to
  :data:`SELECTION_CELLS`, else a seeded random sample of that many);
- :func:`linked_h5ad`: an .h5ad whose X is an HDF5 link to counts already on disk (an HDF5Array
  or 10x HDF5 file from R), so R hands such counts over as the file they already are.

Only X can be backed (anndata reads layers into memory), so counts on disk must be X.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pandas as pd
from scipy import sparse

from .. import _arguments

BLOCK_CELLS = 10_000  # cells read at a time when copying genes: bounded memory at any size
SELECTION_CELLS = 100_000  # the mean-variance trend of the gene selection is stable well below this


def is_backed(adata) -> bool:
    return bool(getattr(adata, "isbacked", False))


def check_layer(adata, layer: str | None) -> None:
    if is_backed(adata) and layer is not None:
        raise ValueError(f"isthmus: the data are on disk (a backed AnnData), where only X stays on disk; its counts "
                         f"are X, so give {_arguments.setting('layer', None)} (layers[{layer!r}] would be read "
                         "into memory whole).")


def rows(matrix, index) -> np.ndarray | sparse.csr_matrix:
    """Rows ``index`` (sorted, as HDF5 reads need) of an on-disk matrix, in memory."""
    block = matrix[np.sort(np.asarray(index))]
    return block.tocsr() if sparse.issparse(block) else np.asarray(block)


def value_sample(matrix, n_values: int = 1_000_000) -> np.ndarray:
    """Values of the first cells of an on-disk matrix, about ``n_values`` of them."""
    n_cells = matrix.shape[0]
    take = max(1, min(n_cells, n_values // max(1, matrix.shape[1]) * 20))
    block = rows(matrix, np.arange(take))
    return block.data if sparse.issparse(block) else block.ravel()


def cells_for_selection(n_cells: int, random_state: int = 0) -> np.ndarray | None:
    """Which cells the variable-gene selection reads: None (every cell) up to SELECTION_CELLS."""
    if n_cells <= SELECTION_CELLS:
        return None
    return np.sort(np.random.default_rng(random_state).choice(n_cells, SELECTION_CELLS, replace=False))


def working_copy(adata, genes: pd.Index):
    """A backed AnnData over the model's genes, with obs and var of its own."""
    import anndata as ad

    if len(genes) == adata.n_vars and adata.var_names.equals(pd.Index(genes)):
        work = ad.read_h5ad(adata.filename, backed="r")
    else:
        work = ad.read_h5ad(_genes_to_disk(adata, genes), backed="r")
    work.obs = adata.obs.copy()  # the user's columns as they are now (the file may hold older ones)
    work.obs_names = adata.obs_names
    return work


def _genes_to_disk(adata, genes: pd.Index) -> str:
    """The columns ``genes`` of X in a new .h5ad (compressed sparse rows), a block of cells at a time."""
    import anndata as ad
    import h5py

    at = adata.var_names.get_indexer(genes)
    folder = tempfile.mkdtemp(prefix="isthmus-genes-")
    path = os.path.join(folder, "counts.h5ad")
    ad.AnnData(obs=pd.DataFrame(index=adata.obs_names.astype(str)),
               var=pd.DataFrame(index=pd.Index(genes).astype(str))).write_h5ad(path)
    with h5py.File(path, "a") as handle:
        if "X" in handle:
            del handle["X"]
        for start in range(0, adata.n_obs, BLOCK_CELLS):
            block = sparse.csr_matrix(rows(adata.X, np.arange(start, min(start + BLOCK_CELLS, adata.n_obs)))[:, at],
                                      dtype=np.float32)
            if start == 0:
                ad.io.write_elem(handle, "X", block)
            else:
                ad.io.sparse_dataset(handle["X"]).append(block)
    return path


def linked_h5ad(path: str, source: str, kind: str, dataset: str, obs_names, var_names) -> str:
    """Write ``path``, an .h5ad whose X links to counts in ``source`` without copying them.

    kind "dense": ``dataset`` is a cells x genes HDF5 dataset (how an HDF5Array of genes x cells is
    stored: R's column-major order is HDF5's transposed shape). kind "tenx": ``dataset`` is the group
    of a 10x / TENxMatrix file (data, indices, indptr per cell: cells x genes in compressed rows).
    """
    import anndata as ad
    import h5py

    source = os.path.abspath(source)
    obs = pd.DataFrame(index=pd.Index(np.asarray(obs_names).astype(str)))
    var = pd.DataFrame(index=pd.Index(np.asarray(var_names).astype(str)))
    ad.AnnData(obs=obs, var=var).write_h5ad(path)
    with h5py.File(source, "r") as counts:
        if kind == "dense":
            shape = counts[dataset].shape
        else:
            shape = (len(counts[f"{dataset}/indptr"]) - 1, int(np.asarray(counts[f"{dataset}/shape"])[0]))
    if tuple(shape) != (len(obs), len(var)):
        raise ValueError(f"isthmus: the counts in {source} ({dataset}) hold {shape[0]} cells x {shape[1]} genes; "
                         f"the object has {len(obs)} x {len(var)}.")
    with h5py.File(path, "a") as handle:
        if "X" in handle:
            del handle["X"]
        if kind == "dense":
            handle["X"] = h5py.ExternalLink(source, dataset)
        else:
            group = handle.create_group("X")
            group.attrs.update({"encoding-type": "csr_matrix", "encoding-version": "0.1.0", "shape": shape})
            for part in ("data", "indices", "indptr"):
                group[part] = h5py.ExternalLink(source, f"{dataset}/{part}")
    return path
