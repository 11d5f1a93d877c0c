"""`make demo`: the fast variant runs every stage through the real recipes and writes a well-formed summary and plot."""

import dataclasses
import json
import math
import struct

import pytest

from toolrl_trl import demo, grammar
from toolrl_trl.data.config import DataConfig
from toolrl_trl.data.pipeline import prepare_datasets
from toolrl_trl.rewards import RewardConfig, score


@pytest.fixture(scope="module")
def fast_runs(tmp_path_factory):
    """The fast demo twice with one seed (determinism), in two folders."""
    runs = []
    for name in ("first", "second"):
        out = tmp_path_factory.mktemp("demo") / name
        runs.append((out, demo.main(["--output_dir", str(out), "--seed", "3", "--fast", "true"])))
    return runs


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_fast_demo_writes_summary_with_before_after_metrics(fast_runs):
    out, summary = fast_runs[0]
    written = json.loads((out / "summary.json").read_text())
    assert written == json.loads(json.dumps(summary)), "summary.json is what main() returned"
    for stage in ("before", "after"):
        metrics = written[stage]
        for key in ("format_ok", "exact_match", "name_match", "param_name_match", "param_value_match"):
            assert isinstance(metrics[key], float) and 0.0 <= metrics[key] <= 1.0, (stage, key, metrics[key])
        assert isinstance(metrics["mean_reward"], float) and -3.0 <= metrics["mean_reward"] <= 4.0
        assert metrics["n"] == 8 and set(metrics["subsets"]) == set(demo.SUBSETS)
        assert all(sub["n"] == 4 for sub in metrics["subsets"].values())
    settings = written["settings"]
    assert settings["seed"] == 3 and settings["fast"] is True
    assert settings["sft"]["max_steps"] == 3 and settings["grpo"]["max_steps"] == 2
    assert settings["grpo"]["command"][0] == "recipes/grpo_cold_start.py"
    assert settings["data"]["held_out_tools"], "the demo must hold tools out"
    assert isinstance(written["wall_time_s"], float) and written["wall_time_s"] > 0
    assert set(written["stage_times_s"]) == {"build", "sft", "eval_before", "grpo", "eval_after"}


def test_fast_demo_trains_through_the_recipes(fast_runs):
    out, summary = fast_runs[0]
    state = json.loads((out / "grpo" / "trainer_state.json").read_text())
    assert state["global_step"] == 2, "GRPO ran through recipes/grpo_cold_start.py for the requested steps"
    assert (out / "sft" / "model.safetensors").is_file() and (out / "grpo" / "model.safetensors").is_file()
    curves = summary["training_curves"]
    for key in ("rewards/format/mean", "rewards/correctness/mean", "reward", "tool_call/exact_match"):
        assert [step for step, _ in curves[key]] == [1, 2], key
        assert all(math.isfinite(value) for _, value in curves[key])


def test_fast_demo_plot_is_a_png(fast_runs):
    out, _ = fast_runs[0]
    data = (out / "rewards.png").read_bytes()
    width, height = _png_size(data)
    assert width >= 400 and height >= 300
    assert len(data) > 5_000, "an empty figure compresses to almost nothing"


def test_same_seed_same_numbers(fast_runs):
    (_, first), (_, second) = fast_runs
    for key in ("before", "after", "training_curves"):
        assert first[key] == second[key], key


def test_habits_cost_reward_and_load_through_the_data_layer(tmp_path):
    config = demo.DemoConfig(
        train_tasks=60, eval_unseen_prompts=3, eval_unseen_tools=3, seed=1, repeated_call_rate=1.0
    )
    tasks = demo.build_tasks(config)
    counts = demo.write_datasets(tasks, config, tmp_path)
    assert counts["sft_transcripts"] == counts["repeated_call"] == 60
    assert 0 < counts["extra_response"] < 60, "extra_response_rate 0.6 draws some transcripts, not all"
    sft = [json.loads(line) for line in (tmp_path / "sft.jsonl").read_text().splitlines()]
    grpo = [json.loads(line) for line in (tmp_path / "grpo.jsonl").read_text().splitlines()]
    chatty = 0
    for sft_row, grpo_row, task in zip(sft, grpo, tasks["train"], strict=True):
        transcript, truth = sft_row["completion"][0]["content"], grpo_row["ground_truth"]
        assert truth == task.output, "GRPO ground truths are the correct turns"
        assert grammar.parse_ground_truth_calls(transcript) == [*task.calls, task.calls[-1]]
        scored = score(transcript, truth, 1, RewardConfig())
        assert scored.correctness < 3.0, "a repeated call must cost correctness"
        if grammar.RESPONSE_OPEN in transcript:
            chatty += 1
            assert scored.format == 0.0, "an unrequested <response> must cost the format reward"
        else:
            assert scored.format == 1.0
    assert chatty == counts["extra_response"]
    clean = dataclasses.replace(config, repeated_call_rate=0.0, extra_response_rate=0.0)
    assert demo.write_datasets(tasks, clean, tmp_path) == {
        "sft_transcripts": 60,
        "repeated_call": 0,
        "extra_response": 0,
    }
    for row, task in zip((tmp_path / "sft.jsonl").read_text().splitlines(), tasks["train"], strict=True):
        assert json.loads(row)["completion"][0]["content"] == task.output
    held_out = [json.loads(line) for line in (tmp_path / "heldout.jsonl").read_text().splitlines()]
    assert [row["subset"] for row in held_out] == ["unseen_prompts"] * 3 + ["unseen_tools"] * 3
    for name, kind in (("sft.jsonl", "sft"), ("grpo.jsonl", "rl")):
        prepared = prepare_datasets(DataConfig(data_source=str(tmp_path / name), test_size=0), kind)
        assert len(prepared.datasets["train"]) == 60, name


def test_held_out_sets_are_unseen():
    config = demo.DemoConfig(train_tasks=200, eval_unseen_prompts=20, eval_unseen_tools=20, seed=2)
    tasks = demo.build_tasks(config)
    held_out = set(demo.synthetic.select_held_out_tools(config.held_out_tools, config.seed))
    train_tools = {spec.name for task in tasks["train"] for spec in task.tools}
    assert not train_tools & held_out, "a training prompt lists a held-out tool"
    assert all({c["name"] for c in t.calls} & held_out for t in tasks["unseen_tools"])
    assert all(not {spec.name for spec in t.tools} & held_out for t in tasks["unseen_prompts"])
    train_prompts = {json.dumps(demo.demo_prompt(t)) for t in tasks["train"]}
    assert not any(json.dumps(demo.demo_prompt(t)) in train_prompts for t in tasks["unseen_prompts"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--held_out_tools", "0"], "held_out_tools"),
        (["--repeated_call_rate", "1.5"], "repeated_call_rate"),
        (["--train_tasks", "0"], "train_tasks"),
        (["--task_weights", "singel=1"], "singel"),
        (["--sft_recipe", "missing.yaml"], "missing.yaml"),
    ],
)
def test_bad_options_fail_before_anything_runs(argv, message, tmp_path, capsys):
    """A bad value is a usage error: one line naming it, exit status 2, nothing written."""
    with pytest.raises(SystemExit) as stopped:
        demo.main(["--output_dir", str(tmp_path / "out"), *argv])
    assert stopped.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert ": error: " in error
    assert message in error
    assert not (tmp_path / "out").exists()


def test_bad_recipe_option_fails_before_the_output_folder_is_touched(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep").write_text("x")
    bad = tmp_path / "bad_sft.yaml"
    bad.write_text((demo.RECIPES_DIR / "tiny" / "demo_sft.yaml").read_text() + "no_such_option: 1\n")
    with pytest.raises(Exception, match="no_such_option"):
        demo.main(["--output_dir", str(out), "--sft_recipe", str(bad)])
    assert (out / "keep").exists()


def test_metrics_come_from_the_reward_module():
    gt = '<think> x </think>\n<tool_call>\n{"name": "f", "parameters": {"a": 1, "b": "x"}}\n</tool_call>'
    wrong_value = gt.replace('"x"', '"y"')
    broken = "<think> x </think>\n<tool_call>\nnot json\n</tool_call>"
    metrics = demo.score_completions([gt, wrong_value, broken], [gt, gt, gt], RewardConfig())
    assert metrics["n"] == 3
    assert metrics["format_ok"] == pytest.approx(1.0)
    assert metrics["exact_match"] == pytest.approx(1 / 3)
    assert metrics["name_match"] == pytest.approx(2 / 3)
    assert metrics["param_value_match"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert metrics["parse_failure"] == pytest.approx(1 / 3)
    # total = format + correctness: 1 + 3; 1 + (6 * 3/4 - 3) (name 1, param names 1, one value of two); 1 - 3
    assert metrics["mean_reward"] == pytest.approx((4.0 + 2.5 - 2.0) / 3)


def test_table_lists_every_metric_before_and_after():
    row = {m: 0.25 for m in demo.METRICS} | {"n": 4}
    after = {m: 0.5 for m in demo.METRICS} | {"n": 4}
    table = demo.format_table(row | {"subsets": {"unseen_tools": row}}, after | {"subsets": {"unseen_tools": after}})
    for metric in demo.METRICS:
        assert metric in table
    assert "+0.250" in table and "unseen tools (4 tasks)" in table


@pytest.mark.slow
def test_full_demo_meets_the_bar(tmp_path):
    """`make demo` as shipped: GRPO raises held-out exact match and mean reward, in under 10 minutes."""
    summary = demo.main(["--output_dir", str(tmp_path / "demo"), "--seed", "0"])
    before, after = summary["before"], summary["after"]
    assert after["exact_match"] >= before["exact_match"] + 0.2, (before["exact_match"], after["exact_match"])
    assert after["mean_reward"] >= before["mean_reward"] + 0.5, (before["mean_reward"], after["mean_reward"])
    assert after["format_ok"] >= 0.9
    assert summary["wall_time_s"] < 600


def test_output_folder_is_emptied_only_when_a_previous_demo_wrote_it(tmp_path):
    previous = demo.prepare_output_dir(tmp_path / "previous")
    (previous / "grpo" / "checkpoint-2").mkdir(parents=True)
    assert list(demo.prepare_output_dir(previous).iterdir()) == [previous / demo.OUTPUT_MARKER]
    other = tmp_path / "other"
    other.mkdir()
    (other / "thesis.tex").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a previous demo output"):
        demo.prepare_output_dir(other)
    assert (other / "thesis.tex").read_text() == "keep me"
    assert demo.prepare_output_dir(tmp_path / "new" / "nested").is_dir()


def _training_tools(config: demo.DemoConfig):
    held_out = set(demo.synthetic.select_held_out_tools(config.held_out_tools, config.seed))
    return [tool for tool in demo.synthetic.CATALOG if tool.name not in held_out], held_out


def test_copy_tasks_call_a_listed_made_up_tool_with_the_requested_value():
    config = demo.DemoConfig(seed=3)
    tools, held_out = _training_tools(config)
    words = demo.catalogue_words()
    tasks = demo.copy_tasks(200, config.seed, tools, words)
    assert tasks == demo.copy_tasks(200, config.seed, tools, words), "copy tasks must be seeded"
    allowed_parts = set(demo.training_name_parts(tools))
    held_out_parts = {part for name in held_out for part in name.split("_")} - allowed_parts
    for task in tasks:
        (call,) = task.calls
        listed = {spec.name: spec for spec in task.tools}
        assert call["name"] in listed and len(listed) == 2
        assert not set(listed) & held_out
        assert not {part for name in listed for part in name.split("_")} & held_out_parts
        ((param, value),) = call["parameters"].items()
        schema = listed[call["name"]].parameters[param]
        assert schema["type"] == {str: "str", int: "int", float: "float"}[type(value)]
        assert demo.synthetic.say(value) in task.request or str(value) in task.request
        turn = grammar.parse_assistant_turn(task.output)
        assert list(turn.tool_calls) == [call]
    assert any(isinstance(next(iter(t.calls[0]["parameters"].values())), int) for t in tasks)


def test_copy_transcripts_are_added_to_the_sft_data_only(tmp_path):
    config = demo.DemoConfig(train_tasks=40, eval_unseen_prompts=4, eval_unseen_tools=4, copy_transcripts=25)
    counts = demo.write_datasets(demo.build_tasks(config), config, tmp_path)
    assert counts["copy_transcripts"] == 25
    sft = [json.loads(line) for line in (tmp_path / "sft.jsonl").read_text().splitlines()]
    grpo = (tmp_path / "grpo.jsonl").read_text().splitlines()
    assert len(sft) == 40 + 25 and len(grpo) == 40


def test_copy_pretraining_teaches_the_repeat_and_saves_in_place(tmp_path):
    """A few steps on repeated random strings lower the loss on the repeat; the model is saved where it was."""
    import torch
    from transformers import AutoModelForCausalLM

    from toolrl_trl.tiny import TinySize

    size = TinySize(vocab_size=400, hidden_size=64, intermediate_size=128, num_layers=2, num_heads=4, num_kv_heads=2)
    corpus = [f"tool number {i} calls get_thing_{i} with value {i * 7}" for i in range(50)]
    demo.build_tiny_model(tmp_path, "qwen2", corpus=corpus, size=size, seed=0)

    def repeat_loss() -> float:
        model = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
        ids = torch.randint(50, model.config.vocab_size, (8, 12), generator=torch.Generator().manual_seed(1))
        x = torch.cat([ids, ids], 1)
        with torch.no_grad():
            logits = model(x).logits[:, 11:-1]
        return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 12:].reshape(-1)).item()

    before = repeat_loss()
    demo.pretrain_copying(tmp_path, steps=300, seed=0, length=12)
    after = repeat_loss()
    assert after < before - 1.0, (before, after)
    assert not (tmp_path / "copy_pretraining").exists()
