"""RNA + protein: totalVI and the per-modality PCA baseline on the bundled ECCITE-seq cells."""

import mudata as md
import numpy as np
import pytest

from isthmus import tl

md.set_options(pull_on_update=False)  # mudata 0.4's behaviour, without its FutureWarning on every copy


@pytest.fixture()
def eccite(extdata):
    return md.read_h5mu(extdata / "citeseq_eccite_500_citefuse.h5mu")


def test_totalvi_gives_a_joint_space_denoised_protein_and_background(eccite):
    out = tl.rna_protein(eccite, max_epochs=3, n_latent=8, random_state=1, verbose=False)
    assert out["latent"].shape == (500, 8)
    assert np.array_equal(eccite.obsm["X_totalvi"], out["latent"])
    background = eccite.mod["prot"].layers["totalvi_background"]
    denoised = eccite.mod["prot"].layers["totalvi_denoised"]
    assert background.shape == denoised.shape == (500, 49)
    assert np.all((background >= 0) & (background <= 1))
    assert np.all(denoised >= 0)
    assert eccite.uns["totalvi"]["params"]["proteins"] == list(eccite.mod["prot"].var_names)
    # a fixed seed gives the same model
    again = tl.rna_protein(eccite.copy(), max_epochs=3, n_latent=8, random_state=1, verbose=False)
    np.testing.assert_allclose(again["latent"], out["latent"], rtol=1e-5, atol=1e-5)


def test_per_modality_pca_baseline(eccite):
    out = tl.rna_protein(eccite, method="pca", n_comps=10)
    assert eccite.obsm["X_rna_pca"].shape == (500, 10)
    assert eccite.obsm["X_protein_pca"].shape == (500, 10)
    assert out["latent"].shape == (500, 20)
    assert np.array_equal(eccite.obsm["X_rna_protein_pca"], out["latent"])


def test_modalities_with_different_cells_are_refused_and_reordered_cells_aligned(eccite):
    rna = eccite.mod["rna"]
    prot = eccite.mod["prot"]
    shifted = prot.copy()
    shifted.obs_names = [f"other_{n}" if i < 3 else n for i, n in enumerate(prot.obs_names)]
    with pytest.raises(ValueError, match="different cells: 3 only in rna, 3 only in prot"):
        tl._rna_protein.aligned_modalities(rna, shifted, protein_name="prot")
    reversed_prot = prot[::-1].copy()
    aligned = tl._rna_protein.aligned_modalities(rna, reversed_prot)
    assert np.array_equal(aligned.obs_names, rna.obs_names)
    assert np.array_equal(aligned.X.toarray() if hasattr(aligned.X, "toarray") else aligned.X,
                          prot.X.toarray() if hasattr(prot.X, "toarray") else prot.X)


def test_all_zero_antibodies_are_left_out_with_a_warning(eccite):
    prot = eccite.mod["prot"]
    values = prot.X.toarray() if hasattr(prot.X, "toarray") else np.asarray(prot.X).copy()
    values[:, :2] = 0
    prot.X = values
    with pytest.warns(UserWarning, match="2 antibodies have no counts"):
        out = tl.rna_protein(eccite, max_epochs=1, n_latent=4, verbose=False)
    assert out["denoised"].shape == (500, 47)
    layer = prot.layers["totalvi_background"]
    assert np.isnan(layer[:, :2]).all() and not np.isnan(layer[:, 2:]).any()


def test_bad_input_is_named(eccite):
    with pytest.raises(ValueError, match="no modality 'adt'"):
        tl.rna_protein(eccite, protein="adt")
    eccite.mod["prot"].X = eccite.mod["prot"].X * 0.5
    with pytest.raises(ValueError, match="non-integer"):
        tl.rna_protein(eccite, max_epochs=1)
