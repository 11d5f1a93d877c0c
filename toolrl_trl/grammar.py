"""The ToolRL output grammar and prompt format: the one place that parses and renders them.

An assistant turn is ``<think> ... </think>`` followed by an optional ``<tool_call>`` block
(one JSON object ``{"name": str, "parameters": {...}}`` per line) and/or a
``<response> ... </response>`` block. Rewards, data validation and evaluation all go through
this module so that "what counts as a tool call" has exactly one definition.

Two extraction flavours exist on purpose:

* :func:`extract_tool_call_block` mirrors the paper's reward code byte for byte (the text
  between the first ``<tool_call>`` and the next ``</tool_call>``), so rewards match it;
* :func:`parse_tool_calls_lenient` mirrors the paper's BFCL handler (the last block,
  unparseable lines dropped), which evaluation uses.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
TOOL_CALL_OPEN, TOOL_CALL_CLOSE = "<tool_call>", "</tool_call>"
RESPONSE_OPEN, RESPONSE_CLOSE = "<response>", "</response>"
OBS_OPEN, OBS_CLOSE = "<obs>", "</obs>"
USER_OPEN, USER_CLOSE = "<user>", "</user>"

#: The system prompt of the paper's data, split around the numbered tool list.
SYSTEM_PROMPT_HEAD = (
    "You are a helpful multi-turn dialogue assistant capable of leveraging tool calls to solve user tasks and "
    "provide structured chat responses.\n\n**Available Tools**\nIn your response, you can use the following tools:\n"
)
SYSTEM_PROMPT_TAIL = (
    "\n\n**Steps for Each Turn**\n1. **Think:** Recall relevant context and analyze the current user goal.\n"
    "2. **Decide on Tool Usage:** If a tool is needed, specify the tool and its parameters.\n"
    "3. **Respond Appropriately:** If a response is needed, generate one while maintaining consistency across user "
    "queries.\n\n**Output Format**\n```plaintext\n<think> Your thoughts and reasoning </think>\n<tool_call>\n"
    '{"name": "Tool name", "parameters": {"Parameter name": "Parameter content", "... ...": "... ..."}}\n'
    '{"name": "... ...", "parameters": {"... ...": "... ...", "... ...": "... ..."}}\n...\n</tool_call>\n'
    "<response> AI's final response </response>\n```\n\n**Important Notes**\n1. You must always include the "
    "`<think>` field to outline your reasoning. Provide at least one of `<tool_call>` or `<response>`. Decide whether "
    "to use `<tool_call>` (possibly multiple times), `<response>`, or both.\n2. You can invoke multiple tool calls "
    'simultaneously in the `<tool_call>` fields. Each tool call should be a JSON object with a "name" field and an '
    '"parameters" field containing a dictionary of parameters. If no parameters are needed, leave the "parameters" '
    "field an empty dictionary.\n3. Refer to the previous dialogue records in the history, including the user's "
    "queries, previous `<tool_call>`, `<response>`, and any tool feedback noted as `<obs>` (if exists)."
)
DIALOGUE_HEADER = "**Dialogue Records History**"


class GrammarError(ValueError):
    """Text that does not follow the ToolRL grammar where it must (ground truths, data rows)."""


@dataclass(frozen=True)
class ToolSpec:
    """A tool as the system prompt lists it: name, description and a parameter schema."""

    name: str
    description: str
    parameters: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AssistantTurn:
    """A parsed, valid assistant turn. ``tool_calls`` is None when there is no ``<tool_call>`` block."""

    think: str
    tool_calls: tuple[dict[str, Any], ...] | None
    response: str | None

    @property
    def has_tool_call(self) -> bool:
        return self.tool_calls is not None

    @property
    def has_response(self) -> bool:
        return self.response is not None


# ---------------------------------------------------------------------------------------------------------------------
# Extraction (reward semantics)
# ---------------------------------------------------------------------------------------------------------------------


def extract_tool_call_block(text: str) -> str | None:
    """The stripped text between the first ``<tool_call>`` and the next ``</tool_call>``.

    None when either tag is absent anywhere in ``text``. This is the paper's reward code
    (``text.split("<tool_call>")[1].split("</tool_call>")[0].strip()``), kept literal so
    that scores match it even on odd inputs (a closing tag before the opening one, say).
    """
    if TOOL_CALL_OPEN not in text or TOOL_CALL_CLOSE not in text:
        return None
    return text.split(TOOL_CALL_OPEN, 2)[1].split(TOOL_CALL_CLOSE, 1)[0].strip()


def parse_tool_call_lines(block: str) -> list[Any]:
    """``json.loads`` of each ``\\n``-separated line; raises ``ValueError`` on the first bad line.

    The items are returned as parsed (not checked to be call objects): reward scoring decides
    what a malformed call is worth, data validation rejects it (see :func:`validate_tool_call`).
    """
    return [json.loads(line) for line in block.split("\n")]


def validate_tool_call(call: Any) -> dict[str, Any]:
    """Check one parsed call has the ``{"name": str, "parameters": dict}`` shape; return it."""
    if not isinstance(call, dict):
        raise GrammarError(f"a tool call must be a JSON object, got {type(call).__name__}: {_short(call)}")
    if "name" not in call:
        raise GrammarError(f"a tool call lacks the 'name' key: {_short(call)}")
    if not isinstance(call["name"], str) or not call["name"]:
        raise GrammarError(f"a tool call's 'name' must be a non-empty string: {_short(call)}")
    if "parameters" not in call:
        raise GrammarError(f"tool call {call['name']!r} lacks the 'parameters' key")
    if not isinstance(call["parameters"], dict):
        raise GrammarError(
            f"tool call {call['name']!r} has 'parameters' of type {type(call['parameters']).__name__}, expected an object"
        )
    return call


def parse_assistant_turn(text: str) -> AssistantTurn:
    """Parse and validate an assistant turn (an SFT target, a rendered answer). Raises :class:`GrammarError`.

    The turn must open with a ``<think>`` block; after its first ``</think>`` come at most one
    ``<tool_call>`` block (every line a valid call object) and at most one ``<response>`` block.
    Tags quoted inside the thoughts are allowed (the paper's SFT data has such thoughts).
    """
    if not isinstance(text, str):
        raise GrammarError(f"expected a string, got {type(text).__name__}")
    stripped = text.strip()
    if not stripped.startswith(THINK_OPEN):
        raise GrammarError(f"must start with {THINK_OPEN}: {_short(stripped)}")
    if THINK_CLOSE not in stripped:
        raise GrammarError(f"{THINK_OPEN} is never closed with {THINK_CLOSE}")
    think, rest = stripped[len(THINK_OPEN) :].split(THINK_CLOSE, 1)
    for tag in (TOOL_CALL_OPEN, TOOL_CALL_CLOSE, RESPONSE_OPEN, RESPONSE_CLOSE):
        if rest.count(tag) > 1:
            raise GrammarError(f"{tag} appears {rest.count(tag)} times after {THINK_CLOSE}, at most once is allowed")
    tool_calls = None
    if TOOL_CALL_OPEN in rest or TOOL_CALL_CLOSE in rest:
        tool_calls = tuple(_parse_block(rest, TOOL_CALL_OPEN, TOOL_CALL_CLOSE))
    response = None
    if RESPONSE_OPEN in rest or RESPONSE_CLOSE in rest:
        response = _between(rest, RESPONSE_OPEN, RESPONSE_CLOSE).strip()
    return AssistantTurn(think=think.strip(), tool_calls=tool_calls, response=response)


def parse_ground_truth_calls(ground_truth: str) -> list[dict[str, Any]] | None:
    """The calls a ground truth asks for, read exactly as the reward reads them; None without ``<tool_call>``.

    The reward extracts from the *first* ``<tool_call>`` anywhere in the text, so a ground truth
    whose thoughts quote the tag is unusable for RL: this raises :class:`GrammarError` for it,
    and for any line that is not a valid call, so bad rows are caught when data is loaded.
    """
    if not isinstance(ground_truth, str):
        raise GrammarError(f"a ground truth must be a string, got {type(ground_truth).__name__}")
    if TOOL_CALL_OPEN not in ground_truth:
        return None
    block = extract_tool_call_block(ground_truth)
    if block is None:
        raise GrammarError(f"{TOOL_CALL_OPEN} is never closed with {TOOL_CALL_CLOSE}")
    return _parse_call_lines(block)


def _between(text: str, open_tag: str, close_tag: str) -> str:
    if open_tag not in text or close_tag not in text:
        raise GrammarError(f"unbalanced {open_tag} / {close_tag}")
    start, end = text.index(open_tag), text.index(close_tag)
    if end < start:
        raise GrammarError(f"{close_tag} comes before {open_tag}")
    return text[start + len(open_tag) : end]


def _parse_block(text: str, open_tag: str, close_tag: str) -> list[dict[str, Any]]:
    return _parse_call_lines(_between(text, open_tag, close_tag).strip())


def _parse_call_lines(block: str) -> list[dict[str, Any]]:
    calls = []
    for number, line in enumerate(block.split("\n"), start=1):
        try:
            parsed = json.loads(line)
        except (ValueError, RecursionError) as err:
            reason = err.msg if isinstance(err, json.JSONDecodeError) else type(err).__name__
            raise GrammarError(f"tool-call line {number} is not valid JSON ({reason}): {_short(line)}") from None
        calls.append(validate_tool_call(parsed))
    return calls


def parse_tool_calls_lenient(text: str) -> list[dict[str, Any]]:
    """Calls of the *last* ``<tool_call>`` block, dropping lines that are not valid call objects.

    This is how the paper's BFCL handler read model outputs: no block (or a response-only
    answer) means no call. Never raises.
    """
    if not isinstance(text, str) or TOOL_CALL_OPEN not in text:
        return []
    block = text.rsplit(TOOL_CALL_OPEN, 1)[1].split(TOOL_CALL_CLOSE, 1)[0].strip()
    calls = []
    for line in block.split("\n"):
        try:
            calls.append(validate_tool_call(json.loads(line)))
        except (ValueError, RecursionError):
            continue
    return calls


# ---------------------------------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------------------------------


def render_tool_call(call: Mapping[str, Any]) -> str:
    """One call as the single JSON line the grammar expects (non-ASCII kept, as the paper's data)."""
    return json.dumps({"name": call["name"], "parameters": dict(call["parameters"])}, ensure_ascii=False)


def render_assistant_turn(
    think: str, tool_calls: Sequence[Mapping[str, Any]] | None = None, response: str | None = None
) -> str:
    """Render a turn in the exact layout the format reward expects (the paper's data layout)."""
    parts = [f"{THINK_OPEN} {think.strip()} {THINK_CLOSE}"]
    if tool_calls:
        lines = "\n".join(render_tool_call(call) for call in tool_calls)
        parts.append(f"{TOOL_CALL_OPEN}\n{lines}\n{TOOL_CALL_CLOSE}")
    if response is not None:
        parts.append(f"{RESPONSE_OPEN} {response.strip()} {RESPONSE_CLOSE}")
    return "\n".join(parts)


def render_tool_list(tools: Iterable[ToolSpec]) -> str:
    """The numbered ``Name/Description/Parameters`` list of the paper's system prompt."""
    entries = []
    for number, tool in enumerate(tools, start=1):
        params = json.dumps(dict(tool.parameters))  # ASCII-escaped, as in the paper's data
        entries.append(f"{number}. Name: {tool.name}\nDescription: {tool.description}\nParameters: {params}")
    return "\n".join(entries)


def render_system_prompt(tools: Iterable[ToolSpec]) -> str:
    """The paper's system prompt listing ``tools``; byte-identical to its data for the same tool list."""
    return SYSTEM_PROMPT_HEAD + render_tool_list(tools) + SYSTEM_PROMPT_TAIL


def render_user_message(history: str | Sequence[str]) -> str:
    """The user message: the dialogue history under its header.

    ``history`` is either one user request or the already-rendered history entries
    (``<user> ... </user>``, earlier assistant turns, ``<obs> ... </obs>``), joined by blank lines.
    """
    if isinstance(history, str):
        return f"{DIALOGUE_HEADER}\n{USER_OPEN} {history.strip()} {USER_CLOSE}"
    return DIALOGUE_HEADER + "\n" + "\n\n".join(history)


def render_observation(results: Any) -> str:
    """A tool result as the ``<obs>`` entry of a dialogue history."""
    return f"{OBS_OPEN} {json.dumps(results, ensure_ascii=False)} {OBS_CLOSE}"


def _short(value: Any, limit: int = 120) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
