# astrokit: the two commands of the README.
#   make run    fresh machine -> .venv, install, fetch the real data, run the pipeline, summary, dashboard
#   make test   fresh machine -> the same set-up, then pytest + nbval + browser tests
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
ASTROKIT := $(VENV)/bin/astrokit
STORE ?= astrokit-data
# DATA: input folder of frames for the pipeline, processed and nothing else (ALERTS: alert files for it);
# empty = the sample run: the real sample frames and the 51 sample ZTF alerts, passed explicitly.
DATA ?=
ALERTS ?=
PORT ?= 8866
# USE_UV=0 installs with plain pip instead of uv (uv itself comes from PyPI into the venv).
USE_UV ?= 1
PYTEST_ARGS ?=
UV := $(VENV)/bin/uv
# The locks (requirements/, `make lock`): every dependency pinned with its hashes, for Linux x86_64 and CPython
# 3.11. LOCK is what `make setup` installs (astrokit[all]); bench.lock adds the benchmarks' reference tools;
# build.lock pins the build backend (hatchling, hatch-vcs) for the project's own editable install and wheel.
LOCK ?= requirements/all.lock
BENCH_LOCK := requirements/bench.lock
BUILD_LOCK := requirements/build.lock
# uv itself, from the pin and hashes of the lock (pip verifies them)
UV_BOOTSTRAP = $(PY) -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps \
  -r <(awk '/^[^ \#]/ { p = ($$0 ~ /^uv==/) } p' $(LOCK))
# the project itself on top of a lock: editable, without dependencies (they all come from the lock)
INSTALL_SELF = $(if $(filter 1,$(USE_UV)),$(UV) pip install --python $(PY) --quiet --build-constraint $(BUILD_LOCK),\
  $(PY) -m pip install --quiet --disable-pip-version-check) --no-deps -e .

.PHONY: help setup data pipeline run test screenshots chromium astrometry dashboard lab bench bench-setup clean lock dist

help:
	@echo "make run       set up, fetch the real data, run the pipeline, serve the curation dashboard"
	@echo "make pipeline  the same without the dashboard (what cron calls)"
	@echo "make test      set up, then the whole test suite (pytest, nbval, browser tests)"
	@echo "make screenshots  the browser tests, keeping their screenshots in docs/screenshots (the README's)"
	@echo "make lab       JupyterLab on http://127.0.0.1:8888"
	@echo "make bench     side-by-side benchmarks against source-extractor, properimage, sfft, ImageFileCollection"
	@echo "make lock      recompile the locks of requirements/ from pyproject.toml (UPGRADE=1: newest versions)"
	@echo "make dist      build the sdist and the wheel into dist/"

$(PY):
	$(PYTHON) -m venv $(VENV)

# Every dependency from the lock (exact versions, hashes checked), then astrokit itself with --no-deps.
$(VENV)/.installed: pyproject.toml $(LOCK) $(BUILD_LOCK) | $(PY)
	@if [ "$(USE_UV)" = "1" ]; then \
	  $(UV_BOOTSTRAP) && \
	  $(UV) pip install --python $(PY) --compile-bytecode --quiet --require-hashes -r $(LOCK); \
	else \
	  $(PY) -m pip install --quiet --disable-pip-version-check --require-hashes -r $(LOCK); \
	fi
	@$(INSTALL_SELF)
	@touch $@

setup: $(VENV)/.installed

data: setup
	$(ASTROKIT) data fetch

pipeline: data astrometry
	$(ASTROKIT) run --store $(STORE) $(if $(DATA),--data $(DATA) $(if $(ALERTS),--alerts $(ALERTS)),\
	  --data $$($(ASTROKIT) data path frames) --alerts $$($(ASTROKIT) data path ztf_alerts))
	$(ASTROKIT) summary --store $(STORE)

run: pipeline dashboard

dashboard: setup
	$(ASTROKIT) dashboard curation --store $(STORE) --port $(PORT)

lab: setup
	ASTROKIT_STORE=$(abspath $(STORE)) $(VENV)/bin/jupyter lab --ip 127.0.0.1 --port 8888 --no-browser --allow-root

# Debian's chromium for the browser tests: installed when missing and we may (root); otherwise the
# browser tests skip with a printed reason.
chromium:
	@if [ -x /usr/bin/chromium ]; then echo "chromium: $$(/usr/bin/chromium --version 2>/dev/null || echo present)"; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
	  echo "installing Debian chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "chromium missing and cannot be installed here (not root): browser tests will be skipped"; fi

# Debian's astrometry.net (solve-field) and its Tycho-2 index files (~290 MB, fields wider than ~20') for the
# astrometry stage: installed when missing and we may (root); otherwise frames without a WCS are aligned to
# frames that have one, and the plate-solving tests skip with a printed reason.
ASTROMETRY_PACKAGES := astrometry.net astrometry-data-tycho2-07-littleendian astrometry-data-tycho2-08-littleendian \
  astrometry-data-tycho2-09-littleendian astrometry-data-tycho2-10-19-littleendian
astrometry:
	@if command -v solve-field >/dev/null && ls /usr/share/astrometry/index-tycho2-07* >/dev/null 2>&1; then \
	  echo "astrometry.net: $$(solve-field --version 2>/dev/null || echo present), Tycho-2 index files present"; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
	  echo "installing Debian astrometry.net and the Tycho-2 index files for the astrometry stage"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(ASTROMETRY_PACKAGES) >/dev/null; \
	else echo "astrometry.net missing and cannot be installed here (not root or no apt-get): frames without a WCS" \
	  "will only be aligned to frames with one, and the plate-solving tests will be skipped"; fi

test: data chromium astrometry
	$(PY) -m pytest --durations=30 --nbval --nbval-sanitize-with notebooks/sanitize.cfg tests notebooks $(PYTEST_ARGS)

# Every dashboard's screenshot in the README is what a browser test saw and checked (tests/browser/screens.py).
screenshots: data chromium
	ASTROKIT_SCREENSHOTS=$(abspath docs/screenshots) $(PY) -m pytest tests/browser -p no:cacheprovider -q $(PYTEST_ARGS)

# The reference tools of the benchmarks: Debian's source-extractor, and properimage + sfft from PyPI (bench.lock).
bench-setup: setup
	@if ! command -v source-extractor >/dev/null; then \
	  if [ "$$(id -u)" = "0" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq source-extractor >/dev/null; \
	  else echo "source-extractor missing (apt-get install source-extractor): its column will be skipped"; fi; fi
	@echo 'setuptools<70' > $(VENV)/build-constraints.txt
	@if [ -x $(UV) ]; then \
	  $(UV) pip install --python $(PY) --compile-bytecode --quiet \
	    --build-constraint $(VENV)/build-constraints.txt -r $(BENCH_LOCK); \
	else PIP_CONSTRAINT=$(abspath $(VENV))/build-constraints.txt $(PY) -m pip install --quiet -r $(BENCH_LOCK); fi

bench: bench-setup data
	$(PY) benchmarks/bench_photometry.py
	$(PY) benchmarks/bench_ingest.py
	$(PY) benchmarks/bench_zogy.py
	$(PY) benchmarks/bench_differencing_compare.py

# Recompile the locks from pyproject.toml's ranges, keeping every pin that still satisfies them (UPGRADE=1: the
# newest versions). tests/test_packaging.py fails when a lock no longer satisfies pyproject.toml.
COMPILE = $(UV) pip compile --python $(PY) --generate-hashes --custom-compile-command "make lock" --quiet \
  $(if $(UPGRADE),--upgrade)
lock: | $(PY)
	@[ -x $(UV) ] || $(UV_BOOTSTRAP)
	$(COMPILE) pyproject.toml --extra all -o $(LOCK)
	$(COMPILE) pyproject.toml --extra all --extra bench -c $(LOCK) --build-constraint <(echo 'setuptools<70') \
	  -o $(BENCH_LOCK)
	$(PY) -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['build-system']['requires'], sep='\n')" \
	  | $(COMPILE) - -o $(BUILD_LOCK)

# The sdist and the wheel (which carries pipelines/ and dashboards/ as package data) into dist/.
dist: setup
	$(UV) build --build-constraint $(BUILD_LOCK) --out-dir dist

clean:
	rm -rf $(STORE) .pytest_cache
