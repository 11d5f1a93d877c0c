"""Helpers shared by the tests: repository paths, the paper's shared data, running an entry point in-process, a
complete fake checkpoint, and what tests that start real `accelerate launch` processes on CPU need."""

from __future__ import annotations

import json
import os
import runpy
import socket
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes"
TINY = RECIPES / "tiny"
#: The paper's data (Apache-2.0), next to the checkout as ../shared; tests that need it skip when it is absent.
SHARED_DATA = ROOT.parent / "shared" / "data" / "toolrl"


def run_recipe(script: str, argv: list[str]) -> None:
    """Run ``python recipes/<script> ...`` inside this process; user errors raise (TOOLRL_DEBUG) instead of exiting."""
    old_argv, old_debug = sys.argv, os.environ.get("TOOLRL_DEBUG")
    sys.argv = [str(RECIPES / script), *argv]
    os.environ["TOOLRL_DEBUG"] = "1"
    try:
        runpy.run_path(str(RECIPES / script), run_name="__main__")
    finally:
        sys.argv = old_argv
        if old_debug is None:
            os.environ.pop("TOOLRL_DEBUG", None)
        else:
            os.environ["TOOLRL_DEBUG"] = old_debug


def make_checkpoint(output_dir: Path, step: int, *, critic: bool = False) -> Path:
    """A checkpoint with the files Trainer._save_checkpoint writes (and PPO's critic/), each complete."""
    import torch
    from safetensors.torch import save_file

    path = output_dir / f"checkpoint-{step}"
    path.mkdir(parents=True)
    save_file({"weight": torch.arange(64, dtype=torch.float32)}, str(path / "model.safetensors"))
    torch.save({"state": {0: torch.zeros(64)}}, path / "optimizer.pt")
    torch.save({"last_epoch": step}, path / "scheduler.pt")
    torch.save({"python": 0}, path / "rng_state.pth")
    (path / "trainer_state.json").write_text(json.dumps({"global_step": step, "log_history": []}))
    if critic:
        (path / "critic").mkdir()
        for name in ("critic_trainable.pt", "critic_optimizer.pt", "critic_scheduler.pt"):
            torch.save({"x": torch.zeros(8)}, path / "critic" / name)
    return path


LAUNCHER_STATE = ("ACCELERATE_", "DEEPSPEED_")
RANK_VARIABLES = {"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"}


def accelerate_cli() -> list[str]:
    """The `accelerate` CLI of the interpreter running the tests (the project's .venv)."""
    exe = Path(sys.executable).with_name("accelerate")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "accelerate.commands.accelerate_cli"]


def launch_env() -> dict[str, str]:
    """A clean CPU environment: no inherited launcher/accelerate state, nothing from the Hub, DeepSpeed on CPU."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(LAUNCHER_STATE) and k not in RANK_VARIABLES}
    env.update(
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        WANDB_MODE="disabled",
        CUDA_VISIBLE_DEVICES="",
        DS_ACCELERATOR="cpu",
        OMP_NUM_THREADS="1",
        PYTHONUNBUFFERED="1",
    )
    return env


def free_port() -> int:
    """A TCP port free on loopback right now, for --main_process_port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
