"""Fitting the scvi-tools models the tasks share (scVI, scANVI on top of it), seeded and saved."""

from __future__ import annotations

import warnings
from typing import Any, Sequence

import numpy as np

from . import _common

# The labels scANVI trains on (the user's column with NA -> unlabelled, rare labels dropped), kept
# in obs beside the user's own column as scvi-tools keeps its "_scvi_*" columns.
LABELS_COLUMN = "_isthmus_labels"


def _as_list(keys) -> list[str] | None:
    if keys is None:
        return None
    keys = [keys] if isinstance(keys, str) else list(keys)
    return keys or None


def fit_scvi(
    adata,
    *,
    layer: str | None,
    batch_key: str | None,
    labels=None,
    categorical_covariate_keys: Sequence[str] | None = None,
    continuous_covariate_keys: Sequence[str] | None = None,
    n_latent: int = 10,
    max_epochs: int | None = None,
    allow_non_integer: bool = False,
    random_state: int = 0,
    verbose: bool = True,
    **model_kwargs: Any,
):
    """scVI on raw counts; returns the trained model. The matrices are read, never written, so
    R's shared read-only memory is safe (setup_anndata only adds registry entries to obs/uns)."""
    import scvi

    # the columns were checked by the task (the runner's one check); the counts are this model's
    categorical, continuous = _as_list(categorical_covariate_keys), _as_list(continuous_covariate_keys)
    _common.check_counts(adata, layer, allow_non_integer=allow_non_integer)
    _common.seed_everything(random_state)
    setup = dict(layer=layer, batch_key=batch_key, categorical_covariate_keys=categorical,
                 continuous_covariate_keys=continuous)
    if labels is not None:  # scANVI is built from this model and needs the labels registered
        adata.obs[LABELS_COLUMN] = np.asarray(labels, dtype=object)
        setup["labels_key"] = LABELS_COLUMN
    with warnings.catch_warnings():
        # labels with < 3 cells were made unlabelled above (with isthmus's own warning), so scvi-tools'
        # "fewer than 3 cells" can only be about the unlabelled category, which needs no minimum
        warnings.filterwarnings("ignore", message=r".*_scvi_labels'\] has fewer than 3 cells.*")
        if allow_non_integer:  # the user opted in: scvi-tools' "not count data" warnings are answered
            warnings.filterwarnings("ignore", message=".*does not contain unnormalized count data.*")
            warnings.filterwarnings("ignore", message=".*must be within the support of the distribution.*")
        scvi.model.SCVI.setup_anndata(adata, **setup)
        model = scvi.model.SCVI(adata, n_latent=int(n_latent), **model_kwargs)
        _common.train(model, label="scVI", max_epochs=max_epochs, verbose=verbose)
    return model


def fit_scanvi(scvi_model, adata, *, max_epochs: int | None = 20, random_state: int = 0,
               verbose: bool = True):
    """scANVI initialised from a trained scVI model (scvi-tools' recommended route)."""
    import scvi

    _common.seed_everything(random_state)
    with warnings.catch_warnings():  # as in fit_scvi: only the unlabelled category can be that small
        warnings.filterwarnings("ignore", message=r".*_scvi_labels'\] has fewer than 3 cells.*")
        model = scvi.model.SCANVI.from_scvi_model(scvi_model, unlabeled_category=_common.UNLABELLED,
                                                  labels_key=LABELS_COLUMN, adata=adata)
        _common.train(model, label="scANVI", max_epochs=max_epochs, verbose=verbose, n_samples_per_label=100)
    return model
