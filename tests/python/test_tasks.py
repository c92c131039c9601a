"""Every task function on the bundled real PBMC data (3 chemistries), trained for an epoch or two:
these check outputs, records, seeds and refusals, not quality (bench/ measures that)."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest

import isthmus.tl as tl


@pytest.fixture()
def pbmc(extdata):
    adata = ad.read_h5ad(extdata / "pbmc_3batch_symphony.h5ad")
    adata.obs["batch"] = adata.obs["batch"].astype(str)
    return adata


def split(adata, query_batch="5p"):
    in_query = (adata.obs["batch"] == query_batch).to_numpy()
    return adata[~in_query].copy(), adata[in_query].copy()


def test_scvi_embedding_is_seeded_saved_and_reloads(pbmc, tmp_path):
    model = tl.embed(pbmc, batch_key="batch", n_latent=5, max_epochs=2, random_state=3, model_dir=str(tmp_path),
                     verbose=False)
    latent = pbmc.obsm["X_scvi"]
    assert latent.shape == (pbmc.n_obs, 5) and np.isfinite(latent).all()
    record = pbmc.uns["scvi"]
    assert record["params"]["batch_key"] == "batch" and record["params"]["random_state"] == 3
    assert record["model_dir"] == str(tmp_path) and (tmp_path / "model.pt").exists()
    assert record["versions"]["scvi-tools"]
    again = pbmc.copy()
    tl.embed(again, batch_key="batch", n_latent=5, max_epochs=2, random_state=3, verbose=False)
    np.testing.assert_allclose(again.obsm["X_scvi"], latent, rtol=1e-5, atol=1e-6)
    reloaded = tl.load_model(str(tmp_path), pbmc.copy())
    np.testing.assert_allclose(reloaded.get_latent_representation(), model.get_latent_representation(),
                               rtol=1e-5, atol=1e-6)


def test_classical_embeddings_and_clusters(pbmc):
    assert tl.integrate(pbmc, batch_key="batch", method="pca", n_comps=20) is None
    assert pbmc.obsm["X_pca"].shape == (pbmc.n_obs, 20)
    tl.integrate(pbmc, batch_key="batch", method="harmony", use_rep="X_pca")
    assert pbmc.obsm["X_harmony"].shape == (pbmc.n_obs, 20)
    assert not np.allclose(pbmc.obsm["X_harmony"], pbmc.obsm["X_pca"])
    assert pbmc.uns["harmony"]["params"]["use_rep"] == "X_pca"
    labels = tl.cluster(pbmc, use_rep="X_harmony", resolution=0.5)
    assert pbmc.obs["leiden_harmony"].nunique() > 2 and len(labels) == pbmc.n_obs
    assert "neighbors" not in pbmc.uns  # the user's own neighbours are left alone


def test_scanvi_takes_na_as_unlabelled(pbmc):
    pbmc.obs["cell_type"] = pbmc.obs["cell_type"].astype(object)
    pbmc.obs.loc[pbmc.obs_names[::3], "cell_type"] = np.nan
    with pytest.warns(UserWarning, match="fewer than 3 cells are treated as unlabelled: HSC"):
        tl.integrate(pbmc, batch_key="batch", method="scanvi", labels_key="cell_type", max_epochs=1,
                     scanvi_epochs=1, verbose=False)
    assert pbmc.obsm["X_scanvi"].shape[0] == pbmc.n_obs
    assert pbmc.uns["scanvi"]["params"]["labels_key"] == "cell_type"


def test_bad_input_is_refused_before_training(pbmc):
    lognorm = pbmc.copy()
    lognorm.layers["counts"] = lognorm.layers["counts"].astype(np.float32)
    lognorm.layers["counts"].data = np.log1p(lognorm.layers["counts"].data)
    with pytest.raises(ValueError, match="non-integer"):
        tl.embed(lognorm, max_epochs=1, verbose=False)
    tl.embed(lognorm, max_epochs=1, verbose=False, allow_non_integer=True)  # the explicit opt-in
    with pytest.raises(ValueError, match="'nope' is not in"):
        tl.integrate(pbmc, batch_key="nope", max_epochs=1, verbose=False)
    pbmc.obs.loc[pbmc.obs_names[0], "batch"] = np.nan
    with pytest.raises(ValueError, match="1 NA values"):
        tl.integrate(pbmc, batch_key="batch", max_epochs=1, verbose=False)
    with pytest.raises(ValueError, match="unknown method"):
        tl.integrate(pbmc, batch_key=None, method="magic")


@pytest.mark.parametrize("method", ["knn", "svm"])
def test_classical_label_transfer(pbmc, method):
    reference, query = split(pbmc)
    with pytest.warns(UserWarning, match="fewer than 3"):  # HSC: 2 cells in the reference
        result = tl.transfer_labels(reference, query, labels_key="cell_type", method=method, verbose=False)
    assert list(result.index) == list(query.obs_names)
    assert {"predicted.id", "prediction.score.max", "prediction.score.B"} <= set(result.columns)
    scores = result.filter(like="prediction.score.").drop(columns="prediction.score.max")
    np.testing.assert_allclose(scores.sum(axis=1), 1, atol=1e-6)
    accuracy = (result["predicted.id"] == query.obs["cell_type"].astype(str)).mean()
    assert accuracy > 0.7  # a baseline on real data: clearly better than chance, not a quality claim
    assert (result.loc[result["prediction.score.max"] < 0.5, "predicted.id"] == "unknown").all()
    assert query.uns["transfer"]["params"]["shared_genes"] == pbmc.n_vars


@pytest.mark.filterwarnings("ignore:Last batch will have a small size")  # scvi-tools copes; data-size chance
def test_scanvi_surgery_from_a_saved_reference(pbmc, tmp_path):
    reference, query = split(pbmc)
    with pytest.warns(UserWarning, match="fewer than 3"):
        first = tl.transfer_labels(reference, query, labels_key="cell_type", batch_key="batch", max_epochs=2,
                                   scanvi_epochs=1, query_epochs=1, model_dir=str(tmp_path), verbose=False)
    assert query.uns["transfer"]["model_dir"] == str(tmp_path)
    # a new query against the saved reference model: no reference data, no retraining
    fresh = split(pbmc)[1]
    again = tl.transfer_labels(None, fresh, labels_key="cell_type", reference_model=str(tmp_path), batch_key="batch",
                               query_epochs=1, verbose=False)
    assert again.shape == first.shape and list(again.columns) == list(first.columns)
    assert fresh.obsm["X_transfer"].shape == (fresh.n_obs, 10)


def test_too_few_shared_genes_are_refused(pbmc):
    reference, query = split(pbmc)
    query = query[:, :100].copy()
    with pytest.raises(ValueError, match=r"100 of the reference's 1767 genes \(6%\)"):
        tl.transfer_labels(reference, query, labels_key="cell_type", method="knn", verbose=False)


def test_denoise_scvi_and_knn(pbmc):
    model = tl.embed(pbmc, batch_key="batch", max_epochs=1, verbose=False)
    genes = ["CD3E", "MS4A1", "LYZ"]
    values = tl.denoise(pbmc, model=model, genes=genes, n_samples=2, transform_batch="5p")
    assert values.shape == (pbmc.n_obs, 3) and (values >= 0).all()
    values = tl.denoise(pbmc, method="knn")
    assert pbmc.layers["knn_denoised"].shape == pbmc.shape
    # kNN averaging keeps the log-normalised scale: a cell's mean over genes stays near its own
    assert np.isfinite(values).all() and values.max() < 12
    with pytest.raises(ValueError, match="not in the data"):
        tl.denoise(pbmc, method="knn", genes=["NOT_A_GENE"])


def test_generate_and_check(pbmc):
    model = tl.embed(pbmc, batch_key="batch", max_epochs=2, verbose=False)
    synthetic = tl.generate(pbmc, n_cells=60, model=model, groupby="cell_type", groups=["B"], transform_batch="5p",
                            random_state=1)
    assert synthetic.shape == (60, pbmc.n_vars)
    assert synthetic.obs["synthetic"].all() and (synthetic.obs["cell_type"] == "B").all()
    assert (synthetic.obs["batch"] == "5p").all()
    assert synthetic.obs["source_cell"].isin(pbmc.obs_names[pbmc.obs["cell_type"] == "B"]).all()
    assert np.equal(np.mod(synthetic.X.data, 1), 0).all()
    baseline = tl.generate(pbmc, n_cells=60, method="nb", groupby="cell_type", groups=["B"], random_state=1)
    table = tl.check_generated(pbmc, baseline, groupby="cell_type")
    assert list(table["group"]) == ["B"] and table.loc[0, "n_synthetic"] == 60
    assert table.loc[0, "mean_correlation"] > 0.8
    assert 0 <= table.loc[0, "classifier_auc"] <= 1
    with pytest.raises(ValueError, match="no cells with cell_type"):
        tl.generate(pbmc, n_cells=5, method="nb", groupby="cell_type", groups=["Neuron"])


def test_compare_integration_and_label_transfer(pbmc, tmp_path):
    pbmc.obsm["X_pca"] = np.zeros((pbmc.n_obs, 2), dtype=np.float32)  # the user's own, kept
    table = tl.compare(pbmc, task="integration", methods=["pca", "harmony"], batch_key="batch",
                       labels_key="cell_type")
    assert pbmc.obsm["X_pca"].shape == (pbmc.n_obs, 2) and "X_harmony" not in pbmc.obsm
    assert set(table.columns) == {"method", "category", "metric", "value"}
    assert set(table["method"]) == {"pca", "harmony"}
    total = table[table.metric == "Total"].set_index("method")["value"]
    assert total.between(0, 1).all()
    png = tl.plot_comparison(table, str(tmp_path / "compare.png"))
    assert (tmp_path / "compare.png").stat().st_size > 1000 and png.endswith(".png")
    transfer = tl.compare(pbmc, task="label_transfer", methods=["knn"], batch_key="batch", labels_key="cell_type",
                          query_batches=["5p"], holdout_labels=["B"], verbose=False, min_cells_per_label=1)
    scores = transfer.set_index("metric")["value"]
    assert 0.5 < scores["accuracy"] <= 1 and 0 <= scores["heldout_called_unknown"] <= 1
    with pytest.raises(ValueError, match="query_batches"):
        tl.compare(pbmc, task="label_transfer", methods=["knn"], batch_key="batch", labels_key="cell_type")


def test_calibration_error_and_scores_by_hand():
    from isthmus.tl._compare import expected_calibration_error

    # all predictions at confidence 0.9, 60% right: |0.6 - 0.9| = 0.3
    confidence = np.full(10, 0.9)
    correct = np.array([1] * 6 + [0] * 4, dtype=bool)
    assert expected_calibration_error(confidence, correct) == pytest.approx(0.3)
    result = pd.DataFrame({"predicted.id": ["a", "b", "unknown", "a"], "prediction.score.max": [0.9, 0.8, 0.3, 0.7]})
    scores = tl.label_transfer_scores(["a", "b", "c", "b"], result, holdout_labels=["c"])
    assert scores["accuracy"] == pytest.approx(2 / 3) and scores["heldout_called_unknown"] == 1.0
