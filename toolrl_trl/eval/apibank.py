"""API-Bank levels 1-3 as the paper processed them, scored as its scripts did (``paper``) or strictly (``project``).

Each level file is a JSON list of ``{"system", "user", "answer", "other"}``: the system prompt
already lists the tools in the ToolRL format, ``user`` is the rendered dialogue and ``answer`` the
gold call(s) (a list of ``{"name", "parameters"}``; level 2 stores a single object). The item id
of a prediction is the item's index in its level file.

``paper`` protocol (``benchmarks/API-Bank/generate.py`` + ``evaluate.py``): the output is stripped
and split at its *last* ``<tool_call>`` (with no tag the split keeps the whole text, so any JSON
line anywhere counts), every non-empty line up to the next ``</tool_call>`` that ``json.loads``
accepts is a prediction; the item counts if one prediction equals the first gold call by
Python ``==`` (1 == 1.0, True == 1), a dict without ``name``/``parameters`` being compared as the
parameters of a call to the gold name. One ``try`` wraps the whole loop, so a prediction that
is a JSON number, bool, null or a string that is not itself JSON ends the check of every later one.

``project`` protocol (soft): only well-formed calls of the last block count, and a call counts
if it equals a gold call as JSON (so 1 and 1.0 differ). Strict (reported with both): the
project's well-formed calls equal the gold calls as a multiset (nothing missing, nothing extra).
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
PROTOCOLS = ("paper", "project")
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


def check_protocol(protocol: str) -> str:
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown --protocol {protocol!r}; valid: {', '.join(PROTOCOLS)}")
    return protocol


def paper_predictions(output: Any) -> list[Any]:
    """The predictions ``generate.py`` stored: JSON values of the lines of the last block (or of the whole text)."""
    if not isinstance(output, str):
        return []
    block = output.strip().split(grammar.TOOL_CALL_OPEN)[-1].split(grammar.TOOL_CALL_CLOSE)[0].strip()
    predictions = []
    for line in block.split("\n"):
        if line.strip() == "":
            continue
        try:
            predictions.append(json.loads(line))
        except (ValueError, RecursionError):
            continue
    return predictions


def paper_soft_match(predictions: Sequence[Any], answer: Sequence[dict[str, Any]]) -> bool:
    """``evaluate.py``'s soft match of stored predictions against the first gold call, quirks included."""
    gold_name, gold_parameters = answer[0]["name"], answer[0]["parameters"]
    try:
        for prediction in predictions:
            if type(prediction) is str:  # noqa: E721 - the paper's exact-type test
                prediction = json.loads(prediction)
            if "name" not in prediction or "parameters" not in prediction:
                name, parameters = gold_name, prediction
            else:
                name, parameters = prediction["name"], prediction["parameters"]
            if name == gold_name and parameters == gold_parameters:
                return True
    except Exception:  # the paper's one try around the loop: the first failure ends the check
        return False
    return False


def match(output: Any, answer: Sequence[dict[str, Any]], protocol: str = "paper") -> dict[str, Any]:
    """Soft (the protocol's) and strict (the project's) verdicts for one raw output against the gold calls."""
    calls = grammar.parse_tool_calls_lenient(output) if isinstance(output, str) else []
    predicted_keys = sorted(_key(c) for c in calls)
    gold_keys = sorted(_key(c) for c in answer)
    strict = predicted_keys == gold_keys
    if check_protocol(protocol) == "paper":
        predicted = paper_predictions(output)
        return {"valid": paper_soft_match(predicted, answer), "strict": strict, "predicted": predicted}
    return {"valid": any(k in gold_keys for k in predicted_keys), "strict": strict, "predicted": calls}


def score_level(
    predictions: Sequence[dict[str, Any]], items: Sequence[dict[str, Any]], level: int, protocol: str = "paper"
) -> dict[str, Any]:
    """Per-item verdicts of one level; prediction ids are item indices in the level file."""
    check_protocol(protocol)
    verdicts = []
    for number, row in enumerate(predictions, start=1):
        index = item_index(row, number, len(items), f"level {level}")
        verdict = match(row["output"], items[index]["answer"], protocol)
        verdicts.append({"id": index, "level": level, "valid": verdict["valid"], "strict": verdict["strict"]})
    return {"level": level, "items": verdicts, "total": len(items), "protocol": protocol}


def _summary(level_results: Sequence[dict[str, Any]], scope: int | str) -> ScoreReport:
    protocols = {result.get("protocol", "paper") for result in level_results}
    if len(protocols) > 1:
        raise ValueError(f"API-Bank levels scored under different protocols {sorted(protocols)}: score them alike")
    protocol = protocols.pop() if protocols else "paper"
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
        "protocol": protocol,
    }
    table = format_table(
        ["API-Bank", "n", f"accuracy % (soft, {protocol})", "strict % (project)"],
        rows,
        title=f"API-Bank, protocol {protocol} (overall: micro average, as the paper's leaderboard)",
    )
    return ScoreReport(summary=summary, items=items, table=table)


def score_predictions(
    predictions: Sequence[dict[str, Any]], data: str | Path, level: int, protocol: str = "paper"
) -> ScoreReport:
    """Score one level's predictions against its file (``data``: the file, its directory or a URL)."""
    items = load_level(level_source(data, level))
    return _summary([score_level(predictions, items, level, protocol)], level)


def combine(level_results: Sequence[dict[str, Any]]) -> ScoreReport:
    """The table over several levels (per level and overall), from :func:`score_level` results."""
    return _summary(level_results, "all" if len(level_results) > 1 else level_results[0]["level"])
