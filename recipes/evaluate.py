"""Generate and score a checkpoint on the paper's benchmarks (BFCL, API-Bank, Bamboogle); print the tables.

    python recipes/evaluate.py --model outputs/Qwen2.5-3B-Instruct-grpo --benchmarks bfcl,apibank,bamboogle \
        --apibank_data ../shared/data/toolrl --bamboogle_data ../shared/data/toolrl/bamboogle.json \
        --search_corpus wiki.jsonl [--backend vllm] [--limit 20]

Raw outputs (JSON lines), per-item verdicts and scores.json go to --results_dir; re-score them
later without the model: python -m toolrl_trl.eval score --benchmark bfcl --predictions FILE.
Flags may also come from a YAML file (--config).
"""

import logging

from trl import TrlParser

from toolrl_trl.eval import EvalConfig, GenerationConfig, run_evaluation


def main(eval_args: EvalConfig, generation_args: GenerationConfig) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    reports = run_evaluation(eval_args, generation_args)
    for report in reports.values():
        print(report.table, end="\n\n")
    for report in reports.values():
        print(report.to_json())


if __name__ == "__main__":
    parser = TrlParser((EvalConfig, GenerationConfig))
    main(*parser.parse_args_and_config())
