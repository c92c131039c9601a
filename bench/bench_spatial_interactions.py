"""Spatial ligand-receptor interactions against the CellPhoneDB-style baseline on real slices.

    OMP_NUM_THREADS=1 python bench/bench_spatial_interactions.py [--n-perms 1000] [--data ../shared/data]
        [--out build/bench]

For each slice, isthmus.tl interactions() with method "spatial" (mean ligand x receptor over
adjacent spots, the spot itself included) and "nonspatial" (mean ligand in the source x mean
receptor in the target), both with label-shuffle p-values, resource "auto" (LIANA's consensus,
human or mouse, read from the liana package's CSV) and LIANA's expr_prop 0.1. Prints a markdown
table: rows tested, interactions with FDR < 0.05 per method, how many of those both call, overlap
of the two top-20 lists (ranked by p-value then score), wall seconds of each run. Writes the tables
as CSV and the spatial dot plots as PNG under --out.

Slices:
1. hippocampus_visium (bundled, inst/extdata): 313 mouse Visium spots x 276 genes, no labels ship
   with it: labels are six spectral clusters of the kNN graph of the standard PCA (as in the tests;
   k-means isolates one outlier spot). Only 2 mouse consensus pairs have all their genes among the
   276 (RCTD's marker genes): a smoke run, not a comparison.
2. mouse_olfactory_bulb_st (../shared/data/spatial, if present): 262 Spatial Transcriptomics spots
   (100 um, square grid: 4 neighbours) x 15928 genes, the 5 manual layers as labels (2 unannotated
   spots, stored as the string "nan", dropped).
3. DLPFC 151673 (../shared/data/spatial, if present) has Ensembl IDs only; mapping them to symbols
   needs an annotation download, so no biological run. It still times the method at the size the
   task asks for: 3611 annotated Visium spots x 7 layers x 300 random pairs of its genes (a timing
   row, the counts of "significant" pairs there mean nothing).
"""

from __future__ import annotations

import argparse
import os
import time

import anndata as ad
import numpy as np
import pandas as pd

from isthmus.tl import _classical
from isthmus.tl._interactions import interactions, plot_interactions
from _tables import markdown  # bench/ is on sys.path when a script runs

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
KEY = ["source", "target", "ligand", "receptor"]


def clusters(adata, n_clusters=6):
    from sklearn.cluster import SpectralClustering

    pcs = _classical.ScaledPCA(10, random_state=0).fit_transform(_classical.log_normalise(adata.X))
    found = SpectralClustering(n_clusters, affinity="nearest_neighbors", n_neighbors=15,
                               random_state=0).fit_predict(pcs)
    return pd.Categorical([f"c{k}" for k in found])


def annotated(adata, key):
    labels = adata.obs[key].astype(str)
    keep = (labels != "nan").to_numpy() & adata.obs[key].notna().to_numpy()
    adata = adata[keep].copy()
    adata.obs[key] = pd.Categorical(adata.obs[key].astype(str))
    return adata


def compare(name, adata, labels_key, *, n_neighbors, n_perms, out, resource="auto", note=""):
    tables, seconds = {}, {}
    for method in ("spatial", "nonspatial"):
        started = time.perf_counter()
        tables[method] = interactions(adata, labels_key=labels_key, method=method, resource=resource, layer=None,
                                      n_neighbors=n_neighbors, n_perms=n_perms, verbose=False)
        seconds[method] = time.perf_counter() - started
        tables[method].to_csv(os.path.join(out, f"interactions_{name}_{method}.csv"), index=False)
    params = adata.uns["interactions"]["params"]
    significant = {m: set(map(tuple, t.loc[t["fdr"] < 0.05, KEY].to_numpy())) for m, t in tables.items()}
    top = {m: set(map(tuple, t.head(20)[KEY].to_numpy())) for m, t in tables.items()}
    if len(tables["spatial"]):
        plot_interactions(tables["spatial"], os.path.join(out, f"interactions_{name}_spatial.png"),
                          title=f"spatial interactions: {name}")
    return {
        "slice": name, "spots": adata.n_obs, "labels": adata.obs[labels_key].nunique(),
        "resource": f"{params['resource']} ({params['pairs_kept']} pairs)",
        "rows spatial": len(tables["spatial"]), "rows nonspatial": len(tables["nonspatial"]),
        "FDR<0.05 spatial": len(significant["spatial"]), "FDR<0.05 nonspatial": len(significant["nonspatial"]),
        "both": len(significant["spatial"] & significant["nonspatial"]),
        "top-20 overlap": len(top["spatial"] & top["nonspatial"]),
        "s spatial": round(seconds["spatial"], 1), "s nonspatial": round(seconds["nonspatial"], 1), "note": note,
    }




def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-perms", type=int, default=1000)
    parser.add_argument("--data", default=os.path.join(os.path.dirname(ROOT), "shared", "data"))
    parser.add_argument("--out", default=os.path.join(ROOT, "build", "bench"))
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rows = []

    hippocampus = ad.read_h5ad(os.path.join(ROOT, "inst", "extdata", "hippocampus_spatial_visium.h5ad"))
    hippocampus.obs["cluster"] = clusters(hippocampus)
    rows.append(compare("hippocampus_visium", hippocampus, "cluster", n_neighbors=6, n_perms=args.n_perms,
                        out=args.out, note="labels: 6 spectral clusters; smoke run (2 pairs)"))

    bulb_path = os.path.join(args.data, "spatial", "mouse_olfactory_bulb_st_stdeconvolve.h5ad")
    if os.path.exists(bulb_path):
        bulb = annotated(ad.read_h5ad(bulb_path), "layer")
        rows.append(compare("mouse_olfactory_bulb_st", bulb, "layer", n_neighbors=4, n_perms=args.n_perms,
                            out=args.out, note="labels: 5 manual layers"))
    else:
        print(f"(skipped: {bulb_path} not found)")

    dlpfc_path = os.path.join(args.data, "spatial", "dlpfc_151673_visium_5000hvg.h5ad")
    if os.path.exists(dlpfc_path):
        dlpfc = annotated(ad.read_h5ad(dlpfc_path), "layer")
        genes = dlpfc.var_names.to_numpy()
        rng = np.random.default_rng(0)
        random_pairs = pd.DataFrame({"ligand": rng.choice(genes, 300), "receptor": rng.choice(genes, 300)})
        rows.append(compare("dlpfc_151673_timing", dlpfc, "layer", n_neighbors=6, n_perms=args.n_perms,
                            out=args.out, resource=random_pairs,
                            note="Ensembl IDs: 300 random gene pairs, timing only"))
    else:
        print(f"(skipped: {dlpfc_path} not found)")

    table = pd.DataFrame(rows)
    table.to_csv(os.path.join(args.out, "interactions_summary.csv"), index=False)
    print(f"\n### Spatial vs non-spatial ligand-receptor interactions ({args.n_perms} label shuffles, "
          "expr_prop 0.1, 1 thread)\n")
    print(markdown(table), flush=True)


if __name__ == "__main__":
    main()
