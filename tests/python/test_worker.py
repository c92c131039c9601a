"""The worker process route (isthmus._worker): a job saved, run by `python -m isthmus._worker` in
a process of its own, read back in the shape of the in-process route; its errors come back with
their type and message."""

import subprocess
import sys

import anndata as ad
import numpy as np
import pytest

from isthmus import _r as bridge
from isthmus import _worker


def _run_worker(folder, **options):
    return subprocess.run([sys.executable, "-m", "isthmus._worker", folder], capture_output=True, text=True,
                          **options)


def test_a_job_runs_in_its_own_process_and_returns_the_in_process_shape(tmp_path):
    rng = np.random.default_rng(0)
    embedding = np.vstack([rng.normal(0, 1, (30, 3)), rng.normal(8, 1, (30, 3))])
    kwargs = {"use_rep": "X_rep", "key_added": "clusters", "random_state": 0}
    folder = _worker.write_job("cluster", [{"obsm": {"X_rep": embedding}}], kwargs, None, None, str(tmp_path))
    assert _run_worker(folder).returncode == 0
    from_worker = _worker.read_result(folder)["value"]
    inside = bridge.call("run", "cluster", [{"obsm": {"X_rep": embedding}}], kwargs)["value"]
    np.testing.assert_array_equal(from_worker["value"], inside["value"])


def test_the_workers_error_is_raised_again_with_its_message(tmp_path):
    adata = ad.AnnData(np.ones((5, 4), dtype=np.float32))
    folder = _worker.write_job("integrate", [adata], {"method": "pca", "batch_key": None, "max_epochs": -1},
                               None, {"max_epochs": "max_epochs"}, str(tmp_path))
    assert _run_worker(folder).returncode == 1
    with pytest.raises(ValueError, match="max_epochs must be at least 1"):
        _worker.read_result(folder)


def test_two_cpu_processes_train_one_scvi_model_with_ddp(tmp_path):
    """devices = 2 on the CPU: Lightning's DDP over gloo, the worker started again as rank 1 by
    Lightning; rank 0 alone hands back the latent space and saves the model. The counts are on disk
    (a backed .h5ad): both ranks train from the one copy of the genes rank 0 makes, gone at the end."""
    import os

    rng = np.random.default_rng(0)
    counts = rng.poisson(rng.gamma(2.0, 1.0, (1, 40)) * rng.uniform(0.5, 2, (120, 1)), (120, 40)).astype(np.float32)
    ad.AnnData(counts).write_h5ad(tmp_path / "counts.h5ad")
    adata = ad.read_h5ad(tmp_path / "counts.h5ad", backed="r")
    adata.obs["batch"] = np.repeat(["a", "b"], 60)
    kwargs = {"method": "scvi", "batch_key": "batch", "layer": None, "genes": "all", "n_latent": 4,
              "max_epochs": 2, "accelerator": "cpu", "devices": 2, "model_dir": str(tmp_path / "model"),
              "random_state": 0, "verbose": True}
    (tmp_path / "job").mkdir()
    (tmp_path / "tmp").mkdir()
    folder = _worker.write_job("integrate", [adata], kwargs, None, None, str(tmp_path / "job"))
    run = _run_worker(folder, timeout=240, cwd=tmp_path, env={**os.environ, "TMPDIR": str(tmp_path / "tmp")})
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    # rank 0 copied the genes once (rank 1 prints nowhere: that it maps this copy rather than making
    # its own is test_on_disk's), and nothing of the copy is left
    assert run.stdout.count("isthmus counts on disk: copying 40 genes x 120 cells") == 1, run.stdout[-2000:]
    assert not [name for name in os.listdir(tmp_path / "tmp") if name.startswith("isthmus-genes-")]
    # two processes really trained: scvi-tools' DDP notice comes once from each rank
    assert run.stderr.count("disabled due to the use of DDP") == 2, run.stderr[-2000:]
    out = _worker.read_result(folder)["value"]
    assert np.asarray(out["written"]["obsm/X_scvi"]).shape == (120, 4)
    assert out["record"]["params"]["device"] == "cpu x2 (ddp_find_unused_parameters_true)"
    assert (tmp_path / "model" / "model.pt").exists()
    assert not (tmp_path / "lightning_logs").exists()  # scvi-tools' DDP history goes to a temporary folder


def test_several_devices_for_a_one_device_method_name_the_argument():
    from isthmus import tl

    adata = ad.AnnData(np.ones((10, 5), dtype=np.float32))
    adata.obsm["spatial"] = np.random.default_rng(0).uniform(size=(10, 2))
    with pytest.raises(ValueError, match="devices = 2: .* trains on one device"):
        tl.spatial_domains(adata, n_domains=2, accelerator="cpu", devices=2)
