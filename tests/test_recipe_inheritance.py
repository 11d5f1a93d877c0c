"""Recipe inheritance (`base:`), `--print_config`, and recipe errors that name the file."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from toolrl_trl.configs import RecipeError, load_recipe, parse_grpo_args, parse_sft_args

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes"
CPU = ["--use_cpu", "true"]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_a_chain_of_bases_merges_with_the_most_specific_file_winning(tmp_path):
    write(tmp_path / "base" / "root.yaml", "learning_rate: 1.0e-6\nnum_generations: 4\ntemperature: 1.0\n")
    write(tmp_path / "base" / "mid.yaml", "base: root.yaml\nnum_generations: 8\n")
    leaf = write(tmp_path / "model" / "leaf.yaml", "base: ../base/mid.yaml\ntemperature: 0.7\n")
    recipe = load_recipe(leaf)
    assert recipe.values == {"learning_rate": 1e-6, "num_generations": 8, "temperature": 0.7}
    assert recipe.origins["learning_rate"].name == "root.yaml"
    assert recipe.origins["num_generations"].name == "mid.yaml"
    assert recipe.origins["temperature"].name == "leaf.yaml"
    assert [p.name for p in recipe.chain] == ["leaf.yaml", "mid.yaml", "root.yaml"]


def test_a_list_of_bases_applies_in_order(tmp_path):
    write(tmp_path / "a.yaml", "lora_r: 4\nlora_alpha: 8\n")
    write(tmp_path / "b.yaml", "lora_r: 16\n")
    leaf = write(tmp_path / "leaf.yaml", "base: [a.yaml, b.yaml]\n")
    assert load_recipe(leaf).values == {"lora_r": 16, "lora_alpha": 8}


def test_a_list_value_is_replaced_whole_not_merged(tmp_path):
    write(tmp_path / "a.yaml", "lora_target_modules: [q_proj, k_proj, v_proj]\n")
    leaf = write(tmp_path / "leaf.yaml", "base: a.yaml\nlora_target_modules: [o_proj]\n")
    assert load_recipe(leaf).values["lora_target_modules"] == ["o_proj"]


def test_cycles_are_refused_with_the_cycle_spelt_out(tmp_path):
    write(tmp_path / "a.yaml", "base: b.yaml\nlora_r: 1\n")
    write(tmp_path / "b.yaml", "base: a.yaml\nlora_r: 2\n")
    with pytest.raises(RecipeError, match=r"cycle: .*a\.yaml -> .*b\.yaml -> .*a\.yaml"):
        load_recipe(tmp_path / "a.yaml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("base: missing.yaml\n", r"missing\.yaml: no such recipe file"),
        ("base: 3\n", r"base must be a path or a list of paths, got 3"),
        ("- a\n- b\n", r"must be a YAML mapping"),
        ("lora_r: [1, 2\n", r"not valid YAML \(line 2, column 1\)"),
    ],
)
def test_bad_recipes_name_the_file_and_the_problem(tmp_path, text, message):
    with pytest.raises(RecipeError, match=message):
        load_recipe(write(tmp_path / "bad.yaml", text))


def test_a_key_unknown_to_the_entry_point_names_the_file_that_set_it(tmp_path):
    write(tmp_path / "base.yaml", f"base: {RECIPES / 'tiny' / 'grpo_cold_start.yaml'}\ngranularty: coarse\n")
    leaf = write(tmp_path / "leaf.yaml", "base: base.yaml\n")
    with pytest.raises(RecipeError, match=r"unknown recipe key\(s\) 'granularty' \(set in .*base\.yaml\)"):
        parse_grpo_args(["--config", str(leaf)])


def test_command_line_flags_override_every_level_of_the_chain():
    recipe = RECIPES / "Qwen2.5-3B-Instruct" / "sft400_grpo.yaml"  # -> grpo_cold_start.yaml -> _base/grpo.yaml
    parsed = parse_grpo_args(["--config", str(recipe), *CPU, "--learning_rate", "3e-6", "--output_dir", "elsewhere"])
    assert parsed.training.learning_rate == 3e-6  # set in _base/grpo.yaml
    assert parsed.training.output_dir == "elsewhere"  # set in the file itself
    assert parsed.model.model_name_or_path == "outputs/Qwen2.5-3B-Instruct/sft400"
    assert parsed.training.per_device_train_batch_size == 4  # from grpo_cold_start.yaml


def test_each_paper_setting_is_written_once():
    """The paper's algorithm settings live in recipes/_base/ only; model files hold the model, batch and output."""
    per_model = {"base", "model_name_or_path", "output_dir", "world_size"}
    per_model |= {"per_device_train_batch_size", "gradient_accumulation_steps", "steps_per_generation"}
    for path in RECIPES.glob("*/*.yaml"):
        if path.parent.name in ("_base", "tiny"):
            continue
        keys = set(yaml.safe_load(path.read_text()))
        assert keys <= per_model, f"{path} sets {sorted(keys - per_model)}: paper settings belong in recipes/_base/"


def test_parse_results_are_named():
    parsed = parse_sft_args(["--config", str(RECIPES / "tiny" / "sft400.yaml")])
    script, data, training, model = parsed
    assert (parsed.script, parsed.data, parsed.training, parsed.model) == (script, data, training, model)
    assert parsed.training.max_steps == 4 and parsed.model.model_name_or_path == "outputs/tiny-qwen2"


def print_config(*argv: str) -> str:
    result = subprocess.run(
        [sys.executable, "recipes/grpo_cold_start.py", *argv, "--print_config", "true"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_print_config_shows_the_resolved_recipe_with_origins_and_exits(tmp_path):
    recipe = "recipes/Qwen2.5-3B-Instruct/grpo_cold_start.yaml"
    text = print_config("--config", recipe, *CPU, "--learning_rate", "2e-6")
    assert text.startswith(f"# resolved recipe: {recipe}\n#   base: recipes/_base/grpo.yaml\n")
    assert "learning_rate: 2.0e-06  # command line" in text
    assert "num_generations: 4  # recipes/_base/grpo.yaml" in text
    assert f"model_name_or_path: Qwen/Qwen2.5-3B-Instruct  # {recipe}" in text
    assert "base:" not in yaml.safe_load(text)
    # The printout is itself a recipe: parsing it gives the same configuration as the chain and the flag.
    saved = write(tmp_path / "resolved.yaml", text)
    again = parse_grpo_args(["--config", str(saved)])
    direct = parse_grpo_args(["--config", recipe, *CPU, "--learning_rate", "2e-6"])
    for mine, theirs in zip(again, direct, strict=True):
        ignore = {"distributed_state", "_n_gpu"}
        assert {k: v for k, v in vars(mine).items() if k not in ignore} == {
            k: v for k, v in vars(theirs).items() if k not in ignore
        }


def test_print_config_works_where_the_recipe_cannot_run():
    """A GPU recipe (bf16) inspected on a CPU: printed as written, with the reason it could not be validated."""
    text = print_config("--config", "recipes/Qwen2.5-7B-Instruct/grpo_cold_start.yaml", "--lora_r", "8")
    assert "# values as written, not validated on this machine: Your setup doesn't support bf16" in text
    assert "lora_r: 8  # command line" in text
    assert "per_device_train_batch_size: 2  # recipes/Qwen2.5-7B-Instruct/grpo_cold_start.yaml" in text
    assert yaml.safe_load(text)["learning_rate"] == 1e-6


def test_print_config_does_not_hide_a_misspelt_flag():
    result = subprocess.run(
        [
            sys.executable,
            "recipes/sft.py",
            "--config",
            "recipes/tiny/sft400.yaml",
            "--lerning_rate",
            "1",
            "--print_config",
            "true",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "unknown flag(s) --lerning_rate" in result.stderr
