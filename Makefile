# Stance pipeline. `make` (or `make help`) lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
CONFIG ?= configs/base.yaml
STAMP := $(VENV)/.installed

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: help install test validate stats clean

help: ## list the targets with what each does
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (set PYTHON=...)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing into $(VENV) (torch pinned to the CPU build by constraints.txt)..."
	@$(PY) -m pip install -q -c constraints.txt -e '.[dev]' 2> >(grep -v "^WARNING: Location" >&2)
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install the package and its dependencies (CPU torch)

test: $(STAMP) ## run the test suite (installs what it needs first)
	$(PY) -m pytest -q

validate: $(STAMP) ## check the annotations: schema, ids, offsets, config ids, duplicates, coverage
	$(PY) -m pipeline validate --config $(CONFIG)

stats: $(STAMP) ## label counts per target x label, per actor, per document (reports/stats.json)
	$(PY) -m pipeline stats --config $(CONFIG) --output reports/stats.json

clean: ## remove the virtual environment and caches (keeps models and mlflow.db)
	rm -rf $(VENV) .pytest_cache reports
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
