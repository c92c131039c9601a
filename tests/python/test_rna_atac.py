"""RNA + ATAC: MultiVI (paired and partly paired), the per-modality PCA / LSI baseline and WNN on
the bundled MOp SNARE-seq2 nuclei, and the bio-conservation scores that compare them."""

import mudata as md
import numpy as np
import pandas as pd
import pytest

from isthmus import tl
from isthmus.tl._compare import bio_scores

md.set_options(pull_on_update=False)  # mudata 0.4's behaviour, without its FutureWarning on every copy


@pytest.fixture()
def mop(extdata):
    return md.read_h5mu(extdata / "mop_snareseq2_600cells.h5mu")


def _without_atac_of(mdata, share: float, seed: int = 0):
    """The same nuclei with the ATAC of ``share`` of them removed (partly paired data)."""
    rng = np.random.default_rng(seed)
    dropped = rng.choice(mdata.n_obs, int(share * mdata.n_obs), replace=False)
    keep = np.setdiff1d(np.arange(mdata.n_obs), dropped)
    partial = md.MuData({"rna": mdata.mod["rna"].copy(), "atac": mdata.mod["atac"][keep].copy()})
    partial.obs = partial.obs.join(mdata.obs[["batch", "cell_type"]])
    return partial, mdata.obs_names[dropped]


def test_multivi_on_paired_cells_is_seeded(mop):
    out = tl.rna_atac(mop, batch_key="batch", max_epochs=3, n_latent=6, random_state=2, verbose=False)
    assert out["latent"].shape == (600, 6)
    assert np.array_equal(mop.obsm["X_multivi"], out["latent"])
    record = mop.uns["multivi"]
    assert record["params"]["n_paired"] == 600 and record["params"]["n_rna_only"] == 0
    again = tl.rna_atac(mop.copy(), batch_key="batch", max_epochs=3, n_latent=6, random_state=2, verbose=False)
    np.testing.assert_allclose(again["latent"], out["latent"], rtol=1e-5, atol=1e-5)


def test_multivi_keeps_cells_measured_in_one_modality(mop):
    partial, dropped = _without_atac_of(mop, 0.3)
    assert partial.mod["atac"].n_obs == 420 and partial.n_obs == 600
    out = tl.rna_atac(partial, batch_key="batch", max_epochs=3, verbose=False)
    assert out["latent"].shape == (600, partial.uns["multivi"]["params"]["n_latent"])
    assert np.isfinite(out["latent"]).all()
    params = partial.uns["multivi"]["params"]
    assert (params["n_paired"], params["n_rna_only"], params["n_atac_only"]) == (420, 180, 0)
    # the baselines need both modalities: refused, and the object is left as it was
    before = set(partial.obsm)
    for method in ("pca", "wnn"):
        with pytest.raises(ValueError, match="180 of 600 cells lack one modality"):
            tl.rna_atac(partial, method=method)
    assert set(partial.obsm) == before


def test_per_modality_baseline_and_wnn(mop):
    out = tl.rna_atac(mop, method="pca", n_comps=15)
    assert mop.obsm["X_rna_pca"].shape == (600, 15)
    assert mop.obsm["X_atac_lsi"].shape == (600, 15)  # LSI's first, depth-driven component dropped
    assert np.array_equal(mop.obsm["X_rna_atac_pca"], out["latent"])
    wnn = tl.rna_atac(mop, method="wnn", n_comps=15, n_neighbors=15)
    graph = mop.obsp["wnn_connectivities"]
    assert graph.shape == (600, 600) and graph.nnz > 600 * 5
    weights = mop.obs["wnn_rna_weight"].to_numpy()
    assert np.all((weights >= 0) & (weights <= 1))
    assert mop.uns["wnn"]["method"] == "wnn"
    assert wnn["distances"].shape == (600, 600)


def test_bad_input_is_refused_and_nothing_is_written(mop):
    before = (set(mop.obsm), set(mop.uns), set(mop.obsp))
    with pytest.warns(UserWarning, match="var_names are not unique"):  # mudata's, about the test's own object
        genes_as_atac = md.MuData({"rna": mop.mod["rna"], "atac": mop.mod["rna"].copy()})
    with pytest.raises(ValueError, match="not peak regions"):
        tl.rna_atac(genes_as_atac, method="pca")
    renamed = mop.mod["atac"].copy()
    renamed.obs_names = [f"{n}_atac" for n in renamed.obs_names]
    with pytest.raises(ValueError, match="no cell has counts in both"):
        tl.rna_atac(md.MuData({"rna": mop.mod["rna"], "atac": renamed}), method="multivi", max_epochs=1)
    normalised = mop.copy()
    normalised.mod["atac"].X = normalised.mod["atac"].X * 0.5
    with pytest.raises(ValueError, match="non-integer"):
        tl.rna_atac(normalised, method="pca")
    with_na = mop.copy()
    with_na.obs["batch"] = with_na.obs["batch"].astype(object)
    with_na.obs.iloc[0, with_na.obs.columns.get_loc("batch")] = None
    with pytest.raises(ValueError, match="1 NA values"):
        tl.rna_atac(with_na, method="pca", batch_key="batch")
    with pytest.raises(ValueError, match="unknown method"):
        tl.rna_atac(mop, method="lsi")
    assert (set(mop.obsm), set(mop.uns), set(mop.obsp)) == before


def test_peak_names_in_the_usual_spellings_pass():
    tl._rna_atac.check_peak_names(["chr1-100-200", "chr1:100-200", "chrX_5_90", "GL000194.1-10-20"])
    with pytest.raises(ValueError, match="e.g. 'Snap25'"):
        tl._rna_atac.check_peak_names(["Snap25", "chr1-1-2"])


def test_bio_scores_tell_a_faithful_embedding_from_noise():
    rng = np.random.default_rng(0)
    labels = np.repeat(["a", "b", "c", "d"], 60)
    faithful = np.eye(4)[pd.factorize(labels)[0]] * 10 + rng.normal(size=(240, 4))
    noise = rng.normal(size=(240, 4))
    table = bio_scores(labels, {"faithful": faithful, "noise": noise}).pivot(
        index="method", columns="metric", values="value")
    assert table.loc["faithful", "leiden_ari"] > 0.95
    assert table.loc["noise", "leiden_ari"] < 0.2
    assert table.loc["faithful", "silhouette_label"] > table.loc["noise", "silhouette_label"]
    # a graph given as neighbour indices and distances (Seurat's Neighbor objects) scores the same way
    from sklearn.neighbors import NearestNeighbors

    distances, indices = NearestNeighbors(n_neighbors=15).fit(faithful).kneighbors(faithful)
    graph = bio_scores(labels, {"knn": ("neighbors", indices, distances)}).set_index("metric")["value"]
    assert graph["leiden_ari"] > 0.95 and np.isnan(graph["silhouette_label"])
