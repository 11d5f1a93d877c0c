"""The dataclasses the recipes parse, the recipe files themselves, and the parsers that combine them with TRL's.

A recipe YAML is the single source of truth; command-line flags override it. A recipe may name a ``base``
recipe (a path relative to the file; chains allowed, cycles refused): the base's keys come first and the
file's own keys replace them, so the paper's settings live once in ``recipes/_base/`` and a model's file
holds only what differs. The resolved mapping is what TRL's ``TrlParser`` sees, with unknown keys failing
loudly: a misspelt key (``granularty: coarse``) or flag stops the run and names the file that set it.
``--print_config true`` prints the resolved recipe (every key, its final value and the file it came from)
and exits.
"""

from __future__ import annotations

import ast
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import yaml
from trl import GRPOConfig, ModelConfig, ScriptArguments, SFTConfig, TrlParser

from toolrl_trl.batching import BatchingError, compute_batching, get_world_size
from toolrl_trl.cli import UserError, display_path
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

    world_size: int | None = field(
        default=None,
        metadata={
            "help": "Number of training processes (GPUs) the recipe's batch settings are written for. The batch "
            "check runs against the launched world size; when that differs from this value its error says so. "
            "null: not stated."
        },
    )
    tiny_model_family: str | None = field(
        default=None,
        metadata={
            "help": "Build the tiny offline model of this family (qwen2 or llama) at model_name_or_path when that "
            "folder does not exist yet, so the tiny recipes run from any directory without make. Ignored when "
            "--model_name_or_path is given on the command line. null: never build."
        },
    )
    print_config: bool = field(
        default=False,
        metadata={
            "help": "Print the resolved recipe (the --config file merged with its base recipes and the command-line "
            "flags: every key, its final value and where it was set) as YAML, and exit."
        },
    )

    def __post_init__(self):
        if self.world_size is not None and self.world_size < 1:
            raise ValueError(f"world_size must be a positive integer (or null), got {self.world_size}.")
        if self.tiny_model_family is not None:
            from toolrl_trl.tiny import FAMILIES

            if self.tiny_model_family not in FAMILIES:
                raise ValueError(
                    f"tiny_model_family={self.tiny_model_family!r} is not a tiny model family; valid: {sorted(FAMILIES)}"
                )
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


# --------------------------------------------------------------------------------------------------------------------
# Recipe files: YAML with inheritance
# --------------------------------------------------------------------------------------------------------------------

#: The recipe key that names the base recipe(s) a file extends.
BASE_KEY = "base"


class ConfigError(UserError, ValueError):
    """The options cannot be parsed or validated as given (a bad flag, key or value): one line, exit status 2."""


class RecipeError(ConfigError):
    """A recipe file cannot be used as written (missing, unreadable, not a mapping, bad ``base``, unknown key)."""


@dataclass(frozen=True)
class Recipe:
    """A recipe file resolved through its bases: the merged mapping and, per key, the file that set it."""

    path: Path
    values: dict[str, Any]
    origins: dict[str, Path]
    #: The file first, then every base it pulled in (depth first, in the order they were read).
    chain: tuple[Path, ...]


def _read_mapping(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise RecipeError(f"{display_path(path)}: no such recipe file")
    try:
        with open(path) as handle:
            mapping = yaml.safe_load(handle)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise RecipeError(f"{display_path(path)}: not valid YAML{where}: {err.problem}") from err
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise RecipeError(f"{display_path(path)}: cannot be read ({type(err).__name__}: {err})") from err
    if mapping is None:
        return {}
    if not isinstance(mapping, dict):
        raise RecipeError(
            f"{display_path(path)}: a recipe must be a YAML mapping of option: value, got {type(mapping).__name__}"
        )
    return mapping


def load_recipe(path: str | os.PathLike[str]) -> Recipe:
    """Read a recipe and the ``base`` recipes it names (one path or a list, relative to the file; later wins).

    Merging is by top-level key: a key set in a file replaces its base's value whole (a list or mapping is not
    merged element by element), so what a file says is what the run gets.
    """
    values: dict[str, Any] = {}
    origins: dict[str, Path] = {}
    chain: list[Path] = []

    def visit(file: Path, stack: tuple[Path, ...]) -> None:
        file = file.resolve()
        if file in stack:
            cycle = " -> ".join(display_path(p) for p in (*stack, file))
            raise RecipeError(f"recipe bases form a cycle: {cycle}")
        mapping = _read_mapping(file)
        chain.append(file)
        bases = mapping.pop(BASE_KEY, None)
        if isinstance(bases, str):
            bases = [bases]
        if bases is not None and not (isinstance(bases, list) and all(isinstance(b, str) for b in bases)):
            raise RecipeError(f"{display_path(file)}: {BASE_KEY} must be a path or a list of paths, got {bases!r}")
        for base in bases or ():
            visit(file.parent / base, (*stack, file))
        for key, value in mapping.items():
            values.pop(key, None)  # re-insert so the printed order follows the most specific file
            values[key] = value
            origins[key] = file

    visit(Path(path), ())
    return Recipe(path=Path(path).resolve(), values=values, origins=origins, chain=tuple(chain))


class ToolRLParser(TrlParser):
    """``TrlParser`` whose ``--config`` recipes may extend base recipes, with errors that name the file.

    After ``parse_args_and_config`` the resolved recipe is kept in ``self.recipe`` (``None`` without
    ``--config``) and the flags given on the command line in ``self.command_line_keys``, for ``--print_config``.
    """

    recipe: Recipe | None = None
    command_line_keys: tuple[str, ...] = ()

    def parse_args_and_config(
        self,
        args: Sequence[str] | None = None,
        return_remaining_strings: bool = False,
        fail_with_unknown_args: bool = True,
        separate_remaining_strings: bool = False,
    ) -> tuple:
        args = list(sys.argv[1:] if args is None else args)
        self.command_line_keys = tuple(arg[2:].split("=", 1)[0] for arg in args if arg.startswith("--"))
        if "--config" not in args:
            return super().parse_args_and_config(
                args, return_remaining_strings, fail_with_unknown_args, separate_remaining_strings
            )
        index = args.index("--config")
        if index + 1 >= len(args):
            raise RecipeError(
                "--config needs the path of a recipe YAML, e.g. --config recipes/tiny/grpo_cold_start.yaml"
            )
        config_path = args[index + 1]
        del args[index : index + 2]
        self.command_line_keys = tuple(key for key in self.command_line_keys if key != "config")
        self.recipe = load_recipe(config_path)
        values = dict(self.recipe.values)
        env = values.pop("env", None)
        if env is not None:
            if not isinstance(env, dict):
                raise RecipeError(f"{display_path(self.recipe.origins['env'])}: env must be a mapping of NAME: value")
            for name, value in env.items():
                os.environ[str(name)] = str(value)
        known = {action.dest for action in self._actions}
        unknown = [key for key in values if key not in known]
        if unknown and fail_with_unknown_args:
            where = "; ".join(f"{key!r} (set in {display_path(self.recipe.origins[key])})" for key in unknown)
            raise RecipeError(
                f"{config_path}: unknown recipe key(s) {where}: not an option of this entry point (check the "
                "spelling; `--help` lists every option)."
            )
        config_remaining = self.set_defaults_with_config(**values)
        output = self.parse_args_into_dataclasses(args=args, return_remaining_strings=return_remaining_strings)
        if not return_remaining_strings:
            return output
        if separate_remaining_strings:
            return (*output[:-1], config_remaining, output[-1])
        return (*output[:-1], config_remaining + output[-1])


def _plain(value: Any) -> Any:
    """A parsed option value as plain YAML data (enums by value, tuples as lists)."""
    from enum import Enum

    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def render_resolved_recipe(
    parser: ToolRLParser, parsed: Sequence[Any] | None, argv: Sequence[str] = (), unvalidated: str | None = None
) -> str:
    """The recipe as the run will use it: every recipe key and command-line flag with its parsed value and origin.

    The output is itself a valid recipe (no ``base``), so ``--config`` on a saved copy reproduces the run. With
    ``parsed`` None (the configs cannot be built on this machine, e.g. a GPU recipe's bf16 on a CPU) the values are
    printed as the files and ``argv`` give them, and ``unvalidated`` says why.
    """
    recipe = parser.recipe
    given = _command_line_values(argv)
    keys = list(recipe.values) if recipe is not None else []
    keys += [key for key in parser.command_line_keys if key not in keys and key != "print_config"]
    lines = []
    if recipe is not None:
        lines.append(f"# resolved recipe: {display_path(recipe.path)}")
        lines.extend(f"#   base: {display_path(base)}" for base in recipe.chain[1:])
    if parser.command_line_keys:
        lines.append("# command-line flags: " + " ".join(f"--{key}" for key in parser.command_line_keys))
    if unvalidated:
        lines.append(f"# values as written, not validated on this machine: {unvalidated}")
    for key in keys:
        if key == "env":
            value = recipe.values["env"]
        elif parsed is None:
            value = given[key] if key in given else recipe.values[key]
        else:
            owner = next((obj for obj in parsed if hasattr(obj, key)), None)
            if owner is None:
                continue
            value = getattr(owner, key)
        origin = "command line" if key in parser.command_line_keys else display_path(recipe.origins[key])
        text = yaml.safe_dump(_plain(value), default_flow_style=True, width=1_000_000).strip()
        text = text.removesuffix("...").rstrip()  # a bare scalar is dumped as a document with an end marker
        lines.append(f"{key}: {text}  # {origin}")
    return "\n".join(lines) + "\n"


def _command_line_values(argv: Sequence[str]) -> dict[str, Any]:
    """``--key value`` pairs of ``argv`` (values read as YAML scalars, so ``true`` and ``3e-6`` keep their type)."""
    values: dict[str, Any] = {}
    for index, arg in enumerate(argv):
        if not arg.startswith("--"):
            continue
        key, _, inline = arg[2:].partition("=")
        following = argv[index + 1] if index + 1 < len(argv) else None
        raw = inline or (following if following is not None and not following.startswith("--") else "true")
        try:
            values[key] = yaml.safe_load(raw)
        except yaml.YAMLError:
            values[key] = raw
    return values


# --------------------------------------------------------------------------------------------------------------------
# Parsers and what they return
# --------------------------------------------------------------------------------------------------------------------


class RLArgs(NamedTuple):
    """What an RL entry point (GRPO, PPO) parses; unpacks positionally into ``training.run_rl``."""

    script: GRPOScriptArguments
    data: DataConfig
    reward: RewardConfig
    training: GRPOConfig
    model: ModelConfig


class SFTArgs(NamedTuple):
    """What the SFT entry point parses; unpacks positionally into ``training.run_sft``."""

    script: ToolRLScriptArguments
    data: DataConfig
    training: SFTConfig
    model: ModelConfig


def make_grpo_parser() -> ToolRLParser:
    """Parser for GRPO entry points: script (batching targets), data, reward, GRPO and model options."""
    from toolrl_trl.grpo import ToolRLGRPOConfig  # GRPOConfig + kl_reward_coef (the paper's in-reward KL)

    return ToolRLParser((GRPOScriptArguments, DataConfig, RewardConfig, ToolRLGRPOConfig, ModelConfig))


def make_sft_parser() -> ToolRLParser:
    """Parser for the SFT entry point: script, data, SFT and model options."""
    return ToolRLParser((ToolRLScriptArguments, DataConfig, SFTConfig, ModelConfig))


def make_ppo_parser() -> ToolRLParser:
    """Parser for PPO entry points: the GRPO recipe's script, data and reward options, ``PPOConfig``, ``ModelConfig``."""
    from toolrl_trl.ppo import PPOConfig  # torch-heavy; only PPO runs pay for it

    return ToolRLParser((GRPOScriptArguments, DataConfig, RewardConfig, PPOConfig, ModelConfig))


def make_grpo_multiturn_parser() -> ToolRLParser:
    """Parser for executed multi-turn GRPO: script (batching targets), task data, trajectory rewards, GRPO, model."""
    from toolrl_trl.envs.multiturn import MultiTurnDataConfig
    from toolrl_trl.grpo import ToolRLGRPOConfig
    from toolrl_trl.trajectory_rewards import TrajectoryRewardConfig

    return ToolRLParser(
        (GRPOScriptArguments, MultiTurnDataConfig, TrajectoryRewardConfig, ToolRLGRPOConfig, ModelConfig)
    )


def parse_args(parser: ToolRLParser, argv: Sequence[str] | None = None) -> tuple:
    """Parse ``--config`` recipe + flags; unknown keys and flags raise ``ValueError``.

    With ``--print_config true`` the resolved recipe is written to stdout and the process exits (status 0).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parsed = parser.parse_args_and_config(argv, fail_with_unknown_args=True)
    except UserError:
        raise
    except (ValueError, TypeError) as err:
        # Raised while building the configs from the user's values: the dataclasses' own validation (TRL's and
        # this project's), an unknown flag, a value of the wrong type.
        misspelt = str(err).startswith(_UNUSED_FLAGS)
        if parser.recipe is not None and not misspelt and _command_line_values(argv).get("print_config") is True:
            # Inspecting a recipe must work where it cannot run (a GPU recipe on a laptop): print it as written.
            sys.stdout.write(render_resolved_recipe(parser, None, argv, unvalidated=_explain(err)))
            sys.stdout.flush()
            raise SystemExit(0) from None
        raise ConfigError(_explain(err)) from err
    if "model_name_or_path" in parser.command_line_keys and getattr(parsed[0], "tiny_model_family", None):
        parsed[0].tiny_model_family = None  # the user's own model: never build a tiny one in its place
    if getattr(parsed[0], "print_config", False):
        sys.stdout.write(render_resolved_recipe(parser, parsed, argv))
        sys.stdout.flush()
        raise SystemExit(0)
    return parsed


#: Hints for validation messages from TRL/transformers whose fix is not in the message itself.
_HINTS = {
    "doesn't support bf16": "this machine has no GPU: pass --bf16 false --use_cpu true, or run a tiny recipe "
    "(recipes/tiny/), which is sized for a CPU",
}
_UNUSED_FLAGS = "Some specified arguments are not used by the HfArgumentParser: "


def _explain(err: Exception) -> str:
    """The validation error's message on one line, with the fix where TRL's or transformers' message lacks it."""
    message = " ".join(str(err).split())
    if message.startswith(_UNUSED_FLAGS):
        flags = [item for item in ast.literal_eval(message[len(_UNUSED_FLAGS) :]) if item.startswith("--")]
        return (
            f"unknown flag(s) {' '.join(flags)}: not an option of this entry point (check the spelling; --help lists "
            "every option)"
        )
    for needle, hint in _HINTS.items():
        if needle in message:
            return f"{message} ({hint})"
    return message


def parse_sft_args(argv: Sequence[str] | None = None) -> SFTArgs:
    """Parse the SFT options: ``(script, data, training, model)``."""
    return SFTArgs(*parse_args(make_sft_parser(), argv))


def parse_grpo_args(argv: Sequence[str] | None = None, world_size: int | None = None) -> RLArgs:
    """Parse the GRPO options: ``(script, data, reward, training, model)``."""
    return parse_rl_args(make_grpo_parser, argv, world_size)


def parse_grpo_multiturn_args(argv: Sequence[str] | None = None, world_size: int | None = None) -> RLArgs:
    """Parse the executed multi-turn GRPO options: ``(script, data, reward, training, model)`` (data and reward are
    ``MultiTurnDataConfig`` and ``TrajectoryRewardConfig``)."""
    return parse_rl_args(make_grpo_multiturn_parser, argv, world_size)


def parse_ppo_args(argv: Sequence[str] | None = None, world_size: int | None = None) -> RLArgs:
    """Parse the PPO options like ``parse_grpo_args`` (one rollout per prompt is allowed)."""
    return parse_rl_args(make_ppo_parser, argv, world_size, min_generations=1)


def parse_rl_args(
    make_parser: Callable[[], ToolRLParser],
    argv: Sequence[str] | None = None,
    world_size: int | None = None,
    *,
    min_generations: int = 2,
) -> RLArgs:
    """Parse an RL recipe (GRPO, PPO); with ``auto_batch`` re-parse with the batch settings for the world size.

    ``make_parser`` builds a parser whose dataclasses are (script args with the batching targets, data,
    reward, training config, model). Re-parsing (rather than editing the parsed config) lets the training
    config's ``__post_init__`` derive ``generation_batch_size`` and any DeepSpeed ``auto`` values from the
    final numbers. ``min_generations`` is 2 for GRPO, 1 for PPO.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = make_parser()
    parsed = RLArgs(*parse_args(parser, argv))
    if not parsed.script.auto_batch:
        return parsed
    if world_size is None:
        world_size = get_world_size()
    recipe_sets_generation_batch = (
        parser.recipe is not None and parser.recipe.values.get("generation_batch_size") is not None
    )
    if "--generation_batch_size" in argv or recipe_sets_generation_batch:
        raise BatchingError(
            "auto_batch computes steps_per_generation, which TRL cannot combine with generation_batch_size: remove "
            "generation_batch_size from the recipe/command line."
        )
    plan = compute_batching(
        world_size,
        parsed.training.per_device_train_batch_size,
        prompts_per_round=parsed.script.prompts_per_generation_round,
        num_generations=parsed.training.num_generations,
        updates_per_round=parsed.script.updates_per_generation_round,
        min_generations=min_generations,
    )
    logger.info("auto_batch for world size %d: %s", world_size, plan.describe())
    overrides = [
        "--gradient_accumulation_steps",
        str(plan.gradient_accumulation_steps),
        "--steps_per_generation",
        str(plan.steps_per_generation),
    ]
    return RLArgs(*parse_args(make_parser(), argv + overrides))
