"""Recipe YAMLs and flags through TrlParser: every recipe parses, unknown keys fail, the paper's settings hold."""

import re
from dataclasses import fields
from pathlib import Path

import pytest
import yaml
from trl import GRPOConfig, ModelConfig, ScriptArguments, SFTConfig

from toolrl_trl.batching import BatchingError, validate_batching
from toolrl_trl.configs import (
    GRPOScriptArguments,
    ToolRLScriptArguments,
    load_recipe,
    parse_grpo_args,
    parse_grpo_multiturn_args,
    parse_ppo_args,
    parse_sft_args,
)
from toolrl_trl.data import DataConfig
from toolrl_trl.rewards import RewardConfig, get_reward_funcs

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes"
GPU_MODELS = {
    "Qwen2.5-1.5B-Instruct": "Qwen/Qwen2.5-1.5B-Instruct",
    "Qwen2.5-3B-Instruct": "Qwen/Qwen2.5-3B-Instruct",
    "Qwen2.5-7B-Instruct": "Qwen/Qwen2.5-7B-Instruct",
    "Llama-3.2-3B-Instruct": "meta-llama/Llama-3.2-3B-Instruct",
}
METHODS = ("grpo_cold_start", "sft400", "sft4k", "sft400_grpo")
GRPO_METHODS = ("grpo_cold_start", "sft400_grpo")
#: Every runnable recipe (the bases under recipes/_base/ are only ever read through them).
RUNNABLE_YAMLS = sorted(p for p in RECIPES.glob("**/*.yaml") if p.parent.name != "_base" and p.stem != "evaluate")
ALL_YAMLS = [p for p in RUNNABLE_YAMLS if p.stem in METHODS]
TINY_GRPO = RECIPES / "tiny" / "grpo_cold_start.yaml"
# GPU recipes say bf16: true; this CPU box needs use_cpu to construct such a TrainingArguments.
CPU = ["--use_cpu", "true"]


def is_grpo(path: Path) -> bool:
    return path.stem in GRPO_METHODS


def parse_recipe(path: Path, *extra: str):
    if is_grpo(path):
        return parse_grpo_args(["--config", str(path), *CPU, *extra])
    return parse_sft_args(["--config", str(path), *CPU, *extra])


def recipe_world_size(path: Path) -> int:
    world_size = parse_recipe(path)[0].world_size
    assert world_size, f"{path} must state the world size it is sized for (world_size: N)"
    return world_size


def _parser_for(path: Path):
    """Every YAML under recipes/ belongs to one entry point; an unregistered recipe name fails the test below."""
    stem = path.stem
    if "multiturn" in stem and ("grpo" in stem):
        return lambda argv: parse_grpo_multiturn_args(argv)
    if stem in GRPO_METHODS or stem.endswith("grpo"):
        return lambda argv: parse_grpo_args(argv)
    if "ppo" in stem:
        return lambda argv: parse_ppo_args(argv)
    if stem.startswith("sft") or stem.endswith("sft"):
        return lambda argv: parse_sft_args(argv)
    raise AssertionError(f"{path}: no entry point is known for this recipe name; register it in tests/test_configs.py")


@pytest.mark.parametrize("path", RUNNABLE_YAMLS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_yaml_under_recipes_parses_with_its_entry_point(path):
    parsed = _parser_for(path)(["--config", str(path), *CPU])
    assert parsed[-1].model_name_or_path, f"{path} names no model"
    assert parsed[0].world_size, f"{path} states no world_size"
    # Every key of the resolved recipe (the file and its bases) reached a config with its value.
    values = {}
    for obj in parsed:
        values.update(vars(obj))
    for key, value in load_recipe(path).values.items():
        if key in ("activation_checkpointing", "report_to"):
            continue  # normalised by TrainingArguments.__post_init__
        assert key in values, f"{path}: {key} did not reach a config"
        if isinstance(value, float) or isinstance(values[key], float):
            assert values[key] == pytest.approx(float(value)), key
        elif key != "lora_target_modules":
            assert values[key] == value, key


def test_recipe_layout_has_every_model_and_method():
    for directory in [*GPU_MODELS, "tiny"]:
        for method in METHODS:
            assert (RECIPES / directory / f"{method}.yaml").is_file(), f"missing recipes/{directory}/{method}.yaml"
    assert len(ALL_YAMLS) == 4 * (len(GPU_MODELS) + 1)


def test_own_fields_do_not_collide_with_trl_fields():
    trl_names = {f.name for cls in (GRPOConfig, SFTConfig, ModelConfig) for f in fields(cls)}
    own = {f.name for f in fields(GRPOScriptArguments)} - {f.name for f in fields(ScriptArguments)}
    own |= {f.name for f in fields(DataConfig)} | {f.name for f in fields(RewardConfig)}
    assert own, "expected project-specific fields"
    assert not own & trl_names
    for cls in (GRPOScriptArguments, ToolRLScriptArguments, DataConfig, RewardConfig):
        for f in fields(cls):
            assert f.metadata.get("help"), f"{cls.__name__}.{f.name} has no help"


@pytest.mark.parametrize("path", ALL_YAMLS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_recipe_parses_into_the_configs(path):
    parsed = parse_recipe(path)
    if is_grpo(path):
        script_args, data_args, reward_args, training_args, model_args = parsed
        assert isinstance(script_args, GRPOScriptArguments)
        assert isinstance(reward_args, RewardConfig)
        assert isinstance(training_args, GRPOConfig)
        # Reward callables build from the parsed options (paper default: format + correctness).
        assert [f.__name__ for f in get_reward_funcs(reward_args, training_args)] == ["format", "correctness"]
    else:
        script_args, data_args, training_args, model_args = parsed
        assert isinstance(training_args, SFTConfig)
        assert training_args.completion_only_loss is True  # loss on the assistant turn only
    assert isinstance(data_args, DataConfig)
    assert isinstance(model_args, ModelConfig)
    assert isinstance(training_args.learning_rate, float)
    assert model_args.use_peft is False  # LoRA is switched on from the command line
    assert training_args.output_dir.endswith(f"{path.parent.name}/{path.stem}")


@pytest.mark.parametrize("model", GPU_MODELS)
@pytest.mark.parametrize("method", GRPO_METHODS)
def test_gpu_grpo_recipes_carry_the_paper_settings(model, method):
    path = RECIPES / model / f"{method}.yaml"
    script_args, data_args, reward_args, args, model_args = parse_recipe(path)
    if method == "grpo_cold_start":
        assert model_args.model_name_or_path == GPU_MODELS[model]
    else:
        assert model_args.model_name_or_path == f"outputs/{model}/sft400"
    assert args.num_generations == 4
    assert args.temperature == 1.0
    assert args.learning_rate == 1e-6
    assert args.num_train_epochs == 15
    assert args.beta == 0.0
    assert args.max_completion_length == 1024
    assert data_args.max_prompt_length == 2048
    assert (args.beta, args.kl_reward_coef) == (0.0, 0.001)  # no KL loss; the KL inside the reward (apply_kl_penalty)
    assert (data_args.split_method, data_args.prompt_truncation) == ("paper", "left")  # rlla.py; rl_dataset.py
    assert args.loss_type == "bnpo"  # the closest TRL aggregation to the fork's token mean per micro-batch
    assert args.entropy_coef == 0.001  # actor.entropy_coeff
    assert args.weight_decay == 0.01  # fsdp_workers.py AdamW fallback
    assert args.vllm_importance_sampling_correction is False  # the fork has no such correction
    assert (args.save_strategy, args.save_steps, args.save_total_limit) == ("steps", 60, None)  # save_freq=15 rounds
    assert (args.eval_strategy, args.eval_steps) == ("steps", 20)  # test_freq=5 rounds
    assert args.bf16 is True
    assert args.activation_checkpointing is True
    assert (args.use_vllm, args.vllm_mode, args.vllm_gpu_memory_utilization) == (True, "colocate", 0.6)
    assert args.vllm_max_model_length == 3072
    assert (script_args.prompts_per_generation_round, script_args.updates_per_generation_round) == (512, 4)
    assert (reward_args.granularity, reward_args.length_reward) == ("fine", "off")


@pytest.mark.parametrize("path", [p for p in ALL_YAMLS if is_grpo(p)], ids=lambda p: f"{p.parent.name}/{p.name}")
def test_grpo_recipe_batch_arithmetic_reproduces_its_round(path):
    script_args, _, _, args, _ = parse_recipe(path)
    world_size = recipe_world_size(path)
    plan = validate_batching(
        args,
        world_size,
        prompts_per_round=script_args.prompts_per_generation_round,
        updates_per_round=script_args.updates_per_generation_round,
    )
    if path.parent.name != "tiny":
        assert plan.generation_batch_size == 2048  # 512 prompts x 4 rollouts
        assert plan.prompts_per_round == 512
        assert plan.completions_per_update == 512
        assert plan.updates_per_round == 4
        accel = re.search(r"--config_file accelerate_configs/(\w+)\.yaml --num_processes (\d+)", path.read_text())
        assert accel and int(accel.group(2)) == world_size
        assert (ROOT / "accelerate_configs" / f"{accel.group(1)}.yaml").is_file()
    # Launched on another world size, the same file is refused before the model loads.
    with pytest.raises(BatchingError):
        validate_batching(args, world_size * 2, prompts_per_round=script_args.prompts_per_generation_round)


@pytest.mark.parametrize("model", GPU_MODELS)
def test_gpu_sft_recipes(model):
    for method in ("sft400", "sft4k"):
        path = RECIPES / model / f"{method}.yaml"
        _, data_args, args, model_args = parse_recipe(path)
        assert model_args.model_name_or_path == GPU_MODELS[model]
        assert args.completion_only_loss is True
        assert args.bf16 is True
        assert args.max_length >= 2048 + 1024
        sequences_per_step = args.per_device_train_batch_size * args.gradient_accumulation_steps
        assert sequences_per_step * recipe_world_size(path) == 16
    sft4k = load_recipe(RECIPES / model / "sft4k.yaml")
    assert "NOT shipped" in sft4k.origins["data_source"].read_text()
    assert sft4k.values["data_source"] == "path/to/your_sft_4k.json"


def write_yaml(tmp_path, **overrides):
    config = dict(load_recipe(TINY_GRPO).values)
    config.update(overrides)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_unknown_yaml_key_fails_loudly(tmp_path):
    path = write_yaml(tmp_path, granularty="coarse")
    with pytest.raises(ValueError, match=r"unknown recipe key\(s\) 'granularty' \(set in .*recipe.yaml\)"):
        parse_grpo_args(["--config", str(path)])


def test_unknown_flag_fails_loudly():
    with pytest.raises(ValueError, match="granularty"):
        parse_grpo_args(["--config", str(TINY_GRPO), "--granularty", "coarse"])


def test_sft_parser_rejects_grpo_only_keys(tmp_path):
    path = tmp_path / "sft.yaml"
    path.write_text(yaml.safe_dump({"base": str(RECIPES / "tiny" / "sft400.yaml"), "num_generations": 4}))
    with pytest.raises(ValueError, match="num_generations"):
        parse_sft_args(["--config", str(path)])


def test_invalid_reward_choice_in_yaml_fails(tmp_path):
    with pytest.raises(ValueError, match="granularity='bogus'"):
        parse_grpo_args(["--config", str(write_yaml(tmp_path, granularity="bogus"))])


def test_bare_yaml_off_is_rejected_not_misread(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text(f"base: {TINY_GRPO}\nlength_reward: off\n")
    with pytest.raises(ValueError, match="length_reward=False"):
        parse_grpo_args(["--config", str(path)])


def test_dataset_name_is_rejected_in_favour_of_data_source():
    with pytest.raises(ValueError, match="data_source"):
        parse_grpo_args(["--config", str(TINY_GRPO), "--dataset_name", "trl-lib/foo"])


REWARD_VARIANTS = [
    ("correctness_scale", "equal_max"),
    ("scale_schedule", "two_stage"),
    ("scale_schedule", "smooth"),
    ("granularity", "intermediate"),
    ("granularity", "refined"),
    ("granularity", "coarse"),
    ("length_reward", "fixed"),
    ("length_reward", "scheduled"),
]


@pytest.mark.parametrize(("name", "value"), REWARD_VARIANTS)
def test_every_reward_variant_is_selectable_from_cli_and_yaml(tmp_path, name, value):
    from_cli = parse_grpo_args(["--config", str(TINY_GRPO), f"--{name}", value])[2]
    from_yaml = parse_grpo_args(["--config", str(write_yaml(tmp_path, **{name: value}))])[2]
    assert getattr(from_cli, name) == getattr(from_yaml, name) == value
    names = [f.__name__ for f in get_reward_funcs(from_cli)]
    assert names == (["format", "correctness", "length"] if name == "length_reward" else ["format", "correctness"])


def test_cli_overrides_yaml_and_reaches_grpo_config():
    script_args, data_args, reward_args, args, model_args = parse_grpo_args(
        [
            "--config",
            str(TINY_GRPO),
            "--use_vllm",
            "true",
            "--vllm_mode",
            "server",
            "--vllm_server_base_url",
            "http://gpu-node:8000",
            "--vllm_gpu_memory_utilization",
            "0.45",
            "--use_peft",
            "true",
            "--lora_r",
            "4",
            "--max_prompt_length",
            "512",
            "--temperature",
            "0.7",
        ]
    )
    assert (args.use_vllm, args.vllm_mode, args.vllm_server_base_url) == (True, "server", "http://gpu-node:8000")
    assert args.vllm_gpu_memory_utilization == 0.45
    assert args.temperature == 0.7
    assert (model_args.use_peft, model_args.lora_r) == (True, 4)
    assert data_args.max_prompt_length == 512


@pytest.mark.parametrize(("world_size", "accumulation"), [(1, 128), (2, 64), (8, 16), (16, 8)])
def test_auto_batch_recomputes_for_the_world_size(world_size, accumulation):
    path = RECIPES / "Qwen2.5-3B-Instruct" / "grpo_cold_start.yaml"
    script_args, _, _, args, _ = parse_grpo_args(
        ["--config", str(path), *CPU, "--auto_batch", "true"], world_size=world_size
    )
    assert args.per_device_train_batch_size == 4
    assert (args.gradient_accumulation_steps, args.steps_per_generation) == (accumulation, 4 * accumulation)
    plan = validate_batching(args, world_size)
    assert plan.generation_batch_size == 2048


def test_auto_batch_refuses_generation_batch_size(tmp_path):
    path = write_yaml(tmp_path, generation_batch_size=8, steps_per_generation=None, auto_batch=True)
    with pytest.raises(BatchingError, match="remove generation_batch_size"):
        parse_grpo_args(["--config", str(path)], world_size=1)


def test_auto_batch_reports_impossible_world_sizes():
    with pytest.raises(BatchingError, match="world size 3"):
        parse_grpo_args(["--config", str(TINY_GRPO), "--auto_batch", "true", "--per_device_train_batch_size", "1"], 3)


def test_a_launch_on_another_world_size_says_what_the_recipe_is_written_for():
    from toolrl_trl.training import check_rl_run

    recipe = RECIPES / "Qwen2.5-3B-Instruct" / "grpo_cold_start.yaml"
    parsed = parse_grpo_args(["--config", str(recipe), *CPU, "--use_vllm", "false"])
    check_rl_run(parsed.script, parsed.training, world_size=8)  # what it is written for: passes
    with pytest.raises(
        BatchingError, match=r"written for world_size 8, but 4 process\(es\) were launched.*--auto_batch"
    ):
        check_rl_run(parsed.script, parsed.training, world_size=4)


def test_the_tiny_evaluation_recipe_parses_with_every_key_reaching_a_config():
    from toolrl_trl.configs import ToolRLParser, parse_args
    from toolrl_trl.eval import EvalConfig, GenerationConfig

    path = RECIPES / "tiny" / "evaluate.yaml"
    parsed = parse_args(ToolRLParser((EvalConfig, GenerationConfig)), ["--config", str(path)])
    values = {key: value for obj in parsed for key, value in vars(obj).items()}
    for key, value in load_recipe(path).values.items():
        assert values[key] == value, key
