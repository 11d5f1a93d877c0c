"""What the recipe costs over bare TRL: ``python -m toolrl_trl.bench_grpo`` (``make bench-grpo``).

Two arms train the same short GRPO run, interleaved in one process (ABBA order, one unmeasured warm-up each):

* **recipe**: the trainer ``recipes/grpo_cold_start.py`` builds (``training.build_rl_trainer``: ``ToolRLGRPOTrainer``
  with the in-reward KL when the recipe sets ``kl_reward_coef``, the ToolRL reward callables and their diagnostics,
  the throughput callback) from the tiny recipe;
* **bare**: ``trl.GRPOTrainer`` and ``trl.GRPOConfig`` built by hand from the same resolved values, with the same
  tiny model, training rows and reward callables. When the recipe puts the KL in the reward, the bare arm sets TRL's
  ``beta`` to the same coefficient, so both run the same reference-model forward (TRL then adds the KL to the loss
  instead); with ``--kl_reward_coef 0`` both have ``beta: 0`` and compute the same numbers.

Each run's time is ``trainer.train()``'s wall time (model loading and data building excluded). It prints the median
and spread per arm, the median of the per-repetition ratios and, as its last line, ``overhead: <median recipe / median bare>x``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shlex
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
TINY_RECIPE = REPO_ROOT / "recipes" / "tiny" / "grpo_cold_start.yaml"
ARMS = ("recipe", "bare")


@dataclass
class BenchArguments:
    """``python -m toolrl_trl.bench_grpo``: the recipe's GRPO step against a bare ``GRPOTrainer``, interleaved."""

    config: str = field(default=str(TINY_RECIPE), metadata={"help": "GRPO recipe both arms are built from."})
    repeats: int = field(default=5, metadata={"help": "Measured runs per arm (after one unmeasured warm-up each)."})
    max_steps: int = field(default=8, metadata={"help": "Optimizer steps per run."})
    warmup: bool = field(default=True, metadata={"help": "Run each arm once, unmeasured, before the measured runs."})
    kl_reward_coef: float | None = field(
        default=None,
        metadata={
            "help": "Override the recipe's in-reward KL coefficient (0: both arms are plain GRPO with beta 0). null: "
            "the recipe's value; the bare arm then uses it as TRL's beta."
        },
    )
    recipe_args: str = field(
        default="",
        metadata={"help": "More recipe flags for both arms, as one string (e.g. '--max_completion_length 64')."},
    )
    json_out: str | None = field(default=None, metadata={"help": "Also write the measurements to this JSON file."})

    def __post_init__(self) -> None:
        if self.repeats < 1 or self.max_steps < 1:
            raise ValueError(f"repeats and max_steps must be >= 1, got {self.repeats} and {self.max_steps}")


def recipe_argv(args: BenchArguments, output_dir: str) -> list[str]:
    """The recipe command line of both arms (quiet, no saving or evaluation, a fixed number of steps)."""
    argv = ["--config", args.config, "--output_dir", output_dir, "--max_steps", str(args.max_steps)]
    argv += ["--save_strategy", "no", "--eval_strategy", "no", "--report_to", "none", "--disable_tqdm", "true"]
    argv += ["--log_level", "error"]
    if args.kl_reward_coef is not None:
        argv += ["--kl_reward_coef", str(args.kl_reward_coef)]
    return argv + shlex.split(args.recipe_args)


def build_recipe_trainer(argv: Sequence[str]) -> Any:
    """The trainer ``recipes/grpo_cold_start.py`` trains, built by ``training.build_rl_trainer``."""
    from toolrl_trl.configs import parse_grpo_args
    from toolrl_trl.grpo import ToolRLGRPOTrainer
    from toolrl_trl.training import build_rl_trainer

    trainer, _ = build_rl_trainer(ToolRLGRPOTrainer, *parse_grpo_args(list(argv), world_size=1))
    return trainer


def build_bare_trainer(argv: Sequence[str]) -> Any:
    """``trl.GRPOTrainer`` built by hand: ``GRPOConfig`` from the recipe's resolved values, same model, rows, rewards."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    from toolrl_trl.configs import parse_grpo_args
    from toolrl_trl.data import build_datasets
    from toolrl_trl.rewards import get_reward_funcs
    from toolrl_trl.training import prepare_model_path

    script, data, reward, training, model = parse_grpo_args(list(argv), world_size=1)
    prepare_model_path(script, model, training)
    values = {f.name: getattr(training, f.name) for f in dataclasses.fields(GRPOConfig) if f.init}
    values.pop("generation_batch_size")  # derived from steps_per_generation, which TRL refuses to take with it
    values["beta"] = getattr(training, "kl_reward_coef", 0.0) or training.beta
    config = GRPOConfig(**values)
    tokenizer = AutoTokenizer.from_pretrained(model.model_name_or_path, padding_side="left", truncation_side="left")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    torch.manual_seed(config.seed)
    policy = AutoModelForCausalLM.from_pretrained(model.model_name_or_path, dtype=model.dtype)
    rows = build_datasets(data, kind="rl", tokenizer=tokenizer)["train"]
    return GRPOTrainer(
        model=policy,
        reward_funcs=get_reward_funcs(reward, config),
        args=config,
        train_dataset=rows,
        processing_class=tokenizer,
    )


def timed_train(trainer: Any) -> dict[str, float]:
    """Train once; the wall time of ``train()`` and what the run generated (from its logs)."""
    from transformers import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # both arms: no per-step log dict on stdout
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    lengths = [e["completions/mean_length"] for e in trainer.state.log_history if "completions/mean_length" in e]
    return {"seconds": seconds, "mean_completion_length": statistics.fmean(lengths) if lengths else float("nan")}


def run_arm(arm: str, args: BenchArguments) -> dict[str, float]:
    """Build one arm in a fresh output folder and time its training."""
    with tempfile.TemporaryDirectory(prefix=f"bench-grpo-{arm}-") as output_dir:
        argv = recipe_argv(args, output_dir)
        trainer = build_recipe_trainer(argv) if arm == "recipe" else build_bare_trainer(argv)
        logging.getLogger("toolrl_trl").setLevel(logging.WARNING)  # build_rl_trainer set it to INFO
        return timed_train(trainer)


def summarise(runs: dict[str, list[dict[str, float]]], steps: int) -> dict[str, Any]:
    """Median, spread and per-step time per arm; the overhead ratio of the medians."""
    summary: dict[str, Any] = {"arms": {}}
    for arm, results in runs.items():
        seconds = [r["seconds"] for r in results]
        median = statistics.median(seconds)
        summary["arms"][arm] = {
            "seconds": seconds,
            "median_s": median,
            "min_s": min(seconds),
            "max_s": max(seconds),
            "spread": (max(seconds) - min(seconds)) / median,
            "median_s_per_step": median / steps,
            "mean_completion_length": statistics.fmean(r["mean_completion_length"] for r in results),
        }
    summary["overhead"] = summary["arms"]["recipe"]["median_s"] / summary["arms"]["bare"]["median_s"]
    # Each repetition runs the two arms back to back: their ratio cancels slow drifts in the machine's load.
    paired = [r["seconds"] / b["seconds"] for r, b in zip(runs["recipe"], runs["bare"], strict=True)]
    summary["paired_ratios"] = paired
    summary["paired_ratio_median"] = statistics.median(paired)
    return summary


def benchmark(args: BenchArguments) -> dict[str, Any]:
    """Warm up, then ``repeats`` interleaved runs per arm (ABBA order); returns ``summarise``'s dict plus settings."""
    if args.warmup:
        for arm in ARMS:
            run_arm(arm, args)
    runs: dict[str, list[dict[str, float]]] = {arm: [] for arm in ARMS}
    for repeat in range(args.repeats):
        for arm in ARMS if repeat % 2 == 0 else ARMS[::-1]:
            runs[arm].append(run_arm(arm, args))
            logger.info("repeat %d, %s: %.2f s", repeat, arm, runs[arm][-1]["seconds"])
    summary = summarise(runs, args.max_steps)
    summary["settings"] = dataclasses.asdict(args) | {"argv": recipe_argv(args, "<tmp>")}
    return summary


def format_report(summary: dict[str, Any], args: BenchArguments) -> str:
    lines = [
        f"GRPO training time, {args.max_steps} optimizer steps per run, {args.repeats} interleaved run(s) per arm "
        f"({Path(args.config).name}{' ' + args.recipe_args if args.recipe_args else ''}"
        f"{f', kl_reward_coef {args.kl_reward_coef}' if args.kl_reward_coef is not None else ''})",
        f"  {'arm':<8}{'median s':>10}{'min s':>9}{'max s':>9}{'spread':>8}{'s/step':>9}{'completion len':>16}",
    ]
    for arm, stats in summary["arms"].items():
        lines.append(
            f"  {arm:<8}{stats['median_s']:>10.2f}{stats['min_s']:>9.2f}{stats['max_s']:>9.2f}"
            f"{stats['spread']:>8.1%}{stats['median_s_per_step']:>9.3f}{stats['mean_completion_length']:>16.1f}"
        )
    paired = summary["paired_ratios"]
    lines.append(
        f"  recipe/bare per repetition: median {summary['paired_ratio_median']:.3f}, range {min(paired):.3f}-"
        f"{max(paired):.3f}"
    )
    lines.append(f"overhead: {summary['overhead']:.3f}x")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    from transformers import HfArgumentParser

    from toolrl_trl.cli import configure_logging

    (args,) = HfArgumentParser(BenchArguments).parse_args_into_dataclasses(args=argv)
    configure_logging()
    summary = benchmark(args)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(summary, indent=2))
    print(format_report(summary, args), flush=True)
    return summary


if __name__ == "__main__":
    from toolrl_trl.cli import run_guarded

    run_guarded(main)
