"""Executed multi-turn GRPO: data options, rows, the output formats' response templates, and the training run.

Training is TRL's own loop: ``GRPOTrainer(environment_factory={name: class})`` runs each rollout's tool calls on its
environment, appends the results (masked from the loss) and generates again, up to ``max_tool_calling_iterations``.
This module only prepares what that loop needs:

* rows of the environment protocol (:mod:`toolrl_trl.envs.base`) from a task source (the synthetic world, a file of
  rows, or a source another module registered), plus TRL's ``environment`` routing column;
* the tokenizer's response template: the model's native one (TRL's ``add_response_schema``; Qwen2.5:
  ``<tool_call>`` JSON with ``arguments``), or :data:`TOOLRL_RESPONSE_TEMPLATES`, which parses the ToolRL grammar
  (``<think>``, one JSON call per line with ``parameters``, ``<response>``) with transformers' response-template
  parser, so the same TRL loop executes ToolRL-grammar calls;
* the trajectory rewards (:mod:`toolrl_trl.trajectory_rewards`) and their weights.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolrl_trl.envs.base import TaskError, get_environment, parse_task

logger = logging.getLogger(__name__)

OUTPUT_FORMATS = ("native", "toolrl")
#: The routing column TRL's multi-environment mode reads (and does not pass to ``reset``).
ENV_COLUMN = "environment"
SYNTHETIC_SOURCE = "synthetic_world"


@dataclass
class MultiTurnDataConfig:
    """Where the executed tasks come from and how prompts are written (recipe keys of ``recipes/grpo_multiturn.py``)."""

    task_source: str = field(
        default=SYNTHETIC_SOURCE,
        metadata={
            "help": "Tasks to train on: 'synthetic_world' (the seeded executable world, toolrl_trl.envs.world), a "
            "registered task source (toolrl_trl.envs.base.TASK_SOURCES), or a JSON/JSONL file of rows of the "
            "environment protocol (prompt, task, optional env_name; see toolrl_trl/envs/base.py)."
        },
    )
    task_test_source: str | None = field(
        default=None,
        metadata={
            "help": "Optional file of evaluation rows (same shape as task_source files). null: the synthetic world's "
            "unseen-prompt tasks (task_source synthetic_world) or no evaluation rows (a file source)."
        },
    )
    output_format: str = field(
        default="native",
        metadata={
            "help": "How the model writes calls. 'native': its chat template's own tool calls (Qwen2.5: <tool_call> "
            "JSON with arguments; Llama 3.x: one JSON call per turn), parsed by TRL's response template. 'toolrl': "
            "the paper's grammar (<think>, one JSON call per line with parameters, <response>), parsed by this "
            "project's response template (toolrl_trl.envs.multiturn). Qwen-style templates only for 'toolrl'.",
            "choices": list(OUTPUT_FORMATS),
        },
    )
    dataset_seed: int = field(
        default=0,
        metadata={"help": "Seed of the synthetic world's tasks (worlds, requests, held-out tools, distractors)."},
    )
    world_chains: str = field(
        default="all",
        metadata={
            "help": "Synthetic world: which task chains to draw, comma-separated names, 'all' or 'two_step' (see "
            "toolrl_trl.envs.world.CHAINS: 2-4 dependent calls each)."
        },
    )
    world_train_size: int = field(default=4000, metadata={"help": "Synthetic world: number of training tasks."})
    world_test_size: int = field(
        default=64, metadata={"help": "Synthetic world: number of evaluation tasks (unseen prompts, seen tools)."}
    )
    world_held_out_tools: float = field(
        default=0,
        metadata={
            "help": "Synthetic world: tools never listed in a training prompt, as a count (>= 1) or a fraction (< 1); "
            "their tasks form the unseen-tools evaluation split."
        },
    )
    world_distractors: int = field(
        default=1, metadata={"help": "Synthetic world: training tools listed in a prompt besides the task's own."}
    )

    def __post_init__(self) -> None:
        if self.output_format not in OUTPUT_FORMATS:
            raise ValueError(f"output_format={self.output_format!r} is not valid; valid: {', '.join(OUTPUT_FORMATS)}")
        for name in ("world_train_size", "world_test_size", "world_distractors"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        from toolrl_trl.envs import TASK_SOURCES  # importing the package registers every environment and source

        for name in ("task_source", "task_test_source"):
            value = getattr(self, name)
            if (
                value is not None
                and value != SYNTHETIC_SOURCE
                and value not in TASK_SOURCES
                and not Path(value).is_file()
            ):
                raise ValueError(
                    f"{name}={value!r} is neither a registered task source ({', '.join([SYNTHETIC_SOURCE, *TASK_SOURCES])}) "
                    "nor a file"
                )
        if self.task_source == SYNTHETIC_SOURCE:
            from toolrl_trl.envs import world

            world.parse_chains(self.world_chains)
            world.select_held_out_tools(self.world_held_out_tools, self.dataset_seed)


# ---------------------------------------------------------------------------------------------------------------------
# Rows
# ---------------------------------------------------------------------------------------------------------------------


def synthetic_generator(config: MultiTurnDataConfig):
    """The world generator the data options describe."""
    from toolrl_trl.envs.world import WorldGenerator

    return WorldGenerator(
        seed=config.dataset_seed,
        chains=config.world_chains,
        distractors=config.world_distractors,
        held_out_tools=config.world_held_out_tools,
    )


def read_rows(path: str) -> list[dict[str, Any]]:
    """Protocol rows from a JSON list or JSON-lines file; each row is checked (prompt, task, known environment)."""
    from toolrl_trl.cli import UserError

    file = Path(path)
    if not file.is_file():
        raise UserError(f"task source {path!r} is neither a registered task source nor a file")
    text = file.read_text(encoding="utf-8")
    try:
        rows = (
            json.loads(text)
            if text.lstrip().startswith("[")
            else [json.loads(line) for line in text.splitlines() if line.strip()]
        )
    except json.JSONDecodeError as err:
        raise UserError(f"{path}: not JSON or JSON lines ({err})") from None
    for index, row in enumerate(rows):
        check_row(row, f"{path} row {index}")
    return rows


def check_row(row: Any, where: str) -> None:
    """A row of the protocol, or a one-line :class:`~toolrl_trl.cli.UserError` naming what is wrong."""
    from toolrl_trl.cli import UserError

    if not isinstance(row, dict) or not isinstance(row.get("prompt"), list) or "task" not in row:
        raise UserError(f"{where}: a row needs 'prompt' (chat messages) and 'task' (see toolrl_trl/envs/base.py)")
    try:
        task = parse_task(row["task"])
        get_environment(task["env"])
    except (TaskError, KeyError) as err:
        raise UserError(f"{where}: {err.args[0] if err.args else err}") from None
    if row.get("env_name") not in (None, task["env"]):
        raise UserError(f"{where}: env_name {row['env_name']!r} differs from task['env'] {task['env']!r}")


def routed(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with ``task`` as a JSON string, ``env_name`` set and TRL's ``environment`` routing column."""
    out = []
    for row in rows:
        task = row["task"] if isinstance(row["task"], str) else json.dumps(row["task"], sort_keys=True)
        name = parse_task(task)["env"]
        out.append({"prompt": row["prompt"], "task": task, "env_name": name, ENV_COLUMN: name})
    return out


def build_rows(config: MultiTurnDataConfig) -> dict[str, list[dict[str, Any]]]:
    """``{"train": rows, "test": rows}`` of the protocol (``test`` may be empty), routed for TRL."""
    from toolrl_trl.envs.base import TASK_SOURCES

    if config.task_source == SYNTHETIC_SOURCE:
        generator = synthetic_generator(config)
        train = [t.row(config.output_format) for t in generator.tasks("train", config.world_train_size)]
        test = [t.row(config.output_format) for t in generator.tasks("unseen_prompts", config.world_test_size)]
    elif config.task_source in TASK_SOURCES:
        train = TASK_SOURCES[config.task_source]("train", config)
        test = TASK_SOURCES[config.task_source]("test", config)
    else:
        train, test = read_rows(config.task_source), []
    if config.task_test_source is not None:
        test = read_rows(config.task_test_source)
    return {"train": routed(train), "test": routed(test)}


def environment_factories(rows: Sequence[dict[str, Any]]) -> dict[str, type]:
    """``{name: class}`` for every environment the rows name (TRL's multi-environment ``environment_factory``)."""
    return {name: get_environment(name) for name in sorted({row[ENV_COLUMN] for row in rows})}


# ---------------------------------------------------------------------------------------------------------------------
# Output formats: response templates
# ---------------------------------------------------------------------------------------------------------------------

#: The ToolRL grammar as transformers response templates, per chat-template family (start anchor and end of turn).
#: A ``<tool_call>`` block is parsed line by line: each line ``{"name": ..., "parameters": {...}}`` opens a call
#: region that the newline closes, and ``parameters`` is renamed ``arguments`` by the transform. A line that is
#: not such JSON (or lacks ``parameters``) makes the parse fail, and TRL then keeps the whole turn as text: no call
#: runs, and the format reward sees the markup left in the text.
_TOOLRL_CALLS = {
    "open_pattern": r"(?:<tool_call>\n)?(?=\{\"name\")",
    "close_pattern": r"\n(?:</tool_call>\s*)?",
    "repeats": True,
    "content": "json",
    "transform": {"type": "function", "function": {"name": "{content.name}", "arguments": "{content.parameters}"}},
}
TOOLRL_RESPONSE_TEMPLATES: dict[str, dict[str, Any]] = {
    "qwen": {
        "defaults": {"role": "assistant"},
        "start_anchor": "<|im_start|>assistant\n",
        "fields": {
            "reasoning_content": {"open": "<think>", "close_pattern": r"</think>\s*", "content": "text"},
            "tool_calls": _TOOLRL_CALLS,
            "content": {"close_pattern": r"<\|im_end\|>\s*", "content": "text"},
        },
    },
}


def template_family(tokenizer: Any) -> str | None:
    """``qwen`` for ChatML-style templates (``<|im_start|>``), else None."""
    template = getattr(tokenizer, "chat_template", None) or ""
    return "qwen" if "<|im_start|>" in template else None


def set_response_template(tokenizer: Any, output_format: str) -> None:
    """Prepare ``tokenizer`` so TRL's tool loop parses calls in ``output_format``.

    native: left to TRL (``add_response_schema`` in ``GRPOTrainer.__init__``), which knows the templates it ships.
    toolrl: :data:`TOOLRL_RESPONSE_TEMPLATES` (TRL keeps a response template that is already set).
    """
    from toolrl_trl.cli import UserError

    if output_format == "native":
        return
    family = template_family(tokenizer)
    if family is None:
        raise UserError(
            "output_format toolrl needs a ChatML-style chat template (<|im_start|>, as Qwen2.5's) for the ToolRL "
            "response template; use output_format native with this model"
        )
    tokenizer.response_template = TOOLRL_RESPONSE_TEMPLATES[family]


def tool_schemas(env_name: str) -> list[dict[str, Any]]:
    """The JSON schemas TRL renders for an environment's tools, in TRL's order (for SFT rows' ``tools`` column)."""
    from transformers.utils import get_json_schema

    env = get_environment(env_name)()
    return [get_json_schema(getattr(env, name)) for name in env.tool_names()]


# ---------------------------------------------------------------------------------------------------------------------
# The training run
# ---------------------------------------------------------------------------------------------------------------------


def check_reward_weights(training_args: Any, reward_args: Any) -> None:
    """The weights come from the reward options; TRL's own ``reward_weights`` list would silently reorder them."""
    from toolrl_trl.configs import ConfigError

    if getattr(training_args, "reward_weights", None) is not None:
        raise ConfigError(
            "reward_weights is set: the multi-turn rewards take their weights from format_weight, correctness_weight "
            "and outcome_weight; remove reward_weights"
        )
    training_args.reward_weights = reward_args.weights


def build_trainer(
    trainer_cls: type,
    script_args,
    data_args,
    reward_args,
    training_args,
    model_args,
    rows: dict[str, list[dict[str, Any]]] | None = None,
    tokenizer: Any = None,
):
    """The GRPO trainer on executed environments (checks done, model loaded, ``throughput.ThroughputCallback``
    attached), and the checkpoint to resume from."""
    from datasets import Dataset
    from trl import get_peft_config

    from toolrl_trl import throughput
    from toolrl_trl.training import (
        check_rl_run,
        load_model,
        load_tokenizer,
        prepare_model_path,
        resolve_checkpoint,
        seed_everything,
        setup_logging,
    )
    from toolrl_trl.trajectory_rewards import get_trajectory_reward_funcs

    setup_logging(training_args)
    check_rl_run(script_args, training_args)
    check_reward_weights(training_args, reward_args)
    checkpoint = resolve_checkpoint(training_args, trainer_cls)
    seed_everything(training_args)
    prepare_model_path(script_args, model_args, training_args)
    if tokenizer is None:
        tokenizer = load_tokenizer(model_args, training_args, padding_side="left")
    set_response_template(tokenizer, data_args.output_format)
    if rows is None:
        with training_args.main_process_first(desc="building the executed tasks"):
            rows = build_rows(data_args)
    if not rows["train"]:
        from toolrl_trl.cli import UserError

        raise UserError(f"task_source {data_args.task_source!r} gave no training rows")
    eval_rows = rows["test"] if training_args.eval_strategy != "no" else []
    if training_args.eval_strategy != "no" and not eval_rows:
        from toolrl_trl.cli import UserError

        raise UserError(
            "eval_strategy is set but there are no evaluation rows: set task_test_source or eval_strategy: no"
        )
    factories = environment_factories(rows["train"] + eval_rows)
    logger.info(
        "executed tasks: %d train, %d eval, %d environment class(es); output_format %s; max_tool_calling_iterations %s",
        len(rows["train"]),
        len(eval_rows),
        len(factories),
        data_args.output_format,
        training_args.max_tool_calling_iterations,
    )
    reward_funcs = get_trajectory_reward_funcs(reward_args, training_args, data_args.output_format)
    trainer = trainer_cls(
        model=load_model(model_args, training_args),
        reward_funcs=reward_funcs,
        args=training_args,
        train_dataset=Dataset.from_list(rows["train"]),
        eval_dataset=Dataset.from_list(eval_rows) if eval_rows else None,
        processing_class=tokenizer,
        peft_config=get_peft_config(model_args),
        environment_factory=factories,
    )
    throughput.attach(trainer)
    return trainer, checkpoint


def run_grpo_multiturn(
    trainer_cls: type, script_args, data_args, reward_args, training_args, model_args
) -> dict[str, float]:
    """The body of ``recipes/grpo_multiturn.py``: build the trainer, train, save (model card included)."""
    from toolrl_trl.training import train_and_save

    trainer, checkpoint = build_trainer(trainer_cls, script_args, data_args, reward_args, training_args, model_args)
    return train_and_save(
        trainer,
        training_args,
        checkpoint,
        dataset_name=data_args.task_source,
        model_args=model_args,
        script_args=script_args,
    )


def register_task_source(name: str, build: Callable[[str, MultiTurnDataConfig], list[dict[str, Any]]]) -> None:
    """Make ``task_source: <name>`` call ``build(split, config)`` (split ``train`` or ``test``) for its rows."""
    from toolrl_trl.envs.base import TASK_SOURCES

    if name in (SYNTHETIC_SOURCE,) or (name in TASK_SOURCES and TASK_SOURCES[name] is not build):
        raise ValueError(f"task source {name!r} is already registered")
    TASK_SOURCES[name] = build
