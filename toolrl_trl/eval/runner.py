"""Generate, save and score: the body of ``recipes/evaluate.py``.

For each benchmark the runner renders the items with the ToolRL system prompt, generates with
the chosen backend, writes the raw outputs as JSON lines (the same files ``python -m
toolrl_trl.eval score`` reads), scores them and writes ``scores.json`` next to them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolrl_trl.eval import apibank, bamboogle, bfcl
from toolrl_trl.eval.common import ScoreReport, write_jsonl
from toolrl_trl.eval.generation import Backend, GenerationConfig, build_backend
from toolrl_trl.eval.search import SEARCH_BACKENDS, build_search

logger = logging.getLogger(__name__)

BENCHMARKS = ("bfcl", "apibank", "bamboogle")
Generate = Callable[[list[list[dict[str, str]]]], list[str]]


@dataclass
class EvalConfig:
    """What to evaluate and where the results go (``recipes/evaluate.py`` parses these flags)."""

    benchmarks: str = field(
        default="bfcl,apibank,bamboogle",
        metadata={"help": f"Comma-separated benchmarks among {', '.join(BENCHMARKS)}."},
    )
    limit: int | None = field(
        default=None,
        metadata={"help": "Evaluate only the first N items of each BFCL category, API-Bank level and of Bamboogle."},
    )
    results_dir: str = field(
        default="", metadata={"help": "Where outputs and scores go (default: outputs/eval/<model directory name>)."}
    )
    bfcl_categories: str = field(
        default="all",
        metadata={
            "help": "BFCL categories or groups (all, non_live, live, multi_turn, ast, single_turn), comma-separated."
        },
    )
    bfcl_max_steps: int = field(
        default=bfcl.DEFAULT_MAX_STEPS, metadata={"help": "BFCL multi-turn: model calls per turn before a force-quit."}
    )
    apibank_data: str = field(
        default="",
        metadata={
            "help": "API-Bank: directory or URL prefix holding level-{1,2,3}-api_processed.json (the paper's files)."
        },
    )
    apibank_levels: str = field(default="1,2,3", metadata={"help": "API-Bank levels to run, comma-separated."})
    bamboogle_data: str = field(
        default="", metadata={"help": "Bamboogle: path or URL of bamboogle.json ([{Question, Answer}])."}
    )
    search_backend: str = field(
        default="bm25",
        metadata={"help": f"Bamboogle search tool: {', '.join(SEARCH_BACKENDS)} (serper: key from env)."},
    )
    search_corpus: str | None = field(
        default=None, metadata={"help": "bm25 search: JSON-lines corpus of {title, text} documents."}
    )
    search_endpoint: str | None = field(
        default=None, metadata={"help": "serper search: endpoint URL (default: Serper's /search)."}
    )
    search_api_key_env: str = field(
        default="SERPER_API_KEY", metadata={"help": "serper search: env var with the key."}
    )
    search_top_k: int = field(default=bamboogle.DEFAULT_TOP_K, metadata={"help": "Search results shown per call."})
    max_search_rounds: int = field(
        default=bamboogle.DEFAULT_MAX_ROUNDS,
        metadata={"help": "Bamboogle: model calls per question (the last must answer)."},
    )
    judge_api_base: str | None = field(
        default=None, metadata={"help": "Bamboogle LLM judge: OpenAI-compatible base URL (unset: exact match only)."}
    )
    judge_model: str | None = field(default=None, metadata={"help": "Bamboogle LLM judge: model name."})
    judge_api_key_env: str = field(
        default="OPENAI_API_KEY", metadata={"help": "Bamboogle LLM judge: env var with the key."}
    )


def parse_benchmarks(spec: str) -> list[str]:
    names = [s.strip() for s in spec.split(",") if s.strip()]
    for name in names:
        if name not in BENCHMARKS:
            raise ValueError(f"unknown benchmark {name!r}; valid: {', '.join(BENCHMARKS)}")
    if not names:
        raise ValueError(f"no benchmark given; valid: {', '.join(BENCHMARKS)}")
    return names


def parse_levels(spec: str) -> list[int]:
    try:
        levels = [int(s) for s in spec.split(",") if s.strip()]
    except ValueError:
        raise ValueError(f"API-Bank levels must be integers among {apibank.LEVELS}, got {spec!r}") from None
    for level in levels:
        apibank.level_source(".", level)  # validates the level
    return levels


def _judge(config: EvalConfig) -> bamboogle.LLMJudge | None:
    if not config.judge_api_base:
        return None
    if not config.judge_model:
        raise ValueError("--judge_api_base needs --judge_model")
    return bamboogle.LLMJudge(config.judge_api_base, config.judge_model, config.judge_api_key_env)


def check_inputs(config: EvalConfig) -> list[str]:
    """Fail before loading a model when a benchmark's data or tool is missing."""
    benchmarks = parse_benchmarks(config.benchmarks)
    if "bfcl" in benchmarks:
        bfcl.resolve_categories(config.bfcl_categories)
        bfcl.load_bfcl()
    if "apibank" in benchmarks:
        if not config.apibank_data:
            raise ValueError("API-Bank needs --apibank_data (directory or URL prefix of the level files)")
        parse_levels(config.apibank_levels)
    if "bamboogle" in benchmarks:
        if not config.bamboogle_data:
            raise ValueError("Bamboogle needs --bamboogle_data (path or URL of bamboogle.json)")
        if config.search_backend not in SEARCH_BACKENDS:
            raise ValueError(f"unknown search backend {config.search_backend!r}; valid: {', '.join(SEARCH_BACKENDS)}")
        if config.search_backend == "bm25" and not config.search_corpus:
            raise ValueError("the bm25 search tool needs --search_corpus")
        _judge(config)
    return benchmarks


def _head(items: list[Any], limit: int | None) -> list[Any]:
    return items if limit is None else items[:limit]


def run_bfcl(config: EvalConfig, generate: Generate, out: Path) -> ScoreReport:
    predictions = []
    for category in bfcl.resolve_categories(config.bfcl_categories):
        entries = _head(bfcl.load_entries(category, for_generation=True), config.limit)
        logger.info("BFCL %s: %d items", category, len(entries))
        if category in bfcl.MULTI_TURN:
            outputs: list[Any] = bfcl.run_multi_turn(entries, generate, config.bfcl_max_steps)
        else:
            outputs = generate([bfcl.single_turn_messages(e) for e in entries])
        rows = [{"id": e["id"], "output": o} for e, o in zip(entries, outputs, strict=True)]
        write_jsonl(out / "bfcl" / f"{category}.jsonl", rows)
        predictions.extend(rows)
    return bfcl.score_predictions(predictions)


def run_apibank(config: EvalConfig, generate: Generate, out: Path) -> ScoreReport:
    results = []
    for level in parse_levels(config.apibank_levels):
        items = apibank.load_level(apibank.level_source(config.apibank_data, level))
        chosen = _head(items, config.limit)
        logger.info("API-Bank level %d: %d items", level, len(chosen))
        outputs = generate([i["messages"] for i in chosen])
        rows = [{"id": i["id"], "output": o} for i, o in zip(chosen, outputs, strict=True)]
        write_jsonl(out / "apibank" / f"level-{level}.jsonl", rows)
        results.append(apibank.score_level(rows, items, level))
    return apibank.combine(results)


def run_bamboogle(config: EvalConfig, generate: Generate, out: Path) -> ScoreReport:
    items = _head(bamboogle.load_bamboogle(config.bamboogle_data), config.limit)
    search = build_search(
        config.search_backend,
        corpus=config.search_corpus,
        endpoint=config.search_endpoint,
        api_key_env=config.search_api_key_env,
    )
    logger.info("Bamboogle: %d questions, %s search", len(items), config.search_backend)
    episodes = bamboogle.run_episodes(
        [i["question"] for i in items], generate, search, config.max_search_rounds, config.search_top_k
    )
    rows = [
        {"id": i["id"], "output": e.output, "tool_calls": e.tool_calls, "transcript": e.transcript}
        for i, e in zip(items, episodes, strict=True)
    ]
    write_jsonl(out / "bamboogle" / "predictions.jsonl", rows)
    return bamboogle.score_predictions(rows, bamboogle.load_bamboogle(config.bamboogle_data), _judge(config))


RUNNERS: dict[str, Callable[[EvalConfig, Generate, Path], ScoreReport]] = {
    "bfcl": run_bfcl,
    "apibank": run_apibank,
    "bamboogle": run_bamboogle,
}


def default_results_dir(model: str) -> Path:
    name = Path(model.rstrip("/")).name or "model"
    return Path("outputs") / "eval" / name


def run_evaluation(
    config: EvalConfig, generation: GenerationConfig, backend: Backend | None = None
) -> dict[str, ScoreReport]:
    """Run the benchmarks; writes ``<results_dir>/<benchmark>/*.jsonl``, ``<benchmark>_items.jsonl``, ``scores.json``."""
    benchmarks = check_inputs(config)
    out = Path(config.results_dir) if config.results_dir else default_results_dir(generation.model)
    backend = backend if backend is not None else build_backend(generation)
    reports = {}
    for name in benchmarks:
        report = RUNNERS[name](config, backend.generate, out)
        write_jsonl(out / f"{name}_items.jsonl", report.items)  # beside, not inside, the outputs folder
        reports[name] = report
        logger.info("%s: accuracy %s over %d items", name, report.summary["accuracy"], report.summary["n"])
    scores = {"model": generation.model, "backend": generation.backend, **{k: r.summary for k, r in reports.items()}}
    (out / "scores.json").write_text(json.dumps(scores, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    logger.info("results written to %s", out)
    return reports
