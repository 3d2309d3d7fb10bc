# tierlab — value-based CRM research for retail banking.  `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Extra Hydra overrides for `make run`, e.g. make run ARGS="data.n_customers=50000"
ARGS ?=

export MLFLOW_DISABLE_TELEMETRY := true
export MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR := false
export DO_NOT_TRACK := true

.DEFAULT_GOAL := help
.PHONY: help venv install run report test lint format bench bench-modelling mlflow-ui mlflow-server clean

## Show this help
help:
	@awk '/^## /{doc=substr($$0,4); next} /^[a-zA-Z_-]+:/{if(doc){split($$1,t,":"); printf "  \033[36m%-14s\033[0m %s\n", t[1], doc}; doc=""}' $(MAKEFILE_LIST)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,spark,postgres]"
	@touch $(STAMP)

## Create the virtual environment (.venv) if it is missing
venv: $(BIN)/python

## Install tierlab and its pinned dependencies into .venv (runs only when pyproject.toml changed)
install: $(STAMP)

## Run the default experiment on the embedded synthetic bank, tracked in MLflow (sqlite:///mlruns.db)
run: $(STAMP)
	$(BIN)/tierlab run $(ARGS)

# MLflow experiment of `make report`, e.g. make report EXPERIMENT=tierlab-clv-benchmark
EXPERIMENT ?= tierlab

## Rebuild the report of an experiment's latest run from MLflow (EXPERIMENT=tierlab) into reports/
report: $(STAMP)
	$(BIN)/tierlab report --experiment $(EXPERIMENT)

## Run the whole test suite
test: $(STAMP)
	$(BIN)/python -m pytest

## Lint and check formatting with ruff
lint: $(STAMP)
	$(BIN)/ruff check src tests notebooks bench
	$(BIN)/ruff format --check src tests notebooks bench

## Apply ruff's formatter and safe fixes
format: $(STAMP)
	$(BIN)/ruff check --fix src tests notebooks bench
	$(BIN)/ruff format src tests notebooks bench

## Run the benchmarks: bench/RESULTS.md, RESULTS_CLV.md, RESULTS_SCALE.md (1M/10M/100M transactions, ~10 min, ~2 GB of disk)
bench: $(STAMP)
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.clv
	$(BIN)/python -m bench.scale

## Time segmentation, CLV, explain and bootstrap on 1M and 2M customers: bench/RESULTS_MODELLING_SCALE.md (~40 min)
bench-modelling: $(STAMP)
	$(BIN)/python -m bench.modelling_scale

## Open the MLflow UI on the local store (http://127.0.0.1:5000)
mlflow-ui: $(STAMP)
	$(BIN)/mlflow ui --backend-store-uri sqlite:///mlruns.db --host 127.0.0.1 --port 5000

# Port of `make mlflow-server`, e.g. make mlflow-server MLFLOW_PORT=5001
MLFLOW_PORT ?= 5000

## Start an MLflow tracking server on 127.0.0.1 (port MLFLOW_PORT=5000): SQLite store, served artifacts in mlserver/
mlflow-server: $(STAMP)
	@mkdir -p mlserver/artifacts
	$(BIN)/mlflow server --host 127.0.0.1 --port $(MLFLOW_PORT) \
		--backend-store-uri sqlite:///mlserver/mlflow.db \
		--serve-artifacts --artifacts-destination "$(CURDIR)/mlserver/artifacts"

## Remove run outputs, caches and the local MLflow store (keeps .venv)
clean:
	rm -rf outputs multirun reports mlruns.db mlruns.db.lock mlartifacts mlserver data/synthetic .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -not -path './$(VENV)/*' -exec rm -rf {} +
