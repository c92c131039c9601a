"""Perturbation-response benchmark: scGen-style latent arithmetic against the linear shift and "no change".

    PYTHONPATH=python python bench/bench_perturbation.py [--epochs 50] [--seeds 0 1 2] [--quick]

Data: Kang et al. 2018 PBMC, control vs IFN-beta (inst/extdata/kang_ifnb_pbmc_1556cells_muscat.h5ad,
muscat's subset: 5 cell types x 2 conditions, 1556 cells x 1267 genes, raw counts). Each cell type
is held out in turn (5 folds): its stimulated cells are removed from what the methods see, predicted
from its control cells, and scored against the real ones with tl.perturbation_scores (log1p of
counts per 10,000, every gene and the 100 genes whose mean responds most). scGen runs with 3 seeds
per fold; the baselines are deterministic (one run). Torch runs on one thread.

Epochs: ``--epochs`` (default 50, not predict_perturbation()'s 100, so that 15 trainings fit in
about ten minutes on one CPU thread: 0.6 s per epoch here); read scGen's scores as "at this budget".
``--quick`` is a smoke run (1 fold, 1 seed, 2 epochs) whose scores mean nothing.
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

DATA = ROOT / "inst" / "extdata" / "kang_ifnb_pbmc_1556cells_muscat.h5ad"
SHOWN = ["r2_mean", "pearson_mean", "r2_mean_top", "pearson_mean_top", "r2_change", "pearson_change",
         "r2_change_top", "pearson_change_top", "energy_distance", "classifier_auc", "seconds"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    import anndata as ad
    import torch

    torch.set_num_threads(1)
    import isthmus.tl as tl

    warnings.filterwarnings("ignore")
    adata = ad.read_h5ad(DATA)
    types = sorted(adata.obs["cell_type"].astype(str).unique())
    seeds, epochs = args.seeds, args.epochs
    if args.quick:
        types, seeds, epochs = types[:1], seeds[:1], 2
    rows = []
    for held_out in types:
        for method in ("no_change", "linear", "scgen"):
            for seed in (seeds if method == "scgen" else [0]):
                started = time.perf_counter()
                predicted = tl.predict_perturbation(adata, predict=held_out, method=method, layer=None,
                                                    max_epochs=epochs, random_state=seed, verbose=False)
                seconds = time.perf_counter() - started
                scores = predicted.uns["predict_perturbation"]["scores"]
                row = {"held_out": held_out, "method": method, "seed": seed, **dict(zip(scores["metric"],
                                                                                         scores["value"]))}
                row["seconds"] = seconds
                rows.append(row)
                print(f"{held_out} {method} seed {seed}: {seconds:.1f} s, pearson_change_top "
                      f"{row['pearson_change_top']:.3f}", flush=True)
    table = pd.DataFrame(rows)
    # per fold: mean over seeds (scGen) -> one row per fold and method
    per_fold = table.groupby(["held_out", "method"], sort=False)[SHOWN].mean().reset_index()
    spread = table[table["method"] == "scgen"].groupby("held_out")[SHOWN].std().reset_index()
    print(f"\n## Per held-out cell type (scGen: mean of {len(seeds)} seeds, {epochs} epochs)\n")
    print(markdown(per_fold[["held_out", "method", *SHOWN]]))
    print(f"\n## scGen's standard deviation over seeds, per fold\n")
    print(markdown(spread[["held_out", *SHOWN]]))
    print("\n## Mean over the held-out cell types\n")
    overall = per_fold.groupby("method", sort=False)[SHOWN].mean().reset_index()
    print(markdown(overall))
    # who wins each metric, per fold (higher is better except energy_distance, classifier_auc, seconds)
    lower = {"energy_distance", "classifier_auc", "seconds"}
    wins = []
    for metric in SHOWN[:-1]:
        wide = per_fold.pivot(index="held_out", columns="method", values=metric)
        best = wide.idxmin(axis=1) if metric in lower else wide.idxmax(axis=1)
        wins.append({"metric": metric, **{m: int((best == m).sum()) for m in ("scgen", "linear", "no_change")}})
    print("\n## Folds won (of {}) per metric\n".format(len(types)))
    print(markdown(pd.DataFrame(wins)))


if __name__ == "__main__":
    main()
