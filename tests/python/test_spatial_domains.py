"""Spatial domains on the bundled DLPFC slice (3639 spots x 1000 genes, manual layers)."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import torch
from scipy import sparse
from sklearn.metrics import adjusted_rand_score

from isthmus import tl
from isthmus.models._spatial_graph import _EdgeWeightedSum
from isthmus.tl import _domains, _runner


@pytest.fixture(scope="module")
def dlpfc(extdata):
    adata = ad.read_h5ad(extdata / "dlpfc_151673_visium_top1000.h5ad")
    adata.obs["layer"] = adata.obs["layer"].astype(str).replace("nan", np.nan)
    return adata


def _ari(adata, column):
    known = adata.obs["layer"].notna().to_numpy()
    return adjusted_rand_score(adata.obs["layer"][known], adata.obs[column][known])


def test_space_helps_on_the_cortex_layers(dlpfc):
    """The layers are spatially contiguous: BANKSY must beat plain PCA by a clear margin (0.53 vs
    0.34 measured on these 1000 genes)."""
    adata = dlpfc.copy()
    tl.spatial_domains(adata, method="pca", n_domains=7, layer=None, n_seeds=1, refine_labels=False, verbose=False)
    tl.spatial_domains(adata, method="banksy", n_domains=7, layer=None, n_seeds=1, refine_labels=False,
                       verbose=False)
    assert _ari(adata, "banksy_domain") > _ari(adata, "pca_domain") + 0.08
    scores = tl.domain_scores(adata, truth_key="layer").set_index("domains")
    assert list(scores.index) == ["pca_domain", "banksy_domain"]
    assert scores.loc["pca_domain", "ARI"] == pytest.approx(_ari(adata, "pca_domain"))
    assert scores["n_spots"].eq(adata.obs["layer"].notna().sum()).all()


def test_banksy_old_name_and_its_neighbourhood_terms(dlpfc):
    """"neighbor_pca" (the former lookalike's name) runs BANKSY; lambda_ = 0 leaves space out, so
    the embedding is the PCA of the spots' own z-scored expression (up to the sign of each PC)."""
    adata = dlpfc[:400].copy()
    tl.spatial_domains(adata, method="neighbor_pca", n_domains=3, layer=None, n_seeds=1, verbose=False)
    assert "banksy_domain" in adata.obs and adata.uns["banksy"]["method"] == "banksy"
    assert adata.uns["banksy"]["params"]["k_geom"] == 18 and adata.uns["banksy"]["params"]["lambda_"] == 0.2
    lognorm = _domains._log_hvg(adata.X, 3000)
    xy = adata.obsm["spatial"].astype(float)
    own = _domains._banksy_embedding(lognorm, xy, n_comps=5, k_geom=18, lambda_=0.0, seed=0)
    dense = np.asarray(lognorm.todense(), dtype=np.float64)
    sd = dense.std(axis=0)
    scaled = np.nan_to_num((dense - dense.mean(axis=0)) / np.where(sd > 0, sd, np.nan))
    u, s, _ = np.linalg.svd(scaled - scaled.mean(axis=0), full_matrices=False)
    np.testing.assert_allclose(np.abs(own), np.abs(u[:, :5] * s[:5]), rtol=1e-3, atol=1e-3)
    spatial = _domains._banksy_embedding(lognorm, xy, n_comps=5, k_geom=18, lambda_=0.2, seed=0)
    assert not np.allclose(np.abs(spatial), np.abs(own), atol=1e-2)


def test_banksy_features_follow_the_paper_on_a_grid():
    """On a square grid with one gene stepping from 0 to 1 at x = 10: the neighbourhood mean blurs
    the step, the azimuthal Gabor filter (the expression gradient around a spot) is largest along
    it and 0 where the neighbourhood is uniform; the blocks carry the paper's weights (z-scored,
    then sqrt(1 - lambda), and lambda shared 2:1 between the mean and the filter)."""
    x, y = np.meshgrid(np.arange(20.0), np.arange(20.0))
    xy = np.column_stack([x.ravel(), y.ravel()])
    rng = np.random.default_rng(0)
    step = (xy[:, 0] >= 10).astype(float)
    expression = np.column_stack([step, rng.normal(size=len(xy))])
    real, harmonic = _domains._banksy_kernel(xy, 8, 1)
    np.testing.assert_allclose(np.asarray(real.sum(axis=1)).ravel(), 1.0)
    assert real.nnz == 8 * len(xy) and np.iscomplexobj(harmonic.data)
    features = _domains.banksy_features(expression, xy, k_geom=4, lambda_=0.3)
    own, mean, gabor = features[:, 0], features[:, 2], features[:, 4]  # the step gene in each block
    np.testing.assert_allclose([own.std(), mean.std(), gabor.std()], np.sqrt([0.7, 0.2, 0.1]), rtol=1e-6)
    interior = (xy[:, 1] >= 3) & (xy[:, 1] <= 16)
    at_step, far = interior & np.isin(xy[:, 0], [9, 10]), interior & np.isin(xy[:, 0], [2, 17])
    assert gabor[at_step].min() > gabor[far].max()
    assert np.allclose(gabor[far], gabor[far].min())  # uniform neighbourhood: the filter's floor
    assert mean[xy[:, 0] == 9].mean() > mean[xy[:, 0] == 5].mean()  # the mean sees across the step


def test_graph_model_writes_the_documented_keys_and_repeats(dlpfc):
    adata = dlpfc[:1500].copy()
    before = set(adata.obs) | set(adata.obsm) | set(adata.uns)
    domains = tl.spatial_domains(adata, method="gat", n_domains=5, layer=None, n_seeds=2, max_epochs=15,
                                 verbose=False)
    assert set(adata.obs) | set(adata.obsm) | set(adata.uns) == before | {
        "gat_domain", "gat_agreement", "X_gat", "gat_seed_domains", "gat"}
    assert domains.index.equals(adata.obs_names) and 2 <= domains.nunique() <= 5
    assert adata.obsm["X_gat"].shape == (1500, 30) and adata.obsm["gat_seed_domains"].shape == (1500, 2)
    assert adata.obs["gat_agreement"].between(0.5, 1).all()
    assert len(adata.uns["gat"]["params"]["seed_ari"]) == 2
    again = dlpfc[:1500].copy()
    tl.spatial_domains(again, method="gat", n_domains=5, layer=None, n_seeds=2, max_epochs=15, verbose=False)
    np.testing.assert_array_equal(again.obsm["X_gat"], adata.obsm["X_gat"])
    assert (again.obs["gat_domain"] == adata.obs["gat_domain"]).all()


def test_progress_lines(dlpfc, capsys):
    tl.spatial_domains(dlpfc[:500].copy(), method="gat", n_domains=3, layer=None, n_seeds=1, max_epochs=10)
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("isthmus GAT")]
    assert len(lines) == 10 and "epoch 10/10  loss" in lines[-1]


def test_hand_written_backward_matches_autograd():
    graph = sparse.random(30, 30, density=0.2, format="coo", random_state=1)
    graph.sum_duplicates()
    source, target = torch.as_tensor(graph.col.astype(np.int64)), torch.as_tensor(graph.row.astype(np.int64))
    weights = torch.rand(len(source), dtype=torch.float64, requires_grad=True)
    values = torch.randn(30, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda w, v: _EdgeWeightedSum.apply(w, v, source, target), (weights, values))


def test_consensus_undoes_label_permutations():
    rng = np.random.default_rng(0)
    truth = np.repeat(np.arange(4), 50)
    runs = []
    for seed in range(5):
        noisy = truth.copy()
        flip = rng.choice(truth.size, 15, replace=False)  # each run gets a few spots wrong
        noisy[flip] = rng.integers(0, 4, 15)
        runs.append(rng.permutation(4)[noisy])  # and its own label names
    labels, seed_ari, agreement = _domains.consensus(np.column_stack(runs))
    assert adjusted_rand_score(truth, labels) > max(adjusted_rand_score(truth, r) for r in runs)
    assert seed_ari.shape == (5,) and agreement.shape == truth.shape and agreement.min() >= 0.2


def test_refine_relabels_an_isolated_spot():
    xy = np.array([(x, y) for x in range(5) for y in range(5)], dtype=float)
    graph = tl._spatial.neighbour_graph(xy, 4)
    labels = np.zeros(25, dtype=int)
    labels[12] = 1  # the centre spot, alone among zeros
    labels[:10] = 2  # a band two spots wide stays
    refined = _domains.refine(labels, graph)
    assert refined[12] == 0 and (refined[:10] == 2).all() and (refined[13:] == 0).all()


def test_bad_input_is_refused_and_nothing_written(dlpfc):
    adata = dlpfc[:300].copy()
    keys = (set(adata.obs), set(adata.obsm), set(adata.uns))
    duplicated = adata.copy()
    duplicated.obsm["spatial"][1] = duplicated.obsm["spatial"][0]
    with pytest.raises(ValueError, match="2 spots share their coordinates"):
        tl.spatial_domains(duplicated, method="pca", n_domains=3, layer=None, verbose=False)
    missing = adata.copy()
    missing.obsm["spatial"][3, 0] = np.nan
    with pytest.raises(ValueError, match="1 spots have missing"):
        tl.spatial_domains(missing, method="pca", n_domains=3, layer=None, verbose=False)
    empty = adata.copy()
    counts = empty.X.tolil()
    counts[5, :] = 0
    empty.X = counts.tocsr()
    with pytest.raises(ValueError, match="1 spots of the spatial data have no counts"):
        tl.spatial_domains(empty, method="pca", n_domains=3, layer=None, verbose=False)
    with pytest.raises(ValueError, match="needs n_domains"):
        tl.spatial_domains(adata, method="pca", cluster_method="gmm", layer=None, verbose=False)
    no_space = adata.copy()
    del no_space.obsm["spatial"]
    with pytest.raises(ValueError, match="no spatial coordinates"):
        tl.spatial_domains(no_space, method="gat", n_domains=3, layer=None, verbose=False)
    assert (set(adata.obs), set(adata.obsm), set(adata.uns)) == keys


def test_the_graph_model_trains_on_spatial_tiles_and_embeds_every_spot_exactly():
    """Mini-batch training on spatial subgraphs (tissue-scale slices): tiles cover every spot once,
    and the embedding computed tile by tile with each tile's in-neighbours equals the trained
    model's full-graph embedding."""
    import torch

    from isthmus.models._spatial_graph import _edge_tensors, fit_graph_autoencoder, spatial_tiles

    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 100, (600, 2))
    tiles = spatial_tiles(xy, 150)
    assert len(tiles) == 4 and np.array_equal(np.sort(np.concatenate(tiles)), np.arange(600))
    from sklearn.neighbors import NearestNeighbors

    _, index = NearestNeighbors(n_neighbors=7).fit(xy).kneighbors(xy)  # self + 6 neighbours
    edges = np.vstack([index.ravel(), np.repeat(np.arange(600), 7)])
    features = rng.normal(size=(600, 20)).astype(np.float32)
    latent, model = fit_graph_autoencoder(features, edges, n_hidden=32, n_latent=5, max_epochs=5, tiles=tiles,
                                          verbose=False)
    assert len(model.history_["loss"]) == 5
    source, target = _edge_tensors(edges, 600, "cpu")
    with torch.no_grad():
        whole, _ = model(torch.as_tensor(features), source, target)
    np.testing.assert_allclose(latent, whole.numpy(), rtol=1e-5, atol=1e-5)


def test_spatial_domains_records_how_the_graph_model_trained(dlpfc):
    adata = dlpfc.copy()
    tl.spatial_domains(adata, n_domains=7, layer=None, n_seeds=1, max_epochs=3, batch_size=1000, verbose=False)
    assert adata.uns["gat"]["params"]["graph_tiles"] == 4
    assert adata.obsm["X_gat"].shape == (adata.n_obs, 30)


def _two_slices(adata, seed=0):
    """The slice twice, in one coordinate frame (every position repeated), the second copy with a
    batch effect: half the genes' counts tripled."""
    first, second = adata.copy(), adata.copy()
    tripled = np.where(np.random.default_rng(seed).random(adata.n_vars) < 0.5, 3.0, 1.0)
    second.X = sparse.csr_matrix(second.X.multiply(tripled[None, :]))
    first.obs["slice"], second.obs["slice"] = "a", "b"
    second.obs_names = [f"b_{name}" for name in second.obs_names]
    both = ad.concat([first, second])
    both.obsm["spatial"] = np.vstack([first.obsm["spatial"], second.obsm["spatial"]])
    return both


def test_several_slices_in_one_frame_give_one_labelling(dlpfc):
    """Two copies of the slice in one coordinate frame, one with a batch effect: refused without
    batch_key (the positions collide); with it, one joint model whose domains carry the same label
    in both copies and hold spots of both (without Harmony, PCA's two largest domains were each one
    slice's: 2638 / 0 and 0 / 2619 spots)."""
    both = _two_slices(dlpfc)
    with pytest.raises(ValueError, match="share their coordinates.*name each spot's section with batch_key"):
        tl.spatial_domains(both.copy(), method="pca", n_domains=7, layer=None, n_seeds=1, verbose=False)
    tl.spatial_domains(both, method="pca", n_domains=7, layer=None, n_seeds=1, batch_key="slice", verbose=False)
    labels = both.obs["pca_domain"].to_numpy()
    n = dlpfc.n_obs
    assert not pd.isna(labels).any() and both.obsm["X_pca"].shape == (2 * n, 30)
    assert (labels[:n] == labels[n:]).mean() > 0.9  # the same spot, the same label, in either copy
    shares = pd.crosstab(labels, both.obs["slice"].to_numpy(), normalize="index")["a"]
    assert shares.between(0.3, 0.7).all()
    params = both.uns["pca"]["params"]
    assert params["batch_key"] == "slice" and params["slices"] == {"a": n, "b": n} and params["harmony"] is True
    # one slice named is the plain run
    one = dlpfc[:400].copy()
    one.obs["slice"] = "only"
    tl.spatial_domains(one, method="pca", n_domains=3, layer=None, n_seeds=1, batch_key="slice", verbose=False)
    assert one.uns["pca"]["params"]["harmony"] is False


def test_banksy_and_the_graph_model_stay_inside_each_slice(dlpfc):
    """The neighbour graph, BANKSY's neighbourhoods and the graph model's tiles never join two slices:
    each copy's BANKSY matrix is the one of that copy alone, and the tiles split per slice."""
    from isthmus.models._spatial_graph import spatial_tiles

    both = _two_slices(dlpfc[:600])
    slices = both.obs["slice"].to_numpy()
    xy = both.obsm["spatial"].astype(float)
    graph = tl._spatial.neighbour_graph(xy, 6, slices).tocoo()
    assert graph.nnz > 0 and (slices[graph.row] == slices[graph.col]).all()
    alone = tl._spatial.neighbour_graph(xy[:600], 6)
    assert (graph.tocsr()[:600, :600] != alone).nnz == 0
    tiled = _runner.Call({"adata": both, "batch_size": 200, "slices": slices, "xy": xy})
    tiles = _domains._gat_tiles(tiled)
    assert len(tiles) == 2 * len(spatial_tiles(xy[:600], 200)) and all(len(set(slices[t])) == 1 for t in tiles)
    assert np.array_equal(np.sort(np.concatenate(tiles)), np.arange(1200))
    assert [list(spots) for spots in tl._spatial.each_slice(slices)] == [list(range(600)), list(range(600, 1200))]

    tl.spatial_domains(both, method="gat", n_domains=3, layer=None, n_seeds=1, max_epochs=3, batch_size=300,
                       batch_key="slice", verbose=False)
    assert both.uns["gat"]["params"]["graph_tiles"] == 4 and both.uns["gat"]["params"]["harmony"] is True
    assert both.obsm["X_gat"].shape == (1200, 30) and both.obs["gat_domain"].notna().all()
    call = _runner.Call({"adata": both, "batch_key": "slice", "n_neighbors": 6})
    lognorm = _domains._log_hvg(both.X, 3000, slices)
    one = _domains.banksy_features(lognorm[:600], xy[:600], k_geom=18, lambda_=0.2)
    call.slices, call.xy, call.lognorm, call.n_comps_used, call.lambda_ = slices, xy, lognorm, 5, 0.2
    _domains._banksy(call, 0)
    np.testing.assert_allclose(call.banksy_matrix[:600], one)


def test_a_bad_slice_column_is_named(dlpfc):
    adata = dlpfc[:300].copy()
    with pytest.raises(ValueError, match="batch_key='slyce': no such column"):
        tl.spatial_domains(adata, method="pca", n_domains=3, layer=None, batch_key="slyce", verbose=False)
    adata.obs["slice"] = ["a"] * 295 + ["b"] * 5
    with pytest.raises(ValueError, match="slice 'b' has 5 spots; each slice needs more than n_neighbors=6"):
        tl.spatial_domains(adata, method="pca", n_domains=3, layer=None, batch_key="slice", verbose=False)
    # a batch the R verb set itself (a Seurat object's images): the message says what the user gave
    from isthmus import _r

    with pytest.raises(ValueError, match="isthmus: the object's 2 images: slice 'b' has 5 spots"):
        _r.run("spatial_domains", [adata], {"method": "pca", "n_domains": 3, "layer": None, "batch_key": "slice",
                                             "verbose": False},
               {"set_for_user": {"batch_key": "the object's 2 images"}})
    adata.obs["slice"] = pd.Series(["a", None] * 150, index=adata.obs_names)
    with pytest.raises(ValueError, match="150 spots have no slice"):
        tl.spatial_domains(adata, method="pca", n_domains=3, layer=None, batch_key="slice", verbose=False)
    assert "pca" not in adata.uns


def test_match_domains_names_each_domain_after_its_reference_label(dlpfc):
    """Domains that are the layers under other names get the layers' names back; a domain more than
    there are labels is named as a domain and comes after the labels; spots without a reference
    label are left out."""
    adata = dlpfc.copy()
    layers = adata.obs["layer"]
    codes = {label: str(i) for i, label in enumerate(np.random.default_rng(1).permutation(sorted(layers.dropna().unique())), 1)}
    domains = layers.map(codes).fillna("1").astype(str).to_numpy()
    domains[:40] = "8"  # a domain no layer is left for
    adata.obs["d"] = pd.Categorical(domains, categories=[str(i) for i in range(1, 9)])
    table = tl.match_domains(adata, domain_key="d", reference_key="layer")
    matched = adata.obs["d_matched"]
    assert list(matched.cat.categories) == sorted(codes) + ["domain 8"]
    agree = layers.notna().to_numpy() & (domains != "8")
    assert (matched[agree].astype(str) == layers[agree]).all()
    assert (matched[:40] == "domain 8").all()
    assert table["domain"].tolist() == [codes[label] for label in sorted(codes)] + ["8"]
    assert table["spots"].sum() == adata.n_obs and table["shared"].iloc[-1] == 0


def test_match_domains_with_fewer_domains_than_labels_keeps_every_label_as_a_category(dlpfc):
    """Two layers merged into one domain: the domains take the labels they match, the label left
    over stays an (unused) category in its place, so both columns share categories and colours;
    the reference's own category order is kept; a leftover domain never takes a name that is a label."""
    adata = dlpfc.copy()
    layers = adata.obs["layer"]
    order = ["WM", *sorted(set(layers.dropna()) - {"WM"})]  # a categorical order that is not sorted
    adata.obs["layer"] = pd.Categorical(layers, categories=order)
    merged = layers.replace({"Layer_2": "Layer_3"})  # Layer_3 holds more spots: it keeps the name
    assert (layers == "Layer_3").sum() > (layers == "Layer_2").sum()
    codes = {label: f"c{i}" for i, label in enumerate(sorted(merged.dropna().unique()))}
    adata.obs["d"] = merged.map(codes).fillna("c0").astype(str).to_numpy()
    table = tl.match_domains(adata, domain_key="d", reference_key="layer", key_added="named")
    named = adata.obs["named"]
    assert list(named.cat.categories) == order
    assert "Layer_2" not in set(named) and (named[(layers == "Layer_4").to_numpy()] == "Layer_4").all()
    assert (named[(layers == "Layer_2").to_numpy()] == "Layer_3").all()
    assert table["matched"].tolist() == order
    left = table.set_index("matched").loc["Layer_2"]
    assert left["domain"] is None and left["spots"] == 0 and left["shared"] == 0
    assert table["spots"].sum() == adata.n_obs

    # a leftover domain whose plain name is a reference label gets a name no label has
    adata.obs["reference"] = pd.Categorical(["domain 9"] * 10 + ["x"] * (adata.n_obs - 10))
    adata.obs["d"] = ["1"] * 10 + ["9"] * 5 + ["2"] * (adata.n_obs - 15)
    tl.match_domains(adata, domain_key="d", reference_key="reference")
    assert list(adata.obs["d_matched"].cat.categories) == ["domain 9", "x", "domain 9 (unmatched)"]
    assert (adata.obs["d_matched"][10:15] == "domain 9 (unmatched)").all()
