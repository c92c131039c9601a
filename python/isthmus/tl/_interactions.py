"""Cell-cell interactions from ligand-receptor pairs on spatial data: a spatial score over
neighbouring spots against the CellPhoneDB-style baseline that ignores positions, both tested by
shuffling the labels across spots.

The ligand-receptor pairs come from LIANA+'s bundled resources (the OmniPath consensus for human,
its mouse version, or any other LIANA resource), read straight from the CSV that ships with the
``liana`` package, without importing it (that takes seconds and pulls in plotting libraries); or
from the user's own table.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import warnings

import numpy as np
import pandas as pd
from scipy import sparse

from .. import _arguments
from . import _classical, _common, _runner, _spatial
from ._registry import Method, register
from ._runner import Fit, Task, register_task

COLUMNS = ("source", "target", "ligand", "receptor", "score", "pvalue", "fdr", "n_pairs")
# the two resources "auto" chooses between: OmniPath's consensus, human symbols, and its mouse orthologues
AUTO_RESOURCES = ("consensus", "mouseconsensus")
# values held at once: adjacent spot pairs x LR pairs (products), and label pairs x LR pairs x
# shuffles per block (a block's sums stay in the CPU cache: faster than bigger blocks)
_PRODUCT_VALUES = 1 << 23
_BLOCK_VALUES = 1 << 18


# ---- the ligand-receptor resource --------------------------------------------------------


def _liana_resource_file() -> str:
    """Where LIANA+ keeps its resources, found without importing liana."""
    spec = importlib.util.find_spec("liana")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        path = os.path.join(location, "resource", "omni_resource.csv")
        if os.path.exists(path):
            return path
    raise ValueError(
        "isthmus: the ligand-receptor resources come with the Python package liana, which is not installed "
        "(or has no resource/omni_resource.csv). Install it (pip install liana; in R: "
        "reticulate::py_install('liana')), or pass resource= a data frame with 'ligand' and 'receptor' columns "
        "(complexes as 'A_B').")


@functools.lru_cache(maxsize=1)
def _liana_resources() -> pd.DataFrame:
    """All of LIANA's resources in one frame: resource, ligand, receptor (as liana.rs.select_resource)."""
    table = pd.read_csv(_liana_resource_file(), index_col=False,
                        usecols=["source_genesymbol", "target_genesymbol", "resource"])
    return table.rename(columns={"source_genesymbol": "ligand", "target_genesymbol": "receptor"})


def resource_names() -> list[str]:
    """The names ``resource=`` accepts besides "auto" and a data frame: LIANA's resources."""
    return list(pd.unique(_liana_resources()["resource"]))


def _named_resource(name: str) -> pd.DataFrame:
    table = _liana_resources()
    chosen = table[table["resource"] == name.lower()]
    if chosen.empty:
        raise ValueError(f"isthmus: unknown ligand-receptor resource {name!r}; use 'auto', a data frame with "
                         f"'ligand' and 'receptor' columns, or one of: {', '.join(resource_names())}.")
    return chosen[["ligand", "receptor"]]


def _subunits(complexes: pd.Series) -> set[str]:
    return {gene for name in complexes for gene in str(name).split("_")}


def _resource_genes(table: pd.DataFrame) -> set[str]:
    return _subunits(table["ligand"]) | _subunits(table["receptor"])


def _resource(resource, genes: pd.Index) -> tuple[str, pd.DataFrame, str]:
    """(name, ligand/receptor table without NA or duplicates, how it was chosen)."""
    how = ""
    if isinstance(resource, pd.DataFrame):
        missing = [c for c in ("ligand", "receptor") if c not in resource.columns]
        if missing:
            raise ValueError(f"isthmus: the resource data frame needs 'ligand' and 'receptor' columns; it lacks "
                             f"{', '.join(missing)} (it has {', '.join(map(str, resource.columns))}).")
        name, table = "custom", resource[["ligand", "receptor"]]
    elif not isinstance(resource, str):
        raise ValueError("isthmus: resource is 'auto', a resource name or a data frame with 'ligand' and "
                         "'receptor' columns.")
    elif resource == "auto":
        covered = {name: len(_resource_genes(_named_resource(name)).intersection(genes)) for name in AUTO_RESOURCES}
        name = max(AUTO_RESOURCES, key=lambda n: covered[n])  # ties go to the human consensus
        table = _named_resource(name)
        how = "auto: " + ", ".join(f"{n} covers {covered[n]} of the data's genes" for n in AUTO_RESOURCES)
    else:
        name, table = resource.lower(), _named_resource(resource)
    table = table.dropna().astype(str).drop_duplicates().reset_index(drop=True)
    if table.empty:
        raise ValueError(f"isthmus: the ligand-receptor resource {name!r} has no pairs.")
    return name, table, how


def _no_pairs_message(name: str, table: pd.DataFrame, genes: pd.Index) -> str:
    resource_genes = _resource_genes(table)
    found = len(resource_genes.intersection(genes))
    folded = len({g.upper() for g in resource_genes}.intersection(genes.str.upper()))
    example = ", ".join(map(str, genes[:3]))
    text = (f"isthmus: none of the {len(table)} ligand-receptor pairs of resource {name!r} has all its genes in the "
            f"data ({found} of the resource's {len(resource_genes)} genes found; the data's genes look like: "
            f"{example}).")
    if genes.str.match(r"^ENS[A-Z]*G\d{6,}").mean() > 0.5:
        text += (" The data's genes are Ensembl IDs and the resources use gene symbols: name the genes by symbol "
                 "(in R: an assay whose rownames are symbols), or pass resource= a data frame of Ensembl IDs.")
    elif folded > 2 * max(found, 1):
        text += (f" {folded} genes match when upper/lower case is ignored: the resource is for another species "
                 "(use resource='auto', 'consensus' for human or 'mouseconsensus' for mouse).")
    else:
        text += " Check that the data and the resource are of the same species and gene identifiers."
    return text


def _pairs_in_data(name: str, table: pd.DataFrame, genes: pd.Index):
    """The pairs whose every subunit is a gene of the data: (kept pairs, the genes they use as
    positions in ``genes``, ligand and receptor subunits as (pairs x most subunits) positions into
    those genes, padded by repeating the first subunit so that a min over the row is the complex)."""
    position = {}
    for i, gene in enumerate(genes):
        position.setdefault(gene, i)
    ligands = [name_.split("_") for name_ in table["ligand"]]
    receptors = [name_.split("_") for name_ in table["receptor"]]
    kept = np.array([all(g in position for g in lig + rec) for lig, rec in zip(ligands, receptors)], dtype=bool)
    if not kept.any():
        raise ValueError(_no_pairs_message(name, table, genes))
    ligands = [lig for lig, k in zip(ligands, kept) if k]
    receptors = [rec for rec, k in zip(receptors, kept) if k]
    used = sorted({position[g] for subunits in ligands + receptors for g in subunits})
    column = {genes[i]: k for k, i in enumerate(used)}

    def padded(complexes):
        width = max(len(c) for c in complexes)
        return np.array([[column[g] for g in c] + [column[c[0]]] * (width - len(c)) for c in complexes], dtype=np.int64)

    return table[kept].reset_index(drop=True), np.asarray(used, dtype=np.int64), padded(ligands), padded(receptors)


def _complex_min(values: np.ndarray, subunits: np.ndarray) -> np.ndarray:
    """(..., genes) -> (..., pairs): a complex is as expressed as its least expressed subunit."""
    out = values[..., subunits[:, 0]]
    for k in range(1, subunits.shape[1]):
        out = np.minimum(out, values[..., subunits[:, k]])
    return out


# ---- labels, blocks of permutations, p-values --------------------------------------------


def _label_codes(adata, labels_key: str, min_cells: int) -> tuple[list[str], np.ndarray, list[str]]:
    """(labels scored, a code per spot, labels left out). Spots of a left-out label keep the extra
    code len(labels): they stay in the neighbour graph and in the shuffles, and are not reported."""
    if labels_key not in adata.obs:
        raise ValueError(f"isthmus: labels column {labels_key!r} is not in the spot metadata (obs).")
    labels = adata.obs[labels_key]
    if labels.isna().any():
        n = int(labels.isna().sum())
        names = ", ".join(map(str, adata.obs_names[labels.isna().to_numpy()][:5]))
        raise ValueError(f"isthmus: {n} spots have no label (NA) in {labels_key!r} (e.g. {names}); subset them away "
                         "or give them a label (e.g. 'unassigned').")
    values = labels.astype(str).to_numpy()
    if isinstance(labels.dtype, pd.CategoricalDtype):
        order = [str(c) for c in labels.cat.categories if str(c) in set(values)]
    else:
        order = sorted(set(values))
    counts = pd.Series(values).value_counts()
    rare = [label for label in order if counts[label] < min_cells]
    if rare:
        warnings.warn(f"isthmus: labels with fewer than {min_cells} spots are left out of the interactions (their "
                      f"spots stay in the neighbour graph and the shuffles): {', '.join(rare)}", UserWarning,
                      stacklevel=3)
    kept = [label for label in order if label not in rare]
    if not kept:
        raise ValueError(f"isthmus: no label in {labels_key!r} has {min_cells} or more spots (min_cells).")
    code = {label: k for k, label in enumerate(kept)}
    codes = np.array([code.get(v, len(kept)) for v in values], dtype=np.int64)
    return kept, codes, rare


def _shuffled_labels(codes: np.ndarray, n_perms: int, random_state: int) -> np.ndarray:
    """(n_perms x spots) label codes, each row the labels shuffled across the spots."""
    rng = np.random.default_rng(random_state)
    dtype = np.int16 if codes.max() < np.iinfo(np.int16).max else np.int64
    out = np.empty((n_perms, codes.size), dtype=dtype)
    for k in range(n_perms):
        out[k] = rng.permutation(codes)
    return out


def _stacked_one_hot(rows: np.ndarray, n_rows: int, dtype) -> sparse.csc_matrix:
    """For (B x m) row indices, the (B * n_rows x m) 0/1 matrix whose column j has a one at
    rows[b, j] of block b, for every b: B one-hot matrices stacked, built without sorting."""
    n_blocks, m = rows.shape
    indices = (rows.astype(np.int64) + (np.arange(n_blocks, dtype=np.int64) * n_rows)[:, None]).T.ravel()
    indptr = np.arange(0, n_blocks * m + 1, n_blocks, dtype=np.int64)
    return sparse.csc_matrix((np.ones(indices.size, dtype=dtype), indices, indptr), shape=(n_blocks * n_rows, m))


def _exceeds(null: np.ndarray, observed: np.ndarray, tolerance: float) -> np.ndarray:
    """null >= observed, sums of the same terms in another order (rounding apart) counting as equal."""
    return null >= observed - tolerance * np.abs(observed)


def _spatial_test(codes, shuffled, src, dst, ligand, receptor, n_labels):
    """Mean ligand(i) * receptor(j) over ordered adjacent spot pairs (i, j), per (label of i, label
    of j, pair), for the observed labels and each shuffle: (scores, pairs per label pair, shuffles
    at least as high, shuffles in which the label pair is adjacent at all)."""
    groups = n_labels * n_labels
    n_lr = ligand.shape[1]
    scores = np.full((groups, n_lr), np.nan)
    exceed = np.zeros((groups, n_lr), dtype=np.int64)
    edge_groups = codes[src] * n_labels + codes[dst]
    n_pairs = np.bincount(edge_groups, minlength=groups)
    valid = np.zeros(groups, dtype=np.int64)
    # the products of every adjacent pair do not depend on the labels: computed once per block of LR
    # pairs, then each shuffle is a single sparse product that sums them per label pair
    # float32 products: the sparse products run twice as fast as in float64; sums of the same terms in
    # another order then agree to ~1e-6, hence the tolerance when a shuffle is compared with the data
    chunk = max(1, min(n_lr, _PRODUCT_VALUES // max(src.size, 1)))
    for start in range(0, n_lr, chunk):
        columns = slice(start, start + chunk)
        products = ligand[src, columns].astype(np.float32) * receptor[dst, columns].astype(np.float32)
        observed = (_stacked_one_hot(edge_groups[None, :], groups, np.float32) @ products).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            observed = observed / n_pairs[:, None]
        scores[:, columns] = observed
        block = max(1, _BLOCK_VALUES // (groups * products.shape[1]))
        for first in range(0, len(shuffled), block):
            labels = shuffled[first:first + block].astype(np.int64)
            rows = labels[:, src] * n_labels + labels[:, dst]
            sums = (_stacked_one_hot(rows, groups, np.float32) @ products).reshape(len(labels), groups, -1)
            counts = np.bincount((rows + (np.arange(len(labels)) * groups)[:, None]).ravel(),
                                 minlength=len(labels) * groups).reshape(len(labels), groups, 1)
            with np.errstate(invalid="ignore", divide="ignore"):
                null = sums / counts
            exceed[:, columns] += (_exceeds(null, observed[None], 1e-5) & (counts > 0)).sum(axis=0)
            if start == 0:
                valid += (counts[:, :, 0] > 0).sum(axis=0)
    return scores, n_pairs, exceed, np.broadcast_to(valid[:, None], exceed.shape)


def _type_means(codes: np.ndarray, expression: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """(B x spots) label codes -> (B x labels x genes) mean expression per label."""
    n_labels = sizes.size
    sums = (_stacked_one_hot(codes, n_labels, expression.dtype) @ expression).reshape(len(codes), n_labels, -1)
    return sums / np.maximum(sizes, 1)[None, :, None]


def _nonspatial_test(codes, shuffled, expression, ligand_subunits, receptor_subunits, n_labels):
    """CellPhoneDB's statistic with a product: mean ligand in the source label x mean receptor in the
    target label, complexes as their least expressed subunit's mean, per (source, target, pair)."""
    sizes = np.bincount(codes, minlength=n_labels)

    def score(labels):
        means = _type_means(labels, expression, sizes)
        lig, rec = _complex_min(means, ligand_subunits), _complex_min(means, receptor_subunits)
        return (lig[:, :, None, :] * rec[:, None, :, :]).reshape(len(labels), n_labels * n_labels, -1)

    observed = score(codes[None])[0]
    exceed = np.zeros(observed.shape, dtype=np.int64)
    block = max(1, _PRODUCT_VALUES // (observed.size + n_labels * expression.shape[1]))
    for first in range(0, len(shuffled), block):
        exceed += _exceeds(score(shuffled[first:first + block].astype(np.int64)), observed[None], 1e-9).sum(axis=0)
    n_pairs = (sizes[:, None] * sizes[None, :]).ravel()
    return observed, n_pairs, exceed, np.full(exceed.shape, len(shuffled))


def _benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    p = np.asarray(p, dtype=float)
    out = np.full(p.shape, np.nan)
    finite = np.isfinite(p)
    if not finite.any():
        return out
    values = p[finite]
    order = np.argsort(values, kind="stable")
    ranked = values[order] * values.size / np.arange(1, values.size + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1].clip(max=1.0)
    result = np.empty_like(values)
    result[order] = adjusted
    out[finite] = result
    return out


# ---- the task ----------------------------------------------------------------------------


def _prepare(call, entry) -> None:
    """Labels, resource pairs and expression: what both tests share."""
    adata = call.adata
    if call.n_perms == 0:
        warnings.warn(f"isthmus: {_arguments.setting('n_perms', 0)}: scores only, without p-values (pvalue and fdr "
                      "are NA); give 1000 or more shuffles to test them.", UserWarning, stacklevel=4)
    call.labels, call.codes, call.left_out = _label_codes(adata, call.labels_key, int(call.min_cells))
    _spatial.check_spots_have_counts(adata, call.layer)
    _common.check_counts(adata, call.layer, allow_non_integer=True)
    genes = pd.Index(adata.var_names.astype(str))
    call.resource_name, call.table, how = _resource(call.resource, genes)
    call.pairs, used, call.ligand_subunits, call.receptor_subunits = _pairs_in_data(call.resource_name, call.table,
                                                                                     genes)
    if call.verbose:
        chosen = f" ({how})" if how else ""
        print(f"isthmus: resource {call.resource_name!r}{chosen}: {len(call.pairs)} of its {len(call.table)} "
              "ligand-receptor pairs have all their genes in the data.", flush=True)
    call.expression = _classical.log_normalise(_common.matrix_of(adata, call.layer))[:, used].toarray().astype(
        np.float64)


def _fit_spatial(call) -> Fit:
    graph = _spatial.neighbour_graph(_spatial.coordinates(call.adata), int(call.n_neighbors))
    if call.include_self:
        graph = (graph + sparse.identity(graph.shape[0], dtype=graph.dtype, format="csr")).tocsr()
    edges = graph.tocoo()
    src, dst = edges.row.astype(np.int64), edges.col.astype(np.int64)
    n_labels = len(call.labels) + 1  # the last code holds the spots of left-out labels
    shuffled = _shuffled_labels(call.codes, int(call.n_perms), int(call.random_state))
    ligand = _complex_min(call.expression, call.ligand_subunits)
    receptor = _complex_min(call.expression, call.receptor_subunits)
    tested = _spatial_test(call.codes, shuffled, src, dst, ligand, receptor, n_labels)
    return _table(call, *tested, min_pairs=max(int(call.min_pairs), 1), facts={"adjacent_pairs": int(src.size)})


def _fit_nonspatial(call) -> Fit:
    n_labels = len(call.labels) + 1
    shuffled = _shuffled_labels(call.codes, int(call.n_perms), int(call.random_state))
    tested = _nonspatial_test(call.codes, shuffled, call.expression, call.ligand_subunits, call.receptor_subunits,
                              n_labels)
    # positions play no part: the spatial options are not this method's
    facts = {"n_neighbors": None, "include_self": None, "min_pairs": None}
    return _table(call, *tested, min_pairs=1, facts=facts)


def _table(call, scores, n_pairs, exceed, valid, *, min_pairs: int, facts: dict) -> Fit:
    """The result table of either test: rows that pass the detection and pair filters, sorted."""
    labels, codes, pairs = call.labels, call.codes, call.pairs
    n_labels = len(labels) + 1
    detected = _type_means(codes[None], (call.expression > 0).astype(np.float64),
                           np.bincount(codes, minlength=n_labels))[0]
    ligand_share = _complex_min(detected, call.ligand_subunits)
    receptor_share = _complex_min(detected, call.receptor_subunits)

    shape = (n_labels, n_labels, len(pairs))
    scores, exceed, valid = scores.reshape(shape), exceed.reshape(shape), valid.reshape(shape)
    n_pairs = np.broadcast_to(np.asarray(n_pairs).reshape(n_labels, n_labels, 1), shape)
    keep = ((ligand_share[:, None, :] >= call.expr_prop) & (receptor_share[None, :, :] >= call.expr_prop)
            & (n_pairs >= min_pairs) & np.isfinite(scores))
    keep[-1, :, :] = keep[:, -1, :] = False
    source, target, pair = np.nonzero(keep)
    pvalue = ((1 + exceed[keep]) / (1 + valid[keep])) if call.n_perms > 0 else np.full(source.size, np.nan)
    names = np.asarray(labels, dtype=object)
    result = pd.DataFrame({
        "source": names[source], "target": names[target],
        "ligand": pairs["ligand"].to_numpy(dtype=object)[pair],
        "receptor": pairs["receptor"].to_numpy(dtype=object)[pair],
        "score": scores[keep].astype(float), "pvalue": pvalue.astype(float),
        "fdr": _benjamini_hochberg(pvalue), "n_pairs": n_pairs[keep].astype(np.int64)})
    order = np.lexsort((result["receptor"], result["ligand"], result["target"], result["source"], -result["score"],
                        result["pvalue"].fillna(1.0)))
    result = result.iloc[order].reset_index(drop=True)
    if call.verbose:
        significant = int((result["fdr"] < 0.05).sum())
        print(f"isthmus: {call.method} interactions: {len(result)} (source, target, pair) rows pass expr_prop "
              f"{call.expr_prop:g}, {significant} with FDR < 0.05.", flush=True)
    facts = {"resource": call.resource_name, "resource_pairs": int(len(call.table)), "pairs_kept": int(len(pairs)),
             "labels": ", ".join(labels), "labels_left_out": ", ".join(call.left_out), **facts}
    return Fit(value=result, record=facts, record_top={"table": result})


register(Method("interactions", "spatial", _fit_spatial, "classical",
                "ligand x receptor over adjacent spots, tested by shuffling labels",
                needs=("labels", "coordinates"), r_verb="SpatialInteractions"))
register(Method("interactions", "nonspatial", _fit_nonspatial, "baseline",
                "CellPhoneDB's mean ligand x mean receptor per label pair (positions ignored)",
                needs=("labels",), r_verb="SpatialInteractions"))


def interactions(
    adata,
    *,
    labels_key: str,
    method: str = "spatial",
    resource="auto",
    layer: str | None = "counts",
    n_neighbors: int = 6,
    include_self: bool = True,
    n_perms: int = 1000,
    min_cells: int = 5,
    min_pairs: int = 10,
    expr_prop: float = 0.1,
    key_added: str = "interactions",
    random_state: int = 0,
    verbose: bool = True,
) -> pd.DataFrame:
    """Ligand-receptor interactions between the labels of ``adata.obs[labels_key]``.

    Expression is log-normalised (library size 1e4, log1p) from the counts in ``layers[layer]`` (X
    when ``layer`` is None); a complex ("A_B" in the resource) is as expressed as its least
    expressed subunit (the CellPhoneDB / LIANA convention). Labels are any spot-level column: cell
    types, spatial domains, the dominant deconvolved type.

    method "spatial": the score of (source, target, ligand, receptor) is the mean of
    ligand(i) * receptor(j) over the ordered pairs of adjacent spots (i, j) with i labelled source
    and j labelled target, adjacency being the ``n_neighbors``-nearest-spot graph (six: the Visium
    ring). With ``include_self`` (default) each spot also pairs with itself: a Visium spot holds
    several cells, so signalling within a spot is as plausible as between neighbours; this only adds
    to source == target scores. Label pairs never adjacent have no score and are left out, and so are
    those adjacent at fewer than ``min_pairs`` ordered spot pairs: a few spots where two annotated
    regions happen to touch would otherwise fill the top of the ranking with noisy means.
    method "nonspatial" (baseline, no coordinates needed): CellPhoneDB's statistic with a product,
    mean ligand in the source label x mean receptor in the target label (a complex: its least
    expressed subunit's mean). A product rather than LIANA's "lr_means" (the mean of the two) puts
    it on the spatial score's scale (equal when expression does not depend on position) and keeps it
    at zero when either side is absent.

    Both are tested against ``n_perms`` shuffles of the labels across the spots (positions and
    expression kept): pvalue = (1 + shuffles scoring at least as high) / (1 + shuffles), counting for
    the spatial score only shuffles in which the label pair is adjacent; fdr is Benjamini-Hochberg
    over the returned table. ``n_perms=0`` gives scores without p-values. As positions are kept, the
    spatial test asks whether the adjacent spots of these two labels carry the pair more than
    adjacent spots of any labels do: a pair specific to both labels stays significant even where
    they barely touch, but only contact gives it a high score (and the top rank).

    resource: "auto" (LIANA's human "consensus" or "mouseconsensus", whichever covers more of the
    data's genes), any LIANA resource name, or a data frame with "ligand" and "receptor" columns of
    the data's gene names. Pairs with a gene absent from the data are dropped (the number kept is
    reported and recorded). As LIANA does by default, a row is kept only when the ligand (every
    subunit) is detected in at least ``expr_prop`` of the source label's spots and the receptor in
    ``expr_prop`` of the target's: scores resting on a handful of spots are noise, and the same
    filter keeps results comparable with LIANA's; 0 keeps every row. Labels with fewer than
    ``min_cells`` spots are left out with a warning (their spots stay in the graph and shuffles).

    Returns the table, sorted by pvalue then descending score: source, target, ligand, receptor,
    score, pvalue, fdr, n_pairs (adjacent ordered spot pairs for "spatial"; source spots x target
    spots for "nonspatial"). Writes ``adata.uns[key_added]``: the record (method, params with the
    resource, its pairs and the pairs kept, seconds, versions) and the table under "table".
    """
    return _runner.run("interactions", locals())


register_task(Task("interactions", interactions, key=lambda call, entry: call.key_added,
                   record_at=lambda call, entry, fit: (call.adata, call.key_added), prepare=_prepare,
                   not_recorded=("adata",)))


def plot_interactions(table: pd.DataFrame, path: str, *, top: int = 20, title: str | None = None) -> str:
    """Dot plot of an interactions table; PNG at ``path``. Columns: the ligand -> receptor pairs of
    the ``top`` first rows; rows: their source -> target label pairs; every table entry in that grid
    is a dot, sized by -log10 pvalue and coloured by score."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = pd.DataFrame(table)
    missing = [c for c in ("source", "target", "ligand", "receptor", "score", "pvalue") if c not in table.columns]
    if missing:
        raise ValueError(f"isthmus: plot_interactions needs an interactions table; it lacks {', '.join(missing)}.")
    if table.empty:
        raise ValueError("isthmus: the interactions table is empty: nothing to plot (lower expr_prop?).")
    lr = (table["ligand"].astype(str) + " -> " + table["receptor"].astype(str)).to_numpy()
    st = (table["source"].astype(str) + " -> " + table["target"].astype(str)).to_numpy()
    head = slice(0, max(1, int(top)))
    columns, rows = list(pd.unique(lr[head])), list(pd.unique(st[head]))
    inside = np.isin(lr, columns) & np.isin(st, rows)
    x = pd.Index(columns).get_indexer(lr[inside])
    y = pd.Index(rows).get_indexer(st[inside])
    p = table["pvalue"].to_numpy(dtype=float)[inside]
    strength = -np.log10(np.where(np.isfinite(p), p, 1.0))
    biggest = max(float(strength.max()), 1e-9)
    sizes = 20 + 180 * strength / biggest

    fig, ax = plt.subplots(figsize=(0.42 * len(columns) + 3.5, 0.32 * len(rows) + 2.2))
    dots = ax.scatter(x, y, s=sizes, c=table["score"].to_numpy(dtype=float)[inside], cmap="viridis",
                      edgecolors="black", linewidths=0.3)
    ax.set_xticks(range(len(columns)), columns, rotation=90, fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.set_xlim(-0.7, len(columns) - 0.3)
    ax.set_ylim(len(rows) - 0.3, -0.7)
    ax.grid(alpha=0.25)
    fig.colorbar(dots, ax=ax, label="score", shrink=0.6)
    if np.isfinite(p).any():
        marks = sorted({round(v, 1) for v in (biggest / 3, 2 * biggest / 3, biggest) if v > 0})
        handles = [ax.scatter([], [], s=20 + 180 * v / biggest, c="grey", edgecolors="black", linewidths=0.3)
                   for v in marks]
        ax.legend(handles, [f"{v:g}" for v in marks], title="-log10 p", loc="upper left", bbox_to_anchor=(1.25, 1),
                  frameon=False, fontsize=7, title_fontsize=8)
    ax.set_xlabel("ligand -> receptor")
    ax.set_ylabel("source -> target")
    ax.set_title(title or "isthmus: ligand-receptor interactions")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
