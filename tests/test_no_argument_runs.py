"""Every entry point runs with no arguments, from any directory: its tiny CPU recipe, the tiny model built on first use.

The commands of the design card, typed as they are: `python recipes/<entry>.py` and `accelerate launch
recipes/grpo_cold_start.py`, each in an empty working directory (nothing built by make beforehand).
"""

import subprocess
import sys

import pytest
from helpers import RECIPES, accelerate_cli, free_port, launch_env


def run_in(cwd, command: list[str]) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, env=launch_env(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-3000:])
    return result


def first_line(result: subprocess.CompletedProcess) -> str:
    return next(line for line in (result.stdout + result.stderr).splitlines() if "toolrl_trl" in line)


@pytest.mark.parametrize(
    ("script", "recipe", "output"),
    [
        ("sft.py", "tiny/sft400.yaml", "outputs/tiny/sft400"),
        ("ppo_cold_start.py", "tiny/ppo_cold_start.yaml", "outputs/tiny/ppo_cold_start"),
    ],
)
def test_training_entry_points_run_their_tiny_recipe_with_no_arguments(tmp_path, script, recipe, output):
    result = run_in(tmp_path, [sys.executable, str(RECIPES / script)])
    line = first_line(result)
    assert (
        f"running the tiny CPU recipe {RECIPES / recipe}" in line and "--config recipes/Qwen2.5-3B-Instruct/" in line
    )
    assert (tmp_path / "outputs/tiny-qwen2/config.json").is_file()  # built on demand, where the recipe says
    assert (tmp_path / output / "model.safetensors").is_file() and (tmp_path / output / "README.md").is_file()


def test_accelerate_launch_of_grpo_with_no_arguments(tmp_path):
    command = [*accelerate_cli(), "launch", "--num_processes", "1", "--cpu", "--main_process_port", str(free_port())]
    result = run_in(tmp_path, [*command, str(RECIPES / "grpo_cold_start.py")])
    assert "running the tiny CPU recipe" in first_line(result)
    assert (tmp_path / "outputs/tiny/grpo_cold_start/model.safetensors").is_file()
    assert "kl_reward/frac_tied_groups" in result.stdout + result.stderr  # the paper's in-reward KL, inherited


def test_evaluate_with_no_arguments_scores_the_tiny_model(tmp_path):
    result = run_in(tmp_path, [sys.executable, str(RECIPES / "evaluate.py")])
    assert "running the tiny CPU recipe" in first_line(result)
    assert "ToolRL paper table: outputs/tiny-qwen2" in result.stdout
    assert (tmp_path / "outputs/eval/tiny-qwen2/results.md").is_file()
