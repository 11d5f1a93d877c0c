"""Entry points run as a user runs them (subprocesses), on the CPU with tiny models, for a couple of steps.

GRPO cold start (full weights, then resumed from a checkpoint; and LoRA), SFT and SFT-then-GRPO through
`make sft400-then-grpo` with LoRA off and on. Each run checks what was saved: full weights or an adapter,
the reward metrics in trainer_state.json, the model card.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "recipes" / "tiny"
# Short completions keep a generation round to a few seconds on a CPU.
FAST_GRPO = ["--max_completion_length", "8"]
REWARD_METRICS = ("rewards/format/mean", "rewards/correctness/mean", "reward", "tool_call/parse_failure")


def run(cmd: list[str], timeout: int = 240) -> str:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "WANDB_MODE": "disabled"}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{' '.join(cmd)} failed ({proc.returncode}):\n{output[-6000:]}"
    return output


def grpo(*args: str) -> str:
    return run([sys.executable, "recipes/grpo_cold_start.py", "--config", str(TINY / "grpo_cold_start.yaml"), *args])


def state(directory: Path) -> dict:
    return json.loads((directory / "trainer_state.json").read_text())


def assert_full_weights(directory: Path) -> None:
    assert (directory / "model.safetensors").is_file(), sorted(os.listdir(directory))
    assert (directory / "config.json").is_file()
    assert not (directory / "adapter_config.json").exists()
    assert json.loads((directory / "config.json").read_text())["use_cache"] is True


def assert_adapter(directory: Path) -> dict:
    assert (directory / "adapter_model.safetensors").is_file(), sorted(os.listdir(directory))
    assert not (directory / "model.safetensors").exists()
    assert not (directory / "config.json").exists()
    return json.loads((directory / "adapter_config.json").read_text())


def assert_reward_logs(directory: Path, steps: int) -> None:
    history = state(directory)["log_history"]
    assert state(directory)["global_step"] == steps
    logged = {key for entry in history for key in entry}
    for metric in REWARD_METRICS:
        assert metric in logged, f"{metric} not logged: {sorted(logged)}"
    rewards = [entry["rewards/correctness/mean"] for entry in history if "rewards/correctness/mean" in entry]
    assert all(-3.0 <= value <= 3.0 for value in rewards)


def assert_model_card(directory: Path, trainer: str) -> None:
    card = (directory / "README.md").read_text()
    assert trainer in card and "toolrl" in card


def test_grpo_cold_start_full_weights_then_resume(tiny_model_dir, tmp_path):
    out = tmp_path / "grpo"
    common = ["--model_name_or_path", str(tiny_model_dir), "--output_dir", str(out), *FAST_GRPO]
    grpo(*common, "--max_steps", "2", "--save_strategy", "steps", "--save_steps", "2")
    assert_full_weights(out)
    assert_reward_logs(out, steps=2)
    assert_model_card(out, "GRPO")
    checkpoint = out / "checkpoint-2"
    first_history = state(checkpoint)["log_history"]
    assert [entry["step"] for entry in first_history] == [1, 2]

    log = grpo(*common, "--max_steps", "4", "--resume_from_checkpoint", str(checkpoint), "--save_strategy", "no")
    assert f"resuming from {checkpoint}" in log
    resumed = state(out)
    assert resumed["global_step"] == 4
    steps = [entry["step"] for entry in resumed["log_history"] if "loss" in entry]
    assert steps == [1, 2, 3, 4]
    # Steps 1-2 come from the checkpoint unchanged (a restart from step 0 would log them anew), and only
    # steps 3-4 were trained in the second run.
    assert resumed["log_history"][:2] == first_history
    assert log.count("'step_time'") == 2


def test_grpo_cold_start_lora_saves_an_adapter(tiny_model_dir, tmp_path):
    out = tmp_path / "grpo-lora"
    grpo(
        "--model_name_or_path", str(tiny_model_dir), "--output_dir", str(out), "--use_peft", "true", "--max_steps", "2"
    )
    adapter = assert_adapter(out)
    assert adapter["r"] == 8 and adapter["base_model_name_or_path"] == str(tiny_model_dir)
    assert_reward_logs(out, steps=2)


def make_sft_then_grpo(tmp_path: Path, *variables: str) -> tuple[Path, str]:
    log = run(
        ["make", "--no-print-directory", "sft400-then-grpo", f"OUT={tmp_path}", f"PY={sys.executable}", *variables]
        + ["ARGS=--max_steps 2", "SFT_ARGS=--synthetic_train_size 16", f"GRPO_ARGS={' '.join(FAST_GRPO)}"],
        timeout=400,
    )
    return tmp_path / "tiny", log


def test_make_sft400_then_grpo_full_weights(tmp_path):
    # The tiny model is built on demand by the Makefile rule.
    run_dir, log = make_sft_then_grpo(tmp_path)
    assert (tmp_path / "tiny-qwen2" / "config.json").is_file()
    sft, grpo_out = run_dir / "sft400", run_dir / "sft400_grpo"
    assert_full_weights(sft)
    assert state(sft)["global_step"] == 2
    assert any("loss" in entry for entry in state(sft)["log_history"])
    assert_model_card(sft, "SFT")
    assert f"loading model {sft} " in log  # GRPO started from the SFT output
    assert_full_weights(grpo_out)
    assert_reward_logs(grpo_out, steps=2)


def test_make_sft400_then_grpo_lora_merges_before_grpo(tmp_path, tiny_model_dir):
    run_dir, log = make_sft_then_grpo(tmp_path, "LORA=1", f"TINY_MODEL={tiny_model_dir}")
    sft, merged, grpo_out = run_dir / "sft400-lora", run_dir / "sft400-lora-merged", run_dir / "sft400_grpo-lora"
    assert assert_adapter(sft)["base_model_name_or_path"] == str(tiny_model_dir)
    assert_full_weights(merged)
    assert (merged / "chat_template.jinja").is_file()  # the tokenizer travels with the merged weights
    assert assert_adapter(grpo_out)["base_model_name_or_path"] == str(merged)
    assert_reward_logs(grpo_out, steps=2)
    assert f"loading model {merged} " in log


@pytest.mark.parametrize("lora", ["", pytest.param("LORA=1", marks=pytest.mark.slow)], ids=["full", "lora"])
def test_make_sft400_then_grpo_native_format(tmp_path, tiny_model_dir, lora):
    """FORMAT=native: SFT then GRPO in the model's own template (Qwen2.5's), LoRA off and (slow) on."""
    run_dir, log = make_sft_then_grpo(
        tmp_path, "FORMAT=native", f"TINY_MODEL={tiny_model_dir}", *([lora] if lora else [])
    )
    suffix = "-lora-native" if lora else "-native"
    sft, grpo_out = run_dir / f"sft400{suffix}", run_dir / f"sft400_grpo{suffix}"
    assert log.count("output_format native: rows, rewards and completions use the qwen2_5 chat template") == 2
    assert "rendering synthetic [train] in the qwen2_5 template" in log
    assert "--tool-call-parser hermes" in (sft / "README.md").read_text()
    assert_reward_logs(grpo_out, steps=2)
    (assert_adapter if lora else assert_full_weights)(grpo_out)
