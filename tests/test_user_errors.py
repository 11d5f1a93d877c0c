"""A user's mistake ends in one clear line and exit status 2, never a traceback: each case runs the real command."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "recipes" / "tiny"


def run(script: str, *argv: str, cwd: Path = ROOT, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "recipes" / script), *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )


def assert_one_clear_line(result: subprocess.CompletedProcess, *needles: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr[-3000:])
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if ": error: " in line]
    assert len(errors) == 1, result.stderr[-3000:]
    for needle in needles:
        assert needle in errors[0], errors[0]


GRPO = ["--config", str(TINY / "grpo_cold_start.yaml")]


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        (["--granularty", "coarse"], ["unknown flag(s) --granularty", "--help lists every option"]),
        (["--granularity", "bogus"], ["--granularity: invalid choice: 'bogus'"]),
        (["--config", "recipes/tiny/nope.yaml"], ["recipes/tiny/nope.yaml: no such recipe file"]),
        (["--model_name_or_path", "/nope/model"], ["'/nope/model' is neither a folder nor a Hugging Face Hub id"]),
        (["--per_device_train_batch_size", "3"], ["world size 1", "per_device_train_batch_size in [1, 2, 4]"]),
        (["--bf16", "true", "--use_cpu", "false"], ["bf16", "--bf16 false --use_cpu true"]),
    ],
    ids=["flag", "value", "config", "model", "batch", "bf16"],
)
def test_grpo_user_mistakes(argv, needles):
    argv = argv if argv[0] == "--config" else [*GRPO, *argv]
    assert_one_clear_line(run("grpo_cold_start.py", *argv), *needles)


def test_a_misspelt_recipe_key_names_its_file(tmp_path):
    recipe = tmp_path / "mine.yaml"
    recipe.write_text(f"base: {TINY / 'sft400.yaml'}\nlearnig_rate: 1.0e-4\n")
    assert_one_clear_line(run("sft.py", "--config", str(recipe)), "'learnig_rate' (set in", "mine.yaml")


def test_debug_shows_the_traceback():
    result = run("sft.py", "--config", "recipes/tiny/nope.yaml", "--debug")
    assert result.returncode != 0 and "Traceback" in result.stderr and "RecipeError" in result.stderr


@pytest.mark.parametrize(
    ("content", "needles"),
    [
        ('[{"instruction": "a", "input": "b", "output": "c"}, {"instr', ["invalid JSON at line 1, column 54"]),
        ('{"instruction": "a"}\n{"instruction": \n', ["invalid JSON on line 2"]),
        ("", ["the file is empty"]),
        ("[]", ["empty"]),
    ],
    ids=["truncated-json", "truncated-jsonl", "empty-file", "no-rows"],
)
def test_unreadable_or_empty_data_says_where(tmp_path, content, needles):
    data = tmp_path / ("rows.jsonl" if "\n" in content else "rows.json")
    data.write_text(content)
    assert_one_clear_line(run("sft.py", "--data_source", str(data)), str(data), *needles)


def test_a_missing_data_file_is_named():
    assert_one_clear_line(run("sft.py", "--data_source", "/nope/rows.json"), "/nope/rows.json: no such file or folder")
