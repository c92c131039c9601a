"""The task runner's own pieces: the one argument check (in Python's and R's words), the record
from the call's arguments, global settings put back, own models saved and reloaded, and the
refusals of load_model."""

import logging

import anndata as ad
import numpy as np
import pytest
import torch

import isthmus.tl as tl
from isthmus import _arguments
from isthmus.models import CellMapper, GraphAttentionAutoencoder, fit_cell_mapping
from isthmus.tl import _runner


def test_arguments_are_checked_and_named_as_the_caller_types_them():
    check = _runner.check_argument
    assert check("max_epochs", 3.0, "int", True) == 3 and check("max_epochs", None, "int", True) is None
    assert check("n_latent", [5], "int", False) == 5  # R's length-1 vector
    with pytest.raises(ValueError, match=r"max_epochs must be at least 1; got -1"):
        check("max_epochs", -1, "int", True)
    with pytest.raises(ValueError, match=r"max_epochs must be a whole number; got 2.7"):
        check("max_epochs", 2.7, "int", True)
    with pytest.raises(ValueError, match=r"random_state must be a whole number; got 'abc'"):
        check("random_state", "abc", "int", False)
    with pytest.raises(ValueError, match=r"threshold must be between 0 and 1; got 2"):
        check("threshold", 2, "float", False)
    with pytest.raises(ValueError, match=r"verbose must be True or False"):
        check("verbose", "yes", "bool", False)
    with _arguments.names_of({"random_state": "seed.use", "n_domains": "n.domains"}, "r"):
        with pytest.raises(ValueError, match=r"seed.use must be a whole number; got \"abc\""):
            check("random_state", "abc", "int", False)
        with pytest.raises(ValueError, match=r"n.domains must be a single value, not 2 \(c\(3, 5\)\)"):
            check("n_domains", [3.0, 5.0], "int", True)
        with pytest.raises(ValueError, match=r"verbose must be TRUE or FALSE"):
            check("verbose", "yes", "bool", False)
        assert _arguments.setting("allow_non_integer", True) == "allow_non_integer = TRUE"
    assert _arguments.setting("allow_non_integer", True) == "allow_non_integer=True"


def test_a_task_refuses_bad_arguments_before_any_work(extdata):
    adata = ad.read_h5ad(extdata / "pbmc_3batch_symphony.h5ad")[:100].copy()
    before = set(adata.obsm), set(adata.uns)
    with pytest.raises(ValueError, match="n_latent must be at least 1; got 0"):
        tl.integrate(adata, batch_key="batch", n_latent=0)
    with pytest.raises(ValueError, match="continuous numbers"):
        tl.integrate(adata, batch_key="percent_mito", max_epochs=1)
    assert (set(adata.obsm), set(adata.uns)) == before


def test_the_record_keeps_the_calls_arguments_and_model_kwargs(extdata, tmp_path):
    adata = ad.read_h5ad(extdata / "pbmc_3batch_symphony.h5ad")[::4].copy()
    tl.integrate(adata, batch_key="batch", max_epochs=1, n_latent=4, n_hidden=32, dropout_rate=0.2,
                 model_dir=str(tmp_path), verbose=False)
    params = adata.uns["scvi"]["params"]
    assert params["model_kwargs"] == {"n_hidden": 32, "dropout_rate": 0.2}
    assert params["n_latent"] == 4 and params["max_epochs"] == 1 and params["batch_key"] == "batch"
    assert params["epochs_trained"] == 1 and params["use_rep"] == ""


def test_global_settings_are_put_back(extdata):
    import scvi

    adata = ad.read_h5ad(extdata / "pbmc_3batch_symphony.h5ad")[::4].copy()
    scvi.settings.verbosity = logging.INFO
    threads = torch.get_num_threads()
    tl.integrate(adata, batch_key="batch", max_epochs=1, n_latent=4, verbose=False)
    assert scvi.settings.verbosity == logging.INFO and torch.get_num_threads() == threads


def test_own_models_save_and_reload(tmp_path):
    rng = np.random.default_rng(0)
    cells, spots = rng.random((20, 6)).astype(np.float32), rng.random((8, 6)).astype(np.float32)
    module, history = fit_cell_mapping(cells, spots, max_epochs=5, random_state=1, verbose=False)
    module.save(str(tmp_path / "mapper"))
    back = tl.load_model(str(tmp_path / "mapper"))
    assert isinstance(back, CellMapper) and back.history_["cosine"] == history
    torch.testing.assert_close(back.mapping(), module.mapping())
    gat = GraphAttentionAutoencoder(6, 8, 3)
    gat.save(str(tmp_path / "gat"))
    assert tl.load_model(str(tmp_path / "gat")).init_params_ == {"n_input": 6, "n_hidden": 8, "n_latent": 3}


def test_load_model_names_what_is_wrong(extdata, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="holds no saved model"):
        tl.load_model(str(empty))
    with pytest.raises(ValueError, match="no such directory"):
        tl.load_model(str(tmp_path / "nope"))
    adata = ad.read_h5ad(extdata / "pbmc_3batch_symphony.h5ad")[::4].copy()
    adata.obs["batch"] = adata.obs["batch"].astype(str)
    seen = adata[adata.obs["batch"] != "5p"].copy()
    tl.integrate(seen, batch_key="batch", max_epochs=1, n_latent=4, model_dir=str(tmp_path / "m"), verbose=False)
    with pytest.raises(ValueError, match="batches the saved model was not trained on: 5p"):
        tl.denoise(adata, model=str(tmp_path / "m"), genes=["CD3E"], n_samples=2)
