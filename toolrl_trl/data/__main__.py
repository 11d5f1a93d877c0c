"""CLI: ``python -m toolrl_trl.data prepare|inspect``.

``prepare`` validates a source, drops or left-truncates over-long prompts (with ``--tokenizer``),
splits it (``--split_method paper`` for the paper's partition), saves the rows with ``datasets``
(``load_from_disk`` reads them back, and ``--data_source DIR`` trains on them) and prints a stats
table. ``inspect`` prints a few rows of any source or saved folder.
Every :class:`DataConfig` field is also a flag (``--test_size 0``, ``--skip_invalid_rows true``...).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from transformers import HfArgumentParser

from toolrl_trl.cli import configure_logging
from toolrl_trl.data.config import DataConfig
from toolrl_trl.data.pipeline import format_report, output_of, prepare_datasets, save_datasets

COMMANDS = ("prepare", "inspect")


@dataclass
class CliArguments:
    """Options of the CLI itself (the data options come from DataConfig)."""

    source: str | None = field(default=None, metadata={"help": "Shorthand for --data_source."})
    out: str | None = field(default=None, metadata={"help": "prepare: folder to save the DatasetDict into."})
    tokenizer: str | None = field(
        default=None,
        metadata={
            "help": "Tokenizer (path or hub id) whose chat template measures prompts; enables the length filter."
        },
    )
    kind: str = field(
        default="rl", metadata={"help": "Rows to write: 'rl' (prompt + ground_truth) or 'sft' (prompt + completion)."}
    )
    num_rows: int = field(default=3, metadata={"help": "inspect: rows to show per split."})
    max_chars: int = field(default=1500, metadata={"help": "inspect: cut each message after this many characters."})


def _usage() -> str:
    return f"usage: python -m toolrl_trl.data {{{','.join(COMMANDS)}}} [--source SRC] [options]; add --help after a command"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f" [... {len(text) - limit} more chars]"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        print(_usage(), file=sys.stderr)
        return 2
    command, rest = argv[0], argv[1:]
    parser = HfArgumentParser((DataConfig, CliArguments), prog=f"python -m toolrl_trl.data {command}")
    config, cli = parser.parse_args_into_dataclasses(rest)
    if cli.source:
        config.data_source = cli.source
    configure_logging()
    tokenizer = None
    if cli.tokenizer:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(cli.tokenizer)
    if command == "prepare" and not cli.out:
        parser.error("prepare needs --out DIR")
    prepared = prepare_datasets(config, cli.kind, tokenizer)
    if command == "prepare":
        save_datasets(prepared.datasets, cli.out)
        print(format_report(prepared))
        print(f"\nsaved {cli.kind} rows to {cli.out} (datasets.load_from_disk reads them back)")
        return 0
    for name, dataset in prepared.datasets.items():
        for index in range(min(cli.num_rows, len(dataset))):
            row = dataset[index]
            print(f"===== {name} row {index} =====")
            if isinstance(row["prompt"], str):  # prompt_truncation=left: the templated text the trainer tokenizes
                print(f"--- [prompt text, chat template applied]\n{_clip(row['prompt'], cli.max_chars)}")
            else:
                for message in row["prompt"]:
                    print(f"--- [{message['role']}]\n{_clip(message['content'], cli.max_chars)}")
            print(
                f"--- [assistant: {'ground_truth' if cli.kind == 'rl' else 'completion'}]\n{_clip(output_of(row), cli.max_chars)}"
            )
    print()
    print(format_report(prepared))
    return 0


if __name__ == "__main__":
    sys.exit(main())
