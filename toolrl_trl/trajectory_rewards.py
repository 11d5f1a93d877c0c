"""Rewards for executed multi-turn episodes: three TRL reward callables (format, correctness, outcome) and metrics.

An episode is what TRL's tool loop returns as one completion: the assistant turns (as ``parse_response`` parsed
them: ``content``, ``tool_calls``, ``reasoning_content``) interleaved with the tool messages it executed. The
environment instance of the episode (``environments[i]``, passed by ``GRPOTrainer``) holds its end state and its
call record. Each reward is its own callable, so TRL logs ``rewards/<name>/mean`` and the weights are configurable
(:class:`TrajectoryRewardConfig`, applied as ``GRPOConfig.reward_weights``):

``format``
    The ToolRL format rule applied to every assistant turn, then averaged: the format minimum plus (maximum -
    minimum) x the share of well-formed turns. A turn is well-formed when it parsed (no tool-call markup left in its
    text, every call a name with an argument object) and has one of the two shapes: calls (then executed), or a
    non-empty answer. The episode must end on an answer: a last turn whose calls were never executed (the iteration
    cap or the length budget stopped it) counts as malformed. With the ToolRL grammar a turn also needs its
    ``<think>`` and an answer is exactly a ``<response>`` block.
``correctness``
    The paper's fine-grained tool-call reward (:func:`toolrl_trl.rewards._tool_call_reward`: name match, parameter
    names, values; same granularities and scales) of *all* calls the episode made, in order, against the task's
    reference calls. Values are compared as TRL executed them: ``parse_response`` types arguments from the tool's
    schema (``"7"`` becomes ``7`` for an integer parameter), the same retyping the tool itself receives, and the
    reference calls are typed as the schema says, so a call is judged on the value the tool got.
``outcome``
    BFCL-style success read from the environment: 1 when ``environment.end_state()`` equals the task's
    ``reference_state`` and the final answer contains the reference answer (when the task has one), else 0. An
    episode whose tool call hung (the environment is marked stalled) scores 0.

Bad model output never raises here: an unparseable episode gets each reward's minimum. Per batch the ``outcome``
callable also logs the episode metrics of :data:`EPISODE_METRICS` through TRL's ``log_metric``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from toolrl_trl import grammar
from toolrl_trl.rewards import CORRECTNESS_SCALES, GRANULARITIES, RewardConfig, _tool_call_reward, reward_bounds

logger = logging.getLogger(__name__)

#: Reward callables in TRL order (``reward_weights`` follows it).
REWARD_NAMES = ("format", "correctness", "outcome")
#: How the final answer is checked against ``reference_answer``.
ANSWER_MATCHES = ("contains", "off")
OUTPUT_FORMATS = ("native", "toolrl")
#: Logged once per batch by the ``outcome`` callable (means over the batch's episodes).
EPISODE_METRICS = (
    "episode/turns",  # assistant turns per episode
    "episode/tool_calls",  # calls the model made per episode (executed or not)
    "episode/tool_errors",  # calls that returned a tool error, per episode
    "episode/capped",  # share of episodes that max_tool_calling_iterations ended with calls still pending
    "episode/unfinished",  # share of episodes that ended without an answer turn (cap, length budget or truncation)
    "outcome/state_match",  # end state equals the reference state
    "outcome/answer_match",  # the final answer contains the reference answer (1 when the task has none)
    "outcome/success",  # both: the outcome reward
)


def _choice(text: str, choices: Sequence[str]) -> dict[str, Any]:
    return {"help": f"{text} One of: {', '.join(choices)}.", "choices": list(choices)}


@dataclass
class TrajectoryRewardConfig:
    """The multi-turn rewards' weights and variants (recipe keys of ``recipes/grpo_multiturn.py``)."""

    format_weight: float = field(
        default=1.0, metadata={"help": "Weight of the per-turn format reward (range [0, 1]) in the summed reward."}
    )
    correctness_weight: float = field(
        default=1.0,
        metadata={"help": "Weight of the fine-grained tool-call correctness (range [-3, 3], or [-1, 1]) in the sum."},
    )
    outcome_weight: float = field(
        default=2.0,
        metadata={
            "help": "Weight of the outcome reward (1 when the end state and the final answer match the reference, "
            "else 0). Not in the paper, which never executed a tool; 2 makes a solved task worth as much as the "
            "correctness range's upper half."
        },
    )
    correctness_scale: str = field(
        default="default",
        metadata=_choice(
            "Correctness range: 'default' [-3, 3] (the paper's), 'equal_max' [-1, 1].", CORRECTNESS_SCALES
        ),
    )
    granularity: str = field(
        default="fine",
        metadata=_choice(
            "Correctness granularity (paper 5.3), applied to the episode's whole call list: 'fine', 'intermediate', "
            "'refined' or 'coarse' (see toolrl_trl.rewards.RewardConfig).",
            GRANULARITIES,
        ),
    )
    answer_match: str = field(
        default="contains",
        metadata=_choice(
            "How the outcome checks the final answer: 'contains' (the reference answer appears in the last assistant "
            "turn as a whole word, case-insensitive) or 'off' (end state only).",
            ANSWER_MATCHES,
        ),
    )

    def __post_init__(self) -> None:
        for name, choices in (
            ("correctness_scale", CORRECTNESS_SCALES),
            ("granularity", GRANULARITIES),
            ("answer_match", ANSWER_MATCHES),
        ):
            if getattr(self, name) not in choices:
                raise ValueError(f"{name}={getattr(self, name)!r} is not valid; valid: {', '.join(choices)}")
        for name in ("format_weight", "correctness_weight", "outcome_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")

    @property
    def weights(self) -> list[float]:
        """``GRPOConfig.reward_weights`` in :data:`REWARD_NAMES` order."""
        return [self.format_weight, self.correctness_weight, self.outcome_weight]

    def bounds(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """(format (min, max), correctness (min, max)) from the paper's constants (constant schedule)."""
        bounds = reward_bounds(1, RewardConfig(correctness_scale=self.correctness_scale))
        return bounds.format, bounds.correctness


# ---------------------------------------------------------------------------------------------------------------------
# Reading an episode
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Episode:
    """What the rewards need from one completion: its assistant turns and whether each one's calls ran."""

    turns: tuple[dict[str, Any], ...]
    executed: tuple[bool, ...]  # per assistant turn: followed by tool messages (its calls were executed)

    @property
    def calls(self) -> list[Any]:
        """Every call of every assistant turn, in order, as TRL parsed it (``{"name", "arguments"}``)."""
        return [call for turn in self.turns for call in _turn_calls(turn)]

    @property
    def final(self) -> dict[str, Any] | None:
        return self.turns[-1] if self.turns else None

    @property
    def finished(self) -> bool:
        """The last turn is an answer (no pending calls)."""
        return bool(self.turns) and not _turn_calls(self.final) and not self.executed[-1]


def read_episode(completion: Any) -> Episode:
    """An episode from TRL's completion (a list of messages); a plain string is one assistant turn."""
    if isinstance(completion, str):
        completion = [{"role": "assistant", "content": completion}]
    if not isinstance(completion, list):
        return Episode((), ())
    turns: list[dict[str, Any]] = []
    executed: list[bool] = []
    for message in completion:
        if not isinstance(message, dict):
            continue
        if message.get("role") == "assistant":
            turns.append(message)
            executed.append(False)
        elif message.get("role") == "tool" and executed:
            executed[-1] = True
    return Episode(tuple(turns), tuple(executed))


def _turn_calls(turn: dict[str, Any] | None) -> list[Any]:
    calls = (turn or {}).get("tool_calls") or []
    if not isinstance(calls, list):
        return [None]
    return [_plain_call(call) for call in calls]


def _plain_call(call: Any) -> Any:
    """``{"type": "function", "function": {...}}`` as ``{"name", "arguments"}``; odd shapes are kept (they fail)."""
    if isinstance(call, dict) and isinstance(call.get("function"), dict):
        return call["function"]
    return call


def _well_formed_call(call: Any) -> bool:
    return isinstance(call, dict) and isinstance(call.get("name"), str) and isinstance(call.get("arguments"), dict)


_MARKUP = (grammar.TOOL_CALL_OPEN, grammar.TOOL_CALL_CLOSE)
_RESPONSE = re.compile(r"^<response>.*?\S.*?</response>$", re.DOTALL)


def turn_well_formed(turn: dict[str, Any], *, last: bool, executed: bool, output_format: str = "native") -> bool:
    """The format rule for one assistant turn (see the module docstring)."""
    content = turn.get("content")
    content = content.strip() if isinstance(content, str) else ""
    calls = _turn_calls(turn)
    if any(tag in content for tag in _MARKUP) or not all(_well_formed_call(call) for call in calls):
        return False
    if output_format == "toolrl":
        thought = turn.get("reasoning_content")
        if not (isinstance(thought, str) and thought.strip()):
            return False
        if content and not (_RESPONSE.match(content) and content.count(grammar.RESPONSE_OPEN) == 1):
            return False
        is_answer = bool(content)
    else:
        is_answer = bool(content) and not calls
    if calls:  # a call turn is fine when its calls ran and the episode went on (it cannot be the answer)
        return executed and not last
    return is_answer


def format_score(
    episode: Episode, low: float, high: float, output_format: str = "native", needs_calls: bool = True
) -> float:
    """The format minimum plus (max - min) x the share of well-formed turns.

    As the paper's rule wants the blocks its ground truth has, an episode whose reference makes calls but that makes
    none (an answer straight away) has the wrong layout and scores the minimum; so does an empty one.
    """
    if not episode.turns or (needs_calls and not episode.calls):
        return low
    count = len(episode.turns)
    good = sum(
        turn_well_formed(turn, last=i == count - 1, executed=ran, output_format=output_format)
        for i, (turn, ran) in enumerate(zip(episode.turns, episode.executed, strict=True))
    )
    return low + (high - low) * good / count


def _as_toolrl(calls: Sequence[Any]) -> list[Any]:
    """Calls in the ToolRL shape the paper's correctness compares (``parameters``, not ``arguments``)."""
    return [
        {"name": call.get("name"), "parameters": call.get("arguments")} if isinstance(call, dict) else call
        for call in calls
    ]


def correctness_score(
    episode: Episode, reference_calls: Sequence[Any], low: float, high: float, granularity: str = "fine"
) -> float:
    """The paper's fine-grained correctness of all the episode's calls against the reference calls."""
    try:
        return _tool_call_reward(_as_toolrl(reference_calls), _as_toolrl(episode.calls), high, low, granularity)
    except (AttributeError, KeyError, TypeError):  # a call without a name or an argument object: the minimum
        return low


def final_answer_text(episode: Episode, output_format: str = "native") -> str:
    """The last turn's answer text (the ``<response>`` block's inside with the ToolRL grammar); '' if none."""
    if not episode.finished:
        return ""
    content = episode.final.get("content")
    content = content.strip() if isinstance(content, str) else ""
    if output_format == "toolrl":
        match = _RESPONSE.match(content)
        return content[len(grammar.RESPONSE_OPEN) : -len(grammar.RESPONSE_CLOSE)].strip() if match else ""
    return content


def answer_matches(answer: str, reference: str | None) -> bool:
    """Whether ``reference`` appears in ``answer`` as a whole word (case and spacing ignored); None always matches."""
    if reference is None:
        return True
    needle = " ".join(str(reference).split()).casefold()
    if not needle:
        return True
    haystack = " ".join(answer.split()).casefold()
    return re.search(rf"(?<![0-9a-z]){re.escape(needle)}(?![0-9a-z]|\.[0-9])", haystack) is not None


def _task(value: Any) -> dict[str, Any] | None:
    if isinstance(value, dict):
        return value
    try:
        task = json.loads(value)
    except (TypeError, ValueError):
        return None
    return task if isinstance(task, dict) else None


@dataclass(frozen=True)
class Outcome:
    """One episode's outcome and the numbers behind the episode metrics."""

    state_match: bool
    answer_match: bool
    tool_errors: int

    @property
    def success(self) -> bool:
        return self.state_match and self.answer_match


def episode_outcome(
    episode: Episode,
    task: dict[str, Any],
    environment: Any,
    config: TrajectoryRewardConfig,
    output_format: str = "native",
) -> Outcome:
    """The episode's outcome from its environment (end state, call record) and its final answer."""
    calls = getattr(environment, "calls", None) or []
    errors = sum(1 for call in calls if isinstance(call, dict) and call.get("error"))
    if getattr(environment, "stalled", False):
        return Outcome(False, False, errors)
    try:
        state_match = environment.end_state() == task.get("reference_state")
    except Exception as err:  # noqa: BLE001 - an environment's bug must not end training; it scores 0
        logger.warning("end_state() of %s raised %s: outcome 0", type(environment).__name__, err)
        state_match = False
    if config.answer_match == "off":
        answer_match = True
    else:
        answer_match = episode.finished and answer_matches(
            final_answer_text(episode, output_format), task.get("reference_answer")
        )
    return Outcome(state_match, answer_match, errors)


# ---------------------------------------------------------------------------------------------------------------------
# TRL reward callables
# ---------------------------------------------------------------------------------------------------------------------


def get_trajectory_reward_funcs(
    config: TrajectoryRewardConfig,
    args: Any = None,
    output_format: str = "native",
    on_episodes: Callable[[list[Episode], list[dict[str, Any] | None], list[Outcome]], None] | None = None,
) -> list[Callable[..., list[float]]]:
    """``format``, ``correctness`` and ``outcome`` for ``GRPOTrainer(reward_funcs=...)``, in :data:`REWARD_NAMES` order.

    ``args`` (the GRPO config) gives ``max_tool_calling_iterations``, to tell a capped episode from a truncated one.
    They read the dataset's ``task`` column and the ``environments`` TRL passes. ``on_episodes`` (evaluation) is
    called with each batch's episodes, parsed tasks and outcomes.
    """
    if output_format not in OUTPUT_FORMATS:
        raise ValueError(f"output_format={output_format!r} is not valid; valid: {', '.join(OUTPUT_FORMATS)}")
    (f_low, f_high), (c_low, c_high) = config.bounds()
    cap = getattr(args, "max_tool_calling_iterations", None)

    def format(completions, task=None, **kwargs) -> list[float]:  # noqa: A001 - TRL logs the function's name
        tasks = _column(task, len(completions), "task")
        scores = []
        for completion, value in zip(completions, tasks, strict=True):
            parsed = _task(value)
            needs_calls = bool(parsed.get("reference_calls")) if parsed else True
            scores.append(format_score(read_episode(completion), f_low, f_high, output_format, needs_calls))
        return scores

    def correctness(completions, task=None, **kwargs) -> list[float]:
        tasks = _column(task, len(completions), "task")
        scores = []
        for completion, value in zip(completions, tasks, strict=True):
            parsed = _task(value)
            reference = parsed.get("reference_calls") if parsed else None
            if not isinstance(reference, list):
                _warn_bad_task(value)
                scores.append(c_low)
                continue
            scores.append(correctness_score(read_episode(completion), reference, c_low, c_high, config.granularity))
        return scores

    def outcome(completions, task=None, environments=None, log_metric=None, **kwargs) -> list[float]:
        tasks = _column(task, len(completions), "task")
        if environments is None or len(environments) != len(completions):
            raise ValueError(
                "the outcome reward reads each episode's environment: run it under GRPOTrainer(environment_factory=...)"
            )
        episodes = [read_episode(c) for c in completions]
        parsed_tasks = [_task(value) for value in tasks]
        outcomes = []
        for episode, value, parsed, environment in zip(episodes, tasks, parsed_tasks, environments, strict=True):
            if parsed is None:
                _warn_bad_task(value)
                outcomes.append(Outcome(False, False, 0))
                continue
            outcomes.append(episode_outcome(episode, parsed, environment, config, output_format))
        if log_metric is not None:
            for name, value in episode_metrics(episodes, outcomes, cap).items():
                log_metric(name, value)
        if on_episodes is not None:
            on_episodes(episodes, parsed_tasks, outcomes)
        return [1.0 if o.success else 0.0 for o in outcomes]

    return [format, correctness, outcome]


def episode_metrics(episodes: Sequence[Episode], outcomes: Sequence[Outcome], cap: int | None) -> dict[str, float]:
    """Means of :data:`EPISODE_METRICS` over a batch of episodes."""
    n = max(len(episodes), 1)

    def capped(episode: Episode) -> bool:
        ran = sum(episode.executed)
        return not episode.finished and bool(_turn_calls(episode.final)) and cap is not None and ran >= cap

    return {
        "episode/turns": sum(len(e.turns) for e in episodes) / n,
        "episode/tool_calls": sum(len(e.calls) for e in episodes) / n,
        "episode/tool_errors": sum(o.tool_errors for o in outcomes) / n,
        "episode/capped": sum(capped(e) for e in episodes) / n,
        "episode/unfinished": sum(not e.finished for e in episodes) / n,
        "outcome/state_match": sum(o.state_match for o in outcomes) / n,
        "outcome/answer_match": sum(o.answer_match for o in outcomes) / n,
        "outcome/success": sum(o.success for o in outcomes) / n,
    }


def _column(values: Any, length: int, name: str) -> list[Any]:
    if values is None:
        raise ValueError(f"the multi-turn rewards need the dataset's {name!r} column (see toolrl_trl.envs.base)")
    return list(values)


_WARNED: set[str] = set()


def _warn_bad_task(value: Any) -> None:
    key = str(value)[:200]
    if key not in _WARNED:
        _WARNED.add(key)
        logger.error("a row's task is not the protocol's JSON object (scored the minimum): %.200r", value)
