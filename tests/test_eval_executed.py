"""``make eval BENCHMARKS=executed``: the executed multi-turn mode's held-out tasks inside ``recipes/evaluate.py``,
and the same body behind ``python -m toolrl_trl.eval.executed``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from toolrl_trl.eval.executed import ExecutedEvalConfig, ExecutedTasksConfig, evaluation_rows
from toolrl_trl.eval.generation import GenerationConfig
from toolrl_trl.eval.runner import EvalConfig, check_inputs

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRL_EXPERIMENTAL_SILENCE": "1", "OMP_NUM_THREADS": "1"}


def test_all_means_the_papers_benchmarks_and_executed_must_be_named():
    assert check_inputs(EvalConfig(benchmarks="executed"), GenerationConfig(model="m"))[0] == ["executed"]
    run, _ = check_inputs(EvalConfig(benchmarks="all"), GenerationConfig(model="m"))
    assert "executed" not in run
    with pytest.raises(ValueError, match="executed cannot run: .*--backend hf"):
        check_inputs(EvalConfig(benchmarks="executed"), GenerationConfig(model="m", backend="openai"))
    with pytest.raises(ValueError, match="valid: bfcl, apibank, bamboogle, executed"):
        check_inputs(EvalConfig(benchmarks="execute"))


def test_task_options_are_checked_before_any_model_loads(tmp_path):
    with pytest.raises(ValueError, match="unknown chain"):
        ExecutedTasksConfig(world_chains="nope")
    with pytest.raises(ValueError, match="--world_test_size must be at least 1"):
        ExecutedTasksConfig(world_test_size=0)
    with pytest.raises(ValueError, match="neither synthetic_world nor a file"):
        ExecutedTasksConfig(task_source=str(tmp_path / "missing.jsonl"))
    with pytest.raises(ValueError, match="valid: toolrl, native"):
        ExecutedEvalConfig(output_format="json")


def test_limit_caps_every_held_out_subset():
    subsets = evaluation_rows(ExecutedTasksConfig(world_test_size=8, world_held_out_tools=1), "native", limit=3)
    assert set(subsets) == {"unseen_prompts", "unseen_tools"}
    assert all(len(rows) == 3 for rows in subsets.values())
    assert all(json.loads(r["task"])["split"] == name for name, rows in subsets.items() for r in rows)


def _evaluate(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, str(ROOT / "recipes" / "evaluate.py"), *args]
    return subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=600, cwd=cwd)


def test_evaluate_script_runs_the_executed_tasks(tmp_path, tiny_model_dir):
    out = tmp_path / "results"
    done = _evaluate(
        [
            "--model", str(tiny_model_dir),
            "--benchmarks", "executed",
            "--output_format", "native",
            "--world_test_size", "3",
            "--world_held_out_tools", "1",
            "--limit", "2",
            "--max_tool_calling_iterations", "2",
            "--max_completion_length", "48",
            "--batch_size", "4",
            "--results_dir", str(out),
        ],
        tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((out / "executed.json").read_text())
    assert result["n"] == 4 and {k: v["n"] for k, v in result["subsets"].items()} == {
        "unseen_prompts": 2,
        "unseen_tools": 2,
    }
    for values in [result, *result["subsets"].values()]:
        assert 0.0 <= values["success"] <= 1.0 and values["turns"] >= 1.0
        assert 0.0 <= values["format"] <= 1.0 and -3.0 <= values["correctness"] <= 3.0
    assert "executed held-out tasks" in done.stdout and "unseen_tools" in done.stdout
    assert not (out / "results.md").exists()  # executed is not a column of the paper's table


def test_a_bad_executed_flag_is_a_one_line_error(tmp_path, tiny_model_dir):
    done = _evaluate(["--model", str(tiny_model_dir), "--benchmarks", "executed", "--world_chains", "nope"], tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "unknown chain" in done.stderr
