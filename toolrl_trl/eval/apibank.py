"""API-Bank levels 1-3 as the paper processed them, with the paper's soft match and a strict variant.

Each level file is a JSON list of ``{"system", "user", "answer", "other"}``: the system prompt
already lists the tools in the ToolRL format, ``user`` is the rendered dialogue and ``answer`` the
gold call(s) (a list of ``{"name", "parameters"}``; level 2 stores a single object). The item id
of a prediction is the item's index in its level file.

Soft (the paper's): the item counts if any predicted call equals a gold call, name and
parameters (exact JSON equality). Strict: the predicted calls equal the gold calls as a
multiset (same calls, nothing missing, nothing extra). Calls are read like BFCL's: the last
``<tool_call>`` block, unparseable lines dropped.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from toolrl_trl import grammar
from toolrl_trl.eval.common import (
    EvalDataError,
    ScoreReport,
    format_percent,
    format_table,
    fraction,
    is_url,
    item_index,
    load_json,
)

LEVELS = (1, 2, 3)
FILE_PATTERN = "level-{level}-api_processed.json"


def level_source(data: str | Path, level: int) -> str:
    """The level file inside ``data`` when it is a directory or URL prefix; ``data`` itself when it is a file."""
    if level not in LEVELS:
        raise ValueError(f"unknown API-Bank level {level!r}; valid: {', '.join(map(str, LEVELS))}")
    text = str(data)
    if is_url(text):
        return text if text.endswith(".json") else text.rstrip("/") + "/" + FILE_PATTERN.format(level=level)
    path = Path(text)
    return str(path / FILE_PATTERN.format(level=level)) if path.is_dir() else str(path)


def _normalise_call(call: Any, where: str) -> dict[str, Any]:
    try:
        return dict(grammar.validate_tool_call(call))
    except grammar.GrammarError as err:
        raise EvalDataError(f"{where}: {err}") from None


def load_level(source: str | Path) -> list[dict[str, Any]]:
    """Items of one level file: ``messages`` (system, user) and ``answer`` (a list of gold calls)."""
    data = load_json(source)
    if not isinstance(data, list):
        raise EvalDataError(f"{source}: expected a JSON list of items, got {type(data).__name__}")
    items = []
    for index, row in enumerate(data):
        where = f"{source}: item {index}"
        if not isinstance(row, dict):
            raise EvalDataError(f"{where} is a {type(row).__name__}, expected an object")
        for key in ("system", "user", "answer"):
            if key not in row:
                raise EvalDataError(f"{where} lacks the {key!r} field")
        answer = row["answer"] if isinstance(row["answer"], list) else [row["answer"]]
        if not answer:
            raise EvalDataError(f"{where}: 'answer' holds no call")
        items.append(
            {
                "id": index,
                "messages": [{"role": "system", "content": row["system"]}, {"role": "user", "content": row["user"]}],
                "answer": [_normalise_call(call, f"{where} field 'answer'") for call in answer],
            }
        )
    return items


def _key(call: dict[str, Any]) -> str:
    return json.dumps({"name": call["name"], "parameters": call["parameters"]}, sort_keys=True, ensure_ascii=False)


def match(output: Any, answer: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Soft and strict verdicts for one raw output against the gold calls."""
    predicted = grammar.parse_tool_calls_lenient(output) if isinstance(output, str) else []
    predicted_keys = sorted(_key(c) for c in predicted)
    gold_keys = sorted(_key(c) for c in answer)
    soft = any(k in gold_keys for k in predicted_keys)
    strict = predicted_keys == gold_keys
    return {"valid": soft, "strict": strict, "predicted": predicted}


def score_level(predictions: Sequence[dict[str, Any]], items: Sequence[dict[str, Any]], level: int) -> dict[str, Any]:
    """Per-item verdicts of one level; prediction ids are item indices in the level file."""
    verdicts = []
    for number, row in enumerate(predictions, start=1):
        index = item_index(row, number, len(items), f"level {level}")
        verdict = match(row["output"], items[index]["answer"])
        verdicts.append({"id": index, "level": level, "valid": verdict["valid"], "strict": verdict["strict"]})
    return {"level": level, "items": verdicts, "total": len(items)}


def _summary(level_results: Sequence[dict[str, Any]], scope: int | str) -> ScoreReport:
    rows, items, per_level = [], [], {}
    all_soft = all_strict = all_n = 0
    for result in level_results:
        n = len(result["items"])
        soft = sum(v["valid"] for v in result["items"])
        strict = sum(v["strict"] for v in result["items"])
        all_soft, all_strict, all_n = all_soft + soft, all_strict + strict, all_n + n
        per_level[str(result["level"])] = {
            "n": n,
            "accuracy": fraction(soft, n),
            "strict_accuracy": fraction(strict, n),
            "of": result["total"],
        }
        rows.append(
            [f"level-{result['level']}", n, format_percent(fraction(soft, n)), format_percent(fraction(strict, n))]
        )
        items.extend(result["items"])
    if len(level_results) > 1:
        rows.append(
            ["overall", all_n, format_percent(fraction(all_soft, all_n)), format_percent(fraction(all_strict, all_n))]
        )
    summary = {
        "benchmark": "apibank",
        "level": scope,
        "n": all_n,
        "accuracy": fraction(all_soft, all_n),
        "strict_accuracy": fraction(all_strict, all_n),
        "levels": per_level,
    }
    table = format_table(
        ["API-Bank", "n", "accuracy % (soft, paper)", "strict %"], rows, title="API-Bank (overall: micro average)"
    )
    return ScoreReport(summary=summary, items=items, table=table)


def score_predictions(predictions: Sequence[dict[str, Any]], data: str | Path, level: int) -> ScoreReport:
    """Score one level's predictions against its file (``data``: the file, its directory or a URL)."""
    items = load_level(level_source(data, level))
    return _summary([score_level(predictions, items, level)], level)


def combine(level_results: Sequence[dict[str, Any]]) -> ScoreReport:
    """The table over several levels (per level and overall), from :func:`score_level` results."""
    return _summary(level_results, "all" if len(level_results) > 1 else level_results[0]["level"])
