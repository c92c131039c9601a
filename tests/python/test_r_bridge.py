"""R <-> Python through files (isthmus.io.read_rds / write_rds) and the peer check with anndata2ri."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest


def test_read_rds_and_write_rds_round_trip_a_seurat_object(tmp_path, run_r):
    rds = tmp_path / "pbmc_small.rds"
    run_r(f'data("pbmc_small", package = "SeuratObject"); saveRDS(pbmc_small, "{rds}")')
    import isthmus.io

    adata = isthmus.io.read_rds(rds)
    assert adata.shape == (80, 230)
    assert {"X_pca", "X_tsne"} <= set(adata.obsm)
    assert list(adata.obs["RNA_snn_res.1"].cat.categories) == ["0", "1", "2"]
    out = tmp_path / "back.rds"
    isthmus.io.write_rds(adata, out)
    same = run_r(
        f'data("pbmc_small", package = "SeuratObject"); b <- readRDS("{out}"); '
        'cat(identical(b@meta.data, pbmc_small@meta.data), '
        'identical(b[["RNA"]]@counts, pbmc_small[["RNA"]]@counts), '
        'identical(Seurat::Embeddings(b, "pca"), Seurat::Embeddings(pbmc_small, "pca")))'
    )
    assert same.strip().split()[-3:] == ["TRUE", "TRUE", "TRUE"]


def test_our_anndata_from_an_sce_equals_anndata2ri(tmp_path, run_r):
    """Peer cross-check: X, obs and obsm from isthmus equal anndata2ri's conversion of one SCE."""
    anndata2ri = pytest.importorskip("anndata2ri")
    ro = pytest.importorskip("rpy2.robjects")
    from rpy2.robjects.conversion import localconverter

    rds, h5ad = tmp_path / "sce.rds", tmp_path / "ours.h5ad"
    run_r(
        'suppressMessages(library(Seurat)); data("pbmc_small", package = "SeuratObject"); '
        "sce <- suppressWarnings(as.SingleCellExperiment(pbmc_small)); "
        f'saveRDS(sce, "{rds}"); isthmus::write_h5ad(sce, "{h5ad}", x_layer = "counts")'
    )
    ours = ad.read_h5ad(h5ad)
    with localconverter(anndata2ri.converter):
        theirs = ro.r(f'readRDS("{rds}")')
    # anndata2ri puts the first assay (counts) in X, like our x_layer = "counts"
    np.testing.assert_array_equal(np.asarray(ours.X.todense()), np.asarray(theirs.X.todense() if hasattr(theirs.X, "todense") else theirs.X))
    assert list(ours.obs_names) == list(theirs.obs_names)
    for col in theirs.obs.columns:
        left, right = ours.obs[col], theirs.obs[col]
        if isinstance(right.dtype, pd.CategoricalDtype):
            assert list(left.cat.categories) == list(right.cat.categories), col
        pd.testing.assert_series_equal(
            left.reset_index(drop=True).astype(object),
            right.reset_index(drop=True).astype(object),
            check_names=False,
            check_dtype=False,
        )
    assert set(ours.obsm) == set(theirs.obsm)
    for key in theirs.obsm:
        np.testing.assert_allclose(np.asarray(ours.obsm[key]), np.asarray(theirs.obsm[key]))
