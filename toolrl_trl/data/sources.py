"""Sources in, canonical rows out: finding and loading a source, recognising its layout, converting its rows.

Every source is loaded with ``datasets`` (``load_dataset("json"|"parquet"|"csv", data_files=...)``
for files and URLs, ``load_from_disk`` for folders saved by ``prepare``, ``load_dataset(id)``
for hub ids) and recognised by its columns. Each layout converts a row to the canonical pair
``(prompt, ground_truth)``: ``prompt`` is ``[system message, user message]`` and
``ground_truth`` the reference assistant output in the ToolRL grammar.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datasets import Dataset, DatasetDict, load_dataset, load_from_disk

from toolrl_trl import grammar
from toolrl_trl.data.validation import DataSourceError, RowError

SYNTHETIC = "synthetic"
#: The paper's placeholder thought for converted function-calling data (its RL data has it verbatim).
PLACEHOLDER_THINK = "I should use the appropriate tool with proper parameters to respond to the user's need."
#: File suffixes and the ``datasets`` builder that reads them.
BUILDERS: dict[str, str] = {
    ".json": "json",
    ".jsonl": "json",
    ".json.gz": "json",
    ".jsonl.gz": "json",
    ".parquet": "parquet",
    ".csv": "csv",
}
TEST_SPLIT_NAMES = ("test", "validation", "valid", "eval", "dev")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")

Converter = Callable[[Mapping[str, Any]], tuple[Any, Any]]


@dataclass(frozen=True)
class SourceShape:
    """A supported layout: the columns that identify it and the converter to canonical rows."""

    name: str
    description: str
    columns: tuple[str, ...]
    convert: Converter
    any_of: tuple[str, ...] = ()

    def mismatch(self, columns: Sequence[str]) -> str | None:
        """Why ``columns`` are not this layout (None when they are)."""
        missing = [column for column in self.columns if column not in columns]
        reasons = []
        if missing:
            reasons.append(f"missing column(s) {missing}")
        if self.any_of and not any(column in columns for column in self.any_of):
            reasons.append(f"needs one of {list(self.any_of)}")
        return "; ".join(reasons) or None


def _field(row: Mapping[str, Any], name: str, expected: type | tuple[type, ...] = str) -> Any:
    value = row.get(name)
    if not isinstance(value, expected):
        raise RowError("source_row", f"field {name!r} is {type(value).__name__}, expected {_type_names(expected)}")
    return value


def _type_names(expected: type | tuple[type, ...]) -> str:
    types = expected if isinstance(expected, tuple) else (expected,)
    return " or ".join(t.__name__ for t in types)


def _json_field(row: Mapping[str, Any], name: str) -> Any:
    """A field holding JSON text (the xLAM layout), or an already parsed value."""
    value = row.get(name)
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError as err:
            raise RowError("source_row", f"field {name!r} is not valid JSON: {err}") from None
    if value is None:
        raise RowError("source_row", f"field {name!r} is missing")
    return value


def convert_trl_rows(row: Mapping[str, Any]) -> tuple[Any, Any]:
    """Rows this module writes: ``prompt`` plus ``ground_truth`` (RL) or a one-message assistant ``completion`` (SFT).

    Left-truncated RL rows hold the templated text in ``prompt`` and the messages in ``prompt_messages``: the
    messages are read, so loading such a folder again templates (and truncates) them afresh.
    """
    prompt = row.get("prompt_messages") if row.get("prompt_messages") is not None else row.get("prompt")
    if isinstance(prompt, str):
        raise RowError(
            "prompt",
            "prompt is a text, not [system, user] messages, and the row has no 'prompt_messages' column to read the "
            "messages from",
        )
    if row.get("ground_truth") is not None:
        return prompt, row["ground_truth"]
    completion = row.get("completion")
    if not isinstance(completion, list) or len(completion) != 1 or not isinstance(completion[0], Mapping):
        raise RowError("source_row", "completion must be a list holding one assistant message")
    if completion[0].get("role") != "assistant":
        raise RowError(
            "source_row", f"completion message has role {completion[0].get('role')!r}, expected 'assistant'"
        )
    return prompt, completion[0].get("content")


def convert_toolrl_processed(row: Mapping[str, Any]) -> tuple[Any, Any]:
    """The reference's processed parquet: chat ``prompt`` and ``reward_model.ground_truth``."""
    reward_model = _field(row, "reward_model", Mapping)
    if not isinstance(reward_model.get("ground_truth"), str):
        raise RowError("source_row", "reward_model has no string 'ground_truth'")
    return row.get("prompt"), reward_model["ground_truth"]


def convert_toolrl_raw(row: Mapping[str, Any]) -> tuple[Any, Any]:
    """ToolRL raw JSON: ``instruction`` is the system prompt, ``input`` the dialogue record, ``output`` the turn."""
    prompt = [
        {"role": "system", "content": _field(row, "instruction")},
        {"role": "user", "content": _field(row, "input")},
    ]
    return prompt, _field(row, "output")


def convert_xlam(row: Mapping[str, Any]) -> tuple[Any, Any]:
    """xLAM-style function calling (``query``, ``tools``, ``answers``) rendered as the paper rendered its RL data.

    The tools go into the paper's system prompt (name, description, parameters), the query
    becomes the dialogue record, and the answers become a ``<tool_call>`` block after the
    paper's placeholder thought.
    """
    query = _field(row, "query")
    if not query.strip():
        raise RowError("source_row", "field 'query' is empty")
    tools = _json_field(row, "tools")
    answers = _json_field(row, "answers")
    if not isinstance(tools, list):
        raise RowError("source_row", f"'tools' must be a JSON list, got {type(tools).__name__}")
    specs = []
    for position, tool in enumerate(tools):
        if not isinstance(tool, Mapping) or not isinstance(tool.get("name"), str):
            raise RowError("source_row", f"tool {position} is not an object with a string 'name'")
        parameters = tool.get("parameters") or {}
        if not isinstance(parameters, Mapping):
            raise RowError("source_row", f"tool {tool['name']!r} has 'parameters' of type {type(parameters).__name__}")
        specs.append(grammar.ToolSpec(tool["name"], str(tool.get("description") or ""), parameters))
    if not isinstance(answers, list):
        raise RowError("source_row", f"'answers' must be a JSON list, got {type(answers).__name__}")
    if not answers:
        raise RowError("source_row", "'answers' is empty: the row has no reference call and no response text")
    calls = []
    for position, answer in enumerate(answers):
        if not isinstance(answer, Mapping) or not isinstance(answer.get("name"), str):
            raise RowError("source_row", f"answer {position} is not an object with a string 'name'")
        arguments = answer.get("arguments", answer.get("parameters", {}))
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments)
            except ValueError as err:
                raise RowError("source_row", f"answer {position} has arguments that are not JSON: {err}") from None
        if not isinstance(arguments, Mapping):
            raise RowError("source_row", f"answer {position} has arguments of type {type(arguments).__name__}")
        calls.append({"name": answer["name"], "parameters": dict(arguments)})
    prompt = [
        {"role": "system", "content": grammar.render_system_prompt(specs)},
        {"role": "user", "content": grammar.render_user_message(query)},
    ]
    return prompt, grammar.render_assistant_turn(PLACEHOLDER_THINK, calls)


#: Supported layouts, tried in order; the first whose columns match wins.
SHAPES: tuple[SourceShape, ...] = (
    SourceShape(
        "trl_rows",
        "TRL rows written by this module: prompt messages + ground_truth (RL) or completion (SFT)",
        ("prompt",),
        convert_trl_rows,
        any_of=("ground_truth", "completion"),
    ),
    SourceShape(
        "toolrl_processed",
        "ToolRL processed parquet: prompt messages + reward_model.ground_truth",
        ("prompt", "reward_model"),
        convert_toolrl_processed,
    ),
    SourceShape(
        "toolrl_raw",
        "ToolRL raw JSON: instruction, input, output",
        ("instruction", "input", "output"),
        convert_toolrl_raw,
    ),
    SourceShape(
        "xlam",
        "xLAM-style function calling: query, tools, answers (JSON strings)",
        ("query", "tools", "answers"),
        convert_xlam,
    ),
)
_SHAPES_BY_NAME = {shape.name: shape for shape in SHAPES}


def get_shape(name: str) -> SourceShape:
    if name not in _SHAPES_BY_NAME:
        raise KeyError(f"unknown source shape {name!r}; valid: {list(_SHAPES_BY_NAME)}")
    return _SHAPES_BY_NAME[name]


def detect_shape(columns: Sequence[str], source: str) -> SourceShape:
    """The first layout that ``columns`` match; otherwise an error saying why each layout did not."""
    reasons = []
    for shape in SHAPES:
        why = shape.mismatch(columns)
        if why is None:
            return shape
        reasons.append(f"  - {shape.name} ({shape.description}): {why}")
    raise DataSourceError(f"{source}: no supported layout matches its columns {list(columns)}:\n" + "\n".join(reasons))


def _builder_for(name: str) -> str | None:
    lowered = name.lower().split("?", 1)[0]
    for suffix in sorted(BUILDERS, key=len, reverse=True):
        if lowered.endswith(suffix):
            return BUILDERS[suffix]
    return None


def load_source(source: str) -> dict[str, Dataset]:
    """Load ``source`` (path, URL or hub id) into named splits, with ``"train"`` and possibly ``"test"``."""
    try:
        loaded = _load(source)
    except DataSourceError:
        raise
    except Exception as err:  # noqa: BLE001 - any loader failure becomes one clear error naming the source
        cause = _local_file_problem(Path(source).expanduser()) or f"{type(err).__name__}: {err}"
        raise DataSourceError(f"{source}: could not be loaded ({cause})") from err
    return normalize_splits(loaded, source)


def _local_file_problem(path: Path) -> str | None:
    """Why a local data file failed to load, in the user's terms (empty, or the JSON parser's line and column).

    ``datasets`` reports such files as ``DatasetGenerationError``/``StopIteration`` without the cause.
    """
    if not path.is_file():
        return None
    if path.stat().st_size == 0 or not path.read_bytes().strip():
        return "the file is empty"
    if _builder_for(path.name) != "json":
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        return f"not UTF-8 text: {err}"
    try:
        json.loads(text)
        return None  # one JSON document: the loader's own message stands
    except json.JSONDecodeError as whole:
        stripped = text.strip()
        if stripped.startswith("[") or "\n" not in stripped:  # one JSON document, not JSON lines
            return f"invalid JSON at line {whole.lineno}, column {whole.colno}: {whole.msg} (truncated file?)"
    for number, line in enumerate(text.splitlines(), start=1):  # JSON lines: the first line that does not parse
        if not line.strip():
            continue
        try:
            json.loads(line)
        except json.JSONDecodeError as err:
            return f"invalid JSON on line {number}, column {err.colno}: {err.msg} (truncated file?)"
    return None


def _load(source: str) -> Dataset | DatasetDict:
    if "://" in source:
        builder = _builder_for(source)
        if builder is None:
            raise DataSourceError(f"{source}: a URL must end in one of {sorted(BUILDERS)} to pick its reader")
        return load_dataset(builder, data_files=source)
    path = Path(source).expanduser()
    if path.is_dir():
        if (path / "dataset_dict.json").exists() or (path / "state.json").exists():
            return load_from_disk(str(path))
        return load_dataset(str(path))
    if path.is_file():
        builder = _builder_for(path.name)
        if builder is None:
            raise DataSourceError(f"{source}: unsupported file type; supported suffixes: {sorted(BUILDERS)}")
        return load_dataset(builder, data_files=str(path))
    if _builder_for(source) is not None or not _HUB_ID.match(source):
        raise DataSourceError(f"{source}: no such file or folder (and not a URL, a hub dataset id, or {SYNTHETIC!r})")
    try:
        return load_dataset(source)
    except Exception as err:  # noqa: BLE001 - say how the string was understood
        raise DataSourceError(
            f"{source}: not a local file or folder, so it was tried as a Hugging Face Hub dataset id, which could not "
            f"be loaded ({type(err).__name__}: {err})"
        ) from err


def normalize_splits(loaded: Dataset | DatasetDict, source: str) -> dict[str, Dataset]:
    """Map a source's splits onto ``train`` and ``test`` (``validation``, ``eval``... count as test)."""
    if isinstance(loaded, Dataset):
        return {"train": loaded}
    names = list(loaded)
    splits: dict[str, Dataset] = {}
    if "train" in loaded:
        splits["train"] = loaded["train"]
    elif len(names) == 1:
        splits["train"] = loaded[names[0]]
    else:
        raise DataSourceError(f"{source}: has no 'train' split; its splits are {names}")
    for name in TEST_SPLIT_NAMES:
        if name in loaded and loaded[name] is not splits["train"]:
            splits["test"] = loaded[name]
            break
    return splits
