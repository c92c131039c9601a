"""RNA velocity: veloVI and scVelo on the bundled pancreas cells (a subset, few epochs), bad input,
and the benchmark scores on cases whose answer is known."""

import os

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from isthmus import tl
from isthmus.tl import _velocity

PANCREAS = [("Ductal", "Ngn3 low EP"), ("Ngn3 low EP", "Ngn3 high EP"), ("Ngn3 high EP", "Pre-endocrine"),
            ("Pre-endocrine", ["Alpha", "Beta", "Delta", "Epsilon"])]


@pytest.fixture(scope="module")
def pancreas(extdata):
    return ad.read_h5ad(extdata / "pancreas_velocity_739_top2000.h5ad")


@pytest.fixture()
def small(pancreas):
    """Every other cell, the first 600 genes: enough for the models, quick to train."""
    return pancreas[::2, :600].copy()


def _dense(m):
    return m.toarray() if sparse.issparse(m) else np.asarray(m)


def test_velovi_writes_velocity_time_uncertainty_and_embedding(small, tmp_path):
    counts = {k: _dense(v).copy() for k, v in small.layers.items()}
    out = tl.velocity(small, method="velovi", n_top_genes=None, max_epochs=20, n_samples=5, random_state=3,
                      model_dir=str(tmp_path / "velovi"), verbose=False)
    n, genes = small.n_obs, out["genes"]
    assert 10 < len(genes) < small.n_vars  # veloVI keeps the genes with a positive steady-state fit
    layer = small.layers["velocity"]
    assert layer.shape == small.shape
    fitted = small.var_names.isin(genes)
    assert np.array_equal(small.var["velocity_genes"].to_numpy(), fitted)
    assert np.isfinite(layer[:, fitted]).all() and np.isnan(layer[:, ~fitted]).all()
    np.testing.assert_array_equal(layer[:, small.var_names.get_indexer(genes)], out["velocity"])
    time_ = small.obs["latent_time"].to_numpy()
    assert time_.shape == (n,) and time_.min() >= 0 and time_.max() <= 1 and time_.std() > 0.05
    assert (small.obs["velocity_uncertainty"] >= 0).all() and small.obs["velocity_uncertainty"].std() > 0
    assert np.isfinite(small.obs["velocity_confidence"]).all()
    assert small.uns["velocity_graph"].shape == (n, n) and sparse.issparse(small.uns["velocity_graph"])
    assert small.obsm["X_umap"].shape == (n, 2) and small.obsm["velocity_umap"].shape == (n, 2)
    record = small.uns["velocity"]
    assert record["method"] == "velovi" and record["params"]["n_genes_fitted"] == len(genes)
    assert 0 < record["params"]["epochs_trained"] <= 20
    assert record["model_dir"] == str(tmp_path / "velovi") and os.path.exists(tmp_path / "velovi" / "model.pt")
    # the counts are the user's own, untouched
    for k, v in counts.items():
        np.testing.assert_array_equal(_dense(small.layers[k]), v)


def test_velovi_is_repeatable_with_a_seed(pancreas):
    runs = []
    for _ in range(2):
        data = pancreas[::3, :400].copy()
        runs.append(tl.velocity(data, method="velovi", n_top_genes=None, max_epochs=10, n_samples=3, random_state=7,
                                verbose=False))
    assert runs[0]["genes"] == runs[1]["genes"]
    for key in ("velocity", "latent_time", "uncertainty", "velocity_embedding", "embedding"):
        np.testing.assert_allclose(runs[0][key], runs[1][key], rtol=1e-5, atol=1e-6, err_msg=key)


def test_scvelo_stochastic_on_the_users_embedding_under_its_own_key(small):
    user_umap = np.asarray(small.obsm["X_pca"][:, :2]).copy()
    small.obsm["X_umap"] = user_umap.copy()
    out = tl.velocity(small, method="scvelo", mode="stochastic", n_top_genes=None, key_added="scv", verbose=False)
    np.testing.assert_array_equal(small.obsm["X_umap"], user_umap)  # the user's embedding is used, not replaced
    assert not out["embedding_computed"]
    assert small.layers["scv"].shape == small.shape and "velocity" not in small.layers
    assert small.obsm["scv_umap"].shape == (small.n_obs, 2)
    assert {"scv_latent_time", "scv_uncertainty", "scv_confidence"} <= set(small.obs)
    assert {"scv_graph", "scv_graph_neg", "scv_params", "scv"} <= set(small.uns)
    np.testing.assert_allclose(small.obs["scv_uncertainty"], 1 - small.obs["scv_confidence"])
    assert small.uns["scv"]["params"]["latent_time"] == "velocity_pseudotime"
    # velocity on the ground truth's direction: the progenitors move towards the endocrine cells
    scores = tl.velocity_scores(small, cluster_key="clusters", transitions=PANCREAS, vkey="scv")
    cbdir = scores.set_index(["metric", "group"])["value"]
    assert cbdir["CBDir", "Ngn3 high EP -> Pre-endocrine"] > 0.3


def test_scvelo_dynamical_gives_a_latent_time(pancreas):
    data = pancreas[::2, :80].copy()
    out = tl.velocity(data, method="scvelo", mode="dynamical", n_top_genes=None, basis="pca", verbose=False)
    assert data.obsm["X_pca"].shape[1] == 50  # the user's PCA is used (its first two components)
    assert data.obsm["velocity_pca"].shape == (data.n_obs, 2)
    assert data.uns["velocity"]["params"]["latent_time"] == "latent_time"
    assert data.uns["velocity"]["params"]["mode"] == "dynamical"
    assert 0 < len(out["genes"]) <= 80 and np.isfinite(out["velocity"]).all()
    assert data.obs["latent_time"].between(0, 1).all()


def test_spliced_and_unspliced_from_two_objects(pancreas):
    s = ad.AnnData(X=pancreas.layers["spliced"][:50, :30].copy(), obs=pancreas.obs.iloc[:50].copy(),
                   var=pd.DataFrame(index=pancreas.var_names[:30]))
    u = ad.AnnData(X=pancreas.layers["unspliced"][:50, :30].copy(), obs=pd.DataFrame(index=s.obs_names),
                   var=pd.DataFrame(index=s.var_names))
    shuffled = u[::-1, ::-1].copy()
    joined = _velocity.spliced_unspliced(s, shuffled)
    np.testing.assert_array_equal(_dense(joined.layers["unspliced"]), _dense(u.X))
    np.testing.assert_array_equal(_dense(joined.layers["spliced"]), _dense(s.X))
    with pytest.raises(ValueError, match=r"spliced counts are 50 cells x 30 genes but the unspliced counts are "
                                         r"50 cells x 29 genes"):
        _velocity.spliced_unspliced(s, u[:, :29].copy())
    other = u.copy()
    other.var_names = [f"g{i}" for i in range(30)]
    with pytest.raises(ValueError, match="different genes: 30 genes of the spliced"):
        _velocity.spliced_unspliced(s, other)


def test_bad_input_is_named_and_a_failed_call_changes_nothing(small):
    with pytest.raises(ValueError, match="unknown method 'velocyto'"):
        tl.velocity(small, method="velocyto")
    with pytest.raises(ValueError, match="layer 'ambiguous' is not in the data"):
        tl.velocity(small, unspliced_layer="ambiguous")
    with pytest.raises(ValueError, match="no embedding obsm\\['X_tsne'\\]"):
        tl.velocity(small, basis="tsne")
    with pytest.raises(ValueError, match="takes no model arguments"):
        tl.velocity(small, method="scvelo", n_latent=5)
    halved = small.copy()
    halved.layers["unspliced"] = _dense(halved.layers["unspliced"]) * 0.5
    with pytest.raises(ValueError, match="non-integer"):
        tl.velocity(halved)
    negative = small.copy()
    values = _dense(negative.layers["spliced"]).copy()
    values[0, 0] = -1
    negative.layers["spliced"] = values
    with pytest.raises(ValueError, match="negative"):
        tl.velocity(negative)
    empty = small.copy()
    values = _dense(empty.layers["spliced"]).copy()
    values[[3, 5]] = 0
    empty.layers["spliced"] = values
    with pytest.raises(ValueError, match="2 cells have no spliced counts"):
        tl.velocity(empty)
    # a failure after the preprocessing started (no gene passes the count filter) leaves no trace
    before = small.copy()
    with pytest.raises(ValueError, match="genes have at least 100000 counts"):
        tl.velocity(small, method="scvelo", mode="stochastic", min_shared_counts=100000, verbose=False)
    assert list(small.layers) == list(before.layers) and list(small.obs) == list(before.obs)
    assert list(small.obsm) == list(before.obsm) and list(small.uns) == list(before.uns)
    assert list(small.var) == list(before.var)


# ---- scores on known answers ----------------------------------------------------------------


def _line(n=200, seed=0):
    """Cells on a line: cluster A on [0, 1), B on [1, 2); A -> B is the direction of +x."""
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(0, 2, n))
    y = rng.normal(0, 0.001, n)  # a thin band: the displacement to a B neighbour is along +x
    data = ad.AnnData(obs=pd.DataFrame({"cluster": np.where(x < 1, "A", "B")}, index=[f"c{i}" for i in range(n)]))
    data.obsm["X_umap"] = np.c_[x, y]
    genes = np.tile(rng.normal(size=40), (n, 1)) + rng.normal(0, 0.01, (n, 40))  # one direction in gene space
    return data, genes


def test_cbdir_is_one_along_the_transition_and_minus_one_against_it():
    data, genes = _line()
    data.obsm["forward_umap"] = np.tile([1.0, 0.0], (data.n_obs, 1))
    data.obsm["backward_umap"] = -data.obsm["forward_umap"]
    data.obsm["random_umap"] = np.random.default_rng(1).normal(size=(data.n_obs, 2))
    scores = tl.velocity_scores(data, cluster_key="cluster", transitions=["A -> B"],
                                vkey=["forward", "backward", "random"], n_neighbors=10, coherence="embedding")
    cbdir = scores[scores.metric == "CBDir"].set_index(["vkey", "group"])
    assert cbdir.loc[("forward", "A -> B"), "value"] > 0.95
    assert cbdir.loc[("backward", "A -> B"), "value"] < -0.95
    assert abs(cbdir.loc[("random", "A -> B"), "value"]) < 0.5
    assert cbdir.loc[("forward", "A -> B"), "n_cells"] < (data.obs["cluster"] == "A").sum()  # only cells at the border
    assert cbdir.loc[("forward", "mean"), "value"] == cbdir.loc[("forward", "A -> B"), "value"]


def test_iccoh_is_one_for_parallel_velocities_and_near_zero_for_random_ones():
    data, genes = _line()
    data.obsm["same_umap"] = np.tile([1.0, 0.0], (data.n_obs, 1))
    data.obsm["noise_umap"] = np.random.default_rng(2).normal(size=(data.n_obs, 2))
    data = ad.AnnData(X=np.zeros((data.n_obs, 40)), obs=data.obs, obsm=dict(data.obsm))
    data.layers["same"] = genes
    data.layers["noise"] = np.random.default_rng(3).normal(size=(data.n_obs, 40))
    scores = tl.velocity_scores(data, cluster_key="cluster", transitions={"A": "B"}, vkey=["same", "noise"],
                                n_neighbors=10)
    iccoh = scores[scores.metric == "ICCoh"].set_index(["vkey", "group"])["value"]
    assert iccoh["same", "A"] > 0.99 and iccoh["same", "B"] > 0.99 and iccoh["same", "mean"] > 0.99
    assert abs(iccoh["noise", "mean"]) < 0.1


def test_scores_refuse_unknown_clusters():
    data, _ = _line()
    data.obsm["velocity_umap"] = np.ones((data.n_obs, 2))
    with pytest.raises(ValueError, match="not in obs\\['cluster'\\]: C"):
        tl.velocity_scores(data, cluster_key="cluster", transitions=[("A", "C")], coherence="embedding")


def test_plot_velocity_writes_a_png_and_leaves_the_data_alone(tmp_path):
    data, _ = _line()
    data.obsm["velocity_umap"] = np.tile([1.0, 0.0], (data.n_obs, 1))
    uns_before = set(data.uns)
    path = tl.plot_velocity(data, str(tmp_path / "stream.png"), color="cluster", title="line")
    assert os.path.getsize(path) > 5000
    assert set(data.uns) == uns_before
