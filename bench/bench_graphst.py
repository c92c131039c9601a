"""GraphST (Long et al. 2023, the authors' package) on DLPFC slices 151673 and 151674, scored as
bench_spatial_domains.py scores our graph model: 7 domains against the manual layers.

GraphST is not an isthmus dependency; install it (and POT, its one import scanpy lacks) into a
folder of its own and put that on the path:

    python -m pip install --no-deps --target /tmp/graphst GraphST==1.1.1 POT
    PYTHONPATH=/tmp/graphst python bench/bench_graphst.py [--seeds 0 1] [--slices 151673,151674]

GraphST runs as its DLPFC tutorial does: its own preprocessing (3000 seurat_v3 genes, log,
scale), 600 epochs, its own seed. Its tutorial clusters with R's mclust (EEE on 20 principal
components of the embedding) and then refines labels by the majority of the 50 nearest spots;
here the same 20 components go to the mixture our graph model uses (mclust's EEE in
scikit-learn, best of 20 starts: tl._domains._gmm), so the two embeddings meet one clustering.
The table gives the ARI / NMI of each seed without and with GraphST's refinement. Torch on 2
threads (about 11 minutes a run here).
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import torch
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from isthmus.tl import _domains

from _tables import markdown

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "spatial"
N_DOMAINS = 7


def graphst_domains(adata, seed: int, epochs: int) -> tuple[np.ndarray, np.ndarray]:
    """GraphST's embedding of ``adata`` (raw counts, obsm["spatial"]) clustered into N_DOMAINS:
    the labels before and after GraphST's refinement."""
    from GraphST import GraphST
    from GraphST.utils import refine_label

    model = GraphST.GraphST(adata.copy(), device=torch.device("cpu"), random_seed=seed, epochs=epochs)
    out = model.train()
    components = PCA(n_components=20, random_state=42).fit_transform(out.obsm["emb"])  # the tutorial's 20
    labels = _domains._gmm(components, N_DOMAINS, seed=0)
    out.obs["domain"] = labels.astype(str)
    refined = np.asarray(refine_label(out, radius=50, key="domain"))
    return labels, refined


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slices", default="151673,151674")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--epochs", type=int, default=600, help="GraphST's default (its tutorial's)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    warnings.filterwarnings("ignore")
    rows = []
    for slice_id in args.slices.split(","):
        adata = ad.read_h5ad(SHARED / f"dlpfc_{slice_id}_visium_5000hvg.h5ad")
        truth = adata.obs["layer"].astype(str).to_numpy()
        known = truth != "nan"
        for seed in args.seeds:
            started = time.perf_counter()
            labels, refined = graphst_domains(adata, seed, args.epochs)
            seconds = time.perf_counter() - started
            row = {"slice": slice_id, "seed": seed}
            for name, found in (("", labels), (" refined", refined)):
                row[f"ARI{name}"] = adjusted_rand_score(truth[known], np.asarray(found)[known])
                row[f"NMI{name}"] = normalized_mutual_info_score(truth[known], np.asarray(found)[known])
            row["seconds"] = seconds
            rows.append(row)
            print(row, flush=True)
    print(markdown(pd.DataFrame(rows), digits=3))


if __name__ == "__main__":
    main()
