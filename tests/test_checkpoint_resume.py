"""Resuming after a preemption: a checkpoint a kill left half-written is skipped, the one before is resumed from.

The unit tests damage hand-made checkpoints file by file; the end-to-end tests SIGKILL a real tiny run (GRPO, and
PPO whose critic is written after trainer_state.json) halfway through writing checkpoint-4, then rerun the same
command and check it resumes from checkpoint-2 and says it skipped checkpoint-4.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import ROOT, TINY, make_checkpoint
from safetensors.torch import save_file
from transformers.trainer_utils import get_last_checkpoint

from toolrl_trl import training
from toolrl_trl.configs import parse_grpo_args

# Runs a recipe (argv[1]) as `python recipe ...` would; with KILL_DURING_SAVE set, the torch.save of the file whose
# path ends with it writes half its bytes, then the process SIGKILLs itself: a preemption in the middle of a save.
KILLER = """
import io, os, runpy, signal, sys
import torch

suffix = os.environ.get("KILL_DURING_SAVE")
real_save = torch.save

def save(obj, f, *args, **kwargs):
    if suffix and isinstance(f, (str, os.PathLike)) and os.fspath(f).endswith(suffix):
        buffer = io.BytesIO()
        real_save(obj, buffer, *args, **kwargs)
        data = buffer.getvalue()
        with open(f, "wb") as handle:
            handle.write(data[: len(data) // 2])
            handle.flush()
            os.fsync(handle.fileno())
        os.kill(os.getpid(), signal.SIGKILL)
    return real_save(obj, f, *args, **kwargs)

torch.save = save
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def grpo_args(output_dir: Path, *extra: str):
    return parse_grpo_args(["--config", str(TINY / "grpo_cold_start.yaml"), "--output_dir", str(output_dir), *extra])[
        3
    ]


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


DAMAGES = {
    "no trainer_state.json": lambda c: (c / "trainer_state.json").unlink(),
    "trainer_state.json unreadable": lambda c: truncate(c / "trainer_state.json"),
    "trainer_state.json says global_step 2": lambda c: (c / "trainer_state.json").write_text('{"global_step": 2}'),
    "model.safetensors truncated": lambda c: truncate(c / "model.safetensors"),
    "no model weights": lambda c: (c / "model.safetensors").unlink(),
    "optimizer.pt truncated": lambda c: truncate(c / "optimizer.pt"),
    "no optimizer state": lambda c: (c / "optimizer.pt").unlink(),
    "no scheduler.pt": lambda c: (c / "scheduler.pt").unlink(),
}


def test_a_complete_checkpoint_has_no_problems(tmp_path):
    args = grpo_args(tmp_path)
    assert training.checkpoint_problems(str(make_checkpoint(tmp_path, 4)), args) == []


@pytest.mark.parametrize("problem", sorted(DAMAGES))
def test_a_damaged_checkpoint_is_skipped_for_the_one_before(problem, tmp_path, caplog):
    args = grpo_args(tmp_path)
    earlier = make_checkpoint(tmp_path, 2)
    damaged = make_checkpoint(tmp_path, 4)
    DAMAGES[problem](damaged)
    assert any(problem in found for found in training.checkpoint_problems(str(damaged), args))
    assert get_last_checkpoint(str(tmp_path)) == str(damaged)  # what the old resolve_checkpoint resumed from
    with caplog.at_level(logging.WARNING, logger="toolrl_trl.training"):
        assert training.resolve_checkpoint(args) == str(earlier)
    assert f"skipping incomplete checkpoint {damaged}: " in caplog.text and problem in caplog.text


def test_sharded_weights_need_every_shard(tmp_path):
    args = grpo_args(tmp_path)
    checkpoint = make_checkpoint(tmp_path, 2)
    (checkpoint / "model.safetensors").unlink()
    save_file({"a": torch.zeros(4)}, str(checkpoint / "model-00001-of-00002.safetensors"))
    save_file({"b": torch.zeros(4)}, str(checkpoint / "model-00002-of-00002.safetensors"))
    index = {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}
    (checkpoint / "model.safetensors.index.json").write_text(json.dumps(index))
    assert training.checkpoint_problems(str(checkpoint), args) == []
    (checkpoint / "model-00002-of-00002.safetensors").unlink()
    assert training.checkpoint_problems(str(checkpoint), args) == ["no model-00002-of-00002.safetensors"]


def test_save_only_model_needs_no_optimizer(tmp_path):
    checkpoint = make_checkpoint(tmp_path, 2)
    (checkpoint / "optimizer.pt").unlink()
    (checkpoint / "scheduler.pt").unlink()
    assert training.checkpoint_problems(str(checkpoint), grpo_args(tmp_path)) == [
        "no optimizer state",
        "no scheduler.pt",
    ]
    assert training.checkpoint_problems(str(checkpoint), grpo_args(tmp_path, "--save_only_model", "true")) == []


def test_deepspeed_checkpoint_needs_the_folder_its_latest_names(tmp_path):
    args = grpo_args(tmp_path)
    checkpoint = make_checkpoint(tmp_path, 2)
    for name in ("model.safetensors", "optimizer.pt", "scheduler.pt"):  # ZeRO-3: all inside the engine's folder
        (checkpoint / name).unlink()
    (checkpoint / "latest").write_text("global_step2")
    assert training.checkpoint_problems(str(checkpoint), args) == [
        "latest names a missing DeepSpeed folder 'global_step2'"
    ]
    (checkpoint / "global_step2").mkdir()
    assert training.checkpoint_problems(str(checkpoint), args) == []


def test_ppo_checkpoints_need_the_critic(tmp_path, caplog):
    from trl import GRPOTrainer

    from toolrl_trl.ppo import PPOTrainer

    args = grpo_args(tmp_path)
    earlier = make_checkpoint(tmp_path, 2, critic=True)
    latest = make_checkpoint(tmp_path, 4, critic=True)
    assert training.resolve_checkpoint(args, PPOTrainer) == str(latest)
    truncate(latest / "critic" / "critic_scheduler.pt")  # the last file PPO writes
    assert training.checkpoint_problems(str(latest), args, critic=True) == ["critic: critic_scheduler.pt truncated"]
    with caplog.at_level(logging.WARNING, logger="toolrl_trl.training"):
        assert training.resolve_checkpoint(args, PPOTrainer) == str(earlier)
    assert "critic" in caplog.text
    assert training.resolve_checkpoint(args, GRPOTrainer) == str(latest)  # GRPO checkpoints have no critic
    (latest / "critic" / "critic_scheduler.pt").unlink()
    (latest / "critic" / "critic_optimizer.pt").unlink()
    assert training.checkpoint_problems(str(latest), args, critic=True) == [
        "critic: no critic_optimizer.pt",
        "critic: no critic_scheduler.pt",
    ]


def test_explicit_incomplete_checkpoint_is_refused(tmp_path):
    checkpoint = make_checkpoint(tmp_path, 2)
    (checkpoint / "trainer_state.json").unlink()
    args = grpo_args(tmp_path, "--resume_from_checkpoint", str(checkpoint))
    with pytest.raises(ValueError, match="is incomplete .*no trainer_state.json"):
        training.resolve_checkpoint(args)


def test_only_incomplete_checkpoints_start_from_scratch(tmp_path, caplog):
    (tmp_path / "checkpoint-2").mkdir()
    with caplog.at_level(logging.WARNING, logger="toolrl_trl.training"):
        assert training.resolve_checkpoint(grpo_args(tmp_path)) is None
    assert "no complete checkpoint" in caplog.text


# ---------------------------------------------------------------------------------------------------------------------
# A real kill during a real save
# ---------------------------------------------------------------------------------------------------------------------


def launch(
    tmp_path: Path, recipe: str, config: str, out: Path, kill_during: str | None
) -> subprocess.CompletedProcess:
    killer = tmp_path / "kill_during_save.py"
    killer.write_text(KILLER)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "WANDB_MODE": "disabled"}
    env.pop("KILL_DURING_SAVE", None)
    if kill_during:
        env["KILL_DURING_SAVE"] = kill_during
    from toolrl_trl.tiny import tiny_model_path

    cmd = [sys.executable, str(killer), f"recipes/{recipe}", "--config", str(TINY / config)]
    cmd += ["--model_name_or_path", str(tiny_model_path("qwen2")), "--output_dir", str(out)]
    cmd += ["--max_steps", "4", "--save_strategy", "steps", "--save_steps", "2", "--max_completion_length", "8"]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def assert_resumed_from_checkpoint_2(tmp_path: Path, recipe: str, config: str, out: Path, skipped_because: str):
    checkpoint_2, checkpoint_4 = out / "checkpoint-2", out / "checkpoint-4"
    first_history = json.loads((checkpoint_2 / "trainer_state.json").read_text())["log_history"]
    rerun = launch(tmp_path, recipe, config, out, kill_during=None)  # the same command, after the preemption
    log = rerun.stdout + rerun.stderr
    assert rerun.returncode == 0, log[-6000:]
    assert f"skipping incomplete checkpoint {checkpoint_4}: " in log and skipped_because in log
    assert f"found {checkpoint_2} in output_dir: resuming from it (skipped incomplete {checkpoint_4})" in log
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == 4
    assert [entry["step"] for entry in state["log_history"] if "loss" in entry] == [1, 2, 3, 4]
    assert state["log_history"][:2] == first_history  # steps 1-2 restored, not retrained
    assert training.checkpoint_problems(str(checkpoint_4), grpo_args(out), critic=recipe.startswith("ppo")) == []


def test_grpo_killed_while_writing_checkpoint_4_resumes_from_checkpoint_2(tmp_path):
    out = tmp_path / "grpo"
    killed = launch(tmp_path, "grpo_cold_start.py", "grpo_cold_start.yaml", out, "checkpoint-4/optimizer.pt")
    assert killed.returncode == -signal.SIGKILL, (killed.stdout + killed.stderr)[-6000:]
    assert (out / "checkpoint-2" / "trainer_state.json").is_file()
    assert (out / "checkpoint-4" / "model.safetensors").is_file()  # the save was under way
    assert not (out / "checkpoint-4" / "trainer_state.json").exists()
    assert_resumed_from_checkpoint_2(tmp_path, "grpo_cold_start.py", "grpo_cold_start.yaml", out, "optimizer.pt")


def test_ppo_killed_while_writing_the_critic_resumes_from_checkpoint_2(tmp_path):
    out = tmp_path / "ppo"
    killed = launch(
        tmp_path, "ppo_cold_start.py", "ppo_cold_start.yaml", out, "checkpoint-4/critic/critic_optimizer.pt"
    )
    assert killed.returncode == -signal.SIGKILL, (killed.stdout + killed.stderr)[-6000:]
    # The policy's part is complete, trainer_state.json included: transformers alone would resume from it.
    assert get_last_checkpoint(str(out)) == str(out / "checkpoint-4")
    assert_resumed_from_checkpoint_2(tmp_path, "ppo_cold_start.py", "ppo_cold_start.yaml", out, "critic:")
