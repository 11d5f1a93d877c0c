"""Throughput in the training logs: where a GRPO step's time goes, how many tokens it generates, peak memory.

``ThroughputCallback(trainer)`` is a ``TrainerCallback``, no fork of TRL. It times, on the trainer instance, TRL's
generation (``_generate``: sampling, decoding, tool calls), the reward functions (``_calculate_rewards``) and the
whole generation round (``_generate_and_score_completions``, which adds the old/reference log-prob forwards and the
advantages), and each optimizer step from ``on_step_begin`` to ``on_step_end``. At every logging step it adds, for
the steps since the previous log:

- ``throughput/completion_tokens_per_s``: completion tokens generated (all processes; tool output excluded, as TRL
  counts them) per second of step wall time;
- ``throughput/generated_tokens``: completion tokens generated since training started (all processes);
- ``throughput/step_time_s``: mean wall time of an optimizer step;
- ``throughput/generation_share``, ``throughput/reward_share``, ``throughput/logprob_share`` (the rest of the
  generation round: log-prob forwards, advantages, logging) and ``throughput/optimisation_share`` (everything else
  in the step: the loss forward and backward, the optimizer step); the four sum to 1;
- ``throughput/peak_memory_gib``: peak accelerator memory allocated by this process since training started (CUDA
  only; absent on a CPU).

Evaluation rounds are not counted. ``training.build_rl_trainer`` attaches it to every GRPO/PPO run.
The private TRL API it wraps is in ``TRL_PRIVATE_API`` (checked by tests/test_throughput.py).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from transformers import TrainerCallback
from trl import GRPOTrainer

from toolrl_trl.kl_reward import PrivateAttribute, PrivateMethod

logger = logging.getLogger(__name__)

#: Private GRPOTrainer API the callback wraps (calling it with these leading parameters) or reads.
TRL_PRIVATE_API: tuple[PrivateMethod | PrivateAttribute, ...] = (
    PrivateMethod(GRPOTrainer, "_generate", ("self", "prompts"), "call"),
    PrivateMethod(
        GRPOTrainer, "_calculate_rewards", ("self", "inputs", "prompts", "completions", "completion_ids_list"), "call"
    ),
    PrivateMethod(GRPOTrainer, "_generate_and_score_completions", ("self", "inputs"), "call"),
    PrivateAttribute(GRPOTrainer, "_metrics"),
)

PREFIX = "throughput/"
METRICS = (
    "completion_tokens_per_s",
    "generated_tokens",
    "step_time_s",
    "generation_share",
    "reward_share",
    "logprob_share",
    "optimisation_share",
)
MEMORY_METRIC = PREFIX + "peak_memory_gib"


@dataclass
class Totals:
    """Seconds and tokens accumulated over a span of optimizer steps (this process)."""

    steps: int = 0
    step_s: float = 0.0
    generation_s: float = 0.0
    reward_s: float = 0.0
    round_s: float = 0.0
    tokens: int = 0

    def add(self, other: Totals) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


def completion_token_count(generate_output: Any) -> int:
    """Completion tokens in what ``GRPOTrainer._generate`` returned, tool output (``tool_mask`` 0) excluded."""
    completion_ids, tool_mask = generate_output[1], generate_output[2]
    if tool_mask is not None:
        return int(sum(sum(mask) for mask in tool_mask))
    return int(sum(len(ids) for ids in completion_ids))


class ThroughputCallback(TrainerCallback):
    """Logs tokens/s, the step's time split and peak memory (see the module docstring); ``totals`` keeps the run's."""

    def __init__(self, trainer: Any):
        self.trainer = trainer
        self.window = Totals()
        self.totals = Totals()
        self.generated_tokens = 0  # all processes, since training started
        self._step_start: float | None = None
        self._step = Totals()
        self._wrap("_generate", "generation_s", count_tokens=True)
        self._wrap("_calculate_rewards", "reward_s")
        self._wrap("_generate_and_score_completions", "round_s")

    def _wrap(self, name: str, slot: str, *, count_tokens: bool = False) -> None:
        method: Callable[..., Any] = getattr(self.trainer, name)

        @functools.wraps(method)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if not self.trainer.model.training:
                return method(*args, **kwargs)
            start = time.perf_counter()
            result = method(*args, **kwargs)
            setattr(self._step, slot, getattr(self._step, slot) + time.perf_counter() - start)
            if count_tokens:
                self._step.tokens += completion_token_count(result)
            return result

        setattr(self.trainer, name, timed)

    @staticmethod
    def _synchronize() -> None:
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.synchronize()

    def on_train_begin(self, args, state, control, **kwargs):
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.reset_peak_memory_stats()

    def on_step_begin(self, args, state, control, **kwargs):
        self._synchronize()
        self._step_start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self._synchronize()
        if self._step_start is not None:
            self._step.step_s = time.perf_counter() - self._step_start
            self._step.steps = 1
            self.window.add(self._step)
            self.totals.add(self._step)
        self._step, self._step_start = Totals(), None
        if control.should_log:
            self._emit()

    def _global_tokens(self, tokens: int) -> int:
        accelerator = self.trainer.accelerator
        if accelerator.num_processes == 1:
            return tokens
        total = accelerator.reduce(torch.tensor(tokens, device=accelerator.device, dtype=torch.long), reduction="sum")
        return int(total.item())

    def _emit(self) -> None:
        """Add the window's numbers to TRL's metrics, which its ``log`` averages (one value each) and logs."""
        window, self.window = self.window, Totals()
        if window.steps == 0 or window.step_s <= 0.0:
            return
        tokens = self._global_tokens(window.tokens)
        self.generated_tokens += tokens
        logprob_s = max(window.round_s - window.generation_s - window.reward_s, 0.0)
        values = {
            "completion_tokens_per_s": tokens / window.step_s,
            "generated_tokens": float(self.generated_tokens),
            "step_time_s": window.step_s / window.steps,
            "generation_share": window.generation_s / window.step_s,
            "reward_share": window.reward_s / window.step_s,
            "logprob_share": logprob_s / window.step_s,
            "optimisation_share": max(window.step_s - window.round_s, 0.0) / window.step_s,
        }
        metrics = self.trainer._metrics["train"]
        for name, value in values.items():
            metrics[PREFIX + name].append(value)
        memory = peak_memory_gib()
        if memory is not None:
            metrics[MEMORY_METRIC].append(memory)


def peak_memory_gib() -> float | None:
    """Peak CUDA memory allocated by this process (GiB), or None without CUDA."""
    if not (torch.cuda.is_available() and torch.cuda.is_initialized()):
        return None
    return torch.cuda.max_memory_allocated() / 2**30


def attach(trainer: Any) -> ThroughputCallback:
    """Add a ``ThroughputCallback`` to ``trainer`` (a ``GRPOTrainer``) and return it."""
    callback = ThroughputCallback(trainer)
    trainer.add_callback(callback)
    return callback
