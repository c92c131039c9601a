"""isthmus._r.call, the one door R goes through: isthmus's warnings come back as text (R raises
them as R warnings), other libraries' warnings are shown as usual, errors pass through."""

import warnings

import pytest

from isthmus import _r as bridge


def _warns_twice(x):
    warnings.warn("isthmus: labels with fewer than 3 cells are treated as unlabelled: HSC", UserWarning)
    warnings.warn("Last batch will have a small size of 2 samples.", UserWarning)
    return {"doubled": 2 * x}


def _fails_after_warning():
    warnings.warn("isthmus: about to fail", UserWarning)
    raise ValueError("isthmus: bad input")


def test_isthmus_warnings_return_as_text_and_others_are_shown(monkeypatch):
    monkeypatch.setattr(bridge, "warns_twice", _warns_twice, raising=False)
    with pytest.warns(UserWarning, match="Last batch") as shown:
        out = bridge.call("warns_twice", 21)
    assert out["value"] == {"doubled": 42}
    assert out["warnings"] == ["isthmus: labels with fewer than 3 cells are treated as unlabelled: HSC"]
    assert [str(w.message) for w in shown] == ["Last batch will have a small size of 2 samples."]


def test_a_failing_call_raises_and_shows_what_it_warned(monkeypatch):
    monkeypatch.setattr(bridge, "fails_after_warning", _fails_after_warning, raising=False)
    with pytest.warns(UserWarning, match="about to fail"), pytest.raises(ValueError, match="bad input"):
        bridge.call("fails_after_warning")


@pytest.mark.parametrize("name", ["no_such_function", "_prepare", "warnings"])
def test_only_public_bridge_functions_can_be_called(name):
    with pytest.raises(ValueError, match="no bridge function"):
        bridge.call(name)


def test_run_returns_one_shape_for_every_task():
    """bridge.run: what a task wrote, by registry path, its record and its value; tables as
    {".frame", ".rows"}; an embedding given as parts becomes an AnnData."""
    import numpy as np

    rng = np.random.default_rng(0)
    embedding = np.vstack([rng.normal(0, 1, (30, 3)), rng.normal(8, 1, (30, 3))])
    out = bridge.call("run", "cluster", [{"obsm": {"X_rep": embedding}}],
                      {"use_rep": "X_rep", "key_added": "clusters", "random_state": 0.0})["value"]
    assert set(out) == {"value", "written", "record", "figure"}
    labels = out["value"]
    assert labels.dtype.kind == "U" and not set(labels[:30]) & set(labels[30:])  # the two groups apart
    assert out["written"] == {} and out["record"] is None  # a score or helper has only its value


def test_run_collects_the_written_entries_and_record_of_a_task():
    import anndata as ad
    import numpy as np
    from scipy import sparse

    rng = np.random.default_rng(0)
    counts = sparse.csr_matrix(rng.poisson(2, (60, 40)).astype(np.float32))
    adata = ad.AnnData(counts, obs={"cells": [f"c{i}" for i in range(60)]})
    adata.obs_names = adata.obs["cells"].astype(str)
    out = bridge.run("integrate", [adata], {"method": "pca", "batch_key": None, "layer": None, "key_added": "X_pca_run", "random_state": 3})
    assert list(out["written"]) == ["obsm/X_pca_run"]  # uns entries (the record) cross only as the record
    assert out["written"]["obsm/X_pca_run"].shape[0] == 60
    assert out["record"]["method"] == "pca" and out["record"]["params"]["random_state"] == 3


def test_data_frames_cross_as_columns_both_ways():
    import pandas as pd

    frame = bridge._argument({".frame": {"ligand": "A", "receptor": "B"}})  # a one-row frame from R
    assert frame.to_dict("list") == {"ligand": ["A"], "receptor": ["B"]}
    parts = bridge._plain_parts(pd.DataFrame({"x": pd.Categorical(["a", "b"]), "y": [1.0, 2.0]}, index=["r1", "r2"]))
    assert list(parts[".frame"]["x"]) == ["a", "b"] and parts[".rows"] == ["r1", "r2"]
