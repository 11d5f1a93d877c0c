"""The environment protocol of the executed multi-turn mode, and the one place tool failures are contained.

TRL's ``GRPOTrainer(environment_factory=cls)`` builds one instance per rollout (no arguments), calls
``reset(**row)`` with the dataset row, exposes every *public function* of the class (except ``reset`` and
``get_reward``) to the model as a tool (its JSON schema is built from the signature and Google-style docstring),
and calls those methods with the arguments it parsed from the completion. This module fixes what every
environment of this project (``world.py``'s synthetic worlds, the BFCL stateful APIs) agrees on:

Dataset row
    ``prompt``: chat messages (system + user). ``task``: a JSON string
    ``{"env": <registry name>, "initial_state": {...}, "reference_calls": [{"name": str, "arguments": {...}}, ...],
    "reference_state": {...}, "reference_answer": str | null}``. Optionally ``env_name`` (the registry name, the
    same as ``task["env"]``). Other columns are passed to ``reset`` too and ignored.

Environment class (subclass :class:`ToolEnvironment`)
    * instantiated with no arguments; ``reset(**row)`` (defined here) parses ``task``, clears ``calls`` and calls the
      subclass's private ``_load(task)``, which builds the state from ``task["initial_state"]``;
    * its tools are public methods with Google-style docstrings and type hints; everything else is private
      (``_name``), because TRL turns every public function into a tool;
    * ``end_state() -> dict`` returns the state in the shape of ``task["reference_state"]`` (plain JSON data, so
      ``==`` compares it). It is made a non-tool automatically (see :data:`API_METHODS`);
    * ``calls`` records every call the model made, in order: ``{"name", "arguments", "error": str | None}``;
    * no ``get_reward``: the trajectory rewards (``toolrl_trl.trajectory_rewards``) read ``calls``, ``end_state()``
      and the task, each as its own weighted reward function.

Registry
    :data:`ENVIRONMENTS` maps a name to its class; :func:`register` adds one (a decorator); :func:`get_environment`
    looks one up and fails with the list of valid names. A *family* (:func:`register_family`) builds classes on
    demand for names ``<prefix>:<spec>``: the synthetic world has one class per tool set, named
    ``synthetic_world:<tool>+<tool>...``, because TRL lists every public method of a class as a tool.
    Training routes each row to its class through TRL's multi-environment mode (an ``environment`` column set
    from ``task["env"]``), so a row's prompt lists exactly its environment's tools. Rows come from a file, the
    synthetic world, or a *task source* registered in :data:`TASK_SOURCES` (``task_source: <name>`` in a recipe).

Tool failures (implemented once, here, for every subclass)
    Every tool method is wrapped when the subclass is defined. A call that raises, runs past
    :attr:`ToolEnvironment.tool_timeout_s`, gets arguments its signature does not take, or returns something that is not
    text or JSON-serialisable data is recorded in ``calls`` with its error and raises :class:`ToolError`; TRL's tool
    loop catches it, counts it in ``tools/failure_frequency`` and shows the model ``{'error': '<message>'}``. Results
    are returned as text (``str`` unchanged, JSON data dumped with sorted keys) and cut at
    :attr:`ToolEnvironment.max_result_chars`, so a tool can never hand TRL a list (which TRL would take for multimodal
    content blocks) or crash tokenisation. A call that hangs is abandoned on its daemon thread: training goes on, and
    the environment is marked ``stalled`` (a stalled episode's late state changes are not trusted: ``end_state`` of a
    stalled episode is whatever the thread left, and the outcome reward treats the episode as failed).
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import threading
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

logger = logging.getLogger(__name__)

#: Public names of the protocol that are not tools: turned into non-function descriptors so TRL does not expose them.
API_METHODS = ("end_state",)
#: Public functions TRL itself treats as non-tools.
TRL_RESERVED = ("reset", "get_reward")
#: Keys a ``task`` must have.
TASK_KEYS = ("env", "initial_state", "reference_calls", "reference_state", "reference_answer")


class ToolError(RuntimeError):
    """A tool call failed (raised, timed out, bad arguments, non-text result); TRL shows the model its message."""


class TaskError(ValueError):
    """A dataset row's ``task`` is not the protocol's JSON object (a data bug: the generator or file is wrong)."""


class _ApiMethod:
    """A method that instances call normally but that ``inspect.isfunction`` on the class does not see.

    TRL lists tools with ``inspect.getmembers(type(env), inspect.isfunction)``; a protocol method such as
    ``end_state`` must not become a tool the model can call.
    """

    def __init__(self, function: Callable[..., Any]):
        self.function = function
        functools.update_wrapper(self, function)

    def __get__(self, instance: Any, owner: type | None = None) -> Callable[..., Any]:
        if instance is None:
            return self
        return self.function.__get__(instance, owner)


def parse_task(task: Any) -> dict[str, Any]:
    """The row's ``task`` as a dict with every protocol key (a JSON string or an already-parsed mapping)."""
    if isinstance(task, str):
        try:
            task = json.loads(task)
        except json.JSONDecodeError as err:
            raise TaskError(f"task is not valid JSON: {err}") from err
    if not isinstance(task, dict):
        raise TaskError(f"task must be a JSON object, got {type(task).__name__}")
    missing = [key for key in TASK_KEYS if key not in task]
    if missing:
        raise TaskError(f"task lacks the key(s) {missing}; a task has {list(TASK_KEYS)}")
    if not isinstance(task["reference_calls"], list):
        raise TaskError("task['reference_calls'] must be a list of {'name', 'arguments'} objects")
    return task


def to_text(result: Any, limit: int) -> str:
    """A tool result as the text the model sees: strings as they are, JSON data dumped; anything else is an error."""
    if isinstance(result, str):
        text = result
    elif result is None or isinstance(result, (bool, int, float, list, dict)):
        try:
            text = json.dumps(result, sort_keys=True, allow_nan=False)
        except (TypeError, ValueError) as err:
            raise ToolError(f"the tool returned data that is not JSON ({err})") from None
    else:
        raise ToolError(f"the tool returned {type(result).__name__}, not text")
    if len(text) > limit:
        text = text[:limit] + f"... [truncated at {limit} characters]"
    return text


def _describe(error: BaseException) -> str:
    message = str(error).strip()
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def _guard(name: str, function: Callable[..., Any]) -> Callable[..., str]:
    """Wrap one tool: bind its arguments, run it on a daemon thread under the timeout, return text or raise ToolError."""
    signature = inspect.signature(function)

    @functools.wraps(function)
    def tool(self: ToolEnvironment, *args: Any, **kwargs: Any) -> str:
        record: dict[str, Any] = {"name": name, "arguments": dict(kwargs), "error": None}
        self.calls.append(record)

        def fail(message: str) -> ToolError:
            record["error"] = message
            logger.debug("tool %s failed: %s", name, message)
            return ToolError(message)

        if self.stalled:
            raise fail("the environment is unavailable: an earlier call did not return")
        try:
            signature.bind(self, *args, **kwargs)
        except TypeError as err:
            valid = [p for p in signature.parameters if p != "self"]
            raise fail(f"bad arguments for {name} ({err}); its parameters are {valid}") from None
        outcome: dict[str, Any] = {}

        def target() -> None:
            try:
                outcome["result"] = function(self, *args, **kwargs)
            except BaseException as err:  # noqa: BLE001 - a tool's SystemExit must not end training either
                outcome["error"] = err

        worker = threading.Thread(target=target, name=f"tool-{name}", daemon=True)
        worker.start()
        worker.join(self.tool_timeout_s)
        if worker.is_alive():
            self.stalled = True
            raise fail(f"{name} did not return within {self.tool_timeout_s:g} s")
        if "error" in outcome:
            raise fail(_describe(outcome["error"]))
        try:
            return to_text(outcome.get("result"), self.max_result_chars)
        except ToolError as err:
            raise fail(str(err)) from None

    tool.__toolrl_guarded__ = True  # type: ignore[attr-defined]
    return tool


class ToolEnvironment:
    """Base class of every environment: task parsing on ``reset``, the call record, and guarded tools.

    Subclasses define tools as public methods and implement ``_load(task)`` and ``end_state()``.
    """

    #: Seconds a tool call may run before the model is told it timed out (and the episode is marked stalled).
    tool_timeout_s: ClassVar[float] = 5.0
    #: Longest tool result (characters) shown to the model; longer ones are cut with a note.
    max_result_chars: ClassVar[int] = 4000

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for attr, value in list(vars(cls).items()):
            if attr.startswith("_") or attr in TRL_RESERVED or not inspect.isfunction(value):
                continue
            if attr in API_METHODS:
                setattr(cls, attr, _ApiMethod(value))
            elif not getattr(value, "__toolrl_guarded__", False):
                if not inspect.getdoc(value):
                    raise TypeError(
                        f"{cls.__name__}.{attr} is public, so TRL exposes it as a tool, but it has no docstring to "
                        "build its schema from: document it (Google style) or make it private (_name)."
                    )
                setattr(cls, attr, _guard(attr, value))

    def __init__(self) -> None:
        self.task: dict[str, Any] | None = None
        self.calls: list[dict[str, Any]] = []
        self.stalled = False

    def reset(self, **row: Any) -> None:
        """Start an episode from a dataset row (its ``task`` column); returns None, so the prompt is the row's."""
        self.task = parse_task(row.get("task"))
        self.calls = []
        self.stalled = False
        self._load(self.task)

    def _load(self, task: dict[str, Any]) -> None:
        """Build this episode's state from ``task['initial_state']``."""
        raise NotImplementedError(f"{type(self).__name__} must implement _load(task)")

    def end_state(self) -> dict[str, Any]:
        """The state in the shape of ``task['reference_state']`` (plain JSON data)."""
        raise NotImplementedError(f"{type(self).__name__} must implement end_state()")

    @classmethod
    def tool_names(cls) -> list[str]:
        """The names TRL will expose as tools (its own rule: public functions other than reset/get_reward)."""
        return [
            name
            for name, _ in inspect.getmembers(cls, predicate=inspect.isfunction)
            if not name.startswith("_") and name not in TRL_RESERVED
        ]


# The protocol methods of the base class itself: __init_subclass__ only runs for subclasses.
ToolEnvironment.end_state = _ApiMethod(ToolEnvironment.__dict__["end_state"])  # type: ignore[method-assign]

#: Registry name -> environment class, for ``environment_factory`` and for rows' ``task["env"]``.
ENVIRONMENTS: dict[str, type[ToolEnvironment]] = {}

EnvT = TypeVar("EnvT", bound=type)


def register(name: str) -> Callable[[EnvT], EnvT]:
    """Class decorator: add an environment class to :data:`ENVIRONMENTS` under ``name`` (names are unique)."""

    def decorate(cls: EnvT) -> EnvT:
        if not (isinstance(cls, type) and issubclass(cls, ToolEnvironment)):
            raise TypeError(f"{cls!r} is not a ToolEnvironment subclass; only those handle tool failures safely")
        if name in ENVIRONMENTS and ENVIRONMENTS[name] is not cls:
            raise ValueError(f"environment name {name!r} is already registered to {ENVIRONMENTS[name].__name__}")
        ENVIRONMENTS[name] = cls
        return cls

    return decorate


#: Task-source name -> ``build(split, data_config) -> rows`` (split ``train`` or ``test``), for ``task_source:`` in the
#: multi-turn recipes (``toolrl_trl.envs.multiturn.register_task_source`` adds one).
TASK_SOURCES: dict[str, Callable[[str, Any], list[dict[str, Any]]]] = {}

#: Family prefix -> builder of the classes named ``<prefix>:<spec>`` (e.g. one synthetic-world class per tool set:
#: TRL lists every public method of a class as a tool, so a task's tool list is its own class).
FAMILIES: dict[str, Callable[[str], type[ToolEnvironment]]] = {}
_FAMILY_CLASSES: dict[str, type[ToolEnvironment]] = {}


def register_family(prefix: str, builder: Callable[[str], type[ToolEnvironment]]) -> None:
    """Resolve names ``<prefix>:<spec>`` with ``builder(spec)`` (built once per name, then cached)."""
    if ":" in prefix:
        raise ValueError(f"a family prefix cannot contain ':', got {prefix!r}")
    if prefix in FAMILIES and FAMILIES[prefix] is not builder:
        raise ValueError(f"environment family {prefix!r} is already registered")
    FAMILIES[prefix] = builder


def get_environment(name: str) -> type[ToolEnvironment]:
    """The environment class registered as ``name`` (or built by its family); an unknown name lists the valid ones."""
    if name in ENVIRONMENTS:
        return ENVIRONMENTS[name]
    prefix, sep, spec = str(name).partition(":")
    if sep and prefix in FAMILIES:
        if name not in _FAMILY_CLASSES:
            _FAMILY_CLASSES[name] = FAMILIES[prefix](spec)
        return _FAMILY_CLASSES[name]
    families = [f"{prefix}:<spec>" for prefix in sorted(FAMILIES)]
    raise KeyError(f"unknown environment {name!r}; valid: {sorted(ENVIRONMENTS) + families}")
