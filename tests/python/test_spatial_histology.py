"""Image features of spots (tl._histology) and the graph model's image_features option."""

import json

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from isthmus import tl
from isthmus.tl import _histology

LEFT, RIGHT = (0.2, 0.4, 0.6), (0.9, 0.1, 0.5)


def _two_colour_slide(*, hires: bool = False, uint8: bool = True):
    """A 60 x 60 image, left half LEFT and right half RIGHT, at scale 0.5 of the full-resolution
    pixels; spots of 8 full-resolution pixels (4 image pixels across): two well inside each half,
    one on the border (full-resolution x = 60, image column 30)."""
    image = np.zeros((60, 60, 3))
    image[:, :30] = LEFT
    image[:, 30:] = RIGHT
    if uint8:
        image = np.round(image * 255).astype(np.uint8)
    xy = np.array([[20.0, 40.0], [30.0, 80.0], [90.0, 40.0], [100.0, 80.0], [60.0, 60.0]])  # (x, y) full-res
    adata = ad.AnnData(X=sparse.csr_matrix(np.ones((5, 3))), obs=pd.DataFrame(index=[f"s{i}" for i in range(5)]))
    adata.obsm["spatial"] = xy
    which = "hires" if hires else "lowres"
    adata.uns["spatial"] = {"lib": {"images": {which: image},
                                    "scalefactors": {f"tissue_{which}_scalef": 0.5, "spot_diameter_fullres": 8.0}}}
    return adata


def test_patch_means_are_the_colours_under_the_spots():
    features = _histology.spot_image_features(_two_colour_slide())
    assert list(features.columns) == list(_histology.FEATURE_NAMES)
    means = features[["red_mean", "green_mean", "blue_mean"]].to_numpy()
    np.testing.assert_allclose(means[:2], [LEFT, LEFT], atol=1 / 255)
    np.testing.assert_allclose(means[2:4], [RIGHT, RIGHT], atol=1 / 255)
    # the border spot's disk (radius 2 image pixels around column 30) holds 13 pixels: 4 in columns
    # 28-29 (left), 9 in columns 30-32 (right)
    np.testing.assert_allclose(means[4], (4 * np.array(LEFT) + 9 * np.array(RIGHT)) / 13, atol=1 / 255)
    sd = features[["red_sd", "green_sd", "blue_sd"]].to_numpy()
    np.testing.assert_allclose(sd[:4], 0.0, atol=1e-12)
    np.testing.assert_allclose(sd[4], np.abs(np.subtract(LEFT, RIGHT)) * np.sqrt(4 * 9) / 13, atol=2 / 255)
    # texture: flat inside a half; under the border spot the grey step (0.4 -> 0.5) gives central
    # differences of 0.05 in columns 29 and 30, 8 of its 13 pixels
    np.testing.assert_allclose(features["gradient_mean"].to_numpy()[:4], 0.0, atol=1e-12)
    np.testing.assert_allclose(features["gradient_mean"].iloc[4], 0.05 * 8 / 13, atol=0.002)


def test_hires_and_floats_read_the_same():
    lowres = _histology.spot_image_features(_two_colour_slide())
    hires_floats = _histology.spot_image_features(_two_colour_slide(hires=True, uint8=False))
    np.testing.assert_allclose(hires_floats.to_numpy(), lowres.to_numpy(), atol=1 / 255)


def test_missing_image_or_scale_factors_are_named():
    adata = _two_colour_slide()
    del adata.uns["spatial"]
    with pytest.raises(ValueError, match=r"no uns\['spatial'\]"):
        _histology.spot_image_features(adata)
    adata = _two_colour_slide()
    del adata.uns["spatial"]["lib"]["scalefactors"]["tissue_lowres_scalef"]
    with pytest.raises(ValueError, match="tissue_lowres_scalef"):
        _histology.spot_image_features(adata)
    adata = _two_colour_slide()
    del adata.uns["spatial"]["lib"]["scalefactors"]["spot_diameter_fullres"]
    with pytest.raises(ValueError, match="spot_diameter_fullres"):
        _histology.spot_image_features(adata)
    adata = _two_colour_slide()
    adata.obsm["spatial"] = adata.obsm["spatial"] * 10  # scaled coordinates, not pixels
    with pytest.raises(ValueError, match="outside the lowres image"):
        _histology.spot_image_features(adata)


def test_image_block_takes_its_share_of_the_variance():
    rng = np.random.default_rng(0)
    expression = rng.normal(scale=3.0, size=(200, 20))
    features = pd.DataFrame(rng.normal(size=(200, 8)))
    features[7] = 1.0  # a constant feature carries nothing and is left out
    block = _histology.image_block(features, expression, weight=0.1)
    assert block.shape == (200, 7)
    assert block.var(axis=0).sum() == pytest.approx(0.1 * expression.var(axis=0).sum(), rel=1e-4)


@pytest.fixture(scope="module")
def dlpfc_with_image(extdata):
    """The bundled slice in scanpy's Visium layout, from the bundled Space Ranger folder."""
    from PIL import Image

    adata = ad.read_h5ad(extdata / "dlpfc_151673_visium_top1000.h5ad")
    folder = extdata / "dlpfc_151673_spatial"
    positions = pd.read_csv(folder / "tissue_positions_list.txt", header=None, index_col=0)
    adata.obsm["spatial"] = positions.loc[adata.obs_names, [5, 4]].to_numpy(dtype=float)
    adata.uns["spatial"] = {"151673": {
        "images": {"lowres": np.asarray(Image.open(folder / "tissue_lowres_image.png").convert("RGB"))},
        "scalefactors": json.loads((folder / "scalefactors_json.json").read_text())}}
    return adata[:600].copy()


def test_the_graph_model_reads_the_image_when_asked(dlpfc_with_image):
    plain, imaged = dlpfc_with_image.copy(), dlpfc_with_image.copy()
    options = dict(method="gat", n_domains=4, layer=None, n_seeds=1, max_epochs=10, verbose=False)
    tl.spatial_domains(plain, **options)
    tl.spatial_domains(imaged, image_features=True, **options)
    record = imaged.uns["gat"]["params"]
    assert list(record["image_feature_names"]) == list(_histology.FEATURE_NAMES) and record["image_weight"] == 0.1
    assert record["image_features"] is True and plain.uns["gat"]["params"]["image_features"] is False
    assert "image_feature_names" not in plain.uns["gat"]["params"]
    assert imaged.obsm["X_gat"].shape == plain.obsm["X_gat"].shape == (600, 30)
    assert not np.allclose(imaged.obsm["X_gat"], plain.obsm["X_gat"])


def test_image_features_are_refused_where_they_do_not_apply(dlpfc_with_image):
    adata = dlpfc_with_image.copy()
    with pytest.raises(ValueError, match='applies to method "gat" only'):
        tl.spatial_domains(adata, method="pca", n_domains=4, layer=None, n_seeds=1, image_features=True,
                           verbose=False)
    del adata.uns["spatial"]
    with pytest.raises(ValueError, match=r"no uns\['spatial'\]"):
        tl.spatial_domains(adata, method="gat", n_domains=4, layer=None, n_seeds=1, max_epochs=2,
                           image_features=True, verbose=False)
    assert "gat_domain" not in adata.obs and "pca_domain" not in adata.obs
