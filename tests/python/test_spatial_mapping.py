"""Mapping cells onto spatial data and imputing genes, on the two bundled real reference + spatial
pairs (hippocampus scRNA-seq + Visium, cerebellum snRNA-seq + Slide-seq), with few epochs: these check
outputs, records, seeds, refusals and that held-out genes are predicted better than chance; the
benchmark (bench/bench_spatial_mapping.py) measures quality."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from isthmus.tl import _map_cells
from isthmus.tl import method_names
from isthmus.tl._map_cells import holdout_gene_scores, holdout_genes, map_cells


def _read(path):
    adata = ad.read_h5ad(path)
    adata.layers["counts"] = adata.X.copy()  # where the task reads counts by default
    return adata


@pytest.fixture()
def cerebellum(extdata):
    return _read(extdata / "cerebellum_spatial_slideseq.h5ad"), _read(extdata / "cerebellum_reference_sc.h5ad")


@pytest.fixture()
def hippocampus(extdata):
    return _read(extdata / "hippocampus_spatial_visium.h5ad"), _read(extdata / "hippocampus_reference_sc.h5ad")


def _snapshot(adata):
    return {"X": adata.X.copy(), "counts": adata.layers["counts"].copy(), "obs": adata.obs.copy(),
            "var": adata.var.copy(), "obsm": {k: np.array(v) for k, v in adata.obsm.items()},
            "uns": set(adata.uns), "layers": set(adata.layers)}


def _assert_unchanged(adata, before, *, obsm_added=(), uns_added=()):
    assert (adata.X != before["X"]).nnz == 0 and (adata.layers["counts"] != before["counts"]).nnz == 0
    pd.testing.assert_frame_equal(adata.obs, before["obs"])
    pd.testing.assert_frame_equal(adata.var, before["var"])
    assert set(adata.obsm) == set(before["obsm"]) | set(obsm_added)
    for key, value in before["obsm"].items():
        np.testing.assert_array_equal(np.asarray(adata.obsm[key]), value)
    assert set(adata.uns) == before["uns"] | set(uns_added)
    assert set(adata.layers) == before["layers"]


@pytest.mark.parametrize("method", method_names("map_cells"))
def test_each_method_writes_the_documented_keys(cerebellum, method, tmp_path):
    spatial, reference = cerebellum
    spatial_before, reference_before = _snapshot(spatial), _snapshot(reference)
    result = map_cells(spatial, reference, method=method, labels_key="cell_type", max_epochs=3, key_added="map",
                       model_dir=str(tmp_path / "gimvi") if method == "gimvi" else None, verbose=False)
    # imputed: by default the reference genes the spatial data lacks, on the log1p per-1e4 scale
    missing = [g for g in reference.var_names if g not in spatial.var_names]
    assert list(result.imputed.columns) == missing and list(result.imputed.index) == list(spatial.obs_names)
    values = result.imputed.to_numpy()
    assert np.isfinite(values).all() and values.min() >= 0 and values.max() < np.log1p(1e4)
    # cell types: every reference type, rows sum to 1, written to obsm as a frame
    types = spatial.obsm["map_cell_types"]
    assert isinstance(types, pd.DataFrame) and list(types.index) == list(spatial.obs_names)
    assert sorted(types.columns) == sorted(reference.obs["cell_type"].astype(str).unique())
    np.testing.assert_allclose(types.sum(axis=1), 1.0, rtol=1e-5)
    assert (types.to_numpy() >= 0).all()
    pd.testing.assert_frame_equal(types, result.cell_types)
    record = spatial.uns["map"]
    assert record["method"] == method and record is result.record
    shared = int(spatial.var_names.isin(reference.var_names).sum())
    assert record["params"]["shared_genes"] == shared
    assert record["params"]["training_genes"] == len(result.training_genes) <= shared
    assert record["params"]["imputed_genes"] == len(missing) and record["params"]["labels_key"] == "cell_type"
    if method == "tangram":
        mapping = result.mapping
        assert isinstance(mapping, np.ndarray) and mapping.shape == (reference.n_obs, spatial.n_obs)
        np.testing.assert_allclose(mapping.sum(axis=1), 1.0, rtol=1e-4)
    elif method == "knn":
        assert sparse.issparse(result.mapping) and result.mapping.shape == (reference.n_obs, spatial.n_obs)
        np.testing.assert_allclose(np.asarray(result.mapping.sum(axis=0)).ravel(), 1.0, rtol=1e-5)
    else:
        assert result.mapping is None
        assert record["model_dir"] == str(tmp_path / "gimvi") and (tmp_path / "gimvi" / "model.pt").exists()
    # nothing else changed, and the reference not at all
    _assert_unchanged(spatial, spatial_before, obsm_added=["map_cell_types"], uns_added=["map"])
    _assert_unchanged(reference, reference_before)


def test_tangram_predicts_held_out_genes_better_than_chance(hippocampus):
    spatial, reference = hippocampus
    n_vars = spatial.n_vars
    scores = holdout_gene_scores(spatial, reference, method="tangram", fraction=0.2, max_epochs=200, verbose=False)
    held = holdout_genes(spatial, reference, fraction=0.2)
    assert list(scores["gene"]) == held and len(held) == 25 and spatial.n_vars == n_vars
    assert "mapping" not in spatial.uns  # the method ran on a copy
    # measured 0.47 median Spearman (0.40-0.47 over four splits) against -0.02 for shuffled spots
    assert scores["spearman"].median() > 0.3
    assert scores["spearman"].median() > scores["spearman_shuffled"].median() + 0.25
    assert (scores["spearman"] > scores["spearman_shuffled"]).mean() >= 0.8
    # the baseline, on the same split
    knn = holdout_gene_scores(spatial, reference, method="knn", fraction=0.2, n_neighbors=15, verbose=False)
    assert list(knn["gene"]) == held and knn["spearman"].median() > 0.3


def test_a_fixed_seed_repeats(cerebellum):
    spatial, reference = cerebellum
    first = map_cells(spatial, reference, method="tangram", max_epochs=30, random_state=1, verbose=False)
    again = map_cells(spatial, reference, method="tangram", max_epochs=30, random_state=1, verbose=False)
    other = map_cells(spatial, reference, method="tangram", max_epochs=30, random_state=2, verbose=False)
    np.testing.assert_array_equal(first.mapping, again.mapping)
    pd.testing.assert_frame_equal(first.imputed, again.imputed)
    assert not np.allclose(first.mapping, other.mapping)
    gimvi = [map_cells(spatial, reference, method="gimvi", max_epochs=2, random_state=4, verbose=False).imputed
             for _ in range(2)]
    np.testing.assert_allclose(gimvi[0].to_numpy(), gimvi[1].to_numpy(), rtol=1e-5, atol=1e-6)


def test_progress_lines_and_chosen_genes(cerebellum, capsys):
    spatial, reference = cerebellum
    shared = [g for g in spatial.var_names if g in reference.var_names]
    result = map_cells(spatial, reference, training_genes=shared[:100], impute_genes=shared[100:110],
                       max_epochs=20, learning_rate=0.05)
    out = capsys.readouterr().out
    assert "genes shared by the reference" in out
    assert out.count("isthmus Tangram: epoch") == 10 and "epoch 20/20  cosine" in out
    assert len(result.training_genes) <= 100 and list(result.imputed.columns) == shared[100:110]
    assert spatial.uns["mapping"]["params"]["learning_rate"] == 0.05
    assert "mapping_cell_types" not in spatial.obsm  # no labels_key, no type map
    map_cells(spatial, reference, max_epochs=2, verbose=False)
    assert capsys.readouterr().out == ""


def test_large_mappings_are_kept_sparse(monkeypatch):
    mapping = np.random.default_rng(0).dirichlet(np.ones(80), size=30).astype(np.float32)
    monkeypatch.setattr(_map_cells, "DENSE_MAPPING_LIMIT", 100)
    monkeypatch.setattr(_map_cells, "SPARSE_MAPPING_TOP", 5)
    compact = _map_cells._compact_mapping(mapping)
    assert sparse.issparse(compact) and compact.shape == mapping.shape and (compact.getnnz(axis=1) == 5).all()
    top = np.sort(mapping, axis=1)[:, -5:].sum(axis=1)
    np.testing.assert_allclose(np.asarray(compact.sum(axis=1)).ravel(), top, rtol=1e-5)


def test_bad_input_is_refused_and_changes_nothing(cerebellum):
    spatial, reference = cerebellum
    before = _snapshot(spatial)
    with pytest.raises(ValueError, match="unknown method 'magic'"):
        map_cells(spatial, reference, method="magic")
    empty = spatial.copy()
    no_counts = np.ones(empty.n_obs)
    no_counts[3] = 0
    empty.layers["counts"] = sparse.csr_matrix(sparse.diags(no_counts) @ empty.layers["counts"])
    with pytest.raises(ValueError, match="1 spots of the spatial data have no counts"):
        map_cells(empty, reference, verbose=False)
    renamed = spatial.copy()
    renamed.var_names = [f"other{i}" if i % 4 else g for i, g in enumerate(renamed.var_names)]
    with pytest.raises(ValueError, match=r"the reference has 95 of the spatial data's 378 genes \(25%\)"):
        map_cells(renamed, reference, verbose=False)
    with pytest.raises(ValueError, match="2 of the genes to impute are not in the reference, e.g. NotAGene"):
        map_cells(spatial, reference, impute_genes=["NotAGene", "Other", reference.var_names[0]], verbose=False)
    with pytest.raises(ValueError, match="1 of the training genes are not in both"):
        map_cells(spatial, reference, training_genes=list(spatial.var_names[:20]) + ["NotAGene"], verbose=False)
    with pytest.raises(ValueError, match="only [0-5] genes with counts in both"):
        map_cells(spatial, reference, training_genes=[g for g in spatial.var_names if g in reference.var_names][:5],
                  verbose=False)
    labelled = reference.copy()
    labelled.obs["cell_type"] = labelled.obs["cell_type"].astype(object)
    labelled.obs.loc[labelled.obs_names[0], "cell_type"] = np.nan
    with pytest.raises(ValueError, match="1 NA values"):
        map_cells(spatial, labelled, labels_key="cell_type", verbose=False)
    with pytest.raises(ValueError, match="'nope' is not in"):
        map_cells(spatial, reference, labels_key="nope", verbose=False)
    lognorm = reference.copy()
    lognorm.layers["counts"] = lognorm.layers["counts"].astype(np.float32) * 0.5
    with pytest.raises(ValueError, match="non-integer"):
        map_cells(spatial, lognorm, method="gimvi", verbose=False)
    _assert_unchanged(spatial, before)  # every refusal came before anything was written


def test_rare_cell_types_are_left_out_with_a_warning(cerebellum):
    spatial, reference = cerebellum
    rare = reference.obs["cell_type"].astype(str).unique()[0]
    keep = (reference.obs["cell_type"] != rare).to_numpy()
    keep[np.flatnonzero(~keep)[:2]] = True  # two cells of that type remain
    reference = reference[keep].copy()
    with pytest.warns(UserWarning, match=f"fewer than 3 reference cells are left out: {rare}"):
        result = map_cells(spatial, reference, method="knn", labels_key="cell_type", verbose=False)
    assert rare not in result.cell_types.columns
    np.testing.assert_allclose(result.cell_types.sum(axis=1), 1.0, rtol=1e-5)
