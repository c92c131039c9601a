"""Spatial domains on DLPFC slices 151673 and 151674 against the manual layers (L1-L6, WM).

    python bench/bench_spatial_domains.py            # 5 seeds, 1000 epochs (about 20 min on 1 core)
    python bench/bench_spatial_domains.py --quick    # 2 seeds, 100 epochs: a smoke run
    python bench/bench_spatial_domains.py --methods pca:gmm,banksy:gmm,banksy:leiden   # baselines only

Our graph attention autoencoder ("gat", STAGATE design) next to BANKSY (written from its paper)
and plain PCA, each clustered into 7 domains by a Gaussian mixture (mclust's EEE, as STAGATE; the
best likelihood of 20 starts) or by Leiden (resolution searched for 7 clusters). Every method runs
once per seed (the verb's default, 5); the table gives, per method and slice: the ARI and NMI of
the consensus over seeds after spatial refinement (what tl.spatial_domains returns), the mean and
sd of each seed's ARI, and the clustering's share of that spread: the most typical run's
embedding is clustered again with 5 clustering seeds, and the share is var(clustering) /
(var(clustering) + var(seeds)). Spots without a manual label (about 30) are left out of the
scores. Seconds: the whole call (all seeds), one thread.

Reads ../shared/data/spatial/dlpfc_<slice>_visium_5000hvg.h5ad (all spots x 5000 genes), or the
bundled 1000-gene version of 151673 if those are missing. Where the slice's Visium image folder
../shared/data/spatial/dlpfc_<slice>_visium_image is there, every method gets scanpy's Visium
layout: obsm["spatial"] in full-resolution pixels (tissue_positions_list.txt, by barcode; the
neighbour graph differs from the one on the files' scaled coordinates in 4 of 21,000 edges on
151673, 8 on 151674) and uns["spatial"] with the 600 x 600 H&E image and its scale factors;
method "gat+image" is the graph model with ``image_features=True``.

    python bench/bench_spatial_domains.py --methods gat:gmm,gat+image:gmm

    python bench/bench_spatial_domains.py --joint    # several slices at once (issue 17, item 4)

--joint: the slices each alone and all of them as one joint model (tl.spatial_domains with
batch_key: a neighbour graph per slice, Harmony by slice on each method's embedding, one
clustering), on the genes the slices share (the files hold each slice's own top 5000: 151673 and
151674 share 2340, fewer than the 3000 variable genes asked for, so every method takes all of
them). Methods gat, banksy and pca, each clustered by the mixture into 7 domains. The joint run is
scored on each slice's spots and on all spots together: the layers are the same labels in every
slice, so the overall ARI is below the slices' own when a domain is one layer in one slice and
another layer in the other.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import anndata as ad  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score  # noqa: E402

from isthmus import tl  # noqa: E402
from isthmus.models import _spatial_graph  # noqa: E402
from isthmus.tl import _domains  # noqa: E402

from _tables import markdown  # noqa: E402  (bench/ is on sys.path when a script runs)

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "spatial"
BUNDLED = ROOT / "inst" / "extdata" / "dlpfc_151673_visium_top1000.h5ad"


def with_visium_image(adata, folder: Path, library: str):
    """``adata`` with scanpy's Visium layout from a Space Ranger spatial folder: full-resolution
    pixel coordinates by barcode and the lowres image with its scale factors."""
    import json

    from PIL import Image

    positions = pd.read_csv(folder / "tissue_positions_list.txt", header=None, index_col=0)
    missing = adata.obs_names.difference(positions.index)
    if len(missing):
        raise ValueError(f"{len(missing)} spots are not in {folder}/tissue_positions_list.txt")
    adata.obsm["spatial"] = positions.loc[adata.obs_names, [5, 4]].to_numpy(dtype=float)  # (col, row) = (x, y)
    adata.uns["spatial"] = {library: {
        "images": {"lowres": np.asarray(Image.open(folder / "tissue_lowres_image.png").convert("RGB"))},
        "scalefactors": json.loads((folder / "scalefactors_json.json").read_text())}}
    return adata


def image_signal(adata, truth, known) -> str:
    """How much of the layers the image features carry on their own: the ARI of a 7-domain mixture
    (the task's, best of 20 starts) on the z-scored features, and the 5-fold cross-validated
    accuracy of a logistic regression of the layer on them (against the largest layer's share)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    from isthmus.tl import _histology

    features = _histology.spot_image_features(adata).to_numpy()
    z = (features - features.mean(axis=0)) / features.std(axis=0)
    ari = adjusted_rand_score(truth, _domains._gmm(z, 7)[known])
    accuracy = cross_val_score(LogisticRegression(max_iter=2000), z[known], truth, cv=5).mean()
    return (f"image features alone: mixture ARI {ari:.3f}; layer accuracy {accuracy:.3f} "
            f"(largest layer {truth.value_counts(normalize=True).max():.3f})")


def _sd(values) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--slices", default="151673,151674")
    parser.add_argument("--methods", default=None,
                        help="method:clustering pairs, e.g. pca:gmm,banksy:gmm (gat takes ~7 min a slice); default "
                             "pca:gmm,banksy:gmm,banksy:leiden,gat:gmm, with --joint pca:gmm,banksy:gmm,gat:gmm")
    parser.add_argument("--n-top-genes", type=int, default=3000, help="variable genes every method gets")
    parser.add_argument("--joint", action="store_true", help="the slices alone and together, on their shared genes")
    parser.add_argument("--out", default=None, help="--joint: a TSV the rows are appended to as they finish")
    parser.add_argument("--gat-loss", choices=["per-gene", "per-component"], default=None,
                        help="the graph model's MSE per gene, as STAGATE's (the default), or per input component "
                             "(_domains.GAT_LOSS_PER_GENE)")
    parser.add_argument("--gat-init", choices=["stagate", "xavier_uniform"], default=None,
                        help="the graph model's initial weights: STAGATE's (the default) or isthmus's first choice "
                             "(models._spatial_graph.INITIALISATION)")
    args = parser.parse_args()
    if args.gat_loss:
        _domains.GAT_LOSS_PER_GENE = args.gat_loss == "per-gene"
    if args.gat_init:
        _spatial_graph.INITIALISATION = args.gat_init
    n_seeds = args.seeds or (2 if args.quick else 5)
    epochs = args.epochs or (100 if args.quick else 1000)
    torch.set_num_threads(1)
    if args.joint:
        joint(args, n_seeds, epochs)
        return
    args.methods = args.methods or "pca:gmm,banksy:gmm,banksy:leiden,gat:gmm"

    rows = []
    for slice_id in args.slices.split(","):
        path = SHARED / f"dlpfc_{slice_id}_visium_5000hvg.h5ad"
        path = path if path.exists() else BUNDLED
        adata = ad.read_h5ad(path)
        folder = SHARED / f"dlpfc_{slice_id}_visium_image"
        if path != BUNDLED and folder.exists():
            adata = with_visium_image(adata, folder, slice_id)
        truth = adata.obs["layer"].astype(str)
        known = (truth != "nan").to_numpy()
        truth = truth[known]
        print(f"{path.name}: {adata.n_obs} spots x {adata.n_vars} genes; {known.sum()} with a manual layer; "
              f"{n_seeds} seeds, {epochs} epochs", flush=True)
        if "spatial" in adata.uns:
            print("  " + image_signal(adata, truth, known), flush=True)
        for spec in args.methods.split(","):
            method, cluster = spec.split(":")
            method, image = method.removesuffix("+image"), method.endswith("+image")
            key = f"{method}{'_image' if image else ''}_{cluster}"
            work = adata.copy()
            started = time.perf_counter()
            tl.spatial_domains(work, method=method, n_domains=7, cluster_method=cluster, layer=None,
                               n_seeds=n_seeds, max_epochs=epochs, n_top_genes=args.n_top_genes, key_added=key,
                               image_features=image, verbose=False)
            seconds = time.perf_counter() - started
            runs = work.obsm[f"{key}_seed_domains"][known]
            seed_ari = [adjusted_rand_score(truth, runs[:, i]) for i in range(runs.shape[1])]
            consensus = work.obs[f"{key}_domain"].astype(str)[known]
            if cluster == "gmm":  # the typical run's embedding, clustered with other starting seeds
                embedding = work.obsm[f"X_{key}"]
                again = [adjusted_rand_score(truth, _domains._gmm(embedding, 7, seed)[known]) for seed in range(5)]
                share = _sd(again) ** 2 / max(_sd(again) ** 2 + _sd(seed_ari) ** 2, 1e-12)
                clustering = f"{share:.2f} (sd {_sd(again):.3f})"
            else:
                clustering = ""
            rows.append({
                "method": method + ("+image" if image else ""), "clustering": cluster, "slice": slice_id,
                "ARI consensus": adjusted_rand_score(truth, consensus),
                "NMI consensus": normalized_mutual_info_score(truth, consensus),
                "ARI per seed, mean": np.mean(seed_ari), "sd": _sd(seed_ari),
                "ARI of each seed": " ".join(f"{a:.3f}" for a in seed_ari),
                "clustering's share of the spread": clustering,
                "seconds": seconds,
            })
            print(f"  {rows[-1]['method']} + {cluster}: consensus ARI {rows[-1]['ARI consensus']:.3f}, per seed "
                  f"{rows[-1]['ARI of each seed']} ({seconds:.0f} s)", flush=True)
    print()
    print(markdown(pd.DataFrame(rows)))


def _slices_on_shared_genes(slice_ids):
    """Each slice's AnnData on the genes all share (in the first slice's order), spots renamed
    "<slice>_<barcode>" (the slices reuse barcodes), obs["slice"] its slice."""
    slices = {s: ad.read_h5ad(SHARED / f"dlpfc_{s}_visium_5000hvg.h5ad") for s in slice_ids}
    genes = list(slices.values())[0].var_names
    for adata in slices.values():
        genes = genes[genes.isin(adata.var_names)]
    out = {}
    for name, adata in slices.items():
        adata = adata[:, genes].copy()
        adata.obs_names = [f"{name}_{b}" for b in adata.obs_names]
        adata.obs["slice"] = name
        out[name] = adata
    return out


def _scores(work, key, truth, where):
    """Consensus ARI / NMI and each seed's ARI on the spots ``where`` (a mask) that have a layer."""
    known = where & truth.notna().to_numpy()
    layer = truth.astype(str).to_numpy()[known]
    runs = work.obsm[f"{key}_seed_domains"][known]
    consensus = work.obs[f"{key}_domain"].astype(str).to_numpy()[known]
    seed_ari = [adjusted_rand_score(layer, runs[:, i]) for i in range(runs.shape[1])]
    return {"ARI consensus": adjusted_rand_score(layer, consensus),
            "NMI consensus": normalized_mutual_info_score(layer, consensus),
            "ARI per seed, mean": np.mean(seed_ari), "sd": _sd(seed_ari),
            "ARI of each seed": " ".join(f"{a:.3f}" for a in seed_ari)}


def joint(args, n_seeds, epochs):
    slice_ids = args.slices.split(",")
    slices = _slices_on_shared_genes(slice_ids)
    together = ad.concat(list(slices.values()))
    together.obsm["spatial"] = np.vstack([a.obsm["spatial"] for a in slices.values()])
    n_genes = together.n_vars
    print(f"slices {', '.join(slice_ids)}: {together.n_obs} spots x {n_genes} shared genes; {n_seeds} seeds, "
          f"{epochs} epochs", flush=True)
    # the joint run first (the new one: its rows are kept first if a long run is cut short)
    runs = [("+".join(slice_ids), together, "slice")] + [(s, slices[s], None) for s in slice_ids]
    rows = []
    for spec in (args.methods or "pca:gmm,banksy:gmm,gat:gmm").split(","):
        method, cluster = spec.split(":")
        for name, adata, batch_key in runs:
            work = adata.copy()
            started = time.perf_counter()
            tl.spatial_domains(work, method=method, n_domains=7, cluster_method=cluster, layer=None,
                               n_seeds=n_seeds, max_epochs=epochs, n_top_genes=args.n_top_genes, batch_key=batch_key,
                               verbose=False)
            seconds = time.perf_counter() - started
            truth = work.obs["layer"].astype(str).replace("nan", np.nan)
            scored = [("all", np.ones(work.n_obs, dtype=bool))]
            if batch_key is not None:
                scored = [(s, (work.obs["slice"] == s).to_numpy()) for s in slice_ids] + scored
            for scored_on, where in scored:
                rows.append({"method": method, "clustering": cluster, "run": name, "scored on": scored_on, "genes": n_genes,
                             **_scores(work, method, truth, where), "seconds": seconds})
                print(f"  {method} {name} on {scored_on}: consensus ARI {rows[-1]['ARI consensus']:.3f}, per seed "
                      f"{rows[-1]['ARI of each seed']} ({seconds:.0f} s)", flush=True)
                if args.out:
                    pd.DataFrame([rows[-1]]).to_csv(args.out, sep="\t", mode="a", index=False,
                                                    header=not Path(args.out).exists())
    table = pd.DataFrame(rows)
    order = {name: k for k, (name, _, _) in enumerate(runs[1:] + runs[:1])}  # printed: each alone, then together
    table = table.iloc[np.lexsort([table["run"].map(order), table["method"].map(
        {m: k for k, m in enumerate(dict.fromkeys(table["method"]))})])]
    print()
    print(markdown(table))


if __name__ == "__main__":
    main()
