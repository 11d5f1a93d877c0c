"""Search tools for the Bamboogle loop: a Serper-compatible HTTP client and an offline BM25 index.

The paper let the model search the web (Google, through an API) while answering Bamboogle;
:class:`SerperSearch` talks to any endpoint that speaks Serper's ``POST /search`` JSON protocol
(key from the environment). :class:`BM25Search` answers from a local corpus instead, so the loop
runs offline and reproducibly (a Wikipedia dump, a folder of notes ...).
"""

from __future__ import annotations

import json
import math
import os
import re
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from toolrl_trl.eval.common import EvalDataError, read_text


@dataclass(frozen=True)
class SearchResult:
    title: str
    snippet: str
    url: str = ""

    def to_dict(self) -> dict[str, str]:
        out = {"title": self.title, "snippet": self.snippet}
        if self.url:
            out["url"] = self.url
        return out


class SearchTool(Protocol):
    def search(self, query: str, top_k: int) -> list[SearchResult]: ...


class SearchError(RuntimeError):
    """A search backend failed (HTTP error, bad answer); the loop reports it to the model as an observation."""


class SerperSearch:
    """A client for Serper's web-search API (or any server answering the same JSON at ``endpoint``)."""

    def __init__(
        self, endpoint: str = "https://google.serper.dev/search", api_key_env: str = "SERPER_API_KEY", timeout=30.0
    ):
        self.endpoint = endpoint
        self.api_key = os.environ.get(api_key_env)
        if not self.api_key:
            raise ValueError(f"the Serper search tool needs an API key in the environment variable {api_key_env}")
        self.timeout = timeout

    def search(self, query: str, top_k: int) -> list[SearchResult]:
        body = json.dumps({"q": query, "num": top_k}).encode()
        request = urllib.request.Request(
            self.endpoint, data=body, headers={"X-API-KEY": self.api_key, "Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - configured endpoint
                payload = json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as err:
            raise SearchError(f"{self.endpoint}: HTTP {err.code} for query {query!r}") from None
        except (urllib.error.URLError, TimeoutError, json.JSONDecodeError) as err:
            raise SearchError(f"{self.endpoint}: {err} for query {query!r}") from None
        return self.parse(payload)[:top_k]

    @staticmethod
    def parse(payload: dict[str, Any]) -> list[SearchResult]:
        """Answer box and knowledge graph first (they often hold the answer), then organic results."""
        results = []
        box = payload.get("answerBox") or {}
        if box.get("answer") or box.get("snippet"):
            results.append(
                SearchResult(box.get("title", ""), box.get("answer") or box.get("snippet"), box.get("link", ""))
            )
        graph = payload.get("knowledgeGraph") or {}
        if graph.get("description"):
            results.append(
                SearchResult(graph.get("title", ""), graph["description"], graph.get("descriptionLink", ""))
            )
        for item in payload.get("organic", []):
            results.append(SearchResult(item.get("title", ""), item.get("snippet", ""), item.get("link", "")))
        return results


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
    backend: str, *, corpus: str | None = None, endpoint: str | None = None, api_key_env: str = "SERPER_API_KEY"
) -> SearchTool:
    """A search tool by name: ``bm25`` (needs ``corpus``) or ``serper`` (key from ``api_key_env``)."""
    if backend == "bm25":
        if not corpus:
            raise ValueError("the bm25 search tool needs a corpus file (--search_corpus)")
        return BM25Search.from_file(corpus)
    if backend == "serper":
        kwargs = {"endpoint": endpoint} if endpoint else {}
        return SerperSearch(api_key_env=api_key_env, **kwargs)
    raise ValueError(f"unknown search backend {backend!r}; valid: {', '.join(SEARCH_BACKENDS)}")
