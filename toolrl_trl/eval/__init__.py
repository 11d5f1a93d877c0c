"""Benchmark runners and scorers: BFCL (through bfcl-eval), API-Bank levels 1-3 and Bamboogle.

``recipes/evaluate.py`` generates and scores in one go (:func:`run_evaluation`) and prints the
paper's table; ``python -m toolrl_trl.eval score`` scores saved outputs alone. Every benchmark
has two protocols: ``paper`` (the paper's released evaluation scripts, the default) and
``project`` (this project's variant); ``docs/evaluation.md`` lists the differences. Modules:

* :mod:`.bfcl` - the paper's BFCL handler, bfcl-eval's data and checkers, v3 and v4 summaries;
* :mod:`.apibank` - the paper's API-Bank files, its soft match (quirks included) and a strict match;
* :mod:`.bamboogle` - the paper's search loop and judge, the project's loop, exact match / F1;
* :mod:`.search` - Serper-compatible HTTP search and offline BM25;
* :mod:`.generation` - HF transformers, vLLM and OpenAI-compatible backends, per-call token budgets;
* :mod:`.table` - the paper's table (JSON, Markdown), mean and spread over seeds;
* :mod:`.runner` - generate, save, score.
"""

from toolrl_trl.eval.common import EvalDataError, ScoreReport, read_predictions
from toolrl_trl.eval.generation import BACKENDS, Decoding, GenerationConfig, TokenBudget, build_backend
from toolrl_trl.eval.runner import BENCHMARKS, PROTOCOLS, EvalConfig, EvaluationResult, run_evaluation
from toolrl_trl.eval.table import PaperTable

__all__ = [
    "BACKENDS",
    "BENCHMARKS",
    "PROTOCOLS",
    "Decoding",
    "EvalConfig",
    "EvalDataError",
    "EvaluationResult",
    "GenerationConfig",
    "PaperTable",
    "ScoreReport",
    "TokenBudget",
    "build_backend",
    "read_predictions",
    "run_evaluation",
]
