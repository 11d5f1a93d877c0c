"""The ToolRL reward (format + tool-call correctness [+ length]) and its TRL reward callables.

The numbers reproduce the paper's released reward code (``verl/utils/reward_score/rlla.py``)
exactly, as ``/work/shared/docs/reward-spec.md`` specifies them. The reference's *laziness*
is kept on purpose: it only fails (and so gives the correctness minimum) where it actually
indexes something, e.g. a predicted call without ``"parameters"`` costs nothing unless it
shares a name with a ground-truth call. Reordering those lookups would change scores.

Variants of the paper's section 5 are fields of :class:`RewardConfig` (never environment
variables). :func:`score` scores one completion; :func:`get_reward_funcs` returns the callables
``GRPOTrainer(reward_funcs=...)`` expects, named ``format``, ``correctness`` and (optionally)
``length`` so TRL logs ``rewards/format/mean`` etc., plus the ``tool_call/*`` diagnostics of
:data:`METRIC_NAMES` through TRL's ``log_metric``.

Ground truths are data: a ground truth whose tool-call block is not JSON is rejected at load
time by the data module (``grammar.parse_ground_truth_calls``). Should one still reach the reward,
training must not die on it, so the reward logs an error once per distinct ground truth and
gives the correctness minimum (the reference would have crashed).
"""

from __future__ import annotations

import functools
import logging
import operator
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from toolrl_trl import grammar

logger = logging.getLogger(__name__)

CORRECTNESS_SCALES = ("default", "equal_max")
SCALE_SCHEDULES = ("constant", "two_stage", "smooth")
GRANULARITIES = ("fine", "intermediate", "refined", "coarse")
LENGTH_REWARDS = ("off", "fixed", "scheduled")

#: Diagnostics the ``correctness`` callable logs once per call (see :func:`get_reward_funcs` for definitions).
METRIC_NAMES = (
    "tool_call/name_match",
    "tool_call/param_name_match",
    "tool_call/param_value_match",
    "tool_call/exact_match",
    "tool_call/parse_failure",
)

# The reference's fixed constants (rlla.py): base bounds, two-stage divisors, smooth-schedule anchors and clamps.
_FORMAT_MAX, _FORMAT_MIN = 1.0, 0.0
_CORRECTNESS_BOUNDS = {"default": (3.0, -3.0), "equal_max": (1.0, -1.0)}
_TWO_STAGE_CORRECTNESS_DIVISOR, _TWO_STAGE_FORMAT_DIVISOR = 3, 2
_SMOOTH_START, _SMOOTH_FORMAT_FLOOR, _SMOOTH_FORMAT_CAP = 2, 1.0, -1.0
_SMOOTH_CORRECTNESS_CAP, _SMOOTH_CORRECTNESS_FLOOR = 3.0, -3.0

# The format table of reward-spec.md: (ground truth has <tool_call>, has <response>) -> regex and exact tag counts.
_FORMAT_RULES: dict[tuple[bool, bool], tuple[re.Pattern[str], tuple[str, ...]]] = {
    (False, True): (
        re.compile(r"^<think>.*?</think>\n<response>.*?</response>$", re.DOTALL),
        (grammar.RESPONSE_OPEN, grammar.RESPONSE_CLOSE),
    ),
    (True, False): (
        re.compile(r"^<think>.*?</think>\n<tool_call>\n.*?\n</tool_call>$", re.DOTALL),
        (grammar.TOOL_CALL_OPEN, grammar.TOOL_CALL_CLOSE),
    ),
    (True, True): (
        re.compile(r"^<think>.*?</think>\n<tool_call>\n.*?\n</tool_call>\n<response>.*?</response>$", re.DOTALL),
        (grammar.TOOL_CALL_OPEN, grammar.TOOL_CALL_CLOSE, grammar.RESPONSE_OPEN, grammar.RESPONSE_CLOSE),
    ),
    (False, False): (re.compile(r"^<think>.*?</think>$", re.DOTALL), ()),
}


_LOGGED: set[str] = set()


def _log_once(key: str, level: int, message: str, *args: Any) -> None:
    """Log a message once per process: a bad row repeats every epoch and would flood the training log."""
    if key not in _LOGGED:
        _LOGGED.add(key)
        logger.log(level, message, *args)


def _choice_help(text: str, choices: Sequence[str]) -> dict[str, Any]:
    return {"help": f"{text} One of: {', '.join(choices)}.", "choices": list(choices)}


@dataclass(frozen=True)
class RewardConfig:
    """Which ToolRL reward variant to compute (paper section 5); parsed by ``TrlParser`` beside ``GRPOConfig``."""

    correctness_scale: str = field(
        default="default",
        metadata=_choice_help(
            "Correctness reward range (paper 5.2): 'default' is [-3, 3]; 'equal_max' is [-1, 1], the same maximum "
            "as the format reward.",
            CORRECTNESS_SCALES,
        ),
    )
    scale_schedule: str = field(
        default="constant",
        metadata=_choice_help(
            "Reward-scale schedule over generation rounds (paper 5.2): 'constant'; 'two_stage' divides the "
            "correctness bounds by 3 before `two_stage_switch_step` and halves the format bounds from it on; "
            "'smooth' moves format from [-2, 2] to [-1, 1] and correctness from [-2, 2] towards [-3, 3] "
            "over `smooth_schedule_steps` (the reference's clamps apply).",
            SCALE_SCHEDULES,
        ),
    )
    granularity: str = field(
        default="fine",
        metadata=_choice_help(
            "Correctness granularity (paper 5.3): 'fine' (names, parameter names and values all earn partial "
            "credit); 'intermediate' (a call earns credit only if it equals a ground-truth call); 'refined' "
            "(name lists and parameter-name lists must match exactly to earn credit); 'coarse' (only an exact "
            "match of the whole call list earns anything).",
            GRANULARITIES,
        ),
    )
    length_reward: str = field(
        default="off",
        metadata=_choice_help(
            "Thought-length reward in [0, 1] (paper 5.1): 'off'; 'fixed' (think words / "
            "`length_target_words`); 'scheduled' (target grows linearly from `length_schedule_start_words` to "
            "`length_schedule_end_words` over `length_schedule_steps` rounds, and keeps growing after).",
            LENGTH_REWARDS,
        ),
    )
    two_stage_switch_step: int = field(
        default=30,
        metadata={"help": "First generation round of the second stage of scale_schedule='two_stage' (paper: 30)."},
    )
    smooth_schedule_steps: int = field(
        default=150,
        metadata={"help": "Horizon in generation rounds of scale_schedule='smooth' (paper: 150)."},
    )
    length_target_words: int = field(
        default=512,
        metadata={"help": "Think words that earn the full length reward with length_reward='fixed' (paper: 512)."},
    )
    length_schedule_start_words: int = field(
        default=384,
        metadata={"help": "Target think words at round 0 with length_reward='scheduled' (paper: 384)."},
    )
    length_schedule_end_words: int = field(
        default=640,
        metadata={
            "help": "Target think words at round `length_schedule_steps` with length_reward='scheduled' (paper: 640)."
        },
    )
    length_schedule_steps: int = field(
        default=105,
        metadata={"help": "Rounds over which the scheduled length target grows from start to end (paper: 105)."},
    )

    def __post_init__(self) -> None:
        for name, choices in (
            ("correctness_scale", CORRECTNESS_SCALES),
            ("scale_schedule", SCALE_SCHEDULES),
            ("granularity", GRANULARITIES),
            ("length_reward", LENGTH_REWARDS),
        ):
            value = getattr(self, name)
            if value not in choices:
                raise ValueError(f"RewardConfig.{name}={value!r} is not valid; valid values: {', '.join(choices)}")
        for name in (
            "two_stage_switch_step",
            "smooth_schedule_steps",
            "length_target_words",
            "length_schedule_start_words",
            "length_schedule_steps",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"RewardConfig.{name} must be a positive number, got {getattr(self, name)!r}")
        if self.length_schedule_end_words < self.length_schedule_start_words:
            # A shrinking target reaches zero words and divides by zero (or goes negative) after enough rounds.
            raise ValueError(
                f"RewardConfig.length_schedule_end_words ({self.length_schedule_end_words}) must be >= "
                f"length_schedule_start_words ({self.length_schedule_start_words})"
            )
        if self.correctness_scale == "equal_max" and self.scale_schedule == "smooth":
            _log_once(
                "equal-max-smooth",
                logging.WARNING,
                "correctness_scale='equal_max' with scale_schedule='smooth' follows the reference formulas: the "
                "correctness maximum falls below 1 after %d rounds and below the minimum after %d rounds.",
                self.smooth_schedule_steps,
                2 * self.smooth_schedule_steps,
            )


@dataclass(frozen=True)
class RewardScore:
    """One completion's reward components and their sum (``total = format + correctness + length``)."""

    format: float
    correctness: float
    length: float
    total: float


@dataclass(frozen=True)
class RewardBounds:
    """The (minimum, maximum) of each component at one step: what the schedules make of the base ranges."""

    format: tuple[float, float]
    correctness: tuple[float, float]
    length: tuple[float, float]


def reward_bounds(step: int, config: RewardConfig) -> RewardBounds:
    """Each component's (min, max) at ``step``, computed with the reference's exact float expressions.

    With ``equal_max`` + ``smooth`` the correctness "max" drops below the "min" after twice the smooth
    horizon (the reference does the same); the correctness reward still lies between the two.
    """
    f_max, f_min = _FORMAT_MAX, _FORMAT_MIN
    c_max, c_min = _CORRECTNESS_BOUNDS[config.correctness_scale]
    if config.scale_schedule == "two_stage":
        if step < config.two_stage_switch_step:
            c_max, c_min = c_max / _TWO_STAGE_CORRECTNESS_DIVISOR, c_min / _TWO_STAGE_CORRECTNESS_DIVISOR
        else:
            f_max, f_min = f_max / _TWO_STAGE_FORMAT_DIVISOR, f_min / _TWO_STAGE_FORMAT_DIVISOR
    elif config.scale_schedule == "smooth":
        horizon = config.smooth_schedule_steps
        f_max = _SMOOTH_START - (_SMOOTH_START - f_max) * step / horizon
        f_min = -_SMOOTH_START + (_SMOOTH_START + f_min) * step / horizon
        f_max = max(f_max, _SMOOTH_FORMAT_FLOOR)
        f_min = min(f_min, _SMOOTH_FORMAT_CAP)
        c_max = (c_max - _SMOOTH_START) * step / horizon + _SMOOTH_START
        c_min = (c_min + _SMOOTH_START) * step / horizon - _SMOOTH_START
        c_max = min(c_max, _SMOOTH_CORRECTNESS_CAP)
        c_min = max(c_min, _SMOOTH_CORRECTNESS_FLOOR)
    length = (0.0, 1.0) if config.length_reward != "off" else (0.0, 0.0)
    return RewardBounds(format=(f_min, f_max), correctness=(c_min, c_max), length=length)


# ---------------------------------------------------------------------------------------------------------------------
# Ground truths: parsed once per distinct string
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _GroundTruth:
    has_tool_call: bool
    has_response: bool
    calls: list[Any] | None  # None when there is no <tool_call>, or when it could not be parsed (see ``error``)
    error: str | None = None


@functools.lru_cache(maxsize=4096)
def _parse_ground_truth(ground_truth: str) -> _GroundTruth:
    """Read the ground truth as the reference does (``json.loads`` per line, no shape check); cached.

    A GRPO batch shares one ground truth across its rollouts, so parsing once per string saves
    ``num_generations - 1`` parses per prompt. The parsed calls are shared: never mutate them.
    """
    has_tool_call = grammar.TOOL_CALL_OPEN in ground_truth
    has_response = grammar.RESPONSE_OPEN in ground_truth
    if not has_tool_call:
        return _GroundTruth(False, has_response, None)
    block = grammar.extract_tool_call_block(ground_truth)
    error = None
    if block is None:
        error = f"{grammar.TOOL_CALL_OPEN} is never closed with {grammar.TOOL_CALL_CLOSE}"
    else:
        try:
            return _GroundTruth(True, has_response, grammar.parse_tool_call_lines(block))
        except Exception as err:  # JSONDecodeError, RecursionError, int-size limits...
            error = f"its tool-call block is not one JSON value per line ({type(err).__name__}: {err})"
    logger.error(
        "Unusable ground truth: %s. Its rollouts get the correctness minimum; the data loader should have rejected "
        "it (grammar.parse_ground_truth_calls). Ground truth: %s",
        error,
        ground_truth if len(ground_truth) <= 300 else ground_truth[:297] + "...",
    )
    return _GroundTruth(True, has_response, None, error)


_INVALID_GROUND_TRUTH = _GroundTruth(False, False, None, "not a string")


def _ground_truth(ground_truth: Any) -> _GroundTruth:
    if isinstance(ground_truth, str):
        return _parse_ground_truth(ground_truth)
    _log_once(
        f"gt-type-{type(ground_truth).__name__}",
        logging.ERROR,
        "A ground truth is a %s, not a string: its rollouts get the minimum format and correctness rewards.",
        type(ground_truth).__name__,
    )
    return _INVALID_GROUND_TRUTH


# ---------------------------------------------------------------------------------------------------------------------
# The three components (reference semantics)
# ---------------------------------------------------------------------------------------------------------------------


def _format_reward(text: str | None, gt: _GroundTruth, low: float, high: float) -> float:
    if text is None or gt is _INVALID_GROUND_TRUTH:
        return low
    pattern, tags = _FORMAT_RULES[(gt.has_tool_call, gt.has_response)]
    # The exact tag counts are checked first: same result as the reference (regex AND counts), and it bounds the
    # regex's backtracking to one candidate per tag, so adversarial text cannot make it quadratic.
    if any(text.count(tag) != 1 for tag in tags):
        return low
    return high if pattern.search(text) else low


def _native_format_reward(text: str | None, gt: _GroundTruth, low: float, high: float, family: Any) -> float:
    """The native format rule: the completion parses as ``family``'s template writes a turn, with calls and/or text
    exactly where the ground truth has them (and the thought where the family carries one)."""
    if text is None or gt is _INVALID_GROUND_TRUTH:
        return low
    try:
        turn = grammar.parse_native_turn(text, family)
    except grammar.GrammarError:
        return low
    layout_ok = (
        (turn.think is not None) == family.thinks
        and bool(turn.tool_calls) == gt.has_tool_call
        and bool(turn.content) == gt.has_response
    )
    return high if layout_ok else low


def match_score(first: list[Any], second: list[Any], *, strict: bool = False) -> float:
    """The reference's list similarity: 1.0 if equal, else multiset intersection over union (order ignored).

    ``strict`` is the "refined" granularity: anything but equality scores 0.0. Raises ``TypeError``
    for unhashable items (as the reference does), which the correctness reward turns into its minimum.
    """
    if first == second:
        return 1.0
    if strict:
        return 0.0
    if not first or not second:
        return 0.0
    count1, count2 = Counter(first), Counter(second)
    intersection = sum(min(count1[k], count2[k]) for k in count1.keys() & count2.keys())
    max_possible = len(first) + len(second) - intersection
    return intersection / max_possible if max_possible > 0 else 0.0


def _param_name_score(gt_params: Any, pred_params: Any, strict: bool) -> float:
    """``match_score`` of two calls' parameter names (``AttributeError`` unless both are dicts, as in the reference).

    Keys of a JSON object are unique strings, so the multiset intersection is the set intersection:
    same value as :func:`match_score`, several times cheaper (this runs once per same-name candidate).
    """
    gt_keys, pred_keys = list(gt_params.keys()), list(pred_params.keys())
    if gt_keys == pred_keys:
        return 1.0
    if strict or not gt_keys or not pred_keys:
        return 0.0
    intersection = len(gt_params.keys() & pred_params.keys())
    return intersection / (len(gt_keys) + len(pred_keys) - intersection)


def _tool_call_reward(gt_calls: list[Any], pred_calls: list[Any], high: float, low: float, granularity: str) -> float:
    """``compute_tool_call_reward`` of the reference, statement for statement (it may raise: the caller maps to min).

    Every lookup the reference makes is made here too, in the same order, so the same inputs raise.
    """
    if gt_calls == pred_calls:
        return high
    if granularity == "coarse":
        return low
    strict = granularity == "refined"
    intermediate = granularity == "intermediate"
    gt_names = [call["name"] for call in gt_calls]
    pred_names = [call["name"] for call in pred_calls]
    score = match_score(gt_names, pred_names, strict=strict)
    local_max = 1.0
    used: set[int] = set()
    for gt_call in gt_calls:
        gt_name = gt_call["name"]
        gt_params = gt_call["parameters"]
        local_max += 1.0 if intermediate else 1.0 + len(gt_params)
        best, best_score, best_index = None, 0.0, -1
        for index, pred_call in enumerate(pred_calls):
            if index in used or pred_names[index] != gt_name:
                continue
            if intermediate:
                if gt_call == pred_call:
                    best, best_index, best_score = pred_call, index, 1.0
                    break
                continue
            pred_params = pred_call["parameters"]  # only read for same-name candidates, as in the reference
            param_score = _param_name_score(gt_params, pred_params, strict)
            correct = sum(1.0 for k, v in gt_params.items() if k in pred_params and pred_params[k] == v)
            total = param_score + correct
            if total > best_score:
                best_score, best, best_index = total, pred_call, index
        if best:  # the reference's truthiness test (a matched call is a non-empty dict)
            used.add(best_index)
            score += best_score
    return (high - low) * score / local_max + low


def _predicted_calls(text: str | None) -> list[Any] | None:
    """The completion's calls, extracted and parsed as the reference does; None when that fails."""
    if text is None:
        return None
    block = grammar.extract_tool_call_block(text)
    if block is None:
        return None
    try:
        return grammar.parse_tool_call_lines(block)
    except Exception:  # JSONDecodeError, RecursionError, int-size limits...
        return None


def _predicted_native_calls(text: str | None, family: Any) -> list[Any] | None:
    """A native completion's calls in the paper's shape (``parameters``); None when it does not parse or has none,
    as the paper's code gives None for a completion without a ``<tool_call>`` block."""
    if text is None:
        return None
    try:
        calls = grammar.parse_native_turn(text, family).toolrl_calls()
    except grammar.GrammarError:
        return None
    return calls or None


def _correctness_reward(
    pred_calls: list[Any] | None, gt: _GroundTruth, low: float, high: float, granularity: str
) -> float:
    if gt is _INVALID_GROUND_TRUTH:
        return low
    if not gt.has_tool_call:
        return 0.0
    if gt.calls is None or pred_calls is None:
        return low
    try:
        return _tool_call_reward(gt.calls, pred_calls, high, low, granularity)
    except Exception:  # the reference's bare except: any malformed call gives the minimum
        return low


def _length_reward(text: str | None, step: int, config: RewardConfig) -> float:
    if config.length_reward == "off" or text is None:
        return 0.0
    if grammar.THINK_OPEN not in text or grammar.THINK_CLOSE not in text:
        return 0.0
    if config.length_reward == "scheduled":
        start, end = config.length_schedule_start_words, config.length_schedule_end_words
        target = (end - start) * step / config.length_schedule_steps + start
    else:
        target = config.length_target_words
    # == text.split("<think>")[-1].split("</think>")[0], without building a list per tag.
    thought = text.rsplit(grammar.THINK_OPEN, 1)[-1].split(grammar.THINK_CLOSE, 1)[0].strip()
    reward = round(len(thought.split()) / target, 2)
    return min(reward, 1.0)


def _check_step(step: Any) -> int:
    try:
        value = operator.index(step)  # ints, numpy ints
    except TypeError:
        value = None
    if isinstance(step, bool) or value is None or value < 0:
        raise ValueError(f"step must be a non-negative int (the generation round, first round = 1), got {step!r}")
    return value


def score(
    completion: str,
    ground_truth: str,
    step: int = 1,
    config: RewardConfig = RewardConfig(),
    native_family: grammar.NativeFamily | None = None,
) -> RewardScore:
    """Score one completion against its ground truth at schedule ``step`` (the generation round, from 1).

    ``native_family`` (``grammar.NATIVE_FAMILIES[...]``) scores a completion written in that chat template
    (output_format native) with the same correctness rules; None is the paper's grammar. The ground truth is
    in the paper's grammar either way. Never raises on a bad completion (non-string, huge, malformed
    JSON...): it scores the minimum. An unusable ground truth is logged once and gives the minimum.
    """
    step = _check_step(step)
    bounds = reward_bounds(step, config)
    text = completion.strip() if isinstance(completion, str) else None
    gt = _ground_truth(ground_truth)
    if native_family is None:
        fmt = _format_reward(text, gt, *bounds.format)
        pred_calls = _predicted_calls(text)
    else:
        fmt = _native_format_reward(text, gt, *bounds.format, native_family)
        pred_calls = _predicted_native_calls(text, native_family)
    correctness = _correctness_reward(pred_calls, gt, *bounds.correctness, config.granularity)
    length = _length_reward(text, step, config)
    return RewardScore(format=fmt, correctness=correctness, length=length, total=fmt + correctness + length)


# ---------------------------------------------------------------------------------------------------------------------
# Diagnostics (independent of the variant: always the fine-grained matching)
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _CallDiagnostics:
    name_match: float
    param_name_match: float
    param_values_correct: int
    param_values_total: int
    exact_match: float
    parse_failure: float


def _diag_name(call: Any) -> Any:
    name = call.get("name") if isinstance(call, dict) else None
    return name if isinstance(name, str) else object()  # a missing or odd name matches nothing


def _diag_params(call: Any) -> dict[str, Any]:
    params = call.get("parameters") if isinstance(call, dict) else None
    return params if isinstance(params, dict) else {}


def _diagnose(pred_calls: list[Any] | None, gt_calls: list[Any]) -> _CallDiagnostics:
    """Tolerant fine-grained comparison for the logged metrics; never raises."""
    gt_params = [_diag_params(call) for call in gt_calls]
    values_total = sum(len(params) for params in gt_params)
    if pred_calls is None:
        return _CallDiagnostics(0.0, 0.0, 0, values_total, 0.0, 1.0)
    try:
        exact = 1.0 if pred_calls == gt_calls else 0.0
        gt_names = [_diag_name(call) for call in gt_calls]
        pred_names = [_diag_name(call) for call in pred_calls]
        pred_params = [_diag_params(call) for call in pred_calls]
        name_match = match_score(gt_names, pred_names)
        used: set[int] = set()
        param_name_sum, values_correct = 0.0, 0
        for gt_name, params in zip(gt_names, gt_params, strict=True):
            best = (0.0, 0.0, 0, -1)  # total, param-name score, correct values, index
            for index, (pred_name, candidate) in enumerate(zip(pred_names, pred_params, strict=True)):
                if index in used or pred_name != gt_name:
                    continue
                param_score = _param_name_score(params, candidate, False)
                correct = sum(1 for k, v in params.items() if k in candidate and candidate[k] == v)
                if param_score + correct > best[0]:
                    best = (param_score + correct, param_score, correct, index)
            if best[3] >= 0:
                used.add(best[3])
                param_name_sum += best[1]
                values_correct += best[2]
        return _CallDiagnostics(name_match, param_name_sum / len(gt_calls), values_correct, values_total, exact, 0.0)
    except Exception:  # e.g. RecursionError comparing pathological nesting
        return _CallDiagnostics(0.0, 0.0, 0, values_total, 0.0, 0.0)


def _emit_diagnostics(diagnostics: list[_CallDiagnostics], log_metric: Callable[[str, float], None]) -> None:
    if not diagnostics:
        return
    count = len(diagnostics)
    log_metric("tool_call/name_match", sum(d.name_match for d in diagnostics) / count)
    log_metric("tool_call/param_name_match", sum(d.param_name_match for d in diagnostics) / count)
    with_params = [d for d in diagnostics if d.param_values_total > 0]
    if with_params:
        log_metric(
            "tool_call/param_value_match",
            sum(d.param_values_correct / d.param_values_total for d in with_params) / len(with_params),
        )
    log_metric("tool_call/exact_match", sum(d.exact_match for d in diagnostics) / count)
    log_metric("tool_call/parse_failure", sum(d.parse_failure for d in diagnostics) / count)


# ---------------------------------------------------------------------------------------------------------------------
# TRL reward callables
# ---------------------------------------------------------------------------------------------------------------------


def generation_round(global_step: int, args: Any = None) -> int:
    """The schedule step (generation round, from 1) a reward computed at optimizer step ``global_step`` belongs to.

    TRL 1.16 generates when its micro-step counter ``_step`` (one per ``training_step`` call) is a
    multiple of ``steps_per_generation * num_iterations``, and ``global_step`` counts optimizer steps,
    i.e. ``_step // gradient_accumulation_steps``. So round ``r`` (0-based) is generated at
    ``global_step = r * G // A`` with ``G = steps_per_generation * num_iterations`` and
    ``A = gradient_accumulation_steps``; this inverts it as ``ceil(global_step * A / G) + 1``, which is
    exact whenever ``A <= G`` (each round feeds at least one optimizer step). With ``A > G`` several
    rounds share one optimizer step and the first of them is returned. ``args=None`` (or ``args``
    without these fields) means one optimizer step per round: ``global_step + 1``.
    """
    accumulation = getattr(args, "gradient_accumulation_steps", None) or 1
    per_generation = (getattr(args, "steps_per_generation", None) or accumulation) * (
        getattr(args, "num_iterations", None) or 1
    )
    return -(-global_step * accumulation // per_generation) + 1


def _completion_text(completion: Any) -> str | None:
    """The text to score: a plain string, or the content of the last assistant message of a conversation."""
    if isinstance(completion, str):
        return completion.strip()
    if isinstance(completion, Mapping):
        completion = [completion]
    if not isinstance(completion, Sequence):
        return None
    for message in reversed(completion):
        if isinstance(message, Mapping) and message.get("role") == "assistant":
            if message.get("tool_calls"):
                _log_once(
                    "parsed-tool-calls",
                    logging.WARNING,
                    "A completion message carries parsed 'tool_calls': the tokenizer's response parser moved the "
                    "<tool_call> block out of the text the ToolRL reward reads. Do not pass `tools` to GRPOTrainer "
                    "and leave the tokenizer's response_template/response_schema unset.",
                )
            content = message.get("content")
            return content.strip() if isinstance(content, str) else None
    return None


def _round_from_state(trainer_state: Any, args: Any) -> int:
    global_step = getattr(trainer_state, "global_step", None)
    return 1 if global_step is None else generation_round(int(global_step), args)


def get_reward_funcs(
    config: RewardConfig, args: Any = None, native_family: grammar.NativeFamily | None = None
) -> list[Callable[..., list[float]]]:
    """The reward callables for ``GRPOTrainer(reward_funcs=...)``: ``format``, ``correctness`` (+ ``length``).

    ``native_family`` scores completions written in that chat template (output_format native; see
    :func:`score`); None, the default, is the paper's grammar, number for number.

    Each takes ``(completions, ground_truth, trainer_state=None, log_metric=None, **kwargs)``: the
    dataset needs a ``ground_truth`` column; completions may be strings or conversations (the last
    assistant message's content is scored). The schedule step is :func:`generation_round` of
    ``trainer_state.global_step`` with ``args`` (the ``GRPOConfig``); without a trainer state it is 1.
    TRL sums the callables (``reward_weights`` default to 1), which is the paper's ``total``.

    The ``correctness`` callable also reports, via TRL's ``log_metric`` and averaged over the rows
    whose ground truth has tool calls (nothing is logged for a batch without such rows), using the
    fine-grained matching whatever the granularity:

    * ``tool_call/name_match``: :func:`match_score` of the ground-truth and predicted name lists;
    * ``tool_call/param_name_match``: per ground-truth call, :func:`match_score` of its parameter
      names and those of the predicted call the fine reward matches it with (0 when unmatched),
      averaged over the row's ground-truth calls;
    * ``tool_call/param_value_match``: per row, the share of ground-truth parameters whose value the
      matched predicted call repeats (Python ``==``); averaged over rows with at least one parameter;
    * ``tool_call/exact_match``: 1 when the predicted call list equals the ground truth's;
    * ``tool_call/parse_failure``: 1 when the completion has no ``<tool_call>`` ... ``</tool_call>``
      block or a line of it is not JSON (the metrics above are then 0 for that row).
    """
    if not isinstance(config, RewardConfig):
        raise TypeError(f"config must be a RewardConfig, got {type(config).__name__}")

    def _inputs(completions: Sequence[Any], ground_truth: Sequence[Any] | None, name: str):
        if ground_truth is None:
            raise ValueError(
                f"The '{name}' reward needs a 'ground_truth' column in the training dataset (the reference "
                "assistant output per prompt); the dataset passed to GRPOTrainer has none."
            )
        if len(ground_truth) != len(completions):
            raise ValueError(f"{len(completions)} completions but {len(ground_truth)} ground truths")
        return [_completion_text(c) for c in completions], [_ground_truth(g) for g in ground_truth]

    def format(completions, ground_truth=None, trainer_state=None, log_metric=None, **kwargs) -> list[float]:
        texts, gts = _inputs(completions, ground_truth, "format")
        low, high = reward_bounds(_round_from_state(trainer_state, args), config).format
        if native_family is not None:
            return [
                _native_format_reward(text, gt, low, high, native_family) for text, gt in zip(texts, gts, strict=True)
            ]
        return [_format_reward(text, gt, low, high) for text, gt in zip(texts, gts, strict=True)]

    def correctness(completions, ground_truth=None, trainer_state=None, log_metric=None, **kwargs) -> list[float]:
        texts, gts = _inputs(completions, ground_truth, "correctness")
        low, high = reward_bounds(_round_from_state(trainer_state, args), config).correctness
        rewards, diagnostics = [], []
        for text, gt in zip(texts, gts, strict=True):
            pred_calls = (
                _predicted_calls(text) if native_family is None else _predicted_native_calls(text, native_family)
            )
            rewards.append(_correctness_reward(pred_calls, gt, low, high, config.granularity))
            if gt.calls is not None:
                diagnostics.append(_diagnose(pred_calls, gt.calls))
        if log_metric is not None:
            _emit_diagnostics(diagnostics, log_metric)
        return rewards

    def length(completions, ground_truth=None, trainer_state=None, log_metric=None, **kwargs) -> list[float]:
        texts, _ = _inputs(completions, ground_truth, "length")
        step = _round_from_state(trainer_state, args)
        return [_length_reward(text, step, config) for text in texts]

    funcs = [format, correctness]
    if config.length_reward != "off":
        funcs.append(length)
    return funcs


__all__ = [
    "CORRECTNESS_SCALES",
    "GRANULARITIES",
    "LENGTH_REWARDS",
    "METRIC_NAMES",
    "SCALE_SCHEDULES",
    "RewardBounds",
    "RewardConfig",
    "RewardScore",
    "generation_round",
    "get_reward_funcs",
    "match_score",
    "reward_bounds",
    "score",
]
