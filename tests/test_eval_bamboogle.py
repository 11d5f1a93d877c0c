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


# ---------------------------------------------------------------------------------------------------------------------
# The paper's protocol (benchmarks/Bamboogle/generate.py + utils.py)
# ---------------------------------------------------------------------------------------------------------------------

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "toolrl" / "benchmarks" / "Bamboogle"
needs_reference = pytest.mark.skipif(
    not (REFERENCE / "generate.py").is_file(), reason=f"the paper's Bamboogle scripts are not at {REFERENCE}"
)


def reference_strings(path: Path) -> dict[str, str]:
    """The module-level string constants of a reference script, read as data (the script is never imported)."""
    import ast

    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.targets[0].id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
    }


@needs_reference
def test_paper_prompts_are_the_scripts_byte_for_byte():
    constants = reference_strings(REFERENCE / "generate.py")
    assert bamboogle.PAPER_SYSTEM_PROMPT == constants["SYS"]
    assert bamboogle.PAPER_USER_TEMPLATE == constants["USER"]
    assert bamboogle.JUDGE_SYS == constants["JUDGE_SYS"]
    assert bamboogle.JUDGE_USER == constants["JUDGE_USER"]
    source = (REFERENCE / "generate.py").read_text()
    for text in (bamboogle.PAPER_NUDGE_CONTINUE, bamboogle.PAPER_NUDGE_STOP, bamboogle.PAPER_ROUND_LIMIT_ANSWER):
        assert text in source
    assert bamboogle.PAPER_OBS_PREFIX.rstrip("\n") in source


class ScriptedSearch:
    """A search tool answering from a dict (no network); records the queries it was asked."""

    def __init__(self, answers: dict[str, list[SearchResult]]):
        self.answers, self.queries = answers, []

    def search(self, query, top_k):
        self.queries.append((query, top_k))
        return self.answers.get(query, [])[:top_k]


def _scripted_model(outputs_by_round, seen):
    def generate(conversations):
        seen.append(conversations)
        return [outputs_by_round[len(seen) - 1] for _ in conversations]

    return generate


def _call(query, quote='"'):
    if quote == '"':
        return json.dumps({"name": "Search", "parameters": {"query": query}})
    return str({"name": "Search", "parameters": {"query": query}})


def test_paper_loop_rewrites_the_history_as_the_script_does():
    search = ScriptedSearch({"Citibank founded": [SearchResult("Citibank", "Founded in 1812.")]})
    outputs = [
        f"  <think> Need the year. </think>\n<tool_call>\n{_call('Citibank founded')}\n{_call('ignored')}\n</tool_call>",
        "<think> 1812: Madison. </think>\n<response> James Madison </response>\n<response> second </response>",
    ]
    seen = []
    question = "Who was president when Citibank was founded?"
    (episode,) = bamboogle.run_paper_episodes([question], _scripted_model(outputs, seen), search)
    assert search.queries == [("Citibank founded", 5)]  # only the first line of the first block, top 5
    assert episode.answer == "James Madison" and episode.rounds == 2 and episode.searches == 1
    first_user = f"{question}\nPerform tool call if you are not sure about the answer. Make a plan to solve the problem step by step."
    assert seen[0][0] == [
        {"role": "system", "content": bamboogle.PAPER_SYSTEM_PROMPT},
        {"role": "user", "content": f"**Dialogue Records History**\n<user> {first_user} </user>"},
    ]
    call_repr = "{'name': 'Search', 'parameters': {'query': 'Citibank founded'}}"  # the Python dict, not JSON
    assert seen[1][0][1]["content"] == (
        f"**Dialogue Records History**\n<user> {first_user} </user>\n\n"
        f"<think> Need the year. </think>\n<tool_call>\n{call_repr}\n</tool_call>\n"
        "<obs> Search results for the first tool call query:\n1. Citibank\n- Snippet: Founded in 1812. </obs>\n\n"
        "<user> Please continue to search if needed. If you can obtain the answer, please do not call any tool and "
        "directly provide a succinct answer in the response. </user>"
    )
    assert episode.history[-1] == {
        "role": "assistant",
        "content": "<think> 1812: Madison. </think>\n<response> James Madison </response>",
    }


def test_paper_loop_stops_after_four_calls_with_the_nudges_of_rounds_1_2_and_3_4():
    search = ScriptedSearch({})
    outputs = [f"<think> r{i} </think>\n<tool_call>\n{_call(f'q{i}', quote=chr(39))}\n</tool_call>" for i in range(6)]
    seen = []
    (episode,) = bamboogle.run_paper_episodes(["q?"], _scripted_model(outputs, seen), search)
    assert len(seen) == 4 and episode.rounds == 4 and episode.searches == 4  # a 4th-round call is searched, then 0
    assert episode.answer == bamboogle.PAPER_ROUND_LIMIT_ANSWER
    nudges = [h["content"] for h in episode.history if h["role"] == "user"][1:]
    assert nudges == [bamboogle.PAPER_NUDGE_CONTINUE] * 2 + [bamboogle.PAPER_NUDGE_STOP] * 2
    report = bamboogle.score_predictions(
        [{"id": 0, "output": episode.output, "answer": episode.answer, "tool_calls": episode.searches}],
        [{"id": 0, "question": "q?", "answer": "x"}],
        judge=lambda *a: pytest.fail("the paper never judges a round-limit answer"),
    )
    assert report.summary["accuracy"] == 0.0 and report.summary["avg_tool_calls"] == 4


def test_paper_loop_resends_the_same_prompt_when_the_call_does_not_parse():
    # ast.literal_eval rejects JSON's true; a call without parameters.query fails too: nothing is added
    outputs = [
        '<think> a </think>\n<tool_call>\n{"name": "Search", "parameters": {"query": "x", "exact": true}}\n</tool_call>',
        '<think> b </think>\n<tool_call>\n{"name": "Search", "parameters": {"q": "x"}}\n</tool_call>',
        "<think> c </think> Paris </think> tail",
    ]
    seen = []
    (episode,) = bamboogle.run_paper_episodes(["q"], _scripted_model(outputs, seen), ScriptedSearch({}))
    assert seen[0] == seen[1] == seen[2]
    assert episode.searches == 0 and episode.answer == "Paris"  # the text after the first </think>, up to a second


def test_paper_answer_rule():
    assert bamboogle.paper_answer("<think> a </think>\n<response> A </response> <response> B </response>") == "A"
    assert bamboogle.paper_answer("<think> a </think> Rome") == "Rome"
    assert bamboogle.paper_answer("  just text  ") == "just text"
    assert bamboogle.paper_answer("<think> a </think>\n<tool_call>\n{}\n</tool_call>") is None  # a search round


def test_paper_judgment_is_the_exact_yes():
    assert bamboogle.parse_judgment("- Thought: same person\n- Judgment: Yes") is True
    assert bamboogle.parse_judgment("- Thought: same\n- Judgment: Yes.") is False
    assert bamboogle.parse_judgment("- Thought: differs\n- Judgment: No") is False
    assert bamboogle.parse_judgment("Judgment: Yes") is None  # the paper's script crashed here: not judged


def test_paper_scoring_judges_the_answer_and_reports_em_f1(tmp_path):
    items = [{"id": i, "question": f"q{i}", "answer": a} for i, a in enumerate(["James Madison", "1812", "Paris"])]
    rows = [
        {"id": 0, "output": "x", "answer": "Madison, James", "tool_calls": 2},
        {"id": 1, "output": "<think> t </think>\n<response> in 1812 </response>", "tool_calls": 1},
        {"id": 2, "output": "x", "answer": "", "tool_calls": 0},
    ]
    asked = []

    def judge(question, gold, predicted):
        asked.append((question, gold, predicted))
        return predicted != "in 1812"

    report = bamboogle.score_predictions(rows, items, judge, "paper")
    assert asked == [("q0", "James Madison", "Madison, James"), ("q1", "1812", "in 1812")]  # "" is never judged
    assert report.summary["accuracy"] == pytest.approx(1 / 3) and report.summary["metric"] == "llm_judge"
    assert report.summary["exact_match"] == 0.0 and report.summary["protocol"] == "paper"
    assert report.summary["f1"] == pytest.approx((1.0 + 2 / 3 + 0) / 3)  # "madison james" vs "james madison"
    assert report.summary["avg_tool_calls"] == 1.0
