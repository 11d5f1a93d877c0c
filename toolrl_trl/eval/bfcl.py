"""BFCL through the ``bfcl-eval`` package: its shipped data, its AST and multi-turn checkers, the paper's handler.

The paper evaluated on BFCL with a custom handler: the ToolRL system prompt listing the tools
(name, description, parameter properties), the dialogue rendered into one user message with a
fixed instruction, and the calls read from the *last* ``<tool_call>`` block (bad lines dropped,
a call named ``None`` ignored). This module reproduces that handler on top of the project's
grammar and hands the decoded calls to bfcl-eval's own checkers, so nothing of the scoring is
re-implemented.

Importing bfcl-eval's checkers pulls in its model registry, which imports every provider SDK
(OpenAI, Anthropic, Cohere, Mistral, Gemini, Bedrock ...). The checkers read one flag from that
registry (``underscore_to_dot``, false for a prompting model), so :func:`load_bfcl` registers a
minimal ``bfcl_eval.constants.model_config`` holding this project's entry instead; bfcl-eval
itself is installed with ``--no-deps`` (it pins numpy 1.26) and needs nothing beyond what
the training environment already has for these checkers (``filelock``, ``mpmath``).
bfcl-eval writes lock/result folders under ``BFCL_PROJECT_ROOT`` at import time; unless the
user set it, it points at ``~/.cache/toolrl_trl/bfcl`` so nothing is written into site-packages.

The executable categories (``exec_*``, ``rest``) were retired from BFCL before v4, so the paper's
"Non-live Exec" column cannot be reproduced with bfcl-eval; the web-search and memory (agentic)
categories came after the paper and are not part of its table.
"""

from __future__ import annotations

import copy
import functools
import logging
import os
import re
import sys
import types
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from toolrl_trl import grammar
from toolrl_trl.eval.common import EvalDataError, ScoreReport, format_percent, format_table, fraction

logger = logging.getLogger(__name__)

#: The bfcl-eval release this module was written and tested against (data: BFCL v4).
BFCL_EVAL_VERSION = "2026.3.23"
#: The name this project registers in bfcl-eval's model registry (a prompting model: dots kept in names).
MODEL_NAME = "toolrl-trl"

NON_LIVE_AST = ["simple_python", "simple_java", "simple_javascript", "multiple", "parallel", "parallel_multiple"]
LIVE_AST = ["live_simple", "live_multiple", "live_parallel", "live_parallel_multiple"]
RELEVANCE = ["irrelevance", "live_irrelevance", "live_relevance"]
MULTI_TURN = ["multi_turn_base", "multi_turn_miss_func", "multi_turn_miss_param", "multi_turn_long_context"]
#: Every category of the paper's table that bfcl-eval can still score.
CATEGORIES = NON_LIVE_AST + ["irrelevance"] + LIVE_AST + ["live_irrelevance", "live_relevance"] + MULTI_TURN
GROUPS = {
    "all": CATEGORIES,
    "non_live": NON_LIVE_AST + ["irrelevance"],
    "live": LIVE_AST + ["live_irrelevance", "live_relevance"],
    "multi_turn": MULTI_TURN,
    "ast": NON_LIVE_AST + LIVE_AST,
    "single_turn": NON_LIVE_AST + ["irrelevance"] + LIVE_AST + ["live_irrelevance", "live_relevance"],
}
RETIRED = ["exec_simple", "exec_multiple", "exec_parallel", "exec_parallel_multiple", "rest", "sql", "chatable"]
#: BFCL's own per-turn step cap for multi-turn inference (``MAXIMUM_STEP_LIMIT``).
DEFAULT_MAX_STEPS = 20

# The paper's BFCL handler prompt text (instructions appended to user turns), kept verbatim, typo included.
SINGLE_TURN_INSTRUCTION = (
    "If there's no appropriate tools to apply or required parameters are missing, please directly inform me in your "
    "response without any tool call, or call the tool with the name as 'None'. Otherwise, you should use one or more "
    "necessary tool calls to complete the given task in this turn."
)
MULTI_TURN_INSTRUCTION = (
    "Use the one or more necessary tool calls to complete the task. You could perform tool calls for multiple rounds "
    "so you can try and error. Please make a comprehensive plan about how to achieve the goal step by step, and begin "
    "to call the tool step by step. If no tools apply or required parameters are missing, please also directly state "
    "this in your response without tool calls."
)
AFTER_TOOL_INSTRUCTION = (
    "If you think you have completed the current task, or the task cannot be finished, please respond directly "
    "without additional tool calls. If you encounter an error during tool execution or the task remains unfinished, "
    "retry with the one or more necessary tool calls according to your thought and plan until completion. Based on "
    "the tool execution feedback, reflect on if understanding or selectioin of tool is wrong, what tool calling step "
    "is missing, and how to achieve the task goal from now on."
)


class BfclUnavailableError(ImportError):
    """bfcl-eval is not installed (or not importable); the message says how to install it."""


# ---------------------------------------------------------------------------------------------------------------------
# bfcl-eval loading
# ---------------------------------------------------------------------------------------------------------------------


def default_project_root() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "toolrl_trl" / "bfcl"


def _register_model_config() -> None:
    """Give the checkers the one registry entry they read, without importing every provider SDK."""
    name = "bfcl_eval.constants.model_config"
    entry = types.SimpleNamespace(underscore_to_dot=False, display_name=MODEL_NAME, is_fc_model=False)
    module = sys.modules.get(name)
    if module is None:
        module = types.ModuleType(name)
        module.__doc__ = "toolrl-trl's stand-in for bfcl-eval's model registry (checkers read underscore_to_dot)."
        module.MODEL_CONFIG_MAPPING = {}
        sys.modules[name] = module
    module.MODEL_CONFIG_MAPPING[MODEL_NAME] = entry


@functools.cache
def load_bfcl() -> types.SimpleNamespace:
    """Import bfcl-eval's data loaders and checkers (once); raise :class:`BfclUnavailableError` if missing."""
    root = Path(os.environ.setdefault("BFCL_PROJECT_ROOT", str(default_project_root())))
    root.mkdir(parents=True, exist_ok=True)
    try:
        import bfcl_eval  # noqa: F401
    except ImportError as err:
        raise BfclUnavailableError(
            f"bfcl-eval is not installed ({err}); install it without its dependencies: "
            f'pip install --no-deps "bfcl-eval=={BFCL_EVAL_VERSION}" (or `make install`)'
        ) from err
    _register_model_config()
    try:
        from bfcl_eval import utils
        from bfcl_eval.constants.default_prompts import DEFAULT_USER_PROMPT_FOR_ADDITIONAL_FUNCTION_PROMPTING
        from bfcl_eval.constants.enums import Language
        from bfcl_eval.eval_checker.ast_eval.ast_checker import ast_checker
        from bfcl_eval.eval_checker.multi_turn_eval import multi_turn_utils
        from bfcl_eval.eval_checker.multi_turn_eval.multi_turn_checker import multi_turn_checker
    except ImportError as err:
        raise BfclUnavailableError(
            f"bfcl-eval's checkers could not be imported ({err}); this project supports bfcl-eval=={BFCL_EVAL_VERSION}"
        ) from err
    return types.SimpleNamespace(
        utils=utils,
        Language=Language,
        ast_checker=ast_checker,
        multi_turn_checker=multi_turn_checker,
        multi_turn_utils=multi_turn_utils,
        execute=multi_turn_utils.execute_multi_turn_func_call,
        additional_function_prompt=DEFAULT_USER_PROMPT_FOR_ADDITIONAL_FUNCTION_PROMPTING,
    )


def is_available() -> bool:
    try:
        load_bfcl()
    except BfclUnavailableError:
        return False
    return True


# ---------------------------------------------------------------------------------------------------------------------
# Categories and data
# ---------------------------------------------------------------------------------------------------------------------


def resolve_categories(spec: str | Sequence[str] | None) -> list[str]:
    """Category names (or group names: all, non_live, live, multi_turn, ast, single_turn), in table order."""
    if spec is None or spec == "" or spec == []:
        return list(CATEGORIES)
    names = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    chosen: set[str] = set()
    for name in names:
        if name in GROUPS:
            chosen.update(GROUPS[name])
        elif name in CATEGORIES:
            chosen.add(name)
        elif name in RETIRED:
            raise ValueError(
                f"BFCL category {name!r} was retired from BFCL (the executable categories are gone from bfcl-eval), "
                "so the paper's 'Non-live Exec' column cannot be reproduced"
            )
        else:
            raise ValueError(f"unknown BFCL category {name!r}; valid: {', '.join([*GROUPS, *CATEGORIES])}")
    return [c for c in CATEGORIES if c in chosen]


def category_of(item_id: str) -> str:
    """The category of a BFCL item id (``live_simple_3-2-0`` -> ``live_simple``)."""
    return str(item_id).split(":")[0].rsplit("_", 1)[0]


def language_of(category: str) -> str:
    return {"simple_java": "JAVA", "simple_javascript": "JAVASCRIPT"}.get(category, "PYTHON")


@functools.cache
def _entries(category: str, hinted: bool) -> tuple[dict[str, Any], ...]:
    bfcl = load_bfcl()
    return tuple(bfcl.utils.load_dataset_entry(category, include_prereq=False, include_language_specific_hint=hinted))


def load_entries(category: str, *, for_generation: bool) -> list[dict[str, Any]]:
    """A category's test entries (deep copies). Generation sees BFCL's language hints; the checkers see the raw docs."""
    if category not in CATEGORIES:
        resolve_categories([category])  # raises with the right message
    return copy.deepcopy(list(_entries(category, for_generation)))


@functools.cache
def _ground_truth(category: str) -> dict[str, Any]:
    if category in RELEVANCE:
        return {}
    rows = load_bfcl().utils.load_ground_truth_entry(category)
    prompts = _entries(category, False)
    # bfcl-eval aligns prompts and answers by position (some live answer ids differ in form).
    return {prompt["id"]: row["ground_truth"] for prompt, row in zip(prompts, rows, strict=True)}


def ground_truth(category: str, item_id: str) -> Any:
    return copy.deepcopy(_ground_truth(category)[item_id])


# ---------------------------------------------------------------------------------------------------------------------
# The paper's handler: prompts and decoding
# ---------------------------------------------------------------------------------------------------------------------


def tool_specs(functions: Iterable[dict[str, Any]]) -> list[grammar.ToolSpec]:
    """BFCL function docs as the ToolRL system prompt lists them (parameters = the schema's properties)."""
    return [
        grammar.ToolSpec(f["name"], f.get("description", ""), dict(f.get("parameters", {}).get("properties", {})))
        for f in functions
    ]


def render_user_prompt(messages: Sequence[dict[str, Any]], multi_turn: bool) -> str:
    """The dialogue as the paper's handler wrote it into one user message (system messages are dropped)."""
    instruction = MULTI_TURN_INSTRUCTION if multi_turn else SINGLE_TURN_INSTRUCTION
    parts = [grammar.DIALOGUE_HEADER + "\n"]
    for index, message in enumerate(messages):
        role, content = message["role"], str(message.get("content", "")).strip()
        if role == "user":
            parts.append(f"{grammar.USER_OPEN} {content}\n{instruction} {grammar.USER_CLOSE}\n")
        elif role == "tool":
            name = str(message.get("name", "")).strip()
            parts.append(f"{grammar.OBS_OPEN} You have made the tool call {name}. Execution returns: {content} ")
            parts.append(f"{grammar.OBS_CLOSE}\n")
            if index == len(messages) - 1:
                parts.append(f"\n{grammar.USER_OPEN} {AFTER_TOOL_INSTRUCTION} {grammar.USER_CLOSE}\n")
        elif role == "assistant":
            parts.append(f"\n{content}\n")
    return "".join(parts).strip()


def build_messages(functions: Sequence[dict[str, Any]], history: Sequence[dict[str, Any]], multi_turn: bool):
    return [
        {"role": "system", "content": grammar.render_system_prompt(tool_specs(functions))},
        {"role": "user", "content": render_user_prompt(history, multi_turn)},
    ]


def single_turn_messages(entry: dict[str, Any]) -> list[dict[str, str]]:
    """The chat messages of a single-turn entry (one system, one user message)."""
    return build_messages(entry["function"], entry["question"][0], multi_turn=False)


def _calls(text: Any) -> list[dict[str, Any]]:
    if not isinstance(text, str):
        return []
    return [c for c in grammar.parse_tool_calls_lenient(text) if c["name"].strip().lower() != "none"]


def decode_ast(text: Any) -> list[dict[str, dict[str, Any]]]:
    """Calls in the checker's AST format ``[{name: {param: value}}]`` (the paper's ``decode_ast``)."""
    return [{c["name"]: c["parameters"]} for c in _calls(text)]


def decode_execute(text: Any) -> list[str]:
    """Calls as Python call strings ``name(k=repr(v), ...)`` for the multi-turn executor (the paper's handler)."""
    return [
        f"{c['name']}({', '.join(f'{key}={value!r}' for key, value in c['parameters'].items())})" for c in _calls(text)
    ]


# ---------------------------------------------------------------------------------------------------------------------
# Multi-turn inference against bfcl-eval's simulated tools
# ---------------------------------------------------------------------------------------------------------------------


def _release_instances(model_name: str) -> None:
    """Drop the simulated-tool instances bfcl-eval caches in its module globals for ``model_name``.

    bfcl-eval keys them by model name and test id and reuses them across calls, which is how a
    conversation keeps its state; a fresh name per run plus this clean-up keeps runs independent.
    """
    namespace = vars(load_bfcl().multi_turn_utils)
    prefix = re.sub(r"[-./:]", "_", model_name)
    for key in [k for k in namespace if k.startswith(prefix)]:
        del namespace[key]


class MultiTurnEpisode:
    """One multi-turn entry driven step by step: ``prompt()`` -> model text -> ``observe(text)`` until ``done``.

    Mirrors bfcl-eval's prompting loop: each turn adds the user's message (or, in miss-func turns,
    the held-out function docs), the model is queried until a step decodes to no call, calls are
    executed on the simulated tools and fed back as observations; more than ``max_steps`` steps in
    a turn force-quits the entry (which then fails, as in BFCL).
    """

    def __init__(self, entry: dict[str, Any], max_steps: int = DEFAULT_MAX_STEPS):
        self.entry = entry
        self.max_steps = max_steps
        self.category = category_of(entry["id"])
        self.model_name = f"{MODEL_NAME}-gen-{uuid.uuid4().hex[:8]}"
        self.history: list[dict[str, Any]] = []
        self.responses: list[list[str]] = []
        self.turn = -1
        self.steps = 0
        self.done = False
        self._current: list[str] = []
        self._holdout = entry.get("missed_function", {})
        self._next_turn()

    def _next_turn(self) -> None:
        self.turn += 1
        self._current, self.steps = [], 0
        if self.turn >= len(self.entry["question"]):
            self._finish()
            return
        messages = self.entry["question"][self.turn]
        if str(self.turn) in self._holdout:
            functions = self._holdout[str(self.turn)]
            messages = [
                {"role": "user", "content": load_bfcl().additional_function_prompt.format(functions=functions)}
            ]
        self.history.extend(messages)

    def _finish(self) -> None:
        self.done = True
        _release_instances(self.model_name)

    def prompt(self) -> list[dict[str, str]]:
        return build_messages(self.entry["function"], self.history, multi_turn=True)

    def observe(self, text: str) -> None:
        if self.done:
            raise RuntimeError(f"{self.entry['id']}: observe() after the episode ended")
        self._current.append(text)
        self.history.append({"role": "assistant", "content": text})
        calls = decode_execute(text)
        if not calls:
            self.responses.append(self._current)
            self._next_turn()
            return
        results, _ = load_bfcl().execute(
            calls,
            self.entry.get("initial_config", {}),
            self.entry["involved_classes"],
            self.model_name,
            self.entry["id"],
            long_context="long_context" in self.category,
            is_evaL_run=False,
        )
        for call, result in zip(calls, results, strict=True):
            self.history.append({"role": "tool", "name": call, "content": result})
        self.steps += 1
        if self.steps > self.max_steps:
            logger.warning("%s: force-quit after %d steps in turn %d", self.entry["id"], self.max_steps, self.turn)
            self.responses.append(self._current)
            self._finish()


def run_multi_turn(
    entries: Sequence[dict[str, Any]],
    generate: Callable[[list[list[dict[str, str]]]], list[str]],
    max_steps: int = DEFAULT_MAX_STEPS,
) -> list[list[list[str]]]:
    """Run many episodes in lock-step so every model call is one batch; returns turns x steps of raw outputs."""
    episodes = [MultiTurnEpisode(entry, max_steps) for entry in entries]
    while True:
        active = [e for e in episodes if not e.done]
        if not active:
            break
        outputs = generate([e.prompt() for e in active])
        for episode, output in zip(active, outputs, strict=True):
            episode.observe(output)
    return [e.responses for e in episodes]


# ---------------------------------------------------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------------------------------------------------


def score_item(category: str, entry: dict[str, Any], output: Any) -> dict[str, Any]:
    """Score one raw output with bfcl-eval's checker for ``category``; ``entry`` is the un-hinted test entry."""
    bfcl = load_bfcl()
    if category in RELEVANCE:
        has_call = len(decode_ast(output)) > 0
        valid = not has_call if "irrelevance" in category else has_call
        return {"valid": valid, "error": None if valid else ("made a call" if has_call else "made no call")}
    if category in MULTI_TURN:
        return _score_multi_turn(entry, output)
    language = getattr(bfcl.Language, language_of(category))
    try:
        result = bfcl.ast_checker(
            entry["function"], decode_ast(output), ground_truth(category, entry["id"]), language, category, MODEL_NAME
        )
    except Exception as err:  # a checker crash on an odd output is a wrong answer, not a failed run
        return {"valid": False, "error": f"checker error: {type(err).__name__}: {err}"}
    return {"valid": bool(result["valid"]), "error": None if result["valid"] else result.get("error")}


def _score_multi_turn(entry: dict[str, Any], output: Any) -> dict[str, Any]:
    expected = ground_truth(category_of(entry["id"]), entry["id"])
    if not isinstance(output, list) or not all(
        isinstance(turn, list) and all(isinstance(s, str) for s in turn) for turn in output
    ):
        return {"valid": False, "error": "multi-turn output must be a list of turns, each a list of step texts"}
    if len(output) != len(expected):
        return {"valid": False, "error": f"force-terminated: {len(output)} turns for {len(expected)} expected"}
    decoded = [[calls for calls in (decode_execute(step) for step in turn) if calls] for turn in output]
    model_name = f"{MODEL_NAME}-score-{uuid.uuid4().hex[:8]}"
    try:
        result = load_bfcl().multi_turn_checker(decoded, expected, entry, category_of(entry["id"]), model_name)
    except Exception as err:
        result = {"valid": False, "error_message": f"checker error: {type(err).__name__}: {err}"}
    finally:
        _release_instances(model_name)
        _release_instances(model_name + "_ground_truth")
    return {"valid": bool(result["valid"]), "error": None if result["valid"] else result.get("error_message")}


def score_predictions(predictions: Sequence[dict[str, Any]], category: str | None = None) -> ScoreReport:
    """Score prediction rows (``id``, ``output``) and build the paper's table.

    ``category`` restricts (and checks) the scope: a category or group name; by default the
    categories are read from the ids. Ids must be BFCL's; only the ids present are scored (a
    partial run is reported with its ``n``), an id BFCL does not have is an error.
    """
    allowed = resolve_categories(category) if category else None
    by_category: dict[str, list[dict[str, Any]]] = {}
    for number, row in enumerate(predictions, start=1):
        item_category = category_of(row["id"])
        if item_category not in CATEGORIES:
            raise EvalDataError(f"prediction {number}: id {row['id']!r} is not in a scored BFCL category")
        if allowed is not None and item_category not in allowed:
            raise EvalDataError(f"prediction {number}: id {row['id']!r} is outside --category {category}")
        by_category.setdefault(item_category, []).append(row)
    results: dict[str, dict[str, Any]] = {}
    items = []
    for cat in [c for c in CATEGORIES if c in by_category]:
        entries = {e["id"]: e for e in _entries(cat, False)}
        correct = 0
        for row in by_category[cat]:
            if row["id"] not in entries:
                raise EvalDataError(f"id {row['id']!r} is not a BFCL {cat} item")
            verdict = score_item(cat, copy.deepcopy(entries[row["id"]]), row["output"])
            correct += verdict["valid"]
            items.append({"id": row["id"], "category": cat, **verdict})
        results[cat] = {"n": len(by_category[cat]), "correct": correct, "of": len(entries)}
    return _report(results, items, category)


def _acc(results: dict[str, dict[str, Any]], cat: str) -> float | None:
    r = results.get(cat)
    return None if r is None else fraction(r["correct"], r["n"])


def _unweighted(values: Sequence[float | None]) -> float | None:
    return None if any(v is None for v in values) else sum(values) / len(values)


def paper_columns(results: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    """The paper's BFCL (v3-style) summary columns from per-category results; None where a part is missing.

    Non-live AST: unweighted mean of simple (itself the mean of Python/Java/JavaScript), multiple,
    parallel, parallel-multiple. Live: count-weighted mean of the four live AST categories.
    Multi-turn: unweighted mean of its four categories. Irrelevance: mean of non-live and live.
    Overall: unweighted mean of non-live, live and multi-turn (BFCL v3's formula, without the
    retired executable categories). Non-live Exec: not computable with bfcl-eval (always None).
    """
    simple = _unweighted([_acc(results, c) for c in NON_LIVE_AST[:3]])
    non_live = _unweighted([simple, *(_acc(results, c) for c in NON_LIVE_AST[3:])])
    live_parts = [results.get(c) for c in LIVE_AST]
    live = (
        None
        if any(p is None for p in live_parts)
        else fraction(sum(p["correct"] for p in live_parts), sum(p["n"] for p in live_parts))
    )
    multi_turn = _unweighted([_acc(results, c) for c in MULTI_TURN])
    return {
        "overall": _unweighted([non_live, live, multi_turn]),
        "non_live_ast": non_live,
        "non_live_exec": None,
        "live": live,
        "multi_turn": multi_turn,
        "relevance": _acc(results, "live_relevance"),
        "irrelevance": _unweighted([_acc(results, "irrelevance"), _acc(results, "live_irrelevance")]),
    }


PAPER_HEADERS = {
    "overall": "Overall",
    "non_live_ast": "Non-live AST",
    "non_live_exec": "Non-live Exec",
    "live": "Live",
    "multi_turn": "Multi-turn",
    "relevance": "Relevance",
    "irrelevance": "Irrelevance",
}


def _report(results: dict[str, dict[str, Any]], items: list[dict[str, Any]], scope: str | None) -> ScoreReport:
    n = sum(r["n"] for r in results.values())
    correct = sum(r["correct"] for r in results.values())
    columns = paper_columns(results)
    per_category = {cat: {"n": r["n"], "accuracy": fraction(r["correct"], r["n"])} for cat, r in results.items()}
    partial = {cat: f"{r['n']}/{r['of']}" for cat, r in results.items() if r["n"] != r["of"]}
    scope_name = scope if scope else (next(iter(results)) if len(results) == 1 else "all")
    summary = {
        "benchmark": "bfcl",
        "category": scope_name,
        "n": n,
        "accuracy": fraction(correct, n),
        "categories": per_category,
        "paper_columns": columns,
        "partial": partial,
        "bfcl_eval_version": BFCL_EVAL_VERSION,
    }
    rows = [[cat, r["n"], format_percent(fraction(r["correct"], r["n"]))] for cat, r in results.items()]
    table = format_table(["category", "n", "accuracy %"], rows, title="BFCL (bfcl-eval checkers) per category")
    paper = format_table(
        list(PAPER_HEADERS.values()),
        [[format_percent(columns[k]) for k in PAPER_HEADERS]],
        title="BFCL, the paper's columns (N/A: a category is missing; Non-live Exec: retired from BFCL)",
    )
    note = f"\npartial categories (scored/total): {partial}" if partial else ""
    return ScoreReport(summary=summary, items=items, table=f"{table}\n\n{paper}{note}")
