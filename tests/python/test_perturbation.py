"""Perturbation response on the bundled Kang 2018 IFN-beta PBMC (a third of the cells, one or two
epochs): outputs, the held-out cells never reaching a fit, seeds, scores and refusals. Quality is
bench/bench_perturbation.py's."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

import isthmus.tl as tl

HELD_OUT = "CD14+ Monocytes"
FAST = dict(max_epochs=1, n_latent=8, n_hidden=32, verbose=False)


@pytest.fixture()
def kang(extdata):
    adata = ad.read_h5ad(extdata / "kang_ifnb_pbmc_1556cells_muscat.h5ad")[::3].copy()
    adata.layers["counts"] = adata.X.copy()
    return adata


def _held_out_stim(adata):
    return ((adata.obs["cell_type"] == HELD_OUT) & (adata.obs["condition"] == "stim")).to_numpy()


@pytest.mark.parametrize("method", ["scgen", "linear", "no_change"])
def test_prediction_is_a_new_object_of_log_normalised_cells(kang, method, tmp_path):
    before = kang.copy()
    predicted = tl.predict_perturbation(kang, predict=HELD_OUT, method=method, model_dir=str(tmp_path / "m"), **FAST)
    sources = kang.obs_names[((kang.obs["cell_type"] == HELD_OUT) & (kang.obs["condition"] == "ctrl")).to_numpy()]
    assert predicted.n_obs == len(sources) and list(predicted.obs["source_cell"]) == list(sources)
    assert (predicted.obs["condition"] == "stim").all() and (predicted.obs["cell_type"] == HELD_OUT).all()
    assert predicted.obs["predicted"].all()
    x = np.asarray(predicted.X)
    assert np.isfinite(x).all() and x.min() >= 0 and x.max() < 15  # log1p of counts per 10,000
    record = predicted.uns["predict_perturbation"]
    assert record["method"] == method and record["params"]["output"] == "log1p(counts per 10,000)"
    assert record["params"]["held_out_perturbed_cells"] == int(_held_out_stim(kang).sum())
    assert HELD_OUT not in record["params"]["types_learnt"] and len(record["params"]["types_learnt"]) == 4
    assert set(record["scores"]["metric"]) >= {"r2_mean", "pearson_change_top", "energy_distance", "classifier_auc"}
    # the user's object is not changed
    assert kang.obs.equals(before.obs) and set(kang.uns) == {"source_note"} and (kang.X != before.X).nnz == 0
    if method == "no_change":
        counts = kang.X[kang.obs_names.get_indexer(sources)].toarray().astype(float)
        expected = np.log1p(counts / counts.sum(axis=1, keepdims=True) * 1e4)
        np.testing.assert_allclose(x, expected, rtol=1e-5, atol=1e-5)
        scores = record["scores"].set_index("metric")["value"]
        assert np.isnan(scores["pearson_change"]) and scores["r2_change"] <= 1e-6  # a change of zero cannot win
    if method == "scgen":
        assert record["params"]["max_epochs"] == 1 and record["params"]["device"] == "cpu"
        assert record["model_dir"] == str(tmp_path / "m") and (tmp_path / "m" / "model.pt").exists()


@pytest.mark.parametrize("method", ["scgen", "linear"])
def test_the_held_out_perturbed_cells_never_change_the_prediction(kang, method):
    first = tl.predict_perturbation(kang, predict=HELD_OUT, method=method, layer="counts", **FAST)
    changed = kang.copy()
    stim = _held_out_stim(changed)
    counts = sparse.csr_matrix(changed.layers["counts"]).tolil()
    rng = np.random.default_rng(1)
    counts[np.flatnonzero(stim)] = rng.poisson(5.0, size=(int(stim.sum()), changed.n_vars))
    changed.layers["counts"] = counts.tocsr()
    second = tl.predict_perturbation(changed, predict=HELD_OUT, method=method, layer="counts", **FAST)
    without = kang[~stim].copy()
    third = tl.predict_perturbation(without, predict=HELD_OUT, method=method, layer="counts", **FAST)
    np.testing.assert_allclose(np.asarray(second.X), np.asarray(first.X), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(third.X), np.asarray(first.X), rtol=1e-5, atol=1e-5)
    assert "scores" not in third.uns["predict_perturbation"]  # no truth, no scores
    assert third.uns["predict_perturbation"]["params"]["held_out_perturbed_cells"] == 0


def test_linear_shift_is_balanced_by_cell_type(kang):
    predicted = tl.predict_perturbation(kang, predict=HELD_OUT, method="linear", genes="all")
    x = kang.X.toarray().astype(float)
    lognorm = np.log1p(x / x.sum(axis=1, keepdims=True) * 1e4)
    types, condition = kang.obs["cell_type"].to_numpy(), kang.obs["condition"].to_numpy()
    others = [t for t in np.unique(types) if t != HELD_OUT]
    shift = np.mean([lognorm[(types == t) & (condition == "stim")].mean(0) for t in others], 0) - \
        np.mean([lognorm[(types == t) & (condition == "ctrl")].mean(0) for t in others], 0)
    source = (types == HELD_OUT) & (condition == "ctrl")
    np.testing.assert_allclose(np.asarray(predicted.X), np.maximum(lognorm[source] + shift, 0), rtol=1e-5, atol=1e-5)


def test_scores_of_the_truth_itself_are_perfect(kang):
    stim = _held_out_stim(kang)
    x = kang.X[stim].toarray().astype(float)
    truth = ad.AnnData(X=np.log1p(x / x.sum(axis=1, keepdims=True) * 1e4),
                       obs=pd.DataFrame({"cell_type": HELD_OUT}, index=kang.obs_names[stim]),
                       var=pd.DataFrame(index=kang.var_names))
    scores = tl.perturbation_scores(kang, truth, layer=None).set_index("metric")["value"]
    for metric in ("r2_mean", "pearson_mean", "r2_change", "pearson_change_top"):
        assert scores[metric] == pytest.approx(1.0)
    assert abs(scores["energy_distance"]) < 1e-8
    linear = tl.predict_perturbation(kang, predict=HELD_OUT, method="linear")
    none = tl.predict_perturbation(kang, predict=HELD_OUT, method="no_change")
    a, b = (p.uns["predict_perturbation"]["scores"].set_index("metric")["value"] for p in (linear, none))
    assert a["r2_change_top"] > b["r2_change_top"] and a["r2_mean_top"] > b["r2_mean_top"]


def test_bad_input_is_refused_before_any_work(kang):
    before = kang.copy()
    with pytest.raises(ValueError, match="no control cells of predict 'Platelets'"):
        tl.predict_perturbation(kang, predict="Platelets", method="linear")
    with pytest.raises(ValueError, match="perturbed 'ifn' is not a value of the condition column"):
        tl.predict_perturbation(kang, predict=HELD_OUT, method="linear", perturbed="ifn")
    with pytest.raises(ValueError, match="cell type column 'nope' is not in the cell metadata"):
        tl.predict_perturbation(kang, predict=HELD_OUT, method="linear", cell_type_key="nope")
    only = kang[(kang.obs["cell_type"] == HELD_OUT).to_numpy()].copy()
    with pytest.raises(ValueError, match="no other cell type has cells in both"):
        tl.predict_perturbation(only, predict=HELD_OUT, method="linear")
    with pytest.raises(ValueError, match="max_epochs must be at least 1"):
        tl.predict_perturbation(kang, predict=HELD_OUT, max_epochs=0)
    lognorm = kang.copy()
    lognorm.layers["counts"] = lognorm.layers["counts"].astype(float) * 0.5
    with pytest.raises(ValueError, match="non-integer"):
        tl.predict_perturbation(lognorm, predict=HELD_OUT, method="scgen", **FAST)
    assert set(kang.uns) == {"source_note"} and kang.obs.equals(before.obs)


def test_compare_holds_each_type_out(kang):
    table = tl.compare(kang, task="perturbation", methods=["linear", "no_change"], labels_key="cell_type",
                       predict="B cells")
    assert set(table["category"]) == {"Perturbation (B cells)", "Time"}
    change = table[table["metric"] == "r2_change"].set_index("method")["value"]
    assert change["linear"] > change["no_change"]
    everyone = tl.compare(kang, task="perturbation", methods=["no_change"], labels_key="cell_type")
    assert everyone["category"].nunique() == 6  # five types and the time
    with pytest.raises(ValueError, match="condition column 'treatment' is not in the cell metadata"):
        tl.compare(kang, task="perturbation", methods=["linear"], labels_key="cell_type", condition_key="treatment")
