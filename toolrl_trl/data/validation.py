"""Row validation: every row is checked with the grammar before training, so a bad row fails at load time.

A check raises :class:`RowError` (a short ``code`` plus a human reason); the pipeline turns the
first one into a :class:`DataValidationError` naming the source, split and row, or drops and
counts the bad rows when asked to.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from toolrl_trl import grammar
from toolrl_trl.cli import UserError

ROW_KINDS = ("rl", "sft")

#: Why a row can be rejected (the ``code`` of a :class:`RowError`) and what that means.
REASONS: dict[str, str] = {
    "source_row": "the row lacks a field of its source's layout or holds an unreadable value",
    "prompt": "the prompt is not [system message, user message] with non-empty string contents",
    "assistant_turn": "the reference output does not parse as an assistant turn of the grammar",
    "ground_truth_calls": "the reward cannot read the reference tool calls (RL ground truths only)",
    "empty_output": "the reference output has neither a <tool_call> nor a <response> block",
    "native_format": "the row cannot be written in the model's own tool-calling template (output_format native): "
    "e.g. parallel calls for a one-call-per-turn template",
}


class DataValidationError(UserError, ValueError):
    """A row that cannot be trained on; names the source, split, row index and reason."""

    def __init__(self, source: str, split: str, index: int, code: str, reason: str, more: int = 0) -> None:
        self.source, self.split, self.index, self.code, self.reason, self.more = (
            source,
            split,
            index,
            code,
            reason,
            more,
        )
        message = f"{source}: split {split!r}, row {index}: {reason} [{code}]"
        if more:
            message += (
                f" ({more} more invalid row(s) in this split; set skip_invalid_rows=True to drop and count them)"
            )
        super().__init__(message)


class DataSourceError(UserError, ValueError):
    """A source that cannot be found or loaded, or whose columns match no supported layout."""


class RowError(Exception):
    """One row's problem: a ``code`` from :data:`REASONS` and a reason for humans."""

    def __init__(self, code: str, reason: str) -> None:
        if code not in REASONS:
            raise ValueError(f"unknown row error code {code!r}; valid: {sorted(REASONS)}")
        super().__init__(reason)
        self.code, self.reason = code, reason


def check_kind(kind: str) -> str:
    if kind not in ROW_KINDS:
        raise ValueError(f"unknown row kind {kind!r}; valid: {list(ROW_KINDS)}")
    return kind


def validate_prompt(prompt: Any) -> list[dict[str, str]]:
    """The prompt must be exactly a system message then a user message, each with non-empty string content."""
    if not isinstance(prompt, (list, tuple)):
        raise RowError("prompt", f"prompt must be a list of messages, got {type(prompt).__name__}")
    roles = [message.get("role") if isinstance(message, Mapping) else None for message in prompt]
    if roles != ["system", "user"]:
        raise RowError("prompt", f"prompt roles must be ['system', 'user'], got {roles}")
    for position, message in enumerate(prompt):
        content = message.get("content")
        if not isinstance(content, str) or not content.strip():
            kind = type(content).__name__ if not isinstance(content, str) else "an empty string"
            raise RowError("prompt", f"prompt message {position} ({message['role']}) has content of {kind}")
    return [{"role": message["role"], "content": message["content"]} for message in prompt]


def validate_output(text: Any, kind: str) -> grammar.AssistantTurn:
    """Parse a reference output; RL ground truths must also be readable by the reward's call extraction."""
    check_kind(kind)
    if not isinstance(text, str):
        raise RowError("assistant_turn", f"reference output must be a string, got {type(text).__name__}")
    try:
        turn = grammar.parse_assistant_turn(text)
    except grammar.GrammarError as err:
        raise RowError("assistant_turn", f"reference output is not a valid assistant turn: {err}") from None
    if not turn.has_tool_call and not turn.has_response:
        raise RowError("empty_output", "reference output has neither a <tool_call> nor a <response> block")
    if kind == "rl":
        try:
            grammar.parse_ground_truth_calls(text)
        except grammar.GrammarError as err:
            hint = ""
            if grammar.TOOL_CALL_OPEN in turn.think or grammar.TOOL_CALL_CLOSE in turn.think:
                hint = f" (its thoughts quote {grammar.TOOL_CALL_OPEN}, where the reward starts reading calls)"
            raise RowError("ground_truth_calls", f"ground truth unusable for RL{hint}: {err}") from None
    return turn
