#!/usr/bin/env bash
# The Seurat v5 test job: R 4.5, Seurat 5, reticulate 1.41, SingleCellExperiment and
# SpatialExperiment in a Debian trixie root beside this Debian 12 machine (recipe in the shared
# ENVIRONMENT.md; never add trixie to the machine's own apt sources: a partial upgrade replaces libc).
#   tools/seurat5-root.sh build         make the root, or reuse it when its package list is current
#   tools/seurat5-root.sh test [FILE]   build if needed, install this checkout in the root, run the
#                                       testthat suite (or one FILE) there; `make test` runs this
#   tools/seurat5-root.sh check         build if needed, R CMD check this checkout's package in the
#                                       root (tools/rcheck.sh: no tests or vignettes, no Python needed)
#   tools/seurat5-root.sh R 'expr'      Rscript -e in the root, with this checkout installed (debugging)
# The root lives in $ISTHMUS_TRIXIE_ROOT (default /opt/isthmus-trixie) and is kept between runs
# (the cache: about 100 s to build, 2 GB). The host's Python and isthmus's virtualenv are
# bind-mounted at their own paths, so reticulate in the root uses the environment `make setup`
# built; every mount is released on exit, whether the tests pass or fail. Needs root (chroot).
set -euo pipefail
ROOT=${ISTHMUS_TRIXIE_ROOT:-/opt/isthmus-trixie}
REPO=$(cd "$(dirname "$0")/.." && pwd)
PACKAGES=(r-base-core r-base-dev r-cran-seurat r-cran-seuratobject r-cran-reticulate r-bioc-singlecellexperiment
  r-bioc-spatialexperiment r-bioc-hdf5array r-cran-processx r-cran-testthat r-cran-withr libssl3t64 libffi8 zlib1g libbz2-1.0 liblzma5
  libsqlite3-0 libreadline8t64 libncursesw6)
STAMP="$ROOT/etc/isthmus-root-packages"
MOUNTS=()

if [ "$(id -u)" != 0 ]; then
  echo "seurat5-root.sh: the Seurat v5 job needs root (debootstrap, chroot, bind mounts)." >&2
  exit 1
fi

release() {
  local k
  for ((k=${#MOUNTS[@]}-1; k>=0; k--)); do
    mountpoint -q "$ROOT${MOUNTS[k]}" && umount "$ROOT${MOUNTS[k]}" || umount -l "$ROOT${MOUNTS[k]}" 2>/dev/null || true
  done
  MOUNTS=()
}
CHILD=
stop_child() {  # on INT/TERM: stop what runs in the root (its whole process group), then release
  [ -n "$CHILD" ] && kill -TERM -- "-$CHILD" 2>/dev/null && wait "$CHILD" 2>/dev/null
  exit 130
}
trap release EXIT
trap stop_child INT TERM

mount_in() {  # mount_in SOURCE: bind SOURCE at the same path inside the root ("proc": procfs)
  if [ "$1" = proc ]; then
    mountpoint -q "$ROOT/proc" || mount -t proc proc "$ROOT/proc"
    MOUNTS+=(/proc)
  else
    mkdir -p "$ROOT$1"
    mountpoint -q "$ROOT$1" || mount --bind "$1" "$ROOT$1"
    MOUNTS+=("$1")
  fi
}

build() {
  if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "${PACKAGES[*]}" ]; then
    echo "seurat5-root.sh: reusing the trixie root in $ROOT"
    return
  fi
  local mirror
  mirror=$(grep -h -oE 'https?://deb.debian.org/debian' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null | head -1 || true)
  mirror=${mirror:-http://deb.debian.org/debian}
  echo "seurat5-root.sh: building the trixie root in $ROOT (about 100 s)"
  command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  [ -x "$ROOT/usr/bin/apt-get" ] || debootstrap --variant=minbase trixie "$ROOT" "$mirror" >/dev/null
  mount_in proc
  cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
  chroot "$ROOT" apt-get update -qq
  chroot "$ROOT" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" \
    >"$ROOT/var/log/isthmus-apt.log" 2>&1 || { tail -30 "$ROOT/var/log/isthmus-apt.log"; exit 1; }
  echo "${PACKAGES[*]}" > "$STAMP"
  release
}

# Mount what the tests need and install a clean copy of the tracked files (build outputs of
# the host's R 4.2 must not leak into R 4.5's library).
enter() {
  VENV=$(Rscript -e 'cat(isthmus::isthmus_venv_dir())')
  PYHOME=$(dirname "$(dirname "$("$VENV/bin/python" -c 'import sys; print(sys.base_prefix + "/bin/python")')")")
  mount_in proc
  mount_in /dev
  mount_in /sys  # joblib counts physical cores through lscpu, which reads /sys
  mount_in "$PYHOME"
  mount_in "$VENV"
  mount_in "$REPO"  # the editable isthmus install in the venv points here
  rm -rf "$ROOT/tmp/isthmus" && mkdir -p "$ROOT/tmp/isthmus"
  (cd "$REPO" && git ls-files -z | xargs -0 cp --parents -t "$ROOT/tmp/isthmus")
  chroot "$ROOT" bash -c "cd /tmp/isthmus && R CMD INSTALL --preclean . >/tmp/isthmus-install.log 2>&1 || { tail -30 /tmp/isthmus-install.log; exit 1; }"
}

in_root() {  # in_root COMMAND: run in the root with the project's Python
  # In the background of its own process group, so that a signal reaches the script at once
  # (bash defers traps while a foreground child runs) and stop_child can end all of it.
  setsid chroot "$ROOT" env ${VENV:+ISTHMUS_PYTHON="$VENV/bin/python"} LD_LIBRARY_PATH= HOME=/root bash -c "$1" &
  CHILD=$!
  local status=0
  wait "$CHILD" || status=$?
  CHILD=
  return "$status"
}

run_tests() {
  local start=$SECONDS
  build
  enter
  local what='test_dir("testthat", package = "isthmus", load_package = "installed", reporter = ProgressReporter$new(show_praise = FALSE), stop_on_failure = TRUE)'
  [ $# -gt 0 ] && what="test_file(\"testthat/$1\", package = \"isthmus\", load_package = \"installed\", reporter = ProgressReporter\$new(show_praise = FALSE), stop_on_failure = TRUE)"
  in_root "cd /tmp/isthmus/tests && Rscript -e 'library(testthat); library(isthmus); cat(R.version.string, \"| Seurat\", format(packageVersion(\"Seurat\")), \"| SeuratObject\", format(packageVersion(\"SeuratObject\")), \"| reticulate\", format(packageVersion(\"reticulate\")), \"\n\"); $what'"
  if [ $# -eq 0 ]; then
    # the Python side of the bridge against this R: .rds files both ways and the anndata2ri peer check
    in_root "cd /tmp/isthmus && $VENV/bin/python -m pytest -q -p no:cacheprovider tests/python/test_r_bridge.py"
  fi
  echo "seurat5-root.sh: the Seurat v5 job took $((SECONDS - start)) s"
}

# R CMD check under R 4.5 / Seurat 5: a copy of the tracked files, checked in the root as `make
# check` does on this machine; needs neither Python nor an installed isthmus.
run_check() {
  local start=$SECONDS
  build
  mount_in proc
  mount_in /dev
  rm -rf "$ROOT/tmp/isthmus-rcheck" && mkdir -p "$ROOT/tmp/isthmus-rcheck/isthmus"
  (cd "$REPO" && git ls-files -z | xargs -0 cp --parents -t "$ROOT/tmp/isthmus-rcheck/isthmus")
  in_root "cd /tmp/isthmus-rcheck && isthmus/tools/rcheck.sh isthmus out"
  echo "seurat5-root.sh: the Seurat v5 check took $((SECONDS - start)) s (log: $ROOT/tmp/isthmus-rcheck/out)"
}

case "${1:-}" in
  build) build ;;
  test) shift; run_tests "$@" ;;
  check) run_check ;;
  R) build; enter; in_root "cd /tmp/isthmus && Rscript -e $(printf '%q' "$2")" ;;
  *) echo "usage: $0 build | test [FILE] | check | R 'expression'" >&2; exit 2 ;;
esac
