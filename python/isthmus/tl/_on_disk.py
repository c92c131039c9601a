"""Counts larger than memory: count models train from an .h5ad opened in backed mode
(``anndata.read_h5ad(path, backed="r")``) without its counts being loaded whole. This module keeps
the rest of a task from loading them:

- :func:`working_copy`: the AnnData a model is set up on (scvi-tools writes its registry into
  obs/uns, which should not be the user's). Its X is the model's genes copied, a block of cells at
  a time, into plain files in the temporary directory (about 8 bytes per non-zero count) and
  memory-mapped as a compressed-sparse-row matrix: the operating system pages the counts in as
  minibatches touch them and drops them under memory pressure. (anndata writes its arrays in
  HDF5 chunks, which cannot be mapped, so the user's file is not mapped in place.)
- :func:`value_sample`: the values the count checks look at, from the first cells only;
- :func:`cells_for_selection`: the cells the variable-gene selection reads (every cell up to
  :data:`SELECTION_CELLS`, else a seeded random sample of that many);
- :func:`linked_h5ad`: an .h5ad whose X is an HDF5 link to counts already on disk (an HDF5Array
  or 10x HDF5 file from R), so R hands such counts over as the file they already are.

Why a memory map and not scvi-tools' own backed reading: a backed minibatch of 128 scattered cells
costs anndata two HDF5 reads per cell (6-8 ms, against 0.16 ms in memory: an epoch at a million
cells took 1.40x the in-memory time, BENCHMARKS.md "The cost curve"); through a memory map it costs
what memory does (1.09x), the minibatches are the same as in memory, and so is the trained model
for the same seed.

Under DDP on one machine, Lightning starts ranks 1.. by running the program again, after rank 0
has made its copy and with rank 0's environment: rank 0 names its copy there and keeps the files
until it exits, and the other ranks map them, so N devices share one copy instead of writing N.

Only X can be backed (anndata reads layers into memory), so counts on disk must be X.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import shutil
import tempfile
import time

import numpy as np
import pandas as pd
from scipy import sparse

from .. import _arguments, _progress

BLOCK_VALUES = 20_000_000  # cells x genes read at a time when copying genes: bounded memory at any size
SELECTION_CELLS = 100_000  # the mean-variance trend of the gene selection is stable well below this
# + a key of the file and genes: the folder of rank 0's copy, in the environment ranks 1.. start with
SHARED_COPY_VARIABLE = "ISTHMUS_GENES_COPY_"


def is_backed(adata) -> bool:
    return bool(getattr(adata, "isbacked", False))


def check_layer(adata, layer: str | None) -> None:
    if is_backed(adata) and layer is not None:
        raise ValueError(f"isthmus: the data are on disk (a backed AnnData), where only X stays on disk; its counts "
                         f"are X, so give {_arguments.setting('layer', None)} (layers[{layer!r}] would be read "
                         "into memory whole).")


def rows(matrix, index) -> np.ndarray | sparse.csr_matrix:
    """Rows ``index`` of an on-disk matrix, in memory: a slice (one read per array), or positions
    (sorted, as HDF5 reads need; anndata reads each row on its own)."""
    block = matrix[index if isinstance(index, slice) else np.sort(np.asarray(index))]
    return block.tocsr() if sparse.issparse(block) else np.asarray(block)


def value_sample(matrix, n_values: int = 1_000_000) -> np.ndarray:
    """Values of the first cells of an on-disk matrix, about ``n_values`` of them."""
    n_cells = matrix.shape[0]
    take = max(1, min(n_cells, n_values // max(1, matrix.shape[1]) * 20))
    block = rows(matrix, slice(0, take))
    return block.data if sparse.issparse(block) else block.ravel()


def cells_for_selection(n_cells: int, random_state: int = 0) -> np.ndarray | None:
    """Which cells the variable-gene selection reads: None (every cell) up to SELECTION_CELLS."""
    if n_cells <= SELECTION_CELLS:
        return None
    return np.sort(np.random.default_rng(random_state).choice(n_cells, SELECTION_CELLS, replace=False))


def working_copy(adata, genes: pd.Index, *, shared: bool = False, verbose: bool = False):
    """An AnnData over the model's genes, with obs and var of its own, whose X is a compressed-sparse-row
    matrix over memory-mapped files (see the module's docstring). ``shared``: several devices train
    (DDP), so rank 0's copy is kept for the other ranks to map."""
    import anndata as ad

    at = adata.var_names.get_indexer(pd.Index(genes))
    first_rank = not shared or _rank_zero()
    counts = None if first_rank else _map_shared_copy(os.environ.get(SHARED_COPY_VARIABLE + _copy_key(adata, at)))
    if counts is None:
        counts = _genes_to_disk(adata, at, keep_for_ranks=shared and first_rank, verbose=verbose)
    # obs: the user's columns as they are now (the file may hold older ones)
    return ad.AnnData(X=counts, obs=adata.obs.copy(), var=adata.var.iloc[at].copy())


def _rank_zero() -> bool:
    from ._common import is_rank_zero

    return is_rank_zero()


def _copy_key(adata, at: np.ndarray) -> str:
    """Names one copy: the file (path, size, time written), its cells and the genes taken."""
    path = os.path.abspath(str(adata.filename))
    stat = os.stat(path)
    digest = hashlib.sha1(f"{path}|{stat.st_size}|{stat.st_mtime_ns}|{adata.n_obs}".encode())
    digest.update(np.ascontiguousarray(at, dtype=np.int64).tobytes())
    return digest.hexdigest()[:16]


def _map_shared_copy(folder: str | None) -> sparse.csr_matrix | None:
    """Rank 0's copy, mapped; None when there is none to map (then this rank copies for itself)."""
    if not folder or not os.path.isfile(os.path.join(folder, "shape.json")):
        return None
    with open(os.path.join(folder, "shape.json")) as handle:
        facts = json.load(handle)
    return _mapped_csr(folder, int(facts["nnz"]), np.dtype(facts["index_type"]),
                       np.load(os.path.join(folder, "indptr.npy")), tuple(facts["shape"]))


def _mapped(path: str, dtype, length: int) -> np.ndarray:
    if not length:
        return np.zeros(0, dtype=dtype)  # an empty file cannot be mapped
    return np.memmap(path, dtype=dtype, mode="r", shape=(length,))


def _mapped_csr(folder: str, nnz: int, index_type, indptr, shape) -> sparse.csr_matrix:
    """The copy in ``folder`` (files "data", float32 counts, and "indices") as a mapped csr_matrix."""
    return _csr(_mapped(os.path.join(folder, "data"), np.float32, nnz),
                _mapped(os.path.join(folder, "indices"), index_type, nnz), indptr, shape)


def _csr(data, indices, indptr, shape) -> sparse.csr_matrix:
    """A csr_matrix over these arrays as they are. scipy's row reads give indices and indptr one integer
    type, widening (copying) mapped indices on every minibatch when they differ, so indptr takes the
    type of the indices; and its constructor would read every index to check it, so the arrays are
    set on an empty matrix."""
    matrix = sparse.csr_matrix(shape, dtype=data.dtype)
    matrix.data, matrix.indices, matrix.indptr = data, indices, indptr.astype(indices.dtype)
    return matrix


def _genes_to_disk(adata, at: np.ndarray, *, keep_for_ranks: bool = False, verbose: bool = False) -> sparse.csr_matrix:
    """The columns ``at`` of X, copied a block of cells at a time into files of a temporary folder
    (counts as 32-bit floats, as the models read them) and memory-mapped. ``keep_for_ranks``: the
    files stay until this process exits, named in the environment the other DDP ranks start with."""
    # indices (and so indptr) wide enough for every count the copy can hold
    nonzero_bound = adata.n_obs * len(at)
    index_type = np.int32 if nonzero_bound <= np.iinfo(np.int32).max else np.int64
    folder = tempfile.mkdtemp(prefix="isthmus-genes-")
    indptr, written = [np.zeros(1, dtype=np.int64)], 0
    step = max(1, BLOCK_VALUES // max(1, adata.n_vars))
    started, tenth = time.perf_counter(), max(step, -(-adata.n_obs // 10))
    _progress.say("counts on disk", f"copying {len(at)} genes x {adata.n_obs} cells from {adata.filename} into "
                                    f"{folder} (mapped, removed when done)", verbose)
    try:
        with open(os.path.join(folder, "data"), "wb") as data, open(os.path.join(folder, "indices"), "wb") as indices:
            for start in range(0, adata.n_obs, step):
                block = sparse.csr_matrix(rows(adata.X, slice(start, min(start + step, adata.n_obs)))[:, at],
                                          dtype=np.float32)
                block.sort_indices()
                data.write(block.data.tobytes())
                indices.write(block.indices.astype(index_type, copy=False).tobytes())
                indptr.append(block.indptr[1:].astype(np.int64) + written)
                written += block.nnz
                done = min(start + step, adata.n_obs)
                if done // tenth > start // tenth or done == adata.n_obs:
                    _progress.say("counts on disk", f"{done}/{adata.n_obs} cells copied, "
                                                    f"{written * (4 + np.dtype(index_type).itemsize) / 2**30:.2f} GiB "
                                                    f"({time.perf_counter() - started:.1f} s)", verbose)
    except OSError as error:  # most often a full disk
        shutil.rmtree(folder, ignore_errors=True)
        raise OSError(f"isthmus: the counts of the {len(at)} genes the model trains on could not be copied to "
                      f"{folder} ({error}); it needs about 8 bytes per non-zero count. Point the temporary directory "
                      f"(TMPDIR) at a disk with room, or train on fewer genes.") from error
    counts = _mapped_csr(folder, written, index_type, np.concatenate(indptr), (adata.n_obs, len(at)))
    if keep_for_ranks:  # the other ranks map these files (see the module's docstring) until rank 0 exits
        np.save(os.path.join(folder, "indptr.npy"), counts.indptr)
        with open(os.path.join(folder, "shape.json"), "w") as handle:  # written last: the copy is whole
            json.dump({"shape": [adata.n_obs, len(at)], "nnz": written, "index_type": np.dtype(index_type).name},
                      handle)
        os.environ[SHARED_COPY_VARIABLE + _copy_key(adata, at)] = folder
        atexit.register(shutil.rmtree, folder, True)
    # a mapped file stays readable once unlinked (POSIX): nothing is left behind in the temporary
    # directory, however the session ends; elsewhere (a mapped file cannot be removed) at exit
    elif os.name == "posix":
        shutil.rmtree(folder, ignore_errors=True)
    else:
        atexit.register(shutil.rmtree, folder, True)
    return counts


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
