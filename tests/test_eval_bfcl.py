"""BFCL through bfcl-eval: gold-rendered outputs score 100%, hand-made wrong ones score as counted, the paper's
handler (prompt, decoders, budgets) and its table's formulas (BFCL v3) next to bfcl-eval v4's own summary."""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path

import pytest

from toolrl_trl import grammar
from toolrl_trl.eval import bfcl
from toolrl_trl.eval.__main__ import main as cli_main

pytestmark = pytest.mark.skipif(
    not bfcl.is_available(),
    reason=f'bfcl-eval is not installed: pip install --no-deps "bfcl-eval=={bfcl.BFCL_EVAL_VERSION}" (make install does)',
)

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "toolrl" / "benchmarks"
HANDLER = REFERENCE / "BFCL" / "rlla_qwen.py"
needs_handler = pytest.mark.skipif(not HANDLER.is_file(), reason=f"the paper's BFCL handler is not at {HANDLER}")


def reference_strings(path: Path) -> dict[str, str]:
    """The module-level string constants of a reference script, read as data (the script is never imported)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            out[node.targets[0].id] = node.value.value
    return out


def handler_tool_list(functions):
    """The handler's ``convert_to_format_tool``: numbered name / description / json.dumps(properties)."""
    return "\n".join(
        f"{i}. Name: {f['name']}\nDescription: {f['description']}\n"
        f"Parameters: {json.dumps(f['parameters'].get('properties', {}))}"
        for i, f in enumerate(functions, start=1)
    )


# ---------------------------------------------------------------------------------------------------------------------
# Gold rendering: the ground truth written out as a model would, in the ToolRL grammar
# ---------------------------------------------------------------------------------------------------------------------


def _first(options, required=False):
    """The first acceptable value; an optional parameter ("" among its options) is left out."""
    if not isinstance(options, list):
        return True, options
    if "" in options and not required:
        return False, None
    values = [v for v in options if v != ""]
    return (True, values[0]) if values else (False, None)


def _pick(value):
    """Resolve nested option lists (dict parameters hold ``{key: [options]}``)."""
    if isinstance(value, dict):
        out = {}
        for key, options in value.items():
            present, chosen = _first(options)
            if present:
                out[key] = _pick(chosen)
        return out
    if isinstance(value, list):
        return [_pick(x) if isinstance(x, dict) else x for x in value]
    return value


def _java_scalar(x, kind, quote):
    """A Java literal for one value of a (possibly unknown) Java type."""
    if isinstance(x, bool):
        return "true" if x else "false"
    if kind == "long":
        return f"{x}L"
    if kind == "float":
        return f"{x}f"
    if isinstance(x, str):
        return f'"{x}"' if quote else x
    return str(x)


def _java_source(value, spec):
    """Java source text whose conversion by bfcl-eval's converter gives back ``value``."""
    from bfcl_eval.eval_checker.ast_eval.type_convertor.java_type_converter import java_type_converter

    kind = spec["type"]
    nested = spec.get("items", {}).get("type") if kind in ("Array", "ArrayList") else None
    candidates = []
    if kind in ("Array", "ArrayList") and isinstance(value, list):
        for quote in (False, True):
            items = ", ".join(_java_scalar(x, nested, quote) for x in value)
            candidates += [f"new Object[]{{{items}}}", f"new ArrayList<>(Arrays.asList({items}))"]
    elif kind == "HashMap" and isinstance(value, dict):
        puts = " ".join(f'put("{k}", {_java_scalar(v, None, True)});' for k, v in value.items())
        candidates.append(f"new HashMap<String, Object>() {{{{ {puts} }}}}")
    else:
        candidates.append(_java_scalar(value, kind, False))
    for candidate in candidates:
        converted = java_type_converter(candidate, kind, nested) if nested else java_type_converter(candidate, kind)
        if converted == value:
            return candidate
    return candidates[0]


def _js_source(value, spec):
    if spec["type"] == "Boolean":
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return json.dumps(value)


def gold_calls(category, entry, answer):
    calls = []
    docs = {f["name"]: f for f in entry["function"]}
    for call in answer:
        ((name, params),) = call.items()
        args = {}
        required = docs[name]["parameters"].get("required", []) if name in docs else []
        for key, options in params.items():
            present, value = _first(options, key in required)
            if not present:
                continue
            value = _pick(value)
            spec = docs[name]["parameters"]["properties"].get(key, {}) if name in docs else {}
            if category == "simple_java":
                value = _java_source(value, spec)
            elif category == "simple_javascript":
                value = _js_source(value, spec)
            args[key] = value
        calls.append({"name": name, "parameters": args})
    return calls


def gold_output(category, entry):
    calls = gold_calls(category, entry, bfcl.ground_truth(category, entry["id"]))
    return grammar.render_assistant_turn("The request maps onto these calls.", calls)


def multi_turn_gold(entry):
    """Each turn: one step with the ground-truth calls (as JSON), then a response-only step."""
    docs = {f["name"]: f for f in entry["function"]}
    for missed in entry.get("missed_function", {}).values():
        docs.update({f["name"]: f for f in missed})
    turns = []
    for calls in bfcl.ground_truth(bfcl.category_of(entry["id"]), entry["id"]):
        parsed = []
        for text in calls:
            node = ast.parse(text, mode="eval").body
            name = node.func.id
            names = list(docs[name]["parameters"]["properties"])
            params = {names[i]: ast.literal_eval(a) for i, a in enumerate(node.args)}
            params.update({k.arg: ast.literal_eval(k.value) for k in node.keywords})
            parsed.append({"name": name, "parameters": params})
        steps = [grammar.render_assistant_turn("Calling the tools.", parsed)] if parsed else []
        turns.append([*steps, grammar.render_assistant_turn("Done.", None, "The task is complete.")])
    return turns


AST_CATEGORIES = bfcl.NON_LIVE_AST + bfcl.LIVE_AST
#: Items no output can pass with bfcl-eval 2026.3.23's checker and answer files (found by this test; pinned so a
#: change in bfcl-eval shows up here). Every other AST item is passed by its gold-rendered output.
UNSCORABLE = {
    # the Java converter turns each element of an ArrayList<any> into a string; the answers hold ints/booleans
    "simple_java_36": "ArrayList<any> of mixed types",
    "simple_java_65": "ArrayList<any> of mixed types",
    # a nested dict answer not wrapped in an options list: the checker compares against its characters
    "simple_java_64": "malformed nested answer",
    # a required parameter whose answer allows no value ([] or only "")
    "live_simple_106-63-0": "required parameter without an acceptable value",
    "live_simple_112-68-0": "required parameter without an acceptable value",
    "live_multiple_507-149-4": "required parameter without an acceptable value",
    "live_multiple_964-207-0": "required parameter without an acceptable value",
    # the answer names a parameter the function does not declare
    "live_multiple_862-181-3": "answer parameter missing from the function doc",
}


@pytest.mark.parametrize("category", AST_CATEGORIES)
def test_gold_outputs_score_full_marks(category):
    entries = bfcl.load_entries(category, for_generation=False)
    predictions = [{"id": e["id"], "output": gold_output(category, e)} for e in entries]
    report = bfcl.score_predictions(predictions, category)
    failures = [i for i in report.items if not i["valid"] and i["id"] not in UNSCORABLE]
    assert failures == []
    unscorable = set(UNSCORABLE) & {e["id"] for e in entries}
    assert {i["id"] for i in report.items if not i["valid"]} == unscorable
    assert report.summary["n"] == len(entries) > 0
    expected = 1.0 - len(unscorable) / len(entries)
    assert report.summary["accuracy"] == pytest.approx(expected)
    assert report.summary["partial"] == {}


def test_wrong_outputs_score_as_counted_by_hand():
    entries = bfcl.load_entries("simple_python", for_generation=False)[:10]
    outputs = [gold_output("simple_python", e) for e in entries]
    gold = [grammar.parse_tool_calls_lenient(o) for o in outputs]
    # 1: wrong function name; 2: a required parameter dropped; 3: response only (no call);
    # 4: an extra (second) call; 5: unparseable call line only. Items 5..9 stay correct.
    outputs[0] = grammar.render_assistant_turn("x", [{**gold[0][0], "name": "not_a_function"}])
    required = entries[1]["function"][0]["parameters"]["required"]
    dropped = {k: v for k, v in gold[1][0]["parameters"].items() if k != required[0]}
    outputs[1] = grammar.render_assistant_turn("x", [{"name": gold[1][0]["name"], "parameters": dropped}])
    outputs[2] = grammar.render_assistant_turn("x", None, "I cannot help with that.")
    outputs[3] = grammar.render_assistant_turn("x", [gold[3][0], gold[3][0]])
    outputs[4] = "<think> x </think>\n<tool_call>\n{not json}\n</tool_call>"
    predictions = [{"id": e["id"], "output": o} for e, o in zip(entries, outputs, strict=True)]
    report = bfcl.score_predictions(predictions, "simple_python")
    assert [i["valid"] for i in report.items] == [False] * 5 + [True] * 5
    assert report.summary["accuracy"] == 0.5
    assert report.summary["partial"] == {"simple_python": "10/400"}


def test_decoding_follows_the_papers_handler():
    text = (
        '<think> a </think>\n<tool_call>\n{"name": "f", "parameters": {"x": 1}}\n</tool_call>\n'
        '<tool_call>\n{"name": "g", "parameters": {"s": "a\'b", "l": [1, 2]}}\nnot json\n'
        '{"name": "None", "parameters": {}}\n</tool_call>'
    )
    for protocol in bfcl.PROTOCOLS:
        assert bfcl.decode_ast(text, protocol) == [{"g": {"s": "a'b", "l": [1, 2]}}]  # last block; bad line, None out
        assert bfcl.decode_execute(text, protocol) == ['g(s="a\'b", l=[1, 2])']
        assert bfcl.decode_ast("<think> a </think>\n<response> no call </response>", protocol) == []


def _block(*lines):
    return "<think> t </think>\n<tool_call>\n" + "\n".join(lines) + "\n</tool_call>"


def test_paper_decoders_keep_the_handlers_quirks():
    # decode_ast: json.loads, then call["name"].strip() and call["parameters"]; any failure skips the line
    text = _block(
        '{"name": "no_params"}',  # KeyError on "parameters": skipped by decode_ast
        '{"name": 7, "parameters": {}}',  # 7.strip() fails: skipped
        "[1, 2]",  # a list: call["name"] fails
        '"just a string"',
        '{"name": "", "parameters": {}}',  # an empty name is kept
        '{"name": "odd", "parameters": [1]}',  # parameters not a dict: kept by the decoder
        '{"name": "ok", "parameters": {"a": true}}',
    )
    assert bfcl.decode_ast(text) == [{"": {}}, {"odd": [1]}, {"ok": {"a": True}}]
    assert bfcl.decode_ast(text, "project") == [{"ok": {"a": True}}]  # only well-formed calls
    # decode_execute: non-objects dropped, "parameters" defaults to {} (a call without them runs as name())
    assert bfcl.decode_execute(_block('{"name": "ls"}', "3", '{"name": "cd", "parameters": {"folder": "x"}}')) == [
        "ls()",
        "cd(folder='x')",
    ]
    assert bfcl.decode_execute(_block('{"name": "ls"}'), "project") == []
    # a non-string name or non-dict parameters make the handler's decode_execute raise (BFCL: no call this step)
    for line in ('{"name": 7, "parameters": {}}', '{"name": "f", "parameters": [1]}'):
        with pytest.raises(bfcl.DecodeError):
            bfcl.decode_execute(_block(line))


def test_paper_decoding_decides_relevance_and_ast_format_as_bfcl_eval_does():
    irrelevant = bfcl.load_entries("irrelevance", for_generation=False)[:3]
    simple = bfcl.load_entries("simple_python", for_generation=False)[0]
    gold = gold_calls("simple_python", simple, bfcl.ground_truth("simple_python", simple["id"]))[0]
    outputs = [
        _block('{"name": "f", "parameters": [1]}'),  # decoded, but not call format: "empty" -> no call -> passes
        _block('{"name": "f"}'),  # no parameters: decode_ast drops it -> no call -> passes
        _block('{"name": "", "parameters": {}}'),  # a (nameless) call in call format -> fails
    ]
    rows = [{"id": e["id"], "output": o} for e, o in zip(irrelevant, outputs, strict=True)]
    verdicts = bfcl.score_predictions(rows).items
    assert [v["valid"] for v in verdicts] == [True, True, False]
    # AST: a decoded list not in call format fails before the checker, even with the gold call beside it
    wrong_format = _block(json.dumps(gold), '{"name": "x", "parameters": "s"}')
    report = bfcl.score_predictions([{"id": simple["id"], "output": wrong_format}])
    assert report.items[0]["valid"] is False and "format" in report.items[0]["error"]


def test_multi_turn_step_whose_decoding_raises_ends_the_turn():
    entry = bfcl.load_entries("multi_turn_base", for_generation=True)[0]
    episode = bfcl.MultiTurnEpisode(entry)
    episode.observe(_block('{"name": 7, "parameters": {}}'))
    assert episode.turn == 1 and episode.responses == [[_block('{"name": 7, "parameters": {}}')]]
    episode.observe(_block('{"name": "ls"}'))  # runs ls() on the simulated file system
    assert episode.turn == 1 and episode.history[-1]["role"] == "tool" and episode.history[-1]["name"] == "ls()"
    bfcl._release_instances(episode.model_name)


def test_relevance_categories_count_calls():
    irrelevant = bfcl.load_entries("irrelevance", for_generation=False)[:4]
    relevant = bfcl.load_entries("live_relevance", for_generation=False)[:2]
    call = grammar.render_assistant_turn("x", [{"name": "anything", "parameters": {}}])
    answer = grammar.render_assistant_turn("x", None, "No tool fits.")
    predictions = [
        {"id": e["id"], "output": o} for e, o in zip(irrelevant, [answer, answer, answer, call], strict=True)
    ]
    predictions += [{"id": e["id"], "output": o} for e, o in zip(relevant, [call, answer], strict=True)]
    report = bfcl.score_predictions(predictions)
    assert report.summary["categories"]["irrelevance"] == {"n": 4, "accuracy": 0.75}
    assert report.summary["categories"]["live_relevance"] == {"n": 2, "accuracy": 0.5}
    assert report.summary["paper_columns"]["relevance"] == 0.5
    assert report.summary["paper_columns"]["irrelevance"] is None  # live_irrelevance missing
    assert report.summary["paper_columns"]["non_live_exec"] is None


@pytest.mark.parametrize("category", bfcl.MULTI_TURN)
def test_multi_turn_gold_passes_and_a_skipped_turn_fails(category):
    entries = bfcl.load_entries(category, for_generation=False)[:3]
    predictions = [{"id": e["id"], "output": multi_turn_gold(e)} for e in entries]
    broken = multi_turn_gold(entries[0])
    first_with_calls = next(i for i, t in enumerate(broken) if len(t) > 1)
    broken[first_with_calls] = broken[first_with_calls][1:]  # the turn's calls never made
    predictions.append({"id": entries[0]["id"], "output": broken})
    good = bfcl.score_predictions(predictions[:3], category)
    assert good.summary["accuracy"] == 1.0, good.items
    bad = bfcl.score_predictions(predictions[3:], category)
    assert bad.summary["accuracy"] == 0.0


def test_multi_turn_episode_executes_calls_on_simulated_tools():
    entry = bfcl.load_entries("multi_turn_base", for_generation=True)[0]
    gold = multi_turn_gold(entry)
    script = iter(step for turn in gold for step in turn)
    seen_prompts = []

    def generate(conversations):
        seen_prompts.extend(conversations)
        return [next(script) for _ in conversations]

    (responses,) = bfcl.run_multi_turn([entry], generate)
    assert responses == gold
    later = seen_prompts[1][1]["content"]  # the user message of the second model call
    assert "You have made the tool call cd(folder='document')." in later
    assert later.endswith(bfcl.AFTER_TOOL_INSTRUCTION + " </user>")
    report = bfcl.score_predictions([{"id": entry["id"], "output": responses}])
    assert report.summary["accuracy"] == 1.0


@needs_handler
def test_prompt_matches_the_papers_handler_byte_for_byte(tiny_model_dir):
    from transformers import AutoTokenizer

    constants = reference_strings(HANDLER)
    entry = bfcl.load_entries("simple_python", for_generation=True)[0]
    system, user = bfcl.single_turn_messages(entry)
    expected_system = constants["SYS"].format(
        tools=handler_tool_list(entry["function"]), json_string=constants["json_string"]
    )
    assert system["content"] == expected_system and expected_system.endswith("(if exists).\n")
    assert "Note that the provided function is in Python 3 syntax." in system["content"]
    question = entry["question"][0][0]["content"].strip()
    assert user["content"] == (f"{grammar.DIALOGUE_HEADER}\n<user> {question}\n{bfcl.SINGLE_TURN_INSTRUCTION} </user>")
    # the handler writes the Qwen prompt by hand; a Qwen chat template renders the same text
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    rendered = tokenizer.apply_chat_template([system, user], tokenize=False, add_generation_prompt=True)
    expected = f"<|im_start|>system\n{expected_system}<|im_end|>\n<|im_start|>user\n{user['content']}<|im_end|>\n"
    assert rendered == expected + "<|im_start|>assistant\n"


def test_project_protocol_prompt_is_the_training_datas():
    entry = bfcl.load_entries("simple_python", for_generation=True)[0]
    system, _ = bfcl.single_turn_messages(entry, protocol="project")
    tool = entry["function"][0]
    assert system["content"] == grammar.render_system_prompt(
        [grammar.ToolSpec(tool["name"], tool["description"], tool["parameters"]["properties"])]
    )
    assert system["content"].endswith("(if exists).")
    with pytest.raises(ValueError, match="unknown --protocol 'v3'; valid: paper, project"):
        bfcl.single_turn_messages(entry, protocol="v3")


@pytest.mark.parametrize(
    ("protocol", "flag", "instruction"),
    [
        ("paper", None, bfcl.SINGLE_TURN_INSTRUCTION),  # BFCL calls _format_prompt without turn_type
        ("paper", True, bfcl.MULTI_TURN_INSTRUCTION),
        ("project", None, bfcl.MULTI_TURN_INSTRUCTION),
    ],
)
def test_multi_turn_instruction_follows_the_released_path(protocol, flag, instruction):
    entry = bfcl.load_entries("multi_turn_base", for_generation=True)[0]
    episode = bfcl.MultiTurnEpisode(entry, protocol=protocol, multi_turn_instruction=flag)
    user = episode.prompt()[1]["content"]
    question = entry["question"][0][0]["content"].strip()
    assert user == f"{grammar.DIALOGUE_HEADER}\n<user> {question}\n{instruction} </user>"
    episode.observe("<think> nothing to do </think>")  # no call: on to the next turn
    bfcl._release_instances(episode.model_name)


def test_categories_resolve_and_retired_ones_are_explained():
    assert bfcl.resolve_categories("multi_turn") == bfcl.MULTI_TURN
    assert bfcl.resolve_categories(None) == bfcl.CATEGORIES
    with pytest.raises(ValueError, match="retired"):
        bfcl.resolve_categories("exec_simple")
    with pytest.raises(ValueError, match="valid: all"):
        bfcl.resolve_categories("simple")


def test_bfcl_writes_nothing_into_site_packages():
    import bfcl_eval

    bfcl.load_bfcl()
    root = Path(os.environ["BFCL_PROJECT_ROOT"]).resolve()
    site_packages = Path(bfcl_eval.__file__).resolve().parents[1]
    assert site_packages not in root.parents and root != site_packages
    assert not (site_packages / "result").exists() and not (site_packages / ".file_locks").exists()


def test_score_cli_prints_table_and_json_last_line(tmp_path, capsys):
    entries = bfcl.load_entries("parallel", for_generation=False)[:4]
    rows = [{"id": e["id"], "output": gold_output("parallel", e)} for e in entries]
    rows[2]["output"] = "<think> x </think>\n<response> none </response>"
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert cli_main(["score", "--benchmark", "bfcl", "--predictions", str(path), "--category", "parallel"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    summary = json.loads(lines[-1])
    assert summary["benchmark"] == "bfcl" and summary["category"] == "parallel"
    assert summary["n"] == 4 and summary["accuracy"] == 0.75
    assert any("Non-live AST" in line for line in lines)


def _r(correct, n):
    return {"correct": correct, "n": n, "of": n}


#: Counts chosen so that count-weighted and plain means differ in every group (a wrong weighting fails).
HAND_RESULTS = {
    "simple_python": _r(4, 4),  # simple = (1 + 0.5 + 0) / 3 = 0.5
    "simple_java": _r(1, 2),
    "simple_javascript": _r(0, 1),
    "multiple": _r(1, 1),
    "parallel": _r(0, 1),
    "parallel_multiple": _r(1, 2),  # non-live AST = (0.5 + 1 + 0 + 0.5) / 4 = 0.5
    "irrelevance": _r(3, 4),  # non-live overall = (0.5 + 1 + 0 + 0.5 + 0.75) / 5 = 0.55
    "live_simple": _r(3, 4),
    "live_multiple": _r(1, 8),
    "live_parallel": _r(0, 2),
    "live_parallel_multiple": _r(2, 2),
    "live_irrelevance": _r(6, 10),
    "live_relevance": _r(1, 4),  # live = (3+1+0+2+6+1) / (4+8+2+2+10+4) = 13/30 (plain mean 0.454, AST-only 0.375)
    "multi_turn_base": _r(1, 2),
    "multi_turn_miss_func": _r(1, 4),
    "multi_turn_miss_param": _r(3, 4),
    "multi_turn_long_context": _r(0, 2),  # multi-turn = (0.5 + 0.25 + 0.75 + 0) / 4 = 0.375 (weighted 5/12)
}


def test_paper_columns_by_hand():
    columns = bfcl.paper_columns(HAND_RESULTS)
    assert columns == {
        "overall": pytest.approx((0.55 + 13 / 30 + 0.375) / 3),
        "non_live_ast": pytest.approx(0.5),
        "non_live_exec": None,
        "live": pytest.approx(13 / 30),
        "multi_turn": pytest.approx(0.375),
        "relevance": 0.25,
        "irrelevance": pytest.approx((0.75 + 0.6) / 2),
        "non_live_overall": pytest.approx(0.55),
    }
    results = dict(HAND_RESULTS)
    del results["multi_turn_base"]
    assert bfcl.paper_columns(results)["overall"] is None and bfcl.paper_columns(results)["multi_turn"] is None
    del results["live_relevance"]  # Live needs the relevance categories
    assert bfcl.paper_columns(results)["live"] is None


def test_v4_summary_is_bfcl_evals_own_formula():
    v4 = bfcl.v4_summary(HAND_RESULTS)
    # v4 (eval_runner_helper): Live = count-weighted over the four live AST categories only = 6/16; non-live
    # overall = the four AST groups (0.5); irrelevance = (0.75 + 0.6) / 2; Overall = 10/10/10/30/40 weights over
    # non-live, live, irrelevance, multi-turn and agentic (not run: 0)
    assert v4["live"] == pytest.approx(6 / 16)
    assert v4["non_live_ast"] == pytest.approx(0.5)
    assert v4["irrelevance"] == pytest.approx(0.675)
    assert v4["multi_turn"] == pytest.approx(0.375)
    assert v4["overall"] == pytest.approx((10 * 0.5 + 10 * 0.375 + 10 * 0.675 + 30 * 0.375 + 40 * 0) / 100)
    assert v4["relevance"] == pytest.approx(0.25)
    assert v4["web_search"] is None and v4["memory"] is None  # N/A: not run


def test_report_prints_both_summaries_labelled(tmp_path):
    entries = bfcl.load_entries("irrelevance", for_generation=False)[:2]
    rows = [{"id": e["id"], "output": "<think> none </think>\n<response> no </response>"} for e in entries]
    report = bfcl.score_predictions(rows)
    assert report.summary["protocol"] == "paper" and report.summary["bfcl_eval_version"] == bfcl.BFCL_EVAL_VERSION
    assert set(report.summary["bfcl_v4_summary"]) == set(bfcl.V4_COLUMNS)
    assert "BFCL v3 formulas" in report.table and "NOT the paper's columns" in report.table
    assert "without the four executable groups" in report.table


@pytest.mark.parametrize("category", ["simple_python", "parallel_multiple", "live_multiple"])
def test_gold_outputs_score_full_marks_under_the_project_protocol_too(category):
    entries = bfcl.load_entries(category, for_generation=False)[:40]
    predictions = [{"id": e["id"], "output": gold_output(category, e)} for e in entries]
    report = bfcl.score_predictions(predictions, category, protocol="project")
    assert [i["id"] for i in report.items if not i["valid"]] == [e["id"] for e in entries if e["id"] in UNSCORABLE]
    assert report.summary["protocol"] == "project"
