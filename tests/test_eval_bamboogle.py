"""Bamboogle: the search loop with the offline BM25 tool, answer extraction, exact match / F1 counted by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from toolrl_trl import grammar
from toolrl_trl.eval import bamboogle
from toolrl_trl.eval.__main__ import main as cli_main
from toolrl_trl.eval.common import EvalDataError
from toolrl_trl.eval.search import BM25Search, SearchResult, build_search

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "toolrl" / "bamboogle.json"

CORPUS = [
    {"title": "Citibank", "text": "Citibank was founded in 1812 as the City Bank of New York."},
    {"title": "James Madison", "text": "James Madison was president of the United States from 1809 to 1817."},
    {"title": "Bananas", "text": "Bananas are berries; banana plants are large herbs."},
]


@pytest.fixture
def corpus_file(tmp_path):
    path = tmp_path / "corpus.jsonl"
    path.write_text("".join(json.dumps(d) + "\n" for d in CORPUS))
    return path


def test_bm25_ranks_matching_documents_first(corpus_file):
    search = build_search("bm25", corpus=str(corpus_file))
    assert [r.title for r in search.search("president of the united states", 3)] == ["James Madison", "Citibank"]
    assert [r.title for r in search.search("city bank founded", 1)] == ["Citibank"]
    assert search.search("zebra", 3) == []  # no shared term, no result
    scores = search.scores("banana")
    assert scores[2] > 0 and scores[0] == scores[1] == 0


def test_bm25_idf_prefers_rare_terms():
    docs = [SearchResult("a", "common common rare"), SearchResult("b", "common common common")]
    search = BM25Search(docs + [SearchResult(str(i), "common filler") for i in range(5)])
    assert search.search("rare common", 1)[0].title == "a"


def test_corpus_errors_name_the_document(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text('{"title": "x"}\n')
    with pytest.raises(EvalDataError, match=r"c.jsonl: document 1 lacks a 'text'"):
        BM25Search.from_file(path)
    path.write_text("[]")
    with pytest.raises(ValueError, match="empty"):
        BM25Search.from_file(path)
    with pytest.raises(ValueError, match="valid: bm25, serper"):
        build_search("google")
    with pytest.raises(ValueError, match="--search_corpus"):
        build_search("bm25")


def test_loop_feeds_observations_and_stops_at_the_answer(corpus_file):
    search = BM25Search.from_file(corpus_file)

    def model(conversations):
        outputs = []
        for conversation in conversations:
            user = conversation[1]["content"]
            if user.count(grammar.OBS_OPEN) >= 2:
                outputs.append(grammar.render_assistant_turn("Enough.", None, "James Madison"))
            else:
                query = "Citibank founded" if grammar.OBS_OPEN not in user else "president 1812"
                outputs.append(
                    grammar.render_assistant_turn("Look it up.", [{"name": "search", "parameters": {"query": query}}])
                )
        return outputs

    (episode,) = bamboogle.run_episodes(["Who was president when Citibank was founded?"], model, search, top_k=1)
    assert episode.done and episode.rounds == 3 and episode.tool_calls == 2
    assert bamboogle.extract_answer(episode.output) == "James Madison"
    observations = [t["content"] for t in episode.transcript if t["role"] == "observation"]
    assert json.loads(observations[0][len("<obs> ") : -len(" </obs>")]) == [
        {"title": "Citibank", "snippet": CORPUS[0]["text"]}
    ]
    prompt = episode.prompt()
    assert prompt[0]["content"] == grammar.render_system_prompt([bamboogle.SEARCH_TOOL])
    assert prompt[1]["content"].startswith(grammar.DIALOGUE_HEADER + "\n<user> Who was president")


def test_loop_stops_after_max_rounds_and_reports_tool_errors(corpus_file):
    search = BM25Search.from_file(corpus_file)

    def model(conversations):
        call = [{"name": "lookup", "parameters": {"q": "x"}}, {"name": "search", "parameters": {}}]
        return [grammar.render_assistant_turn("again", call) for _ in conversations]

    (episode,) = bamboogle.run_episodes(["q"], model, search, max_rounds=3)
    assert episode.rounds == 3 and episode.tool_calls == 4  # the third round's calls are not executed
    observation = episode.transcript[1]["content"]
    assert "unknown tool 'lookup'" in observation and "non-empty 'query'" in observation


def test_answer_extraction_and_metrics_by_hand():
    assert (
        bamboogle.extract_answer("<think> x </think>\n<response> The Eiffel Tower. </response>") == "The Eiffel Tower."
    )
    assert bamboogle.extract_answer("<think> x </think> Paris") == "Paris"
    assert bamboogle.extract_answer(None) == ""
    assert bamboogle.normalize_answer("The  Eiffel-Tower!") == "eiffeltower"
    assert bamboogle.exact_match("the Madison", "Madison")
    assert not bamboogle.exact_match("James Madison", "Madison")
    assert bamboogle.f1_score("James Madison", "Madison") == pytest.approx(2 * 0.5 * 1 / 1.5)
    assert bamboogle.f1_score("x", "y") == 0.0


def test_scores_counted_by_hand(tmp_path, capsys):
    data = tmp_path / "bamboogle.json"
    gold = ["james madison", "1812", "Paris", "blue whale"]
    data.write_text(json.dumps([{"Question": f"q{i}", "Answer": a} for i, a in enumerate(gold)]))
    outputs = [
        "<think> t </think>\n<response> James Madison </response>",  # EM
        "<think> t </think>\n<response> in 1812 </response>",  # F1 0.667
        "<think> t </think>\n<response> London </response>",  # wrong
        "<think> t </think>\n<response> The blue whale. </response>",  # EM after normalisation
    ]
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps({"id": i, "output": o, "tool_calls": i}) + "\n" for i, o in enumerate(outputs)))
    assert cli_main(["score", "--benchmark", "bamboogle", "--predictions", str(path), "--data", str(data)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["benchmark"] == "bamboogle" and summary["n"] == 4 and summary["metric"] == "exact_match"
    assert summary["accuracy"] == summary["exact_match"] == 0.5
    assert summary["f1"] == pytest.approx((1 + 2 / 3 + 0 + 1) / 4)
    assert summary["avg_tool_calls"] == 1.5


@pytest.mark.skipif(not DATA.is_file(), reason=f"the paper's Bamboogle file is not at {DATA}")
def test_gold_answers_score_full_marks_on_the_papers_file():
    items = bamboogle.load_bamboogle(DATA)
    assert len(items) == 125
    rows = [{"id": i["id"], "output": grammar.render_assistant_turn("t", None, i["answer"])} for i in items]
    report = bamboogle.score_predictions(rows, items)
    assert report.summary["accuracy"] == 1.0 and report.summary["f1"] == 1.0


def test_bad_data_is_named(tmp_path):
    path = tmp_path / "b.json"
    path.write_text(json.dumps([{"Question": "q"}]))
    with pytest.raises(EvalDataError, match="b.json: item 0 lacks the 'Answer' string"):
        bamboogle.load_bamboogle(path)
    with pytest.raises(EvalDataError, match="id 3 is outside"):
        bamboogle.score_predictions([{"id": 3, "output": ""}], [{"id": 0, "question": "q", "answer": "a"}])
