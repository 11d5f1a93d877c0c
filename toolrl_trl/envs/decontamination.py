"""Decontamination: no training task may ask what a BFCL multi-turn question asks, word for word or nearly.

The BFCL environments (:mod:`toolrl_trl.envs.bfcl_envs`) run BFCL's own API classes, so a generated task that
copied one of BFCL's multi-turn questions would train on the benchmark. This module compares every generated
question with every user turn of bfcl-eval's multi-turn data files (``BFCL_v4_multi_turn_*.json`` and the unused
``multi_turn_composite`` set, read from the installed package), after normalising both texts (NFKC, lower case,
every run of non-alphanumerics one space).

Similarity is over character 5-gram sets of the normalised texts. A pair is *contaminated* when either

* Jaccard(generated, BFCL) >= :data:`JACCARD_THRESHOLD` (0.4): an exact copy scores 1.0; of 300 BFCL
  questions (>= 40 characters) with 1, 2 or 3 words replaced, 100%, 98% and 93% still score >= 0.4
  (``--calibrate``), while this project's 12,000 templated questions of seeds 0 and 1 score at most 0.217
  (requests that share domain words such as "ticket" or "parking brake" stay far below); or
* the BFCL question is at least :data:`MIN_CONTAINED_CHARS` (60) normalised characters long and
  >= :data:`CONTAINMENT_THRESHOLD` (0.8) of its 5-grams occur in the generated question: a BFCL question pasted
  into a longer one. (Short BFCL turns such as "create a file" are left to the Jaccard test: containing them
  says nothing.)

Candidates come from an inverted 5-gram index, so a check costs one pass over each question's n-gram postings
(2-3 ms per question against BFCL's 1,734 distinct turns, measured on a shared CPU).

``python -m toolrl_trl.envs.decontamination`` checks the project's generated BFCL tasks (or ``--rows`` files),
prints the counts (tasks checked, BFCL questions, the highest similarities found, offending pairs) and exits 1
when it finds contamination, 2 when BFCL's data is missing.
"""

from __future__ import annotations

import collections
import importlib.util
import json
import logging
import random
import re
import sys
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

NGRAM = 5
JACCARD_THRESHOLD = 0.4
CONTAINMENT_THRESHOLD = 0.8
MIN_CONTAINED_CHARS = 60
#: bfcl-eval's multi-turn question files (relative to its ``data`` directory); possible_answer files hold no text.
QUESTION_GLOBS = ("BFCL_v4_multi_turn_*.json", "unused_datasets/question/BFCL_v4_multi_turn_*.json")


class BfclDataMissingError(FileNotFoundError):
    """bfcl-eval's multi-turn data files are not installed, so nothing can be checked."""


class ContaminationError(ValueError):
    """Generated tasks ask (nearly) what BFCL multi-turn questions ask."""

    def __init__(self, report: DecontaminationReport):
        pairs = "; ".join(f"{m.bfcl_id}: {m.question[:80]!r}" for m in report.offending[:3])
        super().__init__(f"{len(report.offending)} generated question(s) match BFCL multi-turn questions ({pairs})")
        self.report = report


def normalise(text: str) -> str:
    """Lower-cased NFKC text with every run of non-alphanumerics one space (what is compared)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(re.sub(r"[^0-9a-z]+", " ", text).split())


def ngrams(text: str, n: int = NGRAM) -> frozenset[str]:
    """The character n-grams of normalised ``text`` (the whole text when it is shorter than ``n``)."""
    if len(text) <= n:
        return frozenset([text]) if text else frozenset()
    return frozenset(text[i : i + n] for i in range(len(text) - n + 1))


@dataclass(frozen=True)
class BfclQuestion:
    """One distinct user turn of BFCL's multi-turn data (the first entry id that has it)."""

    entry_id: str
    text: str


def bfcl_data_dir() -> Path | None:
    """The installed bfcl-eval's ``data`` directory (found without importing the package), or None."""
    spec = importlib.util.find_spec("bfcl_eval")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "data"
    return path if path.is_dir() else None


def load_bfcl_questions(data_dir: str | Path | None = None) -> list[BfclQuestion]:
    """Every distinct user turn of BFCL's multi-turn question files (deduplicated on normalised text)."""
    root = Path(data_dir) if data_dir is not None else bfcl_data_dir()
    files = sorted({path for pattern in QUESTION_GLOBS for path in root.glob(pattern)}) if root else []
    if not files:
        raise BfclDataMissingError(
            f"no BFCL multi-turn question files ({', '.join(QUESTION_GLOBS)}) under "
            f"{root if root else 'an installed bfcl_eval package'}; install bfcl-eval: "
            'pip install --no-deps "bfcl-eval==2026.3.23"'
        )
    seen: dict[str, BfclQuestion] = {}
    for path in files:
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            entry = json.loads(line)
            for turn in entry.get("question", []):
                for message in turn:
                    if message.get("role") == "user" and isinstance(message.get("content"), str):
                        text = normalise(message["content"])
                        if text and text not in seen:
                            seen[text] = BfclQuestion(entry["id"], message["content"])
    logger.debug("%d distinct BFCL multi-turn user turns from %d files", len(seen), len(files))
    return list(seen.values())


@dataclass(frozen=True)
class Match:
    """A generated question and its most similar BFCL question."""

    index: int
    question: str
    bfcl_id: str
    bfcl_question: str
    jaccard: float
    containment: float


class NgramIndex:
    """BFCL questions indexed by character n-gram, for the nearest one to a question in one pass over postings."""

    def __init__(self, questions: Sequence[BfclQuestion], n: int = NGRAM):
        self.questions = list(questions)
        self.n = n
        texts = [normalise(q.text) for q in self.questions]
        self.grams = [ngrams(text, n) for text in texts]
        self.long_enough = [len(text) >= MIN_CONTAINED_CHARS for text in texts]
        self.postings: dict[str, list[int]] = collections.defaultdict(list)
        for position, grams in enumerate(self.grams):
            for gram in grams:
                self.postings[gram].append(position)

    def nearest(self, text: str) -> tuple[int, float, float] | None:
        """``(position, jaccard, containment)`` of the closest BFCL question (by Jaccard), None if none shares a gram.

        ``containment`` is the largest share of a long-enough BFCL question's grams found in ``text``, over all of
        them (it need not be the same question as the Jaccard one; the position is the Jaccard one's).
        """
        grams = ngrams(normalise(text), self.n)
        shared: collections.Counter[int] = collections.Counter()
        for gram in grams:
            shared.update(self.postings.get(gram, ()))
        if not shared:
            return None
        best, best_jaccard, best_containment = -1, -1.0, 0.0
        for position, count in shared.items():
            other = self.grams[position]
            jaccard = count / (len(grams) + len(other) - count)
            if jaccard > best_jaccard:
                best, best_jaccard = position, jaccard
            if self.long_enough[position]:
                best_containment = max(best_containment, count / len(other))
        return best, best_jaccard, best_containment


@dataclass
class DecontaminationReport:
    """What a check found: counts, the highest similarities and every offending pair."""

    tasks_checked: int
    bfcl_questions: int
    max_jaccard: float
    max_containment: float
    closest: Match | None
    offending: list[Match] = field(default_factory=list)
    jaccard_threshold: float = JACCARD_THRESHOLD
    containment_threshold: float = CONTAINMENT_THRESHOLD

    def summary(self) -> str:
        """One line per figure, for logs and the CLI."""
        lines = [
            f"tasks checked: {self.tasks_checked}",
            f"BFCL multi-turn questions: {self.bfcl_questions}",
            f"max 5-gram Jaccard: {self.max_jaccard:.3f} (threshold {self.jaccard_threshold})",
            f"max containment of a BFCL question (>= {MIN_CONTAINED_CHARS} chars): {self.max_containment:.3f} "
            f"(threshold {self.containment_threshold})",
            f"offending pairs: {len(self.offending)}",
        ]
        if self.closest is not None:
            lines.append(
                f"closest pair: {self.closest.question!r} ~ {self.closest.bfcl_id} {self.closest.bfcl_question!r}"
            )
        for match in self.offending[:10]:
            lines.append(
                f"  OFFENDING (jaccard {match.jaccard:.3f}, containment {match.containment:.3f}): "
                f"{match.question!r} ~ {match.bfcl_id} {match.bfcl_question!r}"
            )
        return "\n".join(lines)


_INDEX_CACHE: dict[str, NgramIndex] = {}


def bfcl_index(data_dir: str | Path | None = None) -> NgramIndex:
    """The n-gram index of BFCL's multi-turn questions (built once per data directory)."""
    key = str(data_dir) if data_dir is not None else ""
    if key not in _INDEX_CACHE:
        _INDEX_CACHE[key] = NgramIndex(load_bfcl_questions(data_dir))
    return _INDEX_CACHE[key]


def check_questions(
    questions: Iterable[str],
    index: NgramIndex | None = None,
    jaccard_threshold: float = JACCARD_THRESHOLD,
    containment_threshold: float = CONTAINMENT_THRESHOLD,
) -> DecontaminationReport:
    """Compare each question with BFCL's; the report lists every pair over a threshold in ``offending``."""
    index = index if index is not None else bfcl_index()
    report = DecontaminationReport(
        0, len(index.questions), 0.0, 0.0, None, [], jaccard_threshold, containment_threshold
    )
    for position, question in enumerate(questions):
        report.tasks_checked += 1
        found = index.nearest(question)
        if found is None:
            continue
        nearest, jaccard, containment = found
        bfcl = index.questions[nearest]
        match = Match(position, question, bfcl.entry_id, bfcl.text, round(jaccard, 6), round(containment, 6))
        if jaccard > report.max_jaccard or report.closest is None:
            report.max_jaccard, report.closest = jaccard, match
        report.max_containment = max(report.max_containment, containment)
        if jaccard >= jaccard_threshold or containment >= containment_threshold:
            report.offending.append(match)
    return report


def row_questions(rows: Iterable[dict[str, Any]]) -> list[str]:
    """The user turns of each row's prompt (what the model is asked), in order."""
    return [
        message["content"]
        for row in rows
        for message in row["prompt"]
        if message.get("role") == "user" and isinstance(message.get("content"), str)
    ]


def check_rows(rows: Iterable[dict[str, Any]], index: NgramIndex | None = None) -> DecontaminationReport:
    """:func:`check_questions` over the user turns of protocol rows."""
    return check_questions(row_questions(rows), index)


def assert_clean(rows: Iterable[dict[str, Any]], index: NgramIndex | None = None) -> DecontaminationReport:
    """The report for ``rows``; raises :class:`ContaminationError` when a question matches a BFCL one."""
    report = check_rows(rows, index)
    if report.offending:
        raise ContaminationError(report)
    logger.info(
        "decontamination: %d question(s) vs %d BFCL multi-turn questions, max Jaccard %.3f, max containment %.3f",
        report.tasks_checked,
        report.bfcl_questions,
        report.max_jaccard,
        report.max_containment,
    )
    return report


#: Words an edited copy gets in place of the original ones (any words not in the question would do).
EDIT_WORDS = ("blue", "seven", "quickly", "report", "tomorrow", "Maria")


def edited_copy_recall(
    index: NgramIndex,
    words_replaced: int,
    sample: int = 300,
    seed: int = 0,
    threshold: float = JACCARD_THRESHOLD,
    min_chars: int = 40,
) -> float:
    """Share of BFCL questions (>= ``min_chars``) still flagged after replacing ``words_replaced`` random words.

    This is how :data:`JACCARD_THRESHOLD` was chosen: high recall on lightly edited copies, far above the
    similarity of the generated questions.
    """
    rng = random.Random(f"edited-copies:{seed}")
    pool = [q for q in index.questions if len(normalise(q.text)) >= min_chars]
    caught = 0
    chosen = rng.sample(pool, min(sample, len(pool)))
    for question in chosen:
        words = question.text.split()
        for _ in range(words_replaced):
            words[rng.randrange(len(words))] = rng.choice(EDIT_WORDS)
        found = index.nearest(" ".join(words))
        caught += found is not None and found[1] >= threshold
    return caught / len(chosen)


@dataclass
class DecontaminationArguments:
    """Options of ``python -m toolrl_trl.envs.decontamination``."""

    rows: list[str] = field(
        default_factory=list,
        metadata={"help": "JSON/JSONL files of protocol rows to check; none: the generated BFCL tasks (see --n)."},
    )
    n: int = field(default=2000, metadata={"help": "Generated tasks per BFCL environment when no --rows are given."})
    seeds: list[int] = field(default_factory=lambda: [0, 1], metadata={"help": "Generator seeds to check."})
    calibrate: bool = field(
        default=False,
        metadata={"help": "Also print how many lightly edited BFCL questions (1-3 words replaced) are still caught."},
    )
    bfcl_data_dir: str | None = field(
        default=None, metadata={"help": "bfcl-eval's data directory; default: the installed package's."}
    )


def _read_rows(path: str) -> list[dict[str, Any]]:
    text = Path(path).read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    """Print the check's counts; exit 1 on contamination, 2 without BFCL's data."""
    from transformers import HfArgumentParser

    from toolrl_trl.cli import configure_logging

    (args,) = HfArgumentParser(DecontaminationArguments).parse_args_into_dataclasses(args=argv)
    configure_logging()
    try:
        index = bfcl_index(args.bfcl_data_dir)
    except BfclDataMissingError as err:
        print(f"cannot check: {err}", file=sys.stderr)
        return 2
    if args.rows:
        rows = [row for path in args.rows for row in _read_rows(path)]
    else:
        from toolrl_trl.envs.bfcl_envs import BFCL_ENVS, generate_tasks

        rows = [row for seed in args.seeds for env in BFCL_ENVS for row in generate_tasks(env, args.n, seed)]
    report = check_rows(rows, index)
    print(report.summary())
    if args.calibrate:
        for replaced in (1, 2, 3):
            recall = edited_copy_recall(index, replaced)
            print(f"edited copies caught ({replaced} word(s) replaced, 300 BFCL questions >= 40 chars): {recall:.3f}")
    return 1 if report.offending else 0


if __name__ == "__main__":
    sys.exit(main())
