#!/usr/bin/env bash
# Seurat v5 / R 4.5 beside this Debian 12 machine: a Debian trixie root (recipe in the shared
# ENVIRONMENT.md; never add trixie to this machine's own apt sources).
#   tools/seurat5-root.sh build        debootstrap + R 4.5, Seurat 5, reticulate 1.41, SCE, SpatialExperiment
#   tools/seurat5-root.sh test [FILE]  install this checkout in the root and run the testthat suite (or FILE)
# The root lives in $ISTHMUS_TRIXIE_ROOT (default /opt/isthmus-trixie). The host's Python and
# isthmus's virtualenv are bind-mounted at their own paths; every mount is released on exit.
# Groundwork for the Seurat v5 CI job (its own issue); run as root.
set -euo pipefail
ROOT=${ISTHMUS_TRIXIE_ROOT:-/opt/isthmus-trixie}
REPO=$(cd "$(dirname "$0")/.." && pwd)
VENV=$(Rscript -e 'cat(isthmus::isthmus_venv_dir())')
PYHOME=$(dirname "$(dirname "$("$VENV/bin/python" -c 'import sys; print(sys.base_prefix + "/bin/python")')")")
MIRROR=$(grep -h -oE 'https?://deb.debian.org/debian' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null | head -1 || true)
MIRROR=${MIRROR:-http://deb.debian.org/debian}
MOUNTS=(/proc /dev "$PYHOME" "$VENV" "$REPO")

release() {
  for ((k=${#MOUNTS[@]}-1; k>=0; k--)); do
    mountpoint -q "$ROOT${MOUNTS[k]}" && umount "$ROOT${MOUNTS[k]}" || true
  done
}

build() {
  command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  [ -x "$ROOT/usr/bin/apt-get" ] || debootstrap --variant=minbase trixie "$ROOT" "$MIRROR"
  trap release EXIT
  mount -t proc proc "$ROOT/proc"
  cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
  chroot "$ROOT" apt-get update -qq
  chroot "$ROOT" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    r-base-core r-base-dev r-cran-seurat r-cran-seuratobject r-cran-reticulate r-bioc-singlecellexperiment \
    r-bioc-spatialexperiment r-cran-testthat r-cran-withr libssl3t64 libffi8 zlib1g libbz2-1.0 liblzma5 \
    libsqlite3-0 libreadline8t64 libncursesw6 >/dev/null
}

run_tests() {
  trap release EXIT
  mount -t proc proc "$ROOT/proc"
  mount --bind /dev "$ROOT/dev"
  for m in "$PYHOME" "$VENV" "$REPO"; do mkdir -p "$ROOT$m"; mount --bind "$m" "$ROOT$m"; done
  # a clean copy of the tracked files: build outputs of the host's R 4.2 must not leak in
  rm -rf "$ROOT/tmp/isthmus" && mkdir -p "$ROOT/tmp/isthmus"
  (cd "$REPO" && git ls-files -z | xargs -0 cp --parents -t "$ROOT/tmp/isthmus")
  chroot "$ROOT" bash -c "cd /tmp/isthmus && R CMD INSTALL --preclean . >/tmp/isthmus-install.log 2>&1 || { tail -30 /tmp/isthmus-install.log; exit 1; }"
  local what='test_dir("testthat", package = "isthmus", load_package = "installed", stop_on_failure = TRUE)'
  [ $# -gt 0 ] && what="test_file(\"testthat/$1\", package = \"isthmus\", load_package = \"installed\", stop_on_failure = TRUE)"
  chroot "$ROOT" env ISTHMUS_PYTHON="$VENV/bin/python" LD_LIBRARY_PATH= HOME=/root \
    bash -c "cd /tmp/isthmus/tests && Rscript -e 'library(testthat); library(isthmus); cat(R.version.string, \"SeuratObject\", format(packageVersion(\"SeuratObject\")), \"\n\"); $what'"
}

case "${1:-}" in
  build) build ;;
  test) shift; run_tests "$@" ;;
  *) echo "usage: $0 build | test [FILE]" >&2; exit 2 ;;
esac
