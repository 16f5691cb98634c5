# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: help run solve test browser postgres postgres-stop lint fmt clean bench

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)  ## start the REST service on 127.0.0.1:8000 with the data/ examples loaded
	$(PY) -m api

solve: $(STAMP)  ## solve the bundled example once and print the plan summary
	$(VENV)/bin/allocator solve data/hyperscaler.json

test: $(STAMP)  ## run the whole test suite
	$(PY) -m pytest -q

browser:  ## install Debian's Chromium for the browser tests (needs root; skipped if present)
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

PG_PORT ?= 54329
PG_DIR  ?= $(or $(TMPDIR),/tmp)/allocator-pg-$(PG_PORT)

postgres:  ## start a throwaway PostgreSQL on 127.0.0.1:54329 for the tests; prints its variable
	@PG_PORT=$(PG_PORT) PG_DIR=$(PG_DIR) sh tests/postgres.sh

postgres-stop:  ## stop the cluster make postgres started (its data stays in PG_DIR)
	@PG_PORT=$(PG_PORT) PG_DIR=$(PG_DIR) sh tests/postgres.sh stop

bench: $(STAMP)  ## benchmark engine vs solvers alone vs PuLP/linopy (BENCH_SIZES=10k,40k,...); not part of test
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) -m benchmarks

lint: $(STAMP)  ## ruff (lint + format check) and mypy
	$(VENV)/bin/ruff check allocator api tests
	$(VENV)/bin/ruff format --check allocator api tests
	$(VENV)/bin/mypy allocator api

fmt: $(STAMP)  ## format the code
	$(VENV)/bin/ruff format allocator api tests
	$(VENV)/bin/ruff check --fix allocator api tests

clean:  ## remove the virtual environment and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
