"""Executed held-out tasks: success rate, mean turns and reward parts of a checkpoint on tasks whose tools really run.

The episodes are rolled out by TRL's own tool loop (``GRPOTrainer.evaluate`` with ``environment_factory``), the
same code path as training, with greedy decoding (``top_k=1``) and one episode per task. Each episode is scored by
:mod:`toolrl_trl.trajectory_rewards` (format, correctness, outcome from the environment's end state and the final
answer); the numbers are per-episode means, overall and per subset (the synthetic world's ``unseen_prompts`` and
``unseen_tools``, or ``all`` for rows without a split).

CLI: ``python -m toolrl_trl.eval.executed --model <dir> [--task_source synthetic_world] [--world_test_size 64]``;
``recipes/evaluate.py --benchmarks executed`` (``make eval BENCHMARKS=executed``, or ``make eval-executed``) runs the
same body beside the paper's benchmarks.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

#: Per-episode numbers averaged in a report.
METRICS = (
    "success",
    "state_match",
    "answer_match",
    "turns",
    "tool_calls",
    "tool_errors",
    "unfinished",
    "format",
    "correctness",
    "outcome",
)


@dataclass
class ExecutedTasksConfig:
    """Which held-out tasks and how long an episode may run (flags of both this CLI and ``recipes/evaluate.py``)."""

    task_source: str = field(
        default="synthetic_world",
        metadata={
            "help": "Executed tasks: synthetic_world (its held-out splits) or a JSON/JSONL file of protocol rows."
        },
    )
    dataset_seed: int = field(default=0, metadata={"help": "Synthetic world seed (use the training run's)."})
    world_chains: str = field(default="all", metadata={"help": "Synthetic world chains (all, two_step or names)."})
    world_test_size: int = field(default=64, metadata={"help": "Synthetic world: tasks per held-out split."})
    world_held_out_tools: float = field(
        default=0, metadata={"help": "Synthetic world: held-out tools (as in training; > 0 adds unseen_tools)."}
    )
    world_distractors: int = field(default=1, metadata={"help": "Synthetic world: distractor tools per prompt."})
    max_tool_calling_iterations: int = field(
        default=6, metadata={"help": "Executed tasks: rounds of tool calls per episode."}
    )
    max_completion_length: int = field(
        default=1024, metadata={"help": "Executed tasks: tokens per episode (assistant turns and tool results)."}
    )

    def __post_init__(self) -> None:
        from toolrl_trl.envs.multiturn import SYNTHETIC_SOURCE

        for name in ("world_test_size", "max_tool_calling_iterations", "max_completion_length"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be at least 1, got {getattr(self, name)}")
        if self.world_distractors < 0:
            raise ValueError(f"--world_distractors must be >= 0, got {self.world_distractors}")
        if self.task_source == SYNTHETIC_SOURCE:
            from toolrl_trl.envs import world

            world.parse_chains(self.world_chains)
            world.select_held_out_tools(self.world_held_out_tools, self.dataset_seed)
        elif not Path(self.task_source).is_file():
            raise ValueError(f"--task_source {self.task_source!r} is neither {SYNTHETIC_SOURCE} nor a file")


@dataclass
class ExecutedEvalConfig(ExecutedTasksConfig):
    """``python -m toolrl_trl.eval.executed``: the held-out tasks, plus which checkpoint and where the report goes."""

    model: str = field(default="", metadata={"help": "Checkpoint directory or Hub id to evaluate."})
    output_format: str = field(default="native", metadata={"help": "native or toolrl (as the model was trained)."})
    batch_size: int = field(default=16, metadata={"help": "Episodes generated together."})
    output_dir: str | None = field(default=None, metadata={"help": "Where executed.json goes (null: printed only)."})

    def __post_init__(self) -> None:
        from toolrl_trl.grammar import OUTPUT_FORMATS

        super().__post_init__()
        if self.output_format not in OUTPUT_FORMATS:
            raise ValueError(
                f"--output_format {self.output_format!r} is not valid; valid: {', '.join(OUTPUT_FORMATS)}"
            )
        if self.batch_size < 1:
            raise ValueError(f"--batch_size must be at least 1, got {self.batch_size}")


def evaluation_rows(
    tasks: ExecutedTasksConfig, output_format: str, limit: int | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Held-out rows per subset (the first ``limit`` of each): the synthetic world's unseen prompts (and unseen
    tools), or a file's rows."""
    from toolrl_trl.envs.multiturn import SYNTHETIC_SOURCE, read_rows, routed, synthetic_generator

    if tasks.task_source != SYNTHETIC_SOURCE:
        return {"all": routed(read_rows(tasks.task_source)[:limit])}
    size = tasks.world_test_size if limit is None else min(limit, tasks.world_test_size)
    generator = synthetic_generator(tasks)
    subsets = {"unseen_prompts": generator.tasks("unseen_prompts", size)}
    if generator.held_out:
        subsets["unseen_tools"] = generator.tasks("unseen_tools", size)
    return {name: routed([t.row(output_format) for t in rows]) for name, rows in subsets.items()}


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def evaluate_rows(
    model: str,
    rows: Sequence[dict[str, Any]],
    *,
    output_format: str = "native",
    max_tool_calling_iterations: int = 6,
    max_completion_length: int = 1024,
    batch_size: int = 16,
    reward_config: Any = None,
    tokenizer: Any = None,
) -> dict[str, Any]:
    """Roll out one greedy episode per row with TRL's tool loop; per-episode means of :data:`METRICS` and 2 samples."""
    import torch
    from datasets import Dataset
    from transformers import AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    from toolrl_trl.envs.multiturn import environment_factories, set_response_template
    from toolrl_trl.trajectory_rewards import (
        TrajectoryRewardConfig,
        correctness_score,
        format_score,
        get_trajectory_reward_funcs,
    )

    reward_config = reward_config or TrajectoryRewardConfig()
    (f_low, f_high), (c_low, c_high) = reward_config.bounds()
    if tokenizer is None:
        tokenizer = AutoTokenizer.from_pretrained(model, padding_side="left")
    set_response_template(tokenizer, output_format)
    per_episode: list[dict[str, Any]] = []

    def record(episodes, tasks, outcomes) -> None:
        for episode, task, outcome in zip(episodes, tasks, outcomes, strict=True):
            reference = (task or {}).get("reference_calls") or []
            per_episode.append(
                {
                    "subset": (task or {}).get("split", "all"),
                    "success": float(outcome.success),
                    "state_match": float(outcome.state_match),
                    "answer_match": float(outcome.answer_match),
                    "turns": float(len(episode.turns)),
                    "tool_calls": float(len(episode.calls)),
                    "tool_errors": float(outcome.tool_errors),
                    "unfinished": float(not episode.finished),
                    "format": format_score(episode, f_low, f_high, output_format, bool(reference)),
                    "correctness": correctness_score(episode, reference, c_low, c_high, reward_config.granularity),
                    "outcome": float(outcome.success),
                    "episode": [dict(turn) for turn in episode.turns],
                    "reference_calls": reference,
                }
            )

    with tempfile.TemporaryDirectory(prefix="toolrl-executed-") as out:
        args = GRPOConfig(
            output_dir=out,
            per_device_train_batch_size=2,
            per_device_eval_batch_size=batch_size,
            num_generations=2,
            num_generations_eval=1,
            top_k=1,  # greedy: the most likely token at every step
            temperature=1.0,
            max_completion_length=max_completion_length,
            max_tool_calling_iterations=max_tool_calling_iterations,
            use_cpu=not torch.cuda.is_available(),
            bf16=False,
            report_to="none",
            log_level="warning",
            disable_tqdm=True,
            seed=0,
        )
        dataset = Dataset.from_list(list(rows))
        trainer = GRPOTrainer(
            model=model,
            reward_funcs=get_trajectory_reward_funcs(reward_config, args, output_format, on_episodes=record),
            args=args,
            train_dataset=dataset,
            eval_dataset=dataset,
            processing_class=tokenizer,
            environment_factory=environment_factories(rows),
        )
        trainer.evaluate()
    if len(per_episode) != len(rows):
        raise RuntimeError(f"expected {len(rows)} evaluated episodes, got {len(per_episode)}")
    return summarize(per_episode)


def summarize(per_episode: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Means of :data:`METRICS`, overall and per subset, plus the first two episodes."""
    result: dict[str, Any] = {name: _mean([e[name] for e in per_episode]) for name in METRICS}
    result["n"] = len(per_episode)
    subsets = sorted({e["subset"] for e in per_episode})
    result["subsets"] = {
        name: {m: _mean([e[m] for e in per_episode if e["subset"] == name]) for m in METRICS}
        | {"n": sum(e["subset"] == name for e in per_episode)}
        for name in subsets
    }
    result["samples"] = [
        {"episode": e["episode"], "reference_calls": e["reference_calls"], "success": e["success"]}
        for e in per_episode[:2]
    ]
    return result


def evaluate_checkpoint(
    model: str,
    tasks: ExecutedTasksConfig,
    *,
    output_format: str = "native",
    batch_size: int = 16,
    limit: int | None = None,
    output_dir: str | Path | None = None,
) -> dict[str, Any]:
    """``model`` on every held-out subset; writes ``executed.json`` under ``output_dir`` if given.

    The one body of ``python -m toolrl_trl.eval.executed`` and of ``recipes/evaluate.py --benchmarks executed``.
    """
    subsets = evaluation_rows(tasks, output_format, limit)
    rows = [row for subset in subsets.values() for row in subset]
    logger.info("executed tasks: %s", ", ".join(f"{name} {len(r)}" for name, r in subsets.items()))
    result = evaluate_rows(
        model,
        rows,
        output_format=output_format,
        max_tool_calling_iterations=tasks.max_tool_calling_iterations,
        max_completion_length=tasks.max_completion_length,
        batch_size=batch_size,
    )
    if output_dir:
        path = Path(output_dir) / "executed.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2))
        logger.info("wrote %s", path)
    return result


def run(config: ExecutedEvalConfig) -> dict[str, Any]:
    """The CLI's body: :func:`evaluate_checkpoint` with the parsed options."""
    from toolrl_trl.cli import UserError

    if not config.model:
        raise UserError("--model is required: the checkpoint to evaluate")
    return evaluate_checkpoint(
        config.model,
        config,
        output_format=config.output_format,
        batch_size=config.batch_size,
        output_dir=config.output_dir,
    )


def format_report(result: dict[str, Any]) -> str:
    """A short table: success, turns and reward parts per subset."""
    lines = [f"{'subset':<16}{'n':>5}{'success':>9}{'turns':>7}{'calls':>7}{'format':>8}{'correct':>9}"]
    for name, values in {"all": result, **result["subsets"]}.items():
        lines.append(
            f"{name:<16}{values['n']:>5}{values['success']:>9.3f}{values['turns']:>7.2f}{values['tool_calls']:>7.2f}"
            f"{values['format']:>8.3f}{values['correctness']:>9.3f}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    from toolrl_trl.cli import parse_options, run_guarded

    holder: dict[str, Any] = {}

    def body(args: list[str]) -> None:
        holder["result"] = run(parse_options(ExecutedEvalConfig, args))
        logger.info("executed held-out tasks:\n%s", format_report(holder["result"]))

    run_guarded(body, argv)
    return holder.get("result", {})


if __name__ == "__main__":
    main()
