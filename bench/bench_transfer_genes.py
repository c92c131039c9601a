"""scANVI label transfer (reference: the two 3' chemistries of the bundled PBMC data; query: the 5'
cells) by the genes the reference model trains on: every gene of the 1767-gene panel (what the
standard selection of 2000 genes keeps when a panel has fewer), 1000 variable genes chosen on all
cells without batches (what Seurat's FindVariableFeatures(nfeatures = 1000) on the whole object
gives, the demo's PCA genes), and 1000 chosen per reference batch. Accuracy of the predicted labels
on the query, per seed; the demo's settings (scVI 100 epochs, scANVI 20, query surgery 100).

    python bench/bench_transfer_genes.py [seeds]
"""

import os
import sys
import time
import warnings

import anndata as ad
import numpy as np
import pandas as pd

import isthmus.tl as tl
from isthmus.tl import _common

from _tables import markdown

HERE = os.path.dirname(os.path.abspath(__file__))


def main() -> None:
    seeds = range(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
    adata = ad.read_h5ad(os.path.join(HERE, "..", "inst", "extdata", "pbmc_3batch_symphony.h5ad"))
    adata.obs["batch"] = adata.obs["batch"].astype(str)
    reference, query = adata[adata.obs["batch"] != "5p"].copy(), adata[adata.obs["batch"] == "5p"].copy()
    gene_sets = {
        f"all {adata.n_vars}": "all",
        "1000 variable, all cells": list(_common.model_genes(adata, "variable", layer=None, n_top_genes=1000)[0]),
        "1000 variable, per reference batch": list(_common.model_genes(reference, "variable", layer=None,
                                                                       batch_key="batch", n_top_genes=1000)[0]),
    }
    rows = []
    for name, genes in gene_sets.items():
        for seed in seeds:
            started = time.perf_counter()
            predicted = query.copy()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tl.transfer_labels(reference.copy(), predicted, labels_key="cell_type", batch_key="batch", layer=None,
                                   genes=genes, max_epochs=100, random_state=seed, verbose=False)
            accuracy = float((predicted.obs["transfer_predicted.id"].astype(str)
                              == predicted.obs["cell_type"].astype(str)).mean())
            rows.append({"genes": name, "seed": seed, "accuracy": accuracy,
                         "seconds": round(time.perf_counter() - started, 1)})
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    summary = table.groupby("genes", sort=False).agg(mean=("accuracy", "mean"), sd=("accuracy", "std"),
                                                    seconds=("seconds", "mean")).reset_index()
    print(markdown(table))
    print()
    print(markdown(summary))


if __name__ == "__main__":
    main()
