"""Search tools for the Bamboogle loop: a Serper-compatible HTTP client and an offline BM25 index.

The paper let the model search the web (Google, through Serper's API) while answering Bamboogle;
:class:`SerperSearch` talks to any endpoint that speaks Serper's ``POST /search`` JSON protocol
(key from the environment). :class:`BM25Search` answers from a local corpus instead, so the loop
runs offline and reproducibly (a Wikipedia dump, a folder of notes ...).

Two ways of asking and showing results exist. ``search()`` (the project's loop) returns
:class:`SearchResult` objects. :func:`paper_search_text` is the paper's ``utils.search_serper``:
15 results requested, empty answers retried (six times, then the text ``Search Error: Timeout``),
the answer box first, then the organic results, ``n. title`` / ``- Snippet: ...`` up to ``num``
entries; over BM25 the same layout is applied to the ranked documents.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from toolrl_trl.eval.common import EvalDataError, read_text, redact

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SearchResult:
    """One hit; ``kind`` is ``answer`` for Serper's answer-box answer (the paper shows it as ``- Answer:``)."""

    title: str
    snippet: str
    url: str = ""
    kind: str = "snippet"

    def to_dict(self) -> dict[str, str]:
        out = {"title": self.title, "snippet": self.snippet}
        if self.url:
            out["url"] = self.url
        return out


class SearchTool(Protocol):
    def search(self, query: str, top_k: int) -> list[SearchResult]: ...


class SearchError(RuntimeError):
    """A search backend failed (HTTP error, bad answer); the loop reports it to the model as an observation."""


#: The paper's Serper request size (``utils.search_serper`` asks for 15 whatever ``num`` it is given).
PAPER_REQUEST_SIZE = 15
#: Empty answers the paper's client retries before giving up (it re-asks while ``try_time <= 5``).
PAPER_RETRIES = 6
PAPER_TIMEOUT_TEXT = "Search Error: Timeout"


class SerperSearch:
    """A client for Serper's web-search API (or any server answering the same JSON at ``endpoint``)."""

    def __init__(
        self,
        endpoint: str = "https://google.serper.dev/search",
        api_key_env: str = "SERPER_API_KEY",
        timeout: float = 30.0,
        retry_wait: float = 5.0,
    ):
        self.endpoint = endpoint
        self.api_key = os.environ.get(api_key_env)
        if not self.api_key:
            raise ValueError(f"the Serper search tool needs an API key in the environment variable {api_key_env}")
        self.timeout = timeout
        self.retry_wait = retry_wait

    def request(self, query: Any, num: int) -> dict[str, Any]:
        """One ``POST /search``; errors name the endpoint and the query, never the key."""
        body = json.dumps({"q": query, "num": num}).encode()
        request = urllib.request.Request(
            self.endpoint, data=body, headers={"X-API-KEY": self.api_key, "Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - configured endpoint
                payload = json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as err:
            raise SearchError(redact(f"{self.endpoint}: HTTP {err.code} for query {query!r}", self.api_key)) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError, json.JSONDecodeError) as err:
            raise SearchError(redact(f"{self.endpoint}: {err} for query {query!r}", self.api_key)) from None
        if not isinstance(payload, dict):
            raise SearchError(f"{self.endpoint}: the answer is a {type(payload).__name__}, expected an object")
        return payload

    def search(self, query: str, top_k: int) -> list[SearchResult]:
        return self.parse(self.request(query, top_k))[:top_k]

    def paper_text(self, query: Any, num: int) -> str:
        """The paper's ``search_serper(query, num)``: 15 asked, empty organic results retried, then formatted.

        Like the paper's client it asks again (``retry_wait`` seconds apart) while the organic list is
        empty, and the seventh answer is never read: ``Search Error: Timeout`` comes back instead. An
        answer without an ``organic`` key (or a failed request) raises :class:`SearchError`, as the
        paper's raised out of the client.
        """
        for attempt in range(PAPER_RETRIES + 1):
            payload = self.request(query, PAPER_REQUEST_SIZE)
            if attempt == PAPER_RETRIES:
                return PAPER_TIMEOUT_TEXT
            if "organic" not in payload:
                raise SearchError(f"{self.endpoint}: the answer has no 'organic' list for query {query!r}")
            if payload["organic"] != []:
                return format_serper_paper(payload, num)
            logger.info("search: no organic results for %r, asking again (%d)", query, attempt + 1)
            time.sleep(self.retry_wait)
        return PAPER_TIMEOUT_TEXT  # pragma: no cover - the loop always returns

    @staticmethod
    def parse(payload: dict[str, Any]) -> list[SearchResult]:
        """Answer box and knowledge graph first (they often hold the answer), then organic results."""
        results = []
        box = payload.get("answerBox") or {}
        if box.get("answer") or box.get("snippet"):
            kind = "answer" if box.get("answer") else "snippet"
            results.append(
                SearchResult(box.get("title", ""), box.get("answer") or box.get("snippet"), box.get("link", ""), kind)
            )
        graph = payload.get("knowledgeGraph") or {}
        if graph.get("description"):
            results.append(
                SearchResult(graph.get("title", ""), graph["description"], graph.get("descriptionLink", ""))
            )
        for item in payload.get("organic", []):
            results.append(SearchResult(item.get("title", ""), item.get("snippet", ""), item.get("link", "")))
        return results


def format_serper_paper(payload: dict[str, Any], num: int) -> str:
    """A Serper answer laid out as the paper's ``search_serper`` did; an odd answer gives ``Search Error: ...``.

    The answer box comes first when it has a title (its ``answer`` as ``- Answer:``, else its
    ``snippet``), then the organic results that have both a title and a snippet, numbered from 1,
    at most ``num`` entries in all.
    """
    try:
        lines, index = [], 1
        box = payload.get("answerBox", "")
        if box and "title" in box:
            if "answer" in box:
                lines.append(f"{index}. {box['title']}\n- Answer: {box['answer']}\n")
                index += 1
            elif "snippet" in box:
                lines.append(f"{index}. {box['title']}\n- Snippet: {box['snippet']}\n")
                index += 1
        if index > num:
            return "".join(lines).strip()
        for item in payload.get("organic", []):
            if "title" in item and "snippet" in item:
                lines.append(f"{index}. {item['title']}\n- Snippet: {item['snippet']}\n")
                index += 1
            if index > num:
                break
        return "".join(lines).strip()
    except Exception as err:  # the paper's client turned any formatting failure into this text
        return f"Search Error: {err}"


def format_results_paper(results: Sequence[SearchResult], num: int) -> str:
    """Ranked results (BM25, any tool) in the paper's layout: ``n. title`` then ``- Snippet:`` (or ``- Answer:``)."""
    lines = []
    for index, result in enumerate(results[:num], start=1):
        label = "Answer" if result.kind == "answer" else "Snippet"
        lines.append(f"{index}. {result.title}\n- {label}: {result.snippet}\n")
    return "".join(lines).strip()


def paper_search_text(tool: SearchTool, query: Any, num: int) -> str:
    """What the paper's loop shows for one search: Serper as ``search_serper`` does, other tools in its layout."""
    if isinstance(tool, SerperSearch):
        return tool.paper_text(query, num)
    return format_results_paper(tool.search(query if isinstance(query, str) else json.dumps(query), num), num)


_TOKEN = re.compile(r"\w+", re.UNICODE)


def tokenize(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


class BM25Search:
    """Okapi BM25 over a local corpus (``k1``, ``b`` as in Robertson & Zaragoza); tiny and dependency-free."""

    def __init__(self, documents: Sequence[SearchResult], k1: float = 1.5, b: float = 0.75):
        if not documents:
            raise ValueError("the BM25 corpus is empty")
        self.documents = list(documents)
        self.k1, self.b = k1, b
        self._tf = [Counter(tokenize(f"{d.title} {d.snippet}")) for d in self.documents]
        self._len = [sum(tf.values()) for tf in self._tf]
        self._avg = sum(self._len) / len(self._len) or 1.0
        df = Counter(term for tf in self._tf for term in tf)
        n = len(self.documents)
        self._idf = {term: math.log(1 + (n - f + 0.5) / (f + 0.5)) for term, f in df.items()}

    @classmethod
    def from_file(cls, path: str | Path, **kwargs: float) -> BM25Search:
        """A corpus file: JSON lines (or a JSON list) of objects with ``text``/``contents`` and optional ``title``."""
        text = read_text(path)
        stripped = text.lstrip()
        if stripped.startswith("["):
            rows = json.loads(text)
        else:
            rows = []
            for number, line in enumerate(text.splitlines(), start=1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as err:
                        raise EvalDataError(f"{path}: line {number} is not valid JSON ({err.msg})") from None
        return cls(list(_documents(rows, path)), **kwargs)

    def scores(self, query: str) -> list[float]:
        terms = tokenize(query)
        out = []
        for tf, length in zip(self._tf, self._len, strict=True):
            norm = self.k1 * (1 - self.b + self.b * length / self._avg)
            out.append(sum(self._idf[t] * tf[t] * (self.k1 + 1) / (tf[t] + norm) for t in terms if t in tf))
        return out

    def search(self, query: str, top_k: int) -> list[SearchResult]:
        scores = self.scores(query)
        order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
        return [self.documents[i] for i in order[:top_k] if scores[i] > 0]


def _documents(rows: Iterable[Any], path: str | Path) -> Iterable[SearchResult]:
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            raise EvalDataError(f"{path}: document {number} is a {type(row).__name__}, expected an object")
        body = row.get("text", row.get("contents"))
        if not isinstance(body, str):
            raise EvalDataError(f"{path}: document {number} lacks a 'text' (or 'contents') string")
        yield SearchResult(str(row.get("title", "")), body, str(row.get("url", "")))


SEARCH_BACKENDS = ("bm25", "serper")


def build_search(
    backend: str,
    *,
    corpus: str | None = None,
    endpoint: str | None = None,
    api_key_env: str = "SERPER_API_KEY",
    retry_wait: float = 5.0,
) -> SearchTool:
    """A search tool by name: ``bm25`` (needs ``corpus``) or ``serper`` (key from ``api_key_env``)."""
    if backend == "bm25":
        if not corpus:
            raise ValueError("the bm25 search tool needs a corpus file (--search_corpus)")
        return BM25Search.from_file(corpus)
    if backend == "serper":
        kwargs: dict[str, Any] = {"endpoint": endpoint} if endpoint else {}
        return SerperSearch(api_key_env=api_key_env, retry_wait=retry_wait, **kwargs)
    raise ValueError(f"unknown search backend {backend!r}; valid: {', '.join(SEARCH_BACKENDS)}")
