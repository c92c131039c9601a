"""The cost curve of issue 16: scVI (`IntegrateCells`/`RunSCVI` from R, `tl.integrate` from Python)
at growing numbers of cells, on every gene and on 2000 variable genes, with the counts in memory
and on disk (a backed .h5ad). Each route runs in a process of its own, so that its peak memory
(the whole process's high-water mark, VmHWM: R and its embedded Python together) is its own.

Per route and size it prints: the seconds of the call (`call`: what the user waits for, from the
object in memory to the latent space in it: hand-over, gene selection, training, inference),
the seconds of training alone (`train`: scvi-tools' `train()`), seconds per epoch, and peak GiB
(also the peak once the file is read, before the call; and for Python how much of the process was
mapped files at the end: libraries, and from disk the memory-mapped copy of the counts, pages the
kernel can drop and read again).
Ratios R / Python and disk / memory are computed within one run of this script. The route
"r-worker" is the R call with `options(isthmus.backend = "worker")`: the task crosses to a worker
process through a temporary .h5ad; its training seconds are the worker's (not timed here) and
`worker peak GiB` is the worker's own high-water mark beside R's.

The data: the bundled PBMC cells (3 chemistries, 1767 genes) drawn with replacement, each count
redrawn from a Poisson around it (so no two cells are the same); "all genes" are the 1767 genes
copied side by side `--copies` times, each copy redrawn (10,602 genes at the default 6: a
transcriptome-sized input, whose cost grows with genes as a real one does).

    python bench/bench_cost_curve.py [--cells 10000 100000] [--copies 6] [--epochs 1] [--routes ...]
                                     [--genes variable all]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd
from _tables import markdown, peak_gib

HERE = os.path.dirname(os.path.abspath(__file__))
ROUTES = ("python-memory", "python-disk", "r-memory", "r-worker")


def _chunk(n_cells: int, copies: int, rng) -> "ad.AnnData":
    import anndata as ad
    from scipy import sparse

    from gpu_check import _redrawn, cells

    base = cells(n_cells, rng)
    blocks = [base.X] + [_redrawn(base.X, rng) for _ in range(copies - 1)]
    genes = [f"{g}-{k}" if k else g for k in range(copies) for g in base.var_names]
    counts = sparse.hstack(blocks).tocsr()
    counts.sum_duplicates()  # canonical, as anndata writes its own (R then reads it without a copy)
    return ad.AnnData(counts, obs=base.obs[["batch", "cell_type"]].astype(str).set_index(base.obs_names),
                      var=pd.DataFrame(index=genes))


# Cells are made and written this many at a time, then joined on disk (anndata's concat_on_disk):
# a million cells x 10,602 genes is about 10 GB of counts, and stacking it in memory needs twice that.
CHUNK_CELLS = 100_000


def make_data(n_cells: int, copies: int, path: str, seed: int = 0) -> None:
    from anndata.experimental import concat_on_disk

    rng = np.random.default_rng(seed)
    if n_cells <= CHUNK_CELLS:
        _chunk(n_cells, copies, rng).write_h5ad(path)
        return
    parts = []
    for start in range(0, n_cells, CHUNK_CELLS):
        part = _chunk(min(CHUNK_CELLS, n_cells - start), copies, rng)
        part.obs_names = [f"cell{start + i}" for i in range(part.n_obs)]
        parts.append(f"{path}.part{start}.h5ad")
        part.write_h5ad(parts[-1])
    concat_on_disk(parts, path)
    for part in parts:
        os.remove(part)


TIMER = """
import time
from isthmus.tl import _common
_train, _seconds = _common.train, []
def _timed(*args, **kwargs):
    started = time.perf_counter()
    _train(*args, **kwargs)
    _seconds.append(time.perf_counter() - started)
_common.train = _timed
"""


def run_python(path: str, disk: bool, genes: str, epochs: int) -> dict:
    import anndata as ad

    import isthmus.tl as tl

    scope: dict = {}
    exec(TIMER, scope)  # the same timer the R route installs in its Python
    adata = ad.read_h5ad(path, backed="r") if disk else ad.read_h5ad(path)
    read_peak = peak_gib()
    started = time.perf_counter()
    # torch and scvi-tools are first imported inside the call, as in the R route (about 1 s for torch)
    tl.integrate(adata, batch_key="batch", layer=None, genes=genes, max_epochs=epochs, verbose=False)
    import torch

    return {"call": time.perf_counter() - started, "train": sum(scope["_seconds"]), "peak_gib": peak_gib(),
            "read_peak_gib": read_peak, "mapped_gib": peak_gib("RssFile"), "threads": torch.get_num_threads()}


R_SCRIPT = r"""
args <- commandArgs(TRUE)
suppressPackageStartupMessages({library(isthmus); library(Seurat)})
hwm <- function() {  # this process's high-water mark so far, GiB
  status <- readLines("/proc/self/status")
  as.numeric(strsplit(trimws(sub("VmHWM:", "", grep("^VmHWM", status, value = TRUE))), " +")[[1]][1]) / 1024^2
}
obj <- suppressWarnings(read_h5ad(args[1]))
read_peak <- hwm()
obj$batch <- factor(obj$batch)
reticulate::py_run_string(args[4])  # after read_h5ad: R's Python is isthmus's
options(isthmus.backend = args[5])
features <- if (args[2] == "all") "all" else NULL
started <- Sys.time()
obj <- RunSCVI(obj, batch = "batch", features = features, max_epochs = as.integer(args[3]), verbose = FALSE)
call <- as.numeric(difftime(Sys.time(), started, units = "secs"))
# a worker trains in a process of its own, out of this timer's reach
train <- if (args[5] == "worker") NA else sum(unlist(reticulate::py_eval("_seconds")))
peak <- hwm()
# the worker's own high-water mark (the largest child waited for), beside R's
child <- reticulate::py_eval("__import__('resource').getrusage(__import__('resource').RUSAGE_CHILDREN).ru_maxrss") / 1024^2
threads <- reticulate::import("torch")$get_num_threads()
cat(sprintf('{"call": %f, "train": %s, "peak_gib": %f, "read_peak_gib": %f, "worker_peak_gib": %f, "threads": %d}\n',
            call, if (is.na(train)) "null" else sprintf("%f", train), peak, read_peak, child, threads))
"""


def run_route(route: str, path: str, genes: str, epochs: int) -> dict:
    if route in ("r-memory", "r-worker"):
        with tempfile.NamedTemporaryFile("w", suffix=".R", delete=False) as script:
            script.write(R_SCRIPT)
        backend = "worker" if route == "r-worker" else "inprocess"
        command = ["Rscript", script.name, path, genes, str(epochs), TIMER, backend]
    else:
        command = [sys.executable, __file__, "--one", route, path, genes, str(epochs)]
    done = subprocess.run(command, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{route} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cells", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--copies", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--routes", nargs="+", default=list(ROUTES))
    parser.add_argument("--genes", nargs="+", default=["variable", "all"], choices=["variable", "all"])
    parser.add_argument("--one", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:  # one route in this process (started by main)
        route, path, genes, epochs = args.one
        print(json.dumps(run_python(path, route == "python-disk", genes, int(epochs))), flush=True)
        return
    rows = []
    folder = tempfile.mkdtemp(prefix="isthmus-cost-")
    for n_cells in args.cells:
        path = os.path.join(folder, f"cells{n_cells}.h5ad")
        started = time.perf_counter()
        make_data(n_cells, args.copies, path)
        print(f"# {n_cells} cells written in {time.perf_counter() - started:.0f} s ({os.path.getsize(path) / 1e9:.2f} GB)",
              flush=True)
        for genes in args.genes:
            for route in args.routes:
                out = run_route(route, path, genes, args.epochs)
                rows.append({"cells": n_cells, "genes": "2000 variable" if genes == "variable" else "all",
                             "route": route, "call s": out["call"], "train s": out["train"],
                             "s/epoch": np.nan if out["train"] is None else out["train"] / args.epochs,
                             "peak GiB": out["peak_gib"], "peak GiB after reading": out["read_peak_gib"],
                             "mapped GiB at end": out.get("mapped_gib", np.nan),
                             "worker peak GiB": out.get("worker_peak_gib", np.nan),
                             "torch threads": out["threads"]})
                print(rows[-1], flush=True)
        os.remove(path)
    table = pd.DataFrame(rows)
    print(markdown(table, digits=2))
    ratios = []
    for (n_cells, genes), part in table.groupby(["cells", "genes"], sort=False):
        by = part.set_index("route")
        row = {"cells": n_cells, "genes": genes}
        if {"r-memory", "python-memory"} <= set(by.index):
            row["R / Python, call"] = by.loc["r-memory", "call s"] / by.loc["python-memory", "call s"]
        if {"r-worker", "r-memory"} <= set(by.index):
            row["worker / in-process, call"] = by.loc["r-worker", "call s"] / by.loc["r-memory", "call s"]
        if {"python-disk", "python-memory"} <= set(by.index):
            row["disk / memory, s/epoch"] = by.loc["python-disk", "s/epoch"] / by.loc["python-memory", "s/epoch"]
            row["disk / memory, peak"] = by.loc["python-disk", "peak GiB"] / by.loc["python-memory", "peak GiB"]
        ratios.append(row)
    print()
    print(markdown(pd.DataFrame(ratios), digits=2))


if __name__ == "__main__":
    main()
