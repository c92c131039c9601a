"""Where models run (accelerator / devices / batch_size, resolved once by the runner) and the genes
the count models train on (variable genes by default), on tiny slices of the bundled PBMC data."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scanpy as sc
import torch

import isthmus.tl as tl
from isthmus import _arguments
from isthmus.tl import _common

no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="'auto' is the GPU on this machine")


@pytest.fixture()
def pbmc(extdata):
    adata = ad.read_h5ad(extdata / "pbmc_3batch_symphony.h5ad")[::4].copy()
    adata.obs["batch"] = adata.obs["batch"].astype(str)
    return adata


def _scvi(adata, **kwargs):
    tl.integrate(adata, batch_key="batch", n_latent=4, max_epochs=2, verbose=False, **kwargs)
    return adata.obsm["X_scvi"], adata.uns["scvi"]["params"]


# ---- devices --------------------------------------------------------------------------------------


@no_gpu
def test_auto_is_the_cpu_here_with_the_same_numbers_and_the_record_says_so(pbmc):
    auto, auto_params = _scvi(pbmc.copy())
    cpu, cpu_params = _scvi(pbmc.copy(), accelerator="cpu", devices=1, batch_size=128)  # scVI's own batch size
    np.testing.assert_array_equal(auto, cpu)
    assert auto_params["device"] == cpu_params["device"] == "cpu"
    assert auto_params["accelerator"] == "auto" and cpu_params["batch_size"] == 128
    _, other = _scvi(pbmc.copy(), batch_size=64)  # the batch size reaches the model
    assert other["batch_size"] == 64
    assert not np.array_equal(_scvi(pbmc.copy(), batch_size=64)[0], auto)


def test_auto_resolves_to_the_gpu_only_when_torch_sees_one(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert _common.resolve_device("auto").name == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    device = _common.resolve_device("auto")
    assert (device.accelerator, device.devices, device.name, device.torch) == ("gpu", 1, "cuda:0", "cuda:0")
    device = _common.resolve_device("gpu", [1], batch_size=512)
    assert device.name == "cuda:1" and device.train_kwargs() == {"accelerator": "gpu", "devices": [1],
                                                                  "batch_size": 512}
    assert device.load_kwargs() == {"accelerator": "gpu", "device": 1}


def test_bad_device_arguments_are_refused_by_name_before_any_work(pbmc, monkeypatch):
    before = set(pbmc.obsm), set(pbmc.uns)
    with pytest.raises(ValueError, match=r"accelerator must be one of 'auto', 'cpu', 'gpu', 'cuda'; got 'tpu'"):
        tl.integrate(pbmc, batch_key="batch", accelerator="tpu")
    with pytest.raises(ValueError, match=r"devices must be \"auto\", a number of devices"):
        tl.integrate(pbmc, batch_key="batch", devices="two")
    with pytest.raises(ValueError, match="batch_size must be at least 1; got 0"):
        tl.integrate(pbmc, batch_key="batch", batch_size=0)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="accelerator = 'gpu', but torch sees no GPU"):
        tl.integrate(pbmc, batch_key="batch", accelerator="gpu")
    with pytest.raises(ValueError, match="lists GPU indices, but the models run on the CPU"):
        tl.integrate(pbmc, batch_key="batch", devices=[0])
    with _arguments.names_of({"random_state": "seed.use"}, "r"):
        with pytest.raises(ValueError, match=r'accelerator must be one of "auto", "cpu"'):
            tl.integrate(pbmc, batch_key="batch", accelerator="tpu")
    assert (set(pbmc.obsm), set(pbmc.uns)) == before


@no_gpu
def test_the_own_models_record_their_device_and_keep_their_numbers(extdata):
    from isthmus.models import fit_cell_mapping

    rng = np.random.default_rng(0)
    cells, spots = rng.random((30, 8)), rng.random((10, 8))
    default, _ = fit_cell_mapping(cells, spots, max_epochs=5, verbose=False)
    with _common.using_device(_common.resolve_device("auto")):
        on_cpu, _ = fit_cell_mapping(cells, spots, max_epochs=5, verbose=False, device=_common.current_device().torch)
    assert torch.equal(default.logits, on_cpu.logits)


# ---- genes ----------------------------------------------------------------------------------------


def test_the_datas_own_variable_genes_are_the_default(pbmc):
    marked = pbmc.var_names[::3]
    pbmc.var["highly_variable"] = pbmc.var_names.isin(marked)
    _, params = _scvi(pbmc)
    assert params["genes_used"] == list(marked) and params["n_genes_used"] == len(marked)
    assert params["genes_from"] == "var['highly_variable']"


def test_without_marks_the_standard_selection_on_the_counts_per_batch(pbmc):
    _, params = _scvi(pbmc, n_top_genes=300)
    # batches of 100 cells: Seurat's loess span (0.3) is singular there, a wider one is used and recorded
    assert params["genes_from"].startswith("seurat_v3 per batch (loess span")
    span = float(params["genes_from"].split("span ")[1].rstrip(")"))
    expected = sc.pp.highly_variable_genes(ad.AnnData(pbmc.layers["counts"], obs=pbmc.obs[["batch"]],
                                                      var=pd.DataFrame(index=pbmc.var_names)),
                                           flavor="seurat_v3", n_top_genes=300, batch_key="batch", span=span,
                                           inplace=False)
    assert params["genes_used"] == list(pbmc.var_names[expected["highly_variable"].to_numpy()])
    assert params["n_genes_used"] == 300
    # data with no more genes than that: every gene
    del pbmc.obsm["X_scvi"]
    _, params = _scvi(pbmc)
    assert params["n_genes_used"] == pbmc.n_vars and params["genes_from"].startswith("all (no more than")
    # no batch: one trend over every cell
    tl.integrate(pbmc, batch_key=None, n_latent=4, max_epochs=1, n_top_genes=300, verbose=False)
    assert pbmc.uns["scvi"]["params"]["genes_from"].startswith("seurat_v3")
    assert "per batch" not in pbmc.uns["scvi"]["params"]["genes_from"]


def test_genes_chooses_all_or_a_list_and_all_is_todays_model(pbmc):
    pbmc.var["highly_variable"] = pbmc.var_names.isin(pbmc.var_names[:100])
    everything, params = _scvi(pbmc.copy(), genes="all")
    assert params["n_genes_used"] == pbmc.n_vars and params["genes_from"] == "all"
    unmarked = pbmc.copy()
    del unmarked.var["highly_variable"]
    np.testing.assert_array_equal(_scvi(unmarked, genes="all")[0], everything)  # the marks change nothing
    chosen = list(dict.fromkeys(["CD3E", "MS4A1", "LYZ", *pbmc.var_names[200:240]]))  # in the order given
    _, params = _scvi(pbmc.copy(), genes=chosen)
    assert params["genes_used"] == chosen and params["genes_from"] == "given"
    before = set(pbmc.obsm)
    with pytest.raises(ValueError, match=r"genes must be 'variable', 'all' or names of the data's genes; 1 of 2"):
        tl.integrate(pbmc, batch_key="batch", genes=["CD3E", "NOT_A_GENE"])
    assert set(pbmc.obsm) == before


def test_results_per_gene_say_which_genes_they_cover(pbmc, tmp_path):
    pbmc.var["highly_variable"] = pbmc.var_names.isin(pbmc.var_names[::5])
    model = tl.integrate(pbmc, batch_key="batch", n_latent=4, max_epochs=1, verbose=False,
                         model_dir=str(tmp_path / "m"))
    trained = list(pbmc.var_names[::5])
    for given in (model, str(tmp_path / "m")):  # a model, and a saved one reloaded on the full data
        values = tl.denoise(pbmc, model=given, n_samples=2)
        assert values.shape == (pbmc.n_obs, len(trained))
        assert pbmc.uns["scvi_denoised"]["params"]["genes"] == trained
        layer = pbmc.layers["scvi_denoised"]
        assert np.isnan(layer[:, ~pbmc.var["highly_variable"].to_numpy()]).all()
        assert np.isfinite(layer[:, pbmc.var["highly_variable"].to_numpy()]).all()
    with pytest.raises(ValueError, match="not among the .* genes the model was trained on"):
        tl.denoise(pbmc, model=model, genes=[pbmc.var_names[1]])
    synthetic = tl.generate(pbmc, model=model, n_cells=5)
    assert list(synthetic.var_names) == trained and synthetic.uns["generate"]["params"]["genes"] == trained
