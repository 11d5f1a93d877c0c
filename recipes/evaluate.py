"""Generate and score a checkpoint on the paper's benchmarks (BFCL, API-Bank, Bamboogle); print the paper's table.

    python recipes/evaluate.py --model outputs/Qwen2.5-3B-Instruct-grpo \\
        --apibank_data ../shared/data/toolrl --bamboogle_data ../shared/data/toolrl/bamboogle.json \\
        [--search_corpus wiki.jsonl | --search_backend serper] [--judge_api_base URL] [--backend vllm] [--limit 20]

Without arguments it evaluates the tiny offline model (recipes/tiny/evaluate.yaml, built on first use).
``--protocol paper`` (default) runs the paper's released evaluation scripts; ``--benchmarks all``
(default) runs what can run and skips the rest, saying how to enable it; ``--benchmarks executed``
(named only, this project's) rolls out the executed multi-turn mode's held-out tasks with TRL's tool
loop and writes executed.json (docs/multiturn.md). Raw outputs (JSON lines),
per-item verdicts, scores.json and the paper's table (results.json, results.md) go to
--results_dir; re-score outputs later without the model: python -m toolrl_trl.eval score
--benchmark bfcl --predictions FILE. Flags may also come from a YAML file (--config). A usage
mistake prints one error line and exits with status 2. See docs/evaluation.md.
"""

import json
from pathlib import Path

from toolrl_trl.cli import UserError, ensure_tiny_model, run_guarded, with_default_recipe
from toolrl_trl.configs import ToolRLParser, parse_args
from toolrl_trl.eval import EvalConfig, GenerationConfig, run_evaluation
from toolrl_trl.eval.common import EndpointError
from toolrl_trl.eval.executed import ExecutedTasksConfig, format_report

TINY_RECIPE = Path(__file__).parent / "tiny" / "evaluate.yaml"


def main(argv: list[str]) -> None:
    real_run = "python recipes/evaluate.py --model PATH, or make eval MODEL=PATH (docs/evaluation.md)"
    recipe_argv = with_default_recipe(argv, TINY_RECIPE, real_run, chosen_by=("--config", "--model"))
    eval_args, generation_args, executed_tasks = parse_args(
        ToolRLParser((EvalConfig, GenerationConfig, ExecutedTasksConfig)), recipe_argv
    )
    if recipe_argv != argv:  # the tiny recipe: its model is built on first use
        ensure_tiny_model(generation_args.model, "qwen2")
    try:
        result = run_evaluation(eval_args, generation_args, tasks=executed_tasks)
    except (ValueError, ImportError, OSError, EndpointError) as err:  # a user mistake: one line, no traceback
        raise UserError(str(err)) from err
    if result.executed is not None:
        print(
            "executed held-out tasks (greedy, one episode each):", format_report(result.executed), sep="\n", end="\n\n"
        )
    if result.table is None:
        return
    for report in result.reports.values():
        print(report.table, end="\n\n")
    print(result.table.to_text(), end="\n\n")
    if len(result.runs) == 1:
        for report in result.reports.values():
            print(report.to_json())
    else:
        print(json.dumps(result.table.to_json(), ensure_ascii=False))


if __name__ == "__main__":
    run_guarded(main)
