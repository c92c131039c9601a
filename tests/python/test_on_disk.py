"""Counts larger than memory (issue 16 item 5): a count model trains from an .h5ad opened in backed
mode, its X memory-mapped (the file's own arrays, or a temporary copy of the chosen genes) and read a
minibatch at a time, and from counts in an HDF5 file R already has (an HDF5Array), linked rather
than copied. The minibatches are the ones the in-memory route reads, so for the same seed the
latent space from disk is the in-memory one, exactly."""

import tempfile

import os

import anndata as ad
import h5py
import numpy as np
import pytest
from scipy import sparse

from isthmus import tl
from isthmus.tl import _on_disk

from conftest import EXTDATA


def _pbmc():
    adata = ad.read_h5ad(os.path.join(EXTDATA, "pbmc_3batch_symphony.h5ad"))
    adata.obs["batch"] = adata.obs["batch"].astype(str)
    return adata


KW = dict(batch_key="batch", layer=None, n_latent=10, max_epochs=10, verbose=False)


def test_scvi_trains_from_a_backed_h5ad_on_the_chosen_genes(tmp_path):
    memory = _pbmc()
    memory.write_h5ad(tmp_path / "pbmc.h5ad")
    disk = ad.read_h5ad(tmp_path / "pbmc.h5ad", backed="r")
    tl.integrate(disk, genes="variable", n_top_genes=1000, **KW)
    assert disk.isbacked and disk.obsm["X_scvi"].shape == (disk.n_obs, 10)
    assert disk.uns["scvi"]["params"]["n_genes_used"] == 1000
    assert not any(c.startswith("_scvi") for c in disk.obs.columns)  # the model's registry went elsewhere
    again = ad.read_h5ad(tmp_path / "pbmc.h5ad", backed="r")
    tl.integrate(again, genes="variable", n_top_genes=1000, **KW)
    np.testing.assert_array_equal(again.obsm["X_scvi"], disk.obsm["X_scvi"])  # same seed, same result
    tl.integrate(memory, genes="variable", n_top_genes=1000, **KW)
    np.testing.assert_array_equal(disk.obsm["X_scvi"], memory.obsm["X_scvi"])  # the in-memory route's result
    with pytest.raises(ValueError, match="give layer=None"):
        tl.integrate(disk, batch_key="batch", layer="counts", max_epochs=1, verbose=False)


def test_counts_in_an_hdf5_file_are_linked_not_copied_and_train_as_the_h5ad_does(tmp_path):
    memory = _pbmc()
    dense = memory.X.toarray().astype(np.float32)
    memory.X = dense
    memory.write_h5ad(tmp_path / "dense.h5ad")
    with h5py.File(tmp_path / "counts.h5", "w") as handle:  # as HDF5Array writes a genes x cells matrix
        handle.create_dataset("counts", data=dense, chunks=(100, dense.shape[1]))
    path = _on_disk.linked_h5ad(str(tmp_path / "linked.h5ad"), str(tmp_path / "counts.h5"), "dense", "counts",
                                memory.obs_names, memory.var_names)
    assert os.path.getsize(path) < os.path.getsize(tmp_path / "counts.h5") / 20  # names: the counts stay put
    linked = ad.read_h5ad(path, backed="r")
    linked.obs = memory.obs.copy()
    backed = ad.read_h5ad(tmp_path / "dense.h5ad", backed="r")
    for adata in (linked, backed):
        tl.integrate(adata, genes="all", **{**KW, "max_epochs": 3})
    np.testing.assert_array_equal(linked.obsm["X_scvi"], backed.obsm["X_scvi"])
    with pytest.raises(ValueError, match="hold 1200 cells x 1767 genes; the object has 1199"):
        _on_disk.linked_h5ad(str(tmp_path / "bad.h5ad"), str(tmp_path / "counts.h5"), "dense", "counts",
                             memory.obs_names[1:], memory.var_names)


def _copies_left() -> set[str]:
    return {name for name in os.listdir(tempfile.gettempdir()) if name.startswith("isthmus-genes-")}


def test_the_working_copy_maps_a_copy_of_the_chosen_genes_and_leaves_nothing_behind(tmp_path):
    memory = _pbmc()
    memory.write_h5ad(tmp_path / "plain.h5ad")
    memory.write_h5ad(tmp_path / "gzip.h5ad", compression="gzip")
    genes = memory.var_names[::3]
    before = _copies_left()
    for name in ("plain", "gzip"):
        disk = ad.read_h5ad(tmp_path / f"{name}.h5ad", backed="r")
        for chosen in (memory.var_names, genes):
            work = _on_disk.working_copy(disk, chosen)
            assert sparse.isspmatrix_csr(work.X) and not work.isbacked
            assert isinstance(work.X.data, np.memmap) and isinstance(work.X.indices, np.memmap)  # on disk
            assert work.X.indices.dtype == work.X.indptr.dtype  # or scipy widens (copies) them on every read
            assert (work.X != memory[:, chosen].X).nnz == 0 and list(work.var_names) == list(chosen)
    assert _copies_left() == before  # copies are unlinked once mapped


_RANK_ONE = """
import sys, anndata as ad, pandas as pd
from isthmus.tl import _on_disk
disk = ad.read_h5ad(sys.argv[1], backed="r")
work = _on_disk.working_copy(disk, pd.Index(disk.var_names[::int(sys.argv[2])]), shared=True)
print(work.X.data.filename)
"""


def test_under_ddp_the_other_ranks_map_the_copy_rank_zero_made(tmp_path, monkeypatch):
    """Lightning starts ranks 1.. with rank 0's environment after rank 0 has copied the genes: they map
    its copy (the same files) rather than write one each; other genes are another copy."""
    import subprocess
    import sys

    memory = _pbmc()
    memory.write_h5ad(tmp_path / "pbmc.h5ad")
    disk = ad.read_h5ad(tmp_path / "pbmc.h5ad", backed="r")
    monkeypatch.setattr(os, "environ", dict(os.environ))  # the copy's name is set here, not in pytest's own
    before = set(os.environ)
    work = _on_disk.working_copy(disk, disk.var_names[::3], shared=True)  # rank 0 (no RANK / LOCAL_RANK)
    named = set(os.environ) - before
    assert len(named) == 1 and named.pop().startswith(_on_disk.SHARED_COPY_VARIABLE)
    folder = os.path.dirname(work.X.data.filename)
    assert os.path.isfile(work.X.data.filename)  # kept for the other ranks (removed when rank 0 exits)

    def rank_one(step):
        run = subprocess.run([sys.executable, "-c", _RANK_ONE, str(tmp_path / "pbmc.h5ad"), str(step)],
                             env={**os.environ, "LOCAL_RANK": "1"}, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr[-2000:]
        return run.stdout.strip().splitlines()[-1]

    try:
        assert rank_one(3) == work.X.data.filename  # the same genes: rank 0's files
        other = rank_one(2)  # other genes: a copy of its own, unlinked once mapped
        assert os.path.dirname(other) != folder and not os.path.exists(other)
    finally:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
