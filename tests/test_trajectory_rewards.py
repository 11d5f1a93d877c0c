"""The multi-turn rewards (toolrl_trl/trajectory_rewards.py) on hand-written episodes and real world environments."""

from __future__ import annotations

import json

import pytest

from toolrl_trl import rewards
from toolrl_trl.envs import get_environment
from toolrl_trl.envs.world import WorldGenerator
from toolrl_trl.trajectory_rewards import (
    EPISODE_METRICS,
    TrajectoryRewardConfig,
    answer_matches,
    get_trajectory_reward_funcs,
    read_episode,
    turn_well_formed,
)


def call(tool_name, **arguments):
    return {"type": "function", "function": {"name": tool_name, "arguments": arguments}}


def assistant(content="", *calls, **extra):
    message = {"role": "assistant", "content": content, **extra}
    if calls:
        message["tool_calls"] = list(calls)
    return message


def tool(content="{}"):
    return {"role": "tool", "name": "t", "content": content}


@pytest.fixture(scope="module")
def task():
    """A contact_email task: find_contact, then send_email to the address it returned (state changes)."""
    tasks = WorldGenerator(seed=0, chains=("contact_email",)).tasks("train", 1)
    return tasks[0]


def reference_episode(task, answer=None):
    messages = []
    for reference in task.task["reference_calls"]:
        messages += [assistant("", call(reference["name"], **reference["arguments"])), tool()]
    return messages + [assistant(answer if answer is not None else task.answer)]


def run_episode(task, completion):
    """Execute the episode's calls on a fresh environment, as TRL's loop would, and return it."""
    env = get_environment(task.env_name)()
    env.reset(**task.row())
    for message in completion:
        for c in message.get("tool_calls", []):
            try:
                getattr(env, c["function"]["name"])(**c["function"]["arguments"])
            except Exception:  # noqa: BLE001 - a failed call is recorded by the environment
                pass
    return env


def score(task, completion, env=None, config=TrajectoryRewardConfig(), args=None, output_format="native"):
    env = env or run_episode(task, completion)
    logged = {}
    funcs = get_trajectory_reward_funcs(config, args, output_format)
    kwargs = dict(task=[task.row()["task"]], environments=[env], log_metric=logged.__setitem__)
    values = {f.__name__: f([completion], **kwargs)[0] for f in funcs}
    return values, logged


def test_the_reference_episode_earns_every_maximum(task):
    values, logged = score(task, reference_episode(task))
    assert values == {"format": 1.0, "correctness": 3.0, "outcome": 1.0}
    assert set(logged) == set(EPISODE_METRICS)
    assert logged["episode/turns"] == 3 and logged["episode/tool_calls"] == 2 and logged["outcome/success"] == 1


def test_the_outcome_reads_the_environments_state_not_the_text(task):
    completion = reference_episode(task)
    env = run_episode(task, completion)
    env.state["outbox"].clear()  # the email never went out, whatever the episode says
    values, logged = score(task, completion, env=env)
    assert values["outcome"] == 0.0 and values["correctness"] == 3.0
    assert logged["outcome/state_match"] == 0 and logged["outcome/answer_match"] == 1


def test_a_right_state_with_a_wrong_answer_fails_the_outcome(task):
    values, logged = score(task, reference_episode(task, answer="Done."))
    assert values["outcome"] == 0.0 and logged["outcome/state_match"] == 1
    values, _ = score(task, reference_episode(task, answer="Done."), config=TrajectoryRewardConfig(answer_match="off"))
    assert values["outcome"] == 1.0


def test_a_stalled_environment_fails_the_outcome(task):
    completion = reference_episode(task)
    env = run_episode(task, completion)
    env.stalled = True
    assert score(task, completion, env=env)[0]["outcome"] == 0.0


def test_correctness_is_the_papers_fine_grained_reward_of_all_calls(task):
    reference = task.task["reference_calls"]
    wrong_value = json.loads(json.dumps(reference))
    wrong_value[1]["arguments"]["to"] = "someone@else.example"
    completion = [assistant("", call(c["name"], **c["arguments"])) for c in wrong_value]
    values, _ = score(task, completion)
    as_toolrl = [{"name": c["name"], "parameters": c["arguments"]} for c in reference]
    predicted = [{"name": c["name"], "parameters": c["arguments"]} for c in wrong_value]
    expected = rewards._tool_call_reward(as_toolrl, predicted, 3.0, -3.0, "fine")
    assert values["correctness"] == pytest.approx(expected) and -3.0 < expected < 3.0
    coarse = TrajectoryRewardConfig(granularity="coarse")
    assert score(task, completion, config=coarse)[0]["correctness"] == -3.0


def test_the_format_rule_is_applied_to_every_turn(task):
    first, second = task.task["reference_calls"]
    good_call = assistant("", call(first["name"], **first["arguments"]))
    leftover = assistant('<tool_call>\n{"name": "find_contact", "argu')  # TRL's fallback: unparsed markup
    completion = [good_call, tool(), leftover]
    values, logged = score(task, completion)
    assert values["format"] == 0.5  # 1 of 2 turns well formed
    assert logged["episode/unfinished"] == 0  # the broken turn is text, so the episode ended on it
    answer_only = [assistant("It is done.")]
    assert score(task, answer_only)[0]["format"] == 0.0  # the reference calls tools: no call is the wrong layout


def test_an_episode_the_iteration_cap_ended_is_logged_as_capped(task):
    first = task.task["reference_calls"][0]
    c = call(first["name"], **first["arguments"])
    completion = [assistant("", c), tool(), assistant("", c), tool(), assistant("", c)]  # 2 rounds ran, 3rd pending

    class Args:
        max_tool_calling_iterations = 2

    values, logged = score(task, completion, args=Args())
    assert logged["episode/capped"] == 1 and logged["episode/unfinished"] == 1
    assert values["format"] == pytest.approx(2 / 3) and values["outcome"] == 0.0


@pytest.mark.parametrize(
    "completion",
    [
        [],
        "plain text",
        [{"role": "assistant", "content": None, "tool_calls": "oops"}],
        [42],
        [assistant("", {"x": 1})],
    ],
)
def test_bad_model_output_gets_the_minimum_never_an_error(task, completion):
    values, _ = score(task, completion if isinstance(completion, list) else completion, env=run_episode(task, []))
    assert values["format"] == 0.0 and values["outcome"] == 0.0
    assert values["correctness"] == -3.0


def test_a_missing_task_column_or_environment_is_a_clear_error(task):
    fmt, correctness, outcome = get_trajectory_reward_funcs(TrajectoryRewardConfig())
    with pytest.raises(ValueError, match="'task' column"):
        correctness([[assistant("x")]])
    with pytest.raises(ValueError, match="environment_factory"):
        outcome([[assistant("x")]], task=[task.row()["task"]])


def test_the_toolrl_grammar_turns():
    think = {"reasoning_content": "I look it up."}
    calls = assistant("", call("find_contact", name="Ann"), **think)
    answer = assistant("<response> It is 9. </response>", **think)
    assert turn_well_formed(calls, last=False, executed=True, output_format="toolrl")
    assert turn_well_formed(answer, last=True, executed=False, output_format="toolrl")
    assert not turn_well_formed(
        assistant("<response> x </response>"), last=True, executed=False, output_format="toolrl"
    )
    assert not turn_well_formed(assistant("It is 9.", **think), last=True, executed=False, output_format="toolrl")
    episode = read_episode([calls, tool(), answer])
    assert episode.finished and len(episode.calls) == 1


@pytest.mark.parametrize(
    ("answer", "reference", "expected"),
    [
        ("It is 21 degrees in Lima.", "21", True),
        ("It is 210 degrees.", "21", False),
        ("It is 21.5 degrees.", "21", False),
        ("Balance: 1104.5 EUR", "1104.5", True),
        ("I added 2 Running  Shoes.", "running shoes", True),
        ("Sent to bob@work.example.com.", "bob@work.example.com", True),
        ("Anything", None, True),
    ],
)
def test_answer_matching_is_whole_word_and_case_blind(answer, reference, expected):
    assert answer_matches(answer, reference) is expected


def test_weights_are_configurable_and_checked():
    config = TrajectoryRewardConfig(format_weight=0.5, outcome_weight=4)
    assert config.weights == [0.5, 1.0, 4.0]
    with pytest.raises(ValueError, match="outcome_weight must be >= 0"):
        TrajectoryRewardConfig(outcome_weight=-1)
    with pytest.raises(ValueError, match="granularity='medium' is not valid"):
        TrajectoryRewardConfig(granularity="medium")
