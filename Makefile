# The two set-up commands: `make run` (the local stack) and `make test` (every test). Both do their own set-up.
SHELL := /bin/bash
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' && { echo $$p; break; }; done)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
EDGE_CONFIG ?=
PYTEST_ARGS ?=

STACK ?= mycontroller
REGION ?=
PURGE ?=
BUCKET ?=
DEPLOY_VENV := .venv-deploy
DEPLOY_STAMP := $(DEPLOY_VENV)/.installed

.PHONY: run test bench lint typecheck setup services clean frontend api-types package deploy destroy twin

# The dashboard (frontend/): `npm ci` when the lock file changes, `npm run build` (tsc + vite) when a source does.
FRONTEND_STAMP := frontend/node_modules/.installed
FRONTEND_BUILD := frontend/dist/index.html
FRONTEND_SOURCES := $(wildcard frontend/src/*.ts* frontend/src/*.css frontend/src/*/*.ts*) frontend/index.html \
  frontend/vite.config.ts frontend/tsconfig.json

$(STAMP): requirements.txt requirements-dev.txt edge/requirements.txt
	@test -n "$(PYTHON)" || { echo "Python 3.11 or newer is needed"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	@touch $(STAMP)

setup: $(STAMP)

$(FRONTEND_STAMP): frontend/package.json frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund --loglevel=error
	@touch $(FRONTEND_STAMP)

$(FRONTEND_BUILD): $(FRONTEND_STAMP) $(FRONTEND_SOURCES)
	cd frontend && npm run --silent build

ifneq ($(shell command -v npm 2>/dev/null),)
frontend: $(FRONTEND_BUILD)
else
frontend:
	@echo "warning: npm not found: the dashboard is not built (needs Node.js 20.19 or newer)" >&2
endif

# The console's API types (frontend/src/api/schema.d.ts, filterKeys.ts) from the routes' OpenAPI document, through
# frontend/openapi.json; tests fail when any of them is behind the routes (tests/unit/test_console_api_types.py,
# frontend/src/api/apiTypes.test.ts).
api-types: $(STAMP) $(FRONTEND_STAMP)
	$(PY) frontend/scripts/openapi_snapshot.py
	cd frontend && npm run --silent api-types

services:
	@bash scripts/ensure-services.sh

run: $(STAMP) frontend
	$(PY) -m chalicelib.local $(if $(EDGE_CONFIG),--edge-config $(EDGE_CONFIG),)

test: $(STAMP) services frontend
	$(PY) -m ruff check .
	$(PY) -m mypy chalicelib edge app.py bench infra mycontroller_protocol
	@if command -v npm >/dev/null 2>&1; then cd frontend && npm test --silent; fi
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	@for b in ingest cost api edge automation ws console coldstart twin; do \
	  if [ -f bench/$$b.py ]; then echo "== bench/$$b.py"; $(PY) bench/$$b.py 2>&1 | grep -v '^{"level"' | grep -v '^127.0.0.1' | grep -v '^Serving on' || exit 1; fi; \
	done

# AWS: `make package` writes build/template.json and build/deployment.zip without touching AWS; `make deploy`
# and `make destroy` run AWS SAM CLI from its own environment (.venv-deploy: its pins clash with the test tools').
package: $(STAMP)
	$(PY) -m infra.package

# The three wheels (#21) in dist/: `mycontroller-protocol` (packaging/protocol: the protocol code both others require),
# `mycontroller-edge` (packaging/edge) and `mycontroller` (packaging/server, with the console built first inside it),
# standard PEP 517 builds in isolation (hatchling), checked by twine. Install them with
# `pipx install dist/mycontroller-<version>-py3-none-any.whl` (the wheels it requires, beside it, are found through
# `--pip-args='--find-links dist'`), see the README.
.PHONY: dist
dist: $(STAMP) frontend
	@test -f $(FRONTEND_BUILD) || { echo "the console is not built (needs npm): the server wheel carries it" >&2; exit 1; }
	rm -f dist/mycontroller-*.whl dist/mycontroller_edge-*.whl dist/mycontroller_protocol-*.whl
	$(PY) -m build --wheel --outdir dist packaging/protocol
	$(PY) -m build --wheel --outdir dist packaging/edge
	$(PY) -m build --wheel --outdir dist packaging/server
	$(PY) -m twine check --strict dist/*.whl

# The cloud twin (infra/twin): build/template.json run on this machine (moto, mosquitto, the functions) until Ctrl-C;
# MC_ADMIN_PASSWORD is the stack's admin password. The template is built (without the code package) when missing.
twin: $(STAMP) frontend
	@test -f build/template.json || $(PY) -m infra.package --template-only
	$(PY) -m infra.twin --stack $(STACK)

$(DEPLOY_STAMP): requirements-deploy.txt
	@test -n "$(PYTHON)" || { echo "Python 3.11 or newer is needed"; exit 1; }
	@test -x $(DEPLOY_VENV)/bin/python || $(PYTHON) -m venv $(DEPLOY_VENV)
	$(DEPLOY_VENV)/bin/python -m pip install -q -r requirements-deploy.txt
	@touch $(DEPLOY_STAMP)

deploy: package frontend $(DEPLOY_STAMP)
	$(PY) -m infra.deploy deploy --stack $(STACK) $(if $(REGION),--region $(REGION),) --sam $(DEPLOY_VENV)/bin/sam \
	  $(if $(BUCKET),--bucket $(BUCKET),)
	@if [ -f $(FRONTEND_BUILD) ]; then $(PY) -m infra.console upload --stack $(STACK) $(if $(REGION),--region $(REGION),); \
	  else echo "warning: frontend/dist is not built (npm missing): the console is not uploaded" >&2; fi

destroy: $(STAMP) $(DEPLOY_STAMP)
	$(PY) -m infra.console empty --stack $(STACK) $(if $(REGION),--region $(REGION),)
	$(PY) -m infra.deploy destroy --stack $(STACK) $(if $(REGION),--region $(REGION),) --sam $(DEPLOY_VENV)/bin/sam \
	  $(if $(PURGE),--purge,)

lint: $(STAMP)
	$(PY) -m ruff check .

typecheck: $(STAMP)
	$(PY) -m mypy chalicelib edge app.py bench infra mycontroller_protocol

clean:
	rm -rf $(VENV) $(DEPLOY_VENV) build dist .mycontroller .pytest_cache .mypy_cache .ruff_cache
