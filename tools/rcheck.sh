#!/usr/bin/env bash
# R CMD check of the built R package, as `make check` (this machine's R) and
# `tools/seurat5-root.sh check` (R 4.5 / Seurat 5 in the trixie root) run it.
#   tools/rcheck.sh [PACKAGE_DIR [OUT_DIR]]   (defaults: this checkout, PACKAGE_DIR/build/check)
# The testthat suite and the vignettes run on their own in `make test` (test-r, test-seurat5,
# vignettes), with Python; so here the tarball is built without vignettes and checked without
# tests, vignettes or the PDF manual: the package's structure, code, NAMESPACE, dependencies and
# Rd files, in well under a minute. Suggests that an R lacks (SpatialExperiment on Debian 12) are
# allowed. R CMD check only fails on ERRORs; this script also fails on WARNINGs.
set -euo pipefail
PKG=$(cd "${1:-$(dirname "$0")/..}" && pwd)
OUT=${2:-$PKG/build/check}
start=$SECONDS
rm -rf "$OUT" && mkdir -p "$OUT" && cd "$OUT"
R CMD build --no-build-vignettes "$PKG" >build.log 2>&1 || { cat build.log; exit 1; }
tarball=$(ls isthmus_*.tar.gz)
status=0
_R_CHECK_FORCE_SUGGESTS_=false R CMD check --no-manual --no-tests --ignore-vignettes "$tarball" >check.log 2>&1 || status=$?
# the checks that said more than OK, in full
awk '/^\* /{ if (flag) printf "%s", sec; sec = ""; flag = 0 }
     { sec = sec $0 "\n" }
     /(\.\.\.|^) *(NOTE|WARNING|ERROR)$/{ flag = 1 }
     END { if (flag) printf "%s", sec }' isthmus.Rcheck/00check.log 2>/dev/null || true
result=$(grep '^Status:' isthmus.Rcheck/00check.log 2>/dev/null) || { tail -20 check.log; result="Status: no result"; }
echo "rcheck.sh: $(R --version | head -1 | cut -d' ' -f1-3): $result ($((SECONDS - start)) s; log: $OUT/isthmus.Rcheck/00check.log)"
[ "$status" = 0 ] && [[ $result =~ ^Status:\ (OK|[0-9]+\ NOTEs?)$ ]]
