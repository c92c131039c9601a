"""Image features of each spot: the colour and texture of the H&E image under it, for the graph
model of spatial domains (``tl.spatial_domains(..., image_features=True)``).

Reads the layout scanpy and squidpy use (and isthmus's R bridge writes for a Seurat Visium image):
``obsm["spatial"]`` in full-resolution pixels (x = image column, y = image row),
``uns["spatial"][library]["images"]["hires" | "lowres"]`` (H x W x 3, uint8 or floats in [0, 1]) and
``uns["spatial"][library]["scalefactors"]`` (``tissue_hires_scalef`` / ``tissue_lowres_scalef``,
``spot_diameter_fullres``).

How the features enter the model: appended to the graph model's input, so that the autoencoder
has to reconstruct them beside the expression and its embedding (what is clustered) carries them.
SpaGCN puts colour into the graph's distances instead, and stLearn's SME smooths expression over
neighbours weighted by morphological similarity; both change which spots pass information to each
other. Here the graph stays STAGATE's spatial ring, and its attention can still weigh neighbours by
their morphology (the features are in the first layer's input), so the one change is what each
spot says about itself.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import _spatial

FEATURE_NAMES = ("red_mean", "green_mean", "blue_mean", "red_sd", "green_sd", "blue_sd", "gradient_mean",
                 "gradient_sd")


def _library(adata, library_id: str | None) -> tuple[str, dict]:
    spatial = adata.uns.get("spatial") if hasattr(adata, "uns") else None
    if not isinstance(spatial, dict) or not spatial:
        raise ValueError("isthmus: image features need the tissue image: uns['spatial'][library] with 'images' "
                         "and 'scalefactors' (scanpy's Visium layout, e.g. from sc.read_visium or, in R, a Seurat "
                         "object with a Visium image); this data has no uns['spatial'].")
    if library_id is None:
        if len(spatial) > 1:
            raise ValueError(f"isthmus: uns['spatial'] holds {len(spatial)} libraries ({', '.join(map(str, spatial))}); "
                             "image features read one image: subset the data to one slice and name its library.")
        library_id = next(iter(spatial))
    if library_id not in spatial:
        raise ValueError(f"isthmus: library {library_id!r} is not in uns['spatial'] (it has "
                         f"{', '.join(map(str, spatial))}).")
    return str(library_id), spatial[library_id]


def _image_and_scale(entry: dict, library_id: str) -> tuple[np.ndarray, float, float, str]:
    """The sharpest image the library has, the factor from full-resolution pixels to it, and the
    spot diameter in full-resolution pixels."""
    images = entry.get("images") or {}
    factors = entry.get("scalefactors") or {}
    for which in ("hires", "lowres"):
        if images.get(which) is not None and factors.get(f"tissue_{which}_scalef") is not None:
            break
    else:
        raise ValueError(f"isthmus: uns['spatial'][{library_id!r}] needs an image ('hires' or 'lowres' in 'images') "
                         "and its scale factor ('tissue_hires_scalef' / 'tissue_lowres_scalef' in 'scalefactors'); "
                         f"it has images {sorted(images)} and scale factors {sorted(factors)}.")
    if factors.get("spot_diameter_fullres") is None:
        raise ValueError(f"isthmus: uns['spatial'][{library_id!r}]['scalefactors'] has no 'spot_diameter_fullres' "
                         "(the spot's size in full-resolution pixels), which sets the patch read under each spot.")
    image = np.asarray(images[which], dtype=np.float64)
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise ValueError(f"isthmus: the {which} image must be H x W (grey) or H x W x 3 (RGB); its shape is "
                         f"{image.shape}.")
    image = image[:, :, :3]  # an alpha channel carries no tissue
    if np.nanmax(image) > 1.0:  # 8-bit, as scanpy reads the PNG; Seurat keeps [0, 1]
        image = image / 255.0
    return image, float(factors[f"tissue_{which}_scalef"]), float(factors["spot_diameter_fullres"]), which


def spot_image_features(adata, *, library_id: str | None = None, spatial_key: str = _spatial.SPATIAL_KEY,
                        patch_scale: float = 1.0) -> pd.DataFrame:
    """Colour and texture of the image under each spot: per colour channel the mean and standard
    deviation of the pixels within the spot's disk (diameter ``spot_diameter_fullres`` times
    ``patch_scale``, at least the nearest pixel and its 4 neighbours), and the mean and standard
    deviation there of the grey image's gradient magnitude (a simple texture: nuclei and fibres
    give edges). Values are on the image's [0, 1] scale; a grey image gives its one channel three
    times. Reads the hires image when there is one, else the lowres (SpaGCN and stLearn read the
    full-resolution image; a Visium lowres image has about 4 pixels across a spot).

    Returns a spots x 8 DataFrame (columns :data:`FEATURE_NAMES`, index ``obs_names``); writes
    nothing. Errors name what is missing: the image, its scale factor, the spot size, or spots
    whose disk lies outside the image."""
    library_id, entry = _library(adata, library_id)
    image, scale, diameter, which = _image_and_scale(entry, library_id)
    xy = _spatial.coordinates(adata, spatial_key) * scale  # (column, row) in the image's pixels
    height, width, channels = image.shape
    radius = max(diameter * scale * float(patch_scale) / 2.0, 1.0)

    grey = image.mean(axis=2)
    d_row, d_col = np.gradient(grey)
    gradient = np.hypot(d_row, d_col)
    stack = np.concatenate([image, gradient[:, :, None]], axis=2)

    # every pixel whose centre lies within the radius of the spot's centre: offsets around the
    # pixel the centre falls in, kept per spot by their exact distance
    reach = int(np.ceil(radius)) + 1
    offsets = np.arange(-reach, reach + 1)
    off_row, off_col = [a.ravel() for a in np.meshgrid(offsets, offsets, indexing="ij")]
    base_row, base_col = np.rint(xy[:, 1]).astype(int), np.rint(xy[:, 0]).astype(int)
    rows, cols = base_row[:, None] + off_row[None, :], base_col[:, None] + off_col[None, :]
    inside = (np.hypot(rows - xy[:, [1]], cols - xy[:, [0]]) <= radius)
    inside &= (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
    empty = ~inside.any(axis=1)
    if empty.any():
        names = ", ".join(map(str, adata.obs_names[empty][:5]))
        raise ValueError(f"isthmus: {int(empty.sum())} spots lie outside the {which} image of library "
                         f"{library_id!r} (e.g. {names}): are obsm[{spatial_key!r}] full-resolution pixels, and the "
                         "scale factors this image's?")
    values = stack[np.clip(rows, 0, height - 1), np.clip(cols, 0, width - 1)]  # spots x pixels x (channels + 1)
    weight = inside[:, :, None].astype(np.float64)
    count = weight.sum(axis=1)
    mean = (values * weight).sum(axis=1) / count
    sd = np.sqrt(np.maximum(((values - mean[:, None, :]) ** 2 * weight).sum(axis=1) / count, 0.0))
    colour = np.arange(3) if channels == 3 else np.zeros(3, dtype=int)
    table = np.column_stack([mean[:, colour], sd[:, colour], mean[:, -1], sd[:, -1]])
    return pd.DataFrame(table, index=adata.obs_names.copy(), columns=list(FEATURE_NAMES))


def image_block(features: pd.DataFrame | np.ndarray, expression: np.ndarray, *, weight: float) -> np.ndarray:
    """The image features as the graph model sees them beside ``expression`` (its input, spots x
    components): z-scored (a constant feature becomes 0), rotated to principal components (they
    are strongly correlated: the three colour means move together with the stain), and scaled so
    that their total variance is ``weight`` times the expression's. The MSE the model minimises
    weighs each input by its variance, so ``weight`` is the share of the loss the image can take
    whatever the number of features or the expression's scale (0.1: a tenth of the expression's)."""
    from sklearn.decomposition import PCA

    values = np.asarray(features, dtype=np.float64)
    sd = values.std(axis=0)
    z = (values - values.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    z = z[:, sd > 0]
    if z.shape[1] == 0:
        raise ValueError("isthmus: the image is the same under every spot; its features carry nothing.")
    rotated = PCA(n_components=z.shape[1], svd_solver="full").fit_transform(z)
    total = float(np.asarray(expression, dtype=np.float64).var(axis=0).sum())
    scale = np.sqrt(float(weight) * total / max(float(rotated.var(axis=0).sum()), 1e-12))
    return (rotated * scale).astype(np.float32)


def checked_image_features(adata, entry, spatial_key: str, weight: float) -> pd.DataFrame:
    """spatial_domains' check of ``image_features``: an option of the methods whose registry entry
    (``entry``, the method asked for) lists it (the graph model: the baselines' embeddings are PCAs
    of expression, and adding the image there would be a new baseline, not theirs), a non-negative
    weight, and the image features themselves (errors say what the data lacks)."""
    from .. import _arguments
    from ._registry import methods_taking

    if "image_features" not in entry.options:
        takers = " or ".join(f'"{name}"' for name in methods_taking(entry.task, "image_features"))
        raise ValueError(f"isthmus: {_arguments.setting('image_features', True)} applies to "
                         f"{_arguments.name('method')} {takers} only; got {_arguments.name('method')} "
                         f"{entry.name!r}.")
    if not float(weight) >= 0:
        raise ValueError(f"isthmus: {_arguments.name('image_weight')} must be 0 or more; got {weight}.")
    return spot_image_features(adata, spatial_key=spatial_key)
