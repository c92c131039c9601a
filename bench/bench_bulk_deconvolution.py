"""Bulk deconvolution benchmark: the Scaden-style ensemble against NNLS and MuSiC-style weighted NNLS.

    PYTHONPATH=python python bench/bench_bulk_deconvolution.py [--max-steps 5000] [--quick]

Known truth from batches the reference never saw. Two datasets, each with three batches:
human PBMC in three 10x chemistries (inst/extdata/pbmc_3batch_symphony.h5ad: 3pv1, 3pv2, 5p) and
mouse motor cortex SNARE-seq2 RNA in three sub-batches (../shared/data/multiome/
mop_snareseq2_rna_atac_3batches.h5mu, else the bundled 600-nuclei subset). Each batch is held out
in turn: the other two are the reference (their batch column is MuSiC's), and 200 pseudo-bulks of
100 cells each are made from the held-out batch's cells (tl.pseudo_bulks: random fractions, half
the samples leaving types out, depth thinned to 50-100%), on the types the reference keeps (10 or
more reference cells). Scores (tl.bulk_scores): RMSE, Pearson of all fractions and the mean
per-sample Jensen-Shannon divergence, plus the mean per-type Pearson; wall seconds per method.
Torch runs on one thread. ``--quick``: one fold, 50 steps (a smoke run).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))
sys.path.insert(0, str(ROOT / "bench"))

from _tables import markdown  # noqa: E402

EXTDATA = ROOT / "inst" / "extdata"
MOP_FULL = ROOT.parent / "shared" / "data" / "multiome" / "mop_snareseq2_rna_atac_3batches.h5mu"
MIN_CELLS = 10


def load_pbmc():
    import anndata as ad

    adata = ad.read_h5ad(EXTDATA / "pbmc_3batch_symphony.h5ad")
    adata.obs["batch"] = adata.obs["batch"].astype(str)
    return adata, "PBMC 3 chemistries (pbmc_3batch_symphony.h5ad)"


def load_mop():
    import mudata as md

    md.set_options(pull_on_update=False)
    path = MOP_FULL if MOP_FULL.exists() else EXTDATA / "mop_snareseq2_600cells.h5mu"
    mdata = md.read_h5mu(path)
    rna = mdata.mod["rna"].copy()
    for column in ("cell_type", "batch"):
        if column not in rna.obs:
            rna.obs[column] = mdata.obs.loc[rna.obs_names, column].to_numpy()
    rna.obs["batch"] = rna.obs["batch"].astype(str)
    return rna, f"MOp SNARE-seq2 RNA ({path.name})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-steps", type=int, default=5000)
    parser.add_argument("--n-bulks", type=int, default=200)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    import isthmus.tl as tl

    warnings.filterwarnings("ignore")
    steps = 50 if args.quick else args.max_steps
    rows = []
    for load in (load_pbmc, load_mop):
        adata, name = load()
        batches = sorted(adata.obs["batch"].unique())
        print(f"{name}: {adata.n_obs} cells x {adata.n_vars} genes, batches {batches}", flush=True)
        for held_out in (batches[:1] if args.quick else batches):
            in_bulk = (adata.obs["batch"] == held_out).to_numpy()
            reference = adata[~in_bulk].copy()
            sizes = reference.obs["cell_type"].astype(str).value_counts()
            kept = sizes.index[sizes >= MIN_CELLS]
            cells = adata[in_bulk & adata.obs["cell_type"].astype(str).isin(kept).to_numpy()].copy()
            bulk, truth = tl.pseudo_bulks(cells, labels_key="cell_type", n_samples=args.n_bulks, layer=None,
                                          random_state=1)
            for method in ("scaden", "nnls", "music"):
                started = time.perf_counter()
                estimate = tl.deconvolve_bulk(bulk.copy(), reference, method=method, batch_key="batch", layer=None,
                                              max_steps=steps, verbose=False)
                seconds = time.perf_counter() - started
                scores = tl.bulk_scores(truth, estimate)
                overall = scores[scores["cell_type"] == "all"].set_index("metric")["value"]
                per_type = scores[(scores["cell_type"] != "all") & (scores["metric"] == "pearson")]["value"]
                row = {"dataset": name.split(" (")[0], "held_out": held_out, "method": method,
                       "rmse": overall["rmse"], "pearson": overall["pearson"], "jsd": overall["jsd"],
                       "pearson_per_type": float(np.nanmean(per_type)), "seconds": seconds}
                rows.append(row)
                print(f"  {held_out} {method}: rmse {row['rmse']:.3f} pearson {row['pearson']:.3f} "
                      f"({seconds:.1f} s)", flush=True)
    table = pd.DataFrame(rows)
    print(f"\n## Per held-out batch (Scaden: {steps} steps per network)\n")
    print(markdown(table))
    print("\n## Mean over held-out batches\n")
    metrics = ["rmse", "pearson", "jsd", "pearson_per_type", "seconds"]
    print(markdown(table.groupby(["dataset", "method"], sort=False)[metrics].mean().reset_index()))
    wins = []
    for (dataset, held_out), fold in table.groupby(["dataset", "held_out"], sort=False):
        wins.append({"dataset": dataset, "held_out": held_out,
                     "best_rmse": fold.loc[fold["rmse"].idxmin(), "method"],
                     "best_pearson": fold.loc[fold["pearson"].idxmax(), "method"],
                     "best_jsd": fold.loc[fold["jsd"].idxmin(), "method"]})
    print("\n## Winner per fold\n")
    print(markdown(pd.DataFrame(wins)))


if __name__ == "__main__":
    main()
