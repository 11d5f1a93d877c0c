"""Generate, save and score: the body of ``recipes/evaluate.py``.

For each benchmark the runner renders the items as the chosen protocol does, generates with the
chosen backend (each benchmark with its own :class:`~toolrl_trl.eval.generation.Decoding`),
writes the raw outputs as JSON lines (the same files ``python -m toolrl_trl.eval score``
reads), scores them, writes ``scores.json`` next to them and the paper's table
(``results.json`` / ``results.md``) above them.

``--protocol paper`` (default) is what the paper's released scripts ran; ``project`` is this
project's own variant of each benchmark (see ``docs/evaluation.md`` for every difference).
``--benchmarks all`` (default) runs every benchmark of the paper that can run as configured and
skips the others with one log line saying how to enable them; a benchmark named explicitly must run.
``executed`` (named, never in ``all``: it is this project's, not the paper's) rolls out the executed
multi-turn mode's held-out tasks with TRL's tool loop (:mod:`toolrl_trl.eval.executed`) and writes
``executed.json``; it is not a column of the paper's table.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolrl_trl import grammar
from toolrl_trl.eval import apibank, bamboogle, bfcl, executed
from toolrl_trl.eval.common import ScoreReport, is_url, write_jsonl
from toolrl_trl.eval.generation import (
    DEFAULT_MAX_NEW_TOKENS,
    Backend,
    Decoding,
    GenerationConfig,
    NativeChat,
    TokenBudget,
    accepts_decoding,
    build_backend,
    load_tokenizer,
)
from toolrl_trl.eval.search import SEARCH_BACKENDS, SearchTool, build_search
from toolrl_trl.eval.table import PaperTable

logger = logging.getLogger(__name__)

#: The paper's benchmarks: what ``--benchmarks all`` means, the columns of the paper's table.
PAPER_BENCHMARKS = ("bfcl", "apibank", "bamboogle")
#: Every benchmark: the paper's, and this project's executed held-out tasks (``toolrl_trl.eval.executed``).
BENCHMARKS = (*PAPER_BENCHMARKS, "executed")
PROTOCOLS = ("paper", "project")
Generate = Callable[[list[list[dict[str, str]]]], list[str]]

#: The paper's sampling temperatures (BFCL: its OSS handler's; API-Bank and Bamboogle: their generate.py).
PAPER_TEMPERATURES = {"bfcl": 0.001, "apibank": 1e-4, "bamboogle": 0.001}
#: The paper's token budgets: BFCL's OSS handler, and vLLM's max_tokens 4096 inside max_model_len 4096.
PAPER_BUDGETS = {
    "bfcl": TokenBudget(cap=4096, model_context=True, margin=2, overflow=1000),
    "apibank": TokenBudget(cap=4096, context=4096),
    "bamboogle": TokenBudget(cap=4096, context=4096),
}


@dataclass
class EvalConfig:
    """What to evaluate and where the results go (``recipes/evaluate.py`` parses these flags)."""

    benchmarks: str = field(
        default="all",
        metadata={
            "help": f"Comma-separated benchmarks among {', '.join(BENCHMARKS)}, or all: every benchmark of the paper "
            "that can run as configured (the others are skipped, saying how to enable them). executed (named only): "
            "the executed multi-turn mode's held-out tasks, rolled out by TRL's tool loop (--task_source, "
            "--world_* flags; docs/multiturn.md)."
        },
    )
    protocol: str = field(
        default="paper",
        metadata={
            "help": "paper: the paper's released evaluation scripts (prompts, parsing, loops, budgets); project: "
            "this project's variant (training-data prompt, strict calls, its own Bamboogle loop). See "
            "docs/evaluation.md."
        },
    )
    output_format: str = field(
        default="toolrl",
        metadata={
            "help": "toolrl: prompts and outputs in the paper's grammar. native: the model's own tool-calling template "
            "(tools=, calls as the template writes them), for checkpoints trained with output_format native; each "
            "benchmark's prompt is converted to chat messages + tools, and each output is parsed as the template "
            "writes it (the saved outputs are in the paper's grammar, so scoring is the same code)."
        },
    )
    limit: int | None = field(
        default=None,
        metadata={"help": "Evaluate only the first N items of each BFCL category, API-Bank level and of Bamboogle."},
    )
    results_dir: str = field(
        default="", metadata={"help": "Where outputs and scores go (default: outputs/eval/<model directory name>)."}
    )
    seeds: int = field(
        default=1,
        metadata={
            "help": "Repeat the evaluation with N sampling seeds (needs a temperature > 0 or --paper_temperatures) "
            "and report each column's mean and spread."
        },
    )
    seed: int = field(default=0, metadata={"help": "The first sampling seed (--seeds N uses seed .. seed+N-1)."})
    paper_temperatures: bool = field(
        default=False,
        metadata={
            "help": "Sample at the paper's temperatures (BFCL 0.001, API-Bank 1e-4, Bamboogle 0.001) instead of "
            "greedy decoding (which they approximate)."
        },
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
    bfcl_multi_turn_instruction: bool = field(
        default=False,
        metadata={
            "help": "paper protocol: give multi-turn entries the handler's multi-turn instruction (the released path "
            "never did: BFCL calls the prompt builder without turn_type). The project protocol always does."
        },
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
    search_retry_wait: float = field(
        default=5.0, metadata={"help": "serper search, paper protocol: seconds between re-asks of an empty answer."}
    )
    search_top_k: int | None = field(
        default=None,
        metadata={"help": "Search results shown per call (default: paper 5, project 3)."},
    )
    max_search_rounds: int | None = field(
        default=None,
        metadata={"help": "Bamboogle: model calls per question, the last must answer (default: paper 4, project 5)."},
    )
    judge_api_base: str | None = field(
        default=None,
        metadata={"help": "Bamboogle LLM judge: OpenAI-compatible base URL (unset: exact match is reported)."},
    )
    judge_model: str | None = field(
        default=None, metadata={"help": "Bamboogle LLM judge: model name (paper protocol default: gpt-4o)."}
    )
    judge_api_key_env: str = field(
        default="OPENAI_API_KEY", metadata={"help": "Bamboogle LLM judge: env var with the key."}
    )
    judge_retry_wait: float = field(
        default=20.0, metadata={"help": "Bamboogle paper judge: seconds between its 4 tries (the paper's 20)."}
    )


def parse_benchmarks(spec: str) -> tuple[list[str], bool]:
    """The benchmarks asked for and whether they were named explicitly (``all`` is not)."""
    names = [s.strip() for s in spec.split(",") if s.strip()]
    if names == ["all"]:
        return list(PAPER_BENCHMARKS), False
    for name in names:
        if name not in BENCHMARKS:
            raise ValueError(f"unknown benchmark {name!r} in --benchmarks; valid: {', '.join(BENCHMARKS)} (or all)")
    if not names:
        raise ValueError(f"no benchmark given in --benchmarks; valid: {', '.join(BENCHMARKS)} (or all)")
    return [b for b in BENCHMARKS if b in names], True


def parse_levels(spec: str) -> list[int]:
    try:
        levels = [int(s) for s in spec.split(",") if s.strip()]
    except ValueError:
        raise ValueError(f"--apibank_levels must be integers among {apibank.LEVELS}, got {spec!r}") from None
    for level in levels:
        apibank.level_source(".", level)  # validates the level
    return levels


def _judge(config: EvalConfig) -> bamboogle.Judge | None:
    return bamboogle.build_judge(
        config.protocol, config.judge_api_base, config.judge_model, config.judge_api_key_env, config.judge_retry_wait
    )


def _missing_apibank(config: EvalConfig) -> str | None:
    if not config.apibank_data:
        return "it needs --apibank_data DIR (the paper's level-{1,2,3}-api_processed.json; make eval EVAL_DATA=DIR)"
    if is_url(config.apibank_data):
        return None
    for level in parse_levels(config.apibank_levels):
        source = apibank.level_source(config.apibank_data, level)
        if not Path(source).is_file():
            return f"{source} does not exist (set --apibank_data to the folder of the paper's level files)"
    return None


def _missing_bamboogle(config: EvalConfig) -> str | None:
    if config.search_backend not in SEARCH_BACKENDS:
        raise ValueError(f"unknown --search_backend {config.search_backend!r}; valid: {', '.join(SEARCH_BACKENDS)}")
    if not config.bamboogle_data:
        return "it needs --bamboogle_data FILE (the paper's bamboogle.json)"
    if not is_url(config.bamboogle_data) and not Path(config.bamboogle_data).is_file():
        return f"{config.bamboogle_data} does not exist (set --bamboogle_data to the paper's bamboogle.json)"
    enable = (
        "give it a search tool: --search_corpus FILE (offline BM25; make eval SEARCH_CORPUS=FILE) or "
        f"--search_backend serper with ${config.search_api_key_env} set"
    )
    if config.search_backend == "bm25" and not config.search_corpus:
        return f"the bm25 search tool needs --search_corpus; {enable}"
    if config.search_backend == "serper" and not os.environ.get(config.search_api_key_env):
        return f"the serper search tool needs an API key in ${config.search_api_key_env}; {enable}"
    return None


def sampling_temperature(config: EvalConfig, generation: GenerationConfig, benchmark: str) -> float:
    return PAPER_TEMPERATURES[benchmark] if config.paper_temperatures else generation.generation_temperature


def decoding_for(config: EvalConfig, generation: GenerationConfig, benchmark: str, seed: int | None) -> Decoding:
    """A benchmark's decoding: a fixed ``--max_new_tokens`` if given, else the protocol's budget; the temperature."""
    if generation.max_new_tokens is not None:
        budget = TokenBudget(cap=generation.max_new_tokens)
    elif config.protocol == "paper":
        budget = PAPER_BUDGETS[benchmark]
    else:
        budget = TokenBudget(cap=DEFAULT_MAX_NEW_TOKENS)
    temperature = sampling_temperature(config, generation, benchmark)
    return Decoding(budget, temperature, seed if temperature > 0 else None)


def check_inputs(config: EvalConfig, generation: GenerationConfig | None = None) -> tuple[list[str], dict[str, str]]:
    """Fail before loading a model when a named benchmark cannot run; returns (to run, skipped with reasons)."""
    if config.protocol not in PROTOCOLS:
        raise ValueError(f"unknown --protocol {config.protocol!r}; valid: {', '.join(PROTOCOLS)}")
    if config.output_format not in grammar.OUTPUT_FORMATS:
        raise ValueError(
            f"unknown --output_format {config.output_format!r}; valid: {', '.join(grammar.OUTPUT_FORMATS)}"
        )
    if config.seeds < 1:
        raise ValueError(f"--seeds must be at least 1, got {config.seeds}")
    if generation is not None:
        if config.paper_temperatures and generation.generation_temperature > 0:
            raise ValueError("--paper_temperatures and --generation_temperature both set a temperature: keep one")
        if generation.max_new_tokens is not None and generation.max_new_tokens < 1:
            raise ValueError(f"--max_new_tokens must be at least 1, got {generation.max_new_tokens}")
        if config.seeds > 1 and not (config.paper_temperatures or generation.generation_temperature > 0):
            raise ValueError(
                "--seeds N > 1 needs sampled decoding: set --generation_temperature T > 0 (or --paper_temperatures "
                "true); greedy decoding gives the same outputs for every seed"
            )
    requested, explicit = parse_benchmarks(config.benchmarks)
    checks: dict[str, Callable[[], str | None]] = {
        "bfcl": lambda: None if bfcl.is_available() else _bfcl_missing(),
        "apibank": lambda: _missing_apibank(config),
        "bamboogle": lambda: _missing_bamboogle(config),
        "executed": lambda: _missing_executed(generation),
    }
    run, skipped = [], {}
    for name in requested:
        if name == "bfcl":
            bfcl.resolve_categories(config.bfcl_categories)
        if name == "apibank":
            parse_levels(config.apibank_levels)
        reason = checks[name]()
        if reason is None:
            run.append(name)
        elif explicit:
            raise ValueError(f"{name} cannot run: {reason}")
        else:
            skipped[name] = reason
    if "bamboogle" in run:
        _judge(config)
    if not run:
        raise ValueError(f"no benchmark can run as configured: {'; '.join(f'{k}: {v}' for k, v in skipped.items())}")
    return run, skipped


def _missing_executed(generation: GenerationConfig | None) -> str | None:
    if generation is not None and generation.backend == "openai":
        return (
            "it runs the checkpoint in this process through TRL's tool loop (transformers), not behind an endpoint: "
            "use --backend hf with --model PATH"
        )
    return None


def _bfcl_missing() -> str:
    return f'bfcl-eval is not installed: pip install --no-deps "bfcl-eval=={bfcl.BFCL_EVAL_VERSION}" (make install)'


def _head(items: list[Any], limit: int | None) -> list[Any]:
    return items if limit is None else items[:limit]


def run_bfcl(config: EvalConfig, generate: Generate, out: Path) -> ScoreReport:
    predictions = []
    instruction = True if config.bfcl_multi_turn_instruction else None
    for category in bfcl.resolve_categories(config.bfcl_categories):
        entries = _head(bfcl.load_entries(category, for_generation=True), config.limit)
        logger.info("BFCL %s: %d items", category, len(entries))
        if category in bfcl.MULTI_TURN:
            outputs: list[Any] = bfcl.run_multi_turn(
                entries, generate, config.bfcl_max_steps, config.protocol, instruction
            )
        else:
            outputs = generate([bfcl.single_turn_messages(e, config.protocol) for e in entries])
        rows = [{"id": e["id"], "output": o} for e, o in zip(entries, outputs, strict=True)]
        write_jsonl(out / "bfcl" / f"{category}.jsonl", rows)
        predictions.extend(rows)
    return bfcl.score_predictions(predictions, protocol=config.protocol)


def run_apibank(config: EvalConfig, generate: Generate, out: Path) -> ScoreReport:
    results = []
    for level in parse_levels(config.apibank_levels):
        items = apibank.load_level(apibank.level_source(config.apibank_data, level))
        chosen = _head(items, config.limit)
        logger.info("API-Bank level %d: %d items", level, len(chosen))
        outputs = generate([i["messages"] for i in chosen])
        rows = [{"id": i["id"], "output": o} for i, o in zip(chosen, outputs, strict=True)]
        write_jsonl(out / "apibank" / f"level-{level}.jsonl", rows)
        results.append(apibank.score_level(rows, items, level, config.protocol))
    return apibank.combine(results)


def _search_tool(config: EvalConfig) -> SearchTool:
    return build_search(
        config.search_backend,
        corpus=config.search_corpus,
        endpoint=config.search_endpoint,
        api_key_env=config.search_api_key_env,
        retry_wait=config.search_retry_wait,
    )


def run_bamboogle(config: EvalConfig, generate: Generate, out: Path) -> ScoreReport:
    items = _head(bamboogle.load_bamboogle(config.bamboogle_data), config.limit)
    search = _search_tool(config)
    questions = [i["question"] for i in items]
    logger.info("Bamboogle: %d questions, %s search, protocol %s", len(items), config.search_backend, config.protocol)
    if config.protocol == "paper":
        rounds = config.max_search_rounds or bamboogle.PAPER_MAX_ROUNDS
        top_k = config.search_top_k or bamboogle.PAPER_TOP_K
        episodes = bamboogle.run_paper_episodes(questions, generate, search, rounds, top_k)
        rows = [
            {
                "id": i["id"],
                "output": e.output,
                "answer": e.answer,
                "tool_calls": e.searches,
                "rounds": e.rounds,
                "history": e.history,
                "transcript": e.transcript,
            }
            for i, e in zip(items, episodes, strict=True)
        ]
    else:
        rounds = config.max_search_rounds or bamboogle.DEFAULT_MAX_ROUNDS
        top_k = config.search_top_k or bamboogle.DEFAULT_TOP_K
        project_episodes = bamboogle.run_episodes(questions, generate, search, rounds, top_k)
        rows = [
            {"id": i["id"], "output": e.output, "tool_calls": e.tool_calls, "transcript": e.transcript}
            for i, e in zip(items, project_episodes, strict=True)
        ]
    write_jsonl(out / "bamboogle" / "predictions.jsonl", rows)
    judge = _judge(config)
    if judge is None:
        logger.warning(
            "Bamboogle: no --judge_api_base, so exact match is reported; the paper's metric is an LLM judge's "
            "verdict (set --judge_api_base URL [--judge_model gpt-4o])"
        )
    data = bamboogle.load_bamboogle(config.bamboogle_data)
    return bamboogle.score_predictions(rows, data, judge, config.protocol)


RUNNERS: dict[str, Callable[[EvalConfig, Generate, Path], ScoreReport]] = {
    "bfcl": run_bfcl,
    "apibank": run_apibank,
    "bamboogle": run_bamboogle,
}


def default_results_dir(model: str) -> Path:
    name = Path(model.rstrip("/")).name or "model"
    return Path("outputs") / "eval" / name


@dataclass
class EvaluationResult:
    """What :func:`run_evaluation` produced: per-seed reports, the skipped benchmarks, the paper's table (None when
    only ``executed`` ran) and the executed tasks' summary (None when it did not run)."""

    runs: list[dict[str, ScoreReport]]
    skipped: dict[str, str]
    table: PaperTable | None
    results_dir: Path
    executed: dict[str, Any] | None = None

    @property
    def reports(self) -> dict[str, ScoreReport]:
        """The (first seed's) reports by benchmark (empty when only ``executed`` ran)."""
        return self.runs[0] if self.runs else {}


def _bind(backend: Backend, decoding: Decoding, family: grammar.NativeFamily | None = None) -> Generate:
    if accepts_decoding(backend):
        generate: Generate = lambda conversations: backend.generate(conversations, decoding)  # noqa: E731
    else:
        logger.warning("the backend's generate() takes no decoding: its own budget and temperature are used")
        generate = backend.generate
    return generate if family is None else native_generate(generate, family)


def native_generate(generate: Generate, family: grammar.NativeFamily) -> Generate:
    """Benchmarks speak the paper's grammar; this runs them through the model's own template and back.

    Each paper-format conversation becomes chat messages + tools (``grammar.native_chat``); each output is
    read as the template writes a turn (leniently, as the paper's evaluation reads its own format) and
    written back in the paper's grammar, so the benchmark code and its scoring are the same for both formats.
    """

    def run(conversations):
        chats = [NativeChat(*grammar.native_chat(c, family), family) for c in conversations]
        return [grammar.parse_native_turn_lenient(text, family).as_toolrl() for text in generate(chats)]

    return run


def output_family(config: EvalConfig, generation: GenerationConfig, backend: Backend) -> grammar.NativeFamily | None:
    """The template family of ``--output_format native``, told from the model's tokenizer (None for toolrl)."""
    if config.output_format != "native":
        return None
    tokenizer = getattr(backend, "tokenizer", None)
    name = generation.tokenizer or generation.model
    if tokenizer is None:
        try:
            tokenizer = load_tokenizer(name, generation.allow_remote_code)
        except OSError as err:
            raise ValueError(
                f"--output_format native reads the model's chat template, but no tokenizer loads from {name!r} "
                f"({err}); pass --tokenizer PATH"
            ) from None
    family = grammar.native_family(tokenizer)
    logger.info("output_format native: the %s template writes prompts and reads outputs", family.name)
    return family


def _seeds(config: EvalConfig, generation: GenerationConfig, benchmarks: list[str]) -> list[int | None]:
    sampled = any(sampling_temperature(config, generation, b) > 0 for b in benchmarks)
    if not sampled:
        return [None]
    return [config.seed + i for i in range(config.seeds)]


def _notes(config: EvalConfig, benchmarks: list[str]) -> list[str]:
    notes = []
    if "bfcl" in benchmarks:
        notes.append(f"* {bfcl.OVERALL_NOTE}; Non-live Exec cannot be computed (retired from BFCL).")
    if "bamboogle" in benchmarks:
        metric = "the LLM judge's verdict" if config.judge_api_base else "exact match (no judge configured)"
        notes.append(f"Bamboogle Acc is {metric}; the paper's metric is its GPT-4o judge.")
    if config.limit is not None:
        notes.append(f"Only the first {config.limit} items of each BFCL category / API-Bank level / Bamboogle.")
    return notes


def run_executed(
    config: EvalConfig, generation: GenerationConfig, tasks: executed.ExecutedTasksConfig | None, out: Path
) -> dict[str, Any]:
    """The executed held-out tasks of ``generation.model`` (greedy, one episode each); writes ``executed.json``."""
    if generation.backend != "hf":
        logger.info(
            "executed: episodes are generated by TRL's tool loop with transformers, not by %s", generation.backend
        )
    result = executed.evaluate_checkpoint(
        generation.model,
        tasks or executed.ExecutedTasksConfig(),
        output_format=config.output_format,
        batch_size=generation.batch_size,
        limit=config.limit,
        output_dir=out,
    )
    logger.info("executed: success %.3f over %d episodes", result["success"], result["n"])
    return result


def run_evaluation(
    config: EvalConfig,
    generation: GenerationConfig,
    backend: Backend | None = None,
    tasks: executed.ExecutedTasksConfig | None = None,
) -> EvaluationResult:
    """Run the benchmarks (per seed); writes outputs, ``<benchmark>_items.jsonl``, ``scores.json``, ``results.*``.

    One seed (or greedy decoding): everything in ``results_dir``. Several: each seed's outputs and
    scores in ``results_dir/seed-<s>/``, the table over all seeds in ``results_dir``. ``executed`` is
    greedy and runs once, into ``results_dir/executed.json`` (``tasks``: which tasks; default the
    synthetic world's held-out splits).
    """
    requested, skipped = check_inputs(config, generation)
    for name, reason in skipped.items():
        logger.warning("%s skipped: %s", name, reason)
    out = Path(config.results_dir) if config.results_dir else default_results_dir(generation.model)
    executed_result = run_executed(config, generation, tasks, out) if "executed" in requested else None
    benchmarks = [name for name in requested if name in PAPER_BENCHMARKS]
    if not benchmarks:
        return EvaluationResult([], skipped, None, out, executed_result)
    backend = backend if backend is not None else build_backend(generation)
    family = output_family(config, generation, backend)
    seeds = _seeds(config, generation, benchmarks)
    runs = []
    for seed in seeds:
        folder = out if len(seeds) == 1 else out / f"seed-{seed}"
        reports = {}
        for name in benchmarks:
            decoding = decoding_for(config, generation, name, seed)
            logger.info("%s: protocol %s, %s", name, config.protocol, decoding.describe())
            report = RUNNERS[name](config, _bind(backend, decoding, family), folder)
            report.summary["decoding"] = decoding.describe()
            write_jsonl(folder / f"{name}_items.jsonl", report.items)  # beside, not inside, the outputs folder
            reports[name] = report
            logger.info("%s: accuracy %s over %d items", name, report.summary["accuracy"], report.summary["n"])
        scores = {
            "model": generation.model,
            "backend": generation.backend,
            "protocol": config.protocol,
            "output_format": config.output_format,
            "seed": seed,
            **{k: r.summary for k, r in reports.items()},
        }
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "scores.json").write_text(json.dumps(scores, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        runs.append(reports)
    header = {
        "model": generation.model,
        "backend": generation.backend,
        "protocol": config.protocol,
        "output_format": config.output_format,
        "bfcl_eval_version": bfcl.BFCL_EVAL_VERSION,
        "decoding": {name: decoding_for(config, generation, name, None).describe() for name in benchmarks},
        "seeds": [s for s in seeds if s is not None],
        "limit": config.limit,
    }
    table = PaperTable.build(runs, header, {**skipped}, _notes(config, benchmarks))
    table.write(out)
    logger.info("results written to %s", out)
    return EvaluationResult(runs, skipped, table, out, executed_result)
