# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CORES ?= 2
SNAKEMAKE := $(PY) -m snakemake
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | md5sum | cut -c1-8)
FMNIST := /usr/share/datasets/fashion-mnist
SNAKEMAKE_PROFILES ?= $(or $(XDG_CONFIG_HOME),$(HOME)/.config)/snakemake

.PHONY: install run report test test-data test-browser lint dry-run-paper install-profile gpu-wheels gpu-check-cpu clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

run: install
	$(SNAKEMAKE) --cores $(CORES)
	$(SNAKEMAKE) --report results/report.html
	@echo
	@echo "Zoo:     results/zoo/ (one netCDF file per experiment, summary.csv: one row per trial)"
	@echo "Report:  $(CURDIR)/results/report.html"

report: install
	$(SNAKEMAKE) --report results/report.html

# Real Fashion-MNIST (Debian package) for the tests; installed when we are root, else those tests skip.
test-data:
	@if [ ! -d $(FMNIST) ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then export DEBIAN_FRONTEND=noninteractive; \
		(apt-get install -y -q dataset-fashion-mnist || (apt-get update -q && apt-get install -y -q dataset-fashion-mnist)) \
		|| echo "could not install dataset-fashion-mnist: its tests will skip"; fi

# Debian's chromium for the test that opens the built report in a real browser (tests/test_report_browser.py);
# installed when we are root, else that test skips and says why.
test-browser:
	@if ! command -v chromium >/dev/null && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then export DEBIAN_FRONTEND=noninteractive; \
		(apt-get install -y -q chromium || (apt-get update -q && apt-get install -y -q chromium)) \
		|| echo "could not install chromium: the report browser test will skip"; fi

test: install test-data test-browser
	$(PY) -m pytest

lint: install
	$(VENV)/bin/snakefmt --check Snakefile workflow/rules
	$(SNAKEMAKE) --lint

dry-run-paper: install
	time $(SNAKEMAKE) -n --configfile config/paper.yaml --quiet rules

# `snakemake --profile slurm` resolves NAME as ./NAME, then the user's and the site's Snakemake config
# folders (not profiles/): link ours there once. An existing profile of that name that is not already
# this link is left alone: the target stops and says so (move it away, or use --profile profiles/NAME).
install-profile:
	@mkdir -p $(SNAKEMAKE_PROFILES)
	@for name in slurm workstation; do \
		target=$(SNAKEMAKE_PROFILES)/$$name; \
		if [ -L $$target ] && [ "$$(readlink $$target)" = $(CURDIR)/profiles/$$name ]; then \
			echo "$$target -> $(CURDIR)/profiles/$$name (already)"; \
		elif [ -e $$target ] || [ -L $$target ]; then \
			echo "install-profile: $$target exists and is not a link to $(CURDIR)/profiles/$$name; left as it is." >&2; \
			echo "  Move it away (mv $$target $$target.bak) and run make install-profile again," >&2; \
			echo "  or use --profile $(CURDIR)/profiles/$$name." >&2; \
			exit 1; \
		else \
			ln -s $(CURDIR)/profiles/$$name $$target && echo "$$target -> $(CURDIR)/profiles/$$name"; \
		fi; \
	done
	@echo "snakemake --profile slurm now reads $(SNAKEMAKE_PROFILES)/slurm"

# Wheels that bench/gpu_check.sh installs on a GPU machine without network (Python 3.12, manylinux).
GPU_WHEELS ?= bench/wheels
gpu-wheels: install
	mkdir -p $(GPU_WHEELS)
	$(PY) -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
		--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
		--platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d $(GPU_WHEELS) -r bench/gpu-wheels.txt
	$(PY) -m pip wheel --quiet --no-deps -w $(GPU_WHEELS) connection-pool==0.0.3
	@du -sh $(GPU_WHEELS)

# The GPU check's steps on this machine's CPU, small sizes: tests the script where there is no GPU.
gpu-check-cpu: install
	PYTHON=$(CURDIR)/$(PY) bench/gpu_check.sh --cpu

clean:
	rm -rf .snakemake results/zoo results/train results/analysis logs benchmarks
