"""Benchmark runners and scorers: BFCL (through bfcl-eval), API-Bank levels 1-3 and Bamboogle.

``recipes/evaluate.py`` generates and scores in one go (:func:`run_evaluation`);
``python -m toolrl_trl.eval score`` scores saved outputs alone. Modules:

* :mod:`.bfcl` - the paper's BFCL handler on the project's grammar, bfcl-eval's data and checkers;
* :mod:`.apibank` - the paper's API-Bank files, soft (paper) and strict match;
* :mod:`.bamboogle` - the multi-round search loop, exact match / F1 / optional LLM judge;
* :mod:`.search` - Serper-compatible HTTP search and offline BM25;
* :mod:`.generation` - HF transformers, vLLM and OpenAI-compatible backends;
* :mod:`.runner` - generate, save, score.
"""

from toolrl_trl.eval.common import EvalDataError, ScoreReport, read_predictions
from toolrl_trl.eval.generation import BACKENDS, GenerationConfig, build_backend
from toolrl_trl.eval.runner import BENCHMARKS, EvalConfig, run_evaluation

__all__ = [
    "BACKENDS",
    "BENCHMARKS",
    "EvalConfig",
    "EvalDataError",
    "GenerationConfig",
    "ScoreReport",
    "build_backend",
    "read_predictions",
    "run_evaluation",
]
