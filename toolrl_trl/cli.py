"""What every entry point and ``python -m toolrl_trl...`` tool shares: logging, the default tiny recipe, and the rule
that a user's mistake ends in one clear line and exit status 2, never a traceback.

A mistake is a ``UserError`` (a bad flag, key, value, path, data file or batch geometry); anything else is a bug
and keeps its traceback. ``--debug`` (or ``TOOLRL_DEBUG=1``) shows the traceback of a user error too.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

logger = logging.getLogger(__name__)
T = TypeVar("T")

#: Environment variable that, set to 1, shows the traceback of user errors (as ``--debug`` does).
DEBUG_ENV = "TOOLRL_DEBUG"
#: Status of a run stopped by a user error (argparse's own usage errors exit with it too).
USER_ERROR_STATUS = 2
LOG_FORMAT = "%(asctime)s - %(levelname)s - %(name)s - %(message)s"
#: How a no-argument training run says to launch the paper's recipe of the same method instead.
PAPER_RUN = "accelerate launch --config_file accelerate_configs/zero3.yaml {script} --config recipes/Qwen2.5-3B-Instruct/{method}.yaml"


class UserError(Exception):
    """A mistake in what the user asked for; its message names the problem and the fix, in one or two lines."""


class MissingDependencyError(UserError, ImportError):
    """An option needs a package that is not installed (vLLM, an eval extra); the message says how to install it."""


def configure_logging(level: int = logging.INFO) -> None:
    """One logging set-up for every entry point and CLI: timestamped lines on stdout, this project's at ``level``.

    Other libraries stay at WARNING unless they set their own level (training does, from ``log_level``).
    """
    logging.basicConfig(
        format=LOG_FORMAT,
        datefmt="%Y-%m-%d %H:%M:%S",
        handlers=[logging.StreamHandler(sys.stdout)],
        level=logging.WARNING,
    )
    for name in ("toolrl_trl", "__main__"):
        logging.getLogger(name).setLevel(level)


def ensure_tiny_model(path: str, family: str) -> None:
    """Build the tiny offline ``family`` model at ``path`` unless it is there (a no-argument run needs no make)."""
    if os.path.exists(os.path.join(path, "config.json")):
        return
    from toolrl_trl.tiny import build_tiny_model

    logger.info("%s does not exist yet: building the tiny offline %s model there", path, family)
    build_tiny_model(path, family)


def with_default_recipe(
    argv: Sequence[str], default_recipe: Path, real_run: str, *, chosen_by: Sequence[str] = ("--config",)
) -> list[str]:
    """``argv``, or ``--config <the tiny recipe>`` added when none of ``chosen_by`` (nor ``--help``) was given.

    So ``python recipes/grpo_cold_start.py`` (or ``accelerate launch`` of it) with no arguments runs the tiny CPU
    recipe in about a minute; its first line says so and shows ``real_run``, how to run a paper recipe instead.
    """
    argv = list(argv)
    if set(chosen_by) & set(argv) or {"-h", "--help"} & set(argv):
        return argv
    logger.info(
        "no %s given: running the tiny CPU recipe %s (its tiny model is built on first use). For a real run: %s",
        " or ".join(chosen_by),
        display_path(default_recipe),
        real_run,
    )
    return ["--config", str(default_recipe), *argv]


def run_guarded(main: Callable[[list[str]], object], argv: Sequence[str] | None = None) -> None:
    """Run ``main(argv)``; a ``UserError`` becomes ``<program>: error: <message>`` on stderr and exit status 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = os.environ.get(DEBUG_ENV, "") not in ("", "0", "false")
    if "--debug" in argv:
        argv.remove("--debug")
        debug = True
    configure_logging()
    try:
        main(argv)
    except UserError as err:
        if debug:
            raise
        program = Path(sys.argv[0]).name or "toolrl_trl"
        sys.stderr.write(f"{program}: error: {err}\n(run again with --debug for the traceback)\n")
        sys.stderr.flush()
        raise SystemExit(USER_ERROR_STATUS) from None


def display_path(path: str | os.PathLike[str]) -> str:
    """A path as the user would type it: relative to the working directory when below it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def parse_options(config_class: type[T], argv: Sequence[str] | None = None) -> T:
    """Parse one options dataclass; a value its ``__post_init__`` rejects is a usage error (one line, exit 2)."""
    from transformers import HfArgumentParser

    parser = HfArgumentParser(config_class)
    try:
        (config,) = parser.parse_args_into_dataclasses(args=argv)
    except (ValueError, FileNotFoundError) as err:
        parser.error(str(err))
    return config
