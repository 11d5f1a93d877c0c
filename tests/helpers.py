"""Helpers for tests that start real `accelerate launch` processes on CPU (tests/test_*distributed.py)."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

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
