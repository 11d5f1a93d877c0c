"""Generate and score a checkpoint on the paper's benchmarks (BFCL, API-Bank, Bamboogle); print the paper's table.

    python recipes/evaluate.py --model outputs/Qwen2.5-3B-Instruct-grpo \\
        --apibank_data ../shared/data/toolrl --bamboogle_data ../shared/data/toolrl/bamboogle.json \\
        [--search_corpus wiki.jsonl | --search_backend serper] [--judge_api_base URL] [--backend vllm] [--limit 20]

``--protocol paper`` (default) runs the paper's released evaluation scripts; ``--benchmarks all``
(default) runs what can run and skips the rest, saying how to enable it. Raw outputs (JSON lines),
per-item verdicts, scores.json and the paper's table (results.json, results.md) go to
--results_dir; re-score outputs later without the model: python -m toolrl_trl.eval score
--benchmark bfcl --predictions FILE. Flags may also come from a YAML file (--config). A usage
mistake prints one error line and exits with status 2. See docs/evaluation.md.
"""

import json
import logging
import sys

from trl import TrlParser

from toolrl_trl.eval import EvalConfig, GenerationConfig, run_evaluation
from toolrl_trl.eval.common import EndpointError


def main(eval_args: EvalConfig, generation_args: GenerationConfig) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        result = run_evaluation(eval_args, generation_args)
    except (ValueError, ImportError, OSError, EndpointError) as err:  # a user mistake: one line, no traceback
        logging.getLogger("evaluate").debug("error details", exc_info=True)
        print(f"evaluate.py: error: {err}", file=sys.stderr)
        return 2
    for report in result.reports.values():
        print(report.table, end="\n\n")
    print(result.table.to_text(), end="\n\n")
    if len(result.runs) == 1:
        for report in result.reports.values():
            print(report.to_json())
    else:
        print(json.dumps(result.table.to_json(), ensure_ascii=False))
    return 0


if __name__ == "__main__":
    parser = TrlParser((EvalConfig, GenerationConfig))
    sys.exit(main(*parser.parse_args_and_config()))
