"""Unit tests of the ToolRL reward: every rule of reward-spec.md with hand-computed values.

Correctness arithmetic, written out in the comments, uses the spec's formula
``(max - min) * score / max_score + min`` with the default bounds max 3, min -3 (so ``6 * score / max_score - 3``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from types import SimpleNamespace

import pytest

from toolrl_trl import rewards
from toolrl_trl.rewards import (
    METRIC_NAMES,
    RewardConfig,
    RewardScore,
    generation_round,
    get_reward_funcs,
    match_score,
    reward_bounds,
    score,
)

WEATHER = {"name": "get_weather", "parameters": {"city": "Paris", "unit": "C"}}
GT_CALL = f"<think> I should call the weather tool. </think>\n<tool_call>\n{json.dumps(WEATHER)}\n</tool_call>"
GT_RESP = "<think> No tool needed. </think>\n<response> Hello! </response>"
GT_BOTH = f"<think> Call, then say so. </think>\n<tool_call>\n{json.dumps(WEATHER)}\n</tool_call>\n<response> On it. </response>"
GT_NEITHER = "<think> Only thinking here. </think>"


def calls_text(*calls: object, think: str = "thinking") -> str:
    """A well-formed tool-call completion with the given (JSON-serialisable) call objects."""
    lines = "\n".join(json.dumps(call) for call in calls)
    return f"<think> {think} </think>\n<tool_call>\n{lines}\n</tool_call>"


def gt_of(*calls: object) -> str:
    return calls_text(*calls, think="ground truth")


def correctness(completion: str, ground_truth: str = GT_CALL, step: int = 1, **config: str) -> float:
    return score(completion, ground_truth, step, RewardConfig(**config)).correctness


def call(name: str, **params: object) -> dict:
    return {"name": name, "parameters": params}


# ---------------------------------------------------------------------------------------------------------------------
# RewardConfig
# ---------------------------------------------------------------------------------------------------------------------


def test_config_defaults_are_the_papers():
    config = RewardConfig()
    assert (config.correctness_scale, config.scale_schedule, config.granularity, config.length_reward) == (
        "default",
        "constant",
        "fine",
        "off",
    )
    assert (config.two_stage_switch_step, config.smooth_schedule_steps, config.length_target_words) == (30, 150, 512)
    assert (config.length_schedule_start_words, config.length_schedule_end_words, config.length_schedule_steps) == (
        384,
        640,
        105,
    )


@pytest.mark.parametrize(
    ("field_name", "valid"),
    [
        ("correctness_scale", "default, equal_max"),
        ("scale_schedule", "constant, two_stage, smooth"),
        ("granularity", "fine, intermediate, refined, coarse"),
        ("length_reward", "off, fixed, scheduled"),
    ],
)
def test_config_rejects_unknown_choice_listing_valid_values(field_name, valid):
    with pytest.raises(ValueError, match=f"RewardConfig.{field_name}='bogus'.*valid values: {valid}"):
        RewardConfig(**{field_name: "bogus"})


@pytest.mark.parametrize(
    "bad", [{"smooth_schedule_steps": 0}, {"length_target_words": -1}, {"length_schedule_end_words": 100}]
)
def test_config_rejects_horizons_that_would_divide_by_zero(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        RewardConfig(**bad)


def test_config_fields_have_help_and_do_not_collide_with_trl():
    from trl import GRPOConfig, ModelConfig, ScriptArguments, SFTConfig

    ours = {f.name for f in dataclasses.fields(RewardConfig)}
    for trl_config in (GRPOConfig, SFTConfig, ModelConfig, ScriptArguments):
        assert not ours & {f.name for f in dataclasses.fields(trl_config)}, trl_config.__name__
    assert all(f.metadata.get("help") for f in dataclasses.fields(RewardConfig))


def test_config_parses_with_trl_parser_beside_grpo_config():
    from trl import GRPOConfig, TrlParser

    parser = TrlParser((RewardConfig, GRPOConfig))
    reward_config, grpo_config = parser.parse_args_into_dataclasses(
        ["--granularity", "coarse", "--two_stage_switch_step", "7", "--output_dir", "unused", "--use_cpu", "true"]
    )
    assert reward_config == RewardConfig(granularity="coarse", two_stage_switch_step=7)
    assert grpo_config.output_dir == "unused"
    with pytest.raises(SystemExit):
        parser.parse_args_into_dataclasses(["--granularity", "bogus", "--output_dir", "unused"])


# ---------------------------------------------------------------------------------------------------------------------
# Format: every row of the spec's table
# ---------------------------------------------------------------------------------------------------------------------

TC = '<tool_call>\n{"name": "a", "parameters": {}}\n</tool_call>'


@pytest.mark.parametrize(
    ("ground_truth", "completion", "expected"),
    [
        # ground truth has <response> only: ^<think>.*?</think>\n<response>.*?</response>$ + one of each response tag
        (GT_RESP, "<think> a </think>\n<response> b </response>", 1.0),
        (GT_RESP, "  \n<think> a </think>\n<response> b </response>\n  ", 1.0),  # stripped first
        (GT_RESP, "<think>a</think>\n<response>b<response>c</response>", 0.0),  # regex matches, 2x <response>
        (GT_RESP, "<think>a</think>\n<response>b</response>c</response>", 0.0),  # regex matches, 2x </response>
        (GT_RESP, "<think> a </think> <response> b </response>", 0.0),  # a space, not \n
        (GT_RESP, "<think> a </think>\n<response> b </response> trailing", 0.0),
        (GT_RESP, "lead <think> a </think>\n<response> b </response>", 0.0),
        (GT_RESP, f"<think> a </think>\n{TC}", 0.0),
        # ground truth has <tool_call> only: ^<think>.*?</think>\n<tool_call>\n.*?\n</tool_call>$ + one of each
        (GT_CALL, f"<think> a </think>\n{TC}", 1.0),
        (GT_CALL, "<think> a </think>\n<tool_call>\nnot json at all\n</tool_call>", 1.0),  # format ignores JSON
        (GT_CALL, f"<think> a </think>\n{TC}\n{TC}", 0.0),  # regex matches across both blocks; counts are 2
        (GT_CALL, '<think> a </think>\n<tool_call>{"name": "a", "parameters": {}}\n</tool_call>', 0.0),
        (GT_CALL, f"<think> a </think>\n{TC}\n<response> b </response>", 0.0),
        (GT_CALL, "<think> a </think>\n<tool_call>\n\n</tool_call>", 1.0),  # .*? may be empty: \n + \n
        # both: ^...</think>\n<tool_call>\n.*?\n</tool_call>\n<response>.*?</response>$ + one of each of four tags
        (GT_BOTH, f"<think> a </think>\n{TC}\n<response> b </response>", 1.0),
        (GT_BOTH, f"<think> a </think>\n<response> b </response>\n{TC}", 0.0),  # order swapped
        (GT_BOTH, f"<think> a </think>\n{TC}", 0.0),  # response missing
        (GT_BOTH, f"<think> a </think>\n{TC}\n<response> b </response>c</response>", 0.0),  # 2x </response>
        (GT_BOTH, f"<think> a </think>\n{TC}\n<response> b <tool_call> </response>", 0.0),  # 2x <tool_call>
        # neither: ^<think>.*?</think>$ and no count rule
        (GT_NEITHER, "<think> a </think>", 1.0),
        (GT_NEITHER, "<think> a </think><think> b </think>", 1.0),
        (GT_NEITHER, "<think> <tool_call> <response> </think>", 1.0),
        (GT_NEITHER, "<think> a </think>\n<response> b </response>", 0.0),
        (GT_NEITHER, "<think> a </think> after", 0.0),
        (GT_NEITHER, "no think at all", 0.0),
    ],
)
def test_format_table(ground_truth, completion, expected):
    assert score(completion, ground_truth).format == expected


def test_format_row_is_chosen_by_plain_substring_of_the_ground_truth():
    # The tag is only quoted inside the thoughts, yet "contains <response>" is true: the response-only row applies.
    quoting = "<think> I will not use <response> here </think>"
    assert score("<think> a </think>\n<response> b </response>", quoting).format == 1.0
    assert score("<think> a </think>", quoting).format == 0.0


# ---------------------------------------------------------------------------------------------------------------------
# Correctness (fine granularity, default scale 3 / -3)
# ---------------------------------------------------------------------------------------------------------------------


def test_match_score_rules():
    assert match_score(["a", "b"], ["a", "b"]) == 1.0
    assert match_score([], []) == 1.0  # equal lists
    assert match_score(["a"], []) == 0.0
    assert match_score(["a", "b"], ["b", "a"]) == 1.0  # order ignored: 2 / (2 + 2 - 2)
    assert match_score(["a", "a", "b"], ["a", "c"]) == 1 / 4  # multiset: inter 1 / (3 + 2 - 1)
    assert match_score(["a", "b"], ["b", "a"], strict=True) == 0.0
    assert match_score(["a"], ["a"], strict=True) == 1.0


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        # exact list equality -> max
        (calls_text(WEATHER), 3.0),
        # names 1.0; max_score 1 + (1 + 2) = 4; param names equal 1.0 + 1 correct value = 2 -> 6 * 3 / 4 - 3
        (calls_text(call("get_weather", city="Paris", unit="F")), 1.5),
        # param names [city, unit] vs [city]: 1 / (2 + 1 - 1) = 0.5, + 1 correct -> score 2.5 -> 6 * 2.5 / 4 - 3
        (calls_text(call("get_weather", city="Paris")), 0.75),
        # names 0 / (1 + 1 - 0) = 0 and no same-name candidate -> 6 * 0 / 4 - 3
        (calls_text(call("get_time", city="Paris", unit="C")), -3.0),
        # names [gw] vs [gw, search]: 1 / (1 + 2 - 1) = 0.5; matched call 1 + 2 = 3 -> score 3.5 -> 6 * 3.5 / 4 - 3
        (calls_text(WEATHER, call("search")), 2.25),
        # param values compare with ==: "Paris" vs "paris" wrong, unit right -> 1 + (1 + 1) = 3 -> 6 * 3 / 4 - 3
        (calls_text(call("get_weather", city="paris", unit="C")), 1.5),
        # a candidate scoring 0 (param names disjoint, no value) does not count: score 1 (names) -> 6 / 4 - 3
        (calls_text(call("get_weather", town="Paris")), -1.5),
    ],
)
def test_correctness_fine(completion, expected):
    assert correctness(completion) == expected


def test_correctness_values_compare_with_python_equality():
    gt = gt_of(call("f", n=1))
    assert correctness(calls_text(call("f", n=1.0)), gt) == 3.0  # 1 == 1.0: the lists are equal
    # "1" != 1: names 1.0, max_score 1 + 2 = 3, param names 1.0 + 0 values -> score 2 -> 6 * 2 / 3 - 3
    assert correctness(calls_text(call("f", n="1")), gt) == 1.0


def test_correctness_ties_keep_the_earliest_candidate():
    gt = gt_of(call("a", x=1), call("a", x=2))
    # gt a(x=1): both candidates score 1.0 (names of params match, value wrong) -> the earliest, a(x=3), is used;
    # gt a(x=2) then gets a(x=2): 2.0. score = 1 (names equal) + 1 + 2 = 4; max_score 1 + 2 + 2 = 5 -> 6 * 4 / 5 - 3.
    # (Taking the later one would leave a(x=3) for a(x=2): score 3 -> 0.6.)
    assert correctness(calls_text(call("a", x=3), call("a", x=2)), gt) == 6 * 4 / 5 - 3


def test_correctness_each_prediction_is_used_once():
    gt = gt_of(call("a", x=1), call("a", x=1))
    # names [a, a] vs [a]: 1 / (2 + 1 - 1) = 0.5; first gt call takes the only a(x=1): 2; second finds none.
    # score 2.5, max_score 5 -> 6 * 2.5 / 5 - 3 = 0.0
    assert correctness(calls_text(call("a", x=1)), gt) == 0.0


def test_correctness_order_of_calls_matters_only_for_exact_match():
    gt = gt_of(call("a", x=1), call("b", y=2))
    swapped = calls_text(call("b", y=2), call("a", x=1))
    # not == (order), but names match as multisets (1.0) and each call scores 2: score 5 of 5 -> 3.0 by the formula
    assert correctness(swapped, gt) == 3.0
    assert correctness(swapped, gt, granularity="coarse") == -3.0


def test_correctness_zero_when_ground_truth_has_no_tool_call():
    for gt in (GT_RESP, GT_NEITHER):
        for completion in ("garbage", calls_text(WEATHER), ""):
            assert correctness(completion, gt) == 0.0
            assert correctness(completion, gt, step=0, scale_schedule="smooth") == 0.0


@pytest.mark.parametrize(
    "completion",
    [
        "<think> a </think>\n<tool_call>\n" + json.dumps(WEATHER),  # no </tool_call>
        "<think> a </think>\n" + json.dumps(WEATHER) + "\n</tool_call>",  # no <tool_call>
        "<think> a </think>\n<tool_call>\n{'name': 'get_weather'}\n</tool_call>",  # not JSON
        "<think> a </think>\n<tool_call>\n" + json.dumps(WEATHER) + "\n\n" + json.dumps(WEATHER) + "\n</tool_call>",
        calls_text(WEATHER, 5),  # a call that is not an object: names raise
        calls_text(WEATHER, {"parameters": {}}),  # a call without a name
        calls_text(WEATHER, {"name": "get_weather"}),  # same-name candidate without parameters
        calls_text({"name": "get_weather", "parameters": "city=Paris"}),  # parameters not an object
        calls_text(WEATHER, {"name": ["unhashable"], "parameters": {}}),  # Counter over names raises
        "",
    ],
)
def test_correctness_minimum_on_malformed_predictions(completion):
    assert correctness(completion) == -3.0


def test_correctness_is_lazy_like_the_reference():
    # A malformed call is only fatal where the reference looks at it.
    # Different name, no parameters: names [gw] vs [gw, other] = 0.5; gw matched: 3 -> 3.5 -> 6 * 3.5 / 4 - 3.
    assert correctness(calls_text(WEATHER, {"name": "other"})) == 2.25
    # intermediate never reads a candidate's parameters: names 1.0, no equal call; max 1 + 1 -> 6 * 1 / 2 - 3 = 0
    assert correctness(calls_text({"name": "get_weather"}), granularity="intermediate") == 0.0
    # refined compares name lists with == only, so an unhashable name never reaches Counter:
    # names 0.0; gw matched with param names equal (1.0) + 2 values = 3 -> 6 * 3 / 4 - 3.
    unhashable = calls_text(WEATHER, {"name": ["x"], "parameters": {}})
    assert correctness(unhashable, granularity="refined") == 1.5
    assert correctness(unhashable, granularity="fine") == -3.0


def test_correctness_reads_the_first_block_only():
    first_right = calls_text(WEATHER) + "\n" + calls_text(call("nope"))
    assert correctness(first_right) == 3.0
    assert score(first_right, GT_CALL).format == 0.0  # two blocks break the format


# ---------------------------------------------------------------------------------------------------------------------
# Granularity variants
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("granularity", "completion", "expected"),
    [
        # extra call [gw, search]: see test_correctness_fine -> 2.25
        ("fine", calls_text(WEATHER, call("search")), 2.25),
        # refined: names differ -> 0.0; param names equal -> 1.0 + 2 values = 3 -> 6 * 3 / 4 - 3
        ("refined", calls_text(WEATHER, call("search")), 1.5),
        # intermediate: names 0.5; max_score 1 + 1 = 2; gw equals a gt call -> +1.0 -> 6 * 1.5 / 2 - 3
        ("intermediate", calls_text(WEATHER, call("search")), 1.5),
        ("coarse", calls_text(WEATHER, call("search")), -3.0),
        # one wrong value: fine 1.5 (above); refined: names equal 1.0, param names equal 1.0 + 1 -> 3 -> 1.5
        ("refined", calls_text(call("get_weather", city="Paris", unit="F")), 1.5),
        # intermediate: names 1.0, the call is not equal -> 0 -> 6 * 1 / 2 - 3
        ("intermediate", calls_text(call("get_weather", city="Paris", unit="F")), 0.0),
        # missing a parameter: refined param names [city, unit] vs [city] -> 0.0 (fine: 0.5); + 1 value = 1
        # -> score 2 -> 6 * 2 / 4 - 3
        ("refined", calls_text(call("get_weather", city="Paris")), 0.0),
        ("coarse", calls_text(call("get_weather", city="Paris")), -3.0),
        # every granularity gives max on an exact match
        ("coarse", calls_text(WEATHER), 3.0),
        ("intermediate", calls_text(WEATHER), 3.0),
        ("refined", calls_text(WEATHER), 3.0),
    ],
)
def test_granularity(granularity, completion, expected):
    assert correctness(completion, granularity=granularity) == expected


def test_refined_and_intermediate_on_two_calls_out_of_order():
    gt = gt_of(call("a", x=1), call("b", y=2))
    swapped = calls_text(call("b", y=2), call("a", x=1))
    # refined: names [a, b] != [b, a] -> 0.0; each call: [x] == [x] -> 1.0 + 1 = 2 -> score 4 of 5 -> 6 * 4 / 5 - 3
    assert correctness(swapped, gt, granularity="refined") == 6 * 4 / 5 - 3
    # intermediate: names 1.0 (multiset); each gt call finds its equal -> 1 + 1 + 1 = 3 of 1 + 1 + 1 = 3 -> 3.0
    assert correctness(swapped, gt, granularity="intermediate") == 3.0


# ---------------------------------------------------------------------------------------------------------------------
# Scales and schedules
# ---------------------------------------------------------------------------------------------------------------------

PARTIAL = calls_text(call("get_weather", city="Paris", unit="F"))  # raw score 3 of max_score 4 (see above)
WRONG = "no tool call here"


def test_equal_max_scale():
    config = RewardConfig(correctness_scale="equal_max")
    assert reward_bounds(1, config).correctness == (-1.0, 1.0)
    assert reward_bounds(1, config).format == (0.0, 1.0)  # format unchanged
    assert score(calls_text(WEATHER), GT_CALL, 1, config) == RewardScore(1.0, 1.0, 0.0, 2.0)
    assert score(PARTIAL, GT_CALL, 1, config).correctness == 0.5  # (1 - -1) * 3 / 4 + -1
    assert score(WRONG, GT_CALL, 1, config).correctness == -1.0


@pytest.mark.parametrize(
    ("step", "fmt", "corr"),
    [
        (0, (0.0, 1.0), (-1.0, 1.0)),  # step < 30: correctness 3 / 3, -3 / 3
        (1, (0.0, 1.0), (-1.0, 1.0)),
        (29, (0.0, 1.0), (-1.0, 1.0)),
        (30, (0.0, 0.5), (-3.0, 3.0)),  # step >= 30: format 1 / 2, 0 / 2
        (31, (0.0, 0.5), (-3.0, 3.0)),
    ],
)
def test_two_stage_bounds(step, fmt, corr):
    bounds = reward_bounds(step, RewardConfig(scale_schedule="two_stage"))
    assert (bounds.format, bounds.correctness) == (fmt, corr)


def test_two_stage_scores_on_both_sides_of_the_switch():
    config = RewardConfig(scale_schedule="two_stage")
    assert score(calls_text(WEATHER), GT_CALL, 29, config) == RewardScore(1.0, 1.0, 0.0, 2.0)
    assert score(calls_text(WEATHER), GT_CALL, 30, config) == RewardScore(0.5, 3.0, 0.0, 3.5)
    assert score(PARTIAL, GT_CALL, 29, config).correctness == 0.5  # (1 - -1) * 3 / 4 + -1
    assert score(PARTIAL, GT_CALL, 30, config).correctness == 1.5  # (3 - -3) * 3 / 4 + -3
    assert score(WRONG, GT_CALL, 29, config).correctness == -1.0
    # equal_max + two_stage: 1 / 3 and -1 / 3 before the switch
    both = RewardConfig(scale_schedule="two_stage", correctness_scale="equal_max")
    assert reward_bounds(29, both).correctness == (-1.0 / 3, 1.0 / 3)
    # the switch step is an option
    assert reward_bounds(5, RewardConfig(scale_schedule="two_stage", two_stage_switch_step=5)).format == (0.0, 0.5)


@pytest.mark.parametrize(
    ("step", "fmt", "corr"),
    [
        # format max = 2 - (2 - 1) * step / 150 (floored at 1.0); min = -2 + (2 + 0) * step / 150 (capped at -1.0)
        # correctness max = (3 - 2) * step / 150 + 2 (capped at 3.0); min = (-3 + 2) * step / 150 - 2 (floored -3.0)
        (0, (-2.0, 2.0), (-2.0, 2.0)),
        (1, (-2 + 2 * 1 / 150, 2 - 1 * 1 / 150), (-1 * 1 / 150 - 2, 1 * 1 / 150 + 2)),
        (75, (-1.0, 2 - 75 / 150), (-75 / 150 - 2, 75 / 150 + 2)),  # format min reaches -1.0 exactly
        (76, (-1.0, 2 - 76 / 150), (-76 / 150 - 2, 76 / 150 + 2)),  # -2 + 152 / 150 = -0.987 -> capped at -1.0
        (149, (-1.0, 2 - 149 / 150), (-149 / 150 - 2, 149 / 150 + 2)),
        (150, (-1.0, 1.0), (-3.0, 3.0)),
        (151, (-1.0, 1.0), (-3.0, 3.0)),  # 2 - 151 / 150 = 0.993 -> 1.0; 151 / 150 + 2 = 3.007 -> 3.0
        (1000, (-1.0, 1.0), (-3.0, 3.0)),
    ],
)
def test_smooth_bounds(step, fmt, corr):
    bounds = reward_bounds(step, RewardConfig(scale_schedule="smooth"))
    assert bounds.format == fmt
    assert bounds.correctness == corr


def test_smooth_scores_use_the_bounds():
    config = RewardConfig(scale_schedule="smooth")
    assert score(calls_text(WEATHER), GT_CALL, 0, config) == RewardScore(2.0, 2.0, 0.0, 4.0)
    assert score(WRONG, GT_CALL, 0, config) == RewardScore(-2.0, -2.0, 0.0, -4.0)
    # step 75: correctness max 2.5, min -2.5 -> (2.5 - -2.5) * 3 / 4 + -2.5 = 1.25
    assert score(PARTIAL, GT_CALL, 75, config).correctness == 1.25
    assert score(calls_text(WEATHER), GT_CALL, 151, config) == RewardScore(1.0, 3.0, 0.0, 4.0)


def test_smooth_with_equal_max_follows_the_reference_formulas():
    config = RewardConfig(scale_schedule="smooth", correctness_scale="equal_max")
    # max = (1 - 2) * step / 150 + 2, min = (-1 + 2) * step / 150 - 2: they meet at 0 on step 300, then cross.
    assert reward_bounds(150, config).correctness == (-1.0, 1.0)
    assert reward_bounds(300, config).correctness == (0.0, 0.0)
    assert reward_bounds(450, config).correctness == (1.0, -1.0)
    assert score(calls_text(WEATHER), GT_CALL, 450, config).correctness == -1.0  # the "max" of an exact match


# ---------------------------------------------------------------------------------------------------------------------
# Length
# ---------------------------------------------------------------------------------------------------------------------


def thinking(words: int, tail: str = "\n<response> ok </response>") -> str:
    return "<think> " + " ".join(["w"] * words) + " </think>" + tail


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        (thinking(256), 0.5),  # round(256 / 512, 2)
        (thinking(512), 1.0),
        (thinking(1000), 1.0),  # capped
        (thinking(3), 0.01),  # 3 / 512 = 0.00586 -> 0.01
        (thinking(2), 0.0),  # 2 / 512 = 0.0039 -> 0.0
        (thinking(100), 0.2),  # 100 / 512 = 0.1953 -> 0.2
        (thinking(0), 0.0),
        ("<think> a b c " + "\n<response> ok </response>", 0.0),  # no </think>
        ("a b c </think>", 0.0),  # no <think>
        # the text after the LAST <think> up to the next </think>: "c d e" -> 3 words (not a b)
        ("<think> a b </think> <think> c d e </think>", 0.01),
        # the last <think> has no closing tag after it: to the end -> "x y z q" -> 4 / 512 = 0.0078 -> 0.01
        ("<think> a </think> <think> x y z q", 0.01),
        ("<think>\tw\u3000w\nw</think>", 0.01),  # str.split() whitespace: 3 words
    ],
)
def test_length_fixed(completion, expected):
    assert score(completion, GT_RESP, 1, RewardConfig(length_reward="fixed")).length == expected


@pytest.mark.parametrize(
    ("step", "words", "expected"),
    [
        (0, 192, 0.5),  # target (640 - 384) * 0 / 105 + 384 = 384
        (105, 320, 0.5),  # target 640
        (210, 448, 0.5),  # target 896: the schedule is not capped
        (1, 193, 0.5),  # target 256 / 105 + 384 = 386.438; 193 / 386.438 = 0.4994 -> 0.5
        (52, 255, 0.5),  # target 256 * 52 / 105 + 384 = 510.78; 255 / 510.78 = 0.4992 -> 0.5
        (52, 252, 0.49),  # 252 / 510.78 = 0.4934 -> 0.49
        (0, 384, 1.0),
        (0, 500, 1.0),
    ],
)
def test_length_scheduled(step, words, expected):
    config = RewardConfig(length_reward="scheduled")
    assert score(thinking(words), GT_RESP, step, config).length == expected


def test_length_is_off_by_default_and_not_scaled_by_schedules():
    assert score(thinking(256), GT_RESP).length == 0.0
    config = RewardConfig(length_reward="fixed", scale_schedule="smooth")
    result = score(thinking(256), GT_RESP, 0, config)
    assert result.length == 0.5
    assert result.total == result.format + result.correctness + result.length == 2.0 + 0.0 + 0.5


def test_total_is_the_sum():
    result = score(PARTIAL.replace("thinking", " ".join(["w"] * 256)), GT_CALL, 1, RewardConfig(length_reward="fixed"))
    assert result == RewardScore(format=1.0, correctness=1.5, length=0.5, total=3.0)


# ---------------------------------------------------------------------------------------------------------------------
# Bad input: nothing raises, nothing hangs
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "completion",
    [
        "<think> a </think>\n<tool_call>\n" + "[" * 100_000 + "\n</tool_call>",  # RecursionError in json
        "<think> a </think>\n<tool_call>\n" + '{"a": ' * 20_000 + "1" + "}" * 20_000 + "\n</tool_call>",
        "x" * 100_000,
        "<think> " + "word " * 20_000 + "</think>\n<tool_call>\n" + json.dumps(WEATHER) + "\n</tool_call>",
        "<tool_call>" * 5_000 + "</tool_call>" * 5_000,
        "<think></think>\n" * 5_000,
        "<think> \ud800 </think>\n<tool_call>\n"
        + '{"name": "\ud800", "parameters": {"\udfff": 1}}'
        + "\n</tool_call>",
        '<think> a </think>\n<tool_call>\n{"name": "get_weather", "parameters": {"city": ' + "9" * 5000 + "}}",
        "<think> a </think>\n<tool_call>\nNaN\n</tool_call>",
    ],
)
def test_bad_completions_score_without_raising(completion):
    for config in (RewardConfig(), RewardConfig(granularity="refined", length_reward="fixed")):
        result = score(completion, GT_CALL, 1, config)
        assert result.correctness in (-3.0, 3.0) or -3.0 <= result.correctness <= 3.0
        assert isinstance(result.total, float)


def test_deeply_nested_json_gives_the_minimum():
    assert correctness("<think> a </think>\n<tool_call>\n" + "[" * 100_000 + "\n</tool_call>") == -3.0


@pytest.mark.parametrize("completion", [None, 5, b"<think> a </think>", ["<think> a </think>"], {"x": 1}])
def test_non_string_completion_scores_the_minimum(completion):
    assert score(completion, GT_CALL) == RewardScore(0.0, -3.0, 0.0, -3.0)
    assert score(completion, GT_RESP) == RewardScore(0.0, 0.0, 0.0, 0.0)
    smooth = score(completion, GT_CALL, 0, RewardConfig(scale_schedule="smooth", length_reward="fixed"))
    assert smooth == RewardScore(-2.0, -2.0, 0.0, -4.0)


def test_unparseable_ground_truth_logs_once_and_gives_the_minimum(caplog):
    gt = "<think> a </think>\n<tool_call>\n{not json}\n</tool_call>"
    with caplog.at_level(logging.ERROR, logger="toolrl_trl.rewards"):
        first = score(calls_text(WEATHER), gt)
        second = score(calls_text(WEATHER), gt)
    assert first == second == RewardScore(1.0, -3.0, 0.0, -2.0)  # format still judged against the gt's shape
    errors = [r for r in caplog.records if "Unusable ground truth" in r.getMessage()]
    assert len(errors) == 1 and "{not json}" in errors[0].getMessage()


def test_non_string_ground_truth_gives_the_minimum(caplog):
    with caplog.at_level(logging.ERROR, logger="toolrl_trl.rewards"):
        assert score(calls_text(WEATHER), None) == RewardScore(0.0, -3.0, 0.0, -3.0)  # type: ignore[arg-type]


@pytest.mark.parametrize("step", [-1, 1.5, "3", True, None])
def test_score_rejects_a_step_that_is_not_a_round_index(step):
    with pytest.raises(ValueError, match="step must be a non-negative int"):
        score("x", GT_CALL, step)


def test_ground_truth_is_parsed_once_per_string():
    rewards._parse_ground_truth.cache_clear()
    gt = gt_of(call("cached_tool", x=1))
    for _ in range(8):
        score(calls_text(call("cached_tool", x=1)), gt)
    info = rewards._parse_ground_truth.cache_info()
    assert (info.misses, info.hits) == (1, 7)


ADVERSARIAL_GT = gt_of(call("a", x=1, y="a", z=[1]), call("a", x=2), call("b", q=None))
_LINE_SAME = json.dumps(call("a", x=2, w=1))


def _adversarial_shapes(size: int = 64_000) -> dict[str, str]:
    distinct = [json.dumps(call("a", **{f"k{i}": i})) for i in range(size // 32)]
    return {
        "nested_arrays": "<think>x</think>\n<tool_call>\n" + "[" * (size - 40) + "\n</tool_call>",
        "nested_objects": "<think>x</think>\n<tool_call>\n" + '{"a":' * (size // 5) + "\n</tool_call>",
        "repeated_think_tool_call": "</think>\n<tool_call>\n" * (size // 21),
        "repeated_full_turns": (f"<think></think>\n{TC}\n<response></response>" * size)[:size],
        "many_closing_thinks": "<think>" + "</think>\n" * (size // 9),
        "many_same_name_calls": calls_text(*[json.loads(_LINE_SAME)] * (size // len(_LINE_SAME))),
        "many_distinct_param_names": "<think>x</think>\n<tool_call>\n" + "\n".join(distinct)[: size - 40],
        "one_call_huge_parameters": calls_text(call("a", **{f"k{i}": i for i in range(size // 12)})),
        "lone_surrogates": "<think>\ud800" * (size // 8),
        "long_thought": "<think> " + "word " * (size // 5) + "</think>",
    }


@pytest.mark.parametrize("shape", sorted(_adversarial_shapes()))
def test_adversarial_64k_completion_scores_in_under_50ms(shape):
    completion = _adversarial_shapes()[shape][:64_000]
    configs = [RewardConfig(length_reward="scheduled"), RewardConfig(granularity="intermediate")]
    for gt in (ADVERSARIAL_GT, GT_BOTH, GT_NEITHER):
        for config in configs:
            best = float("inf")
            for _ in range(3):
                start = time.perf_counter()
                score(completion, gt, 40, config)
                best = min(best, time.perf_counter() - start)
            assert best < 0.050, f"{shape} vs {gt[:40]!r}: {best * 1000:.1f} ms"


# ---------------------------------------------------------------------------------------------------------------------
# Parity with the paper's data
# ---------------------------------------------------------------------------------------------------------------------

from helpers import SHARED_DATA  # noqa: E402

RLLA_TEST = SHARED_DATA / "rlla_4k_test.parquet"


def _rlla_ground_truths() -> list[str]:
    if not RLLA_TEST.exists():
        pytest.skip(f"the paper's RL test split is not available at {RLLA_TEST} (shared data directory absent)")
    import pandas as pd

    return [row["ground_truth"] for row in pd.read_parquet(RLLA_TEST)["reward_model"]]


def test_every_paper_ground_truth_scores_max_against_itself():
    ground_truths = _rlla_ground_truths()
    assert len(ground_truths) == 80
    for index, gt in enumerate(ground_truths):
        expected_correctness = 3.0 if "<tool_call>" in gt else 0.0
        assert score(gt, gt) == RewardScore(1.0, expected_correctness, 0.0, 1.0 + expected_correctness), index
        # and at the extremes of the schedules: two-stage round 1 and smooth round 0
        assert score(gt, gt, 1, RewardConfig(scale_schedule="two_stage")).correctness == expected_correctness / 3
        assert score(gt, gt, 0, RewardConfig(scale_schedule="smooth")).format == 2.0


# ---------------------------------------------------------------------------------------------------------------------
# TRL callables
# ---------------------------------------------------------------------------------------------------------------------


def test_callables_are_named_for_trl_logging():
    assert [f.__name__ for f in get_reward_funcs(RewardConfig())] == ["format", "correctness"]
    assert [f.__name__ for f in get_reward_funcs(RewardConfig(length_reward="fixed"))] == [
        "format",
        "correctness",
        "length",
    ]
    with pytest.raises(TypeError, match="RewardConfig"):
        get_reward_funcs({"granularity": "fine"})


def test_callables_match_score_on_strings_and_conversations():
    config = RewardConfig(length_reward="fixed")
    completions = [calls_text(WEATHER), PARTIAL, "<think> a </think>\n<response> hi </response>", WRONG]
    gts = [GT_CALL, GT_CALL, GT_RESP, GT_CALL]
    conversational = [[{"role": "assistant", "content": c}] for c in completions]
    funcs = get_reward_funcs(config)
    expected = [score(c, g, 1, config) for c, g in zip(completions, gts, strict=True)]
    for batch in (completions, conversational):
        fmt, corr, length = (f(batch, ground_truth=gts) for f in funcs)
        assert fmt == [e.format for e in expected]
        assert corr == [e.correctness for e in expected]
        assert length == [e.length for e in expected]
    assert [e.correctness for e in expected] == [3.0, 1.5, 0.0, -3.0]


def test_callables_use_the_last_assistant_message():
    conversation = [
        {"role": "assistant", "content": WRONG},
        {"role": "user", "content": calls_text(WEATHER)},
        {"role": "assistant", "content": calls_text(WEATHER)},
    ]
    _, corr = get_reward_funcs(RewardConfig())
    assert corr([conversation], ground_truth=[GT_CALL]) == [3.0]


@pytest.mark.parametrize(
    "completion",
    [
        [{"role": "assistant", "content": [{"type": "text", "text": "<think> a </think>"}]}],
        [{"role": "assistant", "content": None}],
        [{"role": "user", "content": calls_text(WEATHER)}],
        [],
        None,
    ],
)
def test_callables_give_the_minimum_for_unreadable_completions(completion):
    fmt, corr = get_reward_funcs(RewardConfig())
    assert fmt([completion], ground_truth=[GT_CALL]) == [0.0]
    assert corr([completion], ground_truth=[GT_CALL]) == [-3.0]


def test_callables_warn_once_when_the_tokenizer_parsed_tool_calls_out(caplog):
    message = {"role": "assistant", "content": "<think> a </think>", "tool_calls": [{"function": {}}]}
    rewards._LOGGED.discard("parsed-tool-calls")
    _, corr = get_reward_funcs(RewardConfig())
    with caplog.at_level(logging.WARNING, logger="toolrl_trl.rewards"):
        corr([[message], [message]], ground_truth=[GT_CALL, GT_CALL])
    assert sum("response parser" in r.getMessage() for r in caplog.records) == 1


def test_callables_need_a_ground_truth_column():
    for func in get_reward_funcs(RewardConfig(length_reward="fixed")):
        with pytest.raises(ValueError, match="'ground_truth' column"):
            func(["x"], prompts=["p"])


def test_callables_read_the_round_from_trainer_state():
    config = RewardConfig(scale_schedule="two_stage")
    args = SimpleNamespace(gradient_accumulation_steps=2, steps_per_generation=4, num_iterations=1)
    fmt, corr = get_reward_funcs(config, args)
    exact = [calls_text(WEATHER)]
    # no trainer state: round 1 (two-stage first stage: correctness 3 / 3)
    assert corr(exact, ground_truth=[GT_CALL]) == [1.0]
    # global_step 58 with 2 optimizer steps per round -> round 30: second stage
    assert corr(exact, ground_truth=[GT_CALL], trainer_state=SimpleNamespace(global_step=58)) == [3.0]
    assert fmt(exact, ground_truth=[GT_CALL], trainer_state=SimpleNamespace(global_step=58)) == [0.5]
    # global_step 56 -> round 29: first stage
    assert corr(exact, ground_truth=[GT_CALL], trainer_state=SimpleNamespace(global_step=56)) == [1.0]


def test_correctness_logs_diagnostics():
    logged: dict[str, list[float]] = {}
    _, corr = get_reward_funcs(RewardConfig(granularity="coarse"))  # diagnostics do not depend on the variant
    completions = [
        calls_text(WEATHER),  # name 1, param names 1, values 2/2, exact 1, parse failure 0
        calls_text(call("get_weather", city="Paris")),  # name 1, param names 0.5, values 1/2, exact 0
        "<think> a </think>\n<response> no call </response>",  # parse failure: all 0
        "<think> a </think>",  # GT_RESP row: not counted
    ]
    corr(
        completions,
        ground_truth=[GT_CALL, GT_CALL, GT_CALL, GT_RESP],
        log_metric=lambda name, value: logged.setdefault(name, []).append(value),
    )
    assert set(logged) == set(METRIC_NAMES)
    assert all(len(values) == 1 for values in logged.values())  # one value per call
    assert logged["tool_call/name_match"] == [pytest.approx(2 / 3)]  # (1 + 1 + 0) / 3
    assert logged["tool_call/param_name_match"] == [0.5]  # (1 + 0.5 + 0) / 3
    assert logged["tool_call/param_value_match"] == [0.5]  # (2/2 + 1/2 + 0) / 3
    assert logged["tool_call/exact_match"] == [pytest.approx(1 / 3)]
    assert logged["tool_call/parse_failure"] == [pytest.approx(1 / 3)]


def test_diagnostics_match_calls_like_the_fine_reward():
    logged: dict[str, float] = {}
    _, corr = get_reward_funcs(RewardConfig())
    gt = gt_of(call("a", x=1, y=2), call("b"))
    # names [a, b] vs [a, a, c]: inter 1 / (2 + 3 - 1) = 0.25. gt a: candidates a(x=1) -> 0.5 + 1 = 1.5 and
    # a(x=1, y=2) -> 1 + 2 = 3: the second. gt b: none. param names (1 + 0) / 2; values 2 of 2; b has no parameters.
    completion = calls_text(call("a", x=1), call("a", x=1, y=2), {"name": "c"})
    corr([completion], ground_truth=[gt], log_metric=logged.__setitem__)
    assert logged == {
        "tool_call/name_match": 0.25,
        "tool_call/param_name_match": 0.5,
        "tool_call/param_value_match": 1.0,
        "tool_call/exact_match": 0.0,
        "tool_call/parse_failure": 0.0,
    }


def test_no_diagnostics_without_tool_call_rows():
    logged: list[str] = []
    _, corr = get_reward_funcs(RewardConfig())
    corr(["<think> a </think>"], ground_truth=[GT_RESP], log_metric=lambda name, value: logged.append(name))
    assert logged == []
    # and calling without log_metric (outside TRL) is fine
    assert corr(["<think> a </think>"], ground_truth=[GT_RESP]) == [0.0]


# ---------------------------------------------------------------------------------------------------------------------
# Generation round (the schedule step) from the optimizer step
# ---------------------------------------------------------------------------------------------------------------------


def test_generation_round_without_args_is_one_step_per_round():
    assert [generation_round(step) for step in (0, 1, 29, 30)] == [1, 2, 30, 31]


@pytest.mark.parametrize(
    ("accumulation", "per_generation", "iterations"),
    [(1, 1, 1), (2, 4, 1), (4, 4, 1), (2, 2, 2), (2, 3, 1), (3, 4, 2), (8, 8, 1), (1, 4, 1)],
)
def test_generation_round_inverts_trl_counters(accumulation, per_generation, iterations):
    # TRL 1.16 (GRPOTrainer._prepare_inputs / training_step): a micro-step counter `_step` grows by 1 per
    # training_step; it generates when `_step % (steps_per_generation * num_iterations) == 0`; the optimizer
    # steps (global_step += 1) after every `gradient_accumulation_steps` micro-steps.
    args = SimpleNamespace(
        gradient_accumulation_steps=accumulation, steps_per_generation=per_generation, num_iterations=iterations
    )
    every = per_generation * iterations
    for micro_step in range(0, 40 * every, every):
        global_step = micro_step // accumulation
        assert generation_round(global_step, args) == micro_step // every + 1, (micro_step, global_step)


def test_match_score_counts_repeated_names_as_a_multiset():
    # the reference's Counter intersection over len(first) + len(second) - intersection:
    # ["a","a","b"] vs ["a","a","c"]: intersection 2 (two a's), 3 + 3 - 2 = 4 -> 0.5 (a set match would give 1/5)
    assert match_score(["a", "a", "b"], ["a", "a", "c"]) == 0.5
    # ["a","a"] vs ["a"]: intersection 1, 2 + 1 - 1 = 2 -> 0.5 (a set match would call them equal: 1.0)
    assert match_score(["a", "a"], ["a"]) == 0.5
    assert match_score(["a"], ["a", "a", "a"]) == pytest.approx(1 / 3)
