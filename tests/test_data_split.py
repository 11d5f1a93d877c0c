"""split_method=paper reproduces dataset/rlla_4k_raw/rlla.py's partition; the expectations use numpy directly."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from datasets import load_from_disk
from helpers import SHARED_DATA  # noqa: E402

from toolrl_trl import grammar
from toolrl_trl.data import DataConfig, DataSourceError, build_datasets, paper_split_indices, prepare_datasets
from toolrl_trl.data.__main__ import main

SHARED = SHARED_DATA
SFT_JSON = SHARED / "rlla_sft.json"
needs_shared = pytest.mark.skipif(
    not SFT_JSON.exists(), reason=f"the paper's ToolRL data is not at {SHARED} (the shared checkout is absent)"
)

SYSTEM = grammar.render_system_prompt(
    [grammar.ToolSpec("get_weather", "Weather of a city.", {"city": {"type": "str"}})]
)


def _raw_rows(count: int) -> list[dict]:
    return [
        {
            "instruction": SYSTEM,
            "input": grammar.render_user_message(f"Weather in city {index}?"),
            "output": f'<think> city {index} </think>\n<tool_call>\n{{"name": "get_weather", "parameters": '
            f'{{"city": "City{index}"}}}}\n</tool_call>',
        }
        for index in range(count)
    ]


def _reference_split(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """What rlla.py does, written out: seed numpy's global generator, shuffle the list in place, slice the end."""
    rows = list(rows)
    state = np.random.get_state()
    try:
        np.random.seed(31415)
        np.random.shuffle(rows)
    finally:
        np.random.set_state(state)
    test_num = int(len(rows) * 0.02)
    return rows[:-test_num], rows[-test_num:]


def _write(path: Path, rows: list[dict]) -> str:
    path.write_text(json.dumps(rows))
    return str(path)


def test_paper_split_matches_the_reference_procedure_on_1000_rows(tmp_path):
    rows = _raw_rows(1000)
    source = _write(tmp_path / "raw.json", rows)
    expected_train, expected_test = _reference_split(rows)
    state = np.random.get_state()[1].copy()
    data = build_datasets(DataConfig(data_source=source, split_method="paper"), kind="rl")
    assert (len(data["train"]), len(data["test"])) == (980, 20)
    assert data["test"]["ground_truth"] == [row["output"] for row in expected_test], "same rows, same order"
    assert data["train"]["ground_truth"] == [row["output"] for row in expected_train]
    assert data["test"][0]["prompt"][1]["content"] == expected_test[0]["input"]
    assert (np.random.get_state()[1] == state).all(), "numpy's global generator is left alone"
    other_seed = build_datasets(DataConfig(data_source=source, split_method="paper", dataset_seed=7), kind="rl")
    assert other_seed["test"]["ground_truth"] == data["test"]["ground_truth"], "dataset_seed does not move it"
    random = build_datasets(DataConfig(data_source=source), kind="rl")
    assert set(random["test"]["ground_truth"]) != set(data["test"]["ground_truth"]), "split_method=random differs"


def test_paper_split_partitions_the_raw_rows_before_validation_drops_any(tmp_path, caplog):
    expected_train, expected_test = _reference_split(_raw_rows(300))
    # Break one row that lands in the test split and two in train: the other rows must not move across.
    broken = {expected_test[2]["output"], expected_train[0]["output"], expected_train[100]["output"]}
    rows = [
        {**row, "output": "<think> no call and no response </think>"} if row["output"] in broken else row
        for row in _raw_rows(300)
    ]
    source = _write(tmp_path / "raw.json", rows)
    with caplog.at_level(logging.INFO, logger="toolrl_trl.data"):
        prepared = prepare_datasets(DataConfig(data_source=source, split_method="paper", skip_invalid_rows=True))
    data = prepared.datasets
    assert data["test"]["ground_truth"] == [row["output"] for row in expected_test if row["output"] not in broken]
    assert data["train"]["ground_truth"] == [row["output"] for row in expected_train if row["output"] not in broken]
    assert (len(data["train"]), len(data["test"])) == (292, 5)
    assert prepared.reports[0].rows_in == 300 and dict(prepared.reports[0].invalid) == {"empty_output": 3}
    assert "paper split of 300 raw rows" in caplog.text and "last 6 held out" in caplog.text


def test_paper_split_indices_is_the_reference_shuffle():
    for count in (50, 51, 99, 4000):
        train, test = paper_split_indices(count)
        order = list(range(count))
        np.random.RandomState(31415).shuffle(order)
        held_out = int(count * 0.02)
        assert (train, test) == (order[:-held_out], order[-held_out:])
    assert len(paper_split_indices(4000)[1]) == 80, "the paper's 4k RL set: 80 test rows"


def test_paper_split_refuses_sources_too_small_to_hold_out_a_row(tmp_path):
    source = _write(tmp_path / "small.json", _raw_rows(49))
    with pytest.raises(DataSourceError) as info:
        build_datasets(DataConfig(data_source=source, split_method="paper"))
    message = str(info.value)
    assert source in message and "split_method=paper" in message and "= 0 rows" in message
    assert "at least 50 rows" in message and "split_method=random" in message and "test_size=0" in message
    assert len(build_datasets(DataConfig(data_source=source, split_method="paper", test_size=0))["test"]) == 0
    ok = build_datasets(DataConfig(data_source=_write(tmp_path / "fifty.json", _raw_rows(50)), split_method="paper"))
    assert (len(ok["train"]), len(ok["test"])) == (49, 1)
    nine = _write(tmp_path / "nine.json", _raw_rows(9))
    with pytest.raises(DataSourceError, match="at least 10 rows"):
        build_datasets(DataConfig(data_source=nine, split_method="paper", test_size=0.1))


def test_paper_split_is_unused_when_the_source_has_a_test_split(tmp_path, caplog):
    original = build_datasets(DataConfig(synthetic_train_size=30, synthetic_test_size=5))
    original.save_to_disk(str(tmp_path / "saved"))
    with caplog.at_level(logging.INFO, logger="toolrl_trl.data"):
        data = build_datasets(DataConfig(data_source=str(tmp_path / "saved"), split_method="paper"))
    assert data["test"].to_list() == original["test"].to_list()
    assert "has its own test split: test_size and split_method are not used" in caplog.text


@pytest.mark.parametrize(("name", "value"), [("split_method", "rlla"), ("prompt_truncation", "right")])
def test_data_config_rejects_unknown_methods(name, value):
    with pytest.raises(ValueError, match=f"{name} must be one of"):
        DataConfig(**{name: value})


def test_cli_prepare_with_the_paper_split(tmp_path, capsys):
    rows = _raw_rows(100)
    source = _write(tmp_path / "raw.json", rows)
    out = tmp_path / "out"
    assert main(["prepare", "--source", source, "--out", str(out), "--split_method", "paper"]) == 0
    saved = load_from_disk(str(out))
    _, expected_test = _reference_split(rows)
    assert saved["test"]["ground_truth"] == [row["output"] for row in expected_test]
    assert len(saved["train"]) == 98 and "test split cut from train" in capsys.readouterr().out


@needs_shared
def test_paper_split_of_the_sft400_file():
    raw = json.loads(SFT_JSON.read_text())
    expected_train, expected_test = _reference_split(raw)
    data = build_datasets(DataConfig(data_source=str(SFT_JSON), split_method="paper"), kind="sft")
    assert [row[0]["content"] for row in data["test"]["completion"]] == [row["output"] for row in expected_test]
    assert [row[0]["content"] for row in data["train"]["completion"]] == [row["output"] for row in expected_train]
