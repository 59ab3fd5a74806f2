# Two commands: `make dev` runs the server locally, `make test` runs every test. Both start from a fresh
# clone: they create .venv and install the pinned dependencies first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

CONFORMANCE := .cache/conformance/node_modules/.bin/conformance

.PHONY: dev test lint typecheck unit bench synth clean conformance-tools

# Once per clone (and again when a pyproject.toml changes); each step says what it does, as pip is quiet.
$(INSTALLED): pyproject.toml sdk/pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "agent-auth needs Python 3.11 or later: make PYTHON=python3.12")'
	@echo "==> [1/3] creating $(VENV) with $(PYTHON)"
	$(PYTHON) -m venv $(VENV)
	@echo "==> [2/3] upgrading pip in $(VENV)"
	$(BIN)/pip install --quiet --upgrade pip
	@echo "==> [3/3] installing agent-auth, its SDK and their pinned dependencies (a few minutes the first time)"
	$(BIN)/pip install --quiet -e ".[dev,infra]" -e sdk
	@touch $@
	@echo "==> installed; the CLI is $(BIN)/agent-auth"

dev: $(INSTALLED)
	$(BIN)/agent-auth dev --policy examples/policy.yaml --credentials-out .agent-auth/credentials.json

test: lint typecheck $(CONFORMANCE)
	$(BIN)/pytest -n 2

# The official MCP conformance suite and the Node 22 it needs, from the npm registry (tests/e2e).
conformance-tools: $(CONFORMANCE)
$(CONFORMANCE):
	@echo "installing the MCP conformance suite and Node 22 under .cache/conformance"
	@mkdir -p .cache/conformance
	npm install --prefix .cache/conformance --no-save --no-audit --no-fund --loglevel=error \
		node@22 @modelcontextprotocol/conformance@0.2.0-alpha.12

lint: $(INSTALLED)
	$(BIN)/ruff check functions infra tests bench sdk examples
	$(BIN)/ruff format --check functions infra tests bench sdk examples
	PYTHONPATH=functions:infra $(BIN)/lint-imports

typecheck: $(INSTALLED)
	$(BIN)/mypy

unit: $(INSTALLED)
	$(BIN)/pytest tests/unit

bench: $(INSTALLED)
	$(BIN)/python bench/run.py

# The CloudFormation template in cdk.out (bundling the functions with pip, no Docker), then where it is, its
# size and its resource count.
synth: $(INSTALLED)
	JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 CDK_OUTDIR=cdk.out $(BIN)/python infra/app.py
	$(BIN)/python infra/synth_report.py cdk.out

clean:
	rm -rf $(VENV) cdk.out build .pytest_cache .mypy_cache .ruff_cache .cache
