"""Property tests: any text in, a float within the variant's bounds out, never an exception."""

from __future__ import annotations

import itertools
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toolrl_trl.rewards import (
    CORRECTNESS_SCALES,
    GRANULARITIES,
    LENGTH_REWARDS,
    SCALE_SCHEDULES,
    RewardConfig,
    get_reward_funcs,
    reward_bounds,
    score,
)

CONFIGS = [
    RewardConfig(correctness_scale=scale, scale_schedule=schedule, granularity=granularity, length_reward=length)
    for scale, schedule, granularity, length in itertools.product(
        CORRECTNESS_SCALES, SCALE_SCHEDULES, GRANULARITIES, LENGTH_REWARDS
    )
]

GROUND_TRUTHS = [
    '<think> t </think>\n<tool_call>\n{"name": "a", "parameters": {"x": 1, "y": "s"}}\n</tool_call>',
    '<think> t </think>\n<tool_call>\n{"name": "a", "parameters": {"x": 1}}\n{"name": "b", "parameters": {}}\n'
    "</tool_call>\n<response> r </response>",
    "<think> t </think>\n<response> r </response>",
    "<think> t </think>",
]

TAGS = ["<think>", "</think>", "<tool_call>", "</tool_call>", "<response>", "</response>", "\n", " "]


def _json_values(allow_nan: bool) -> st.SearchStrategy:
    scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=allow_nan) | st.text(max_size=5)
    return st.recursive(
        scalars,
        lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3),
        max_leaves=8,
    )


def _calls(allow_nan: bool) -> st.SearchStrategy:
    parameters = st.dictionaries(st.sampled_from("xyz"), _json_values(allow_nan))
    return st.fixed_dictionaries({"name": st.sampled_from(["a", "b", "c"]), "parameters": parameters})


json_values, calls = _json_values(allow_nan=True), _calls(allow_nan=True)
json_lines = st.lists(calls | json_values, min_size=0, max_size=4).map(
    lambda items: "\n".join(json.dumps(item) for item in items)
)
# Text that hits the grammar often: tags, JSON call lines and arbitrary unicode (surrogates included) interleaved.
completions = st.lists(st.sampled_from(TAGS) | json_lines | st.text(max_size=20), max_size=12).map("".join)
any_text = completions | st.text()


def _within(value: float, bounds: tuple[float, float]) -> bool:
    low, high = min(bounds), max(bounds)
    return low <= value <= high


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    completion=any_text,
    ground_truth=st.sampled_from(GROUND_TRUTHS),
    step=st.integers(min_value=0, max_value=400),
    config=st.sampled_from(CONFIGS),
)
def test_score_is_a_bounded_float_for_any_text(completion, ground_truth, step, config):
    result = score(completion, ground_truth, step, config)
    bounds = reward_bounds(step, config)
    for value in (result.format, result.correctness, result.length, result.total):
        assert type(value) is float
    assert result.format in bounds.format
    if "<tool_call>" in ground_truth:
        assert _within(result.correctness, bounds.correctness)
    else:
        assert result.correctness == 0.0
    assert _within(result.length, bounds.length)
    assert result.total == result.format + result.correctness + result.length


@settings(max_examples=150, deadline=None)
@given(
    completion=any_text | st.none() | st.integers() | st.lists(st.text(max_size=5), max_size=2),
    ground_truth=st.sampled_from(GROUND_TRUTHS),
    step=st.integers(min_value=0, max_value=400),
    config=st.sampled_from(CONFIGS),
    conversational=st.booleans(),
)
def test_callables_never_raise_and_agree_with_score(completion, ground_truth, step, config, conversational):
    batch = [[{"role": "assistant", "content": completion}]] if conversational else [completion]
    state = type("State", (), {"global_step": step - 1 if step else 0})()
    values = [func(batch, ground_truth=[ground_truth], trainer_state=state)[0] for func in get_reward_funcs(config)]
    expected = score(completion, ground_truth, max(step, 1), config)
    assert values[:2] == [expected.format, expected.correctness]
    if config.length_reward != "off":
        assert values[2] == expected.length


@settings(max_examples=150, deadline=None)
@given(
    calls=st.lists(_calls(allow_nan=False), min_size=1, max_size=3),
    step=st.integers(0, 400),
    config=st.sampled_from(CONFIGS),
)
def test_an_exact_prediction_always_earns_both_maxima(calls, step, config):
    # (NaN is left out: NaN != NaN, so the reference never calls a prediction with NaN exact.)
    block = "\n".join(json.dumps(call) for call in calls)
    text = f"<think> t </think>\n<tool_call>\n{block}\n</tool_call>"
    result = score(text, text, step, config)
    bounds = reward_bounds(step, config)
    assert (result.format, result.correctness) == (bounds.format[1], bounds.correctness[1])
