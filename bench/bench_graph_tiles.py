"""The graph model at tissue scale (issue 16 item 6): whole-graph training against mini-batches on
spatial tiles.

Part 1, quality: DLPFC 151673 (the bundled 1000 genes, manual layers), `tl.spatial_domains`
with its defaults (5 seeds, 1000 epochs, GMM on 7 domains), the whole graph against tiles of 1000
spots (4 tiles): consensus ARI / NMI, each seed's ARI, seconds.

Part 2, cost: seconds per epoch and peak memory (VmHWM of a process of its own) of the model
alone at 3.6k, ~36k and ~364k spots, whole graph against tiles of 10,000 spots. The larger
slices are the bundled slice tiled side by side (copies far apart, so their graphs do not touch),
each copy's features the slice's 200 principal components plus a little noise (so no two copies
are the same).

    python bench/bench_graph_tiles.py [--quality] [--cost] [--copies 1 10 100] [--epochs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import anndata as ad
import numpy as np
import pandas as pd
from _tables import markdown, peak_gib

HERE = os.path.dirname(os.path.abspath(__file__))
SLICE = os.path.join(HERE, "..", "inst", "extdata", "dlpfc_151673_visium_top1000.h5ad")


def quality(seeds: int, epochs: int) -> pd.DataFrame:
    import isthmus.tl as tl

    adata = ad.read_h5ad(SLICE)
    adata.obs["layer"] = adata.obs["layer"].astype(str).replace("nan", np.nan)
    rows = []
    for name, batch_size in (("whole graph", None), ("tiles of 1000 spots", 1000)):
        started = time.perf_counter()
        tl.spatial_domains(adata, n_domains=7, layer=None, n_seeds=seeds, max_epochs=epochs, batch_size=batch_size,
                           key_added=f"gat_{batch_size or 'whole'}", verbose=False)
        seconds = time.perf_counter() - started
        key = f"gat_{batch_size or 'whole'}"
        score = tl.domain_scores(adata, truth_key="layer", domain_keys=[f"{key}_domain"]).iloc[0]
        known = adata.obs["layer"].notna().to_numpy()
        from sklearn.metrics import adjusted_rand_score

        per_seed = [adjusted_rand_score(adata.obs["layer"][known], run[known])
                    for run in adata.obsm[f"{key}_seed_domains"].T]
        rows.append({"training": name, "tiles": adata.uns[key]["params"]["graph_tiles"],
                     "consensus ARI": score["ARI"], "NMI": score["NMI"],
                     "seed ARIs": " ".join(f"{a:.3f}" for a in per_seed), "mean": float(np.mean(per_seed)),
                     "sd": float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else 0.0, "seconds": seconds})
        print(rows[-1], flush=True)
    return pd.DataFrame(rows)


def one_cost(copies: int, spots_per_tile: int, epochs: int) -> dict:
    """The model alone on `copies` tiled copies of the slice (in this process)."""
    from scipy import sparse
    from sklearn.decomposition import PCA

    from isthmus.models._spatial_graph import fit_graph_autoencoder, spatial_tiles
    from isthmus.tl import _classical, _spatial

    rng = np.random.default_rng(0)
    adata = ad.read_h5ad(SLICE)
    lognorm = _classical.log_normalise(adata.X)
    pcs = PCA(n_components=200, random_state=0).fit_transform(np.asarray(lognorm.todense())).astype(np.float32)
    xy = np.asarray(adata.obsm["spatial"], dtype=float)
    width = xy[:, 0].max() - xy[:, 0].min()
    side = int(np.ceil(np.sqrt(copies)))
    features = np.vstack([pcs + rng.normal(0, 0.1, pcs.shape).astype(np.float32) for _ in range(copies)])
    places = np.vstack([xy + np.array([(c % side) * 2 * width, (c // side) * 2 * width]) for c in range(copies)])
    graph = _spatial.neighbour_graph(places, 6)
    with_self = (graph + sparse.identity(graph.shape[0], format="csr")).tocoo()
    edges = np.vstack([with_self.col, with_self.row])
    tiles = spatial_tiles(places, spots_per_tile) if spots_per_tile else None
    started = time.perf_counter()
    fit_graph_autoencoder(features, edges, max_epochs=epochs, tiles=tiles, verbose=False)
    return {"spots": len(features), "tiles": len(tiles) if tiles else 1,
            "s/epoch": (time.perf_counter() - started) / epochs, "peak GiB": peak_gib()}


def cost(copies_list, epochs: int) -> pd.DataFrame:
    rows = []
    for copies in copies_list:
        for spots_per_tile in (0, 10_000):
            if spots_per_tile and copies * 3639 <= spots_per_tile:
                continue
            done = subprocess.run([sys.executable, __file__, "--one", str(copies), str(spots_per_tile), str(epochs)],
                                  capture_output=True, text=True)
            lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
            if done.returncode != 0 or not lines:
                row = {"spots": copies * 3639, "tiles": "-", "s/epoch": float("nan"), "peak GiB": float("nan"),
                       "note": (done.stderr.strip().splitlines() or ["failed"])[-1][:80]}
            else:
                row = json.loads(lines[-1])
            row["training"] = "tiles of 10,000" if spots_per_tile else "whole graph"
            rows.append(row)
            print(row, flush=True)
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quality", action="store_true")
    parser.add_argument("--cost", action="store_true")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--quality-epochs", type=int, default=1000)
    parser.add_argument("--copies", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--one", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        copies, spots_per_tile, epochs = map(int, args.one)
        print(json.dumps(one_cost(copies, spots_per_tile, epochs)), flush=True)
        return
    if args.quality or not args.cost:
        print(markdown(quality(args.seeds, args.quality_epochs)))
    if args.cost or not args.quality:
        print(markdown(cost(args.copies, args.epochs)))


if __name__ == "__main__":
    main()
