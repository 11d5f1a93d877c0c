"""Test-wide settings: nothing may reach the Hugging Face Hub."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_DISABLED", "true")
os.environ.setdefault("WANDB_MODE", "disabled")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_model_dir():
    """A cached tiny Qwen2-architecture model directory (TRL's qwen2_5 chat template). Treat as read-only."""
    from toolrl_trl.tiny import tiny_model_path

    return tiny_model_path("qwen2")


@pytest.fixture(scope="session")
def tiny_llama_dir():
    """A cached tiny Llama-architecture model directory (TRL's llama3_2 chat template). Treat as read-only."""
    from toolrl_trl.tiny import tiny_model_path

    return tiny_model_path("llama")
