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

import ast
import json
import re
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


# ---------------------------------------------------------------------------------------------------------------------
# The paper's prompt, read back (for the native format, which re-renders it with the model's own template)
# ---------------------------------------------------------------------------------------------------------------------

# A tool entry as the paper's data writes it ("1. Name: n\nDescription: d\nParameters: {...}") or as its API-Bank
# files do ("1. n: d\nParameters: {...}", parameters as a Python literal).
_TOOL_ENTRY = re.compile(
    r"(\d+)\. (?:Name: (?P<name>.*?)\nDescription: |(?P<short_name>[^\n:]+): )(?P<description>.*?)"
    r"\nParameters: (?P<parameters>.*?)(?=\n\d+\. (?:Name: |[^\n:]+: )|\Z)",
    re.DOTALL,
)
_HISTORY_TAGS = {
    USER_OPEN: USER_CLOSE,
    OBS_OPEN: OBS_CLOSE,
    THINK_OPEN: THINK_CLOSE,
    TOOL_CALL_OPEN: TOOL_CALL_CLOSE,
    RESPONSE_OPEN: RESPONSE_CLOSE,
}
_HISTORY_RECORD = re.compile(r"^(?=<user>|<obs>|<think>|<tool_call>|<response>)", re.MULTILINE)
# The header as the data writes it (one API-Bank file has "***Dialogue Records History**").
_DIALOGUE_HEADER = re.compile(r"\A\**Dialogue Records History\**")


@dataclass(frozen=True)
class HistoryEntry:
    """One record of the paper's dialogue history: a user request, an earlier assistant turn, or tool feedback."""

    kind: str  # "user" | "assistant" | "observation"
    text: str = ""
    turn: AssistantTurn | None = None


def parse_system_prompt(system_prompt: str) -> list[ToolSpec]:
    """The tools listed in the paper's system prompt (the inverse of :func:`render_system_prompt`).

    Accepts the prompt with trailing whitespace (the paper's Bamboogle prompt ends with a newline);
    anything else around the numbered list raises :class:`GrammarError`, so a row with another
    system prompt is reported rather than converted with tools missing.
    """
    if not isinstance(system_prompt, str) or not system_prompt.startswith(SYSTEM_PROMPT_HEAD):
        raise GrammarError("the system prompt is not the paper's (it does not open with its tool-list header)")
    body = system_prompt[len(SYSTEM_PROMPT_HEAD) :].rstrip()
    if not body.endswith(SYSTEM_PROMPT_TAIL.rstrip()):
        raise GrammarError("the system prompt is not the paper's (it does not end with its output-format notes)")
    listing = body[: len(body) - len(SYSTEM_PROMPT_TAIL.rstrip())].rstrip()
    tools, position = [], 0
    for match in _TOOL_ENTRY.finditer(listing):
        if match.start() != position or int(match.group(1)) != len(tools) + 1:
            raise GrammarError(f"the tool list is not numbered 1..n at {_short(listing[position:])}")
        name = match.group("name") if match.group("name") is not None else match.group("short_name")
        parameters = _literal_object(match.group("parameters").strip())
        if parameters is None:
            raise GrammarError(f"tool {name!r} has parameters that are not a JSON (or Python literal) object")
        tools.append(ToolSpec(name.strip(), match.group("description").strip(), parameters))
        position = match.end() + 1  # the "\n" between entries
    if position < len(listing):
        raise GrammarError(f"unreadable text in the tool list: {_short(listing[position:])}")
    return tools


def _literal_object(text: str) -> dict[str, Any] | None:
    """A JSON object, or a Python dict literal (the paper's API-Bank files write parameters with ``repr``)."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError, RecursionError, MemoryError, TypeError):
            return None
    return value if isinstance(value, dict) else None


def parse_dialogue_history(user_message: str) -> list[HistoryEntry]:
    """The records of the paper's user message (the inverse of :func:`render_user_message`), oldest first.

    A record starts at a line opening with ``<user>``, ``<obs>``, ``<think>``, ``<tool_call>`` or
    ``<response>`` and ends with its closing tag. Consecutive ``<think>``/``<tool_call>``/``<response>``
    records form one assistant turn until a tag repeats or a user or tool record comes (the paper's
    API-Bank files record turns without thoughts, and several replies in a row). Raises
    :class:`GrammarError` on anything else.
    """
    header = _DIALOGUE_HEADER.match(user_message) if isinstance(user_message, str) else None
    if header is None:
        raise GrammarError(f"the user message does not open with {DIALOGUE_HEADER!r}")
    entries: list[HistoryEntry] = []
    turn: dict[str, Any] = {}

    def flush() -> None:
        if turn:
            calls = turn.get("calls")
            entries.append(
                HistoryEntry("assistant", turn=AssistantTurn(turn.get("think", ""), calls, turn.get("response")))
            )
            turn.clear()

    for chunk in _HISTORY_RECORD.split(user_message[header.end() :].strip()):
        chunk = chunk.strip()
        if not chunk:
            continue
        tag = next((t for t in _HISTORY_TAGS if chunk.startswith(t)), None)
        if tag is None:
            raise GrammarError(f"unreadable text in the dialogue history: {_short(chunk)}")
        close = _HISTORY_TAGS[tag]
        if tag in (USER_OPEN, OBS_OPEN) and close in chunk:
            # BFCL's renderer writes an earlier assistant reply as bare text after the user record.
            text, reply = (part.strip() for part in chunk[len(tag) :].rsplit(close, 1))
        else:
            text, reply = _closed(chunk, tag, close), ""
        if tag in (USER_OPEN, OBS_OPEN):
            flush()
            entries.append(HistoryEntry("user" if tag == USER_OPEN else "observation", text))
            if reply:
                turn["response"] = reply
        else:
            key = {THINK_OPEN: "think", TOOL_CALL_OPEN: "calls", RESPONSE_OPEN: "response"}[tag]
            if key in turn or (key == "think" and turn):
                flush()
            turn[key] = tuple(_parse_call_lines(text)) if key == "calls" else text
    flush()
    if not entries:
        raise GrammarError("the dialogue history is empty")
    return entries


def _closed(chunk: str, open_tag: str, close_tag: str) -> str:
    if not chunk.endswith(close_tag):
        raise GrammarError(f"a history record opening with {open_tag} does not end with {close_tag}: {_short(chunk)}")
    return chunk[len(open_tag) : -len(close_tag)].strip()


# ---------------------------------------------------------------------------------------------------------------------
# The native format: the model's own chat template with tools= (what OpenAI-compatible servers parse)
# ---------------------------------------------------------------------------------------------------------------------

#: What ``output_format`` may say: the paper's grammar, or the model's own tool-calling template.
OUTPUT_FORMATS = ("toolrl", "native")


@dataclass(frozen=True)
class NativeFamily:
    """How one chat-template family writes an assistant turn with tool calls (and what it cannot write)."""

    name: str
    #: TRL's names of the chat templates that belong to the family (``trl.chat_template_utils.<name>_chat_template``).
    templates: tuple[str, ...]
    #: Whether the thought rides in the turn's text as ``<think> ... </think>`` (Qwen2.5 writes text before its calls;
    #: Llama 3.x writes a call turn as a bare JSON object, with no room for a thought).
    thinks: bool
    #: Whether one turn may hold several calls (Llama 3.x's template raises on more than one).
    parallel_calls: bool
    #: The key its JSON calls hold the arguments under.
    arguments_key: str
    #: The system message of native prompts (this project's wording: the paper's prompt is about its own grammar).
    system_prompt: str
    #: Keyword arguments of ``apply_chat_template`` that make its output deterministic.
    template_kwargs: dict[str, Any] = field(default_factory=dict)
    #: End-of-turn markers a decoded completion may still carry.
    end_markers: tuple[str, ...] = ()


NATIVE_FAMILIES: dict[str, NativeFamily] = {
    "qwen2_5": NativeFamily(
        name="qwen2_5",
        templates=("qwen2_5", "qwen2_5_training"),
        thinks=True,
        parallel_calls=True,
        arguments_key="arguments",
        system_prompt=(
            "You are a helpful assistant. First think about the request inside <think> </think>, then call the "
            "tools it needs, answer the user, or both."
        ),
        end_markers=("<|im_end|>", "<|endoftext|>"),
    ),
    "llama3": NativeFamily(
        name="llama3",
        templates=("llama3_1", "llama3_2"),
        thinks=False,
        parallel_calls=False,
        arguments_key="parameters",
        system_prompt="You are a helpful assistant. Call a tool when the request needs one; otherwise answer.",
        # The template stamps today's date into every prompt unless told one: fix it (its own fallback date).
        template_kwargs={"date_string": "26 Jul 2024"},
        end_markers=("<|eot_id|>", "<|eom_id|>", "<|end_of_text|>"),
    ),
}


def native_family(tokenizer: Any) -> NativeFamily:
    """The :class:`NativeFamily` of a tokenizer, recognised by its chat template (as TRL recognises templates).

    Raises :class:`GrammarError` naming the supported families for any other template: the native
    format's rewards must parse exactly what that template writes, so guessing would train on noise.
    """
    from trl import chat_template_utils

    template = getattr(tokenizer, "chat_template", None)
    for family in NATIVE_FAMILIES.values():
        for name in family.templates:
            if template is not None and template == getattr(chat_template_utils, f"{name}_chat_template", None):
                return family
    known = ", ".join(f"{f.name} ({'/'.join(f.templates)})" for f in NATIVE_FAMILIES.values())
    raise GrammarError(
        f"output_format native needs a chat template it knows how to parse; {type(tokenizer).__name__}'s is none of "
        f"TRL's templates for: {known}"
    )


@dataclass(frozen=True)
class NativeTurn:
    """A native completion, parsed: the thought (None without one), the text, and the calls ``{"name", "arguments"}``."""

    think: str | None
    content: str
    tool_calls: tuple[dict[str, Any], ...]

    def toolrl_calls(self) -> list[dict[str, Any]]:
        """The calls in the paper's shape (``parameters``), which the correctness reward and evaluation compare."""
        return [{"name": call["name"], "parameters": call["arguments"]} for call in self.tool_calls]

    def as_toolrl(self) -> str:
        """The same turn in the paper's grammar, so evaluation code written for it scores native outputs unchanged."""
        return render_assistant_turn(self.think or "", self.toolrl_calls() or None, self.content or None)


def _native_call(value: Any, family: NativeFamily) -> dict[str, Any]:
    if not isinstance(value, dict) or not isinstance(value.get("name"), str) or not value["name"]:
        raise GrammarError(f"a native tool call must be a JSON object with a non-empty 'name': {_short(value)}")
    arguments = value.get(family.arguments_key)
    if not isinstance(arguments, dict):
        raise GrammarError(f"tool call {value['name']!r} lacks a JSON object under {family.arguments_key!r}")
    return {"name": value["name"], "arguments": arguments}


def _json_value(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as err:
        reason = err.msg if isinstance(err, json.JSONDecodeError) else type(err).__name__
        raise GrammarError(f"a tool call is not valid JSON ({reason}): {_short(text)}") from None


def _strip_end(text: str, family: NativeFamily) -> str:
    text = text.strip()
    for marker in family.end_markers:
        if text.endswith(marker):
            return text[: -len(marker)].rstrip()
    return text


def parse_native_turn(text: str, family: NativeFamily) -> NativeTurn:
    """Parse a completion written in ``family``'s template; raises :class:`GrammarError` where a server's parser fails.

    Qwen2.5: an optional leading ``<think> ... </think>``, text, then ``<tool_call>`` JSON ``</tool_call>`` blocks
    and nothing after them (what TRL's and vLLM's hermes parsers read). Llama 3.x: one JSON object
    ``{"name", "parameters"}`` as the whole turn, or plain text. Arguments keep their JSON types: nothing is
    retyped from a schema, so ``"7"`` and ``7`` stay different, as the value reward needs.
    """
    if not isinstance(text, str):
        raise GrammarError(f"expected a string, got {type(text).__name__}")
    text = _strip_end(text, family)
    if RESPONSE_OPEN in text or RESPONSE_CLOSE in text:
        raise GrammarError(f"the paper's {RESPONSE_OPEN} tag in a native turn (its text needs no tag)")
    if not family.thinks:
        if text.startswith("{"):
            return NativeTurn(None, "", (_native_call(_json_value(text), family),))
        return NativeTurn(None, text, ())
    think = None
    if text.startswith(THINK_OPEN):
        if THINK_CLOSE not in text:
            raise GrammarError(f"{THINK_OPEN} is never closed with {THINK_CLOSE}")
        think, text = text[len(THINK_OPEN) :].split(THINK_CLOSE, 1)
        think, text = think.strip(), text.strip()
    start = text.find(TOOL_CALL_OPEN)
    content, rest = (text, "") if start < 0 else (text[:start].strip(), text[start:])
    for tag in (THINK_OPEN, THINK_CLOSE, TOOL_CALL_CLOSE):
        if tag in content:
            raise GrammarError(f"stray {tag} in the text of the turn")
    calls = []
    while rest:
        if not rest.startswith(TOOL_CALL_OPEN):
            raise GrammarError(f"text after the tool calls: {_short(rest)}")
        end = rest.find(TOOL_CALL_CLOSE)
        if end < 0:
            raise GrammarError(f"{TOOL_CALL_OPEN} is never closed with {TOOL_CALL_CLOSE}")
        calls.append(_native_call(_json_value(rest[len(TOOL_CALL_OPEN) : end].strip()), family))
        rest = rest[end + len(TOOL_CALL_CLOSE) :].lstrip()
    return NativeTurn(think, content, tuple(calls))


def parse_native_turn_lenient(text: Any, family: NativeFamily) -> NativeTurn:
    """What evaluation reads from a native output: every call block that parses, the rest as text. Never raises."""
    if not isinstance(text, str):
        return NativeTurn(None, "", ())
    try:
        return parse_native_turn(text, family)
    except GrammarError:
        pass
    text = _strip_end(text, family)
    if not family.thinks:
        calls, rest = [], []
        for line in text.split("\n"):
            try:
                calls.append(_native_call(_json_value(line.strip().rstrip(";")), family))
            except GrammarError:
                rest.append(line)
        return NativeTurn(None, "\n".join(rest).strip(), tuple(calls))
    think = None
    if text.startswith(THINK_OPEN) and THINK_CLOSE in text:
        think, text = (part.strip() for part in text[len(THINK_OPEN) :].split(THINK_CLOSE, 1))
    calls, pieces = [], []
    for index, piece in enumerate(re.split(f"{re.escape(TOOL_CALL_OPEN)}|{re.escape(TOOL_CALL_CLOSE)}", text)):
        if index % 2 == 0:
            pieces.append(piece.strip())
            continue
        try:
            calls.append(_native_call(_json_value(piece.strip()), family))
        except GrammarError:
            continue
    return NativeTurn(think, " ".join(p for p in pieces if p), tuple(calls))


def render_native_turn(turn: NativeTurn, family: NativeFamily) -> str:
    """A parsed turn written back as ``family``'s template writes it (``parse_native_turn`` reads it back).

    This is how a server's structured reply (``content``, ``tool_calls``, ``reasoning_content``) becomes
    the text the rewards and evaluation read. A Llama 3.x reply with several calls gets one JSON object per
    line, which only the lenient reader accepts (its template writes one call per turn).
    """
    arguments_key = family.arguments_key
    blocks = [
        json.dumps({"name": c["name"], arguments_key: c["arguments"]}, ensure_ascii=False) for c in turn.tool_calls
    ]
    if not family.thinks:
        return "\n".join(blocks) if blocks else turn.content
    parts = [f"{THINK_OPEN} {turn.think} {THINK_CLOSE}"] if turn.think is not None else []
    if turn.content:
        parts.append(turn.content)
    parts.extend(f"{TOOL_CALL_OPEN}\n{block}\n{TOOL_CALL_CLOSE}" for block in blocks)
    return "\n".join(parts)


#: The paper's parameter type names (Python-flavoured: "str", "int, optional", "List[int]") as JSON Schema types.
_JSON_TYPES = {
    "str": "string",
    "string": "string",
    "int": "integer",
    "integer": "integer",
    "float": "number",
    "number": "number",
    "double": "number",
    "bool": "boolean",
    "boolean": "boolean",
    "list": "array",
    "array": "array",
    "tuple": "array",
    "set": "array",
    "dict": "object",
    "object": "object",
    "null": "null",
    "none": "null",
}


def json_schema_type(type_name: Any) -> Any:
    """A JSON Schema ``type`` for one of the paper's type names; None when there is no faithful one (``Callable``)."""
    if isinstance(type_name, list):
        mapped = [json_schema_type(item) for item in type_name]
        return None if None in mapped else mapped
    if not isinstance(type_name, str):
        return None
    base = type_name.split(",")[0].strip()
    return _JSON_TYPES.get(base.split("[")[0].strip().lower())


def tool_json_schema(tool: ToolSpec) -> dict[str, Any]:
    """A tool as the OpenAI-style function schema chat templates take (``tools=``).

    The paper lists parameters as ``{name: {"description", "type", "default"?}}``. Types map with
    :func:`json_schema_type` (an unmappable type is left out and named in the description). A
    parameter is required unless its type says ``optional``, it carries a non-empty ``default``
    (the paper's data writes ``""`` for "no default"), or it says ``"required": false``. A list that
    already is a JSON Schema object (``{"type": "object", "properties": ...}``) is passed through.
    """
    parameters = dict(tool.parameters)
    if parameters.get("type") == "object" and isinstance(parameters.get("properties"), dict):
        schema = parameters
    else:
        properties, required = {}, []
        for name, spec in parameters.items():
            spec = spec if isinstance(spec, dict) else {"description": str(spec)}
            prop: dict[str, Any] = {}
            mapped = json_schema_type(spec.get("type"))
            description = str(spec.get("description") or "")
            if mapped is not None:
                prop["type"] = mapped
            elif spec.get("type") is not None:
                description = f"{description} (type: {spec['type']})".strip()
            if description:
                prop["description"] = description
            for key in ("enum", "items", "properties"):
                if key in spec:
                    prop[key] = spec[key]
            if spec.get("default") not in (None, ""):
                prop["default"] = spec["default"]
            optional = "optional" in str(spec.get("type", "")).lower() or spec.get("required") is False
            if not optional and spec.get("default", "") == "":
                required.append(name)
            properties[name] = prop
        schema = {"type": "object", "properties": properties, "required": required}
    return {"type": "function", "function": {"name": tool.name, "description": tool.description, "parameters": schema}}


def native_assistant_message(turn: AssistantTurn, family: NativeFamily) -> dict[str, Any]:
    """A paper-grammar turn as a chat message for ``family``'s template: thought in the text, calls as ``tool_calls``.

    Raises :class:`GrammarError` for what the family's template cannot write (Llama 3.x: several calls, or
    text next to a call), so such rows are reported, never silently cut down.
    """
    calls = list(turn.tool_calls or ())
    response = turn.response or ""
    if not family.parallel_calls and len(calls) > 1:
        raise GrammarError(f"{len(calls)} parallel calls: the {family.name} template writes one call per turn")
    if not family.thinks and calls and response:
        raise GrammarError(f"a call and text in one turn: the {family.name} template writes a call turn as JSON only")
    content = response
    if family.thinks and turn.think:  # a turn recorded without a thought (API-Bank's history) gets none
        content = f"{THINK_OPEN} {turn.think} {THINK_CLOSE}" + (f"\n{response}" if response else "")
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if calls:
        message["tool_calls"] = [
            {"type": "function", "function": {"name": c["name"], "arguments": dict(c["parameters"])}} for c in calls
        ]
    return message


def _observation_messages(text: str) -> list[dict[str, Any]]:
    """Tool feedback as ``tool`` messages: one per result of the paper's ``[{"name", "results"}]`` list, else the text."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        value = None
    if isinstance(value, list) and value and all(isinstance(v, dict) and "results" in v for v in value):
        return [
            {"role": "tool", "name": str(v.get("name", "")), "content": json.dumps(v["results"], ensure_ascii=False)}
            for v in value
        ]
    return [{"role": "tool", "content": text}]


def native_chat(prompt: Sequence[Mapping[str, Any]], family: NativeFamily) -> tuple[list[dict[str, Any]], list[dict]]:
    """A paper-format prompt (``[system, user]``) as native ``(messages, tools)`` for ``apply_chat_template``.

    The tool list becomes ``tools``; the dialogue history becomes user, assistant (with ``tool_calls``)
    and tool messages; the system message is the family's own. Raises :class:`GrammarError`.
    """
    if len(prompt) != 2 or prompt[0].get("role") != "system" or prompt[1].get("role") != "user":
        raise GrammarError("a paper-format prompt is [system, user]")
    tools = [tool_json_schema(tool) for tool in parse_system_prompt(prompt[0]["content"])]
    messages: list[dict[str, Any]] = [{"role": "system", "content": family.system_prompt}]
    for entry in parse_dialogue_history(prompt[1]["content"]):
        if entry.kind == "user":
            messages.append({"role": "user", "content": entry.text})
        elif entry.kind == "observation":
            messages.extend(_observation_messages(entry.text))
        else:
            messages.append(native_assistant_message(entry.turn, family))
    if messages[-1]["role"] == "assistant":
        raise GrammarError("the dialogue history ends with an assistant turn: there is nothing to answer")
    return messages, tools
