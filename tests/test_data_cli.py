"""DataConfig plugs into TrlParser, and the `python -m toolrl_trl.data` CLI saves and shows rows."""

import dataclasses
import json
import subprocess
import sys

import pytest
from datasets import load_from_disk

from toolrl_trl.data import DataConfig, build_datasets, split_stats
from toolrl_trl.data.__main__ import main


def test_data_config_fields_have_help_and_do_not_collide_with_trl():
    from trl import DatasetMixtureConfig, GRPOConfig, ModelConfig, ScriptArguments, SFTConfig

    ours = {f.name for f in dataclasses.fields(DataConfig)}
    for config in (GRPOConfig, SFTConfig, ModelConfig, ScriptArguments, DatasetMixtureConfig):
        clash = ours & {f.name for f in dataclasses.fields(config)}
        assert not clash, f"DataConfig fields {clash} collide with {config.__name__}"
    for f in dataclasses.fields(DataConfig):
        assert f.metadata.get("help"), f"{f.name} lacks help metadata"
    assert DataConfig().max_prompt_length == 2048 and DataConfig().test_size == 0.02


def test_trl_parser_reads_data_options_next_to_trl_configs(tmp_path):
    from trl import GRPOConfig, ModelConfig, ScriptArguments, TrlParser

    parser = TrlParser((ScriptArguments, GRPOConfig, ModelConfig, DataConfig))
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("data_source: some/dataset\nsynthetic_held_out_tools: 0.25\nmax_prompt_length: 1024\n")
    args = [
        "--config",
        str(recipe),
        "--output_dir",
        str(tmp_path / "o"),
        "--bf16",
        "false",
        "--skip_invalid_rows",
        "true",
        "--max_prompt_length",
        "512",
    ]
    *_, data = parser.parse_args_and_config(args)
    assert (data.data_source, data.synthetic_held_out_tools, data.skip_invalid_rows, data.max_prompt_length) == (
        "some/dataset",
        0.25,
        True,
        512,
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"test_size": 1.0}, "test_size"),
        ({"max_prompt_length": 0}, "max_prompt_length"),
        ({"synthetic_task_weights": "single=1,nope=1"}, "valid"),
        ({"synthetic_held_out_tools": 1000}, "at least 2 must stay"),
        ({"max_train_samples": -1}, "max_train_samples"),
    ],
)
def test_data_config_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DataConfig(**kwargs)


def test_prepare_saves_rows_and_prints_stats(tmp_path, tiny_model_dir, capsys):
    out = tmp_path / "rows"
    argv = ["prepare", "--source", "synthetic", "--out", str(out), "--synthetic_train_size", "40"]
    argv += ["--synthetic_test_size", "5", "--kind", "sft", "--tokenizer", str(tiny_model_dir)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    saved = load_from_disk(str(out))
    assert set(saved) == {"train", "test"} and saved["train"].column_names == ["prompt", "completion"]
    config = DataConfig(synthetic_train_size=40, synthetic_test_size=5)
    assert saved["train"].to_list() == build_datasets(config, kind="sft")["train"].to_list()
    stats = split_stats(saved["train"], "sft")
    train_line = next(line for line in printed.splitlines() if line.strip().startswith("train ") and "%" in line)
    fields = train_line.split()
    assert fields[1] == "40"
    assert fields[2] == f"{100 * stats['calls_only'] / 40:.1f}%"
    assert fields[5] == f"{stats['calls_per_row']:.2f}" and fields[6] == str(stats["max_calls"])
    assert fields[7].isdigit() and int(fields[7]) <= int(fields[8]) <= int(fields[9])
    assert "synthetic" in printed and "too long" in printed


def test_prepare_requires_out_and_a_known_command(capsys):
    with pytest.raises(SystemExit):
        main(["prepare", "--source", "synthetic"])
    assert main(["frobnicate"]) == 2
    assert "usage" in capsys.readouterr().err


def test_inspect_shows_rows_of_a_saved_folder(tmp_path, capsys):
    build_datasets(DataConfig(synthetic_train_size=6, synthetic_test_size=2)).save_to_disk(str(tmp_path / "d"))
    assert main(["inspect", "--source", str(tmp_path / "d"), "--num_rows", "2", "--max_chars", "100000"]) == 0
    printed = capsys.readouterr().out
    saved = load_from_disk(str(tmp_path / "d"))
    assert printed.count("===== train row") == 2 and printed.count("===== test row") == 2
    assert saved["train"][1]["ground_truth"] in printed
    assert "trl_rows" in printed


def test_module_entry_point_runs(tmp_path):
    rows = [
        {
            "query": "Weather in Rome?",
            "tools": json.dumps([{"name": "w", "description": "Weather.", "parameters": {}}]),
            "answers": json.dumps([{"name": "w", "arguments": {}}]),
        }
    ] * 3
    source = tmp_path / "x.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    result = subprocess.run(
        [sys.executable, "-m", "toolrl_trl.data", "prepare", "--source", str(source), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "xlam" in result.stdout and load_from_disk(str(tmp_path / "o"))["train"].num_rows == 2


def test_prepare_left_truncated_rows_with_an_empty_test_split_and_inspect_them(tmp_path, tiny_model_dir, capsys):
    out = tmp_path / "rows"
    argv = ["prepare", "--source", "synthetic", "--out", str(out), "--synthetic_train_size", "6"]
    argv += ["--synthetic_test_size", "0", "--tokenizer", str(tiny_model_dir), "--max_prompt_length", "64"]
    assert main([*argv, "--prompt_truncation", "left"]) == 0
    printed = capsys.readouterr().out
    saved = load_from_disk(str(out))  # the empty test split loads back
    assert len(saved["test"]) == 0 and set(saved["test"].column_names) == set(saved["train"].column_names)
    assert saved["train"].column_names == ["prompt", "ground_truth", "prompt_messages"]
    assert all(isinstance(prompt, str) for prompt in saved["train"]["prompt"])
    train_line = next(
        line for line in printed.splitlines() if line.strip().startswith("synthetic") and "train" in line
    )
    assert train_line.split()[-2:] == ["6", "6"], "6 rows truncated (the 64-token limit is below every prompt), 6 kept"
    inspect = ["inspect", "--source", str(out), "--num_rows", "1", "--max_chars", "100000"]
    assert main(inspect) == 0
    shown = capsys.readouterr().out  # read back from prompt_messages: the messages
    assert saved["train"][0]["prompt_messages"][1]["content"] in shown and "--- [user]" in shown
    tokenized = ["--tokenizer", str(tiny_model_dir), "--max_prompt_length", "64", "--prompt_truncation", "left"]
    assert main([*inspect, *tokenized]) == 0
    shown = capsys.readouterr().out
    assert "[prompt text, chat template applied]" in shown and saved["train"][0]["prompt"] in shown
