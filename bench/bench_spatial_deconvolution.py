"""Spot deconvolution benchmark: DestVI and Stereoscope (scvi-tools) against NNLS, on CPU.

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 python bench/bench_spatial_deconvolution.py [--quick]

1. Known truth. Pseudo-spots summed from labelled real single cells: mouse motor cortex SNARE-seq2
   RNA (../shared/data/multiome/mop_snareseq2_rna_atac_3batches.h5mu, else the bundled 600-nuclei
   subset) and human PBMC (inst/extdata/pbmc_3batch_symphony.h5ad). Each type's cells are split in
   two halves: one is the reference, the other makes the spots (5-10 cells, 1-4 types each, see
   isthmus.tl._deconvolve.pseudo_spots), so no cell is in both; types with fewer than 20 cells
   (too few for two halves of min_cells_per_type = 10) are dropped first. Scores (RMSE, mean
   per-spot Jensen-Shannon divergence, Pearson of all proportions; Li et al. 2022 Nat Methods) and
   wall seconds per method.
2. No truth. The bundled real pairs (spacexr's Slide-seq cerebellum and Visium hippocampus with
   their single-cell references) end to end: the most frequent dominant type per method and how
   far the methods agree (same dominant type; Pearson of proportions).

Defaults fit in about ten minutes on two CPU cores (534 s on a 2-core machine shared with other
jobs); --quick (a few epochs, ~25 s) is a smoke run whose scores mean nothing. The DL models train
for fewer epochs than deconvolve()'s defaults (DestVI 150 here, 300 there; scvi-tools' 2000) to fit
that budget: read their scores as "at this CPU budget"; --destvi-epochs etc. train longer.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))

from isthmus.tl import _deconvolve as dc  # noqa: E402
from isthmus.tl import method_names  # noqa: E402

EXTDATA = ROOT / "inst" / "extdata"
MOP_FULL = ROOT.parent / "shared" / "data" / "multiome" / "mop_snareseq2_rna_atac_3batches.h5mu"
MOP_SMALL = EXTDATA / "mop_snareseq2_600cells.h5mu"
MIN_CELLS = 10


def load_mop():
    import mudata as md

    md.set_options(pull_on_update=False)
    path = MOP_FULL if MOP_FULL.exists() else MOP_SMALL
    mdata = md.read_h5mu(path)
    rna = mdata.mod["rna"].copy()
    if "cell_type" not in rna.obs:  # the bundled subset keeps labels in the global obs only
        rna.obs["cell_type"] = mdata.obs.loc[rna.obs_names, "cell_type"].to_numpy()
    return rna, path.name


def load_pbmc():
    import anndata as ad

    adata = ad.read_h5ad(EXTDATA / "pbmc_3batch_symphony.h5ad")
    adata.X = adata.layers["counts"]
    return adata, "pbmc_3batch_symphony.h5ad"


def run(method, spatial, reference, args, **kwargs):
    epochs = {"destvi": (args.destvi_epochs, args.condscvi_epochs),
              "stereoscope": (args.stereoscope_epochs, args.stereoscope_reference_epochs),
              "nnls": (None, None)}[method]
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        out = dc.deconvolve(spatial, reference, labels_key="cell_type", method=method, layer=None,
                            n_top_genes=args.n_top_genes, max_epochs=epochs[0], reference_epochs=epochs[1],
                            random_state=args.seed, verbose=False, **kwargs)
    return out, time.perf_counter() - started


def dominant(proportions: pd.DataFrame) -> pd.Series:
    return proportions.idxmax(axis=1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few epochs and spots: a smoke run")
    parser.add_argument("--methods", default=",".join(method_names("deconvolve")))
    parser.add_argument("--n-spots", type=int, default=150)
    parser.add_argument("--n-top-genes", type=int, default=500)
    parser.add_argument("--condscvi-epochs", type=int, default=100)
    parser.add_argument("--destvi-epochs", type=int, default=150)
    parser.add_argument("--stereoscope-reference-epochs", type=int, default=400)
    parser.add_argument("--stereoscope-epochs", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.quick:
        args.n_spots, args.condscvi_epochs, args.destvi_epochs = 60, 5, 5
        args.stereoscope_reference_epochs, args.stereoscope_epochs = 5, 5
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    import scvi  # noqa: F401  (imported here so that the first method's seconds leave out the import)
    import torch

    started = time.perf_counter()
    print(f"# Spot deconvolution benchmark{' (--quick: scores mean nothing)' if args.quick else ''}\n")
    print(f"CPU, torch threads {torch.get_num_threads()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '')}; "
          f"{args.n_top_genes} most variable shared genes; epochs: CondSCVI {args.condscvi_epochs} + DestVI "
          f"{args.destvi_epochs}, RNAStereoscope {args.stereoscope_reference_epochs} + SpatialStereoscope "
          f"{args.stereoscope_epochs}; seed {args.seed}.\n")

    print("## Pseudo-spots of known composition (reference and spots from disjoint halves of the cells)\n")
    print("Scores against the true cell fractions, for the default output (cell_fractions=True: shares of cells) and, "
          "after the slash, for the methods' own shares of counts (cell_fractions=False).\n")
    print("| data | spots | types | ref. cells | method | RMSE | JSD | Pearson | seconds |")
    print("|---|---:|---:|---:|---|---:|---:|---:|---:|")
    notes = []
    for loader in (load_mop, load_pbmc):
        adata, name = loader()
        reference, held_out, dropped = dc.split_halves(adata, labels_key="cell_type", min_cells=MIN_CELLS,
                                                   random_state=args.seed)
        if dropped:
            notes.append(f"{name}: dropped types with < {2 * MIN_CELLS} cells: {', '.join(dropped)}")
        spots, truth = dc.pseudo_spots(held_out, labels_key="cell_type", n_spots=args.n_spots, layer=None,
                                       random_state=args.seed)
        for method in methods:
            estimate, seconds = run(method, spots, reference, args)
            scores = dc.deconvolution_scores(truth, estimate)
            # shares of counts, back from shares of cells with the recorded counts per cell
            params = spots.uns["deconvolution"]["params"]
            counts = estimate * np.asarray(params["counts_per_cell"])
            counts = dc.deconvolution_scores(truth, counts.div(counts.sum(axis=1), axis=0))
            cells = " | ".join(f"{scores[k]:.3f} / {counts[k]:.3f}" for k in ("rmse", "jsd", "pearson"))
            print(f"| {name} | {spots.n_obs} | {truth.shape[1]} | {reference.n_obs} | {method} | {cells} | "
                  f"{seconds:.1f} |", flush=True)
        uniform = pd.DataFrame(1.0 / truth.shape[1], index=truth.index, columns=truth.columns)
        base = dc.deconvolution_scores(truth, uniform)
        print(f"| {name} | {spots.n_obs} | {truth.shape[1]} | {reference.n_obs} | (even split) | {base['rmse']:.3f} | "
              f"{base['jsd']:.3f} | - | - |", flush=True)
    for note in notes:
        print(f"\n{note}")

    import anndata as ad

    print("\n## Real reference + spatial pairs (no truth): dominant types and agreement between methods\n")
    print("| data | spots | method | most frequent dominant types (share of spots) | mean top proportion | seconds |")
    print("|---|---:|---|---|---:|---:|")
    agreement = []
    for tissue, platform in (("cerebellum", "slideseq"), ("hippocampus", "visium")):
        spatial = ad.read_h5ad(EXTDATA / f"{tissue}_spatial_{platform}.h5ad")
        reference = ad.read_h5ad(EXTDATA / f"{tissue}_reference_sc.h5ad")
        results = {}
        for method in methods:
            estimate, seconds = run(method, spatial, reference, args, min_gene_overlap=0.3)
            results[method] = estimate
            top = dominant(estimate).value_counts(normalize=True).head(3)
            tops = ", ".join(f"{k} {v:.0%}" for k, v in top.items())
            print(f"| {tissue} ({platform}) | {spatial.n_obs} | {method} | {tops} | "
                  f"{estimate.max(axis=1).mean():.2f} | {seconds:.1f} |", flush=True)
        for first, second in combinations(results, 2):
            same = float((dominant(results[first]) == dominant(results[second])).mean())
            r = np.corrcoef(results[first].to_numpy().ravel(), results[second].to_numpy().ravel())[0, 1]
            agreement.append(f"| {tissue} | {first} vs {second} | {same:.0%} | {r:.2f} |")
    print("\nhippocampus: 124 of the Visium data's 276 genes are in the reference (45%).")
    print("\n| data | methods | same dominant type | Pearson of proportions |")
    print("|---|---|---:|---:|")
    print("\n".join(agreement))
    print(f"\nTotal wall time {time.perf_counter() - started:.0f} s.")


if __name__ == "__main__":
    main()
