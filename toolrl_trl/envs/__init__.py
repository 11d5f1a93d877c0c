"""Executable environments for TRL's ``GRPOTrainer(environment_factory=...)``: the executed multi-turn mode.

The protocol every environment follows (dataset row, ``task`` JSON, tools, ``end_state``, ``calls``, tool-failure
handling) is written down in :mod:`toolrl_trl.envs.base`. Importing this package registers every environment module
in :data:`ENVIRONMENT_MODULES` in :data:`ENVIRONMENTS`.
"""

from __future__ import annotations

import importlib
import importlib.util

from toolrl_trl.envs.base import (
    API_METHODS,
    ENVIRONMENTS,
    FAMILIES,
    TASK_KEYS,
    TASK_SOURCES,
    TaskError,
    ToolEnvironment,
    ToolError,
    get_environment,
    parse_task,
    register,
    register_family,
)

#: Modules that register environments when imported (a module not written yet is skipped, any other error is raised).
ENVIRONMENT_MODULES = ("toolrl_trl.envs.world", "toolrl_trl.envs.bfcl_envs")

for _module in ENVIRONMENT_MODULES:
    if importlib.util.find_spec(_module) is not None:
        importlib.import_module(_module)

__all__ = [
    "API_METHODS",
    "ENVIRONMENTS",
    "ENVIRONMENT_MODULES",
    "FAMILIES",
    "TASK_KEYS",
    "TASK_SOURCES",
    "TaskError",
    "ToolEnvironment",
    "ToolError",
    "get_environment",
    "parse_task",
    "register",
    "register_family",
]
