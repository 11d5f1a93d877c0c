"""From a :class:`DataConfig` to validated, filtered, split TRL rows (and the numbers that describe them).

Order of operations, per source split: convert to canonical rows and validate (raise on the
first bad row, or drop and count), drop prompts longer than ``max_prompt_length`` tokens
(when a tokenizer is given), then cut a seeded test split if the source has none, take the
``max_*_samples`` subsets and write RL (``prompt`` + ``ground_truth``) or SFT (``prompt`` +
``completion``) rows.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from datasets import Dataset, DatasetDict, Features, List, Value

from toolrl_trl import grammar, synthetic
from toolrl_trl.data.config import DataConfig
from toolrl_trl.data.sources import SYNTHETIC, SourceShape, detect_shape, get_shape, load_source
from toolrl_trl.data.validation import DataValidationError, RowError, check_kind, validate_output, validate_prompt

logger = logging.getLogger(__name__)

MESSAGES = List({"role": Value("string"), "content": Value("string")})
_TOKENS = "_prompt_tokens"
_CANONICAL = Features(
    {"prompt": MESSAGES, "ground_truth": Value("string"), "_error": Value("string"), "_error_code": Value("string")}
)


@dataclass
class SplitReport:
    """What happened to one split of one source: rows in, rows dropped and why, rows kept."""

    source: str
    split: str
    shape: str
    rows_in: int = 0
    invalid: Counter = field(default_factory=Counter)
    too_long: int = 0
    rows_out: int = 0

    @property
    def dropped_invalid(self) -> int:
        return sum(self.invalid.values())


@dataclass
class PreparedData:
    """The datasets plus the report of every source split that fed them."""

    datasets: DatasetDict
    reports: list[SplitReport]
    kind: str
    split_made: bool
    token_lengths: dict[str, list[int]] | None = None

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per output split: row count, output mix, calls per row and prompt-token percentiles."""
        return {
            name: split_stats(dataset, self.kind, (self.token_lengths or {}).get(name))
            for name, dataset in self.datasets.items()
        }


def build_datasets(
    config: DataConfig, kind: str = "rl", tokenizer: Any = None, seed: int | None = None
) -> DatasetDict:
    """Validated rows of ``config.data_source`` as ``DatasetDict(train=..., test=...)``.

    ``kind="rl"``: ``prompt`` + ``ground_truth``; ``kind="sft"``: ``prompt`` + ``completion``.
    With a ``tokenizer``, prompts longer than ``config.max_prompt_length`` tokens are dropped.
    ``seed`` overrides ``config.dataset_seed``.
    """
    return prepare_datasets(config, kind, tokenizer, seed).datasets


def prepare_datasets(
    config: DataConfig, kind: str = "rl", tokenizer: Any = None, seed: int | None = None
) -> PreparedData:
    """:func:`build_datasets` plus the per-source report and token counts the CLI prints."""
    check_kind(kind)
    seed = config.dataset_seed if seed is None else seed
    reports: list[SplitReport] = []
    splits = _load_canonical(config, config.data_source, kind, tokenizer, seed, reports)
    if config.data_test_source:
        if "test" in splits:
            logger.info("data_test_source is set: ignoring the test split of %s", config.data_source)
        test_splits = _load_canonical(config, config.data_test_source, kind, tokenizer, seed, reports)
        splits["test"] = test_splits.get("test", test_splits["train"])
    split_made = "test" not in splits
    if split_made:
        splits.update(_split(splits["train"], config.test_size, seed))
    elif config.data_source != SYNTHETIC:
        logger.info("%s has its own test split: test_size is not used", config.data_source)
    for name, limit in (("train", config.max_train_samples), ("test", config.max_test_samples)):
        if limit is not None and len(splits[name]) > limit:
            splits[name] = splits[name].shuffle(seed=seed).select(range(limit))
    token_lengths = None
    if tokenizer is not None:
        token_lengths = {name: list(dataset[_TOKENS]) for name, dataset in splits.items()}
    datasets = DatasetDict({name: _finalize(splits[name], kind) for name in ("train", "test")})
    logger.info(
        "data ready (%s rows): train %d, test %d%s",
        kind,
        len(datasets["train"]),
        len(datasets["test"]),
        f" (test cut from train with test_size={config.test_size}, seed={seed})" if split_made else "",
    )
    return PreparedData(datasets, reports, kind, split_made, token_lengths)


# ---------------------------------------------------------------------------------------------------------------------
# Steps
# ---------------------------------------------------------------------------------------------------------------------


def _load_canonical(
    config: DataConfig, source: str, kind: str, tokenizer: Any, seed: int, reports: list[SplitReport]
) -> dict[str, Dataset]:
    """Load, convert, validate and length-filter every split of ``source``."""
    if source == SYNTHETIC:
        raw = _synthetic_splits(config, seed)
        shapes = dict.fromkeys(raw, get_shape("trl_rows"))
    else:
        raw = load_source(source)
        shapes = {
            name: detect_shape(dataset.column_names, f"{source} (split {name!r})") for name, dataset in raw.items()
        }
    out = {}
    for name, dataset in raw.items():
        report = SplitReport(
            source, name, shapes[name].name if source != SYNTHETIC else SYNTHETIC, rows_in=len(dataset)
        )
        rows = _validate(dataset, shapes[name], kind, config.skip_invalid_rows, report)
        rows = _filter_length(rows, tokenizer, config.max_prompt_length, report)
        report.rows_out = len(rows)
        reports.append(report)
        logger.info(
            "%s [%s, %s]: %d rows in, %d dropped invalid%s, %d dropped too long (> %s prompt tokens)%s, %d rows out",
            source,
            name,
            report.shape,
            report.rows_in,
            report.dropped_invalid,
            f" ({_reason_summary(report.invalid)})" if report.invalid else "",
            report.too_long,
            config.max_prompt_length,
            "" if tokenizer is not None else " [no tokenizer: length filter off]",
            report.rows_out,
        )
        out[name] = rows
    return out


def synthetic_tasks(config: DataConfig, seed: int | None = None) -> dict[str, list[synthetic.SyntheticTask]]:
    """The structured tasks behind ``build_datasets`` for the synthetic source (before validation and filtering)."""
    return synthetic.generate_tasks(
        config.synthetic_train_size,
        config.synthetic_test_size,
        seed=config.dataset_seed if seed is None else seed,
        held_out_tools=config.synthetic_held_out_tools,
        task_weights=config.synthetic_task_weights,
        max_tools_per_prompt=config.synthetic_max_tools_per_prompt,
    )


def _synthetic_splits(config: DataConfig, seed: int) -> dict[str, Dataset]:
    tasks = synthetic_tasks(config, seed)
    features = Features({"prompt": MESSAGES, "ground_truth": Value("string")})
    return {
        name: Dataset.from_list(synthetic.render_rows(split_tasks, "rl"), features=features)
        for name, split_tasks in tasks.items()
    }


def _canonical_row(row: dict[str, Any], shape: str, kind: str) -> dict[str, Any]:
    try:
        prompt, output = get_shape(shape).convert(row)
        prompt = validate_prompt(prompt)
        validate_output(output, kind)
    except RowError as err:
        return {"prompt": [], "ground_truth": "", "_error": err.reason, "_error_code": err.code}
    return {"prompt": prompt, "ground_truth": output, "_error": "", "_error_code": ""}


def _validate(dataset: Dataset, shape: SourceShape, kind: str, skip: bool, report: SplitReport) -> Dataset:
    """Canonical rows of ``dataset``; raise at the first invalid row unless ``skip``, then drop and count them."""
    converted = dataset.map(
        _canonical_row,
        fn_kwargs={"shape": shape.name, "kind": kind},
        remove_columns=dataset.column_names,
        features=_CANONICAL,
        keep_in_memory=True,
        desc=f"validating {report.source} [{report.split}]",
    )
    codes = list(converted["_error_code"])
    bad = [index for index, code in enumerate(codes) if code]
    if bad and not skip:
        first = bad[0]
        raise DataValidationError(
            report.source, report.split, first, codes[first], converted[first]["_error"], more=len(bad) - 1
        )
    report.invalid.update(codes[index] for index in bad)
    if bad:
        logger.warning(
            "%s [%s]: skipped %d invalid row(s): %s; first: row %d: %s",
            report.source,
            report.split,
            len(bad),
            _reason_summary(report.invalid),
            bad[0],
            converted[bad[0]]["_error"],
        )
        converted = converted.select([index for index, code in enumerate(codes) if not code])
    return converted.remove_columns(["_error", "_error_code"])


def _prompt_token_counts(batch: dict[str, list], tokenizer: Any) -> dict[str, list[int]]:
    ids = tokenizer.apply_chat_template(batch["prompt"], add_generation_prompt=True, tokenize=True, return_dict=False)
    return {_TOKENS: [len(row) for row in ids]}


def _filter_length(dataset: Dataset, tokenizer: Any, max_length: int | None, report: SplitReport) -> Dataset:
    """Count chat-templated prompt tokens (as the trainer will see them) and drop rows above ``max_length``."""
    if tokenizer is None:
        return dataset
    dataset = dataset.map(
        _prompt_token_counts,
        batched=True,
        fn_kwargs={"tokenizer": tokenizer},
        keep_in_memory=True,
        desc=f"counting prompt tokens of {report.source} [{report.split}]",
    )
    if max_length is None:
        return dataset
    lengths = list(dataset[_TOKENS])
    keep = [index for index, length in enumerate(lengths) if length <= max_length]
    report.too_long = len(lengths) - len(keep)
    if report.too_long:
        logger.warning(
            "%s [%s]: dropped %d row(s) whose prompt exceeds max_prompt_length=%d tokens (longest: %d)",
            report.source,
            report.split,
            report.too_long,
            max_length,
            max(lengths),
        )
        dataset = dataset.select(keep)
    return dataset


def _split(dataset: Dataset, test_size: float, seed: int) -> dict[str, Dataset]:
    if test_size == 0 or len(dataset) == 0:
        return {"train": dataset, "test": dataset.select([])}
    if math.ceil(test_size * len(dataset)) >= len(dataset):
        logger.warning("only %d row(s): too few to cut a test split, the test split is empty", len(dataset))
        return {"train": dataset, "test": dataset.select([])}
    parts = dataset.train_test_split(test_size=test_size, seed=seed, shuffle=True)
    return {"train": parts["train"], "test": parts["test"]}


def _finalize(dataset: Dataset, kind: str) -> Dataset:
    if _TOKENS in dataset.column_names:
        dataset = dataset.remove_columns(_TOKENS)
    if kind == "rl":
        return dataset.select_columns(["prompt", "ground_truth"])
    return dataset.map(
        lambda output: {"completion": [{"role": "assistant", "content": output}]},
        input_columns="ground_truth",
        remove_columns=["ground_truth"],
        features=Features({"prompt": MESSAGES, "completion": MESSAGES}),
        keep_in_memory=True,
        desc="writing SFT rows",
    )


def _reason_summary(counter: Counter) -> str:
    return ", ".join(f"{count} {code}" for code, count in sorted(counter.items()))


# ---------------------------------------------------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------------------------------------------------


def output_of(row: dict[str, Any]) -> str:
    """The reference assistant output of an RL or SFT row."""
    if "ground_truth" in row:
        return row["ground_truth"]
    return row["completion"][0]["content"]


def percentile(values: list[int], q: float) -> int:
    """Nearest-rank percentile (an actual value of the list), so small samples report real prompt lengths."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def split_stats(dataset: Dataset, kind: str, token_lengths: list[int] | None = None) -> dict[str, Any]:
    """Rows, the mix of outputs (calls only / response only / both), calls per row and prompt-token percentiles."""
    mix = Counter()
    calls = []
    for row in dataset:
        turn = grammar.parse_assistant_turn(output_of(row))
        mix[
            "both"
            if turn.has_tool_call and turn.has_response
            else "calls_only"
            if turn.has_tool_call
            else "response_only"
        ] += 1
        calls.append(len(turn.tool_calls or ()))
    rows = len(dataset)
    stats: dict[str, Any] = {
        "rows": rows,
        "calls_only": mix["calls_only"],
        "response_only": mix["response_only"],
        "both": mix["both"],
        "calls_per_row": sum(calls) / rows if rows else 0.0,
        "max_calls": max(calls, default=0),
    }
    if token_lengths:
        stats.update(
            prompt_tokens_p50=percentile(token_lengths, 50),
            prompt_tokens_p95=percentile(token_lengths, 95),
            prompt_tokens_max=max(token_lengths),
        )
    return stats


def format_report(prepared: PreparedData) -> str:
    """Plain-text tables for the CLI: what each source split lost and why, then the output splits."""
    lines = ["Source splits"]
    head = f"  {'source':<48} {'split':<6} {'layout':<17} {'rows in':>8} {'invalid':>8} {'too long':>9} {'kept':>7}"
    lines.append(head)
    for report in prepared.reports:
        name = report.source if len(report.source) <= 48 else "..." + report.source[-45:]
        lines.append(
            f"  {name:<48} {report.split:<6} {report.shape:<17} {report.rows_in:>8} {report.dropped_invalid:>8} "
            f"{report.too_long:>9} {report.rows_out:>7}"
        )
        for code, count in sorted(report.invalid.items()):
            lines.append(f"      dropped {count} invalid: {code}")
    lines.append("")
    lines.append(f"Output ({prepared.kind} rows{', test split cut from train' if prepared.split_made else ''})")
    lines.append(
        f"  {'split':<6} {'rows':>6} {'calls only':>11} {'resp. only':>11} {'both':>7} {'calls/row':>10} "
        f"{'max calls':>10} {'tok p50':>8} {'tok p95':>8} {'tok max':>8}"
    )
    for name, stats in prepared.stats().items():
        rows = stats["rows"] or 1

        def share(key: str, stats: dict = stats, rows: int = rows) -> str:
            return f"{100 * stats[key] / rows:.1f}%"

        tokens = [str(stats.get(key, "-")) for key in ("prompt_tokens_p50", "prompt_tokens_p95", "prompt_tokens_max")]
        lines.append(
            f"  {name:<6} {stats['rows']:>6} {share('calls_only'):>11} {share('response_only'):>11} {share('both'):>7} "
            f"{stats['calls_per_row']:>10.2f} {stats['max_calls']:>10} {tokens[0]:>8} {tokens[1]:>8} {tokens[2]:>8}"
        )
    return "\n".join(lines)
