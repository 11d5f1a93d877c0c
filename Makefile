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
# bfcl-eval pins numpy 1.26 and pulls every provider SDK: installed without its dependencies (its checkers need
# only filelock and mpmath, the `eval` extra); toolrl_trl/eval/bfcl.py names the version it supports.
BFCL_EVAL_VERSION ?= 2026.3.23

.PHONY: help install test test-slow quality style

help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-22s %s\n", $$1, $$2}'

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# Without CUDA, install a CPU torch first: an unpinned torch would pull a multi-GB CUDA build.
# A local wheel cache (pip's find-links) wins; otherwise the PyTorch CPU index. With CUDA, pip's default torch is right.
# With CUDA the `vllm` extra comes too (the GPU recipes generate with vLLM), resolved in the same pip call as trl and
# torch: vllm 0.31.0 (the newest TRL 1.16 supports) pins torch==2.13.0 (= TORCH_VERSION) and transformers<5.18.
# WITH_VLLM= (empty) skips it on a CUDA machine; WITH_VLLM=1 asks for it anywhere.
VLLM_VERSION ?= 0.31.0
WITH_VLLM ?= $(HAS_CUDA)
$(STAMP): setup.cfg pyproject.toml | $(PY)
ifneq ($(HAS_CUDA),1)
	$(PIP) install -q "torch==$(TORCH_VERSION)+cpu" || $(PIP) install -q "torch==$(TORCH_VERSION)+cpu" --index-url $(TORCH_CPU_INDEX)
endif
ifeq ($(WITH_VLLM),1)
	@echo "installing the vllm extra (vllm==$(VLLM_VERSION), torch==$(TORCH_VERSION)): the GPU recipes generate with vLLM"
	$(PIP) install -q -e ".[dev,eval,vllm]" "torch==$(TORCH_VERSION)" "vllm==$(VLLM_VERSION)"
else
	$(PIP) install -q -e ".[dev,eval]"
endif
	$(PIP) install -q --no-deps "bfcl-eval==$(BFCL_EVAL_VERSION)"
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

.PHONY: demo
demo: install ## ToolRL end to end on a CPU in under 10 minutes: tiny model, SFT start, GRPO, before/after (SEED=)
	$(PY) -m toolrl_trl.demo --output_dir outputs/demo --seed $(or $(SEED),0) $(ARGS)

.PHONY: bench-rewards
bench-rewards: install ## reward throughput (completions/s) and its share of a tiny-model GRPO step
	$(PY) -m toolrl_trl.reward_benchmark

.PHONY: bench-grpo gpu-check
bench-grpo: install ## the recipe's GRPO step against a bare TRL GRPOTrainer, interleaved; last line: overhead (ARGS=)
	$(PY) -m toolrl_trl.bench_grpo $(ARGS)

# No `install` prerequisite: an offline GPU machine has no index to install from. It uses .venv when there is one,
# else python3 with the packages installed from carried wheels (docs/performance.md, "GPU check").
GPU_CHECK_PY ?= $(if $(wildcard $(PY)),$(PY),python3)
gpu-check: ## one CUDA GPU, offline, < 8 min: bf16 GRPO (full, LoRA, ZeRO-2) and SFT steps (ARGS="--dry_run true": CPU)
	PYTHONPATH=$(CURDIR) $(GPU_CHECK_PY) -m toolrl_trl.gpu_check $(ARGS)

# ---- Training (recipes/) -------------------------------------------------------------------------------------
# make grpo-cold-start | sft400 | sft4k | sft400-then-grpo
#   MODEL=tiny (default: recipes/tiny/ on the CPU, tiny model built on demand) or a recipes/ directory name
#         (Qwen2.5-1.5B-Instruct, Qwen2.5-3B-Instruct, Qwen2.5-7B-Instruct, Llama-3.2-3B-Instruct)
#   ACCEL=zero3 (a file of accelerate_configs/; default: plain python, one process)  NPROC=8 (--num_processes)
#   LORA=1 (LoRA via --use_peft true)  DATA=path (--data_source; sft4k needs it)  OUT=outputs
#   FORMAT=native (--output_format native: the model's own tool-calling template; outputs get a -native suffix)
#   ARGS="--flag value ..." (every stage)  SFT_ARGS / GRPO_ARGS (one stage of sft400-then-grpo)
MODEL ?= tiny
ACCEL ?=
NPROC ?=
LORA ?=
FORMAT ?=
DATA ?=
ARGS ?=
SFT_ARGS ?=
GRPO_ARGS ?=
OUT ?= outputs
TINY_MODEL := $(OUT)/tiny-qwen2
IS_TINY := $(filter tiny,$(MODEL))
RECIPES := recipes/$(MODEL)
RUN_DIR := $(OUT)/$(MODEL)
LORA_SUFFIX := $(if $(filter 1,$(LORA)),-lora)$(if $(filter native,$(FORMAT)),-native)
LAUNCH := $(if $(ACCEL),$(VENV)/bin/accelerate launch --config_file accelerate_configs/$(ACCEL).yaml $(if $(NPROC),--num_processes $(NPROC)),$(PY))
COMMON_FLAGS := $(if $(filter 1,$(LORA)),--use_peft true) $(if $(DATA),--data_source $(DATA)) $(if $(FORMAT),--output_format $(FORMAT))
BASE_MODEL_FLAG := $(if $(IS_TINY),--model_name_or_path $(TINY_MODEL))
MODEL_DEPS := $(if $(IS_TINY),$(TINY_MODEL)/config.json)
SFT400_DIR := $(RUN_DIR)/sft400$(LORA_SUFFIX)
# GRPO after SFT needs full weights: a LoRA SFT adapter is merged into its base first.
SFT400_FULL := $(if $(filter 1,$(LORA)),$(SFT400_DIR)-merged,$(SFT400_DIR))

.PHONY: grpo-cold-start sft400 sft4k sft400-then-grpo

$(TINY_MODEL)/config.json: | $(STAMP)
	$(PY) -m toolrl_trl.tiny --family qwen2 --out $(TINY_MODEL)

grpo-cold-start: $(MODEL_DEPS) | $(STAMP) ## GRPO from the instruct model (MODEL= ACCEL= NPROC= LORA=1 ARGS=)
	$(LAUNCH) recipes/grpo_cold_start.py --config $(RECIPES)/grpo_cold_start.yaml $(BASE_MODEL_FLAG) \
		--output_dir $(RUN_DIR)/grpo_cold_start$(LORA_SUFFIX) $(COMMON_FLAGS) $(ARGS)

sft400: $(MODEL_DEPS) | $(STAMP) ## SFT on the paper's 400 SFT examples (MODEL= ACCEL= NPROC= LORA=1 ARGS=)
	$(LAUNCH) recipes/sft.py --config $(RECIPES)/sft400.yaml $(BASE_MODEL_FLAG) \
		--output_dir $(SFT400_DIR) $(COMMON_FLAGS) $(ARGS)

sft4k: $(MODEL_DEPS) | $(STAMP) ## SFT on your 4k SFT file, not shipped (DATA=path MODEL= ACCEL= LORA=1 ARGS=)
	$(if $(or $(DATA),$(IS_TINY)),,$(error sft4k needs DATA=<path to your 4k SFT file>: it is not shipped))
	$(LAUNCH) recipes/sft.py --config $(RECIPES)/sft4k.yaml $(BASE_MODEL_FLAG) \
		--output_dir $(RUN_DIR)/sft4k$(LORA_SUFFIX) $(COMMON_FLAGS) $(ARGS)

# The first stage of sft400-then-grpo / sft400-then-ppo: SFT400, then (LORA=1) the adapter merged into full weights.
.PHONY: sft400-full-weights
sft400-full-weights: $(MODEL_DEPS) | $(STAMP)
	$(LAUNCH) recipes/sft.py --config $(RECIPES)/sft400.yaml $(BASE_MODEL_FLAG) \
		--output_dir $(SFT400_DIR) $(COMMON_FLAGS) $(ARGS) $(SFT_ARGS)
ifeq ($(LORA),1)
	$(PY) -m toolrl_trl.merge --adapter $(SFT400_DIR) --out $(SFT400_FULL)
endif

sft400-then-grpo: sft400-full-weights ## SFT400, (LoRA: merge), then GRPO from it (MODEL= ACCEL= LORA=1 ARGS=)
	$(LAUNCH) recipes/grpo_cold_start.py --config $(RECIPES)/sft400_grpo.yaml --model_name_or_path $(SFT400_FULL) \
		--output_dir $(RUN_DIR)/sft400_grpo$(LORA_SUFFIX) $(COMMON_FLAGS) $(ARGS) $(GRPO_ARGS)

# ---- PPO baseline (recipes/ppo_cold_start.py): same variables as above; PPO_ARGS is the PPO stage of sft400-then-ppo
PPO_ARGS ?=
.PHONY: ppo-cold-start sft400-then-ppo

ppo-cold-start: $(MODEL_DEPS) | $(STAMP) ## PPO (learned critic) from the instruct model (MODEL= ACCEL= NPROC= LORA=1 ARGS=)
	$(LAUNCH) recipes/ppo_cold_start.py --config $(RECIPES)/ppo_cold_start.yaml $(BASE_MODEL_FLAG) \
		--output_dir $(RUN_DIR)/ppo_cold_start$(LORA_SUFFIX) $(COMMON_FLAGS) $(ARGS)

sft400-then-ppo: sft400-full-weights ## SFT400, (LoRA: merge), then PPO from it (MODEL= ACCEL= LORA=1 ARGS=)
	$(LAUNCH) recipes/ppo_cold_start.py --config $(RECIPES)/sft400_ppo.yaml --model_name_or_path $(SFT400_FULL) \
		--output_dir $(RUN_DIR)/sft400_ppo$(LORA_SUFFIX) $(COMMON_FLAGS) $(ARGS) $(PPO_ARGS)

# ---- Evaluation (recipes/evaluate.py; docs/evaluation.md) -----------------------------------------------------
# make eval MODEL=outputs/Qwen2.5-3B-Instruct/grpo_cold_start   (MODEL=tiny, the default: the tiny CPU model)
#   BENCHMARKS=all (default: what of the paper's can run; the rest is skipped with a line saying how to enable it)
#     or a list (bfcl,apibank,bamboogle,executed: each must run; executed = the multi-turn mode's held-out tasks)
#   PROTOCOL=paper (the paper's scripts, default) | project
#   LIMIT=20 (items per BFCL category / API-Bank level / Bamboogle)   BACKEND=hf|vllm|openai
#   EVAL_DATA=../shared/data/toolrl (the paper's API-Bank and Bamboogle files: a directory or URL prefix)
#   SEARCH=bm25|serper  SEARCH_CORPUS=wiki.jsonl (bm25)  JUDGE_API_BASE=URL JUDGE_MODEL=gpt-4o (key: OPENAI_API_KEY)
#   SEEDS=5 with TEMPERATURE=0.7 or PAPER_TEMPERATURES=1 (mean and spread per column; greedy by default)
#   EVAL_MAX_NEW_TOKENS=N (fixed; default: the protocol's budgets, 32 for the tiny model)  ARGS="--flag value ..."
BENCHMARKS ?= all
PROTOCOL ?= paper
LIMIT ?=
EVAL_DATA ?= ../shared/data/toolrl
BACKEND ?= hf
SEARCH ?= bm25
SEARCH_CORPUS ?=
JUDGE_API_BASE ?=
JUDGE_MODEL ?=
SEEDS ?=
TEMPERATURE ?=
PAPER_TEMPERATURES ?=
EVAL_MAX_NEW_TOKENS ?= $(if $(IS_TINY),32)
EVAL_MODEL := $(if $(IS_TINY),$(TINY_MODEL),$(MODEL))
EVAL_DIR := $(OUT)/eval/$(notdir $(patsubst %/,%,$(EVAL_MODEL)))

.PHONY: eval
eval: $(MODEL_DEPS) | $(STAMP) ## the paper's table for a checkpoint (MODEL=path BENCHMARKS= PROTOCOL= FORMAT= LIMIT= SEEDS= ARGS=)
	$(PY) recipes/evaluate.py --model $(EVAL_MODEL) --backend $(BACKEND) --benchmarks $(BENCHMARKS) \
		--protocol $(PROTOCOL) --apibank_data $(EVAL_DATA) --bamboogle_data $(EVAL_DATA)/bamboogle.json \
		--search_backend $(SEARCH) $(if $(SEARCH_CORPUS),--search_corpus $(SEARCH_CORPUS)) \
		$(if $(JUDGE_API_BASE),--judge_api_base $(JUDGE_API_BASE)) $(if $(JUDGE_MODEL),--judge_model $(JUDGE_MODEL)) \
		$(if $(LIMIT),--limit $(LIMIT)) $(if $(SEEDS),--seeds $(SEEDS)) $(if $(FORMAT),--output_format $(FORMAT)) \
		$(if $(TEMPERATURE),--generation_temperature $(TEMPERATURE)) \
		$(if $(filter 1 true,$(PAPER_TEMPERATURES)),--paper_temperatures true) \
		$(if $(EVAL_MAX_NEW_TOKENS),--max_new_tokens $(EVAL_MAX_NEW_TOKENS)) --results_dir $(EVAL_DIR) $(ARGS)

# ---- Executed multi-turn mode (recipes/grpo_multiturn.py, docs/multiturn.md): same MODEL= ACCEL= NPROC= LORA=1 ARGS=
#   DATA=path (--task_source: a JSON/JSONL file of environment-protocol rows; default: the synthetic world)
.PHONY: grpo-multiturn eval-executed multiturn-demo
grpo-multiturn: $(MODEL_DEPS) | $(STAMP) ## GRPO on rollouts that execute tools (MODEL= ACCEL= NPROC= LORA=1 DATA= ARGS=)
	$(LAUNCH) recipes/grpo_multiturn.py --config $(RECIPES)/grpo_multiturn.yaml $(BASE_MODEL_FLAG) \
		--output_dir $(RUN_DIR)/grpo_multiturn$(LORA_SUFFIX) $(if $(filter 1,$(LORA)),--use_peft true) \
		$(if $(DATA),--task_source $(DATA)) $(ARGS)

eval-executed: BENCHMARKS := executed
eval-executed: FORMAT := $(or $(FORMAT),native)
eval-executed: eval ## make eval BENCHMARKS=executed FORMAT=native: executed held-out tasks (MODEL=path ARGS=)

multiturn-demo: install ## the executed mode's tiny measurement: SFT start, GRPO on executed tasks, before/after (SEED=)
	$(PY) -m toolrl_trl.envs.demo --output_dir outputs/multiturn_demo/seed$(or $(SEED),0) --seed $(or $(SEED),0) $(ARGS)
