"""The whole ``recipes/evaluate.py`` path on CPU with a tiny model, the generation backends and their token budgets,
skipping what cannot run, one-line errors, the paper's table and seeds."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from toolrl_trl.eval import bfcl
from toolrl_trl.eval.__main__ import main as cli_main
from toolrl_trl.eval.generation import Decoding, GenerationConfig, HFBackend, TokenBudget, VLLMBackend, build_backend
from toolrl_trl.eval.runner import EvalConfig, check_inputs, decoding_for, run_evaluation

ROOT = Path(__file__).resolve().parents[1]


def test_hf_backend_is_greedy_and_respects_max_new_tokens(tiny_model_dir):
    backend = HFBackend(GenerationConfig(model=str(tiny_model_dir), max_new_tokens=8, batch_size=2, device="cpu"))
    conversations = [
        [{"role": "system", "content": "S"}, {"role": "user", "content": "first question"}],
        [{"role": "user", "content": "a second, longer question that pads the batch"}],
        [{"role": "user", "content": "third"}],
    ]
    first = backend.generate(conversations)
    assert len(first) == 3 and all(isinstance(t, str) for t in first)
    assert backend.generate(conversations) == first  # greedy: deterministic
    assert backend.generate(conversations[2:]) == first[2:]  # left padding does not change an item's output
    for text in first:
        assert len(backend.tokenizer(text, add_special_tokens=False)["input_ids"]) <= 8 + 2


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed here")
def test_vllm_backend_without_vllm_says_how_to_install():
    with pytest.raises(ImportError, match=r"vllm backend needs vLLM.*\.\[vllm\].*--backend hf"):
        VLLMBackend(GenerationConfig(model="any", backend="vllm"))


def test_backend_and_input_errors_list_valid_choices():
    with pytest.raises(ValueError, match="valid: hf, vllm, openai"):
        build_backend(GenerationConfig(model="m", backend="tgi"))
    with pytest.raises(ValueError, match="--model is required"):
        build_backend(GenerationConfig())
    with pytest.raises(ValueError, match="valid: bfcl, apibank, bamboogle"):
        check_inputs(EvalConfig(benchmarks="bfcl,toolbench"))
    with pytest.raises(ValueError, match="--apibank_data"):
        check_inputs(EvalConfig(benchmarks="apibank"))
    with pytest.raises(ValueError, match="--search_corpus"):
        check_inputs(EvalConfig(benchmarks="bamboogle", bamboogle_data=__file__))
    with pytest.raises(ValueError, match="valid: paper, project"):
        check_inputs(EvalConfig(protocol="v3"))
    with pytest.raises(ValueError, match="--seeds N > 1 needs sampled decoding"):
        check_inputs(EvalConfig(seeds=3), GenerationConfig(model="m"))
    with pytest.raises(ValueError, match="keep one"):
        check_inputs(EvalConfig(paper_temperatures=True), GenerationConfig(model="m", generation_temperature=0.7))


def _small_benchmarks(tmp_path: Path) -> dict[str, Path]:
    """Benchmark files in the paper's layouts, written here so the test needs no shared data."""
    data = tmp_path / "data"
    data.mkdir()
    system = "You are a helpful multi-turn dialogue assistant. Tools: 1. Name: Echo"
    for level in (1, 2, 3):
        items = [
            {
                "system": system,
                "user": f"**Dialogue Records History**\n<user> call echo {i} </user>",
                "answer": [{"name": "Echo", "parameters": {"text": str(i)}}],
                "other": {},
            }
            for i in range(3)
        ]
        (data / f"level-{level}-api_processed.json").write_text(json.dumps(items))
    questions = [{"Question": "Who was president when Citibank was founded?", "Answer": "james madison"}] * 3
    (data / "bamboogle.json").write_text(json.dumps(questions))
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(json.dumps({"title": "Citibank", "text": "Citibank was founded in 1812."}) + "\n")
    return {"data": data, "corpus": corpus}


def test_evaluate_script_runs_every_benchmark_on_cpu(tmp_path, tiny_model_dir):
    files = _small_benchmarks(tmp_path)
    benchmarks = "bfcl,apibank,bamboogle" if bfcl.is_available() else "apibank,bamboogle"
    out = tmp_path / "results"
    command = [
        sys.executable,
        str(ROOT / "recipes" / "evaluate.py"),
        "--model", str(tiny_model_dir),
        "--benchmarks", benchmarks,
        "--limit", "2",
        "--bfcl_categories", "simple_python,irrelevance",
        "--apibank_data", str(files["data"]),
        "--apibank_levels", "1,3",
        "--bamboogle_data", str(files["data"] / "bamboogle.json"),
        "--search_corpus", str(files["corpus"]),
        "--max_search_rounds", "2",
        "--max_new_tokens", "16",
        "--batch_size", "4",
        "--device", "cpu",
        "--results_dir", str(out),
    ]  # fmt: skip
    env = {**os.environ, "BFCL_PROJECT_ROOT": str(tmp_path / "bfcl_root"), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ToolRL paper table" in done.stdout and "protocol paper" in done.stdout
    table = json.loads((out / "results.json").read_text())
    assert table["protocol"] == "paper" and table["bfcl_eval_version"] == bfcl.BFCL_EVAL_VERSION
    assert "| Model | BFCL Overall* |" in (out / "results.md").read_text()

    scores = json.loads((out / "scores.json").read_text())
    assert scores["model"] == str(tiny_model_dir) and scores["backend"] == "hf"
    printed = [json.loads(line) for line in done.stdout.strip().splitlines() if line.startswith("{")]
    assert [p["benchmark"] for p in printed] == benchmarks.split(",")
    for summary in printed:
        assert summary == scores[summary["benchmark"]]
        assert 0.0 <= summary["accuracy"] <= 1.0

    apibank_rows = [json.loads(x) for x in (out / "apibank" / "level-3.jsonl").read_text().splitlines()]
    assert [r["id"] for r in apibank_rows] == [0, 1] and all(isinstance(r["output"], str) for r in apibank_rows)
    assert scores["apibank"]["n"] == 4 and set(scores["apibank"]["levels"]) == {"1", "3"}
    bamboogle_rows = [json.loads(x) for x in (out / "bamboogle" / "predictions.jsonl").read_text().splitlines()]
    assert len(bamboogle_rows) == 2 and all(1 <= len(r["transcript"]) <= 3 for r in bamboogle_rows)

    # the saved outputs alone give back the same numbers
    rescore = ["score", "--benchmark", "apibank", "--level", "3", "--data", str(files["data"])]
    assert cli_main([*rescore, "--predictions", str(out / "apibank" / "level-3.jsonl")]) == 0
    if "bfcl" in benchmarks:
        assert scores["bfcl"]["n"] == 4 and set(scores["bfcl"]["categories"]) == {"simple_python", "irrelevance"}
        saved = sorted((out / "bfcl").glob("*.jsonl"))
        report = bfcl.score_predictions([json.loads(x) for path in saved for x in path.read_text().splitlines()])
        assert report.summary["accuracy"] == scores["bfcl"]["accuracy"]


class AnswerOnly:
    """A backend that never calls a tool: irrelevance items pass, call items fail, multi-turn turns end at once."""

    def __init__(self):
        self.calls = 0

    def generate(self, conversations):
        self.calls += 1
        return ["<think> no tool needed </think>\n<response> Done. </response>" for _ in conversations]


@pytest.mark.skipif(not bfcl.is_available(), reason="bfcl-eval is not installed")
def test_runner_saves_multi_turn_outputs_as_turns_of_steps(tmp_path):
    backend = AnswerOnly()
    config = EvalConfig(benchmarks="bfcl", bfcl_categories="multi_turn_base,irrelevance,parallel", limit=2)
    config.results_dir = str(tmp_path)
    reports = run_evaluation(config, GenerationConfig(model="answer-only"), backend=backend).reports
    rows = [json.loads(x) for x in (tmp_path / "bfcl" / "multi_turn_base.jsonl").read_text().splitlines()]
    entries = bfcl.load_entries("multi_turn_base", for_generation=True)[:2]
    assert [r["id"] for r in rows] == [e["id"] for e in entries]
    for row, entry in zip(rows, entries, strict=True):
        assert len(row["output"]) == len(entry["question"]) and all(len(turn) == 1 for turn in row["output"])
    assert backend.calls == 2 + max(len(e["question"]) for e in entries)  # lock-step: one batch per round
    summary = reports["bfcl"].summary
    assert summary["categories"] == {
        "irrelevance": {"n": 2, "accuracy": 1.0},
        "parallel": {"n": 2, "accuracy": 0.0},
        "multi_turn_base": {"n": 2, "accuracy": 0.0},
    }
    assert json.loads((tmp_path / "scores.json").read_text())["bfcl"] == summary
    assert len((tmp_path / "bfcl_items.jsonl").read_text().splitlines()) == 6


def test_token_budgets_follow_the_papers_rules():
    bfcl_rule = TokenBudget(cap=4096, model_context=True, margin=2, overflow=1000)  # BFCL's OSS handler
    assert bfcl_rule.tokens(100, 32768) == 4096  # min(4096, 32768 - 100 - 2)
    assert bfcl_rule.tokens(100, 4096) == 4096 - 100 - 2
    assert bfcl_rule.tokens(4094, 4096) == 0
    assert bfcl_rule.tokens(4095, 4096) == 1000  # the prompt leaves less than 2: the handler asks for 1000
    vllm_rule = TokenBudget(cap=4096, context=4096)  # API-Bank/Bamboogle: max_tokens 4096 in max_model_len 4096
    assert vllm_rule.tokens(1000, 32768) == 3096 and vllm_rule.tokens(5000, None) == 0
    assert TokenBudget(cap=64).tokens(10**6, 10) == 64  # a fixed budget ignores the prompt

    config, generation = EvalConfig(), GenerationConfig(model="m")
    assert decoding_for(config, generation, "bfcl", 0) == Decoding(bfcl_rule, 0.0, None)  # greedy: no seed
    assert decoding_for(config, generation, "apibank", 0).budget == vllm_rule
    assert decoding_for(EvalConfig(protocol="project"), generation, "bfcl", 0).budget == TokenBudget(cap=1024)
    fixed = decoding_for(config, GenerationConfig(model="m", max_new_tokens=32), "bamboogle", 0)
    assert fixed.budget == TokenBudget(cap=32)
    paper_t = EvalConfig(paper_temperatures=True)
    assert [decoding_for(paper_t, generation, b, 5).temperature for b in ("bfcl", "apibank", "bamboogle")] == [
        0.001,
        1e-4,
        0.001,
    ]
    assert decoding_for(paper_t, generation, "bfcl", 5).seed == 5


def test_hf_backend_cuts_each_output_at_its_own_budget(tiny_model_dir):
    backend = HFBackend(GenerationConfig(model=str(tiny_model_dir), batch_size=4, device="cpu"))
    conversations = [
        [{"role": "user", "content": "short"}],
        [{"role": "user", "content": "a much longer question, so that its prompt has more tokens than the first"}],
    ]
    from toolrl_trl.eval.generation import prompt_length, render_prompt

    lengths = [prompt_length(backend.tokenizer, render_prompt(backend.tokenizer, c)) for c in conversations]
    context = max(lengths) + 3
    budget = TokenBudget(cap=40, context=context)  # 3 tokens for the longer prompt, more for the shorter
    expected = [min(40, context - n) for n in lengths]
    assert expected[1] == 3 and expected[0] > 3
    together = backend.generate(conversations, Decoding(budget))
    for conversation, text, tokens in zip(conversations, together, expected, strict=True):
        alone = backend.generate([conversation], Decoding(TokenBudget(cap=tokens)))
        assert text == alone[0]  # greedy: the cut output is what that budget alone gives
        assert len(backend.tokenizer(text, add_special_tokens=False)["input_ids"]) <= tokens + 1
    assert backend.generate(conversations, Decoding(TokenBudget(cap=40, context=min(lengths)))) == ["", ""]


class GoldOnSeedZero:
    """A sampling stand-in: API-Bank's gold call when the seed is 0 (or greedy), nothing otherwise."""

    def __init__(self):
        self.decodings = []

    def generate(self, conversations, decoding=None):
        self.decodings.append(decoding)
        good = decoding is None or not decoding.seed
        call = '<tool_call>\n{"name": "Echo", "parameters": {"text": "%s"}}\n</tool_call>'
        out = []
        for conversation in conversations:
            number = conversation[-1]["content"].split("call echo ")[1].split(" ")[0]
            out.append(("<think> t </think>\n" + call % number) if good else "<think> t </think>")
        return out


def test_seeds_report_mean_and_spread_per_column(tmp_path):
    files = _small_benchmarks(tmp_path)
    config = EvalConfig(
        benchmarks="apibank", apibank_data=str(files["data"]), seeds=3, seed=0, results_dir=str(tmp_path / "r")
    )
    backend = GoldOnSeedZero()
    result = run_evaluation(config, GenerationConfig(model="m", generation_temperature=0.7), backend=backend)
    assert {d.seed for d in backend.decodings} == {0, 1, 2} and {d.temperature for d in backend.decodings} == {0.7}
    level1 = next(c for c in result.table.to_json()["columns"] if c["benchmark"] == "apibank" and c["key"] == "1")
    assert level1["values"] == [1.0, 0.0, 0.0]
    assert level1["mean"] == pytest.approx(1 / 3)
    assert level1["std"] == pytest.approx((((2 / 3) ** 2 + 2 * (1 / 3) ** 2) / 2) ** 0.5)  # sample std
    assert (level1["min"], level1["max"]) == (0.0, 1.0)
    assert "33.33 ± 57.74" in (tmp_path / "r" / "results.md").read_text()
    assert sorted(p.name for p in (tmp_path / "r").glob("seed-*")) == ["seed-0", "seed-1", "seed-2"]


def test_default_benchmarks_skip_what_cannot_run_and_say_so(tmp_path, caplog):
    import logging

    files = _small_benchmarks(tmp_path)
    config = EvalConfig(
        apibank_data=str(files["data"]),
        bamboogle_data=str(files["data"] / "bamboogle.json"),  # but no search tool
        bfcl_categories="irrelevance",
        limit=2,
        results_dir=str(tmp_path / "r"),
    )
    caplog.set_level(logging.INFO)
    result = run_evaluation(config, GenerationConfig(model="answer-only"), backend=AnswerOnly())
    assert "bamboogle" in result.skipped and "bamboogle" not in result.reports
    skip_lines = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skip_lines) == 1 and "--search_corpus" in skip_lines[0] and "serper" in skip_lines[0]
    markdown = (tmp_path / "r" / "results.md").read_text()
    assert "| skipped |" in markdown and "bamboogle skipped:" in markdown
    assert json.loads((tmp_path / "r" / "results.json").read_text())["skipped"] == result.skipped


def test_naming_a_benchmark_that_cannot_run_is_a_one_line_error(tmp_path):
    command = [
        sys.executable,
        str(ROOT / "recipes" / "evaluate.py"),
        "--model", "no-such-model",
        "--benchmarks", "bamboogle",
        "--bamboogle_data", str(Path(__file__)),
        "--results_dir", str(tmp_path / "r"),
    ]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and errors[0].startswith("evaluate.py: error: bamboogle cannot run")
    assert "--search_corpus" in errors[0] and "Traceback" not in done.stderr
    assert not (tmp_path / "r").exists()  # nothing ran
