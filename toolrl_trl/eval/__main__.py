"""``python -m toolrl_trl.eval score``: score saved outputs (JSON lines ``{"id", "output"}``) without a model.

Prints the results table, then, as its last line, one JSON object with at least ``benchmark``,
``category`` or ``level``, ``n`` and ``accuracy`` (a fraction in [0, 1]).
"""

from __future__ import annotations

import argparse
import sys

from toolrl_trl.cli import configure_logging
from toolrl_trl.eval import apibank, bamboogle, bfcl
from toolrl_trl.eval.common import EvalDataError, ScoreReport, read_predictions, write_jsonl
from toolrl_trl.eval.runner import BENCHMARKS, PROTOCOLS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m toolrl_trl.eval", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    score = commands.add_parser("score", help="score saved outputs and print the table")
    score.add_argument("--benchmark", required=True, choices=BENCHMARKS)
    score.add_argument(
        "--protocol",
        default="paper",
        choices=PROTOCOLS,
        help="paper: parse and score as the paper's scripts did (default); project: this project's rules",
    )
    score.add_argument(
        "--predictions", required=True, nargs="+", help="JSON-lines file(s) of {id, output} (BFCL: several allowed)"
    )
    scope = score.add_mutually_exclusive_group()
    scope.add_argument("--category", help="BFCL: a category or group (all, non_live, live, multi_turn, ast ...)")
    scope.add_argument("--level", type=int, choices=apibank.LEVELS, help="API-Bank level of the predictions")
    score.add_argument(
        "--data", help="API-Bank: level file, its directory or URL; Bamboogle: bamboogle.json path or URL"
    )
    score.add_argument("--judge_api_base", help="Bamboogle: OpenAI-compatible base URL of an LLM judge")
    score.add_argument("--judge_model", help="Bamboogle: the judge's model name (paper protocol default: gpt-4o)")
    score.add_argument("--judge_api_key_env", default="OPENAI_API_KEY", help="Bamboogle: env var with the judge's key")
    score.add_argument("--items_out", help="also write the per-item verdicts to this JSON-lines file")
    return parser


def score(args: argparse.Namespace) -> ScoreReport:
    rows = [row for path in args.predictions for row in read_predictions(path)]
    if args.benchmark == "bfcl":
        if args.level is not None:
            raise ValueError("--level is for API-Bank; BFCL takes --category")
        return bfcl.score_predictions(rows, args.category, args.protocol)
    if args.category is not None:
        raise ValueError(f"--category is for BFCL; {args.benchmark} does not take it")
    if not args.data:
        raise ValueError(f"{args.benchmark} needs --data (the benchmark file the prediction ids index)")
    if args.benchmark == "apibank":
        if args.level is None:
            raise ValueError("API-Bank needs --level (prediction ids are indices in that level's file)")
        return apibank.score_predictions(rows, args.data, args.level, args.protocol)
    judge = bamboogle.build_judge(args.protocol, args.judge_api_base, args.judge_model, args.judge_api_key_env)
    return bamboogle.score_predictions(rows, bamboogle.load_bamboogle(args.data), judge, args.protocol)


def main(argv: list[str] | None = None) -> int:
    configure_logging()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        report = score(args)
    except (EvalDataError, ValueError, bfcl.BfclUnavailableError) as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)  # one line, no traceback: a usage or data mistake
        return 2
    if args.items_out:
        write_jsonl(args.items_out, report.items)
    print(report.table)
    print(report.to_json())
    return 0


if __name__ == "__main__":
    sys.exit(main())
