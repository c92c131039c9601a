"""Builds inst/extdata from ../shared/data (run once; the outputs are committed with notes).

Subsets keep the repository small; tests and the demo use these, benchmarks read the full files.
"""
import shutil
from pathlib import Path

import anndata as ad
import mudata as md
import numpy as np

SRC = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
OUT = Path(__file__).resolve().parents[1] / "inst" / "extdata"
OUT.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(0)

# 1. PBMC, 3 chemistries: as shipped
for name in ("pbmc_3batch_symphony.h5ad",):
    shutil.copy(SRC / "integration" / name, OUT / name)
    shutil.copy(SRC / "integration" / f"{name}.note.md", OUT / f"{name}.note.md")

# 2. DLPFC 151673: every spot, the 1000 genes with the highest total counts
dl = ad.read_h5ad(SRC / "spatial" / "dlpfc_151673_visium_5000hvg.h5ad")
totals = np.asarray(dl.X.sum(axis=0)).ravel()
keep = np.sort(np.argsort(-totals)[:1000])
sub = dl[:, keep].copy()
sub.write_h5ad(OUT / "dlpfc_151673_visium_top1000.h5ad", compression="gzip")

# 3. MOp SNARE-seq2: 200 nuclei per batch, all genes, the 4000 peaks with the most counts in them
mop = md.read_h5mu(SRC / "multiome" / "mop_snareseq2_rna_atac_3batches.h5mu")
batch = mop.obs["batch"].astype(str).to_numpy()
cells = np.concatenate([rng.choice(np.flatnonzero(batch == b), 200, replace=False) for b in np.unique(batch)])
cells = np.sort(cells)
names = mop.obs_names[cells]
rna = mop["rna"][names].copy()
atac = mop["atac"][names].copy()
peaks = np.sort(np.argsort(-np.asarray(atac.X.sum(axis=0)).ravel())[:4000])
atac = atac[:, peaks].copy()
for key in list(rna.varm):
    del rna.varm[key]  # the gene x region link matrix refers to all peaks
rna.obs = rna.obs[[]]
atac.obs = atac.obs[[]]
md.set_options(pull_on_update=False)
small = md.MuData({"rna": rna, "atac": atac})
small.obs = mop.obs.loc[names].copy()
small.write_h5mu(OUT / "mop_snareseq2_600cells.h5mu", compression="gzip")
print("done", [p.name for p in OUT.iterdir()])
