"""The PPO recipes: every YAML parses and carries the paper's PPO settings, batch geometry is checked before the
model loads, and the entry point and Make targets run as a user runs them (subprocesses, tiny model, CPU)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest
import yaml
from trl import GRPOConfig, ModelConfig, SFTConfig

from toolrl_trl.batching import BatchingError, compute_batching, validate_batching
from toolrl_trl.configs import GRPOScriptArguments, load_recipe, parse_ppo_args
from toolrl_trl.data import DataConfig
from toolrl_trl.ppo import PPOConfig
from toolrl_trl.rewards import RewardConfig, get_reward_funcs
from toolrl_trl.training import check_rl_run

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes"
GPU_MODELS = {
    "Qwen2.5-1.5B-Instruct": "Qwen/Qwen2.5-1.5B-Instruct",
    "Qwen2.5-3B-Instruct": "Qwen/Qwen2.5-3B-Instruct",
    "Qwen2.5-7B-Instruct": "Qwen/Qwen2.5-7B-Instruct",
    "Llama-3.2-3B-Instruct": "meta-llama/Llama-3.2-3B-Instruct",
}
PPO_METHODS = ("ppo_cold_start", "sft400_ppo")
PPO_YAMLS = sorted(p for method in PPO_METHODS for p in RECIPES.glob(f"*/{method}.yaml"))
TINY_PPO = RECIPES / "tiny" / "ppo_cold_start.yaml"
CPU = ["--use_cpu", "true"]  # GPU recipes say bf16: true; this CPU box needs use_cpu to build such a config
PPO_METRICS = ("reward", "rewards/format/mean", "rewards/correctness/mean", "kl", "critic/vf_loss", "critic/lr")


def _ids(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def _parse(path: Path, *extra: str, world_size: int | None = None):
    return parse_ppo_args(["--config", str(path), *CPU, *extra], world_size=world_size)


def _world_size(path: Path) -> int:
    world_size = _parse(path)[0].world_size
    assert world_size, f"{path} must state the world size it is sized for (world_size: N)"
    return world_size


def test_every_model_has_both_ppo_recipes():
    for directory in [*GPU_MODELS, "tiny"]:
        for method in PPO_METHODS:
            assert (RECIPES / directory / f"{method}.yaml").is_file(), f"missing recipes/{directory}/{method}.yaml"
    assert len(PPO_YAMLS) == 2 * (len(GPU_MODELS) + 1)


def test_ppo_fields_have_help_and_do_not_collide_with_the_other_configs():
    own = {f.name for f in fields(PPOConfig)} - {f.name for f in fields(GRPOConfig)}
    assert own == {
        "kl_coef",
        "gamma",
        "lam",
        "cliprange_value",
        "critic_learning_rate",
        "critic_warmup_steps",
        "whiten_advantages",
        "value_model_name_or_path",
    }
    others = (SFTConfig, ModelConfig, GRPOScriptArguments, DataConfig, RewardConfig)
    assert not own & {f.name for cls in others for f in fields(cls)}
    for f in fields(PPOConfig):
        if f.name in own or f.name in ("num_generations", "loss_type"):
            assert f.metadata.get("help"), f"PPOConfig.{f.name} has no help"


@pytest.mark.parametrize("path", PPO_YAMLS, ids=_ids)
def test_every_ppo_recipe_parses_and_every_key_reaches_a_config(path):
    parsed = _parse(path)
    script_args, data_args, reward_args, training_args, model_args = parsed
    assert isinstance(script_args, GRPOScriptArguments) and isinstance(data_args, DataConfig)
    assert isinstance(training_args, PPOConfig) and isinstance(model_args, ModelConfig)
    assert [f.__name__ for f in get_reward_funcs(reward_args, training_args)] == ["format", "correctness"]
    assert model_args.use_peft is False  # LoRA is switched on from the command line
    assert training_args.output_dir.endswith(f"{path.parent.name}/{path.stem}")
    # That every key of the file reaches a config is checked for all recipes in tests/test_configs.py.


@pytest.mark.parametrize("model", GPU_MODELS)
@pytest.mark.parametrize("method", PPO_METHODS)
def test_gpu_ppo_recipes_carry_the_paper_settings(model, method):
    path = RECIPES / model / f"{method}.yaml"
    script_args, data_args, reward_args, args, model_args = _parse(path)
    expected_model = GPU_MODELS[model] if method == "ppo_cold_start" else f"outputs/{model}/sft400"
    assert model_args.model_name_or_path == expected_model
    assert args.num_generations == 1
    assert (args.learning_rate, args.critic_learning_rate) == (1e-6, 1e-5)
    assert (args.kl_coef, args.gamma, args.lam) == (0.001, 1.0, 1.0)
    assert (args.epsilon, args.cliprange_value, args.entropy_coef) == (0.2, 0.5, 0.001)
    assert args.critic_warmup_steps == 0 and args.beta == 0.0 and args.whiten_advantages
    assert (args.max_completion_length, data_args.max_prompt_length) == (512, 1024)
    assert (data_args.split_method, data_args.prompt_truncation) == ("paper", "left")  # rlla.py; rl_dataset.py
    assert (args.weight_decay, args.vllm_importance_sampling_correction) == (0.01, False)
    assert (args.save_steps, args.eval_strategy, args.eval_steps) == (60, "steps", 20)
    assert args.num_train_epochs == 15 and args.temperature == 1.0 and args.num_iterations == 1
    assert args.bf16 is True and args.activation_checkpointing is True
    assert (args.use_vllm, args.vllm_mode, args.vllm_max_model_length) == (True, "colocate", 1536)
    assert (script_args.prompts_per_generation_round, script_args.updates_per_generation_round) == (512, 4)
    assert (reward_args.granularity, reward_args.length_reward) == ("fine", "off")


@pytest.mark.parametrize("path", PPO_YAMLS, ids=_ids)
def test_ppo_recipe_batch_arithmetic_reproduces_its_round(path):
    script_args, _, _, args, _ = _parse(path)
    world_size = _world_size(path)
    plan = validate_batching(
        args,
        world_size,
        prompts_per_round=script_args.prompts_per_generation_round,
        updates_per_round=script_args.updates_per_generation_round,
        min_generations=1,
    )
    text = path.read_text()
    if path.parent.name != "tiny":
        # 512 prompts x 1 rollout per round, mini-batches of 128; micro-batches of 4 sequences per GPU (the
        # reference's 8 over 2 GPUs), 2 for the 7B model (memory)
        assert (plan.generation_batch_size, plan.completions_per_update, plan.updates_per_round) == (512, 128, 4)
        assert args.per_device_train_batch_size == (2 if "7B" in path.parent.name else 4)
        accel = re.search(r"--config_file accelerate_configs/(\w+)\.yaml --num_processes (\d+)", text)
        assert accel and int(accel.group(2)) == world_size
        assert (ROOT / "accelerate_configs" / f"{accel.group(1)}.yaml").is_file()
    with pytest.raises(BatchingError):  # launched on another world size, the same file is refused
        validate_batching(
            args,
            world_size * 2,
            prompts_per_round=script_args.prompts_per_generation_round,
            updates_per_round=script_args.updates_per_generation_round,
        )


@pytest.mark.parametrize(("world_size", "accumulation"), [(1, 32), (2, 16), (8, 4), (16, 2)])
def test_auto_batch_recomputes_for_the_world_size(world_size, accumulation):
    path = RECIPES / "Qwen2.5-3B-Instruct" / "ppo_cold_start.yaml"
    _, _, _, args, _ = _parse(path, "--auto_batch", "true", world_size=world_size)
    assert args.per_device_train_batch_size == 4
    assert (args.gradient_accumulation_steps, args.steps_per_generation) == (accumulation, 4 * accumulation)
    assert (
        validate_batching(
            args, world_size, prompts_per_round=512, updates_per_round=4, min_generations=1
        ).prompts_per_round
        == 512
    )


def test_batch_plan_names_the_sizes_that_fit():
    plan = compute_batching(4, 2, prompts_per_round=512, num_generations=1, updates_per_round=4, min_generations=1)
    assert (plan.gradient_accumulation_steps, plan.steps_per_generation) == (16, 64)
    with pytest.raises(BatchingError, match=r"Use a per_device_train_batch_size in \[1, 2, 4, 8, 16, 32\]"):
        compute_batching(4, 3, prompts_per_round=512, num_generations=1, updates_per_round=4, min_generations=1)
    with pytest.raises(BatchingError, match="must be divisible by updates_per_generation_round"):
        compute_batching(1, 1, prompts_per_round=6, num_generations=1, updates_per_round=4, min_generations=1)
    with pytest.raises(BatchingError, match="num_generations must be a positive integer"):
        compute_batching(1, 1, num_generations=0, min_generations=1)


def test_auto_batch_refuses_generation_batch_size(tmp_path):
    config = dict(load_recipe(TINY_PPO).values)  # resolved through its base recipe
    config.update(generation_batch_size=4, steps_per_generation=None, auto_batch=True)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(BatchingError, match="remove generation_batch_size"):
        parse_ppo_args(["--config", str(path)], world_size=1)


def test_check_refuses_a_recipe_launched_on_another_world_size():
    # (vLLM is not installed on this CPU box; the launcher checks run first and would stop at it.)
    script_args, _, _, args, _ = _parse(RECIPES / "Qwen2.5-3B-Instruct" / "ppo_cold_start.yaml", "--use_vllm", "false")
    check_rl_run(script_args, args, world_size=8, min_generations=1)
    with pytest.raises(BatchingError, match="Set gradient_accumulation_steps: 8 and steps_per_generation: 32"):
        check_rl_run(script_args, args, world_size=4, min_generations=1)


def test_unknown_key_and_grpo_beta_fail_loudly(tmp_path):
    with pytest.raises(ValueError, match="critic_lr"):
        parse_ppo_args(["--config", str(TINY_PPO), "--critic_lr", "1e-5"])
    with pytest.raises(ValueError, match="folds the KL into the reward"):
        parse_ppo_args(["--config", str(TINY_PPO), "--beta", "0.04"])


# ------------------------------------------------------------------------------ entry point and Make targets


def _run(cmd: list[str], timeout: int = 300) -> str:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "WANDB_MODE": "disabled",
        "OMP_NUM_THREADS": "1",  # tiny models on a shared CPU: contending threads are much slower than one
    }
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{' '.join(cmd)} failed ({proc.returncode}):\n{output[-6000:]}"
    return output


def _state(directory: Path) -> dict:
    return json.loads((directory / "trainer_state.json").read_text())


def _assert_ppo_logs(directory: Path, steps: int) -> None:
    state = _state(directory)
    assert state["global_step"] == steps
    logged = {key for entry in state["log_history"] for key in entry}
    for metric in PPO_METRICS:
        assert metric in logged, f"{metric} not logged: {sorted(logged)}"
    assert "frac_reward_zero_std" not in logged  # GRPO's group statistic means nothing with one rollout


def test_ppo_cold_start_full_weights_then_resume(tiny_model_dir, tmp_path):
    out = tmp_path / "run"
    args = [sys.executable, "recipes/ppo_cold_start.py", "--config", str(TINY_PPO)]
    args += ["--model_name_or_path", str(tiny_model_dir), "--output_dir", str(out), "--max_completion_length", "8"]
    _run([*args, "--max_steps", "2", "--save_strategy", "steps", "--save_steps", "2"])
    assert (out / "model.safetensors").is_file() and not (out / "adapter_config.json").exists()
    assert "PPO" in (out / "README.md").read_text()
    _assert_ppo_logs(out, steps=2)
    assert (out / "checkpoint-2" / "critic" / "critic_trainable.pt").is_file()
    log = _run([*args, "--max_steps", "3"])  # the same command resumes from checkpoint-2, critic included
    assert "critic state restored from" in log
    _assert_ppo_logs(out, steps=3)


def test_make_ppo_cold_start_with_lora(tiny_model_dir, tmp_path):
    _run(
        ["make", "--no-print-directory", "ppo-cold-start", f"OUT={tmp_path}", f"PY={sys.executable}", "LORA=1"]
        + [f"TINY_MODEL={tiny_model_dir}", "ARGS=--max_steps 2 --max_completion_length 8"]
    )
    out = tmp_path / "tiny" / "ppo_cold_start-lora"
    assert (out / "adapter_config.json").is_file() and not (out / "model.safetensors").exists()
    _assert_ppo_logs(out, steps=2)


def test_make_sft400_then_ppo(tiny_model_dir, tmp_path):
    log = _run(
        ["make", "--no-print-directory", "sft400-then-ppo", f"OUT={tmp_path}", f"PY={sys.executable}"]
        + [f"TINY_MODEL={tiny_model_dir}", "ARGS=--max_steps 2", "SFT_ARGS=--synthetic_train_size 16"]
        + ["PPO_ARGS=--max_completion_length 8"],
        timeout=400,
    )
    sft, ppo = tmp_path / "tiny" / "sft400", tmp_path / "tiny" / "sft400_ppo"
    assert (sft / "model.safetensors").is_file()
    assert f"loading model {sft} " in log  # PPO started from the SFT output (its critic too)
    assert (ppo / "model.safetensors").is_file()
    _assert_ppo_logs(ppo, steps=2)
