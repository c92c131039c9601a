"""Seconds per scVI epoch on the bundled PBMC data (1200 cells): every gene (1767) vs 1000 variable
genes (seurat_v3 per batch, what Seurat's FindVariableFeatures(nfeatures = 1000) picks on the
counts), alternated in one process so that both see the same load.

    python bench/bench_epoch_genes.py [rounds] [epochs]
"""

import os
import sys
import time

import anndata as ad

import isthmus.tl as tl
from isthmus.tl import _common

HERE = os.path.dirname(os.path.abspath(__file__))


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    epochs = int(sys.argv[2]) if len(sys.argv) > 2 else 40
    adata = ad.read_h5ad(os.path.join(HERE, "..", "inst", "extdata", "pbmc_3batch_symphony.h5ad"))
    adata.obs["batch"] = adata.obs["batch"].astype(str)
    variable, _ = _common.model_genes(adata, "variable", layer="counts", batch_key="batch", n_top_genes=1000)
    print("| round | genes | s/epoch |\n|---|---|---:|")
    for round_ in range(1, rounds + 1):
        for name, genes in ((f"all {adata.n_vars}", "all"), ("1000 variable", list(variable))):
            started = time.perf_counter()
            tl.integrate(adata.copy(), batch_key="batch", max_epochs=epochs, genes=genes, verbose=False)
            print(f"| {round_} | {name} | {(time.perf_counter() - started) / epochs:.3f} |", flush=True)


if __name__ == "__main__":
    main()
