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


def _run_worker(folder):
    return subprocess.run([sys.executable, "-m", "isthmus._worker", folder], capture_output=True, text=True)


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
