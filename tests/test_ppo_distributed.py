"""PPO on 2 processes with DeepSpeed ZeRO-2 (accelerate_configs/zero2.yaml) on CPU, then resumed from its checkpoint.

The actor and the critic are two DeepSpeed engines; each checkpoint holds both, with the optimizer states of each
partitioned over the ranks. Marked ``distributed`` like tests/test_distributed.py (same CPU launcher overrides:
``--use_cpu false --ddp_backend gloo``, ``DS_ACCELERATOR=cpu``; the first DeepSpeed launch on a machine compiles
an op, 1-4 minutes).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from helpers import accelerate_cli, free_port, launch_env

pytestmark = pytest.mark.distributed

REPO = Path(__file__).resolve().parents[1]
LAUNCH_TIMEOUT_S = 600


def _launch(model_dir: Path, output_dir: Path, max_steps: int, log: Path) -> str:
    cmd = [*accelerate_cli(), "launch", "--config_file", str(REPO / "accelerate_configs" / "zero2.yaml")]
    cmd += ["--num_processes", "2", "--mixed_precision", "no", "--main_process_port", str(free_port())]
    cmd += [
        str(REPO / "recipes" / "ppo_cold_start.py"),
        "--config",
        str(REPO / "recipes" / "tiny" / "ppo_cold_start.yaml"),
    ]
    cmd += ["--model_name_or_path", str(model_dir), "--output_dir", str(output_dir), "--max_steps", str(max_steps)]
    cmd += ["--save_strategy", "steps", "--save_steps", "2", "--log_level_replica", "info"]
    # 8 prompts per round on 2 processes of 1: gradient accumulation 2, so the critic engine accumulates too.
    cmd += ["--use_cpu", "false", "--ddp_backend", "gloo", "--auto_batch", "true"]
    cmd += [
        "--per_device_train_batch_size",
        "1",
        "--prompts_per_generation_round",
        "8",
        "--max_completion_length",
        "8",
    ]
    with open(log, "w") as handle:
        proc = subprocess.run(
            cmd, cwd=REPO, env=launch_env(), stdout=handle, stderr=subprocess.STDOUT, timeout=LAUNCH_TIMEOUT_S
        )
    text = log.read_text(errors="replace")
    assert proc.returncode == 0, f"{' '.join(cmd)}\nexited {proc.returncode}:\n" + "\n".join(text.splitlines()[-60:])
    return text


def _zero_config(step_dir: Path) -> dict:
    import torch

    optim = torch.load(step_dir / "zero_pp_rank_0_mp_rank_00_optim_states.pt", map_location="cpu", weights_only=False)
    return optim["ds_config"]["zero_optimization"]


def test_zero2_two_processes_train_both_engines_and_resume(tiny_model_dir, tmp_path):
    run = tmp_path / "run"
    log = _launch(tiny_model_dir, run, max_steps=2, log=tmp_path / "first.log")
    for rank in (0, 1):
        lines = [row for row in log.splitlines() if f"process {rank}/2, device cpu" in row]
        assert lines and "DistributedType.DEEPSPEED" in lines[0], f"rank {rank} did not run under DeepSpeed"
    assert "gradient_accumulation_steps 2" in log
    assert "A wrapped DeepSpeed engine reference is currently tied" not in log

    checkpoint = run / "checkpoint-2"
    expected = ["mp_rank_00_model_states.pt", *(f"zero_pp_rank_{r}_mp_rank_00_optim_states.pt" for r in (0, 1))]
    for step_dir in (checkpoint / "global_step2", checkpoint / "critic" / "global_step2"):  # actor, then critic
        assert sorted(p.name for p in step_dir.iterdir()) == expected, step_dir
        assert _zero_config(step_dir)["stage"] == 2
    assert (checkpoint / "critic" / "critic_scheduler.pt").is_file()

    history = json.loads((run / "trainer_state.json").read_text())["log_history"]
    vf_loss = [entry["critic/vf_loss"] for entry in history if "critic/vf_loss" in entry]
    assert len(vf_loss) == 2 and all(value > 0 for value in vf_loss)
    assert any("kl" in entry for entry in history) and any("reward" in entry for entry in history)

    resumed = _launch(tiny_model_dir, run, max_steps=3, log=tmp_path / "resumed.log")
    assert "resuming from it" in resumed and "critic state restored from" in resumed
    state = json.loads((run / "trainer_state.json").read_text())
    assert state["global_step"] == 3
    assert (run / "model.safetensors").is_file()
