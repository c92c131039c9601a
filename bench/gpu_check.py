"""The GPU check of issue 16: scVI at 100k cells and the graph model at ~35k spots, each on the
GPU and on the CPU, one after the other in this process; prints seconds per epoch, peak memory and
the CPU/GPU ratios. Run it with bench/gpu_check.sh on a machine with a GPU (under 8 minutes there);
`--small` runs the same code path here on the CPU in about a minute, to check the script.

The data are made from the bundled real data, and say so: cells are the bundled PBMC cells (3
chemistries) drawn with replacement, each count redrawn from a Poisson around it (so no two cells
are the same); spots are the bundled DLPFC slice 151673 tiled side by side (copies far apart, so
the spatial graphs do not touch), counts redrawn the same way."""

from __future__ import annotations

import argparse
import os
import time

import anndata as ad
import numpy as np
from scipy import sparse

import isthmus.tl as tl

HERE = os.path.dirname(os.path.abspath(__file__))
EXTDATA = os.path.join(HERE, "..", "inst", "extdata")


def _redrawn(counts, rng):
    counts = sparse.csr_matrix(counts, dtype=np.float32)
    counts.data = rng.poisson(counts.data).astype(np.float32)
    counts.eliminate_zeros()
    return counts


def cells(n, rng):
    pbmc = ad.read_h5ad(os.path.join(EXTDATA, "pbmc_3batch_symphony.h5ad"))
    counts = pbmc.layers["counts"] if "counts" in pbmc.layers else pbmc.X
    pick = rng.integers(0, pbmc.n_obs, n)
    out = ad.AnnData(_redrawn(sparse.csr_matrix(counts)[pick], rng), obs=pbmc.obs.iloc[pick].reset_index(drop=True),
                     var=pbmc.var[[]])
    out.obs_names = [f"cell{i}" for i in range(n)]
    return out


def spots(tiles, rng):
    slice_ = ad.read_h5ad(os.path.join(EXTDATA, "dlpfc_151673_visium_top1000.h5ad"))
    counts = slice_.layers["counts"] if "counts" in slice_.layers else slice_.X
    xy = np.asarray(slice_.obsm["spatial"], dtype=float)
    width = xy[:, 0].max() - xy[:, 0].min()
    parts, places = [], []
    for t in range(tiles):
        parts.append(_redrawn(counts, rng))
        places.append(xy + np.array([t * 2 * width, 0.0]))
    out = ad.AnnData(sparse.vstack(parts).tocsr(), var=slice_.var[[]])
    out.obs_names = [f"spot{i}" for i in range(out.n_obs)]
    out.obsm["spatial"] = np.vstack(places)
    return out


def _peak_gpu_gib():
    import torch

    if not torch.cuda.is_available():
        return float("nan")
    peak = torch.cuda.max_memory_allocated() / 2**30
    torch.cuda.reset_peak_memory_stats()
    return peak


def run(name, fit, accelerator, epochs):
    started = time.perf_counter()
    fit(accelerator)
    seconds = time.perf_counter() - started
    return {"model": name, "accelerator": accelerator, "epochs": epochs, "seconds": seconds,
            "s_per_epoch": seconds / epochs, "peak_gpu_gib": _peak_gpu_gib()}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", action="store_true", help="a quick CPU-only check of the script")
    args = parser.parse_args()
    import torch

    rng = np.random.default_rng(0)
    n_cells, tiles = (3000, 1) if args.small else (100_000, 10)
    scvi_epochs, gat_epochs = (2, 20) if args.small else (3, 200)
    accelerators = ["cpu"] + (["gpu"] if torch.cuda.is_available() else [])
    print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, GPU: "
          f"{torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none'}; CPU threads {torch.get_num_threads()}")
    adata = cells(n_cells, rng)
    visium = spots(tiles, rng)
    print(f"data: {adata.n_obs} cells x {adata.n_vars} genes; {visium.n_obs} spots x {visium.n_vars} genes")
    rows = []
    for accelerator in accelerators:
        rows.append(run("scVI (variable genes)", lambda acc: tl.integrate(
            adata, method="scvi", batch_key="batch", layer=None, max_epochs=scvi_epochs, accelerator=acc, verbose=False,
            key_added=f"X_scvi_{acc}"), accelerator, scvi_epochs))
        rows.append(run("graph model (full graph)", lambda acc: tl.spatial_domains(
            visium, method="gat", layer=None, n_domains=7, n_seeds=1, max_epochs=gat_epochs, accelerator=acc, verbose=False,
            key_added=f"gat_{acc}"), accelerator, gat_epochs))
    print(f"\n{'model':28s} {'device':6s} {'epochs':>6s} {'s/epoch*':>9s} {'peak GPU GiB':>12s}")
    for r in rows:
        print(f"{r['model']:28s} {r['accelerator']:6s} {r['epochs']:6d} {r['s_per_epoch']:9.3f} {r['peak_gpu_gib']:12.2f}")
    print("* seconds of the whole call (variable genes, set-up and training) over its epochs")
    for model in dict.fromkeys(r["model"] for r in rows):
        by = {r["accelerator"]: r["s_per_epoch"] for r in rows if r["model"] == model}
        if "gpu" in by:
            print(f"{model}: the GPU is {by['cpu'] / by['gpu']:.1f}x the CPU's speed")
        else:
            print(f"{model}: no GPU here; CPU only")


if __name__ == "__main__":
    main()
