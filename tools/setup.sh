#!/usr/bin/env bash
# One-stop set-up for a Debian machine (run as root, or with sudo available): installs what is
# missing and reuses what is there, so a second run takes seconds.
#   1. Debian's R packages (apt)          2. the isthmus R package (R CMD INSTALL)
#   3. isthmus's Python virtualenv with the pinned versions and the Python package, built by
#      the R function install_isthmus() (the same path users take)
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(r-base-core r-base-dev r-cran-seurat r-cran-seuratobject r-cran-reticulate
  r-bioc-singlecellexperiment r-cran-testthat r-cran-knitr r-cran-rmarkdown pandoc r-cran-withr
  r-cran-roxygen2 r-cran-pkgbuild r-cran-processx r-bioc-hdf5array python3-venv)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The R package: reinstall only when its sources changed.
mkdir -p build
stamp=build/r-package.md5
sum=$(cat DESCRIPTION NAMESPACE R/*.R src/*.c inst/python/requirements.txt | md5sum | cut -d' ' -f1)
if ! Rscript -e 'quit(status = !requireNamespace("isthmus", quietly = TRUE))' >/dev/null 2>&1 \
   || [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$sum" ]; then
  echo "setup: installing the isthmus R package"
  R CMD INSTALL --no-multiarch . >build/r-install.log 2>&1 || { cat build/r-install.log; exit 1; }
  echo "$sum" >"$stamp"
fi

# The Python environment, by the same function users call (pinned versions, editable source).
# the real interpreter behind python3 (pyenv shims and PATH differ between shells and R)
PY="${ISTHMUS_SETUP_PYTHON:-$(python3 -c 'import sys; print(sys.executable)')}"
Rscript -e "isthmus::install_isthmus(python = '$PY', package = '.', editable = TRUE)"
