"""BFCL through the ``bfcl-eval`` package: its shipped data, its AST and multi-turn checkers, the paper's handler.

The paper evaluated on BFCL with a custom handler (``benchmarks/BFCL/rlla_qwen.py`` of its code):
the ToolRL system prompt listing the tools (name, description, parameter properties) and ending
with a newline, the dialogue rendered into one user message with a fixed instruction, and the
calls read from the *last* ``<tool_call>`` block (bad lines dropped, a call named ``None``
ignored). This module reproduces that handler and hands the decoded calls to bfcl-eval's own
checkers, so nothing of the scoring is re-implemented. Two protocols exist:

* ``paper`` (default): the handler as released. BFCL's OSS handler calls its prompt builder
  without ``turn_type``, so multi-turn entries get the single-turn instruction too
  (``multi_turn_instruction=True`` gives them the multi-turn one); ``decode_ast`` skips a call
  without ``parameters``, ``decode_execute`` runs it as ``name()``; a name that is not a string
  makes ``decode_execute`` raise, which ends the turn (inference) or drops the step (scoring), as
  BFCL does with any decoder error.
* ``project``: the system prompt byte-identical to the training data (no final newline), the
  multi-turn instruction in multi-turn entries, and only well-formed calls (a string name and a
  ``parameters`` object) decoded.

Summary columns: :func:`paper_columns` computes the paper's table with BFCL v3's leaderboard
formulas; :func:`v4_summary` runs the installed bfcl-eval's own ``eval_runner_helper`` (v4
formulas) on the same per-category results. They differ (v4's Live leaves out the relevance
categories; its Overall weights agentic categories the paper never ran) and are labelled apart.

Importing bfcl-eval's checkers pulls in its model registry, which imports every provider SDK
(OpenAI, Anthropic, Cohere, Mistral, Gemini, Bedrock ...). The checkers read one flag from that
registry (``underscore_to_dot``, false for a prompting model), so :func:`load_bfcl` registers a
minimal ``bfcl_eval.constants.model_config`` holding this project's entry instead; bfcl-eval
itself is installed with ``--no-deps`` (it pins numpy 1.26) and needs nothing beyond what
the training environment already has for these checkers (``filelock``, ``mpmath``).
bfcl-eval writes lock/result folders under ``BFCL_PROJECT_ROOT`` at import time; unless the
user set it, it points at ``~/.cache/toolrl_trl/bfcl`` so nothing is written into site-packages.

The executable categories (``exec_*``, ``rest``) were retired from BFCL before v4, so the paper's
"Non-live Exec" column cannot be reproduced with bfcl-eval, and its non-live overall and Overall
are computed without them; the web-search and memory (agentic) categories came after the paper
and are not part of its table.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import functools
import io
import json
import logging
import os
import re
import sys
import tempfile
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
#: ``paper``: the released handler; ``project``: the training data's prompt, the multi-turn instruction, strict calls.
PROTOCOLS = ("paper", "project")
#: The handler's ``SYS`` template ends with a newline after "(if exists)." (the training data's prompt does not).
PAPER_SYSTEM_PROMPT_END = "\n"

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
    """Give the checkers (and the leaderboard helper) the one registry entry they read, without the provider SDKs."""
    name = "bfcl_eval.constants.model_config"
    entry = types.SimpleNamespace(
        model_name=MODEL_NAME,
        display_name=MODEL_NAME,
        url="",
        org="",
        license="",
        model_handler="",
        input_price=None,
        output_price=None,
        is_fc_model=False,
        underscore_to_dot=False,
    )
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
        from bfcl_eval.eval_checker.multi_turn_eval.multi_turn_utils import is_empty_execute_response
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
        is_empty_output=utils.is_empty_output,
        is_function_calling_format_output=utils.is_function_calling_format_output,
        is_empty_execute_response=is_empty_execute_response,
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


def check_protocol(protocol: str) -> str:
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown --protocol {protocol!r}; valid: {', '.join(PROTOCOLS)}")
    return protocol


def tool_specs(functions: Iterable[dict[str, Any]]) -> list[grammar.ToolSpec]:
    """BFCL function docs as the ToolRL system prompt lists them (parameters = the schema's properties)."""
    return [
        grammar.ToolSpec(f["name"], f.get("description", ""), dict(f.get("parameters", {}).get("properties", {})))
        for f in functions
    ]


def system_prompt(functions: Sequence[dict[str, Any]], protocol: str = "paper") -> str:
    """The system prompt: the handler's ``SYS`` (final newline) for ``paper``, the training data's for ``project``."""
    text = grammar.render_system_prompt(tool_specs(functions))
    return text + PAPER_SYSTEM_PROMPT_END if check_protocol(protocol) == "paper" else text


def render_user_prompt(messages: Sequence[dict[str, Any]], multi_turn: bool) -> str:
    """The dialogue as the paper's handler wrote it into one user message (system messages are dropped).

    ``multi_turn`` picks the handler's ``turn_type="multi_turn"`` instruction for user turns; the
    released path never asked for it (see :func:`uses_multi_turn_instruction`).
    """
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


def uses_multi_turn_instruction(protocol: str, multi_turn_instruction: bool | None) -> bool:
    """Whether multi-turn entries get the multi-turn instruction: ``paper`` no (as released), ``project`` yes."""
    if multi_turn_instruction is not None:
        return multi_turn_instruction
    return check_protocol(protocol) == "project"


def build_messages(
    functions: Sequence[dict[str, Any]],
    history: Sequence[dict[str, Any]],
    multi_turn: bool,
    protocol: str = "paper",
) -> list[dict[str, str]]:
    """One system and one user message; ``multi_turn`` is the instruction choice, not the category."""
    return [
        {"role": "system", "content": system_prompt(functions, protocol)},
        {"role": "user", "content": render_user_prompt(history, multi_turn)},
    ]


def single_turn_messages(entry: dict[str, Any], protocol: str = "paper") -> list[dict[str, str]]:
    """The chat messages of a single-turn entry (one system, one user message)."""
    return build_messages(entry["function"], entry["question"][0], multi_turn=False, protocol=protocol)


class DecodeError(ValueError):
    """The paper's ``decode_execute`` raised (a call whose name is not a string): BFCL treats it as no call."""


def _last_block_lines(text: str) -> list[str]:
    return text.split(grammar.TOOL_CALL_OPEN)[-1].split(grammar.TOOL_CALL_CLOSE)[0].strip().split("\n")


def _paper_decode_ast(text: str) -> list[dict[str, Any]]:
    """``RLLAHandler.decode_ast``: per line ``json.loads``, then ``call["name"]`` / ``["parameters"]``; any error skips."""
    decoded = []
    for line in _last_block_lines(text):
        try:
            call = json.loads(line)
            name = call["name"]
            if name.strip().lower() == "none":
                continue
            decoded.append({name: call["parameters"]})
        except Exception:  # the handler's bare except: any failure drops the line
            continue
    return decoded


def _format_python_call(name: str, arguments: dict[str, Any]) -> str:
    return f"{name}({', '.join(f'{key}={value!r}' for key, value in arguments.items())})"


def _paper_decode_execute(text: str) -> list[str]:
    """``RLLAHandler.decode_execute``: parsed lines, non-objects skipped, ``name()`` without parameters.

    Mirrors ``xlam_json_to_python_tool_calls``: ``name`` defaults to "" and ``parameters`` to
    ``{}``; a name that is not a string (``.strip()`` fails) or parameters that are not a mapping
    (``.items()`` fails) raise out of the decoder, here as :class:`DecodeError`.
    """
    parsed = []
    for line in _last_block_lines(text):
        try:
            parsed.append(json.loads(line))
        except (ValueError, RecursionError):
            continue
    calls = []
    for call in parsed:
        if not isinstance(call, dict):
            continue
        name, arguments = call.get("name", ""), call.get("parameters", {})
        try:
            if name.strip().lower() == "none":
                continue
            calls.append(_format_python_call(name, arguments))
        except (AttributeError, TypeError) as err:
            raise DecodeError(f"cannot turn {_short(call)} into a Python call: {err}") from None
    return calls


def _short(value: Any, limit: int = 120) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _project_calls(text: str) -> list[dict[str, Any]]:
    return [c for c in grammar.parse_tool_calls_lenient(text) if c["name"].strip().lower() != "none"]


def decode_ast(text: Any, protocol: str = "paper") -> list[dict[str, Any]]:
    """Calls in the checker's AST format ``[{name: {param: value}}]`` (the handler's ``decode_ast``)."""
    if not isinstance(text, str) or grammar.TOOL_CALL_OPEN not in text:
        return []
    if check_protocol(protocol) == "paper":
        return _paper_decode_ast(text)
    return [{c["name"]: c["parameters"]} for c in _project_calls(text)]


def decode_execute(text: Any, protocol: str = "paper") -> list[str]:
    """Calls as Python call strings ``name(k=repr(v), ...)`` for the multi-turn executor (the handler's).

    ``paper`` may raise :class:`DecodeError`; callers treat it as BFCL does (no call).
    """
    if not isinstance(text, str) or grammar.TOOL_CALL_OPEN not in text:
        return []
    if check_protocol(protocol) == "paper":
        return _paper_decode_execute(text)
    return [_format_python_call(c["name"], c["parameters"]) for c in _project_calls(text)]


def _execute_calls_or_none(text: Any, protocol: str) -> list[str]:
    """The step's calls, or [] where decoding raised (BFCL: "Failed to decode ... Proceed to next turn")."""
    try:
        calls = decode_execute(text, protocol)
    except DecodeError as err:
        logger.debug("decode_execute failed: %s", err)
        return []
    return [] if load_bfcl().is_empty_execute_response(calls) else calls


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
    the held-out function docs), the model is queried until a step decodes to no call (or its
    decoding fails), calls are executed on the simulated tools and fed back as observations;
    more than ``max_steps`` steps in a turn force-quits the entry (which then fails, as in BFCL).
    """

    def __init__(
        self,
        entry: dict[str, Any],
        max_steps: int = DEFAULT_MAX_STEPS,
        protocol: str = "paper",
        multi_turn_instruction: bool | None = None,
    ):
        self.entry = entry
        self.max_steps = max_steps
        self.protocol = check_protocol(protocol)
        self.multi_turn_instruction = uses_multi_turn_instruction(protocol, multi_turn_instruction)
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
        return build_messages(self.entry["function"], self.history, self.multi_turn_instruction, self.protocol)

    def observe(self, text: str) -> None:
        if self.done:
            raise RuntimeError(f"{self.entry['id']}: observe() after the episode ended")
        self._current.append(text)
        self.history.append({"role": "assistant", "content": text})
        calls = _execute_calls_or_none(text, self.protocol)
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
    protocol: str = "paper",
    multi_turn_instruction: bool | None = None,
) -> list[list[list[str]]]:
    """Run many episodes in lock-step so every model call is one batch; returns turns x steps of raw outputs."""
    episodes = [MultiTurnEpisode(entry, max_steps, protocol, multi_turn_instruction) for entry in entries]
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


def score_item(category: str, entry: dict[str, Any], output: Any, protocol: str = "paper") -> dict[str, Any]:
    """Score one raw output as bfcl-eval's runner does for ``category``; ``entry`` is the un-hinted test entry.

    Relevance: the output "has a call" unless bfcl-eval's ``is_empty_output`` says the decoded
    list is empty or not in call format. AST: a decoded list not in call format fails before the
    checker, as in bfcl-eval's ``_evaluate_single_ast_entry``.
    """
    bfcl = load_bfcl()
    if category in RELEVANCE:
        has_call = not bfcl.is_empty_output(decode_ast(output, protocol))
        valid = not has_call if "irrelevance" in category else has_call
        return {"valid": valid, "error": None if valid else ("made a call" if has_call else "made no call")}
    if category in MULTI_TURN:
        return _score_multi_turn(entry, output, protocol)
    decoded = decode_ast(output, protocol)
    if not bfcl.is_function_calling_format_output(decoded):
        return {"valid": False, "error": "decoded calls are not in the {name: {param: value}} format"}
    language = getattr(bfcl.Language, language_of(category))
    try:
        result = bfcl.ast_checker(
            entry["function"], decoded, ground_truth(category, entry["id"]), language, category, MODEL_NAME
        )
    except Exception as err:  # a checker crash on an odd output is a wrong answer, not a failed run
        return {"valid": False, "error": f"checker error: {type(err).__name__}: {err}"}
    return {"valid": bool(result["valid"]), "error": None if result["valid"] else result.get("error")}


def _score_multi_turn(entry: dict[str, Any], output: Any, protocol: str) -> dict[str, Any]:
    expected = ground_truth(category_of(entry["id"]), entry["id"])
    if not isinstance(output, list) or not all(
        isinstance(turn, list) and all(isinstance(s, str) for s in turn) for turn in output
    ):
        return {"valid": False, "error": "multi-turn output must be a list of turns, each a list of step texts"}
    if len(output) != len(expected):
        return {"valid": False, "error": f"force-terminated: {len(output)} turns for {len(expected)} expected"}
    decoded = [
        [calls for calls in (_execute_calls_or_none(step, protocol) for step in turn) if calls] for turn in output
    ]
    model_name = f"{MODEL_NAME}-score-{uuid.uuid4().hex[:8]}"
    try:
        result = load_bfcl().multi_turn_checker(decoded, expected, entry, category_of(entry["id"]), model_name)
    except Exception as err:
        result = {"valid": False, "error_message": f"checker error: {type(err).__name__}: {err}"}
    finally:
        _release_instances(model_name)
        _release_instances(model_name + "_ground_truth")
    return {"valid": bool(result["valid"]), "error": None if result["valid"] else result.get("error_message")}


def score_predictions(
    predictions: Sequence[dict[str, Any]], category: str | None = None, protocol: str = "paper"
) -> ScoreReport:
    """Score prediction rows (``id``, ``output``) and build the paper's table (and bfcl-eval v4's summary).

    ``category`` restricts (and checks) the scope: a category or group name; by default the
    categories are read from the ids. Ids must be BFCL's; only the ids present are scored (a
    partial run is reported with its ``n``), an id BFCL does not have is an error. ``protocol``
    picks the decoder (``paper``: the released handler's; ``project``: well-formed calls only).
    """
    check_protocol(protocol)
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
            verdict = score_item(cat, copy.deepcopy(entries[row["id"]]), row["output"], protocol)
            correct += verdict["valid"]
            items.append({"id": row["id"], "category": cat, **verdict})
        results[cat] = {"n": len(by_category[cat]), "correct": correct, "of": len(entries)}
    return _report(results, items, category, protocol)


def _acc(results: dict[str, dict[str, Any]], cat: str) -> float | None:
    r = results.get(cat)
    return None if r is None else fraction(r["correct"], r["n"])


def _unweighted(values: Sequence[float | None]) -> float | None:
    return None if any(v is None for v in values) else sum(values) / len(values)


def _weighted(results: dict[str, dict[str, Any]], categories: Sequence[str]) -> float | None:
    parts = [results.get(c) for c in categories]
    if any(p is None for p in parts):
        return None
    return fraction(sum(p["correct"] for p in parts), sum(p["n"] for p in parts))


#: What the paper's Overall / non-live overall leave out, printed wherever they are.
OVERALL_NOTE = (
    "Overall and non-live overall are BFCL v3's formulas without the four executable groups (retired from BFCL)"
)


def paper_columns(results: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    """The paper's BFCL summary columns (BFCL v3's leaderboard formulas) from per-category results.

    None where a part is missing (v3 counted a missing category as 0; this refuses instead).

    * Non-live AST: unweighted mean of simple (itself the mean of Python/Java/JavaScript),
      multiple, parallel, parallel-multiple.
    * Non-live overall: v3's unweighted mean of those four, the four executable groups and
      irrelevance; the executable groups are retired, so here it is the mean of the four AST
      groups and irrelevance (a deviation, see :data:`OVERALL_NOTE`).
    * Live: count-weighted over live simple/multiple/parallel/parallel-multiple, live irrelevance
      and live relevance.
    * Multi-turn: unweighted mean of its four categories.
    * Relevance: live relevance; Irrelevance: mean of non-live and live irrelevance.
    * Overall: unweighted mean of non-live overall, Live and Multi-turn.
    * Non-live Exec: not computable with bfcl-eval (always None).
    """
    simple = _unweighted([_acc(results, c) for c in NON_LIVE_AST[:3]])
    ast_groups = [simple, *(_acc(results, c) for c in NON_LIVE_AST[3:])]
    non_live_ast = _unweighted(ast_groups)
    non_live_overall = _unweighted([*ast_groups, _acc(results, "irrelevance")])
    live = _weighted(results, [*LIVE_AST, "live_irrelevance", "live_relevance"])
    multi_turn = _unweighted([_acc(results, c) for c in MULTI_TURN])
    return {
        "overall": _unweighted([non_live_overall, live, multi_turn]),
        "non_live_ast": non_live_ast,
        "non_live_exec": None,
        "live": live,
        "multi_turn": multi_turn,
        "relevance": _acc(results, "live_relevance"),
        "irrelevance": _unweighted([_acc(results, "irrelevance"), _acc(results, "live_irrelevance")]),
        "non_live_overall": non_live_overall,
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

#: bfcl-eval v4's summary columns (data_overall.csv of its leaderboard helper) this module reports.
V4_COLUMNS = {
    "overall": "Overall Acc",
    "non_live_ast": "Non-Live AST Acc",
    "live": "Live Acc",
    "multi_turn": "Multi Turn Acc",
    "relevance": "Relevance Detection",
    "irrelevance": "Irrelevance Detection",
    "web_search": "Web Search Acc",
    "memory": "Memory Acc",
}
V4_NOTE = (
    "bfcl-eval's own eval_runner_helper (v4 formulas: Live over the four live AST categories only, Overall = "
    "10% non-live + 10% live + 10% irrelevance + 30% multi-turn + 40% agentic); a category not run counts as 0 "
    "over its full size, so partial runs and the agentic categories (never run here) pull it down. Not the paper's."
)


def _percent_cell(cell: str) -> float | None:
    cell = cell.strip()
    if cell.endswith("%"):
        return float(cell[:-1]) / 100
    return None


def v4_summary(results: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    """bfcl-eval v4's own summary of these per-category results, computed by its installed leaderboard helper.

    ``generate_leaderboard_csv`` writes its CSV files into a temporary folder (its prints are
    silenced, its W&B upload is disabled for the call) and ``data_overall.csv`` is read back:
    fractions rounded as bfcl-eval rounds them (2 decimals of a percent), None for its "N/A".
    """
    load_bfcl()
    from bfcl_eval.eval_checker import eval_runner_helper

    table = {MODEL_NAME: {c: {"accuracy": r["correct"] / r["n"], "total_count": r["n"]} for c, r in results.items()}}
    saved_wandb = os.environ.pop("WANDB_BFCL_PROJECT", None)
    try:
        with tempfile.TemporaryDirectory() as folder, contextlib.redirect_stdout(io.StringIO()):
            eval_runner_helper.generate_leaderboard_csv(table, Path(folder))
            with (Path(folder) / "data_overall.csv").open(encoding="utf-8") as handle:
                header, row = list(csv.reader(handle))[:2]
    finally:
        if saved_wandb is not None:
            os.environ["WANDB_BFCL_PROJECT"] = saved_wandb
    cells = dict(zip(header, row, strict=True))
    return {key: _percent_cell(cells[column]) for key, column in V4_COLUMNS.items()}


def _report(
    results: dict[str, dict[str, Any]], items: list[dict[str, Any]], scope: str | None, protocol: str
) -> ScoreReport:
    n = sum(r["n"] for r in results.values())
    correct = sum(r["correct"] for r in results.values())
    columns = paper_columns(results)
    v4 = v4_summary(results) if results else {key: None for key in V4_COLUMNS}
    per_category = {cat: {"n": r["n"], "accuracy": fraction(r["correct"], r["n"])} for cat, r in results.items()}
    partial = {cat: f"{r['n']}/{r['of']}" for cat, r in results.items() if r["n"] != r["of"]}
    scope_name = scope if scope else (next(iter(results)) if len(results) == 1 else "all")
    summary = {
        "benchmark": "bfcl",
        "category": scope_name,
        "n": n,
        "accuracy": fraction(correct, n),
        "protocol": protocol,
        "categories": per_category,
        "paper_columns": columns,
        "paper_columns_note": f"BFCL v3 leaderboard formulas; {OVERALL_NOTE}",
        "bfcl_v4_summary": v4,
        "bfcl_v4_summary_note": V4_NOTE,
        "partial": partial,
        "bfcl_eval_version": BFCL_EVAL_VERSION,
    }
    rows = [[cat, r["n"], format_percent(fraction(r["correct"], r["n"]))] for cat, r in results.items()]
    table = format_table(
        ["category", "n", "accuracy %"], rows, title=f"BFCL per category (bfcl-eval checkers, protocol {protocol})"
    )
    paper = format_table(
        [*PAPER_HEADERS.values(), "Non-live overall"],
        [[format_percent(columns[k]) for k in [*PAPER_HEADERS, "non_live_overall"]]],
        title=(
            f"BFCL, the paper's columns (BFCL v3 formulas, protocol {protocol}; N/A: a category is missing; "
            f"Non-live Exec: retired from BFCL)\n{OVERALL_NOTE}"
        ),
    )
    v4_table = format_table(
        list(V4_COLUMNS.values()),
        [[format_percent(v4[k]) for k in V4_COLUMNS]],
        title=f"BFCL v4 summary by bfcl-eval {BFCL_EVAL_VERSION}'s eval_runner_helper (NOT the paper's columns)\n"
        + V4_NOTE,
    )
    note = f"\npartial categories (scored/total): {partial}" if partial else ""
    return ScoreReport(summary=summary, items=items, table=f"{table}\n\n{paper}\n\n{v4_table}{note}")
