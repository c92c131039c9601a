"""Spatial domains on DLPFC slice 151673 against the manual layers (L1-L6, WM).

    python bench/bench_spatial_domains.py            # 5 seeds, 1000 epochs (about 15 min on 2 idle cores)
    python bench/bench_spatial_domains.py --quick    # 2 seeds, 100 epochs: a smoke run

Our graph attention autoencoder ("gat", STAGATE design) next to the classical routes: plain PCA and
BANKSY-style neighbour-augmented PCA, each clustered into 7 domains by a Gaussian mixture (mclust's
EEE, as STAGATE) and by Leiden (resolution searched for 7 clusters, as SpaGCN/GraphST; the graph model with the mixture only,
as STAGATE). Every
method runs once per seed; the table gives the ARI of each seed's clusters (median, min-max), of
the consensus over seeds after spatial refinement (what tl.spatial_domains returns), NMI of the
consensus, and wall time for all seeds. Spots without a manual label (28) are left out of the
scores. Published on this slice: SpaGCN about 0.42, STAGATE about 0.5-0.6 depending on the seed.

Reads ../shared/data/spatial/dlpfc_151673_visium_5000hvg.h5ad (all 3639 spots x 5000 genes), or
the bundled 1000-gene version if that is missing.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from isthmus import tl

from _tables import markdown  # bench/ is on sys.path when a script runs

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "spatial" / "dlpfc_151673_visium_5000hvg.h5ad"
BUNDLED = ROOT / "inst" / "extdata" / "dlpfc_151673_visium_top1000.h5ad"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--methods", default="pca:leiden,pca:gmm,neighbor_pca:leiden,neighbor_pca:gmm,gat:gmm")
    args = parser.parse_args()
    n_seeds = args.seeds or (2 if args.quick else 5)
    epochs = args.epochs or (100 if args.quick else 1000)

    path = SHARED if SHARED.exists() else BUNDLED
    adata = ad.read_h5ad(path)
    truth = adata.obs["layer"].astype(str)
    known = (truth != "nan").to_numpy()
    print(f"{path.name}: {adata.n_obs} spots x {adata.n_vars} genes; {known.sum()} with a manual layer; "
          f"{n_seeds} seeds, {epochs} epochs", flush=True)

    rows = []
    for spec in args.methods.split(","):
        method, cluster = spec.split(":")
        key = f"{method}_{cluster}"
        started = time.perf_counter()
        work = adata.copy()
        tl.spatial_domains(work, method=method, n_domains=7, cluster_method=cluster, layer=None, n_seeds=n_seeds,
                           max_epochs=epochs, key_added=key, verbose=False)
        seconds = time.perf_counter() - started
        seeds = work.obsm[f"{key}_seed_domains"]
        seed_ari = [adjusted_rand_score(truth[known], seeds[known, i]) for i in range(seeds.shape[1])]
        consensus = work.obs[f"{key}_domain"].astype(str)
        rows.append({
            "method": method, "clustering": cluster,
            "ARI per seed, median": np.median(seed_ari),
            "min-max": f"{min(seed_ari):.3f}-{max(seed_ari):.3f}",
            "ARI consensus": adjusted_rand_score(truth[known], consensus[known]),
            "NMI consensus": normalized_mutual_info_score(truth[known], consensus[known]),
            "seconds": seconds,
        })
        print(f"  {method} + {cluster}: consensus ARI {rows[-1]['ARI consensus']:.3f} ({seconds:.0f} s)", flush=True)
    table = pd.DataFrame(rows)
    print()
    print(markdown(table))


if __name__ == "__main__":
    main()
