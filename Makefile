# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CORES ?= 2
SNAKEMAKE := $(PY) -m snakemake
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | md5sum | cut -c1-8)
FMNIST := /usr/share/datasets/fashion-mnist
SNAKEMAKE_PROFILES ?= $(or $(XDG_CONFIG_HOME),$(HOME)/.config)/snakemake

.PHONY: install run report test test-data test-browser lint dry-run-paper install-profile clean

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
# folders (not profiles/): link ours there once.
install-profile:
	mkdir -p $(SNAKEMAKE_PROFILES)
	ln -sfn $(CURDIR)/profiles/slurm $(SNAKEMAKE_PROFILES)/slurm
	ln -sfn $(CURDIR)/profiles/workstation $(SNAKEMAKE_PROFILES)/workstation
	@echo "snakemake --profile slurm now reads $(SNAKEMAKE_PROFILES)/slurm -> $(CURDIR)/profiles/slurm"

clean:
	rm -rf .snakemake results/zoo results/train results/analysis logs benchmarks
