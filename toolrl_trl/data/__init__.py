"""Data layer: any supported source in, validated TRL rows out.

RL rows are ``prompt`` (``[system, user]`` messages) + ``ground_truth`` (the reference
assistant output in the ToolRL grammar); SFT rows are ``prompt`` + ``completion`` (one
assistant message). See :func:`build_datasets` and ``python -m toolrl_trl.data --help``.
"""

from toolrl_trl.data.config import DataConfig
from toolrl_trl.data.pipeline import (
    PreparedData,
    SplitReport,
    build_datasets,
    format_report,
    output_of,
    prepare_datasets,
    split_stats,
    synthetic_tasks,
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
    "PLACEHOLDER_THINK",
    "REASONS",
    "SHAPES",
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
    "load_source",
    "output_of",
    "prepare_datasets",
    "split_stats",
    "synthetic_tasks",
    "validate_output",
    "validate_prompt",
]
