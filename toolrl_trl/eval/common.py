"""What every benchmark shares: prediction files, data sources (path or URL), score reports and tables.

A prediction file is JSON lines ``{"id": ..., "output": ...}``; scoring works from such files
alone, so a table can be re-made (or made for outputs produced elsewhere) without the model.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class EvalDataError(ValueError):
    """A benchmark file, prediction file or item that cannot be used; the message names the file, row and field."""


def is_url(source: str | Path) -> bool:
    return isinstance(source, str) and source.startswith(("http://", "https://"))


def read_text(source: str | Path, timeout: float = 60.0) -> str:
    """The text of a local file or of an ``http(s)://`` URL (the paper's data can be named either way)."""
    if is_url(source):
        try:
            with urllib.request.urlopen(str(source), timeout=timeout) as response:  # noqa: S310 - user-given data URL
                return response.read().decode("utf-8")
        except (urllib.error.URLError, TimeoutError) as err:
            raise EvalDataError(f"{source}: cannot be fetched ({err})") from None
    path = Path(source)
    if not path.is_file():
        raise EvalDataError(f"{source}: no such file")
    return path.read_text(encoding="utf-8")


class EndpointError(RuntimeError):
    """An HTTP endpoint (model server, judge) failed or answered something unusable; the message names the URL."""


def redact(text: str, *secrets: str | None) -> str:
    """``text`` with every non-empty secret replaced by ``***`` (a server may echo a key back in its error body)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def post_json(url: str, payload: dict[str, Any], api_key: str | None = None, timeout: float = 600.0) -> Any:
    """POST a JSON body and decode the JSON answer (OpenAI-compatible endpoints, judges); plain urllib, no SDK.

    Errors name the URL and the server's message, never the key (it is redacted if the server echoes it).
    """
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    request = urllib.request.Request(url, data=json.dumps(payload).encode("utf-8"), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - user-configured endpoint
            body = response.read().decode("utf-8")
    except urllib.error.HTTPError as err:
        detail = err.read().decode("utf-8", "replace")[:500]
        raise EndpointError(redact(f"{url}: HTTP {err.code}: {detail}", api_key)) from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
        raise EndpointError(redact(f"{url}: {err}", api_key)) from None
    try:
        return json.loads(body)
    except json.JSONDecodeError:
        raise EndpointError(redact(f"{url}: the reply is not JSON: {body[:300]}", api_key)) from None


def load_json(source: str | Path) -> Any:
    text = read_text(source)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise EvalDataError(f"{source}: not valid JSON ({err.msg} at line {err.lineno})") from None


def read_predictions(path: str | Path) -> list[dict[str, Any]]:
    """Read a JSON-lines prediction file; every line must be an object with ``id`` and ``output``."""
    rows = []
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise EvalDataError(f"{path}: line {number} is not valid JSON ({err.msg})") from None
        if not isinstance(row, dict):
            raise EvalDataError(f"{path}: line {number} is a {type(row).__name__}, expected an object")
        for key in ("id", "output"):
            if key not in row:
                raise EvalDataError(f"{path}: line {number} lacks the {key!r} field")
        rows.append(row)
    ids = [str(row["id"]) for row in rows]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise EvalDataError(f"{path}: duplicate ids {duplicates[:5]}")
    return rows


def item_index(row: dict[str, Any], number: int, num_items: int, scope: str) -> int:
    """The item a prediction scores: its ``id`` is the index in the data file (API-Bank, Bamboogle)."""
    try:
        index = int(row["id"])
    except (TypeError, ValueError):
        raise EvalDataError(f"prediction {number}: id {row['id']!r} is not an item index") from None
    if not 0 <= index < num_items:
        raise EvalDataError(f"prediction {number}: id {index} is outside {scope} (0..{num_items - 1})")
    return index


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


@dataclass
class ScoreReport:
    """The result of scoring one benchmark scope: a summary (printed as the last JSON line) and per-item results.

    ``summary`` always holds ``benchmark``, the scope key (``category`` or ``level``), ``n`` and
    ``accuracy`` (a fraction in [0, 1], or None where nothing was scored); ``items`` holds one dict
    per scored prediction (id, valid, error ...); ``table`` is the human-readable view.
    """

    summary: dict[str, Any]
    items: list[dict[str, Any]] = field(default_factory=list)
    table: str = ""

    def to_json(self) -> str:
        return json.dumps(self.summary, ensure_ascii=False)


def fraction(correct: int | float, total: int) -> float | None:
    return None if total == 0 else correct / total


def format_percent(value: float | None) -> str:
    return "N/A" if value is None else f"{100 * value:.2f}"


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None) -> str:
    """A plain-text table (left-aligned first column, right-aligned others) that reads well in a terminal or log."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        first = row[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest]).rstrip()

    out = [title] if title else []
    out.append(line(cells[0]))
    out.append("  ".join("-" * w for w in widths))
    out.extend(line(row) for row in cells[1:])
    return "\n".join(out)
