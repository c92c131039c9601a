"""The Python side of bench_r_overhead.R: the same scVI call as RunSCVI(), timed in Python.

    python bench/scvi_in_python.py FILE.h5ad EPOCHS SEED
Prints the seconds of the call (imports and a warm-up excluded) on the last line.
"""

import sys
import time
import warnings

import anndata as ad

import isthmus.tl as tl

warnings.filterwarnings("ignore")
path, epochs, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
adata = ad.read_h5ad(path)
counts = adata.layers["counts"] if "counts" in adata.layers else adata.X
adata = ad.AnnData(X=counts, obs=adata.obs[["batch"]].astype(str))
tl.integrate(adata.copy(), batch_key="batch", method="scvi", layer=None, max_epochs=1, verbose=False)  # warm-up
started = time.perf_counter()
tl.integrate(adata, batch_key="batch", method="scvi", layer=None, max_epochs=epochs, random_state=seed, verbose=False)
print(f"{time.perf_counter() - started:.4f}")
