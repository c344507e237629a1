# Stance pipeline. `make` (or `make help`) lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
CONFIG ?= configs/finetune.yaml
MODEL ?=
INPUT ?=
OUTPUT ?=
REPORT ?=
TASK ?=
EXPORT ?=
FORMAT ?=
ENCODING_ERRORS ?= strict
MLFLOW_PORT ?= 5000
STAMP := $(VENV)/.installed
SPARK_STAMP := $(VENV)/.installed-spark
# Label Studio lives in its own venv (constraints-labelstudio.txt): none of its dependencies enter $(VENV).
LS_VENV ?= .venv-labelstudio
LS_STAMP := $(LS_VENV)/.installed
LS_PORT ?= 8080
LS_DATA ?= .labelstudio
TASKS ?= suggestions
MASTER ?= local[*]
NPROC ?= 2
SERVE_PORT ?= 5001
SERVE_MODEL ?= models:/stance-ukraine-seeds@champion
TRIALS ?=
SET ?=
OVERWRITE ?=
NO_BENCHMARK ?=
RUNTIME ?=
SERVE_TIMEOUT ?= 60
SERVE_MAX_ROWS ?= 2000
# Options built from the variables above.
SETS = $(foreach s,$(SET),--set $(s))
OVERWRITE_FLAG = $(if $(filter 1 yes true,$(OVERWRITE)),--overwrite)
RUNTIME_FLAG = $(if $(RUNTIME),--runtime $(RUNTIME))
# Targets that read no config refuse CONFIG= and SET= instead of ignoring them.
NO_CONFIG = @if [ "$(origin CONFIG)" = "command line" ] || [ -n "$(SET)" ]; then \
	echo "error: make $@ reads no config, so CONFIG= and SET= would be ignored: leave them out (make help lists what each target takes)"; exit 2; fi

# Offline by default (no model or dataset hub at run time); `make train HF_HUB_OFFLINE=0` to allow the hub.
HF_HUB_OFFLINE ?= 1
export HF_HUB_OFFLINE
export HF_DATASETS_OFFLINE := $(HF_HUB_OFFLINE)
export MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR := false
export TOKENIZERS_PARALLELISM := false

.PHONY: help install test test-fast lint format validate stats train evaluate cv sweep stance-model zeroshot-eval compare predict suggest import-annotations export train-ddp predict-spark serve tracking-server bench ui annotate export-annotations clean

help: ## list the targets with what each does
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (set PYTHON=...)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing into $(VENV) (torch pinned to the CPU build by constraints.txt)..."
	@$(PY) -m pip install -q -c constraints.txt -e '.[dev]' 2> >(grep -v "^WARNING: Location" >&2)
	@touch $(STAMP)

$(SPARK_STAMP): $(STAMP)
	@echo "installing the spark extra (pyspark; Java 17 runs it)..."
	@$(PY) -m pip install -q -c constraints.txt -e '.[dev,spark]' 2> >(grep -v "^WARNING: Location" >&2)
	@touch $(SPARK_STAMP)

$(LS_STAMP): constraints-labelstudio.txt
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (set PYTHON=...)"; exit 1; }
	@test -x $(LS_VENV)/bin/python || $(PYTHON) -m venv $(LS_VENV)
	@echo "installing Label Studio into $(LS_VENV), its own venv (pinned by constraints-labelstudio.txt)..."
	@$(LS_VENV)/bin/python -m pip install -q -c constraints-labelstudio.txt label-studio label-studio-sdk 2> >(grep -v "^WARNING: Location" >&2)
	@touch $(LS_STAMP)

install: $(STAMP) ## create .venv and install the package and its dependencies (CPU torch)
	$(NO_CONFIG)

test: $(STAMP) $(SPARK_STAMP) $(LS_STAMP) ## run the full test suite, slow end-to-end tests included (what CI runs; installs first)
	$(NO_CONFIG)
	$(PY) -m pytest -q

test-fast: $(STAMP) ## the tests not marked slow (about a minute): the edit loop
	$(NO_CONFIG)
	$(PY) -m pytest -q -m "not slow"

lint: $(STAMP) ## ruff: lint and format check (configured in pyproject.toml)
	$(NO_CONFIG)
	$(VENV)/bin/ruff check pipeline benchmarks research scripts tests
	$(VENV)/bin/ruff format --check pipeline benchmarks research scripts tests

format: $(STAMP) ## ruff: format the code and apply the safe lint fixes
	$(NO_CONFIG)
	$(VENV)/bin/ruff format pipeline benchmarks research scripts tests
	$(VENV)/bin/ruff check --fix pipeline benchmarks research scripts tests

validate: $(STAMP) ## check the annotations (and the extra training corpora): schema, ids, offsets, config ids, duplicates, coverage
	$(PY) -m pipeline validate --config $(CONFIG) $(SETS)

stats: $(STAMP) ## label counts per target x label, per actor, per document [OUTPUT=stats.json to save them]
	$(PY) -m pipeline stats --config $(CONFIG) $(SETS) $(if $(OUTPUT),--output "$(OUTPUT)") $(OVERWRITE_FLAG)

import-annotations: $(STAMP) ## merge a Label Studio (.json) or doccano (.jsonl) export into a corpus: EXPORT= OUTPUT= [CONFIG=] [FORMAT=labelstudio|doccano] [SPLIT=train]
	@test -n "$(EXPORT)" -a -n "$(OUTPUT)" || { echo "usage: make import-annotations EXPORT=export.json|export.jsonl OUTPUT=corpus.jsonl [CONFIG=configs/finetune.yaml] [FORMAT=labelstudio|doccano]"; exit 2; }
	$(PY) -m pipeline import-annotations --export "$(EXPORT)" --output "$(OUTPUT)" --config $(CONFIG) $(SETS) $(if $(FORMAT),--format $(FORMAT)) $(if $(SPLIT),--split $(SPLIT))

train: $(STAMP) ## fine-tune the default transformer (or CONFIG=...), save models/<name>/ [OVERWRITE=1 to replace it], log to MLflow
	$(PY) -m pipeline train --config $(CONFIG) $(SETS) $(OVERWRITE_FLAG)

evaluate: $(STAMP) ## evaluate models/<name>/ (or MODEL=path|runs:/...|models:/name@alias) on the test split [RUNTIME=torch|onnx|onnx-int8]
	$(PY) -m pipeline evaluate --config $(CONFIG) $(if $(MODEL),--model "$(MODEL)") $(RUNTIME_FLAG) $(SETS)

cv: $(STAMP) ## grouped k-fold cross-validation of CONFIG: parent MLflow run, one child per fold
	$(PY) -m pipeline cv --config $(CONFIG) $(SETS)

sweep: $(STAMP) ## hyperparameter search on dev (Optuna; a parent MLflow run, one child per trial) [TRIALS=n]; writes <config>-best.yaml
	$(PY) -m pipeline sweep --config $(CONFIG) $(if $(TRIALS),--trials $(TRIALS)) $(SETS) $(OVERWRITE_FLAG)

stance-model: $(STAMP) ## train the stance model behind zero-shot's default method into models/stance-minilm (configs/stance-model.yaml) [OVERWRITE=1]
	$(PY) -m pipeline train --config $(if $(filter command line,$(origin CONFIG)),$(CONFIG),configs/stance-model.yaml) $(SETS) $(OVERWRITE_FLAG)

zeroshot-eval: $(STAMP) ## zero-shot on targets absent from training: leave-one-target-out + COVID-19-Stance, one parent MLflow run [NO_BENCHMARK=1]
	$(PY) -m pipeline zeroshot-eval --config $(if $(filter command line,$(origin CONFIG)),$(CONFIG),configs/stance-model.yaml) $(SETS) $(if $(filter 1 yes true,$(NO_BENCHMARK)),--no-benchmark)

compare: $(STAMP) ## print the experiment's runs side by side (backend, base model, F_avg, macro-F1, time), best first
	$(PY) -m pipeline compare --config $(CONFIG) $(SETS)

predict: $(STAMP) ## stance in new articles: INPUT=folder|.jsonl|.csv OUTPUT=.jsonl|.csv [MODEL=...] [RUNTIME=torch|onnx|onnx-int8] [REPORT=dir] [TASK=task.yaml] [OVERWRITE=1]
	$(NO_CONFIG)
	@test -n "$(INPUT)" -a -n "$(OUTPUT)" || { echo "usage: make predict INPUT=folder|file.jsonl|file.csv OUTPUT=out.jsonl|out.csv [MODEL=models/finetune-minilm] [REPORT=dir] [ENCODING_ERRORS=replace]"; exit 2; }
	$(PY) -m pipeline predict --input "$(INPUT)" --output "$(OUTPUT)" --model "$(or $(MODEL),models/finetune-minilm)" --encoding-errors $(ENCODING_ERRORS) $(if $(REPORT),--report "$(REPORT)") $(if $(TASK),--task "$(TASK)") $(RUNTIME_FLAG) $(OVERWRITE_FLAG)

suggest: $(STAMP) ## sentences of INPUT worth annotating: N (100) by STRATEGY (margin|entropy|disagreement|random) into OUTPUT (suggestions/) for Label Studio and doccano [MODEL=a[,b...]] [EXCLUDE=corpus.jsonl] [TASK=] [OVERWRITE=1]
	$(NO_CONFIG)
	@test -n "$(INPUT)" || { echo "usage: make suggest INPUT=folder|file.jsonl|file.csv [N=100] [MODEL=models/finetune-minilm[,another]] [STRATEGY=margin] [OUTPUT=suggestions] [EXCLUDE=corpus.jsonl] [TASK=task.yaml]"; exit 2; }
	$(PY) -m pipeline suggest --input "$(INPUT)" --output "$(or $(OUTPUT),suggestions)" --model "$(or $(MODEL),models/finetune-minilm)" -n $(or $(N),100) --strategy $(or $(STRATEGY),margin) --encoding-errors $(ENCODING_ERRORS) $(if $(TASK),--task "$(TASK)") $(foreach e,$(EXCLUDE),--exclude "$(e)") $(RUNTIME_FLAG) $(OVERWRITE_FLAG)

export: $(STAMP) ## export MODEL= (default models/finetune-minilm) to ONNX Runtime, RUNTIME=onnx|onnx-int8 (default), and make it the model's runtime
	$(NO_CONFIG)
	$(PY) -m pipeline export --model "$(or $(MODEL),models/finetune-minilm)" --runtime $(or $(RUNTIME),onnx-int8)

train-ddp: $(STAMP) ## train CONFIG with NPROC processes under torchrun (CPU: gloo; GPUs: one process each)
	$(VENV)/bin/torchrun --standalone --nproc_per_node $(NPROC) -m pipeline train --config $(CONFIG) $(SETS) $(OVERWRITE_FLAG)

predict-spark: $(SPARK_STAMP) ## score INPUT (JSONL/Parquet: text, actor, target) on Spark (MASTER=, default local[*]) into OUTPUT Parquet; MODEL= folder|runs:/|models:/ [RUNTIME=] [OVERWRITE=1]
	$(NO_CONFIG)
	@test -n "$(INPUT)" -a -n "$(OUTPUT)" || { echo "usage: make predict-spark INPUT=pairs.jsonl OUTPUT=scored.parquet [MODEL=...] [MASTER=...]"; exit 2; }
	$(PY) -m pipeline predict-spark --input "$(INPUT)" --output "$(OUTPUT)" --master "$(MASTER)" $(if $(MODEL),--model "$(MODEL)") $(RUNTIME_FLAG) $(OVERWRITE_FLAG)

serve: $(STAMP) ## REST on 127.0.0.1:SERVE_PORT (5001) for SERVE_MODEL (the champion); SERVE_MAX_ROWS (2000) per request, SERVE_TIMEOUT (60 s) [RUNTIME=]
	$(NO_CONFIG)
	MLFLOW_TRACKING_URI="$${MLFLOW_TRACKING_URI:-sqlite:///$(CURDIR)/mlflow.db}" $(PY) -m pipeline serve --model "$(SERVE_MODEL)" \
	  --host 127.0.0.1 --port $(SERVE_PORT) --timeout $(SERVE_TIMEOUT) --max-rows $(SERVE_MAX_ROWS) $(RUNTIME_FLAG)

tracking-server: $(STAMP) ## a shared MLflow tracking server on 127.0.0.1 (MLFLOW_PORT, default 5000); docs/tracking.md: PostgreSQL + S3
	$(NO_CONFIG)
	$(VENV)/bin/mlflow server --backend-store-uri "sqlite:///$(CURDIR)/mlflow-server.db" \
	  --artifacts-destination "$(CURDIR)/mlartifacts-server" --host 127.0.0.1 --port $(MLFLOW_PORT)

bench: $(STAMP) ## run the benchmarks (benchmarks/*.py) and print their figures; BENCH=name for one
	$(NO_CONFIG)
	$(PY) -m benchmarks $(BENCH)

ui: $(STAMP) ## start the MLflow UI on http://127.0.0.1:5000 (MLFLOW_PORT=) and print the link to CONFIG's runs table
	@echo "open $$($(PY) -m pipeline ui-link --config $(CONFIG) $(SETS) --port $(MLFLOW_PORT))"
	$(VENV)/bin/mlflow ui --backend-store-uri "$${MLFLOW_TRACKING_URI:-sqlite:///$(CURDIR)/mlflow.db}" --host 127.0.0.1 --port $(MLFLOW_PORT)

annotate: $(LS_STAMP) ## Label Studio on 127.0.0.1:LS_PORT (8080) with the tasks make suggest wrote in TASKS= (suggestions); Ctrl-C stops it
	$(NO_CONFIG)
	$(LS_VENV)/bin/python scripts/labelstudio_server.py serve --tasks "$(TASKS)" --port $(LS_PORT) --data-dir "$(LS_DATA)"

export-annotations: $(LS_STAMP) ## the annotations of TASKS= (suggestions) as Label Studio's JSON export into EXPORT=file.json, no UI needed [OVERWRITE=1]
	$(NO_CONFIG)
	@test -n "$(EXPORT)" || { echo "usage: make export-annotations EXPORT=annotations.json [TASKS=suggestions] [LS_PORT=8080] [OVERWRITE=1]"; exit 2; }
	$(LS_VENV)/bin/python scripts/labelstudio_server.py export --tasks "$(TASKS)" --output "$(EXPORT)" --port $(LS_PORT) --data-dir "$(LS_DATA)" $(OVERWRITE_FLAG)

clean: ## delete .venv, .venv-labelstudio, .pytest_cache and __pycache__ folders only: never models/, mlflow.db, mlartifacts/, .labelstudio/ or any output
	$(NO_CONFIG)
	rm -rf $(VENV) $(LS_VENV) .pytest_cache
	find . -name __pycache__ -type d -prune -not -path "./$(VENV)/*" -exec rm -rf {} +
