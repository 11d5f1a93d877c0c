"""BFCL's stateful APIs as environments (toolrl_trl/envs/bfcl_envs.py) and the decontamination check."""

from __future__ import annotations

import hashlib
import inspect
import json
import types

import pytest

from toolrl_trl.envs import ENVIRONMENTS, TASK_SOURCES, ToolError, bfcl_envs, decontamination
from toolrl_trl.envs.multiturn import check_row

pytestmark = pytest.mark.skipif(
    not bfcl_envs.bfcl_available(), reason='bfcl-eval is not installed (pip install --no-deps "bfcl-eval==2026.3.23")'
)


def _row(env_name: str, scenario: dict) -> dict:
    cls = ENVIRONMENTS[env_name]
    task = {
        "env": env_name,
        "initial_state": {cls.bfcl_class: scenario},
        "reference_calls": [],
        "reference_state": {},
        "reference_answer": None,
    }
    return {"prompt": [], "task": json.dumps(task)}


def _digest(rows: list[dict]) -> str:
    return hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()


@pytest.fixture(scope="module")
def generated() -> dict[str, list[dict]]:
    return {name: bfcl_envs.generate_tasks(name, 60, seed=0) for name in bfcl_envs.BFCL_ENVS}


# ---------------------------------------------------------------------------------------------------------------------
# Environments
# ---------------------------------------------------------------------------------------------------------------------


def test_registered_with_the_task_source():
    for name in ("bfcl_ticket", "bfcl_message", "bfcl_vehicle"):
        assert issubclass(ENVIRONMENTS[name], bfcl_envs.BfclEnvironment)
    assert TASK_SOURCES[bfcl_envs.TASK_SOURCE] is bfcl_envs.build_task_source


@pytest.mark.parametrize("env_name", bfcl_envs.BFCL_ENVS)
def test_tools_are_bfcl_methods_with_valid_schemas(env_name):
    from transformers.utils import get_json_schema

    cls = ENVIRONMENTS[env_name]
    api = bfcl_envs.load_api_class(cls.bfcl_module, cls.bfcl_class)
    env = cls()
    # TRL's own rule: public functions of the class other than reset/get_reward; end_state is not one.
    trl_tools = [n for n, _ in inspect.getmembers(cls, inspect.isfunction) if not n.startswith("_") and n != "reset"]
    assert trl_tools == env.tool_names() and "end_state" not in trl_tools and len(trl_tools) >= 8
    for name in trl_tools:
        assert callable(getattr(api, name, None)), f"{name} is not a {cls.bfcl_class} method"
        schema = get_json_schema(getattr(env, name))["function"]
        assert schema["name"] == name and schema["description"]
        properties = schema["parameters"].get("properties", {})
        assert set(properties) == set(inspect.signature(getattr(cls, name)).parameters) - {"self"}
        for arg, spec in properties.items():
            assert spec.get("type") and spec.get("description"), f"{name}.{arg}: {spec}"


def test_ticket_env_delegates_and_reports_bfcl_errors():
    env = ENVIRONMENTS["bfcl_ticket"]()
    scenario = {"ticket_queue": [], "ticket_counter": 7, "current_user": None}
    env.reset(**_row("bfcl_ticket", scenario))
    with pytest.raises(ToolError, match="not authenticated"):
        env.create_ticket(title="Mouse broken")
    assert env.calls[-1]["name"] == "create_ticket" and "not authenticated" in env.calls[-1]["error"]
    assert json.loads(env.ticket_login(username="ana", password="pw")) == {"success": True}
    created = json.loads(env.create_ticket(title="Mouse broken", description="Left button dead", priority=4))
    assert created["id"] == 7 and created["created_by"] == "ana"
    json.loads(env.edit_ticket(ticket_id=7, status="In Progress"))
    listed = json.loads(env.get_user_tickets(status="in progress"))["tickets"]
    assert [t["id"] for t in listed] == [7]
    state = env.end_state()["TicketAPI"]
    assert state == {
        "current_user": "ana",
        "ticket_counter": 8,
        "ticket_queue": [
            {
                "id": 7,
                "title": "Mouse broken",
                "description": "Left button dead",
                "status": "In Progress",
                "priority": 4,
                "created_by": "ana",
            }
        ],
    }
    assert scenario["ticket_queue"] == [], "the task's initial state must not be mutated"
    env.reset(**_row("bfcl_ticket", scenario))
    assert env.calls == [] and env.end_state()["TicketAPI"]["ticket_queue"] == []


def test_message_env_state_is_json_with_bfcl_ids():
    env = ENVIRONMENTS["bfcl_message"]()
    scenario = {
        "random_seed": 5,
        "generated_ids": [],
        "user_count": 2,
        "user_map": {"Ann": "USR001", "Ben": "USR002"},
        "inbox": [],
        "message_count": 0,
        "current_user": None,
    }
    env.reset(**_row("bfcl_message", scenario))
    with pytest.raises(ToolError, match="No user is currently logged in"):
        env.send_message(receiver_id="USR002", message="hi")
    env.message_login(user_id="USR001")
    sent = json.loads(env.send_message(receiver_id="USR002", message="hi"))
    state = env.end_state()["MessageAPI"]
    assert state["generated_ids"] == [sent["message_id"]["new_id"]]  # BFCL's set, as a JSON list
    assert state["inbox"] == [{"USR002": "hi"}] and state["message_count"] == 1
    assert json.loads(json.dumps(state)) == state


def test_tool_before_reset_is_a_tool_error():
    env = ENVIRONMENTS["bfcl_vehicle"]()
    with pytest.raises(ToolError, match="reset"):
        env.displayCarStatus(option="fuel")


# ---------------------------------------------------------------------------------------------------------------------
# Task generation
# ---------------------------------------------------------------------------------------------------------------------


def test_generation_is_byte_identical_per_seed(generated):
    for name in bfcl_envs.BFCL_ENVS:
        again = bfcl_envs.generate_tasks(name, 60, seed=0)
        assert _digest(again) == _digest(generated[name])
        assert _digest(bfcl_envs.generate_tasks(name, 20, seed=0)) == _digest(generated[name][:20])
        assert _digest(bfcl_envs.generate_tasks(name, 20, seed=1)) != _digest(generated[name][:20])


def test_rows_follow_the_protocol_and_cover_every_template(generated):
    for name, rows in generated.items():
        templates = {json.loads(row["task"])["template"] for row in rows}
        assert templates == {t.name for t in bfcl_envs.TEMPLATES[name]}
        for row in rows:
            check_row(row, name)
            assert [m["role"] for m in row["prompt"]] == ["system", "user"] and row["env_name"] == name
        assert len({row["task"] for row in rows}) == len(rows), f"{name}: a task is repeated"
        assert len({row["prompt"][1]["content"] for row in rows}) >= 20, f"{name}: too few distinct questions"


def test_reference_calls_replay_to_the_reference_state(generated):
    for name, rows in generated.items():
        for row in rows:
            task = json.loads(row["task"])
            assert 2 <= len(task["reference_calls"]) <= 4
            env = ENVIRONMENTS[name]()
            env.reset(**row)
            before = env.end_state()
            for call in task["reference_calls"]:
                getattr(env, call["name"])(**call["arguments"])
            assert all(c["error"] is None for c in env.calls), env.calls
            assert env.end_state() == task["reference_state"] != before, task["template"]
            assert task["reference_answer"] is None or isinstance(task["reference_answer"], str)


def test_reference_answers_agree_with_the_initial_state(generated):
    """Recompute each answer from the initial state alone, independently of the executed calls."""
    checked = 0
    for rows in generated.values():
        for row in rows:
            task = json.loads(row["task"])
            state = next(iter(task["initial_state"].values()))
            args = task["reference_calls"][0]["arguments"]
            template, answer = task["template"], task["reference_answer"]
            if template in ("inspect_close", "escalate"):
                ticket = next(t for t in state["ticket_queue"] if t["id"] == args["ticket_id"])
                assert answer == str(ticket["priority"] if template == "inspect_close" else ticket["created_by"])
            elif template == "search_delete":
                texts = [next(iter(m.values())) for m in state["inbox"]]
                assert answer == str(sum(args["keyword"] in t.lower() for t in texts)) and answer != "0"
            elif template == "send_stats":
                assert answer == str(len(state["inbox"]) + 1)
            elif template == "fill_tank":
                assert answer == f"{50 - state['fuelLevel']:g}"
            elif template == "tire_brake":
                lowest = min(bfcl_envs.TIRES, key=lambda key: state[key])
                assert answer == bfcl_envs.TIRES[lowest] and answer in (
                    "front left",
                    "front right",
                    "rear left",
                    "rear right",
                )
            else:
                assert answer is None, template
                continue
            checked += 1
    assert checked > 50


def test_task_source_splits_are_disjoint_and_clean():
    config = types.SimpleNamespace(world_train_size=18, world_test_size=9, dataset_seed=0)
    train = bfcl_envs.build_task_source("train", config)
    test = bfcl_envs.build_task_source("test", config)
    assert len(train) == 18 and 0 < len(test) <= 9
    assert {json.loads(r["task"])["env"] for r in train} == set(bfcl_envs.BFCL_ENVS)
    assert not {r["task"] for r in train} & {r["task"] for r in test}


# ---------------------------------------------------------------------------------------------------------------------
# Decontamination
# ---------------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def index():
    try:
        return decontamination.bfcl_index()
    except decontamination.BfclDataMissingError as err:
        pytest.skip(f"BFCL's multi-turn data files are not installed: {err}")


@pytest.fixture(scope="module")
def real_question(index):
    """A real BFCL multi-turn user turn of some length (so a light edit leaves it recognisable)."""
    return next(q for q in index.questions if 90 <= len(q.text) <= 200)


def test_bfcl_questions_are_loaded(index):
    assert len(index.questions) > 1000
    ids = {q.entry_id.rsplit("_", 1)[0] for q in index.questions}
    assert {"multi_turn_base", "multi_turn_miss_func", "multi_turn_miss_param", "multi_turn_long_context"} <= ids


def test_exact_copy_is_caught(index, real_question):
    report = decontamination.check_questions(["An unrelated request to order pizza.", real_question.text], index)
    assert report.tasks_checked == 2 and len(report.offending) == 1
    match = report.offending[0]
    assert match.index == 1 and match.jaccard == 1.0 and match.bfcl_id == real_question.entry_id


def test_lightly_edited_copy_is_caught(index, real_question):
    words = real_question.text.split()
    words[len(words) // 2] = "zebra"  # one word replaced, plus case and punctuation changes
    edited = " ".join(words).upper().replace(",", "") + "!!"
    report = decontamination.check_questions([edited], index)
    assert len(report.offending) == 1 and 0.4 <= report.offending[0].jaccard < 1.0


def test_the_threshold_catches_most_edited_copies(index):
    assert decontamination.edited_copy_recall(index, words_replaced=1, sample=60) >= 0.95
    assert decontamination.edited_copy_recall(index, words_replaced=2, sample=60) >= 0.9


def test_pasted_into_a_longer_question_is_caught(index):
    long = next(q for q in index.questions if 120 <= len(q.text) <= 200)
    padded = f"Before anything else, greet me warmly and mention the weather. {long.text} Thanks a lot, friend!"
    report = decontamination.check_questions([padded], index)
    assert len(report.offending) == 1 and report.offending[0].containment >= 0.8


def test_generated_tasks_are_clean(index, generated):
    rows = [row for rows in generated.values() for row in rows]
    report = decontamination.assert_clean(rows, index)
    assert report.tasks_checked == len(rows) and not report.offending
    assert 0 < report.max_jaccard < decontamination.JACCARD_THRESHOLD
    contaminated = rows[:3] + [{"prompt": [{"role": "user", "content": index.questions[0].text}], "task": "{}"}]
    with pytest.raises(decontamination.ContaminationError, match="1 generated question"):
        decontamination.assert_clean(contaminated, index)


def test_cli_exit_codes(tmp_path, index, real_question, capsys):
    rows = bfcl_envs.generate_tasks("bfcl_ticket", 4, seed=0)
    clean = tmp_path / "clean.jsonl"
    clean.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert decontamination.main(["--rows", str(clean)]) == 0
    assert "tasks checked: 4" in capsys.readouterr().out
    dirty = tmp_path / "dirty.json"
    dirty.write_text(json.dumps(rows + [{"prompt": [{"role": "user", "content": real_question.text}], "task": "{}"}]))
    assert decontamination.main(["--rows", str(dirty)]) == 1
    assert "offending pairs: 1" in capsys.readouterr().out
    assert decontamination.main(["--rows", str(clean), "--bfcl_data_dir", str(tmp_path)]) == 2


# ---------------------------------------------------------------------------------------------------------------------
# Through TRL's own tool loop
# ---------------------------------------------------------------------------------------------------------------------


def test_a_bfcl_task_runs_through_trls_tool_loop(tmp_path, tiny_model_dir):
    """Scripted policy (only sampling replaced), TRL's parsing and execution, this project's outcome reward."""
    from helpers import ROOT

    from toolrl_trl.configs import parse_grpo_multiturn_args
    from toolrl_trl.envs.multiturn import build_trainer, routed
    from toolrl_trl.grpo import ToolRLGRPOTrainer

    row = next(r for r in bfcl_envs.generate_tasks("bfcl_ticket", 8, seed=0) if "inspect_close" in r["task"])
    task = json.loads(row["task"])
    argv = ["--config", str(ROOT / "recipes" / "tiny" / "grpo_multiturn.yaml"), "--model_name_or_path"]
    argv += [str(tiny_model_dir), "--output_dir", str(tmp_path / "out"), "--max_steps", "1"]
    argv += ["--max_completion_length", "400", "--logging_steps", "1"]
    trainer, _ = build_trainer(
        ToolRLGRPOTrainer, *parse_grpo_multiturn_args(argv, world_size=1), rows={"train": routed([row]), "test": []}
    )
    tokenizer = trainer.processing_class

    def turn(round_: int) -> str:
        if round_ < len(task["reference_calls"]):
            call = task["reference_calls"][round_]
            return f"<tool_call>\n{json.dumps({'name': call['name'], 'arguments': call['arguments']})}\n</tool_call>"
        return f"It had priority {task['reference_answer']}, and it is closed now."

    def generate(prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        turns = [turn(tokenizer.decode(ids).count("<tool_response>")) for ids in prompt_ids]
        return [tokenizer(t + tokenizer.eos_token, add_special_tokens=False)["input_ids"] for t in turns], None

    trainer._generate_single_turn = generate
    trainer.model.train()  # metrics go to the "train" bucket
    trainer._generate_and_score_completions([trainer.train_dataset[0]] * trainer.args.per_device_train_batch_size)
    env = trainer.environments[0]
    assert isinstance(env, ENVIRONMENTS["bfcl_ticket"])
    assert [c["name"] for c in env.calls] == ["get_ticket", "close_ticket"] and env.calls[0]["error"] is None
    assert env.end_state() == task["reference_state"]
    metrics = {k: v[-1] for k, v in trainer._metrics["train"].items() if v}
    assert metrics["outcome/success"] == 1.0
