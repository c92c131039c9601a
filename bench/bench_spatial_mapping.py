"""Imputing unmeasured genes in spatial data: Tangram-style mapping and gimVI against the kNN baseline,
scored on measured genes held out of training (the metric of Li et al., Nature Methods 2022).

    OMP_NUM_THREADS=1 python bench/bench_spatial_mapping.py [--quick] [--splits 3] [--out build/bench]

On each bundled real pair (hippocampus scRNA-seq reference + Visium, 510 cells / 313 spots, 124 shared
genes; cerebellum snRNA-seq reference + Slide-seq, 475 cells / 100 beads, 378 shared genes) 10% of the
shared genes are held out of the spatial data, each method maps the reference onto what is left and
predicts the held-out genes; each gene is scored by the Spearman correlation across spots between
prediction and measurement (log-normalised). ``--splits`` random splits (seeds 0, 1, ...), the same
for every method. Printed as a markdown table: genes scored, median and mean Spearman, the same for
predictions with their spots shuffled (chance), the share of genes where the method beats kNN on
the same gene, and wall seconds per split. Methods run with their defaults (Tangram 1000 epochs, gimVI
200, kNN 15 neighbours); ``--quick`` is one split with 100 / 10 epochs: a smoke run, not a result.
Default size: about 5 minutes on 2 CPU cores, mostly gimVI. Also writes the per-gene scores as CSV.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import anndata as ad
import pandas as pd

from isthmus.tl import method_names  # noqa: E402
from isthmus.tl._map_cells import holdout_gene_scores
from _tables import markdown  # bench/ is on sys.path when a script runs

HERE = os.path.dirname(os.path.abspath(__file__))
EXTDATA = os.path.join(HERE, "..", "inst", "extdata")
PAIRS = {
    "hippocampus (Visium)": ("hippocampus_reference_sc.h5ad", "hippocampus_spatial_visium.h5ad"),
    "cerebellum (Slide-seq)": ("cerebellum_reference_sc.h5ad", "cerebellum_spatial_slideseq.h5ad"),
}




def load(name: str) -> ad.AnnData:
    adata = ad.read_h5ad(os.path.join(EXTDATA, name))
    adata.layers["counts"] = adata.X  # the task functions read counts from layers["counts"]
    return adata


def run_pair(name, reference, spatial, *, splits, epochs):
    rows = []
    for method in method_names("map_cells"):
        for seed in range(splits):
            started = time.perf_counter()
            scores = holdout_gene_scores(spatial, reference, method=method, fraction=0.1, random_state=seed,
                                         max_epochs=epochs.get(method), verbose=False)
            scores["seconds"] = time.perf_counter() - started
            scores["dataset"] = name
            rows.append(scores)
    return pd.concat(rows, ignore_index=True)


def summary(scores: pd.DataFrame) -> pd.DataFrame:
    knn = scores[scores["method"] == "knn"].set_index(["dataset", "random_state", "gene"])["spearman"]
    out = []
    for (dataset, method), part in scores.groupby(["dataset", "method"], sort=False):
        paired = part.set_index(["dataset", "random_state", "gene"])["spearman"]
        beats = (paired > knn.reindex(paired.index)).mean() if method != "knn" else float("nan")
        out.append({
            "dataset": dataset, "method": method, "genes scored": int(part["spearman"].notna().sum()),
            "median Spearman": float(part["spearman"].median()), "mean Spearman": float(part["spearman"].mean()),
            "median, shuffled spots": float(part["spearman_shuffled"].median()),
            "share of genes better than kNN": float(beats) if method != "knn" else "-",
            "seconds per split": float(part.groupby("random_state")["seconds"].first().mean()),
        })
    return pd.DataFrame(out)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="one split, 100 / 10 epochs: a smoke run")
    parser.add_argument("--splits", type=int, default=3, help="random 10%% gene splits per dataset")
    parser.add_argument("--out", default=os.path.join("build", "bench"))
    args = parser.parse_args()
    # lightning and torch deprecation chatter on every gimVI fit; nothing the benchmark can act on
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    import scvi  # noqa: F401  (imported before the clocks start: import time is no method's cost)
    splits = 1 if args.quick else args.splits
    epochs = {"tangram": 100, "gimvi": 10} if args.quick else {}
    started = time.perf_counter()
    scores = pd.concat([run_pair(name, load(ref), load(sp), splits=splits, epochs=epochs)
                        for name, (ref, sp) in PAIRS.items()], ignore_index=True)
    table = summary(scores)
    print(f"\n### Imputing held-out genes: 10% of the shared genes, {splits} split(s) per dataset"
          f"{' (--quick)' if args.quick else ''}\n")
    print(markdown(table), flush=True)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "spatial_mapping_holdout.csv")
    scores.to_csv(path, index=False)
    print(f"\nper-gene scores: {path}; total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
