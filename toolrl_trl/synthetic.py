"""A seeded generator of tool-calling tasks in the ToolRL grammar: the project's embedded default data.

It needs no network and no files, so the demo, the tests and a first training run work
anywhere. Tasks look like the paper's data (the same system prompt, dialogue history and
output format, all rendered by :mod:`toolrl_trl.grammar`) and cover what the paper's mix
covers: one call, several parallel calls, no tool at all (a ``<response>``), a call plus a
response, and dialogues with earlier turns and ``<obs>`` tool results.

The tools are data, kept apart in :mod:`toolrl_trl.tool_catalogue` (one record per tool: its
schema, requests, result fields and answer sentence); this module holds no per-tool code, only
the generic ways of turning any tool into tasks. To add or change a tool, edit that module.

Parameters are typed (strings, integers, floats, booleans, enums, lists, optional ones with
defaults) and calls carry typed JSON values, because the correctness reward compares values
with ``==``. Some tools can be held out of training entirely (never listed in a training
prompt), so a test split made of tasks about them measures generalisation to unseen tools.

Determinism: every random choice comes from :class:`random.Random` seeded with a string
(stable across processes and ``PYTHONHASHSEED``), and nothing iterates over a set, so the
same seed gives the same data byte for byte. ``tests/test_synthetic.py`` pins digests of the
output: a change here that moves even one random draw changes every later task, so keep the
order of draws when editing the generator.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from toolrl_trl import grammar
from toolrl_trl.tool_catalogue import TOOLS, ParamSpec, SyntheticTool

TASK_KINDS = ("single", "parallel", "no_tool", "call_and_response", "multi_turn")
DEFAULT_TASK_WEIGHTS: dict[str, float] = {
    "single": 3.0,
    "parallel": 2.0,
    "no_tool": 1.5,
    "call_and_response": 1.0,
    "multi_turn": 2.5,
}
#: Probability that a request mentions one of the tool's optional parameters.
OPTIONAL_MENTION_RATE = 0.35

# ---------------------------------------------------------------------------------------------------------------------
# Tool catalogue (the records live in toolrl_trl/tool_catalogue.py)
# ---------------------------------------------------------------------------------------------------------------------

#: Every tool the generator knows, in the fixed order of :data:`toolrl_trl.tool_catalogue.TOOLS`.
CATALOG: tuple[SyntheticTool, ...] = TOOLS
_TOOLS_BY_NAME: dict[str, SyntheticTool] = {tool.name: tool for tool in CATALOG}


def tool_catalog() -> tuple[SyntheticTool, ...]:
    """All tools the generator knows, in a fixed order."""
    return CATALOG


def get_tool(name: str) -> SyntheticTool:
    """The catalogue record of ``name``; an unknown name lists the valid ones."""
    if name not in _TOOLS_BY_NAME:
        raise KeyError(f"unknown synthetic tool {name!r}; valid: {sorted(_TOOLS_BY_NAME)}")
    return _TOOLS_BY_NAME[name]


def select_held_out_tools(held_out: float, seed: int) -> tuple[str, ...]:
    """Names of the tools kept out of training: ``held_out`` >= 1 is a count, 0 < ``held_out`` < 1 a fraction.

    The choice depends only on ``held_out`` and ``seed``, so train and test agree on it. At
    least two tools always stay in training (a task lists two tools or more).
    """
    if held_out < 0:
        raise ValueError(f"held-out tools must be >= 0, got {held_out}")
    if held_out == 0:
        return ()
    if held_out < 1:
        count = max(1, round(held_out * len(CATALOG)))
    else:
        if held_out != int(held_out):
            raise ValueError(f"a held-out count must be a whole number (or a fraction below 1), got {held_out}")
        count = int(held_out)
    if count > len(CATALOG) - 2:
        raise ValueError(f"cannot hold out {count} of {len(CATALOG)} tools: at least 2 must stay in training")
    names = [tool.name for tool in CATALOG]
    return tuple(sorted(random.Random(f"toolrl-synthetic:{seed}:held-out").sample(names, count)))


def parse_task_weights(spec: str | Mapping[str, float] | None) -> dict[str, float]:
    """Task-kind weights from a mapping or a ``"single=3,parallel=2"`` string; unnamed kinds get weight 0."""
    if spec is None or spec == "":
        return dict(DEFAULT_TASK_WEIGHTS)
    if isinstance(spec, str):
        items: dict[str, float] = {}
        for part in spec.split(","):
            if "=" not in part:
                raise ValueError(f"bad task weight {part.strip()!r} in {spec!r}: expected kind=weight")
            key, value = part.split("=", 1)
            try:
                items[key.strip()] = float(value)
            except ValueError:
                raise ValueError(
                    f"bad task weight {part.strip()!r} in {spec!r}: {value.strip()!r} is not a number"
                ) from None
        spec = items
    unknown = [key for key in spec if key not in TASK_KINDS]
    if unknown:
        raise ValueError(f"unknown synthetic task kind(s) {unknown}; valid: {list(TASK_KINDS)}")
    weights = {kind: float(spec.get(kind, 0.0)) for kind in TASK_KINDS}
    if any(weight < 0 for weight in weights.values()) or sum(weights.values()) <= 0:
        raise ValueError(f"task weights must be >= 0 with a positive sum, got {weights}")
    return weights


# ---------------------------------------------------------------------------------------------------------------------
# Tasks
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyntheticTask:
    """One task: the prompt's ingredients and the reference assistant turn, before rendering.

    ``history`` holds the rendered entries of the dialogue record (``<user> ... </user>``,
    earlier assistant turns, ``<obs> ... </obs>``); the user message joins them under the
    paper's header. ``calls`` is empty when the reference turn has no ``<tool_call>`` block.
    ``target_tools`` names the tools the task is about (called, asked about or refused);
    ``held_out`` says whether it involves a held-out tool; ``request`` is the latest user
    utterance. Being a frozen dataclass, ``dataclasses.replace(task, think=..., calls=...)``
    builds variants of the reference turn (imperfect transcripts, say).
    """

    kind: str
    variant: str
    tools: tuple[grammar.ToolSpec, ...]
    history: tuple[str, ...]
    think: str
    calls: tuple[dict[str, Any], ...] = ()
    response: str | None = None
    target_tools: tuple[str, ...] = ()
    held_out: bool = False
    request: str = ""

    @property
    def system_prompt(self) -> str:
        return grammar.render_system_prompt(self.tools)

    @property
    def user_message(self) -> str:
        return grammar.render_user_message(list(self.history))

    @property
    def output(self) -> str:
        return grammar.render_assistant_turn(self.think, list(self.calls) or None, self.response)

    def prompt(self) -> list[dict[str, str]]:
        return [{"role": "system", "content": self.system_prompt}, {"role": "user", "content": self.user_message}]

    def rl_row(self) -> dict[str, Any]:
        return {"prompt": self.prompt(), "ground_truth": self.output}

    def sft_row(self) -> dict[str, Any]:
        return {"prompt": self.prompt(), "completion": [{"role": "assistant", "content": self.output}]}


def render_rows(tasks: Sequence[SyntheticTask], kind: str = "rl") -> list[dict[str, Any]]:
    """TRL rows for ``tasks``: ``prompt`` + ``ground_truth`` (``kind="rl"``) or ``prompt`` + ``completion`` ("sft")."""
    if kind not in ("rl", "sft"):
        raise ValueError(f"unknown row kind {kind!r}; valid: ['rl', 'sft']")
    return [task.rl_row() if kind == "rl" else task.sft_row() for task in tasks]


def _rendered_key(task: SyntheticTask) -> tuple[str, str, str]:
    """What makes two tasks duplicates: the same rendered prompt and reference turn."""
    return (task.system_prompt, task.user_message, task.output)


# ---------------------------------------------------------------------------------------------------------------------
# Wording shared by every tool
# ---------------------------------------------------------------------------------------------------------------------


def say(value: Any) -> str:
    """A value as a request or an answer writes it (lists as "a, b and c", floats without a trailing .0)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        words = [say(item) for item in value]
        return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
    return str(value)


def json_value(value: Any) -> str:
    """A value as the call will write it (strings quoted), so thoughts name the exact argument."""
    return json.dumps(value, ensure_ascii=False)


def _user_entry(text: str) -> str:
    """A user utterance as a dialogue-history entry."""
    return f"{grammar.USER_OPEN} {text} {grammar.USER_CLOSE}"


def _lower_first(text: str) -> str:
    """Lower-case a request's first letter to join it after a connector ("Also, check ..."), but keep "I"."""
    if text.startswith(("I ", "I'")):
        return text
    return text[:1].lower() + text[1:]


def _join_with_and(words: Sequence[str]) -> str:
    """``["a", "b", "c"]`` as ``"a, b and c"``."""
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


NUMBER_WORDS = {2: "two", 3: "three", 4: "four"}
GREETINGS = ("Hi!", "Hello there.", "Good morning!", "Hey, how are you?")
GREETING_REPLIES = ("Hello! How can I help you today?", "Hi! What can I do for you?")
THANKS = ("Thanks a lot!", "Thank you, that helps.", "Great, thanks!")
THANKS_REPLIES = ("You are welcome! Let me know if you need anything else.", "Glad I could help!")
CAPABILITY_QUESTIONS = ("What can you do?", "Which tasks can you help me with?")
VAGUE_REQUESTS = ("Can you help me with {topic}?", "I need some help with {topic}.")
CONNECTORS = ("Also, {}", "And {}", "Then {}")
FOLLOW_UPS = ("What about {value}?", "Now do the same for {value}.", "And for {value}?")
ACKS = ("Sure, I will {action} for you.", "On it! I am asking {tool} to {action}.")
SINGLE_THOUGHTS = (
    "The user wants to {action}. The {tool} tool does this, so I will call it with {args}.",
    "To {action}, I should use {tool}. I will call it with {args}.",
    "{tool} can {action}. The request gives {args}, so I will call it.",
)
PARALLEL_THOUGHTS = (
    "The user asks for {count} things. I will call {calls} at the same time.",
    "There are {count} separate requests here, so I will make {count} calls in parallel: {calls}.",
)
REPEAT_THOUGHTS = (
    "The user needs {tool} {count} times, with {values}. I will make {count} calls in parallel.",
    "{tool} handles one {noun} per call, so I will call it {count} times: for {values}.",
)

# ---------------------------------------------------------------------------------------------------------------------
# The generator
# ---------------------------------------------------------------------------------------------------------------------


class _NoCandidate(Exception):
    """A task kind cannot be built from the tools of this split (e.g. too few held-out tools); draw another."""


def _choose_candidate(rng: random.Random, candidates: Sequence[Any]) -> Any:
    """One of ``candidates``, or :class:`_NoCandidate` when there is none (the task is then drawn again)."""
    if not candidates:
        raise _NoCandidate
    return rng.choice(candidates)


class SyntheticGenerator:
    """Seeded task generator. ``tasks("train", n)`` never lists a held-out tool; ``tasks("test", n)`` targets them.

    Without held-out tools both splits draw from the whole catalogue (from separate random
    streams, so a split does not depend on the other's size). With held-out tools, every
    test task lists at least one of them and, when it calls or asks about a tool, that tool
    is a held-out one.
    """

    def __init__(
        self,
        seed: int = 0,
        held_out_tools: float = 0,
        task_weights: str | Mapping[str, float] | None = None,
        max_tools_per_prompt: int = 5,
    ) -> None:
        if max_tools_per_prompt < 2:
            raise ValueError(
                f"max_tools_per_prompt must be >= 2 (parallel tasks list two tools), got {max_tools_per_prompt}"
            )
        self.seed = seed
        self.max_tools = max_tools_per_prompt
        self.weights = parse_task_weights(task_weights)
        self.held_out: tuple[str, ...] = select_held_out_tools(held_out_tools, seed)
        self.train_tools = tuple(tool for tool in CATALOG if tool.name not in self.held_out)
        self.test_targets = tuple(get_tool(name) for name in self.held_out) or CATALOG

    # -- public API --------------------------------------------------------------------------------------------------

    def tasks(self, split: str, n: int, exclude: Sequence[SyntheticTask] = ()) -> list[SyntheticTask]:
        """``n`` tasks of ``split`` ("train" or "test"), skipping any whose prompt and output appear in ``exclude``."""
        if split not in ("train", "test"):
            raise ValueError(f"unknown split {split!r}; valid: ['train', 'test']")
        rng = random.Random(f"toolrl-synthetic:{self.seed}:{split}")
        seen = {_rendered_key(task) for task in exclude}
        builders: dict[str, Callable[[random.Random, str], SyntheticTask]] = {
            "single": self._make_single,
            "parallel": self._make_parallel,
            "no_tool": self._make_no_tool,
            "call_and_response": self._make_call_and_response,
            "multi_turn": self._make_multi_turn,
        }
        kinds = [kind for kind in TASK_KINDS if self.weights[kind] > 0]
        weights = [self.weights[kind] for kind in kinds]
        tasks: list[SyntheticTask] = []
        attempts = 0
        while len(tasks) < n:
            attempts += 1
            if attempts > 50 * n + 100:
                raise RuntimeError(f"could not generate {n} distinct {split} tasks in {attempts - 1} attempts")
            kind = rng.choices(kinds, weights)[0]
            try:
                task = builders[kind](rng, split)
            except _NoCandidate:
                continue
            if seen and _rendered_key(task) in seen:
                continue
            tasks.append(task)
        return tasks

    def splits(self, train_size: int, test_size: int) -> dict[str, list[SyntheticTask]]:
        """Train and test tasks; test tasks that duplicate a train task exactly are redrawn."""
        train = self.tasks("train", train_size)
        return {"train": train, "test": self.tasks("test", test_size, exclude=train)}

    # -- choosing tools ----------------------------------------------------------------------------------------------

    def _target_pool(self, split: str) -> tuple[SyntheticTool, ...]:
        """Tools a task of ``split`` may call or ask about."""
        return self.train_tools if split == "train" else self.test_targets

    def _draw_targets(
        self, rng: random.Random, split: str, count: int, exclude: Sequence[str] = ()
    ) -> list[SyntheticTool]:
        """``count`` distinct target tools; in a held-out test split the first one is always held out."""
        if split == "train" or not self.held_out:
            pool = [tool for tool in (self.train_tools if split == "train" else CATALOG) if tool.name not in exclude]
            if len(pool) < count:
                raise _NoCandidate
            return rng.sample(pool, count)
        first = _choose_candidate(rng, [tool for tool in self.test_targets if tool.name not in exclude])
        rest = [tool for tool in CATALOG if tool.name not in exclude and tool.name != first.name]
        return [first, *rng.sample(rest, count - 1)]

    def _prompt_tools(
        self, rng: random.Random, split: str, targets: Sequence[SyntheticTool], banned_domains: Sequence[str] = ()
    ) -> tuple[grammar.ToolSpec, ...]:
        """Targets plus distractors (often one from the same domain), shuffled; held-out tools stay out of train."""
        pool = self.train_tools if split == "train" else CATALOG
        chosen = list(targets)
        chosen_names = {tool.name for tool in chosen}
        distractors = [tool for tool in pool if tool.name not in chosen_names and tool.domain not in banned_domains]
        if split == "test" and self.held_out and not any(tool.name in self.held_out for tool in chosen):
            forced = _choose_candidate(rng, [tool for tool in self.test_targets if tool.domain not in banned_domains])
            chosen.append(forced)
            distractors = [tool for tool in distractors if tool.name != forced.name]
        total = rng.randint(max(2, len(chosen)), max(self.max_tools, len(chosen)))
        siblings = [tool for tool in distractors if any(tool.domain == target.domain for target in targets)]
        if siblings and len(chosen) < total and rng.random() < 0.5:
            sibling = rng.choice(siblings)
            chosen.append(sibling)
            distractors = [tool for tool in distractors if tool.name != sibling.name]
        chosen.extend(rng.sample(distractors, min(len(distractors), total - len(chosen))))
        rng.shuffle(chosen)
        return tuple(tool.spec() for tool in chosen)

    # -- choosing values ---------------------------------------------------------------------------------------------

    def _sample_args(self, rng: random.Random, tool: SyntheticTool) -> tuple[dict[str, Any], list[str]]:
        """Typed arguments (required ones, plus optional ones the request mentions) and the mention sentences."""
        args: dict[str, Any] = {}
        mentions: list[str] = []
        for param in tool.params:
            if not param.required and rng.random() >= OPTIONAL_MENTION_RATE:
                continue
            value = self._sample_value(rng, param, args)
            args[param.name] = value
            if not param.required:
                mentions.append(param.mention.format(value=say(value)))
        return args, mentions

    @staticmethod
    def _sample_value(rng: random.Random, param: ParamSpec, args: Mapping[str, Any]) -> Any:
        """A value for ``param``: an optional one never gets its default, nor a value it must differ from."""
        if param.type == "bool" and not param.required:
            return not param.default
        pool = [v for v in param.pool if param.required or v != param.default]
        if param.distinct_from and param.distinct_from in args:
            pool = [v for v in pool if v != args[param.distinct_from]]
        if param.type.startswith("List["):
            return rng.sample(pool, rng.randint(2, min(3, len(pool))))
        return rng.choice(pool)

    @staticmethod
    def _alternative_values(tool: SyntheticTool, varied: ParamSpec, args: Mapping[str, Any]) -> list[Any]:
        """Values ``varied`` may take instead of its current one without clashing with one it must differ from."""
        clashing = {p.name for p in tool.params if p.distinct_from == varied.name} | {varied.distinct_from}
        taken = [args[name] for name in clashing if name in args]
        return [v for v in varied.pool if v != args.get(varied.name) and v not in taken]

    @staticmethod
    def _sample_result(rng: random.Random, tool: SyntheticTool) -> dict[str, Any]:
        """The fields of a tool result (the ``<obs>`` of a multi-turn dialogue)."""
        return {field: rng.choice(values) for field, values in tool.results}

    # -- wording -----------------------------------------------------------------------------------------------------

    @staticmethod
    def _spoken_values(tool: SyntheticTool, args: Mapping[str, Any]) -> dict[str, str]:
        """The arguments as a sentence says them, to fill a template's ``{param}`` slots."""
        return {param.name: say(args[param.name]) for param in tool.params if param.name in args}

    def _write_request(
        self, rng: random.Random, tool: SyntheticTool, args: Mapping[str, Any], mentions: Sequence[str]
    ) -> str:
        text = rng.choice(tool.requests).format(**self._spoken_values(tool, args))
        return " ".join([text, *mentions])

    def _action_phrase(self, tool: SyntheticTool, args: Mapping[str, Any]) -> str:
        return tool.action.format(**self._spoken_values(tool, args))

    @staticmethod
    def _arguments_phrase(args: Mapping[str, Any]) -> str:
        """``city as "Paris" and days as 3``: how a thought names the exact arguments of a call."""
        if not args:
            return "no parameters"
        return _join_with_and([f"{name} as {json_value(value)}" for name, value in args.items()])

    def _single_call_thought(self, rng: random.Random, tool: SyntheticTool, args: Mapping[str, Any]) -> str:
        template = rng.choice(SINGLE_THOUGHTS)
        return template.format(
            action=self._action_phrase(tool, args), tool=tool.name, args=self._arguments_phrase(args)
        )

    def _result_summary(self, tool: SyntheticTool, args: Mapping[str, Any], result: Mapping[str, Any]) -> str:
        values = self._spoken_values(tool, args)
        values.update({field: say(value) for field, value in result.items()})
        return tool.summary.format(**values)

    @staticmethod
    def _call(tool: SyntheticTool, args: Mapping[str, Any]) -> dict[str, Any]:
        return {"name": tool.name, "parameters": dict(args)}

    @staticmethod
    def _join_requests(rng: random.Random, requests: Sequence[str]) -> str:
        return requests[0] + "".join(" " + rng.choice(CONNECTORS).format(_lower_first(r)) for r in requests[1:])

    def _build_task(
        self,
        kind: str,
        variant: str,
        tools: tuple[grammar.ToolSpec, ...],
        history: Sequence[str],
        think: str,
        calls: Sequence[dict[str, Any]] = (),
        response: str | None = None,
        targets: Sequence[SyntheticTool] = (),
        request: str = "",
    ) -> SyntheticTask:
        """The task record; it is held out when any listed or target tool is."""
        target_names = tuple(tool.name for tool in targets)
        involved = [spec.name for spec in tools] + list(target_names)
        return SyntheticTask(
            kind=kind,
            variant=variant,
            tools=tools,
            history=tuple(history),
            think=think,
            calls=tuple(calls),
            response=response,
            target_tools=target_names,
            held_out=any(name in self.held_out for name in involved),
            request=request,
        )

    # -- task kinds --------------------------------------------------------------------------------------------------

    def _make_single(self, rng: random.Random, split: str) -> SyntheticTask:
        (tool,) = self._draw_targets(rng, split, 1)
        args, mentions = self._sample_args(rng, tool)
        request = self._write_request(rng, tool, args, mentions)
        tools = self._prompt_tools(rng, split, [tool])
        think = self._single_call_thought(rng, tool, args)
        calls = [self._call(tool, args)]
        return self._build_task("single", "single", tools, [_user_entry(request)], think, calls, None, [tool], request)

    def _make_parallel(self, rng: random.Random, split: str) -> SyntheticTask:
        if rng.random() < 0.4:
            return self._make_parallel_same_tool(rng, split)
        count = rng.choice((2, 2, 3))
        targets = self._draw_targets(rng, split, count)
        arg_sets = [self._sample_args(rng, tool) for tool in targets]
        request = self._join_requests(
            rng,
            [
                self._write_request(rng, tool, args, mentions)
                for tool, (args, mentions) in zip(targets, arg_sets, strict=True)
            ],
        )
        calls = [self._call(tool, args) for tool, (args, _) in zip(targets, arg_sets, strict=True)]
        call_words = _join_with_and(
            [
                f"{tool.name} to {self._action_phrase(tool, args)}"
                for tool, (args, _) in zip(targets, arg_sets, strict=True)
            ]
        )
        think = rng.choice(PARALLEL_THOUGHTS).format(count=NUMBER_WORDS[count], calls=call_words)
        tools = self._prompt_tools(rng, split, targets)
        history = [_user_entry(request)]
        return self._build_task("parallel", "different_tools", tools, history, think, calls, None, targets, request)

    def _make_parallel_same_tool(self, rng: random.Random, split: str) -> SyntheticTask:
        """The same tool called two or three times, varying its first required parameter.

        Optional parameters the request mentions go with the first call only, as the first
        sentence states them.
        """
        tool = _choose_candidate(
            rng, [t for t in self._target_pool(split) if t.required and len(t.required[0].pool) > 2]
        )
        varied = tool.required[0]
        args, mentions = self._sample_args(rng, tool)
        required_names = {p.name for p in tool.required}
        required_args = {name: value for name, value in args.items() if name in required_names}
        alternatives = self._alternative_values(tool, varied, args)
        extra_values = rng.sample(alternatives, min(len(alternatives), rng.choice((1, 1, 2))))
        if not extra_values:
            raise _NoCandidate
        arg_sets = [args] + [{**required_args, varied.name: value} for value in extra_values]
        requests = [
            self._write_request(rng, tool, call_args, mentions if i == 0 else [])
            for i, call_args in enumerate(arg_sets)
        ]
        calls = [self._call(tool, call_args) for call_args in arg_sets]
        values = [args[varied.name], *extra_values]
        think = rng.choice(REPEAT_THOUGHTS).format(
            tool=tool.name,
            count=NUMBER_WORDS[len(calls)],
            noun=varied.noun,
            values=_join_with_and([json_value(v) for v in values]),
        )
        tools = self._prompt_tools(rng, split, [tool])
        request = self._join_requests(rng, requests)
        history = [_user_entry(request)]
        return self._build_task("parallel", "same_tool", tools, history, think, calls, None, [tool], request)

    def _make_no_tool(self, rng: random.Random, split: str) -> SyntheticTask:
        variant = rng.choice(("greeting", "capability", "clarify", "clarify", "unavailable", "unavailable"))
        if variant == "greeting":
            tools = self._prompt_tools(rng, split, [])
            request = rng.choice(GREETINGS)
            think = "The user is just greeting me. No tool is needed, so I will reply directly."
            response = rng.choice(GREETING_REPLIES)
            return self._build_task(
                "no_tool", variant, tools, [_user_entry(request)], think, response=response, request=request
            )
        if variant == "capability":
            tools = self._prompt_tools(rng, split, [])
            topics = list(dict.fromkeys(get_tool(spec.name).topic for spec in tools))
            request = rng.choice(CAPABILITY_QUESTIONS)
            think = "The user asks what I can do. I will describe the available tools instead of calling one."
            response = f"I can help with {_join_with_and(topics)}."
            return self._build_task(
                "no_tool", variant, tools, [_user_entry(request)], think, response=response, request=request
            )
        if variant == "clarify":
            tools_without_params = [t.name for t in CATALOG if not t.required]
            (tool,) = self._draw_targets(rng, split, 1, exclude=tools_without_params)
            request = rng.choice(VAGUE_REQUESTS).format(topic=tool.topic)
            missing = _join_with_and([f"the {param.noun}" for param in tool.required])
            verb = "is" if len(tool.required) == 1 else "are"
            think = (
                f"The user wants help with {tool.topic}, which {tool.name} handles, but {missing} {verb} missing. "
                "I should ask before calling it."
            )
            response = f"Sure. Could you tell me {missing}?"
            tools = self._prompt_tools(rng, split, [tool])
            return self._build_task(
                "no_tool",
                variant,
                tools,
                [_user_entry(request)],
                think,
                response=response,
                targets=[tool],
                request=request,
            )
        # unavailable: the request needs a tool that the prompt does not list (nor any tool of its domain)
        (tool,) = self._draw_targets(rng, split, 1)
        args, mentions = self._sample_args(rng, tool)
        request = self._write_request(rng, tool, args, mentions)
        tools = self._prompt_tools(rng, split, [], banned_domains=[tool.domain])
        think = (
            f"The user wants to {self._action_phrase(tool, args)}, but none of the available tools can do that. "
            "I will say so instead of calling a tool."
        )
        response = f"Sorry, I cannot help with {tool.topic} because none of my tools support it."
        return self._build_task(
            "no_tool",
            variant,
            tools,
            [_user_entry(request)],
            think,
            response=response,
            targets=[tool],
            request=request,
        )

    def _make_call_and_response(self, rng: random.Random, split: str) -> SyntheticTask:
        (tool,) = self._draw_targets(rng, split, 1)
        args, mentions = self._sample_args(rng, tool)
        request = self._write_request(rng, tool, args, mentions)
        if rng.random() < 0.4:
            request = f"{rng.choice(GREETINGS[:3])} {request}"
        tools = self._prompt_tools(rng, split, [tool])
        think = self._single_call_thought(rng, tool, args) + " I will also tell the user what I am doing."
        response = rng.choice(ACKS).format(action=self._action_phrase(tool, args), tool=tool.name)
        calls = [self._call(tool, args)]
        history = [_user_entry(request)]
        return self._build_task("call_and_response", "ack", tools, history, think, calls, response, [tool], request)

    def _make_multi_turn(self, rng: random.Random, split: str) -> SyntheticTask:
        """A dialogue with an earlier call and its ``<obs>``; the reference turn answers, calls again or replies.

        In a held-out test split the tool of the reference turn's call is the held-out one.
        """
        variant = rng.choice(("summarize", "summarize", "follow_up", "same_again", "thanks"))
        if variant == "follow_up":
            current, earlier = self._draw_targets(rng, split, 2)
        elif variant == "same_again":
            swappable = [
                t
                for t in self._target_pool(split)
                if t.required and t.required[0].type == "str" and len(t.required[0].pool) > 2
            ]
            current = earlier = _choose_candidate(rng, swappable)
        else:
            (earlier,) = self._draw_targets(rng, split, 1)
            current = earlier
        args, mentions = self._sample_args(rng, earlier)
        request = self._write_request(rng, earlier, args, mentions)
        result = self._sample_result(rng, earlier)
        call_turn = grammar.render_assistant_turn(
            self._single_call_thought(rng, earlier, args), [self._call(earlier, args)]
        )
        observation = grammar.render_observation([{"name": earlier.name, "results": result}])
        history = [_user_entry(request), f"{call_turn}\n{observation}"]
        targets = [current] if current is earlier else [current, earlier]
        tools = self._prompt_tools(rng, split, targets)
        summary = self._result_summary(earlier, args, result)
        if variant == "summarize":
            think = f"{earlier.name} returned the result. I will share it with the user in a short answer."
            return self._build_task(
                "multi_turn", variant, tools, history, think, response=summary, targets=targets, request=request
            )
        history.append(
            grammar.render_assistant_turn("I should directly respond to the user with the result.", None, summary)
        )
        if variant == "thanks":
            next_request = rng.choice(THANKS)
            history.append(_user_entry(next_request))
            think = "The user is thanking me for the answer. No tool is needed now."
            reply = rng.choice(THANKS_REPLIES)
            return self._build_task(
                "multi_turn", variant, tools, history, think, response=reply, targets=targets, request=next_request
            )
        if variant == "same_again":
            varied = earlier.required[0]
            value = _choose_candidate(rng, self._alternative_values(earlier, varied, args))
            next_request = rng.choice(FOLLOW_UPS).format(value=say(value))
            next_args = {**args, varied.name: value}
            think = (
                f"The user wants the same {earlier.name} request as before, but with the {varied.noun} "
                f"{json_value(value)}. I will call {earlier.name} again with {self._arguments_phrase(next_args)}."
            )
        else:
            next_args, next_mentions = self._sample_args(rng, current)
            next_request = self._write_request(rng, current, next_args, next_mentions)
            think = self._single_call_thought(rng, current, next_args)
        history.append(_user_entry(next_request))
        calls = [self._call(current, next_args)]
        return self._build_task("multi_turn", variant, tools, history, think, calls, None, targets, next_request)


def generate_tasks(
    train_size: int,
    test_size: int,
    *,
    seed: int = 0,
    held_out_tools: float = 0,
    task_weights: str | Mapping[str, float] | None = None,
    max_tools_per_prompt: int = 5,
) -> dict[str, list[SyntheticTask]]:
    """Train and test tasks of a :class:`SyntheticGenerator`; the convenience entry point of the data layer."""
    generator = SyntheticGenerator(seed, held_out_tools, task_weights, max_tools_per_prompt)
    return generator.splits(train_size, test_size)


__all__ = [
    "CATALOG",
    "DEFAULT_TASK_WEIGHTS",
    "TASK_KINDS",
    "ParamSpec",
    "SyntheticGenerator",
    "SyntheticTask",
    "SyntheticTool",
    "generate_tasks",
    "get_tool",
    "parse_task_weights",
    "render_rows",
    "say",
    "select_held_out_tools",
    "tool_catalog",
]
