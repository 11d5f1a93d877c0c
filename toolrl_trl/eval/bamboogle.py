"""Bamboogle: multi-hop questions answered with a search tool over several rounds, as in the paper.

The model sees the ToolRL system prompt listing one ``search`` tool. Each round it either calls
the tool (the results come back as an ``<obs>`` entry of the dialogue history, and it goes on)
or answers; the run stops at the answer or after ``max_rounds`` rounds. The answer is the last
``<response>`` (else the text after the thoughts). Scoring: normalised exact match and token F1
(SQuAD normalisation), plus an optional LLM judge on any OpenAI-compatible chat endpoint (the
paper judged with a model; exact match is the offline default). The average number of tool
calls per question is reported as well.
"""

from __future__ import annotations

import logging
import os
import re
import string
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolrl_trl import grammar
from toolrl_trl.eval.common import (
    EvalDataError,
    ScoreReport,
    format_percent,
    format_table,
    fraction,
    item_index,
    load_json,
    post_json,
)
from toolrl_trl.eval.search import SearchError, SearchTool

logger = logging.getLogger(__name__)

SEARCH_TOOL = grammar.ToolSpec(
    name="search",
    description="Search the web with a query and return the top results (title and snippet) as a list.",
    parameters={"query": {"type": "string", "description": "The search query."}},
)
QUESTION_TEMPLATE = (
    "{question}\nUse the search tool as many times as you need, then give the final answer, as short as possible "
    "(a name, a date, a number), in <response>."
)
DEFAULT_MAX_ROUNDS = 5
DEFAULT_TOP_K = 3


def load_bamboogle(source: str | Path) -> list[dict[str, Any]]:
    """Items ``{"id": index, "question", "answer"}`` from a JSON list of ``{"Question", "Answer"}``."""
    data = load_json(source)
    if not isinstance(data, list):
        raise EvalDataError(f"{source}: expected a JSON list of items, got {type(data).__name__}")
    items = []
    for index, row in enumerate(data):
        if not isinstance(row, dict):
            raise EvalDataError(f"{source}: item {index} is a {type(row).__name__}, expected an object")
        for key in ("Question", "Answer"):
            if not isinstance(row.get(key), str):
                raise EvalDataError(f"{source}: item {index} lacks the {key!r} string")
        items.append({"id": index, "question": row["Question"], "answer": row["Answer"]})
    return items


class BamboogleEpisode:
    """One question's search loop: ``prompt()`` -> model text -> ``observe(text)`` until ``done``."""

    def __init__(
        self, question: str, search: SearchTool, max_rounds: int = DEFAULT_MAX_ROUNDS, top_k: int = DEFAULT_TOP_K
    ):
        self.search, self.max_rounds, self.top_k = search, max_rounds, top_k
        self.history = [
            f"{grammar.USER_OPEN} {QUESTION_TEMPLATE.format(question=question.strip())} {grammar.USER_CLOSE}"
        ]
        self.transcript: list[dict[str, Any]] = []
        self.tool_calls = 0
        self.rounds = 0
        self.done = False
        self.output = ""

    def prompt(self) -> list[dict[str, str]]:
        return [
            {"role": "system", "content": grammar.render_system_prompt([SEARCH_TOOL])},
            {"role": "user", "content": grammar.render_user_message(self.history)},
        ]

    def observe(self, text: str) -> None:
        self.rounds += 1
        self.output = text
        self.transcript.append({"role": "assistant", "content": text})
        calls = grammar.parse_tool_calls_lenient(text)
        if not calls or self.rounds >= self.max_rounds:
            self.done = True
            return
        self.tool_calls += len(calls)
        results = [self._run(call) for call in calls]
        observation = grammar.render_observation(results if len(results) > 1 else results[0])
        self.transcript.append({"role": "observation", "content": observation})
        self.history += [text.strip(), observation]

    def _run(self, call: dict[str, Any]) -> Any:
        if call["name"] != SEARCH_TOOL.name:
            return {"error": f"unknown tool {call['name']!r}; the only tool is {SEARCH_TOOL.name!r}"}
        query = call["parameters"].get("query")
        if not isinstance(query, str) or not query.strip():
            return {"error": "the search tool needs a non-empty 'query' string"}
        try:
            return [r.to_dict() for r in self.search.search(query, self.top_k)]
        except SearchError as err:
            logger.warning("search failed: %s", err)
            return {"error": str(err)}


def run_episodes(
    questions: Sequence[str],
    generate: Callable[[list[list[dict[str, str]]]], list[str]],
    search: SearchTool,
    max_rounds: int = DEFAULT_MAX_ROUNDS,
    top_k: int = DEFAULT_TOP_K,
) -> list[BamboogleEpisode]:
    """Run every question's loop in lock-step, one batched model call per round."""
    episodes = [BamboogleEpisode(q, search, max_rounds, top_k) for q in questions]
    while active := [e for e in episodes if not e.done]:
        for episode, output in zip(active, generate([e.prompt() for e in active]), strict=True):
            episode.observe(output)
    return episodes


# ---------------------------------------------------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------------------------------------------------


def extract_answer(text: Any) -> str:
    """The final answer: the last ``<response>`` block, else the text after ``</think>``, tags removed."""
    if not isinstance(text, str):
        return ""
    if grammar.RESPONSE_OPEN in text:
        return text.rsplit(grammar.RESPONSE_OPEN, 1)[1].split(grammar.RESPONSE_CLOSE, 1)[0].strip()
    rest = text.rsplit(grammar.THINK_CLOSE, 1)[-1]
    if grammar.TOOL_CALL_OPEN in rest:
        rest = rest.split(grammar.TOOL_CALL_OPEN, 1)[0]
    return re.sub(r"</?\w+>", " ", rest).strip()


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lower case, no punctuation, no articles, single spaces."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match(prediction: str, gold: str) -> bool:
    return normalize_answer(prediction) == normalize_answer(gold)


def f1_score(prediction: str, gold: str) -> float:
    pred, ref = normalize_answer(prediction).split(), normalize_answer(gold).split()
    common = Counter(pred) & Counter(ref)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


JUDGE_PROMPT = (
    "You are grading an answer to a question against the gold answer. The answer is correct if it refers to the "
    "same entity, date or number as the gold answer, even if worded differently; it is wrong if it is different, "
    "vaguer, or gives several candidates.\n\nQuestion: {question}\nGold answer: {gold}\nPredicted answer: "
    "{prediction}\n\nReply with one word: yes (correct) or no (wrong)."
)


@dataclass
class LLMJudge:
    """An LLM judge on an OpenAI-compatible ``/chat/completions`` endpoint (greedy, one word: yes/no)."""

    api_base: str
    model: str
    api_key_env: str = "OPENAI_API_KEY"
    timeout: float = 120.0

    def __call__(self, question: str, gold: str, prediction: str) -> bool | None:
        payload = {
            "model": self.model,
            "messages": [
                {"role": "user", "content": JUDGE_PROMPT.format(question=question, gold=gold, prediction=prediction)}
            ],
            "temperature": 0,
            "max_tokens": 4,
        }
        url = self.api_base.rstrip("/") + "/chat/completions"
        try:
            reply = post_json(url, payload, os.environ.get(self.api_key_env), self.timeout)
            text = reply["choices"][0]["message"]["content"]
        except (RuntimeError, OSError, KeyError, IndexError, TypeError) as err:
            logger.warning("judge call failed (%s); the item is scored as not judged", err)
            return None
        verdict = re.match(r"\W*(yes|no)\b", text.strip().lower())
        if verdict is None:
            logger.warning("judge reply %r is neither yes nor no; the item is scored as not judged", text)
            return None
        return verdict.group(1) == "yes"


def score_predictions(
    predictions: Sequence[dict[str, Any]], items: Sequence[dict[str, Any]], judge: LLMJudge | None = None
) -> ScoreReport:
    """Exact match, F1 (and the judge's verdict); prediction ids are item indices in the data file."""
    verdicts = []
    for number, row in enumerate(predictions, start=1):
        index = item_index(row, number, len(items), "the data")
        item = items[index]
        answer = extract_answer(row["output"])
        verdict = {
            "id": index,
            "prediction": answer,
            "gold": item["answer"],
            "exact_match": exact_match(answer, item["answer"]),
            "f1": f1_score(answer, item["answer"]),
        }
        if isinstance(row.get("tool_calls"), int):
            verdict["tool_calls"] = row["tool_calls"]
        if judge is not None:
            verdict["judge"] = judge(item["question"], item["answer"], answer)
        verdict["valid"] = verdict["judge"] is True if judge is not None else verdict["exact_match"]
        verdicts.append(verdict)
    n = len(verdicts)
    em = fraction(sum(v["exact_match"] for v in verdicts), n)
    f1 = None if n == 0 else sum(v["f1"] for v in verdicts) / n
    calls = [v["tool_calls"] for v in verdicts if "tool_calls" in v]
    summary = {
        "benchmark": "bamboogle",
        "category": "all",
        "n": n,
        "accuracy": fraction(sum(v["valid"] for v in verdicts), n),
        "metric": "llm_judge" if judge is not None else "exact_match",
        "exact_match": em,
        "f1": f1,
        "avg_tool_calls": sum(calls) / len(calls) if calls else None,
    }
    rows = [["exact match %", format_percent(em)], ["F1 %", format_percent(f1)]]
    if judge is not None:
        summary["judge_model"] = judge.model
        summary["not_judged"] = sum(v["judge"] is None for v in verdicts)
        rows.insert(0, [f"judge accuracy % ({judge.model})", format_percent(summary["accuracy"])])
    if calls:
        rows.append(["avg tool calls", f"{summary['avg_tool_calls']:.2f}"])
    table = format_table(["Bamboogle", f"n={n}"], rows, title="Bamboogle")
    return ScoreReport(summary=summary, items=verdicts, table=table)
