"""Worker for bench/bench_convert.R: the anndata2ri (SingleCellExperiment route) peer.

Runs in its own fresh Python process per size. It builds the same dgCMatrix and cell metadata as
the R workers (by sourcing bench/bench_data.R in the embedded R), wraps them in a
SingleCellExperiment (counts assay), and times anndata2ri's documented rpy2py conversion:

    with localconverter(anndata2ri.converter):
        adata = ro.conversion.get_conversion().rpy2py(sce)

It prints one line starting with BENCH_RESULT (tab-separated key=value pairs) for the driver.

Usage: python bench/anndata2ri_convert.py --cells N --data-script bench/bench_data.R
       python bench/anndata2ri_convert.py --versions
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time


def mem_mib() -> dict[str, float]:
    out = {}
    with open('/proc/self/status') as f:
        for line in f:
            key, _, val = line.partition(':')
            if key in ('VmRSS', 'VmHWM'):
                out[key] = int(val.split()[0]) / 1024
    return {'rss': out['VmRSS'], 'hwm': out['VmHWM']}


def reset_peak() -> None:
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')


def versions() -> None:
    import importlib.metadata as md
    import platform

    print(f'python\t{platform.python_version()}')
    for pkg in ('numpy', 'scipy', 'pandas', 'anndata', 'h5py', 'rpy2', 'anndata2ri', 'isthmus'):
        try:
            v = md.version(pkg)
        except md.PackageNotFoundError:
            v = 'not installed'
        print(f'{pkg}\t{v}')


def progress(msg: str) -> None:
    print(time.strftime('[%H:%M:%S] ') + msg, file=sys.stderr, flush=True)


def emit(**fields: object) -> None:
    parts = [f'{k}={str(v).replace(chr(9), " ").replace(chr(10), " ")}' for k, v in fields.items()]
    print('BENCH_RESULT\t' + '\t'.join(parts), flush=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument('--cells', type=int)
    ap.add_argument('--data-script', default=os.path.join(os.path.dirname(os.path.abspath(__file__)), 'bench_data.R'))
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--versions', action='store_true')
    args = ap.parse_args()
    if args.versions:
        versions()
        return 0

    import rpy2.robjects as ro
    from rpy2.robjects.conversion import localconverter

    import anndata2ri

    r = ro.r
    r('suppressPackageStartupMessages({library(Matrix); library(SingleCellExperiment)})')
    r['source'](args.data_script)
    make_sce = r("""
        function(n_cells, seed) {
          m <- bench_make_counts(n_cells, seed = seed)
          meta <- bench_make_meta(m)
          sce <- SingleCellExperiment(assays = list(counts = m), colData = S4Vectors::DataFrame(meta))
          list(sce = sce, nnz = length(m@x), genes = nrow(m), mib = bench_matrix_mib(m))
        }
    """)

    def convert(sce):  # the documented anndata2ri 2.x API
        with localconverter(anndata2ri.converter):
            return ro.conversion.get_conversion().rpy2py(sce)

    # Warm-up on a tiny object: loads S4Vectors/SummarizedExperiment bindings, pandas2ri etc.,
    # so the measured call is the conversion alone (same as the R workers).
    progress(f'worker anndata2ri, {args.cells} cells: warm-up on 50 cells')
    t0 = time.perf_counter()
    tiny = make_sce(50, args.seed)
    convert(tiny[0])
    warm_s = time.perf_counter() - t0
    del tiny

    progress('generating data')
    t0 = time.perf_counter()
    res = make_sce(args.cells, args.seed)  # outside any converter: stays an R object
    sce = res[0]
    nnz, genes, mat_mib = int(res[1][0]), int(res[2][0]), float(res[3][0])
    del res
    gen_s = time.perf_counter() - t0

    progress('converting')
    gc.collect()
    r('invisible(gc(full = TRUE))')
    reset_peak()
    before = mem_mib()
    t0 = time.perf_counter()
    adata = convert(sce)
    conv_s = time.perf_counter() - t0
    after = mem_mib()

    progress(f'converted in {conv_s:.3f} s; checking')
    x = adata.X
    shape = tuple(adata.shape)
    ok = shape == (args.cells, genes) and getattr(x, 'nnz', -1) == nnz
    note = f'X {type(x).__module__}.{type(x).__name__} {x.dtype} shape {shape[0]}x{shape[1]}'
    if not ok:
        note += f' MISMATCH (nnz {getattr(x, "nnz", "?")} vs {nnz})'

    emit(
        status='ok',
        cells=args.cells,
        genes=genes,
        nnz=nnz,
        mat_mib=f'{mat_mib:.3f}',
        gen_s=f'{gen_s:.3f}',
        warm_s=f'{warm_s:.3f}',
        conv_s=f'{conv_s:.4f}',
        rss_before=f'{before["rss"]:.1f}',
        hwm=f'{after["hwm"]:.1f}',
        rss_after=f'{after["rss"]:.1f}',
        check='ok' if ok else 'MISMATCH',
        note=note,
    )
    return 0


if __name__ == '__main__':
    sys.exit(main())
