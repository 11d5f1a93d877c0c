"""The dataclasses the recipes parse, and the parsers that combine them with TRL's.

A recipe YAML is the single source of truth; command-line flags override it. Both go through
TRL's ``TrlParser`` with unknown keys failing loudly: a misspelt YAML key (``granularty: coarse``)
or flag stops the run instead of being silently dropped.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from trl import GRPOConfig, ModelConfig, ScriptArguments, SFTConfig, TrlParser

from toolrl_trl.batching import BatchingError, compute_batching, get_world_size
from toolrl_trl.data import DataConfig
from toolrl_trl.rewards import RewardConfig

logger = logging.getLogger(__name__)

#: ``ScriptArguments`` fields that load a Hub dataset in TRL's own scripts; here the data comes from ``DataConfig``.
_UNUSED_DATASET_FIELDS = ("dataset_name", "dataset_config")


@dataclass
class ToolRLScriptArguments(ScriptArguments):
    """Script arguments shared by every ToolRL entry point.

    Data comes from ``DataConfig.data_source`` (synthetic, the paper's files, or a user file), so TRL's
    ``dataset_name``/``dataset_config`` are rejected rather than ignored.
    """

    def __post_init__(self):
        for name in _UNUSED_DATASET_FIELDS:
            if getattr(self, name) is not None:
                raise ValueError(
                    f"{name}={getattr(self, name)!r} is not used by the ToolRL recipes: the training data is chosen "
                    "with data_source (see toolrl_trl.data.DataConfig). Remove it from the YAML/command line."
                )


@dataclass
class GRPOScriptArguments(ToolRLScriptArguments):
    """The paper's batch geometry: how many prompts one generation round holds and in how many updates it is spent."""

    prompts_per_generation_round: int | None = field(
        default=512,
        metadata={
            "help": "Prompts per generation round (the reference's train_batch_size, 512). With num_generations "
            "rollouts each, one round is prompts x num_generations completions. Checked against the batch settings "
            "and the world size before the model loads; set to null to skip the check."
        },
    )
    updates_per_generation_round: int = field(
        default=4,
        metadata={
            "help": "Optimizer steps per generation round (the reference's 512 / ppo_mini_batch_size 128 = 4). "
            "Requires steps_per_generation = updates x gradient_accumulation_steps."
        },
    )
    auto_batch: bool = field(
        default=False,
        metadata={
            "help": "Compute gradient_accumulation_steps and steps_per_generation from the world size and "
            "per_device_train_batch_size so that a round is prompts_per_generation_round x num_generations "
            "completions in updates_per_generation_round optimizer steps (overrides the YAML values)."
        },
    )

    def __post_init__(self):
        super().__post_init__()
        if self.auto_batch and self.prompts_per_generation_round is None:
            raise ValueError("auto_batch needs prompts_per_generation_round; set it (the paper's value is 512).")


def make_grpo_parser() -> TrlParser:
    """Parser for GRPO entry points: script (batching targets), data, reward, GRPO and model options."""
    return TrlParser((GRPOScriptArguments, DataConfig, RewardConfig, GRPOConfig, ModelConfig))


def make_sft_parser() -> TrlParser:
    """Parser for the SFT entry point: script, data, SFT and model options."""
    return TrlParser((ToolRLScriptArguments, DataConfig, SFTConfig, ModelConfig))


def parse_args(parser: TrlParser, argv: Sequence[str] | None = None) -> tuple:
    """Parse ``--config`` YAML + flags; unknown YAML keys and unknown flags raise ``ValueError``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    return parser.parse_args_and_config(argv, fail_with_unknown_args=True)


def parse_grpo_args(argv: Sequence[str] | None = None, world_size: int | None = None) -> tuple:
    """Parse the GRPO options: ``(script_args, data_args, reward_args, training_args, model_args)``."""
    return parse_rl_args(make_grpo_parser, argv, world_size)


def parse_rl_args(
    make_parser: Callable[[], TrlParser],
    argv: Sequence[str] | None = None,
    world_size: int | None = None,
    *,
    min_generations: int = 2,
) -> tuple:
    """Parse an RL recipe (GRPO, PPO); with ``auto_batch`` re-parse with the batch settings for the world size.

    ``make_parser`` builds a parser whose dataclasses are (script args with the batching targets, data,
    reward, training config, model). Re-parsing (rather than editing the parsed config) lets the training
    config's ``__post_init__`` derive ``generation_batch_size`` and any DeepSpeed ``auto`` values from the
    final numbers. ``min_generations`` is 2 for GRPO, 1 for PPO.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parsed = parse_args(make_parser(), argv)
    script_args, training_args = parsed[0], parsed[3]
    if not script_args.auto_batch:
        return parsed
    if world_size is None:
        world_size = get_world_size()
    if "--generation_batch_size" in argv or _yaml_sets(argv, "generation_batch_size"):
        raise BatchingError(
            "auto_batch computes steps_per_generation, which TRL cannot combine with generation_batch_size: remove "
            "generation_batch_size from the YAML/command line."
        )
    plan = compute_batching(
        world_size,
        training_args.per_device_train_batch_size,
        prompts_per_round=script_args.prompts_per_generation_round,
        num_generations=training_args.num_generations,
        updates_per_round=script_args.updates_per_generation_round,
        min_generations=min_generations,
    )
    logger.info("auto_batch for world size %d: %s", world_size, plan.describe())
    overrides = [
        "--gradient_accumulation_steps",
        str(plan.gradient_accumulation_steps),
        "--steps_per_generation",
        str(plan.steps_per_generation),
    ]
    return parse_args(make_parser(), argv + overrides)


def _yaml_sets(argv: Sequence[str], key: str) -> bool:
    """Whether the ``--config`` YAML in ``argv`` sets ``key`` to a non-null value."""
    import yaml

    if "--config" not in argv:
        return False
    with open(argv[argv.index("--config") + 1]) as handle:
        config = yaml.safe_load(handle) or {}
    return config.get(key) is not None
