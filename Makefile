# The two set-up commands: `make run` (the local stack) and `make test` (every test). Both do their own set-up.
SHELL := /bin/bash
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' && { echo $$p; break; }; done)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
EDGE_CONFIG ?=
PYTEST_ARGS ?=

.PHONY: run test bench lint typecheck setup services clean

$(STAMP): requirements.txt requirements-dev.txt edge/requirements.txt
	@test -n "$(PYTHON)" || { echo "Python 3.11 or newer is needed"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	@touch $(STAMP)

setup: $(STAMP)

services:
	@bash scripts/ensure-services.sh

run: $(STAMP)
	$(PY) -m chalicelib.local $(if $(EDGE_CONFIG),--edge-config $(EDGE_CONFIG),)

test: $(STAMP) services
	$(PY) -m ruff check .
	$(PY) -m mypy chalicelib edge app.py bench
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	@for b in ingest cost api edge automation; do \
	  if [ -f bench/$$b.py ]; then echo "== bench/$$b.py"; $(PY) bench/$$b.py 2>&1 | grep -v '^{"level"' | grep -v '^127.0.0.1' | grep -v '^Serving on' || exit 1; fi; \
	done

lint: $(STAMP)
	$(PY) -m ruff check .

typecheck: $(STAMP)
	$(PY) -m mypy chalicelib edge app.py bench

clean:
	rm -rf $(VENV) .mycontroller .pytest_cache .mypy_cache .ruff_cache
