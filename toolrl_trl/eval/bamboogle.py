"""Bamboogle: multi-hop questions answered with a search tool over several rounds, two protocols.

``paper`` (``benchmarks/Bamboogle/generate.py`` + ``utils.py`` of the paper's code):
:class:`PaperEpisode`. The system prompt lists the paper's ``Search`` tool; the question goes
into the paper's prompt; at most 4 model calls. An output holding ``<tool_call>`` is a search
round: the first line of the first block is read with ``ast.literal_eval`` and its
``parameters.query`` searched (top 5, laid out as ``utils.search_serper`` does), then the
history is rewritten (the thought and the call as a Python dict, the results, a nudge: "continue
to search" after rounds 1-2, "do not make tool call any more" after rounds 3-4); a line that does
not parse re-sends the same prompt. An output without one is the answer: its first
``<response>``, else the text after ``</think>``. The reported metric is the paper's LLM judge
(``JUDGE_SYS`` / ``JUDGE_USER``, correct only for the exact reply "Judgment: Yes") on any
OpenAI-compatible endpoint; exact match and F1 are reported beside it.

``project``: :class:`BamboogleEpisode`. The model sees a ``search`` tool in the ToolRL system
prompt; each round it either calls the tool (all calls of the last block run; the results come
back as an ``<obs>`` entry) or answers; the run stops at the answer or after ``max_rounds``.
The answer is the last ``<response>`` (else the text after the thoughts). Scoring: normalised
exact match and token F1 (SQuAD normalisation), plus an optional yes/no LLM judge.

Both report the average number of tool calls per question.
"""

from __future__ import annotations

import ast
import logging
import os
import re
import string
import time
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
from toolrl_trl.eval.search import SearchError, SearchTool, paper_search_text

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
PROTOCOLS = ("paper", "project")

# The paper's prompts and fixed texts (generate.py), byte for byte.
PAPER_SEARCH_TOOL = grammar.ToolSpec(
    name="Search",
    description="Search the answer for a specific query leveraging the google search engine",
    parameters={"query": {"description": "The query to search for.", "type": "string", "default": ""}},
)
#: generate.py's ``SYS``: the ToolRL system prompt listing ``Search``, ending with a newline.
PAPER_SYSTEM_PROMPT = grammar.render_system_prompt([PAPER_SEARCH_TOOL]) + "\n"
PAPER_USER_TEMPLATE = (
    "{query}\nPerform tool call if you are not sure about the answer. Make a plan to solve the problem step by step."
)
PAPER_OBS_PREFIX = "Search results for the first tool call query:\n"
PAPER_NUDGE_CONTINUE = (
    "Please continue to search if needed. If you can obtain the answer, please do not call any tool and directly "
    "provide a succinct answer in the response."
)
PAPER_NUDGE_STOP = "Do not make tool call any more. Please directly provide a succinct answer in your next response."
PAPER_ROUND_LIMIT_ANSWER = "Round Limit Exceeded, no answer is derived."
PAPER_MAX_ROUNDS = 4
PAPER_TOP_K = 5
JUDGE_SYS = (
    "You are a helpful assistant to help me judge if the answer for a specific query is correct or not. You will be "
    "given the query, the ground truth answer and the predicted answer. You should first think about if the predicted "
    'answer is semantically the same as the ground truth answer. If so give "Yes" in the field "Judgment", otherwise '
    'give "No".\n\n**Output Format**\nYour Response:\n- Thought: <Your brief thoughts>\n- Judgment: <Yes/No>\n'
)
JUDGE_USER = (
    "**Query**\n{query}\n\n**Ground Truth Answer**\n{ground_truth}\n\n**Predicted Answer**\n{predicted}\n\n"
    "Your Response:\n"
)


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


def check_protocol(protocol: str) -> str:
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown --protocol {protocol!r}; valid: {', '.join(PROTOCOLS)}")
    return protocol


def paper_user_prompt(history: Sequence[dict[str, str]]) -> str:
    """generate.py's ``form_user_prompt``: the history under the dialogue header, each entry in its own layout."""
    parts = [grammar.DIALOGUE_HEADER + "\n"]
    for entry in history:
        if entry["role"] == "user":
            parts.append(f"{grammar.USER_OPEN} {entry['content']} {grammar.USER_CLOSE}\n\n")
        elif entry["role"] == "obs":
            parts.append(f"{grammar.OBS_OPEN} {entry['content']} {grammar.OBS_CLOSE}\n\n")
        elif entry["role"] == "assistant":
            parts.append(f"{entry['content']}\n")
    return "".join(parts).strip()


def _thought(text: str, before: str) -> str:
    if grammar.THINK_OPEN in text:
        return text.split(grammar.THINK_OPEN)[1].split(grammar.THINK_CLOSE)[0].strip()
    return text.split(before)[0].strip()


def paper_answer(text: Any) -> str | None:
    """The answer of an output the paper's loop ends on; None for a search round (it holds ``<tool_call>``).

    The first ``<response>`` block, else the text after the first ``</think>`` (up to a second
    one), else the whole (stripped) output.
    """
    if not isinstance(text, str):
        return ""
    text = text.strip()
    if grammar.TOOL_CALL_OPEN in text:
        return None
    if grammar.RESPONSE_OPEN in text:
        return text.split(grammar.RESPONSE_OPEN)[1].split(grammar.RESPONSE_CLOSE)[0].strip()
    if grammar.THINK_CLOSE in text:
        return text.split(grammar.THINK_CLOSE)[1].strip()
    return text


class PaperEpisode:
    """One question through the paper's loop: ``prompt()`` -> model text -> ``observe(text)`` until ``done``.

    ``answer`` is the paper's ``pd_answer`` (:data:`PAPER_ROUND_LIMIT_ANSWER` after 4 calls without
    one); ``history`` is the paper's history (saved with the outputs); ``searches`` counts the
    observations, the paper's ``tool_avg`` numerator.
    """

    def __init__(
        self, question: str, search: SearchTool, max_rounds: int = PAPER_MAX_ROUNDS, top_k: int = PAPER_TOP_K
    ):
        self.search, self.max_rounds, self.top_k = search, max_rounds, top_k
        self.history: list[dict[str, str]] = [{"role": "user", "content": PAPER_USER_TEMPLATE.format(query=question)}]
        self.transcript: list[str] = []
        self.rounds = 0
        self.searches = 0
        self.done = False
        self.answer = ""
        self.output = ""

    def prompt(self) -> list[dict[str, str]]:
        return [
            {"role": "system", "content": PAPER_SYSTEM_PROMPT},
            {"role": "user", "content": paper_user_prompt(self.history)},
        ]

    def observe(self, text: str) -> None:
        if self.done:
            raise RuntimeError("observe() after the episode ended")
        self.rounds += 1
        output = text.strip()
        self.output = output
        self.transcript.append(output)
        if grammar.TOOL_CALL_OPEN in output:
            self._search_round(output)
        elif grammar.RESPONSE_OPEN in output:
            thought = _thought(output, grammar.RESPONSE_OPEN)
            response = output.split(grammar.RESPONSE_OPEN)[1].split(grammar.RESPONSE_CLOSE)[0].strip()
            self.history.append(
                {"role": "assistant", "content": f"<think> {thought} </think>\n<response> {response} </response>"}
            )
            self._end(response)
            return
        else:
            self.history.append({"role": "assistant", "content": output})
            self._end(paper_answer(output) or "")
            return
        if self.rounds >= self.max_rounds:
            self._end(PAPER_ROUND_LIMIT_ANSWER)

    def _search_round(self, output: str) -> None:
        """The paper's ``try`` block: any failure leaves the history as it was (the same prompt goes again)."""
        try:
            thought = _thought(output, grammar.TOOL_CALL_OPEN)
            block = output.split(grammar.TOOL_CALL_OPEN)[1].split(grammar.TOOL_CALL_CLOSE)[0].strip()
            call = ast.literal_eval(block.split("\n")[0])
            query = call["parameters"]["query"]
            results = paper_search_text(self.search, query, self.top_k).strip()
        except SearchError as err:
            logger.warning("search failed (%s); the paper's loop sends the same prompt again", err)
            return
        except Exception as err:  # the paper's bare except: the round is spent, nothing is added
            logger.debug("unusable tool call (%s: %s); the same prompt goes again", type(err).__name__, err)
            return
        self.history.append(
            {"role": "assistant", "content": f"<think> {thought} </think>\n<tool_call>\n{call}\n</tool_call>"}
        )
        self.history.append({"role": "obs", "content": PAPER_OBS_PREFIX + results})
        nudge = PAPER_NUDGE_CONTINUE if self.rounds < self.max_rounds - 1 else PAPER_NUDGE_STOP
        self.history.append({"role": "user", "content": nudge})
        self.searches += 1

    def _end(self, answer: str) -> None:
        self.answer = answer
        self.done = True


def run_paper_episodes(
    questions: Sequence[str],
    generate: Callable[[list[list[dict[str, str]]]], list[str]],
    search: SearchTool,
    max_rounds: int = PAPER_MAX_ROUNDS,
    top_k: int = PAPER_TOP_K,
) -> list[PaperEpisode]:
    """Every question's paper loop in lock-step, one batched model call per round."""
    episodes = [PaperEpisode(q, search, max_rounds, top_k) for q in questions]
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


@dataclass
class PaperJudge:
    """The paper's judge: ``JUDGE_SYS`` / ``JUDGE_USER`` at temperature 0 (n=1) on any OpenAI-compatible endpoint.

    Correct only when the reply (stripped) has "- Thought:" and the text after its first
    "- Judgment:" is exactly ``Yes``. The paper's client tried 4 times, 20 s apart, then stopped the
    run; here the item is then "not judged" (None, counted wrong), as is a reply without the two
    fields (the paper's script crashed on one).
    """

    api_base: str
    model: str = "gpt-4o"
    api_key_env: str = "OPENAI_API_KEY"
    timeout: float = 120.0
    attempts: int = 4
    retry_wait: float = 20.0

    def messages(self, question: str, gold: str, prediction: str) -> list[dict[str, str]]:
        user = JUDGE_USER.format(query=question, ground_truth=gold, predicted=prediction)
        return [{"role": "system", "content": JUDGE_SYS}, {"role": "user", "content": user}]

    def __call__(self, question: str, gold: str, prediction: str) -> bool | None:
        payload = {
            "model": self.model,
            "messages": self.messages(question, gold, prediction),
            "temperature": 0,
            "n": 1,
        }
        url = self.api_base.rstrip("/") + "/chat/completions"
        for attempt in range(1, self.attempts + 1):
            try:
                reply = post_json(url, payload, os.environ.get(self.api_key_env), self.timeout)
                text = reply["choices"][0]["message"]["content"].strip()
                break
            except (RuntimeError, OSError, KeyError, IndexError, TypeError, AttributeError) as err:
                logger.warning("judge call %d/%d failed (%s)", attempt, self.attempts, err)
                if attempt < self.attempts:
                    time.sleep(self.retry_wait)
        else:
            logger.warning("the judge never answered; the item is scored as not judged")
            return None
        return parse_judgment(text)


def parse_judgment(text: str) -> bool | None:
    """The paper's reading of a judge reply: True for "- Judgment: Yes", False otherwise, None if malformed."""
    if "- Thought:" not in text or "- Judgment:" not in text:
        logger.warning("judge reply %r lacks '- Thought:' / '- Judgment:'; the item is scored as not judged", text)
        return None
    return text.split("- Judgment:")[1].strip() == "Yes"


Judge = Callable[[str, str, str], "bool | None"]


def score_predictions(
    predictions: Sequence[dict[str, Any]],
    items: Sequence[dict[str, Any]],
    judge: Judge | None = None,
    protocol: str = "paper",
) -> ScoreReport:
    """Exact match, F1 (and the judge's verdict); prediction ids are item indices in the data file.

    ``paper``: the answer is the row's ``answer`` (the paper loop's ``pd_answer``), else the
    paper's reading of ``output``; an empty answer or the round-limit text scores 0 without a
    judge call; ``tool_calls`` is the number of searches (observations). ``project``: the
    answer is :func:`extract_answer` of ``output``.
    """
    check_protocol(protocol)
    verdicts = []
    for number, row in enumerate(predictions, start=1):
        index = item_index(row, number, len(items), "the data")
        item = items[index]
        if protocol == "paper":
            answer = row["answer"] if isinstance(row.get("answer"), str) else paper_answer(row["output"])
            answer = PAPER_ROUND_LIMIT_ANSWER if answer is None else answer
            no_answer = answer in (PAPER_ROUND_LIMIT_ANSWER, "")
            matched = "" if no_answer else answer
        else:
            answer = matched = extract_answer(row["output"])
            no_answer = False
        verdict = {
            "id": index,
            "prediction": answer,
            "gold": item["answer"],
            "exact_match": exact_match(matched, item["answer"]),
            "f1": f1_score(matched, item["answer"]),
        }
        if isinstance(row.get("tool_calls"), int):
            verdict["tool_calls"] = row["tool_calls"]
        if judge is not None:
            verdict["judge"] = False if no_answer else judge(item["question"], item["answer"], answer)
        verdict["valid"] = verdict["judge"] is True if judge is not None else verdict["exact_match"]
        verdicts.append(verdict)
    n = len(verdicts)
    em = fraction(sum(v["exact_match"] for v in verdicts), n)
    f1 = None if n == 0 else sum(v["f1"] for v in verdicts) / n
    calls = [v["tool_calls"] for v in verdicts if "tool_calls" in v]
    metric = "llm_judge" if judge is not None else "exact_match"
    summary = {
        "benchmark": "bamboogle",
        "category": "all",
        "n": n,
        "accuracy": fraction(sum(v["valid"] for v in verdicts), n),
        "metric": metric,
        "protocol": protocol,
        "exact_match": em,
        "f1": f1,
        "avg_tool_calls": sum(calls) / len(calls) if calls else None,
    }
    rows = [["exact match %", format_percent(em)], ["F1 %", format_percent(f1)]]
    if judge is not None:
        name = getattr(judge, "model", "judge")
        summary["judge_model"] = name
        summary["not_judged"] = sum(v["judge"] is None for v in verdicts)
        rows.insert(0, [f"judge accuracy % ({name})", format_percent(summary["accuracy"])])
    if calls:
        rows.append(["avg tool calls", f"{summary['avg_tool_calls']:.2f}"])
    title = f"Bamboogle, protocol {protocol} (accuracy = {metric.replace('_', ' ')})"
    table = format_table(["Bamboogle", f"n={n}"], rows, title=title)
    return ScoreReport(summary=summary, items=verdicts, table=table)


def build_judge(
    protocol: str, api_base: str | None, model: str | None, api_key_env: str, retry_wait: float = 20.0
) -> Judge | None:
    """The protocol's judge on ``api_base`` (None without one); ``paper`` defaults the model to gpt-4o, as it ran."""
    if not api_base:
        if model:
            raise ValueError("--judge_model needs --judge_api_base (the judge's OpenAI-compatible base URL)")
        return None
    if check_protocol(protocol) == "paper":
        return PaperJudge(api_base, model or "gpt-4o", api_key_env, retry_wait=retry_wait)
    if not model:
        raise ValueError("--judge_api_base needs --judge_model")
    return LLMJudge(api_base, model, api_key_env)
