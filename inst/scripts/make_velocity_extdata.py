"""Builds inst/extdata/pancreas_velocity_739_top2000.h5ad from the shared velocity data (run once;
the output is committed with its note).

    python inst/scripts/make_velocity_extdata.py

Every cell of ../shared/data/velocity/pancreas_velocity_739_veloviz.h5ad, and the 2000 genes that
scVelo's usual preprocessing keeps: genes with at least 20 counts in both spliced and unspliced
(scv.pp.filter_and_normalize(min_shared_counts=20)), then the 2000 most variable of them
(scanpy's highly_variable_genes on the log-normalised spliced counts; scVelo 0.3 left that step to
scanpy). The layers stay raw integer counts; X holds the spliced counts (what a Seurat "RNA" assay
would hold).
"""

from pathlib import Path

import anndata as ad
import numpy as np
import scanpy as sc
import scvelo as scv

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT.parent / "shared" / "data" / "velocity" / "pancreas_velocity_739_veloviz.h5ad"
OUT = ROOT / "inst" / "extdata" / "pancreas_velocity_739_top2000.h5ad"

full = ad.read_h5ad(SOURCE)
scv.settings.verbosity = 0
work = full.copy()
work.X = work.layers["spliced"].copy()
scv.pp.filter_and_normalize(work, min_shared_counts=20)
sc.pp.log1p(work)
sc.pp.highly_variable_genes(work, n_top_genes=2000)
genes = work.var_names[work.var["highly_variable"].to_numpy()]

keep = np.flatnonzero(full.var_names.isin(genes))  # the source's gene order
small = ad.AnnData(X=full.layers["spliced"][:, keep].copy(), obs=full.obs[["clusters"]].copy(),
                   var=full.var.iloc[keep].copy(),
                   layers={name: full.layers[name][:, keep].copy() for name in ("spliced", "unspliced")},
                   obsm={"X_pca": np.asarray(full.obsm["X_pca"], dtype=np.float32)},
                   uns={"source_note": str(full.uns.get("source_note", ""))})
small.write_h5ad(OUT, compression="gzip")
print(f"{OUT.name}: {small.n_obs} cells x {small.n_vars} genes, {OUT.stat().st_size / 1e6:.2f} MB")
