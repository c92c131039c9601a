import anndata as ad
import numpy as np
import pytest

import isthmus


def test_embed_scvi_writes_latent_and_record(extdata):
    adata = ad.read_h5ad(extdata / "pbmc_3batch_symphony.h5ad")
    adata.layers["counts"] = adata.X.copy()
    model = isthmus.tl.embed(adata, batch_key="batch", n_latent=5, max_epochs=1, verbose=False)
    assert adata.obsm["X_scvi"].shape == (adata.n_obs, 5)
    assert adata.uns["scvi"]["params"]["batch_key"] == "batch"
    assert model.is_trained
    again = adata.copy()
    isthmus.tl.embed(again, batch_key="batch", n_latent=5, max_epochs=1, verbose=False)
    np.testing.assert_allclose(again.obsm["X_scvi"], adata.obsm["X_scvi"], rtol=1e-5, atol=1e-6)


def test_embed_refuses_normalised_data(extdata):
    adata = ad.read_h5ad(extdata / "pbmc_3batch_symphony.h5ad")
    adata.layers["counts"] = adata.X.copy()
    adata.layers["counts"].data = np.log1p(adata.layers["counts"].data)
    with pytest.raises(ValueError, match="non-integer"):
        isthmus.tl.embed(adata, max_epochs=1, verbose=False)
