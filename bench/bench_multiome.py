"""RNA + ATAC on MOp SNARE-seq2 (2621 nuclei, 3 batches; 1677 genes, 25734 peaks): MultiVI against
WNN, RNA alone and ATAC alone, scored against the cell types, paired and with the ATAC of 30% of
the nuclei removed.

    python bench/bench_multiome.py                 # scvi-tools' MultiVI defaults (up to 500 epochs, early stopping)
    python bench/bench_multiome.py --epochs 50     # a smoke run
    python bench/bench_multiome.py --only paired   # one scenario (or: --only partial)

Each representation gets the same scores (tl.bio_scores, scib-metrics): Leiden NMI / ARI with the
resolution searched over 0.2..2 (as scib does), cLISI on the 15-NN graph, and, for embeddings,
silhouette of the labels and isolated-label F1 (WNN is a graph: those are n/a). Labels: obs
cell_type (15 types). MultiVI is given the batch (sub-batch 09A/09B/09C); the RNA PCA picks its
variable genes per batch. With 30% of the ATAC removed, WNN and ATAC alone can only be run on
the paired 70% (scored there), MultiVI and RNA alone on every nucleus; MultiVI is also scored on
the RNA-only 30% by themselves (do the unpaired nuclei land with their type?).
Seconds: wall time of each method's fit on this machine (2 shared cores; noisy, compare within
one run).

Reads ../shared/data/multiome/mop_snareseq2_rna_atac_3batches.h5mu, or the bundled 600-nucleus
subset if that is missing.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import mudata as md
import numpy as np
import pandas as pd

from isthmus import tl

from _tables import markdown  # bench/ is on sys.path when a script runs

md.set_options(pull_on_update=False)

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "multiome" / "mop_snareseq2_rna_atac_3batches.h5mu"
BUNDLED = ROOT / "inst" / "extdata" / "mop_snareseq2_600cells.h5mu"


def without_atac_of(mdata, share: float, seed: int):
    rng = np.random.default_rng(seed)
    dropped = np.sort(rng.choice(mdata.n_obs, int(round(share * mdata.n_obs)), replace=False))
    keep = np.setdiff1d(np.arange(mdata.n_obs), dropped)
    partial = md.MuData({"rna": mdata.mod["rna"].copy(), "atac": mdata.mod["atac"][keep].copy()})
    partial.obs = partial.obs.join(mdata.obs[["batch", "cell_type"]])
    return partial, keep


def scores_of(labels, representations, subset=None):
    if subset is not None:
        labels = np.asarray(labels)[subset]
        representations = {k: (v[subset] if not isinstance(v, tuple) else ("graph", v[1][subset][:, subset]))
                           for k, v in representations.items()}
    return tl.bio_scores(labels, representations).pivot(index="method", columns="metric", values="value")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=None, help="MultiVI epochs (default: scvi-tools' own)")
    parser.add_argument("--seeds", type=int, default=1, help="MultiVI seeds")
    parser.add_argument("--only", choices=("paired", "partial"), default=None,
                        help="run one scenario: all nuclei paired, or 30%% of the ATAC removed")
    args = parser.parse_args()

    path = SHARED if SHARED.exists() else BUNDLED
    full = md.read_h5mu(path)
    labels = full.obs["cell_type"].astype(str).to_numpy()
    print(f"{path.name}: {full.n_obs} nuclei, {full.mod['rna'].n_vars} genes, {full.mod['atac'].n_vars} peaks, "
          f"{full.obs['batch'].nunique()} batches, {len(set(labels))} cell types; MultiVI epochs: "
          f"{args.epochs or 'default'}, seeds: {args.seeds}", flush=True)

    tables = []
    scenarios = {"paired": ("paired", 0.0), "partial": ("30% ATAC removed", 0.3)}
    for scenario, share in [scenarios[args.only]] if args.only else scenarios.values():
        data, keep = without_atac_of(full, share, seed=0) if share else (full.copy(), np.arange(full.n_obs))
        paired = md.MuData({"rna": data.mod["rna"][data.mod["atac"].obs_names].copy(), "atac": data.mod["atac"]})
        paired.obs = paired.obs.join(full.obs[["batch"]])
        seconds = {}
        reps_all, reps_paired = {}, {}
        for seed in range(args.seeds):
            started = time.perf_counter()
            tl.rna_atac(data, batch_key="batch", max_epochs=args.epochs, random_state=seed, verbose=True)
            seconds[f"MultiVI seed {seed}"] = time.perf_counter() - started
            reps_all[f"MultiVI seed {seed}"] = data.obsm["X_multivi"].copy()
            print(f"  {scenario}: MultiVI seed {seed} {seconds[f'MultiVI seed {seed}']:.0f} s "
                  f"({data.uns['multivi']['params']['n_latent']} latent dims)", flush=True)
        started = time.perf_counter()
        tl.rna_atac(paired, method="wnn", batch_key="batch")
        seconds["WNN"] = time.perf_counter() - started  # RNA PCA + ATAC LSI + the WNN graph
        reps_paired["WNN"] = ("graph", paired.obsp["wnn_distances"])
        started = time.perf_counter()  # the LSI timed on its own (WNN's call computes it inside)
        reps_paired["ATAC alone (LSI)"] = tl._rna_atac.tfidf_lsi(paired.mod["atac"].X, n_comps=30)
        seconds["ATAC alone (LSI)"] = time.perf_counter() - started
        started = time.perf_counter()
        rna_only_pcs = tl._classical.pca_of_counts(data.mod["rna"].X, n_comps=30,
                                                   batch=data.obs["batch"].astype(str).to_numpy())
        seconds["RNA alone (PCA)"] = time.perf_counter() - started
        reps_all["RNA alone (PCA)"] = rna_only_pcs

        def add(table, cells):
            for method, row in table.iterrows():
                tables.append({"data": scenario, "method": method, "scored on": cells,
                               "Leiden ARI": row["leiden_ari"], "Leiden NMI": row["leiden_nmi"],
                               "cLISI": row["clisi"], "silhouette": row["silhouette_label"],
                               "isolated labels": row["isolated_labels"], "seconds": seconds.get(method, np.nan)})

        n, n_paired = data.n_obs, len(keep)
        add(scores_of(labels, reps_all), f"all {n}")
        if share:
            add(scores_of(labels[keep], reps_paired), f"paired {n_paired}")
            add(scores_of(labels, reps_all, subset=keep), f"paired {n_paired}")
            rna_only = np.setdiff1d(np.arange(n), keep)
            add(scores_of(labels, {k: v for k, v in reps_all.items() if k.startswith("MultiVI")} |
                          {"RNA alone (PCA)": rna_only_pcs}, subset=rna_only), f"RNA-only {len(rna_only)}")
        else:
            add(scores_of(labels, reps_paired), f"all {n}")
        print(f"  {scenario}: scored", flush=True)

    table = pd.DataFrame(tables)
    table["seconds"] = table["seconds"].map(lambda s: "" if np.isnan(s) else f"{s:.0f}")
    print()
    print(markdown(table.fillna(np.nan).replace({np.nan: "n/a"})))


if __name__ == "__main__":
    main()
