"""What the spatial tasks share: checked coordinates, the spatial neighbour graph, spots that can
be modelled, and a reference that can be learnt from (labels with enough cells, genes shared with
the spatial data)."""

from __future__ import annotations

import warnings
from typing import Iterator

import numpy as np
import pandas as pd
from scipy import sparse

from . import _common

SPATIAL_KEY = "spatial"


def coordinates(adata, key: str = SPATIAL_KEY, slices: np.ndarray | None = None,
                slices_argument: str | None = None) -> np.ndarray:
    """``obsm[key]`` as an (n, 2) float array: present, finite, and one spot per position (within
    each slice when ``slices``, one label per spot, is given: sections share a coordinate frame).
    ``slices_argument``: the task's argument that names the slices, for the message.

    Duplicated positions are refused rather than jittered: they usually mean two sections or two
    images were merged without offsets, and every neighbour graph built on them would be wrong.
    """
    from .. import _arguments

    if key not in adata.obsm:
        raise ValueError(f"isthmus: no spatial coordinates: obsm[{key!r}] not found (obsm has {list(adata.obsm)}). "
                         "In R, the object needs an image (Visium/SlideSeq) or coordinates.")
    xy = np.asarray(adata.obsm[key], dtype=float)
    if xy.ndim != 2 or xy.shape[1] < 2:
        raise ValueError(f"isthmus: obsm[{key!r}] must have two columns (x, y); it has shape {xy.shape}.")
    xy = xy[:, :2]
    missing = ~np.isfinite(xy).all(axis=1)
    if missing.any():
        names = ", ".join(map(str, adata.obs_names[missing][:5]))
        raise ValueError(f"isthmus: {int(missing.sum())} spots have missing (NaN/Inf) coordinates (e.g. {names}); "
                         "subset them away or give them positions.")
    # a slice's code beside (x, y): positions repeated across slices are distinct spots
    codes = pd.factorize(np.asarray(slices))[0][:, None] if slices is not None else np.zeros((len(xy), 0))
    _, first, counts = np.unique(np.hstack([codes, xy]), axis=0, return_index=True, return_counts=True)
    if (counts > 1).any():
        n_dup = int((counts[counts > 1]).sum())
        example = adata.obs_names[first[counts > 1][0]]
        if slices is not None:
            raise ValueError(f"isthmus: {n_dup} spots share their coordinates with another spot of the same slice "
                             f"(e.g. {example}); spots of one slice must have distinct positions.")
        advice = (f" name each spot's section with {_arguments.name(slices_argument)}" if slices_argument
                  else " give each its own offsets")
        raise ValueError(f"isthmus: {n_dup} spots share their coordinates with another spot (e.g. {example}); "
                         f"spots must have distinct positions (several sections merged without offsets?{advice}).")
    return xy


def each_slice(slices) -> Iterator[np.ndarray]:
    """The positions of each slice's spots (sorted), one slice at a time in the order the slices
    first appear in ``slices`` (one label per spot). What builds a piece per slice (its neighbour
    graph, its tiles, its BANKSY matrix) builds it on these spots and puts it back at them, so no
    piece joins two slices."""
    slices = np.asarray(slices)
    for name in pd.unique(slices):
        yield np.flatnonzero(slices == name)


def neighbour_graph(xy: np.ndarray, n_neighbors: int = 6, slices: np.ndarray | None = None) -> sparse.csr_matrix:
    """Symmetric 0/1 adjacency of each spot's ``n_neighbors`` nearest spots (no self loops).

    Six is the Visium hexagonal ring; for Slide-seq beads or Stereo-seq bins, more neighbours
    cover the same tissue area. With ``slices`` (one label per spot) each slice gets its own graph
    and no edge joins two slices (block diagonal, in the spots' own order), so sections may share
    a coordinate frame.
    """
    if slices is not None:
        n = xy.shape[0]
        rows, cols = [], []
        for spots in each_slice(slices):
            part = neighbour_graph(xy[spots], n_neighbors).tocoo()
            rows.append(spots[part.row])
            cols.append(spots[part.col])
        rows, cols = np.concatenate(rows), np.concatenate(cols)
        return sparse.csr_matrix((np.ones(rows.size, dtype=np.float32), (rows, cols)), shape=(n, n))
    from sklearn.neighbors import NearestNeighbors

    n = xy.shape[0]
    k = min(int(n_neighbors), n - 1)
    if k < 1:
        raise ValueError("isthmus: a spatial neighbour graph needs at least two spots.")
    index = NearestNeighbors(n_neighbors=k + 1).fit(xy).kneighbors(xy, return_distance=False)[:, 1:]
    rows = np.repeat(np.arange(n), k)
    graph = sparse.csr_matrix((np.ones(rows.size, dtype=np.float32), (rows, index.ravel())), shape=(n, n))
    graph = graph.maximum(graph.T).tocsr()
    graph.setdiag(0)
    graph.eliminate_zeros()
    return graph


def check_rows_have_counts(counts, names, rows: str, advice: str, on: str = "") -> None:
    """Rows (spots, cells) with no counts cannot be normalised or modelled: name them instead of
    failing later. ``on`` says which genes were counted, when not all."""
    empty = np.asarray(counts.sum(axis=1)).ravel() <= 0
    if empty.any():
        example = ", ".join(map(str, np.asarray(names)[empty][:5]))
        raise ValueError(f"isthmus: {int(empty.sum())} {rows} have no counts{on} (e.g. {example}); {advice}")


def check_spots_have_counts(adata, layer: str | None, what: str = "spatial data") -> None:
    """Every spot has counts, and none is negative (counts, or log-normalised values, never are)."""
    matrix = _common.matrix_of(adata, layer)
    where = f"layers[{layer!r}]" if layer is not None else "X"
    _common.check_non_negative(matrix.data if sparse.issparse(matrix) else np.asarray(matrix),
                               f"{where} of the {what}", "give the raw counts")
    check_rows_have_counts(matrix, adata.obs_names, f"spots of the {what}",
                           "subset them away (in R: subset(object, nCount_Spatial > 0)).")


def shared_genes(reference, spatial, *, min_overlap: float, verbose: bool = True) -> pd.Index:
    """Genes in both, in the spatial data's order; the overlap is reported, and refused when fewer
    than ``min_overlap`` of the spatial data's genes are in the reference."""
    report = _common.gene_overlap(spatial.var_names, reference.var_names, min_overlap=min_overlap,
                                  first="spatial data", second="reference")
    if verbose:
        print(f"isthmus: {report['shared_genes']} genes shared by the reference ({report['second_genes']}) and "
              f"the spatial data ({report['first_genes']}).", flush=True)
    return spatial.var_names[spatial.var_names.isin(reference.var_names)]


def reference_labels(reference, labels_key: str, *, min_cells: int) -> pd.Series:
    """The reference's cell-type labels as strings, indexed by cell. A type with fewer than
    ``min_cells`` cells has no usable signature: it is left out (its cells' labels are NaN here) with a
    warning naming it; NA labels are refused."""
    _common.check_column(reference, labels_key, "cell type")
    labels = reference.obs[labels_key].astype(str)
    counts = labels.value_counts()
    rare = sorted(counts.index[counts < min_cells])
    if rare:
        warnings.warn(f"isthmus: cell types with fewer than {min_cells} reference cells are left out: "
                      f"{', '.join(rare)}", UserWarning, stacklevel=3)
    if len(counts) - len(rare) < 2:
        raise ValueError(f"isthmus: the reference needs at least two cell types with {min_cells} or more cells.")
    return labels.where(~labels.isin(rare))
