"""From a :class:`DataConfig` to validated, filtered, split TRL rows (and the numbers that describe them).

Order of operations, per source split: convert to canonical rows and validate (raise on the
first bad row, or drop and count), then apply ``max_prompt_length`` (when a tokenizer is given):
drop the longer prompts, or with ``prompt_truncation="left"`` keep their last tokens; then cut a
test split if the source has none (``split_method``: seeded ``train_test_split``, or the paper's
partition of the raw rows, which does not depend on what validation or the length filter
removed), take the ``max_*_samples`` subsets and write RL (``prompt`` + ``ground_truth``) or SFT
(``prompt`` + ``completion``) rows.

Left-truncated RL rows reach TRL as text: ``GRPOTrainer`` applies the chat template itself to
message prompts, which would rebuild the whole prompt, while a string prompt is tokenized as it
is (``processing_class(text=prompts)``). So with ``prompt_truncation="left"`` every RL prompt is
the chat-templated text (truncated or not, so a batch never mixes the two kinds), checked to
tokenize back to exactly the tokens the trainer must see, and the messages stay in
``prompt_messages`` (read back when a prepared folder is loaded again).
"""

from __future__ import annotations

import functools
import logging
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from datasets import Dataset, DatasetDict, Features, List, Value

from toolrl_trl import grammar, synthetic
from toolrl_trl.data.config import DataConfig
from toolrl_trl.data.sources import SYNTHETIC, SourceShape, detect_shape, get_shape, load_source
from toolrl_trl.data.validation import (
    DataSourceError,
    DataValidationError,
    RowError,
    check_kind,
    validate_output,
    validate_prompt,
)

logger = logging.getLogger(__name__)

MESSAGES = List({"role": Value("string"), "content": Value("string")})
_TOKENS = "_prompt_tokens"
_TEXT = "_prompt_text"
#: Native rows: the prompt rendered by the model's chat template (as ``apply_chat_template`` returns it) and the
#: reference turn rendered after it (SFT), both before the trainer's own tokenization.
_NATIVE = "_native_prompt"
_NATIVE_COMPLETION = "_native_completion"
_ROW = "_row"
_CANONICAL = Features(
    {
        "prompt": MESSAGES,
        "ground_truth": Value("string"),
        "_error": Value("string"),
        "_error_code": Value("string"),
        _ROW: Value("int64"),
    }
)
#: The seed of the paper's split (``np.random.seed(31415)`` in dataset/rlla_4k_raw/rlla.py).
PAPER_SPLIT_SEED = 31415
#: Column of left-truncated RL rows that keeps the prompt messages (``prompt`` is then the templated text).
PROMPT_MESSAGES = "prompt_messages"
#: Extra tokens a left-truncated prompt may give up so that its text tokenizes back to exactly its tokens.
_MAX_CUT_SHIFT = 32


@dataclass
class SplitReport:
    """What happened to one split of one source: rows in, rows dropped and why, rows kept.

    ``too_long``: rows dropped for a prompt over ``max_prompt_length``; ``truncated``: RL rows whose prompt
    was left-truncated to it instead; ``too_long_kept``: SFT rows over it kept whole (``prompt_truncation="left"``).
    """

    source: str
    split: str
    shape: str
    rows_in: int = 0
    invalid: Counter = field(default_factory=Counter)
    too_long: int = 0
    truncated: int = 0
    too_long_kept: int = 0
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
    With a ``tokenizer``, prompts longer than ``config.max_prompt_length`` tokens are dropped, or with
    ``prompt_truncation="left"`` (RL rows) left-truncated, ``prompt`` then being the chat-templated text and
    ``prompt_messages`` the messages. ``seed`` overrides ``config.dataset_seed`` (not the paper split's seed).
    """
    return prepare_datasets(config, kind, tokenizer, seed).datasets


def prepare_datasets(
    config: DataConfig, kind: str = "rl", tokenizer: Any = None, seed: int | None = None
) -> PreparedData:
    """:func:`build_datasets` plus the per-source report and token counts the CLI prints."""
    check_kind(kind)
    if config.output_format == "native" and tokenizer is None:
        raise ValueError(
            "output_format native renders every row with the model's chat template and tools=: pass the tokenizer "
            "(python -m toolrl_trl.data: --tokenizer MODEL)"
        )
    seed = config.dataset_seed if seed is None else seed
    reports: list[SplitReport] = []
    splits = _load_canonical(config, config.data_source, kind, tokenizer, seed, reports)
    if config.data_test_source:
        if "test" in splits:
            logger.info("data_test_source is set: ignoring the test split of %s", config.data_source)
        test_splits = _load_canonical(config, config.data_test_source, kind, tokenizer, seed, reports)
        splits["test"] = test_splits.get("test", test_splits["train"])
    split_made = "test" not in splits
    if split_made and config.split_method == "paper":
        raw_rows = next(r.rows_in for r in reports if r.source == config.data_source and r.split == "train")
        splits.update(_paper_split(splits["train"], raw_rows, config.test_size, config.data_source))
    elif split_made:
        splits.update(_split(splits["train"], config.test_size, seed))
    elif config.data_test_source:
        logger.info("the test split is data_test_source: test_size and split_method are not used")
    elif config.data_source != SYNTHETIC:
        logger.info("%s has its own test split: test_size and split_method are not used", config.data_source)
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
        _split_description(config, seed) if split_made else "",
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
        if config.output_format == "native":
            rows = _to_native(rows, tokenizer, kind, config.skip_invalid_rows, report)
        rows = _apply_length_limit(rows, tokenizer, config, kind, report)
        report.rows_out = len(rows)
        reports.append(report)
        logger.info(
            "%s [%s, %s]: %d rows in, %d dropped invalid%s, %d dropped too long, %d left-truncated (> %s prompt "
            "tokens)%s, %d rows out",
            source,
            name,
            report.shape,
            report.rows_in,
            report.dropped_invalid,
            f" ({_reason_summary(report.invalid)})" if report.invalid else "",
            report.too_long,
            report.truncated,
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
    out = {}
    for name, split_tasks in tasks.items():
        rows = synthetic.render_rows(split_tasks, "rl")
        # from_dict, not from_list: datasets cannot build an empty dataset from an empty list (synthetic_test_size=0)
        out[name] = Dataset.from_dict({key: [row[key] for row in rows] for key in features}, features=features)
    return out


def _canonical_row(row: dict[str, Any], index: int, shape: str, kind: str) -> dict[str, Any]:
    try:
        prompt, output = get_shape(shape).convert(row)
        prompt = validate_prompt(prompt)
        validate_output(output, kind)
    except RowError as err:
        return {"prompt": [], "ground_truth": "", "_error": err.reason, "_error_code": err.code, _ROW: index}
    return {"prompt": prompt, "ground_truth": output, "_error": "", "_error_code": "", _ROW: index}


def _map(dataset: Dataset, function: Any, added: dict[str, Any], *, remove_columns: Sequence[str] = (), **kwargs):
    """``dataset.map`` that also gives an empty dataset the columns in ``added`` (``map`` skips empty datasets)."""
    features = Features(
        {**{k: v for k, v in dataset.features.items() if k not in remove_columns and k not in added}, **added}
    )
    if len(dataset) == 0:
        return Dataset.from_dict({name: [] for name in features}, features=features)
    return dataset.map(function, remove_columns=list(remove_columns), features=features, **kwargs)


def _validate(dataset: Dataset, shape: SourceShape, kind: str, skip: bool, report: SplitReport) -> Dataset:
    """Canonical rows of ``dataset``; raise at the first invalid row unless ``skip``, then drop and count them."""
    converted = _map(
        dataset,
        _canonical_row,
        dict(_CANONICAL),
        with_indices=True,
        fn_kwargs={"shape": shape.name, "kind": kind},
        remove_columns=dataset.column_names,
        keep_in_memory=True,
        desc=f"validating {report.source} [{report.split}]",
    )
    return _drop_errors(converted, skip, report)


def _drop_errors(converted: Dataset, skip: bool, report: SplitReport) -> Dataset:
    """Rows without an ``_error_code``; raise at the first bad row unless ``skip``, then count and log them."""
    codes = list(converted["_error_code"])
    bad = [index for index, code in enumerate(codes) if code]
    if bad and not skip:
        first = bad[0]
        raise DataValidationError(
            report.source,
            report.split,
            int(converted[first][_ROW]),
            codes[first],
            converted[first]["_error"],
            more=len(bad) - 1,
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


def native_row(
    prompt: list[dict[str, Any]], ground_truth: str, tokenizer: Any, family: grammar.NativeFamily, kind: str
) -> tuple[str, str]:
    """A canonical row rendered in the model's own template: (prompt text, SFT completion text or "").

    The completion is what the template writes after the generation prompt, up to and including the
    tokenizer's end-of-sequence token (SFTTrainer appends one to a text completion that lacks it).
    Raises :class:`RowError` (``native_format``) for what the template cannot write.
    """
    try:
        messages, tools = grammar.native_chat(prompt, family)
        target = grammar.native_assistant_message(grammar.parse_assistant_turn(ground_truth), family)
    except grammar.GrammarError as err:
        raise RowError("native_format", str(err)) from None
    render = functools.partial(tokenizer.apply_chat_template, tools=tools, tokenize=False, **family.template_kwargs)
    prompt_text = render(messages, add_generation_prompt=True)
    if kind == "rl":
        return prompt_text, ""
    full = render([*messages, target])
    if not full.startswith(prompt_text):
        raise RowError("native_format", "the template does not render the reference turn after its generation prompt")
    completion = full[len(prompt_text) :]
    eos = tokenizer.eos_token
    if eos and eos in completion:
        completion = completion[: completion.index(eos) + len(eos)]
    return prompt_text, completion


def _to_native(dataset: Dataset, tokenizer: Any, kind: str, skip: bool, report: SplitReport) -> Dataset:
    """Canonical rows with their native renderings added (``_native_*`` columns); bad rows raise or are counted."""
    try:
        family = grammar.native_family(tokenizer)
    except grammar.GrammarError as err:
        raise ValueError(str(err)) from None
    prefix_text = tokenizer.decode(trainer_added_tokens(tokenizer)[0], skip_special_tokens=False)

    def render(row: dict[str, Any]) -> dict[str, Any]:
        try:
            prompt_text, completion = native_row(row["prompt"], row["ground_truth"], tokenizer, family, kind)
        except RowError as err:
            return {_NATIVE: "", _TEXT: "", _NATIVE_COMPLETION: "", "_error": err.reason, "_error_code": err.code}
        # The trainer tokenizes the text with the tokenizer's own additions (a BOS): keep the template's out of it.
        text = prompt_text[len(prefix_text) :] if prefix_text and prompt_text.startswith(prefix_text) else prompt_text
        return {_NATIVE: prompt_text, _TEXT: text, _NATIVE_COMPLETION: completion, "_error": "", "_error_code": ""}

    converted = _map(
        dataset,
        render,
        {key: Value("string") for key in (_NATIVE, _TEXT, _NATIVE_COMPLETION, "_error", "_error_code")},
        keep_in_memory=True,
        desc=f"rendering {report.source} [{report.split}] in the {family.name} template",
    )
    return _drop_errors(converted, skip, report)


def _templated_prompts(batch: dict[str, list], tokenizer: Any) -> list[str]:
    """Each prompt as the chat template renders it: the native rendering when the rows have one."""
    if _NATIVE in batch:
        return batch[_NATIVE]
    return tokenizer.apply_chat_template(batch["prompt"], add_generation_prompt=True, tokenize=False)


def _prompt_token_counts(batch: dict[str, list], tokenizer: Any) -> dict[str, list[int]]:
    if _NATIVE in batch:
        return {_TOKENS: [len(tokenizer(text, add_special_tokens=False)["input_ids"]) for text in batch[_NATIVE]]}
    ids = tokenizer.apply_chat_template(batch["prompt"], add_generation_prompt=True, tokenize=True, return_dict=False)
    return {_TOKENS: [len(row) for row in ids]}


def _apply_length_limit(
    dataset: Dataset, tokenizer: Any, config: DataConfig, kind: str, report: SplitReport
) -> Dataset:
    """Count chat-templated prompt tokens (as the trainer will see them), then drop or left-truncate the long ones."""
    if tokenizer is None:
        return dataset
    max_length = config.max_prompt_length
    if config.prompt_truncation == "left" and kind == "rl" and max_length is not None:
        return _truncate_left(dataset, tokenizer, max_length, report)
    dataset = _map(
        dataset,
        _prompt_token_counts,
        {_TOKENS: Value("int64")},
        batched=True,
        fn_kwargs={"tokenizer": tokenizer},
        keep_in_memory=True,
        desc=f"counting prompt tokens of {report.source} [{report.split}]",
    )
    if max_length is None:
        return dataset
    lengths = list(dataset[_TOKENS])
    keep = [index for index, length in enumerate(lengths) if length <= max_length]
    over = len(lengths) - len(keep)
    if not over:
        return dataset
    if config.prompt_truncation == "left":  # SFT rows: the trainer's max_length bounds prompt + completion
        report.too_long_kept = over
        logger.warning(
            "%s [%s]: %d SFT row(s) have a prompt over max_prompt_length=%d tokens (longest: %d): kept whole, since "
            "prompt_truncation=left cuts RL prompts only; SFTConfig.max_length bounds SFT sequences",
            report.source,
            report.split,
            over,
            max_length,
            max(lengths),
        )
        return dataset
    report.too_long = over
    logger.warning(
        "%s [%s]: dropped %d row(s) whose prompt exceeds max_prompt_length=%d tokens (longest: %d)",
        report.source,
        report.split,
        over,
        max_length,
        max(lengths),
    )
    return dataset.select(keep)


def trainer_added_tokens(tokenizer: Any) -> tuple[list[int], list[int]]:
    """The token ids ``tokenizer(text)`` puts before and after the text's own tokens (a BOS, say).

    ``GRPOTrainer`` tokenizes a text prompt with ``processing_class(text=prompts)``, so these come with it.
    """
    bare = list(tokenizer("a", add_special_tokens=False)["input_ids"])
    full = list(tokenizer("a")["input_ids"])
    for start in range(len(full) - len(bare) + 1):
        if full[start : start + len(bare)] == bare:
            return full[:start], full[start + len(bare) :]
    raise ValueError(f"cannot tell which special tokens {type(tokenizer).__name__} adds to a text: {full} vs {bare}")


def left_truncated_prompt(
    template_ids: Sequence[int], text: str, tokenizer: Any, max_length: int, prefix: Sequence[int]
) -> tuple[str, list[int], int]:
    """A text that the trainer tokenizes to at most ``max_length`` tokens: the end of the templated prompt.

    ``template_ids``/``text``: the chat-templated prompt as tokens and as text; ``prefix``: the tokens the
    tokenizer adds in front of any text (:func:`trainer_added_tokens`). Returns the text, the token ids the
    trainer will see (``prefix`` + the last ``max_length - len(prefix)`` template tokens when the prompt is
    longer, else the whole prompt) and how many extra tokens were given up: a cut that splits a character or a
    merge would not tokenize back to the same tokens, so the cut moves right until it does (0 almost always).
    """
    prefix = list(prefix)
    body = list(template_ids)
    prefix_text = tokenizer.decode(prefix, skip_special_tokens=False) if prefix else ""
    if prefix and body[: len(prefix)] == prefix and text.startswith(prefix_text):
        body, text = body[len(prefix) :], text[len(prefix_text) :]
    keep = max_length - len(prefix)
    if keep <= 0:
        raise ValueError(
            f"max_prompt_length={max_length} leaves no room after the {len(prefix)} token(s) the tokenizer adds to "
            "every text; raise max_prompt_length"
        )
    if len(body) <= keep:
        return text, prefix + body, 0
    for shift in range(_MAX_CUT_SHIFT):
        kept = body[len(body) - keep + shift :]
        candidate = tokenizer.decode(kept, skip_special_tokens=False, clean_up_tokenization_spaces=False)
        if list(tokenizer(candidate, add_special_tokens=False)["input_ids"]) == kept:
            return candidate, prefix + kept, shift
    raise ValueError(
        f"no cut within {_MAX_CUT_SHIFT} tokens of the left-truncation point gives a text that tokenizes back to "
        "the same tokens; use prompt_truncation=drop with this tokenizer"
    )


def _truncate_left(dataset: Dataset, tokenizer: Any, max_length: int, report: SplitReport) -> Dataset:
    """RL rows with ``_prompt_text`` (what the trainer tokenizes) kept to the last ``max_length`` prompt tokens."""
    prefix, suffix = trainer_added_tokens(tokenizer)
    if suffix:
        raise ValueError(
            f"prompt_truncation=left gives GRPOTrainer text prompts, and this tokenizer appends {suffix} to every text "
            "it encodes, which would end each prompt; use prompt_truncation=drop with this tokenizer"
        )

    def render(batch: dict[str, list], indices: list[int]) -> dict[str, list]:
        texts = _templated_prompts(batch, tokenizer)
        out: dict[str, list] = {_TEXT: [], _TOKENS: [], "_full": [], "_shift": []}
        for index, text in zip(indices, texts, strict=True):
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
            try:
                kept_text, seen, shift = left_truncated_prompt(ids, text, tokenizer, max_length, prefix)
            except ValueError as err:
                raise ValueError(f"{report.source}: split {report.split!r}, row {index}: {err}") from None
            out[_TEXT].append(kept_text)
            out[_TOKENS].append(len(seen))
            out["_full"].append(len(ids) + (0 if ids[: len(prefix)] == prefix else len(prefix)))
            out["_shift"].append(shift)
        return out

    dataset = _map(
        dataset,
        render,
        {_TEXT: Value("string"), _TOKENS: Value("int64"), "_full": Value("int64"), "_shift": Value("int64")},
        batched=True,
        with_indices=True,
        keep_in_memory=True,
        desc=f"templating and left-truncating prompts of {report.source} [{report.split}]",
    )
    full, shifts = list(dataset["_full"]), list(dataset["_shift"])
    dataset = dataset.remove_columns(["_full", "_shift"])
    report.truncated = sum(length > max_length for length in full)
    if report.truncated:
        moved = sum(shift > 0 for shift in shifts)
        logger.warning(
            "%s [%s]: left-truncated %d prompt(s) longer than max_prompt_length=%d tokens (longest: %d) to their last "
            "%d tokens%s",
            report.source,
            report.split,
            report.truncated,
            max_length,
            max(full),
            max_length,
            f"; {moved} of them keep up to {max(shifts)} fewer, where the exact cut would not tokenize back the same"
            if moved
            else "",
        )
    return dataset


def paper_split_indices(num_rows: int, test_size: float = 0.02) -> tuple[list[int], list[int]]:
    """The paper's partition of ``num_rows`` raw rows (dataset/rlla_4k_raw/rlla.py): (train, test) row indices.

    The raw list is shuffled in place by numpy's legacy ``np.random.seed(31415); np.random.shuffle(list)`` and
    the last ``int(num_rows * test_size)`` rows are the test split; both keep the shuffled order. This uses its
    own ``RandomState(31415)``, which draws the same sequence, and leaves numpy's global state alone.
    """
    held_out = int(num_rows * test_size)
    if held_out == 0:
        raise ValueError(f"int({num_rows} * {test_size}) = 0 rows to hold out")
    order = list(range(num_rows))
    np.random.RandomState(PAPER_SPLIT_SEED).shuffle(order)
    return order[:-held_out], order[-held_out:]


def _paper_split(dataset: Dataset, raw_rows: int, test_size: float, source: str) -> dict[str, Dataset]:
    if test_size == 0:
        return {"train": dataset, "test": dataset.select([])}
    if int(raw_rows * test_size) == 0:
        smallest = math.ceil(1 / test_size)
        while int(smallest * test_size) == 0:
            smallest += 1
        raise DataSourceError(
            f"{source}: split_method=paper holds out int({raw_rows} rows x test_size {test_size}) = 0 rows, and the "
            f"paper's slicing (dataset[:-0], dataset[-0:]) would then put all {raw_rows} rows in the test split and "
            f"none in train. Use a source of at least {smallest} rows, split_method=random, or test_size=0 for no "
            "test split."
        )
    train_rows, test_rows = paper_split_indices(raw_rows, test_size)
    rows = list(dataset[_ROW])
    position = {row: index for index, row in enumerate(rows)}
    parts = {
        "train": dataset.select([position[row] for row in train_rows if row in position]),
        "test": dataset.select([position[row] for row in test_rows if row in position]),
    }
    logger.info(
        "%s: paper split of %d raw rows (np.random.seed(%d) shuffle, last %d held out): train %d, test %d after "
        "validation and the length filter",
        source,
        raw_rows,
        PAPER_SPLIT_SEED,
        len(test_rows),
        len(parts["train"]),
        len(parts["test"]),
    )
    return parts


def save_datasets(datasets: DatasetDict, path: str) -> None:
    """``datasets.save_to_disk(path)``, with the one shard an empty split needs to load back.

    ``datasets`` writes an empty split as zero shards, which ``load_from_disk`` then fails on (IndexError).
    """
    datasets.save_to_disk(path, num_shards={name: 1 if len(split) == 0 else None for name, split in datasets.items()})


def _split_description(config: DataConfig, seed: int) -> str:
    if config.split_method == "paper":
        return f" (test cut from train by the paper's split: seed {PAPER_SPLIT_SEED}, test_size={config.test_size})"
    return f" (test cut from train with test_size={config.test_size}, seed={seed})"


def _split(dataset: Dataset, test_size: float, seed: int) -> dict[str, Dataset]:
    if test_size == 0 or len(dataset) == 0:
        return {"train": dataset, "test": dataset.select([])}
    if math.ceil(test_size * len(dataset)) >= len(dataset):
        logger.warning("only %d row(s): too few to cut a test split, the test split is empty", len(dataset))
        return {"train": dataset, "test": dataset.select([])}
    parts = dataset.train_test_split(test_size=test_size, seed=seed, shuffle=True)
    return {"train": parts["train"], "test": parts["test"]}


def _finalize(dataset: Dataset, kind: str) -> Dataset:
    dataset = dataset.remove_columns([name for name in (_TOKENS, _ROW, _NATIVE) if name in dataset.column_names])
    if kind == "sft" and _NATIVE_COMPLETION in dataset.column_names:
        # Native SFT rows are text (the template's rendering); the paper-format row rides along, so a saved folder
        # loads back (convert_trl_rows reads prompt_messages + ground_truth) and renders again.
        dataset = dataset.rename_column("prompt", PROMPT_MESSAGES).rename_column(_TEXT, "prompt")
        dataset = dataset.rename_column(_NATIVE_COMPLETION, "completion")
        return dataset.select_columns(["prompt", "completion", PROMPT_MESSAGES, "ground_truth"])
    if _NATIVE_COMPLETION in dataset.column_names:
        dataset = dataset.remove_columns([_NATIVE_COMPLETION])
    if kind == "rl" and _TEXT in dataset.column_names:
        dataset = dataset.rename_column("prompt", PROMPT_MESSAGES).rename_column(_TEXT, "prompt")
        return dataset.select_columns(["prompt", "ground_truth", PROMPT_MESSAGES])
    if kind == "rl":
        return dataset.select_columns(["prompt", "ground_truth"])
    return _map(
        dataset,
        lambda output: {"completion": [{"role": "assistant", "content": output}]},
        {"completion": MESSAGES},
        input_columns="ground_truth",
        remove_columns=["ground_truth"],
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
    head = (
        f"  {'source':<48} {'split':<6} {'layout':<17} {'rows in':>8} {'invalid':>8} {'too long':>9} "
        f"{'truncated':>10} {'kept':>7}"
    )
    lines.append(head)
    for report in prepared.reports:
        name = report.source if len(report.source) <= 48 else "..." + report.source[-45:]
        lines.append(
            f"  {name:<48} {report.split:<6} {report.shape:<17} {report.rows_in:>8} {report.dropped_invalid:>8} "
            f"{report.too_long:>9} {report.truncated:>10} {report.rows_out:>7}"
        )
        for code, count in sorted(report.invalid.items()):
            lines.append(f"      dropped {count} invalid: {code}")
        if report.too_long_kept:
            lines.append(f"      kept {report.too_long_kept} SFT row(s) over max_prompt_length whole")
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
