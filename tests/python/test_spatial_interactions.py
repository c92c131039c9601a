"""Ligand-receptor interactions on the bundled real Visium data: the vectorised scores and
permutation p-values against a direct loop, a signal planted into real DLPFC counts (found by the
spatial score only where ligand and receptor spots touch), resources, seeds, records and refusals."""

import functools

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from isthmus.tl import _classical, _interactions
from isthmus.tl._interactions import interactions, plot_interactions

COLUMNS = ["source", "target", "ligand", "receptor", "score", "pvalue", "fdr", "n_pairs"]


def cluster_labels(adata, n_clusters=6):
    """Deterministic spot labels for data that ship without any: spectral clustering of the kNN
    graph of the standard PCA (six clusters of 19-109 spots on the hippocampus slice; k-means and
    Ward isolate a single outlier spot; Leiden needs scanpy, slow to import for a test)."""
    from sklearn.cluster import SpectralClustering

    pcs = _classical.ScaledPCA(10, random_state=0).fit_transform(_classical.log_normalise(adata.X))
    clusters = SpectralClustering(n_clusters, affinity="nearest_neighbors", n_neighbors=15,
                                  random_state=0).fit_predict(pcs)
    return pd.Categorical([f"c{k}" for k in clusters])


@pytest.fixture(scope="module")
def hippocampus_data(extdata):
    adata = ad.read_h5ad(extdata / "hippocampus_spatial_visium.h5ad")
    adata.layers["counts"] = adata.X.copy()
    adata.obs["cluster"] = cluster_labels(adata)
    return adata


@pytest.fixture()
def hippocampus(hippocampus_data):
    return hippocampus_data.copy()


@pytest.fixture(scope="module")
def dlpfc_data(extdata):
    adata = ad.read_h5ad(extdata / "dlpfc_151673_visium_top1000.h5ad")
    # the file stores the unannotated spots' missing layer as the string "nan"
    layer = adata.obs["layer"].astype(str)
    adata.obs["layer"] = pd.Categorical(layer.where(layer != "nan"))
    return adata


@pytest.fixture()
def dlpfc(dlpfc_data):
    return dlpfc_data[dlpfc_data.obs["layer"].notna().to_numpy()].copy()


# ---- the vectorised statistics against a direct computation --------------------------------


def direct(adata, labels_key, resource, method, n_perms, random_state, n_neighbors=6, expr_prop=0.1,
           min_pairs=10):
    """The documented statistics, computed spot by spot and shuffle by shuffle."""
    from sklearn.neighbors import NearestNeighbors

    counts = np.asarray(adata.layers["counts"].todense(), dtype=float)
    lognorm = pd.DataFrame(np.log1p(counts / counts.sum(1, keepdims=True) * 1e4), columns=adata.var_names)
    labels = adata.obs[labels_key].astype(str).to_numpy()
    xy = np.asarray(adata.obsm["spatial"], dtype=float)
    knn = NearestNeighbors(n_neighbors=n_neighbors + 1).fit(xy).kneighbors(xy, return_distance=False)[:, 1:]
    edges = {(i, int(j)) for i in range(len(xy)) for j in knn[i]}
    edges |= {(j, i) for i, j in edges} | {(i, i) for i in range(len(xy))}  # symmetric, with the spot itself
    src, dst = np.array(sorted(edges)).T
    rng = np.random.default_rng(random_state)
    shuffles = [rng.permutation(labels) for _ in range(n_perms)]

    @functools.lru_cache(maxsize=None)
    def spot_level(name):
        return lognorm[name.split("_")].min(axis=1).to_numpy()

    def label_mean(name, lab, a):
        return min(lognorm[g].to_numpy()[lab == a].mean() for g in name.split("_"))

    def score(lab, a, b, ligand, receptor):
        if method == "nonspatial":
            return label_mean(ligand, lab, a) * label_mean(receptor, lab, b)
        pairs = (lab[src] == a) & (lab[dst] == b)
        if not pairs.any():
            return np.nan
        if lab is labels and pairs.sum() < min_pairs:  # label pairs that barely touch are left out
            return np.nan
        return float(np.mean(spot_level(ligand)[src[pairs]] * spot_level(receptor)[dst[pairs]]))

    rows = []
    for ligand, receptor in resource[["ligand", "receptor"]].drop_duplicates().itertuples(index=False):
        if not set(ligand.split("_") + receptor.split("_")) <= set(adata.var_names):
            continue
        for a in sorted(set(labels)):
            for b in sorted(set(labels)):
                share_l = min((lognorm[g].to_numpy()[labels == a] > 0).mean() for g in ligand.split("_"))
                share_r = min((lognorm[g].to_numpy()[labels == b] > 0).mean() for g in receptor.split("_"))
                observed = score(labels, a, b, ligand, receptor)
                if share_l < expr_prop or share_r < expr_prop or np.isnan(observed):
                    continue
                null = np.array([score(lab, a, b, ligand, receptor) for lab in shuffles])
                valid = ~np.isnan(null)
                exceed = (null[valid] >= observed - 1e-5 * abs(observed)).sum()
                rows.append({"source": a, "target": b, "ligand": ligand, "receptor": receptor, "score": observed,
                             "pvalue": (1 + exceed) / (1 + valid.sum())})
    return pd.DataFrame(rows)


CUSTOM = pd.DataFrame({"ligand": ["App", "Apoe", "Cck", "App"],
                       "receptor": ["Aplp1", "Atp1a2_Atp1b1", "Notagene", "Aplp1"]})


@pytest.mark.parametrize("method", ["spatial", "nonspatial"])
def test_scores_and_pvalues_match_a_direct_computation(hippocampus, method):
    table = interactions(hippocampus, labels_key="cluster", method=method, resource=CUSTOM, n_perms=40,
                         random_state=5, verbose=False)
    expected = direct(hippocampus, "cluster", CUSTOM, method, n_perms=40, random_state=5)
    assert list(table.columns) == COLUMNS
    assert "Atp1a2_Atp1b1" in set(table["receptor"])  # the complex made it through
    key = ["source", "target", "ligand", "receptor"]
    merged = table.merge(expected, on=key, how="outer", suffixes=("", "_direct"), indicator=True)
    assert (merged["_merge"] == "both").all(), merged[merged["_merge"] != "both"]
    np.testing.assert_allclose(merged["score"], merged["score_direct"], rtol=1e-5)
    np.testing.assert_allclose(merged["pvalue"], merged["pvalue_direct"])
    record = hippocampus.uns["interactions"]
    # "Notagene" is not a gene of the data and the duplicated row counts once
    assert record["params"]["resource"] == "custom" and record["params"]["resource_pairs"] == 3
    assert record["params"]["pairs_kept"] == 2
    assert record["method"] == method


# ---- a planted signal in real counts --------------------------------------------------------


def planted(dlpfc, seed=0):
    """Real DLPFC counts, layout and layers; four genes overwritten: ligands L1 and L2 in every
    Layer_2 spot, receptor R1 in the Layer_3 spots touching Layer_2, receptor R2 in as many Layer_3
    spots far (>= 3 steps) from it. Both receptors are equally specific to Layer_3: only R1 is
    where the ligand is."""
    from isthmus.tl import _spatial

    rng = np.random.default_rng(seed)
    counts = sparse.csr_matrix(dlpfc.X, dtype=np.float32).toarray()
    detected = (counts > 0).mean(axis=0)
    l1, l2, r1, r2 = np.argsort(detected)[:4]  # the least detected genes of the slice
    graph = _spatial.neighbour_graph(_spatial.coordinates(dlpfc), 6)
    layer = dlpfc.obs["layer"].astype(str).to_numpy()
    in2, in3 = layer == "Layer_2", layer == "Layer_3"
    near = in2.astype(float)
    for _ in range(2):  # spots within two steps of Layer_2
        near = np.maximum(near, graph @ near)
    touching = in3 & (graph @ in2.astype(float) > 0)
    far = rng.choice(np.flatnonzero(in3 & (near == 0) & ~touching), size=touching.sum(), replace=False)
    counts[:, [l1, l2, r1, r2]] = 0
    counts[in2, l1] = rng.poisson(6, in2.sum()) + 1
    counts[in2, l2] = rng.poisson(6, in2.sum()) + 1
    counts[touching, r1] = rng.poisson(6, touching.sum()) + 1
    counts[far, r2] = rng.poisson(6, far.size) + 1
    out = dlpfc.copy()
    out.layers["counts"] = sparse.csr_matrix(counts)
    genes = dlpfc.var_names
    # the planted pairs among 60 pairs of real genes drawn at random
    decoys = rng.choice(np.setdiff1d(np.arange(dlpfc.n_vars), [l1, l2, r1, r2]), size=(60, 2))
    resource = pd.DataFrame({"ligand": [genes[l1], genes[l2], *genes[decoys[:, 0]]],
                             "receptor": [genes[r1], genes[r2], *genes[decoys[:, 1]]]})
    return out, (genes[l1], genes[r1]), (genes[l2], genes[r2]), resource


def row(table, source, target, pair):
    hit = table[(table["source"] == source) & (table["target"] == target) & (table["ligand"] == pair[0])
                & (table["receptor"] == pair[1])]
    return hit.iloc[0] if len(hit) else None


def test_planted_signal_needs_contact_for_the_spatial_score(dlpfc):
    data, touching, far, resource = planted(dlpfc)
    spatial = interactions(data, labels_key="layer", resource=resource, n_perms=200, verbose=False)
    nonspatial = interactions(data, labels_key="layer", method="nonspatial", resource=resource, n_perms=200,
                              verbose=False)
    # spatial: the planted contact comes first, with the smallest p-value 200 shuffles can give
    first = spatial.iloc[0]
    assert (first["source"], first["target"], first["ligand"], first["receptor"]) == ("Layer_2", "Layer_3", *touching)
    assert first["pvalue"] == pytest.approx(1 / 201) and first["fdr"] < 0.05
    # the receptor planted away from the ligand's spots: no spatial interaction
    apart = row(spatial, "Layer_2", "Layer_3", far)
    assert apart is None or (apart["pvalue"] > 0.05 and apart["score"] < first["score"] / 20)
    # the baseline cannot tell the two apart: both significant, with similar scores
    near_ns, far_ns = row(nonspatial, "Layer_2", "Layer_3", touching), row(nonspatial, "Layer_2", "Layer_3", far)
    assert near_ns["pvalue"] < 0.01 and far_ns["pvalue"] < 0.01
    assert 0.5 < near_ns["score"] / far_ns["score"] < 2


def test_planted_signal_is_lost_when_positions_or_labels_are_shuffled(dlpfc):
    data, touching, far, resource = planted(dlpfc)
    observed = row(interactions(data, labels_key="layer", resource=resource, n_perms=50, verbose=False),
                   "Layer_2", "Layer_3", touching)
    rng = np.random.default_rng(1)
    moved = data.copy()
    moved.obsm["spatial"] = data.obsm["spatial"][rng.permutation(data.n_obs)]
    table = interactions(moved, labels_key="layer", resource=resource, n_perms=50, verbose=False)
    near, apart = row(table, "Layer_2", "Layer_3", touching), row(table, "Layer_2", "Layer_3", far)
    # with positions scrambled the contact is gone: the two planted receptors score alike
    assert near["score"] < observed["score"] / 3
    assert 0.5 < near["score"] / apart["score"] < 2
    relabelled = data.copy()
    relabelled.obs["layer"] = data.obs["layer"].to_numpy()[rng.permutation(data.n_obs)]
    # with the labels scrambled there is nothing to find (expr_prop=0 keeps every row to look at):
    # the planted pair's p-values over the 49 label pairs are those of a null
    table = interactions(relabelled, labels_key="layer", resource=resource, n_perms=200, expr_prop=0,
                         verbose=False)
    assert row(table, "Layer_2", "Layer_3", touching)["pvalue"] > 0.05
    planted_rows = table[(table["ligand"] == touching[0]) & (table["receptor"] == touching[1])]
    assert len(planted_rows) == 49 and (planted_rows["pvalue"] < 0.05).mean() < 0.15
    assert 0.3 < planted_rows["pvalue"].mean() < 0.7


# ---- resources -------------------------------------------------------------------------------


def test_auto_resource_picks_mouse_for_mouse_symbols(hippocampus, capsys):
    table = interactions(hippocampus, labels_key="cluster", n_perms=50)
    said = capsys.readouterr().out
    assert "'mouseconsensus'" in said and "consensus covers 0" in said
    record = hippocampus.uns["interactions"]["params"]
    assert record["resource"] == "mouseconsensus" and record["pairs_kept"] == 2
    assert set(zip(table["ligand"], table["receptor"])) <= {("App", "Rpsa"), ("App", "Aplp1")}
    assert table["pvalue"].between(1 / 51, 1).all() and (table["fdr"] >= table["pvalue"] - 1e-12).all()
    assert table["pvalue"].is_monotonic_increasing
    assert (table["n_pairs"] >= 10).all()  # min_pairs
    touching = interactions(hippocampus, labels_key="cluster", n_perms=50, min_pairs=1, verbose=False)
    assert len(touching) > len(table) and (touching["n_pairs"] < 10).any()


def test_ensembl_ids_are_refused_with_the_reason(dlpfc):
    with pytest.raises(ValueError, match="none of the .* pairs of resource 'consensus'.*Ensembl IDs"):
        interactions(dlpfc, labels_key="layer", layer=None, n_perms=10, verbose=False)


def test_human_resource_on_mouse_genes_names_the_species(hippocampus):
    with pytest.raises(ValueError, match="another species.*mouseconsensus"):
        interactions(hippocampus, labels_key="cluster", resource="consensus", n_perms=10, verbose=False)


def test_resource_names_and_frames_are_checked(hippocampus):
    assert {"consensus", "mouseconsensus", "cellphonedb"} <= set(_interactions.resource_names())
    with pytest.raises(ValueError, match="unknown ligand-receptor resource 'nope'.*cellphonedb"):
        interactions(hippocampus, labels_key="cluster", resource="nope", verbose=False)
    with pytest.raises(ValueError, match="needs 'ligand' and 'receptor' columns; it lacks receptor"):
        interactions(hippocampus, labels_key="cluster", resource=pd.DataFrame({"ligand": ["App"]}), verbose=False)


def test_missing_liana_says_what_to_do(hippocampus, monkeypatch):
    monkeypatch.setattr(_interactions.importlib.util, "find_spec", lambda name: None)
    _interactions._liana_resources.cache_clear()
    try:
        with pytest.raises(ValueError, match="pip install liana.*or pass resource= a data frame"):
            interactions(hippocampus, labels_key="cluster", verbose=False)
    finally:
        monkeypatch.undo()
        _interactions._liana_resources.cache_clear()
    # a resource of one's own needs no liana
    monkeypatch.setattr(_interactions.importlib.util, "find_spec", lambda name: None)
    assert len(interactions(hippocampus, labels_key="cluster", resource=CUSTOM, n_perms=5, verbose=False))


# ---- seeds, records, plots -------------------------------------------------------------------


def test_fixed_seed_repeats_and_the_record_survives_h5ad(hippocampus, tmp_path):
    first = interactions(hippocampus, labels_key="cluster", resource=CUSTOM, n_perms=100, random_state=2,
                         key_added="lr", verbose=False)
    again = interactions(hippocampus.copy(), labels_key="cluster", resource=CUSTOM, n_perms=100, random_state=2,
                         verbose=False)
    pd.testing.assert_frame_equal(first, again)
    other = interactions(hippocampus.copy(), labels_key="cluster", resource=CUSTOM, n_perms=100, random_state=3,
                         verbose=False)
    np.testing.assert_allclose(other["score"].sort_values(), first["score"].sort_values())
    path = tmp_path / "lr.h5ad"
    hippocampus.write_h5ad(path)
    back = ad.read_h5ad(path).uns["lr"]
    assert back["method"] == "spatial" and back["params"]["n_neighbors"] == 6 and back["seconds"] >= 0
    pd.testing.assert_frame_equal(pd.DataFrame(back["table"])[COLUMNS].reset_index(drop=True), first,
                                  check_dtype=False)
    png = plot_interactions(back["table"], str(tmp_path / "lr.png"), top=10, title="hippocampus")
    with open(png, "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"


def test_no_permutations_gives_scores_only(hippocampus):
    with pytest.warns(UserWarning, match="n_perms=0: scores only, without p-values"):
        table = interactions(hippocampus, labels_key="cluster", resource=CUSTOM, n_perms=0, verbose=False)
    assert table["pvalue"].isna().all() and table["score"].is_monotonic_decreasing


# ---- refusals ---------------------------------------------------------------------------------


def test_bad_spatial_input_is_refused(hippocampus):
    kwargs = dict(labels_key="cluster", resource=CUSTOM, n_perms=5, verbose=False)
    moved = hippocampus.copy()
    moved.obsm["spatial"][3] = moved.obsm["spatial"][4]
    with pytest.raises(ValueError, match="share their coordinates"):
        interactions(moved, **kwargs)
    lost = hippocampus.copy()
    lost.obsm["spatial"] = lost.obsm["spatial"].astype(float)
    lost.obsm["spatial"][0, 0] = np.nan
    with pytest.raises(ValueError, match="missing \\(NaN/Inf\\) coordinates"):
        interactions(lost, **kwargs)
    del lost.obsm["spatial"]
    with pytest.raises(ValueError, match="no spatial coordinates"):
        interactions(lost, **kwargs)
    # the baseline needs no positions
    assert len(interactions(lost, method="nonspatial", **kwargs))
    empty = hippocampus.copy()
    counts = empty.layers["counts"].tolil()
    counts[2, :] = 0
    empty.layers["counts"] = counts.tocsr()
    with pytest.raises(ValueError, match="1 spots of the spatial data have no counts"):
        interactions(empty, **kwargs)
    with pytest.raises(ValueError, match="unknown method 'cellphonedb'"):
        interactions(hippocampus, labels_key="cluster", method="cellphonedb")


def test_labels_with_na_are_refused_and_rare_labels_left_out(dlpfc_data, hippocampus):
    with pytest.raises(ValueError, match="spots have no label \\(NA\\) in 'layer'"):
        interactions(dlpfc_data, labels_key="layer", layer=None, verbose=False)
    with pytest.raises(ValueError, match="labels column 'celltype' is not in"):
        interactions(hippocampus, labels_key="celltype", verbose=False)
    labels = hippocampus.obs["cluster"].astype(str).to_numpy()
    labels[:3] = "rare"
    hippocampus.obs["cluster"] = labels
    with pytest.warns(UserWarning, match="fewer than 5 spots are left out.*: rare"):
        table = interactions(hippocampus, labels_key="cluster", resource=CUSTOM, n_perms=20, verbose=False)
    assert "rare" not in set(table["source"]) | set(table["target"])
    assert hippocampus.uns["interactions"]["params"]["labels_left_out"] == "rare"
