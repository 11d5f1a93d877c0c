"""The data layer: every source loads into validated TRL rows, bad rows fail loudly, stats match the data."""

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from datasets import Dataset
from helpers import SHARED_DATA  # noqa: E402

from toolrl_trl import grammar
from toolrl_trl.data import (
    PLACEHOLDER_THINK,
    DataConfig,
    DataSourceError,
    DataValidationError,
    build_datasets,
    prepare_datasets,
    synthetic_tasks,
)

SHARED = SHARED_DATA
SFT_JSON = SHARED / "rlla_sft.json"
RL_PARQUET = SHARED / "rlla_4k_test.parquet"
needs_shared = pytest.mark.skipif(
    not SFT_JSON.exists() or not RL_PARQUET.exists(),
    reason=f"the paper's ToolRL data is not at {SHARED} (the shared checkout is absent)",
)

SYSTEM = grammar.render_system_prompt(
    [grammar.ToolSpec("get_weather", "Weather of a city.", {"city": {"type": "str"}})]
)
USER = grammar.render_user_message("What is the weather in Paris?")
CALL = '<think> I call get_weather. </think>\n<tool_call>\n{"name": "get_weather", "parameters": {"city": "Paris"}}\n</tool_call>'
ANSWER = "<think> No tool is needed. </think>\n<response> Hello! </response>"


def _raw(output=CALL, instruction=SYSTEM, input_=USER):
    return {"instruction": instruction, "input": input_, "output": output}


def _write_json(path: Path, rows) -> str:
    path.write_text(json.dumps(rows))
    return str(path)


def _write_jsonl(path: Path, rows) -> str:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


def _config(source: str, **kwargs) -> DataConfig:
    return DataConfig(data_source=source, **{"test_size": 0.0, **kwargs})


def _independent_output_stats(outputs):
    """Counts computed with plain string operations (not the grammar module) to cross-check the stats."""
    calls_only = response_only = both = 0
    calls = []
    for text in outputs:
        after = text.split("</think>", 1)[1]
        has_call, has_response = "<tool_call>" in after, "<response>" in after
        both += has_call and has_response
        calls_only += has_call and not has_response
        response_only += has_response and not has_call
        block = after.split("<tool_call>", 1)[1].split("</tool_call>", 1)[0].strip() if has_call else ""
        calls.append(len(block.split("\n")) if block else 0)
    return {
        "rows": len(outputs),
        "calls_only": calls_only,
        "response_only": response_only,
        "both": both,
        "calls_per_row": sum(calls) / len(outputs),
        "max_calls": max(calls),
    }


# ---------------------------------------------------------------------------------------------------------------------
# The paper's files
# ---------------------------------------------------------------------------------------------------------------------


@needs_shared
def test_toolrl_raw_sft400_loads_as_sft_rows_with_matching_stats():
    raw = json.loads(SFT_JSON.read_text())
    prepared = prepare_datasets(_config(str(SFT_JSON)), kind="sft")
    train = prepared.datasets["train"]
    assert len(train) == len(raw) == 400 and len(prepared.datasets["test"]) == 0
    assert train.column_names == ["prompt", "completion"]
    assert train[0]["prompt"] == [
        {"role": "system", "content": raw[0]["instruction"]},
        {"role": "user", "content": raw[0]["input"]},
    ]
    assert train[7]["completion"] == [{"role": "assistant", "content": raw[7]["output"]}]
    stats = prepared.stats()["train"]
    expected = _independent_output_stats([row["output"] for row in raw])
    assert stats == pytest.approx(expected)
    assert (stats["calls_only"], stats["response_only"], stats["both"]) == (346, 54, 0)
    assert prepared.reports[0].shape == "toolrl_raw" and prepared.reports[0].rows_out == 400


@needs_shared
def test_sft400_rows_that_quote_tool_call_in_thoughts_are_rejected_as_rl_ground_truths(caplog):
    raw = json.loads(SFT_JSON.read_text())
    quoting = [i for i, row in enumerate(raw) if "<tool_call>" in row["output"].split("</think>", 1)[0]]
    assert len(quoting) == 17
    with pytest.raises(DataValidationError) as info:
        build_datasets(_config(str(SFT_JSON)), kind="rl")
    err = info.value
    assert (err.source, err.split, err.index, err.code, err.more) == (
        str(SFT_JSON),
        "train",
        quoting[0],
        "ground_truth_calls",
        16,
    )
    assert f"row {quoting[0]}" in str(err) and str(SFT_JSON) in str(err) and "thoughts quote <tool_call>" in str(err)
    with caplog.at_level(logging.WARNING, logger="toolrl_trl.data"):
        prepared = prepare_datasets(_config(str(SFT_JSON), skip_invalid_rows=True), kind="rl")
    assert len(prepared.datasets["train"]) == 400 - 17
    assert dict(prepared.reports[0].invalid) == {"ground_truth_calls": 17}
    assert "skipped 17 invalid row(s): 17 ground_truth_calls" in caplog.text
    kept = {row["ground_truth"] for row in prepared.datasets["train"]}
    assert not kept & {raw[i]["output"] for i in quoting}


@needs_shared
def test_toolrl_processed_parquet_loads_as_rl_rows_with_matching_stats():
    import pyarrow.parquet as pq

    table = pq.read_table(RL_PARQUET).to_pylist()
    prepared = prepare_datasets(_config(str(RL_PARQUET)), kind="rl")
    train = prepared.datasets["train"]
    assert len(train) == len(table) == 80
    assert train.column_names == ["prompt", "ground_truth"]
    assert train[3]["ground_truth"] == table[3]["reward_model"]["ground_truth"]
    assert train[3]["prompt"] == [{"role": m["role"], "content": m["content"]} for m in table[3]["prompt"]]
    expected = _independent_output_stats([row["reward_model"]["ground_truth"] for row in table])
    assert prepared.stats()["train"] == pytest.approx(expected)
    assert prepared.reports[0].shape == "toolrl_processed"


@needs_shared
def test_paper_split_is_two_percent_and_seeded():
    first = build_datasets(DataConfig(data_source=str(SFT_JSON)), kind="sft")
    again = build_datasets(DataConfig(data_source=str(SFT_JSON)), kind="sft")
    other = build_datasets(DataConfig(data_source=str(SFT_JSON)), kind="sft", seed=1)
    assert (len(first["train"]), len(first["test"])) == (392, 8)
    assert first["test"]["completion"] == again["test"]["completion"]
    assert first["test"]["completion"] != other["test"]["completion"]
    train_outputs = {row[0]["content"] for row in first["train"]["completion"]}
    assert not train_outputs & {row[0]["content"] for row in first["test"]["completion"]}


# ---------------------------------------------------------------------------------------------------------------------
# Fixture sources
# ---------------------------------------------------------------------------------------------------------------------


def _xlam_rows():
    tools = [
        {
            "name": "get_weather",
            "description": "Weather of a city.",
            "parameters": {"city": {"description": "City name.", "type": "str", "default": "Paris"}},
        },
        {
            "name": "search",
            "description": "Search the web.",
            "parameters": {"q": {"description": "Query.", "type": "str"}},
        },
    ]
    return [
        {
            "id": 0,
            "query": "Weather in Rome?",
            "tools": json.dumps(tools),
            "answers": json.dumps([{"name": "get_weather", "arguments": {"city": "Rome"}}]),
        },
        {
            "id": 1,
            "query": "Weather in Rome and Oslo, and search for cats.",
            "tools": json.dumps(tools),
            "answers": json.dumps(
                [
                    {"name": "get_weather", "arguments": {"city": "Rome"}},
                    {"name": "get_weather", "arguments": {"city": "Oslo"}},
                    {"name": "search", "arguments": {"q": "cats", "limit": 3}},
                ]
            ),
        },
    ]


def test_xlam_jsonl_is_rendered_like_the_papers_rl_data(tmp_path):
    rows = _xlam_rows()
    source = _write_jsonl(tmp_path / "xlam.jsonl", rows)
    prepared = prepare_datasets(_config(source), kind="rl")
    train = prepared.datasets["train"]
    assert prepared.reports[0].shape == "xlam" and len(train) == 2
    tools = [grammar.ToolSpec(t["name"], t["description"], t["parameters"]) for t in json.loads(rows[1]["tools"])]
    assert train[1]["prompt"][0]["content"] == grammar.render_system_prompt(tools)
    assert train[1]["prompt"][1]["content"] == f"**Dialogue Records History**\n<user> {rows[1]['query']} </user>"
    expected = (
        f"<think> {PLACEHOLDER_THINK} </think>\n<tool_call>\n"
        '{"name": "get_weather", "parameters": {"city": "Rome"}}\n'
        '{"name": "get_weather", "parameters": {"city": "Oslo"}}\n'
        '{"name": "search", "parameters": {"q": "cats", "limit": 3}}\n</tool_call>'
    )
    assert train[1]["ground_truth"] == expected
    assert (
        PLACEHOLDER_THINK == "I should use the appropriate tool with proper parameters to respond to the user's need."
    )
    stats = prepared.stats()["train"]
    assert (stats["rows"], stats["calls_only"], stats["calls_per_row"], stats["max_calls"]) == (2, 2, 2.0, 3)


def test_xlam_with_parsed_lists_and_string_arguments(tmp_path):
    row = {
        "query": "Search cats.",
        "tools": [{"name": "search", "description": "Search.", "parameters": {"q": {"type": "str"}}}],
        "answers": [{"name": "search", "arguments": json.dumps({"q": "cats"})}],
    }
    train = build_datasets(_config(_write_json(tmp_path / "x.json", [row])))["train"]
    assert grammar.parse_ground_truth_calls(train[0]["ground_truth"]) == [
        {"name": "search", "parameters": {"q": "cats"}}
    ]


def test_synthetic_source_default_and_options():
    config = DataConfig(synthetic_train_size=30, synthetic_test_size=6, synthetic_held_out_tools=3, dataset_seed=4)
    assert DataConfig().data_source == "synthetic"
    prepared = prepare_datasets(config, kind="rl")
    data = prepared.datasets
    assert (len(data["train"]), len(data["test"])) == (30, 6)
    assert [report.split for report in prepared.reports] == ["train", "test"]
    from toolrl_trl.synthetic import generate_tasks, render_rows

    tasks = generate_tasks(30, 6, seed=4, held_out_tools=3)
    assert synthetic_tasks(config) == tasks
    assert data["train"].to_list() == render_rows(tasks["train"], "rl")
    assert data["test"].to_list() == render_rows(tasks["test"], "rl")
    sft = build_datasets(config, kind="sft")
    assert sft["test"].to_list() == render_rows(tasks["test"], "sft")
    stats = prepared.stats()["train"]
    expected = _independent_output_stats([row["ground_truth"] for row in data["train"]])
    assert stats == pytest.approx(expected)


def test_prepared_folder_round_trips_as_a_source(tmp_path):
    config = DataConfig(synthetic_train_size=20, synthetic_test_size=4)
    for kind in ("rl", "sft"):
        original = build_datasets(config, kind=kind)
        original.save_to_disk(str(tmp_path / kind))
        reloaded = build_datasets(_config(str(tmp_path / kind)), kind=kind)
        assert reloaded["train"].to_list() == original["train"].to_list()
        assert reloaded["test"].to_list() == original["test"].to_list(), "the saved test split is kept, not re-cut"
    as_rl = build_datasets(_config(str(tmp_path / "sft")), kind="rl")
    assert as_rl["train"]["ground_truth"] == build_datasets(config, kind="rl")["train"]["ground_truth"]


def test_file_url_and_separate_test_source(tmp_path):
    train_path = _write_json(tmp_path / "train.json", [_raw()] * 5)
    test_path = _write_jsonl(tmp_path / "test.jsonl", [_raw(output=ANSWER)] * 2)
    data = build_datasets(DataConfig(data_source=Path(train_path).as_uri(), data_test_source=test_path))
    assert (len(data["train"]), len(data["test"])) == (5, 2)
    assert data["test"][0]["ground_truth"] == ANSWER


def test_max_samples_take_seeded_subsets(tmp_path):
    rows = [_raw(output=CALL.replace("Paris", f"City{i}")) for i in range(50)]
    source = _write_json(tmp_path / "many.json", rows)
    first = build_datasets(DataConfig(data_source=source, test_size=0.1, max_train_samples=12, max_test_samples=2))
    again = build_datasets(DataConfig(data_source=source, test_size=0.1, max_train_samples=12, max_test_samples=2))
    assert (len(first["train"]), len(first["test"])) == (12, 2)
    assert first["train"]["ground_truth"] == again["train"]["ground_truth"]
    assert not set(first["train"]["ground_truth"]) & set(first["test"]["ground_truth"])


# ---------------------------------------------------------------------------------------------------------------------
# Malformed rows and sources
# ---------------------------------------------------------------------------------------------------------------------

BAD_TURN_ROWS = {
    "source_row": _raw(output=None),
    "prompt": _raw(instruction=""),
    "assistant_turn": _raw(output="I call get_weather.\n<tool_call>\n{}\n</tool_call>"),
    "assistant_turn_bad_json": _raw(output="<think> x </think>\n<tool_call>\n{'name': 'f'}\n</tool_call>"),
    "assistant_turn_missing_parameters": _raw(output='<think> x </think>\n<tool_call>\n{"name": "f"}\n</tool_call>'),
    "empty_output": _raw(output="<think> I am done. </think>"),
    "ground_truth_calls": _raw(output="<think> I use <tool_call> tags. </think>\n" + CALL.split("\n", 1)[1]),
}


@pytest.mark.parametrize("case", sorted(BAD_TURN_ROWS))
@pytest.mark.parametrize("kind", ["rl", "sft"])
def test_each_kind_of_bad_row_raises_with_source_row_and_reason(tmp_path, case, kind):
    source = _write_json(tmp_path / "rows.json", [_raw(), _raw(output=ANSWER), BAD_TURN_ROWS[case], _raw()])
    code = case if case in ("source_row", "prompt", "empty_output", "ground_truth_calls") else "assistant_turn"
    if kind == "sft" and code == "ground_truth_calls":
        assert len(build_datasets(_config(source), kind="sft")["train"]) == 4, "SFT targets may quote tags in thoughts"
        return
    with pytest.raises(DataValidationError) as info:
        build_datasets(_config(source), kind=kind)
    err = info.value
    assert (err.source, err.split, err.index, err.code, err.more) == (source, "train", 2, code, 0)
    assert isinstance(err, ValueError) and f"{source}: split 'train', row 2: " in str(err)
    prepared = prepare_datasets(_config(source, skip_invalid_rows=True), kind=kind)
    assert len(prepared.datasets["train"]) == 3
    assert dict(prepared.reports[0].invalid) == {code: 1}


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ({"query": "q", "tools": "[not json", "answers": "[]"}, "'tools' is not valid JSON"),
        ({"query": "q", "tools": "{}", "answers": "[]"}, "'tools' must be a JSON list"),
        ({"query": "q", "tools": '[{"description": "d"}]', "answers": "[]"}, "tool 0 is not an object"),
        ({"query": "q", "tools": "[]", "answers": "[]"}, "'answers' is empty"),
        ({"query": "q", "tools": "[]", "answers": '[{"arguments": {}}]'}, "answer 0 is not an object"),
        ({"query": "q", "tools": "[]", "answers": '[{"name": "f", "arguments": "{oops"}]'}, "not JSON"),
        ({"query": "q", "tools": "[]", "answers": '[{"name": "f", "arguments": [1]}]'}, "arguments of type list"),
        ({"query": "", "tools": "[]", "answers": '[{"name": "f", "arguments": {}}]'}, "'query' is empty"),
    ],
)
def test_bad_xlam_rows(tmp_path, row, reason):
    good = _xlam_rows()[0]
    source = _write_jsonl(tmp_path / "x.jsonl", [good, row])
    with pytest.raises(
        DataValidationError, match="row 1: .*" + reason.replace("(", r"\(").replace("[", r"\[")
    ) as info:
        build_datasets(_config(source))
    assert info.value.index == 1


def test_bad_processed_and_trl_rows(tmp_path):
    prompt = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": USER}]
    processed = [
        {"prompt": prompt, "reward_model": {"ground_truth": CALL, "style": "rule"}},
        {"prompt": prompt, "reward_model": {"ground_truth": None, "style": "rule"}},
    ]
    path = tmp_path / "p.parquet"
    Dataset.from_list(processed).to_parquet(str(path))
    with pytest.raises(DataValidationError, match="row 1: reward_model has no string 'ground_truth'"):
        build_datasets(_config(str(path)))
    swapped = [{"prompt": prompt[::-1], "reward_model": {"ground_truth": CALL, "style": "rule"}}]
    Dataset.from_list(swapped).to_parquet(str(path))
    with pytest.raises(DataValidationError, match=r"roles must be \['system', 'user'\], got \['user', 'system'\]"):
        build_datasets(_config(str(path)))
    completion = [{"prompt": prompt, "completion": [{"role": "user", "content": ANSWER}]}]
    with pytest.raises(DataValidationError, match="completion message has role 'user'"):
        build_datasets(_config(_write_json(tmp_path / "c.json", completion)), kind="sft")


def test_many_bad_rows_report_the_first_and_count_the_rest(tmp_path):
    rows = [_raw(), _raw(output="oops"), _raw(), _raw(output=None), _raw(output="<think> x </think>")]
    source = _write_json(tmp_path / "rows.json", rows)
    with pytest.raises(
        DataValidationError, match=r"row 1: .*\(2 more invalid row\(s\) in this split; set skip_invalid_rows"
    ):
        build_datasets(_config(source))
    prepared = prepare_datasets(_config(source, skip_invalid_rows=True))
    assert dict(prepared.reports[0].invalid) == {"assistant_turn": 1, "source_row": 1, "empty_output": 1}
    assert prepared.reports[0].rows_out == 2


def test_unknown_layout_says_why_each_shape_failed(tmp_path):
    source = _write_json(tmp_path / "odd.json", [{"question": "q", "output": "o", "prompt": "p"}])
    with pytest.raises(DataSourceError) as info:
        build_datasets(_config(source))
    message = str(info.value)
    assert "no supported layout matches its columns" in message
    assert "trl_rows" in message and "needs one of ['ground_truth', 'completion']" in message
    assert "toolrl_processed" in message and "missing column(s) ['reward_model']" in message
    assert "toolrl_raw" in message and "missing column(s) ['instruction', 'input']" in message
    assert "xlam" in message and "missing column(s) ['query', 'tools', 'answers']" in message


@pytest.mark.parametrize(
    ("source", "match"),
    [
        ("does/not/exist.json", "no such file or folder"),
        ("./missing_dir/", "no such file or folder"),
        ("nobody-here/no-such-dataset-xyz", "tried as a Hugging Face Hub dataset id, which could not be loaded"),
        ("https://example.com/data.txt", "must end in one of"),
    ],
)
def test_unloadable_sources(source, match):
    with pytest.raises(DataSourceError, match=match):
        build_datasets(_config(source))


def test_unsupported_file_type(tmp_path):
    path = tmp_path / "data.xml"
    path.write_text("<rows/>")
    with pytest.raises(DataSourceError, match="unsupported file type"):
        build_datasets(_config(str(path)))


def test_unknown_kind_lists_valid_kinds():
    with pytest.raises(ValueError, match=r"valid: \['rl', 'sft'\]"):
        build_datasets(DataConfig(synthetic_train_size=2, synthetic_test_size=1), kind="dpo")


# ---------------------------------------------------------------------------------------------------------------------
# Prompt-length filter
# ---------------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


def test_length_filter_drops_exactly_the_long_prompts(tokenizer, caplog):
    base = DataConfig(synthetic_train_size=60, synthetic_test_size=10, max_prompt_length=None)
    unfiltered = build_datasets(base)
    lengths = {
        name: [
            len(tokenizer.apply_chat_template(p, add_generation_prompt=True, tokenize=True, return_dict=False))
            for p in ds["prompt"]
        ]
        for name, ds in unfiltered.items()
    }
    limit = sorted(lengths["train"])[len(lengths["train"]) // 2]  # an actual length: the boundary is tested
    config = DataConfig(synthetic_train_size=60, synthetic_test_size=10, max_prompt_length=limit)
    with caplog.at_level(logging.WARNING, logger="toolrl_trl.data"):
        prepared = prepare_datasets(config, tokenizer=tokenizer)
    for report in prepared.reports:
        expected_drop = sum(length > limit for length in lengths[report.split])
        assert report.too_long == expected_drop and report.rows_out == report.rows_in - expected_drop
        kept = [
            p for p, n in zip(unfiltered[report.split]["prompt"], lengths[report.split], strict=True) if n <= limit
        ]
        assert prepared.datasets[report.split]["prompt"] == kept
    assert prepared.reports[0].too_long > 0
    assert f"exceeds max_prompt_length={limit} tokens" in caplog.text
    stats = prepared.stats()["train"]
    kept_lengths = [n for n in lengths["train"] if n <= limit]
    assert stats["prompt_tokens_max"] == max(kept_lengths)
    assert stats["prompt_tokens_p50"] == int(np.percentile(kept_lengths, 50, method="inverted_cdf"))
    assert stats["prompt_tokens_p95"] == int(np.percentile(kept_lengths, 95, method="inverted_cdf"))
    assert build_datasets(config)["train"]["prompt"] == unfiltered["train"]["prompt"], "no tokenizer, no filter"


def test_length_filter_default_keeps_short_prompts_and_counts_before_splitting(tokenizer, tmp_path):
    long_input = grammar.render_user_message("word " * 3000)
    rows = [_raw()] * 9 + [_raw(input_=long_input)]
    source = _write_json(tmp_path / "rows.json", rows)
    prepared = prepare_datasets(DataConfig(data_source=source, test_size=0.2), tokenizer=tokenizer)
    assert prepared.reports[0].too_long == 1
    assert len(prepared.datasets["train"]) + len(prepared.datasets["test"]) == 9
    assert all(row[1]["content"] == USER for row in prepared.datasets["train"]["prompt"])
