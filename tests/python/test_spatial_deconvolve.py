"""Spot deconvolution on the bundled real reference + spatial pairs (spacexr's mouse cerebellum and
hippocampus): outputs, records, seeds and refusals, with the DL models trained for two epochs;
NNLS on pseudo-spots of known composition checks that the proportions mean something
(bench/bench_spatial_deconvolution.py measures quality)."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from isthmus.tl import _deconvolve as dc


@pytest.fixture()
def cerebellum(extdata):
    return (ad.read_h5ad(extdata / "cerebellum_spatial_slideseq.h5ad"),
            ad.read_h5ad(extdata / "cerebellum_reference_sc.h5ad"))


@pytest.fixture()
def hippocampus(extdata):
    return (ad.read_h5ad(extdata / "hippocampus_spatial_visium.h5ad"),
            ad.read_h5ad(extdata / "hippocampus_reference_sc.h5ad"))


def snapshot(adata):
    """What a call may not change: everything but the documented obsm/uns keys."""
    return {"X": adata.X.copy(), "obs": adata.obs.copy(), "var": adata.var.copy(), "layers": sorted(adata.layers),
            "obsm": {k: np.asarray(v).copy() for k, v in adata.obsm.items()}, "uns": sorted(adata.uns)}


def assert_unchanged(adata, before, added=()):
    assert (adata.X != before["X"]).nnz == 0 if sparse.issparse(adata.X) else np.array_equal(adata.X, before["X"])
    pd.testing.assert_frame_equal(adata.obs, before["obs"])
    pd.testing.assert_frame_equal(adata.var, before["var"])
    assert sorted(adata.layers) == before["layers"]
    assert sorted(adata.obsm) == sorted([*before["obsm"], *added])
    for key, value in before["obsm"].items():
        np.testing.assert_array_equal(np.asarray(adata.obsm[key]), value)
    assert sorted(adata.uns) == sorted([*before["uns"], *added])


def halves(reference, labels_key="cell_type", seed=0):
    """Half of each type's cells for the reference, the other half for pseudo-spots: no cell in both."""
    rng = np.random.default_rng(seed)
    first = np.zeros(reference.n_obs, dtype=bool)
    for name in reference.obs[labels_key].unique():
        cells = np.flatnonzero(reference.obs[labels_key].to_numpy() == name)
        first[rng.choice(cells, cells.size // 2, replace=False)] = True
    return reference[first].copy(), reference[~first].copy()


@pytest.mark.parametrize("method", ["destvi", "stereoscope"])
def test_dl_methods_write_proportions_record_and_models_and_repeat_with_a_seed(cerebellum, method, tmp_path):
    spatial, reference = cerebellum
    spatial_before, reference_before = snapshot(spatial), snapshot(reference)
    out = dc.deconvolve(spatial, reference, labels_key="cell_type", method=method, layer=None, n_top_genes=150,
                        max_epochs=2, reference_epochs=2, model_dir=str(tmp_path / "model"), random_state=4,
                        verbose=False)
    types = sorted(reference.obs["cell_type"].unique())
    assert list(out.columns) == types and list(out.index) == list(spatial.obs_names)
    assert np.isfinite(out.to_numpy()).all() and (out.to_numpy() >= 0).all()
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-6)
    pd.testing.assert_frame_equal(spatial.obsm["deconvolution"], out)
    record = spatial.uns["deconvolution"]
    assert record["method"] == method and record["params"]["genes_used"] == 150
    assert record["params"]["shared_genes"] == 378 and record["params"]["random_state"] == 4
    assert record["params"]["cell_types"] == types and record["params"]["cell_types_left_out"] == []
    assert record["model_dir"] == str(tmp_path / "model")
    assert (tmp_path / "model" / "model.pt").exists() and (tmp_path / "model" / "reference" / "model.pt").exists()
    assert_unchanged(spatial, spatial_before, added=["deconvolution"])
    assert_unchanged(reference, reference_before)

    again = dc.deconvolve(spatial.copy(), reference, labels_key="cell_type", method=method, layer=None,
                          n_top_genes=150, max_epochs=2, reference_epochs=2, random_state=4, verbose=False)
    np.testing.assert_array_equal(again.to_numpy(), out.to_numpy())
    other = dc.deconvolve(spatial.copy(), reference, labels_key="cell_type", method=method, layer=None,
                          n_top_genes=150, max_epochs=2, reference_epochs=2, random_state=5, verbose=False)
    assert not np.allclose(other.to_numpy(), out.to_numpy())


def test_nnls_recovers_pseudo_spot_truth(hippocampus, tmp_path):
    _, reference = hippocampus
    signatures, held_out = halves(reference)
    spots, truth = dc.pseudo_spots(held_out, labels_key="cell_type", n_spots=150, layer=None, random_state=1)
    counts = spots.X.toarray()
    assert np.issubdtype(counts.dtype, np.integer) and counts.sum() > 0
    assert spots.obs["n_cells"].between(5, 10).all()
    assert list(truth.columns) == sorted(reference.obs["cell_type"].unique())
    np.testing.assert_allclose(truth.sum(axis=1), 1.0)
    assert ((truth > 0).sum(axis=1).between(1, 4)).all()
    # proportions are whole cells out of the spot's cells
    np.testing.assert_allclose(truth.mul(spots.obs["n_cells"], axis=0) % 1, 0, atol=1e-9)

    estimate = dc.deconvolve(spots, signatures, labels_key="cell_type", method="nnls", layer=None, verbose=False)
    np.testing.assert_allclose(estimate.sum(axis=1), 1.0)
    scores = dc.deconvolution_scores(truth, estimate)
    # measured Pearson 0.86, RMSE 0.091, JSD 0.20; an even split scores RMSE 0.18, JSD 0.71
    assert scores["pearson"] > 0.8 and scores["rmse"] < 0.11 and scores["jsd"] < 0.25, scores
    uniform = pd.DataFrame(1 / truth.shape[1], index=truth.index, columns=truth.columns)
    assert dc.deconvolution_scores(truth, uniform)["jsd"] > 2 * scores["jsd"]

    # shares of counts: the same fit, before dividing by each type's counts per cell
    record = spots.uns["deconvolution"]["params"]
    assert record["cell_fractions"] and len(record["counts_per_cell"]) == truth.shape[1]
    of_counts = dc.deconvolve(spots.copy(), signatures, labels_key="cell_type", method="nnls", layer=None,
                              cell_fractions=False, verbose=False)
    back_to_cells = of_counts / np.asarray(record["counts_per_cell"])
    np.testing.assert_allclose(back_to_cells.div(back_to_cells.sum(axis=1), axis=0), estimate, atol=1e-12)
    assert not np.allclose(of_counts, estimate)

    path = tmp_path / "spots.h5ad"
    spots.write_h5ad(path)  # the record and the proportions survive a file
    back = ad.read_h5ad(path)
    pd.testing.assert_frame_equal(back.obsm["deconvolution"], estimate)
    assert back.uns["deconvolution"]["method"] == "nnls" and back.uns["deconvolution"]["model_dir"] == ""


def test_deconvolution_scores_by_hand():
    truth = pd.DataFrame({"a": [1.0, 0.5], "b": [0.0, 0.5]}, index=["s1", "s2"])
    assert dc.deconvolution_scores(truth, truth) == pytest.approx({"rmse": 0.0, "jsd": 0.0, "pearson": 1.0})
    # spots in another order, a type the truth lacks (0 there), type "b" missing (0 in the estimate)
    estimate = pd.DataFrame({"c": [0.0, 0.5], "a": [1.0, 0.5]}, index=["s2", "s1"])
    scores = dc.deconvolution_scores(truth, estimate)
    # s1: [1, 0, 0] vs [0.5, 0, 0.5]; s2: [0.5, 0.5, 0] vs [1, 0, 0]: JSD 1.5 - 1 / 2 = 0.311278 each
    assert scores["jsd"] == pytest.approx(0.311278, abs=1e-6)
    assert scores["rmse"] == pytest.approx(np.sqrt((0.25 + 0.25 + 0.25 + 0.25) / 6))
    assert scores["pearson"] == pytest.approx(np.corrcoef([1, 0, 0, .5, .5, 0], [.5, 0, .5, 1, 0, 0])[0, 1])
    with pytest.raises(ValueError, match="lacks 1 of the truth's spots"):
        dc.deconvolution_scores(truth, estimate.iloc[:1])


def test_counts_layer_is_read_for_both_objects(cerebellum):
    spatial, reference = cerebellum
    plain = dc.deconvolve(spatial.copy(), reference, labels_key="cell_type", method="nnls", layer=None,
                          verbose=False)
    for adata in (spatial, reference):  # counts in a layer, something else in X
        adata.layers["counts"] = adata.X.copy()
        adata.X = adata.X.astype(np.float32) * 0.5
    from_layer = dc.deconvolve(spatial, reference, labels_key="cell_type", method="nnls", verbose=False)
    pd.testing.assert_frame_equal(from_layer, plain)
    assert spatial.uns["deconvolution"]["params"]["layer"] == "counts"
    with pytest.raises(ValueError, match="non-integer values"):
        dc.deconvolve(spatial, reference, labels_key="cell_type", method="stereoscope", layer=None, verbose=False)


def test_refusals_name_the_problem_and_change_nothing(hippocampus, cerebellum):
    spatial, reference = hippocampus
    before = snapshot(spatial)
    # the real pair shares 124 of the Visium data's 276 genes: below a 50% bar
    with pytest.raises(ValueError, match=r"124 of the spatial data's 276 genes \(45%\)"):
        dc.deconvolve(spatial, reference, labels_key="cell_type", method="nnls", layer=None, min_gene_overlap=0.5,
                      verbose=False)
    assert_unchanged(spatial, before)
    with pytest.raises(ValueError, match="unknown method 'rctd'"):
        dc.deconvolve(spatial, reference, labels_key="cell_type", method="rctd", layer=None)

    spatial, reference = cerebellum
    empty = spatial.copy()
    counts = empty.X.toarray()
    counts[3, :] = 0
    empty.X = sparse.csr_matrix(counts)
    with pytest.raises(ValueError, match=f"1 spots of the spatial data have no counts.*{spatial.obs_names[3]}"):
        dc.deconvolve(empty, reference, labels_key="cell_type", method="nnls", layer=None, verbose=False)
    # counts only in genes the reference lacks: nothing to deconvolve either
    half_private = spatial.copy()
    half_private.var_names = [f"{g}_private" if i % 2 else g for i, g in enumerate(spatial.var_names)]
    counts = half_private.X.toarray()
    counts[5, ::2] = 0
    half_private.X = sparse.csr_matrix(counts)
    assert half_private.X[5].sum() > 0
    with pytest.raises(ValueError, match=f"1 spots of the spatial data .counting only the 189 genes used.*no counts"
                                         f".*{spatial.obs_names[5]}"):
        dc.deconvolve(half_private, reference, labels_key="cell_type", method="nnls", layer=None,
                      min_gene_overlap=0.4, verbose=False)

    labelled = reference.copy()
    labelled.obs["cell_type"] = labelled.obs["cell_type"].astype(object)
    labelled.obs.iloc[0, labelled.obs.columns.get_loc("cell_type")] = np.nan
    with pytest.raises(ValueError, match="cell type column 'cell_type' has 1 NA values"):
        dc.deconvolve(spatial, labelled, labels_key="cell_type", method="nnls", layer=None, verbose=False)
    with pytest.raises(ValueError, match="'type' is not in the cell metadata"):
        dc.deconvolve(spatial, reference, labels_key="type", method="nnls", layer=None, verbose=False)

    normalised = spatial.copy()
    normalised.X = normalised.X.astype(np.float32) / 3
    with pytest.raises(ValueError, match="non-integer values"):
        dc.deconvolve(normalised, reference, labels_key="cell_type", method="destvi", layer=None, verbose=False)
    assert "deconvolution" not in normalised.obsm and "deconvolution" not in normalised.uns


def test_types_with_too_few_cells_are_left_out_with_a_warning(cerebellum):
    spatial, reference = cerebellum
    rare = reference.obs_names[reference.obs["cell_type"] == "Purkinje"][5:]
    reference = reference[~reference.obs_names.isin(rare)].copy()  # 5 Purkinje cells left
    with pytest.warns(UserWarning, match="fewer than 10 reference cells are left out: Purkinje"):
        out = dc.deconvolve(spatial, reference, labels_key="cell_type", method="nnls", layer=None, verbose=False)
    assert "Purkinje" not in out.columns and out.shape[1] == reference.obs["cell_type"].nunique() - 1
    assert spatial.uns["deconvolution"]["params"]["cell_types_left_out"] == ["Purkinje"]
    # five is enough when asked for
    out = dc.deconvolve(spatial, reference, labels_key="cell_type", method="nnls", layer=None,
                        min_cells_per_type=5, verbose=False)
    assert "Purkinje" in out.columns


def test_compare_deconvolution_on_a_labelled_reference(hippocampus):
    from isthmus import tl

    _, reference = hippocampus
    table = tl.compare(reference, task="deconvolution", methods=["nnls"], labels_key="cell_type", layer=None,
                       n_spots=60, verbose=False)
    scores = table.set_index("metric")["value"]
    assert set(table["method"]) == {"nnls"} and set(scores.index) == {"rmse", "jsd", "pearson", "seconds"}
    # 15 cells a type per half: NNLS still recovers the composition far better than chance
    assert scores["pearson"] > 0.6 and scores["rmse"] < 0.15
    with pytest.raises(ValueError, match="deconvolution has no method"):
        tl.compare(reference, task="deconvolution", methods=["tangram"], labels_key="cell_type", layer=None)
