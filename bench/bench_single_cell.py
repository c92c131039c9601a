"""Single-cell DL methods against their classical baselines on real data, side by side.

    python bench/bench_single_cell.py [--quick] [--data DIR] [--out build/bench]

Prints markdown tables (BENCHMARKS.md quotes them) and writes them as CSV plus comparison PNGs:
1. integration on the 3-batch PBMC and the 2-batch mESC data: scib-metrics for scVI, scANVI,
   Harmony and PCA, with wall time;
2. label transfer on PBMC, each chemistry in turn the query and the other two the reference:
   accuracy, macro-F1, calibration error for scANVI surgery, kNN and SVM;
3. the same with one cell type removed from the reference: share of its cells called "unknown".
Defaults are the methods' own (scvi-tools' epochs for the data size); --quick caps epochs for a
smoke run. Data: the shared files (../shared/data) or the bundled PBMC file.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import anndata as ad
import pandas as pd
from _tables import markdown  # bench/ is on sys.path when a script runs

import isthmus.tl as tl

HERE = os.path.dirname(os.path.abspath(__file__))


def load(path: str, batch_key: str) -> ad.AnnData:
    adata = ad.read_h5ad(path)
    adata.obs[batch_key] = adata.obs[batch_key].astype(str).astype("category")
    if "counts" not in adata.layers:  # the task functions read counts from layers["counts"]
        adata.layers["counts"] = adata.X
    return adata




def integration(name, adata, out, epochs, genes="variable"):
    table = tl.compare(adata, task="integration", batch_key="batch", labels_key="cell_type", max_epochs=epochs,
                       verbose=False, **_genes_kwargs(adata, genes))
    table.insert(0, "dataset", name)
    tl.plot_comparison(table, os.path.join(out, f"integration_{name}.png"), title=f"integration: {name}")
    wide = table.pivot_table(index="method", columns="metric", values="value", sort=False)
    keep = ["Total", "Bio conservation", "Batch correction", "KMeans ARI", "KMeans NMI", "Silhouette label",
            "cLISI", "iLISI", "KBET", "Graph connectivity", "seconds"]
    wide = wide[[c for c in keep if c in wide.columns]].reset_index()
    print(f"\n### Integration, {name} ({adata.n_obs} cells, {adata.obs['batch'].nunique()} batches)\n")
    print(markdown(wide), flush=True)
    return table


def _genes_kwargs(adata, genes: str) -> dict:
    """The scVI / scANVI genes: the default (no keyword: "variable", which keeps every gene of data
    with no more than 2000), "all", or a number: that many by seurat_v3 per batch (Seurat's
    FindVariableFeatures(nfeatures = n), as the demo does with 1000)."""
    if genes == "variable":
        return {}
    if genes == "all":
        return {"genes": "all"}
    from isthmus.tl import _common

    chosen, _ = _common.model_genes(adata, "variable", layer="counts", batch_key="batch", n_top_genes=int(genes))
    return {"genes": list(chosen)}


def label_transfer(adata, out, epochs, holdout=()):
    rows = []
    for query in sorted(adata.obs["batch"].unique()):
        table = tl.compare(adata, task="label_transfer", batch_key="batch", labels_key="cell_type",
                           query_batches=[query], holdout_labels=list(holdout), max_epochs=epochs, verbose=False,
                           **({"query_epochs": min(100, epochs), "scanvi_epochs": min(20, epochs)} if epochs else {}))
        table.insert(0, "query", query)
        rows.append(table)
    table = pd.concat(rows, ignore_index=True)
    wide = table.pivot_table(index=["query", "method"], columns="metric", values="value", sort=False).reset_index()
    title = "Label transfer, PBMC: reference = two chemistries, query = the third"
    if holdout:
        title += f"; {', '.join(holdout)} removed from the reference"
    print(f"\n### {title}\n")
    print(markdown(wide), flush=True)
    summary = table.groupby(["method", "metric"], sort=False)["value"].mean().unstack().reset_index()
    print("\nMean over the three queries:\n")
    print(markdown(summary), flush=True)
    return table


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="5 epochs: a smoke run, not a result")
    parser.add_argument("--data", default=os.path.join(HERE, "..", "..", "shared", "data"))
    parser.add_argument("--out", default=os.path.join("build", "bench"))
    parser.add_argument("--tasks", default="integration,label_transfer",
                        help="comma-separated: integration, label_transfer")
    parser.add_argument("--genes", default="variable",
                        help="scVI/scANVI genes: variable (the default), all, or a number of seurat_v3 genes")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    warnings.filterwarnings("ignore")
    epochs = 5 if args.quick else None
    pbmc_path = os.path.join(args.data, "integration", "pbmc_3batch_symphony.h5ad")
    if not os.path.exists(pbmc_path):
        pbmc_path = os.path.join(HERE, "..", "inst", "extdata", "pbmc_3batch_symphony.h5ad")
    datasets = {"pbmc_3batch": load(pbmc_path, "batch")}
    mesc_path = os.path.join(args.data, "integration", "mesc_2batch_scmerge.h5ad")
    if os.path.exists(mesc_path):
        datasets["mesc_2batch"] = load(mesc_path, "batch")
    print(f"isthmus single-cell benchmark; epochs: {'scvi-tools default' if epochs is None else epochs}; "
          f"genes: {args.genes}; "
          f"{os.cpu_count()} CPU cores; {time.strftime('%Y-%m-%d %H:%M')}")
    started = time.perf_counter()
    tasks = args.tasks.split(",")
    if "integration" in tasks:
        tables = [integration(name, adata.copy(), args.out, epochs, args.genes) for name, adata in datasets.items()]
        pd.concat(tables).to_csv(os.path.join(args.out, "integration.csv"), index=False)
    if "label_transfer" not in tasks:
        return
    pbmc = datasets["pbmc_3batch"]
    label_transfer(pbmc, args.out, epochs).to_csv(os.path.join(args.out, "label_transfer.csv"), index=False)
    # B cells: a common, well-separated type, so "unknown" is clearly the right call for them
    label_transfer(pbmc, args.out, epochs, holdout=("B",)).to_csv(
        os.path.join(args.out, "label_transfer_holdout_B.csv"), index=False)
    print(f"\ntotal {time.perf_counter() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
