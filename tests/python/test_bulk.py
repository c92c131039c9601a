"""Bulk deconvolution on pseudo-bulks of the bundled PBMC (3 chemistries): the reference is two
chemistries, the bulk samples are made from the third. Outputs, records, seeds and refusals;
quality is bench/bench_bulk_deconvolution.py's."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest

import isthmus.tl as tl

TYPES = ["B", "Mono_CD14", "Mono_CD16", "NK", "T_CD4", "T_CD8"]
FAST = dict(max_steps=20, n_pseudobulks=64, cells_per_pseudobulk=30)


@pytest.fixture()
def pbmc(extdata):
    adata = ad.read_h5ad(extdata / "pbmc_3batch_symphony.h5ad")
    adata.obs["batch"] = adata.obs["batch"].astype(str)
    return adata[adata.obs["cell_type"].isin(TYPES).to_numpy()].copy()


@pytest.fixture()
def split(pbmc):
    in_bulk = (pbmc.obs["batch"] == "5p").to_numpy()
    bulk, truth = tl.pseudo_bulks(pbmc[in_bulk], labels_key="cell_type", n_samples=20, layer=None, random_state=3)
    return bulk, truth, pbmc[~in_bulk].copy()


def test_pseudo_bulks_know_their_composition(pbmc):
    bulk, truth = tl.pseudo_bulks(pbmc, labels_key="cell_type", n_samples=50, cells_per_sample=40, layer=None,
                                  depth=(1.0, 1.0))
    assert bulk.shape == (50, pbmc.n_vars) and list(truth.columns) == sorted(TYPES)
    np.testing.assert_allclose(truth.sum(axis=1), 1.0)
    assert ((truth == 0).sum(axis=1) > 0).mean() > 0.3  # about half the samples leave types out
    # one type only: the sum of 40 of its cells, about 40 times its mean library
    single = tl.pseudo_bulks(pbmc[pbmc.obs["cell_type"] == "B"].copy(), labels_key="cell_type", n_samples=3,
                             cells_per_sample=40, layer=None, depth=(1.0, 1.0))[0]
    mean = pbmc[pbmc.obs["cell_type"] == "B"].X.sum(axis=1).mean()
    assert 20 * mean < single.X.sum(axis=1).mean() < 80 * mean


@pytest.mark.parametrize("method", ["scaden", "nnls", "music"])
def test_every_method_returns_fractions_and_a_record(split, method, tmp_path):
    bulk, truth, reference = split
    fractions = tl.deconvolve_bulk(bulk, reference, method=method, batch_key="batch", layer=None,
                                   model_dir=str(tmp_path / "m"), verbose=False, **FAST)
    assert list(fractions.index) == list(bulk.obs_names) and list(fractions.columns) == sorted(TYPES)
    np.testing.assert_allclose(fractions.sum(axis=1), 1.0, rtol=1e-6)
    assert (fractions.to_numpy() >= 0).all()
    pd.testing.assert_frame_equal(bulk.obsm["deconvolution_bulk"], fractions)
    record = bulk.uns["deconvolution_bulk"]
    assert record["method"] == method and record["params"]["bulk_values"] == "counts"
    assert record["params"]["cell_types"] == sorted(TYPES) and record["params"]["shared_genes"] == bulk.n_vars
    scores = tl.bulk_scores(truth, fractions)
    overall = scores[scores["cell_type"] == "all"].set_index("metric")["value"]
    assert set(overall.index) == {"rmse", "jsd", "pearson"} and overall["rmse"] < 0.5
    if method != "scaden":  # the baselines need no training: they recover these fractions well
        assert overall["pearson"] > 0.5
    else:
        assert record["params"]["max_steps"] == 20 and record["params"]["device"] == "cpu"
        assert tl.load_model(record["model_dir"]).history_["M1024"]


def test_the_same_seed_repeats_and_tpm_is_accepted_with_a_flag(split):
    bulk, _, reference = split
    first = tl.deconvolve_bulk(bulk.copy(), reference, layer=None, random_state=2, verbose=False, **FAST)
    again = tl.deconvolve_bulk(bulk.copy(), reference, layer=None, random_state=2, verbose=False, **FAST)
    pd.testing.assert_frame_equal(first, again, rtol=1e-5)
    tpm = bulk.copy()
    x = tpm.X.toarray().astype(float)
    tpm.X = x / x.sum(axis=1, keepdims=True) * 1e6
    with pytest.raises(ValueError, match="non-integer values, not counts. For TPM or FPKM set bulk_values='tpm'"):
        tl.deconvolve_bulk(tpm, reference, method="nnls", layer=None, verbose=False)
    assert "deconvolution_bulk" not in tpm.uns
    from_tpm = tl.deconvolve_bulk(tpm, reference, method="nnls", layer=None, bulk_values="tpm", verbose=False)
    from_counts = tl.deconvolve_bulk(bulk.copy(), reference, method="nnls", layer=None, verbose=False)
    np.testing.assert_allclose(from_tpm.to_numpy(), from_counts.to_numpy(), atol=1e-6)  # NNLS normalises samples
    assert tpm.uns["deconvolution_bulk"]["params"]["bulk_values"] == "tpm"


def test_bad_input_is_refused_with_what_to_do(split, pbmc):
    bulk, _, reference = split
    ensembl = bulk.copy()
    ensembl.var_names = [f"ENSG{i:011d}" for i in range(bulk.n_vars)]
    with pytest.raises(ValueError, match=r"the reference has 0 of the bulk's \d+ genes \(0%\).*symbols vs Ensembl"):
        tl.deconvolve_bulk(ensembl, reference, method="nnls", layer=None, verbose=False)
    logged = bulk.copy()
    logged.X = np.log1p(logged.X.toarray()) - 1.0
    with pytest.raises(ValueError, match="negative values"):
        tl.deconvolve_bulk(logged, reference, method="nnls", layer=None, bulk_values="tpm", verbose=False)
    with pytest.raises(ValueError, match="music needs batch_key"):
        tl.deconvolve_bulk(bulk, reference, method="music", layer=None, verbose=False)
    with pytest.raises(ValueError, match="bulk_values must be 'counts' or 'tpm'"):
        tl.deconvolve_bulk(bulk, reference, method="nnls", layer=None, bulk_values="fpkm", verbose=False)
    assert "deconvolution_bulk" not in bulk.uns
    # a type with too few reference cells is left out, by name
    few = pbmc[(pbmc.obs["batch"] != "5p").to_numpy()].copy()
    keep = ~(few.obs["cell_type"] == "NK").to_numpy()
    keep[np.flatnonzero(~keep)[:3]] = True
    with pytest.warns(UserWarning, match="fewer than 10 reference cells are left out: NK"):
        out = tl.deconvolve_bulk(bulk, few[keep].copy(), method="nnls", layer=None, verbose=False)
    assert "NK" not in out.columns and bulk.uns["deconvolution_bulk"]["params"]["cell_types_left_out"] == ["NK"]


def test_compare_holds_each_batch_out(pbmc):
    table = tl.compare(pbmc, task="bulk_deconvolution", methods=["nnls", "music"], labels_key="cell_type",
                       batch_key="batch", n_bulks=20, verbose=False)
    assert set(table["category"]) == {"Bulk deconvolution (3pv1)", "Bulk deconvolution (3pv2)",
                                      "Bulk deconvolution (5p)", "Time"}
    assert set(table["metric"]) == {"rmse", "jsd", "pearson", "seconds"}
    with pytest.raises(ValueError, match="bulk_deconvolution needs batch_key"):
        tl.compare(pbmc, task="bulk_deconvolution", methods=["nnls"], labels_key="cell_type")
