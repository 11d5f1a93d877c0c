"""Data layer: any supported source in, validated TRL rows out.

RL rows are ``prompt`` (``[system, user]`` messages) + ``ground_truth`` (the reference
assistant output in the ToolRL grammar); SFT rows are ``prompt`` + ``completion`` (one
assistant message). With ``prompt_truncation="left"`` and a tokenizer, an RL ``prompt`` is the
chat-templated text instead, left-truncated to ``max_prompt_length`` tokens, and the messages
are in ``prompt_messages``. See :func:`build_datasets` and ``python -m toolrl_trl.data --help``.
"""

from toolrl_trl.data.config import PROMPT_TRUNCATIONS, SPLIT_METHODS, DataConfig
from toolrl_trl.data.pipeline import (
    PAPER_SPLIT_SEED,
    PROMPT_MESSAGES,
    PreparedData,
    SplitReport,
    build_datasets,
    format_report,
    left_truncated_prompt,
    output_of,
    paper_split_indices,
    prepare_datasets,
    save_datasets,
    split_stats,
    synthetic_tasks,
    trainer_added_tokens,
)
from toolrl_trl.data.sources import PLACEHOLDER_THINK, SHAPES, SourceShape, detect_shape, load_source
from toolrl_trl.data.validation import (
    REASONS,
    DataSourceError,
    DataValidationError,
    RowError,
    validate_output,
    validate_prompt,
)

__all__ = [
    "PAPER_SPLIT_SEED",
    "PLACEHOLDER_THINK",
    "PROMPT_MESSAGES",
    "PROMPT_TRUNCATIONS",
    "REASONS",
    "SHAPES",
    "SPLIT_METHODS",
    "DataConfig",
    "DataSourceError",
    "DataValidationError",
    "PreparedData",
    "RowError",
    "SourceShape",
    "SplitReport",
    "build_datasets",
    "detect_shape",
    "format_report",
    "left_truncated_prompt",
    "load_source",
    "output_of",
    "paper_split_indices",
    "prepare_datasets",
    "save_datasets",
    "split_stats",
    "synthetic_tasks",
    "trainer_added_tokens",
    "validate_output",
    "validate_prompt",
]
