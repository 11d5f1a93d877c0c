"""API-Bank: the paper's files, gold outputs score 100%, hand-made wrong ones score as counted (soft and strict),
and the paper's parsing and soft match (generate.py + evaluate.py) rule by rule, quirks included."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from toolrl_trl import grammar
from toolrl_trl.eval import apibank
from toolrl_trl.eval.__main__ import main as cli_main
from toolrl_trl.eval.common import EvalDataError

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "toolrl"
needs_data = pytest.mark.skipif(
    not (DATA / "level-1-api_processed.json").is_file(), reason=f"the paper's API-Bank files are not at {DATA}"
)


def gold(item):
    return grammar.render_assistant_turn("The dialogue asks for this call.", item["answer"])


@needs_data
@pytest.mark.parametrize("protocol", apibank.PROTOCOLS)
@pytest.mark.parametrize("level", apibank.LEVELS)
def test_gold_outputs_score_full_marks(level, protocol):
    items = apibank.load_level(apibank.level_source(DATA, level))
    assert len(items) == {1: 399, 2: 67, 3: 131}[level]
    predictions = [{"id": i["id"], "output": gold(i)} for i in items]
    report = apibank.score_predictions(predictions, DATA, level, protocol)
    assert report.summary == {
        "benchmark": "apibank",
        "level": level,
        "n": len(items),
        "accuracy": 1.0,
        "strict_accuracy": 1.0,
        "levels": {str(level): {"n": len(items), "accuracy": 1.0, "strict_accuracy": 1.0, "of": len(items)}},
        "protocol": protocol,
    }


@needs_data
def test_level_two_single_object_answers_become_lists():
    items = apibank.load_level(DATA / "level-2-api_processed.json")
    raw = json.loads((DATA / "level-2-api_processed.json").read_text())
    assert isinstance(raw[0]["answer"], dict)
    assert items[0]["answer"] == [raw[0]["answer"]]
    assert items[0]["messages"] == [
        {"role": "system", "content": raw[0]["system"]},
        {"role": "user", "content": raw[0]["user"]},
    ]


@needs_data
def test_wrong_outputs_score_as_counted_by_hand(tmp_path, capsys):
    items = apibank.load_level(DATA / "level-1-api_processed.json")[:10]
    outputs = [gold(i) for i in items]
    call = items[0]["answer"][0]
    first_param = next(iter(call["parameters"]))
    # soft wrong: 0 (a value changed), 1 (the name changed), 2 (no call at all)
    outputs[0] = grammar.render_assistant_turn("x", [{**call, "parameters": {**call["parameters"], first_param: "?"}}])
    outputs[1] = grammar.render_assistant_turn("x", [{**items[1]["answer"][0], "name": "Other"}])
    outputs[2] = grammar.render_assistant_turn("x", None, "Sure.")
    # soft right, strict wrong: 3 (the gold call plus an extra one)
    outputs[3] = grammar.render_assistant_turn("x", [items[3]["answer"][0], {"name": "Extra", "parameters": {}}])
    # both right: 4 (an unparseable line before the gold call is dropped), 5-9 untouched
    outputs[4] = outputs[4].replace("<tool_call>\n", "<tool_call>\n{broken\n")
    path = tmp_path / "level1.jsonl"
    path.write_text(
        "".join(json.dumps({"id": i["id"], "output": o}) + "\n" for i, o in zip(items, outputs, strict=True))
    )

    args = ["score", "--benchmark", "apibank", "--predictions", str(path), "--level", "1", "--data", str(DATA)]
    assert cli_main(args) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["benchmark"] == "apibank" and summary["level"] == 1 and summary["n"] == 10
    assert summary["accuracy"] == 0.7
    assert summary["strict_accuracy"] == 0.6
    assert summary["levels"]["1"]["of"] == 399


def test_soft_and_strict_match_rules():
    answer = [{"name": "A", "parameters": {"x": 1}}]
    render = grammar.render_assistant_turn
    assert apibank.match(render("t", answer), answer) == {"valid": True, "strict": True, "predicted": answer}
    both = render("t", [answer[0], {"name": "B", "parameters": {}}])
    assert (apibank.match(both, answer)["valid"], apibank.match(both, answer)["strict"]) == (True, False)
    assert not apibank.match(render("t", [{"name": "A", "parameters": {"x": "1"}}]), answer)["valid"]  # types count
    assert not apibank.match(None, answer)["valid"]
    # the last block counts, as in the BFCL handler
    two_blocks = (
        render("t", answer) + "\n<tool_call>\n" + json.dumps({"name": "B", "parameters": {}}) + "\n</tool_call>"
    )
    assert not apibank.match(two_blocks, answer)["valid"]


def test_combined_table_reports_levels_and_micro_overall():
    items = {
        1: [{"answer": [{"name": "A", "parameters": {}}]}] * 3,
        2: [{"answer": [{"name": "B", "parameters": {}}]}],
    }
    right = {n: grammar.render_assistant_turn("t", it[0]["answer"]) for n, it in items.items()}
    results = [
        apibank.score_level(
            [{"id": 0, "output": right[1]}, {"id": 1, "output": "no"}, {"id": 2, "output": "no"}], items[1], 1
        ),
        apibank.score_level([{"id": 0, "output": right[2]}], items[2], 2),
    ]
    report = apibank.combine(results)
    assert report.summary["level"] == "all" and report.summary["n"] == 4
    assert report.summary["accuracy"] == 0.5  # 2 of 4, micro average
    assert report.summary["levels"]["1"]["accuracy"] == pytest.approx(1 / 3)
    assert "overall" in report.table


def test_bad_files_and_ids_are_named(tmp_path):
    bad = tmp_path / "level-1-api_processed.json"
    bad.write_text(json.dumps([{"system": "s", "user": "u", "answer": [{"name": "A"}]}]))
    with pytest.raises(EvalDataError, match=r"level-1-api_processed.json: item 0 field 'answer'.*'parameters'"):
        apibank.load_level(bad)
    bad.write_text(json.dumps([{"system": "s", "answer": []}]))
    with pytest.raises(EvalDataError, match="item 0 lacks the 'user' field"):
        apibank.load_level(bad)
    bad.write_text(json.dumps([{"system": "s", "user": "u", "answer": [{"name": "A", "parameters": {}}]}]))
    assert apibank.level_source(tmp_path, 1) == str(bad)
    with pytest.raises(EvalDataError, match="id 5 is outside level 1"):
        apibank.score_predictions([{"id": 5, "output": ""}], tmp_path, 1)
    with pytest.raises(ValueError, match="valid: 1, 2, 3"):
        apibank.level_source(tmp_path, 4)


GOLD = {"name": "A", "parameters": {"x": 1, "flag": 1}}
LINE = json.dumps(GOLD)


def _paper(output, answer=(GOLD,)):
    return apibank.match(output, list(answer), "paper")["valid"]


def _project(output, answer=(GOLD,)):
    return apibank.match(output, list(answer), "project")["valid"]


def test_paper_parsing_without_a_tag_reads_every_json_line():
    # split("<tool_call>")[-1] is the whole text when there is no tag: a bare JSON line anywhere counts
    bare = f"<think> I will call it </think>\nHere: \n{LINE}\n<response> done </response>"
    assert _paper(bare) and not _project(bare)
    # ... but only up to a stray closing tag
    assert not _paper(f"text </tool_call>\n{LINE}")
    # with tags, the last block only, as the handler
    assert _paper(f"<tool_call>\n{json.dumps({'name': 'B', 'parameters': {}})}\n</tool_call>\n<tool_call>\n{LINE}")


@pytest.mark.parametrize("bad", ["5", "2.5", "true", "null", '"not json inside"', '["name", "parameters"]'])
def test_paper_one_try_around_the_loop_ends_the_check_at_a_failing_line(bad):
    # a number/bool/null ("name" in 5 raises), a string that is not JSON (json.loads raises), a list holding
    # "name" and "parameters" (list["name"] raises): every later line goes unchecked
    assert not _paper(f"<tool_call>\n{bad}\n{LINE}\n</tool_call>")
    assert _paper(f"<tool_call>\n{LINE}\n{bad}\n</tool_call>")  # the match came first


def test_paper_soft_match_quirks():
    block = "<tool_call>\n{}\n</tool_call>".format
    # a JSON string holding the call is decoded again (type str -> json.loads)
    assert _paper(block(json.dumps(LINE)))
    # a list without the two keys is compared as parameters (and is no dict): the check goes on
    assert _paper(f"<tool_call>\n[1, 2]\n{LINE}\n</tool_call>")
    # a dict without name/parameters: compared as the parameters of a call to the gold name
    assert _paper(block(json.dumps(GOLD["parameters"])))
    assert not _paper(block(json.dumps({"name": "A"})))  # no parameters: the whole dict is the parameters
    # Python equality: 1 == 1.0 and True == 1 (the project's JSON comparison tells them apart)
    loose = block(json.dumps({"name": "A", "parameters": {"x": 1.0, "flag": True}}))
    assert _paper(loose) and not _project(loose)
    # only the first gold call is compared
    second = {"name": "B", "parameters": {}}
    assert not _paper(block(json.dumps(second)), [GOLD, second]) and _project(
        block(json.dumps(second)), [GOLD, second]
    )


def test_paper_predictions_are_the_stored_json_values():
    output = "  <think> t </think>\n<tool_call>\n\n{broken\n3\n" + LINE + "\n</tool_call>  "
    assert apibank.paper_predictions(output) == [3, GOLD]  # blank and unparseable lines dropped, values kept
    assert apibank.paper_predictions(None) == []
    with pytest.raises(ValueError, match="unknown --protocol"):
        apibank.match(output, [GOLD], "v1")
