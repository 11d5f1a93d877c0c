# toolrl-trl: one environment (.venv in the repository root) for everything.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.install-stamp
TORCH_VERSION ?= 2.13.0
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
HAS_CUDA := $(shell command -v nvidia-smi >/dev/null 2>&1 && echo 1)
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false
PYTEST_ARGS ?=

.PHONY: help install test test-slow quality style

help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-22s %s\n", $$1, $$2}'

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# Without CUDA, install a CPU torch first: an unpinned torch would pull a multi-GB CUDA build.
# A local wheel cache (pip's find-links) wins; otherwise the PyTorch CPU index. With CUDA, pip's default torch is right.
$(STAMP): setup.cfg pyproject.toml | $(PY)
ifneq ($(HAS_CUDA),1)
	$(PIP) install -q "torch==$(TORCH_VERSION)+cpu" || $(PIP) install -q "torch==$(TORCH_VERSION)+cpu" --index-url $(TORCH_CPU_INDEX)
endif
	$(PIP) install -q -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP) ## create .venv if missing and install the package (editable, with dev extras)

test: install ## run the test suite offline (slow tests excluded)
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

test-slow: install ## run only the opt-in slow tests
	$(PY) -m pytest -m slow $(PYTEST_ARGS)

quality: install ## lint and check formatting
	$(PY) -m ruff check toolrl_trl recipes tests
	$(PY) -m ruff format --check toolrl_trl recipes tests

style: install ## fix lint and format in place
	$(PY) -m ruff check --fix toolrl_trl recipes tests
	$(PY) -m ruff format toolrl_trl recipes tests
