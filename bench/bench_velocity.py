"""RNA velocity on the mouse pancreas (739 cells, spliced / unspliced counts): veloVI against scVelo.

    OMP_NUM_THREADS=1 python bench/bench_velocity.py   # veloVI: 3 seeds x 150 epochs; scVelo: dynamical
                                                       # (1 process) and stochastic; all on one core
    python bench/bench_velocity.py --quick             # 1 seed, 50 epochs, no dynamical model: a smoke run

veloVI's own default for this size is 400 epochs (velovi: min(400, 20000 / cells * 400), with
early stopping, which does not trigger here); 150 keeps three seeds within minutes on a shared
2-core machine (its validation ELBO is still improving then: see BENCHMARKS.md). Use --epochs 400
for the default. torch and scVelo each get one core (OMP_NUM_THREADS=1, --n-jobs 1), so the
time ratio compares like with like; on an idle machine both can use two.

Every method runs through tl.velocity on the same preprocessing (scVelo's: genes with 20 shared
counts, the 2000 most variable, 30 PCs, 30 neighbours, moments) and is shown on the same UMAP (of
that preprocessing, seed 0; computed by the first run and reused). Scores: tl.velocity_scores
against the known lineage of pancreatic endocrinogenesis (Bastidas-Ponce 2019; the transitions
VeloAE and UniTVelo score on these data): CBDir per transition on the UMAP and their mean, ICCoh
(gene-space velocity, UniTVelo's choice) averaged over the 8 clusters, with each cell's 30 nearest
cells on the UMAP as neighbours. Seconds: the whole tl.velocity call (preprocessing, fit, velocity
graph, latent time, projection), one run at a time.

Reads ../shared/data/velocity/pancreas_velocity_739_veloviz.h5ad (all 7192 genes), or the bundled
2000-gene version if that is missing.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

from isthmus import tl

from _tables import markdown  # bench/ is on sys.path when a script runs

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "velocity" / "pancreas_velocity_739_veloviz.h5ad"
BUNDLED = ROOT / "inst" / "extdata" / "pancreas_velocity_739_top2000.h5ad"
TRANSITIONS = [("Ductal", "Ngn3 low EP"), ("Ngn3 low EP", "Ngn3 high EP"), ("Ngn3 high EP", "Pre-endocrine"),
               ("Pre-endocrine", "Alpha"), ("Pre-endocrine", "Beta"), ("Pre-endocrine", "Delta"),
               ("Pre-endocrine", "Epsilon")]
SHORT = {"Ductal": "Duct", "Ngn3 low EP": "Ngn3lo", "Ngn3 high EP": "Ngn3hi", "Pre-endocrine": "Pre",
         "Alpha": "Alpha", "Beta": "Beta", "Delta": "Delta", "Epsilon": "Eps"}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--n-jobs", type=int, default=1, help="scVelo dynamical: worker processes")
    args = parser.parse_args()
    n_seeds = args.seeds or (1 if args.quick else 3)
    epochs = args.epochs or (50 if args.quick else 150)

    path = SHARED if SHARED.exists() else BUNDLED
    adata = ad.read_h5ad(path)
    print(f"{path.name}: {adata.n_obs} cells x {adata.n_vars} genes; veloVI {n_seeds} seeds, at most {epochs} epochs",
          flush=True)

    runs = [("scVelo stochastic", "scvelo_stochastic", dict(method="scvelo", mode="stochastic"))]
    if not args.quick:
        runs.append(("scVelo dynamical", "scvelo_dynamical",
                     dict(method="scvelo", mode="dynamical", n_jobs=args.n_jobs)))
    runs += [(f"veloVI seed {s}", f"velovi_{s}", dict(method="velovi", max_epochs=epochs, random_state=s))
             for s in range(n_seeds)]

    seconds = {}
    for label, key, kwargs in runs:
        work = adata.copy()
        started = time.perf_counter()
        tl.velocity(work, key_added=key, verbose=False, **kwargs)
        seconds[key] = time.perf_counter() - started
        if "X_umap" not in adata.obsm:  # the first run's UMAP is everyone's
            adata.obsm["X_umap"] = work.obsm["X_umap"]
        adata.layers[key] = work.layers[key]
        adata.obsm[f"{key}_umap"] = work.obsm[f"{key}_umap"]
        extra = ""
        if kwargs["method"] == "velovi":
            params = work.uns[key]["params"]
            extra = f", {params['n_genes_fitted']} genes, {params['epochs_trained']} epochs"
        print(f"  {label}: {seconds[key]:.0f} s{extra}", flush=True)

    scores = tl.velocity_scores(adata, cluster_key="clusters", transitions=TRANSITIONS, basis="umap",
                                vkey=[key for _, key, _ in runs], n_neighbors=30)
    wide = scores.pivot_table(index="vkey", columns=["metric", "group"], values="value")
    reference = seconds.get("scvelo_dynamical", seconds["scvelo_stochastic"])
    rows = []
    for label, key, _ in runs:
        rows.append(_row(label, wide.loc[key], seconds[key], reference))
    velovi = [key for _, key, kwargs in runs if kwargs["method"] == "velovi"]
    if len(velovi) > 1:
        rows.append(_row(f"veloVI, mean of {len(velovi)} seeds", wide.loc[velovi].mean(),
                         float(np.mean([seconds[k] for k in velovi])), reference))
    table = pd.DataFrame(rows)
    print()
    print(markdown(table))
    print()
    print(f"time ratio: against scVelo {'dynamical' if 'scvelo_dynamical' in seconds else 'stochastic'}")


def _row(label, values, seconds, reference) -> dict:
    row = {"method": label}
    for source, target in TRANSITIONS:
        row[f"CBDir {SHORT[source]}>{SHORT[target]}"] = float(values["CBDir", f"{source} -> {target}"])
    row["CBDir mean"] = float(values["CBDir", "mean"])
    row["ICCoh mean"] = float(values["ICCoh", "mean"])
    row["seconds"] = f"{seconds:.0f}"
    row["time ratio"] = f"{seconds / reference:.2f}"
    return row


if __name__ == "__main__":
    main()
