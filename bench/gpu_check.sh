#!/usr/bin/env bash
# The GPU check (issue 16): scVI at 100k cells and the graph model at ~36k spots, on the GPU and
# on the CPU, with the CPU/GPU ratios. Needs only isthmus's Python environment and a CUDA build of
# torch (pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cu126 in that
# environment); under 8 minutes on one H200-class GPU. `bench/gpu_check.sh --small` checks the
# script on any machine (CPU only, about a minute).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${ISTHMUS_PYTHON:-$(Rscript -e 'cat(isthmus::isthmus_venv_dir())' 2>/dev/null)/bin/python}
[ -x "$PYTHON" ] || PYTHON=python3
PYTHONPATH="$PWD/python${PYTHONPATH:+:$PYTHONPATH}" exec "$PYTHON" bench/gpu_check.py "$@"
