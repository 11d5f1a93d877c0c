"""`make multiturn-demo`: the habits of the SFT start, the tokenizer's one-token system blocks, and a fast run of every
stage (SFT through TRL's SFTTrainer, GRPO with executed rollouts through recipes/grpo_multiturn.py's body)."""

import json

import pytest

from toolrl_trl.envs import demo
from toolrl_trl.envs.base import get_environment


@pytest.fixture(scope="module")
def tasks():
    config = demo.MultiTurnDemoConfig(output_dir="unused")
    return demo.generator_for(config).tasks("train", 24)


def _calls(messages):
    return [m["tool_calls"][0]["function"] for m in messages if m["role"] == "assistant" and m.get("tool_calls")]


def test_answer_early_habit_skips_the_dependent_call_and_answers_wrongly(tasks):
    for task in tasks:
        messages = demo.habit_transcript(task, "answer_early")
        assert [m["role"] for m in messages] == ["assistant", "tool", "assistant"], task.request
        assert _calls(messages) == [task.task["reference_calls"][0]], "the lookup is still made, as the reference"
        assert messages[-1]["content"] != task.answer, "the early answer is not the reference answer"


def test_stop_early_habit_makes_the_lookup_then_gives_up(tasks):
    for task in tasks:
        messages = demo.habit_transcript(task, "stop_early")
        assert _calls(messages) == [task.task["reference_calls"][0]]
        assert messages[1]["content"] == json.dumps(task.results[0], sort_keys=True), "the lookup's real result"
        assert messages[-1] == {"role": "assistant", "content": demo.STOP_EARLY_REPLY}


def test_guess_habit_calls_with_a_default_value(tasks):
    guesses = []
    for task in tasks:
        calls = _calls(demo.habit_transcript(task, "guess"))
        assert len(calls) == 2 and calls[0] == task.task["reference_calls"][0]
        assert calls[1]["arguments"] != task.task["reference_calls"][1]["arguments"]
        guesses.append(json.dumps(calls[1]["arguments"], sort_keys=True))
    most = max(guesses.count(g) for g in set(guesses))
    assert most >= 3, "the guess is a default (the same value for most tasks), so greedy decoding makes it"


def test_habit_rate_counts_and_is_seeded(tasks):
    rows, with_habit = demo.sft_rows(tasks, "answer_early", 0.5, seed=1)
    again, count = demo.sft_rows(tasks, "answer_early", 0.5, seed=1)
    assert rows == again and with_habit == count
    assert 0 < with_habit < len(tasks)
    short = sum(len(r["completion"]) == 3 for r in rows)
    assert short == with_habit, "every habit transcript lacks the second call; no reference transcript does"
    assert demo.sft_rows(tasks, "answer_early", 0.0)[1] == 0


def test_bad_habit_fails_with_the_valid_names():
    with pytest.raises(ValueError, match="stop_early, answer_early, guess"):
        demo.MultiTurnDemoConfig(output_dir="unused", habit="lazy")
    with pytest.raises(ValueError, match="habit_rate"):
        demo.MultiTurnDemoConfig(output_dir="unused", habit_rate=1.5)


def test_a_bad_value_on_the_command_line_is_one_line_and_exit_status_2(capsys):
    with pytest.raises(SystemExit) as stopped:
        demo.main(["--output_dir", "unused", "--habit_rate", "1.5"])
    assert stopped.value.code == 2
    assert "error: habit_rate must be in [0, 1], got 1.5" in capsys.readouterr().err


def test_system_block_is_one_token_in_sft_rows_and_in_trls_rendering(tmp_path, tasks):
    """The block is one token both in the SFT text and in the prompt TRL renders from the environment's methods."""
    from transformers import AutoTokenizer

    from toolrl_trl.envs.world import world_vocabulary
    from toolrl_trl.tiny import TinySize, build_tiny_model

    rows, _ = demo.sft_rows(tasks, "answer_early", 0.5)
    blocks = demo.system_blocks(rows)
    assert len(blocks) == len({r["tools"] for r in rows}) and all("<tools>" in b for b in blocks)
    size = TinySize(vocab_size=600, hidden_size=16, intermediate_size=32, num_layers=1, num_heads=2, num_kv_heads=1)
    corpus = demo.tokenizer_corpus(rows)
    build_tiny_model(tmp_path, "qwen2", corpus=corpus, size=size, whole_words=world_vocabulary(), phrases=blocks)
    tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    block_ids = {tokenizer.convert_tokens_to_ids(block) for block in blocks}
    for task, row in zip(tasks[:6], rows, strict=False):
        sft_ids = demo.tokenized_sft_rows([row], tokenizer)[0]["input_ids"]
        env = get_environment(task.env_name)()
        trl_ids = tokenizer.apply_chat_template(
            task.prompt(), tools=[getattr(env, name) for name in env.tool_names()], add_generation_prompt=True
        )
        trl_ids = trl_ids["input_ids"] if hasattr(trl_ids, "keys") else trl_ids
        for ids in (sft_ids, trl_ids):
            assert len(block_ids & set(ids)) == 1, "the environment's system block is a single token"
        assert sft_ids[: len(trl_ids)] == list(trl_ids), "SFT rows and TRL's rollout prompts tokenize alike"
        assert len(trl_ids) < 40, f"prompt of {len(trl_ids)} tokens: the block was not collapsed"


def test_fast_multiturn_demo_runs_every_stage(tmp_path):
    out = tmp_path / "mt"
    summary = demo.main(["--output_dir", str(out), "--seed", "1", "--fast", "true"])
    assert json.loads((out / "summary.json").read_text()) == json.loads(json.dumps(summary))
    for stage in ("before", "after"):
        metrics = summary[stage]
        assert metrics["n"] == demo.FAST_PRESET["eval_tasks"]
        for key in ("success", "state_match", "answer_match"):
            assert 0.0 <= metrics[key] <= 1.0, (stage, key)
    state = json.loads((out / "grpo" / "trainer_state.json").read_text())
    assert state["global_step"] == 2, "GRPO ran with executed rollouts for the requested steps"
    assert summary["sft_transcripts"]["habit"] == "stop_early"
    assert 0 < summary["sft_transcripts"]["with_habit"] < summary["sft_transcripts"]["total"]
    assert set(summary["stage_times_s"]) == {"build", "sft", "eval_before", "grpo", "eval_after"}
    assert [step for step, _ in summary["training_curves"]["outcome/success"]] == [1, 2]
    with pytest.raises(FileExistsError):
        (tmp_path / "other").mkdir()
        (tmp_path / "other" / "keep.txt").write_text("mine")
        demo.main(["--output_dir", str(tmp_path / "other"), "--fast", "true"])


@pytest.mark.slow
def test_full_multiturn_demo_meets_the_bar(tmp_path):
    """`make multiturn-demo` as shipped (seed 0): GRPO on executed rollouts makes the second call and raises the
    held-out success rate, in under 10 minutes on 2 cores."""
    summary = demo.main(["--output_dir", str(tmp_path / "mt"), "--seed", "0"])
    before, after = summary["before"], summary["after"]
    assert after["success"] >= before["success"] + 0.1, (before["success"], after["success"])
    assert after["tool_calls"] >= before["tool_calls"] + 0.8, (before["tool_calls"], after["tool_calls"])
    assert after["format"] >= 0.9
    assert summary["wall_time_s"] < 600
