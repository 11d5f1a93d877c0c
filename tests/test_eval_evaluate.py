"""The whole ``recipes/evaluate.py`` path on CPU with a tiny model, and the generation backends."""

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
from toolrl_trl.eval.generation import GenerationConfig, HFBackend, VLLMBackend, build_backend
from toolrl_trl.eval.runner import EvalConfig, check_inputs, run_evaluation

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
        check_inputs(EvalConfig(benchmarks="bamboogle", bamboogle_data="b.json"))


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
    reports = run_evaluation(config, GenerationConfig(model="answer-only"), backend=backend)
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
