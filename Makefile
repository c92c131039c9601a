# The two commands of the README:  make demo  (the main job on bundled real data)
#                                  make test  (R CMD check, pytest, testthat under Seurat v4 and v5, vignettes)
# Both run `make setup` first, which installs only what is missing.
SHELL := /bin/bash
VENV_PYTHON = $(shell Rscript -e 'cat(file.path(isthmus::isthmus_venv_dir(), "bin", "python"))' 2>/dev/null)

.PHONY: setup demo test check check-r check-seurat5 test-python test-r test-seurat5 vignettes docs bench

setup:
	@tools/setup.sh

demo: setup
	Rscript inst/scripts/demo.R

test: setup check test-python test-r test-seurat5 vignettes

# R CMD check of the built package, 0 errors and 0 warnings, under this machine's R 4.2 / Seurat 4
# and in the trixie root's R 4.5 / Seurat 5 (tools/rcheck.sh: without tests and vignettes, which
# the targets below run; no Python needed). About 30 s each, once the root exists.
check: check-r check-seurat5

check-r:
	tools/rcheck.sh

check-seurat5:
	tools/seurat5-root.sh check

test-python:
	$(VENV_PYTHON) -m pytest tests/python -q

test-r:
	cd tests && Rscript testthat.R

# The same testthat suite under R 4.5 / Seurat 5 / SpatialExperiment, in a cached Debian trixie
# root beside this machine (tools/seurat5-root.sh; the first run builds it, about 100 s)
test-seurat5:
	tools/seurat5-root.sh test

vignettes:
	@mkdir -p build/vignettes
	for f in vignettes/*.Rmd; do \
	  Rscript -e "rmarkdown::render('$$f', output_dir = 'build/vignettes', quiet = TRUE)" || exit 1; \
	done

docs:
	Rscript -e 'roxygen2::roxygenise()'

bench: setup
	Rscript bench/bench_convert.R
	Rscript bench/bench_torch_in_r.R 3
	$(VENV_PYTHON) bench/bench_single_cell.py
	Rscript bench/bench_r_overhead.R 50 3
	$(VENV_PYTHON) bench/bench_spatial_domains.py
	OMP_NUM_THREADS=1 $(VENV_PYTHON) bench/bench_spatial_deconvolution.py
	OMP_NUM_THREADS=1 $(VENV_PYTHON) bench/bench_spatial_mapping.py
	OMP_NUM_THREADS=1 $(VENV_PYTHON) bench/bench_spatial_interactions.py
	OMP_NUM_THREADS=1 $(VENV_PYTHON) bench/bench_velocity.py
	$(VENV_PYTHON) bench/bench_multiome.py --epochs 200
	Rscript bench/bench_citeseq.R 3
