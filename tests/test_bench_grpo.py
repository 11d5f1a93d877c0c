"""``make bench-grpo`` (toolrl_trl.bench_grpo): the recipe's trainer against a bare GRPOTrainer built by hand."""

from __future__ import annotations

import json
import re

from trl import GRPOConfig, GRPOTrainer

from toolrl_trl import bench_grpo
from toolrl_trl.grpo import ToolRLGRPOTrainer
from toolrl_trl.throughput import ThroughputCallback


def _args(tiny_model_dir, **kwargs) -> bench_grpo.BenchArguments:
    return bench_grpo.BenchArguments(recipe_args=f"--model_name_or_path {tiny_model_dir}", **kwargs)


def test_the_arms_differ_only_in_the_trainer(tiny_model_dir, tmp_path):
    argv = bench_grpo.recipe_argv(_args(tiny_model_dir, max_steps=1), str(tmp_path))
    recipe = bench_grpo.build_recipe_trainer(argv)
    bare = bench_grpo.build_bare_trainer(argv)
    assert type(recipe) is ToolRLGRPOTrainer and type(bare) is GRPOTrainer and type(bare.args) is GRPOConfig
    assert any(isinstance(cb, ThroughputCallback) for cb in recipe.callback_handler.callbacks)
    assert not any(isinstance(cb, ThroughputCallback) for cb in bare.callback_handler.callbacks)
    assert recipe.reward_func_names == bare.reward_func_names == ["format", "correctness"]
    assert recipe.train_dataset["prompt"] == bare.train_dataset["prompt"]
    for name in ("per_device_train_batch_size", "steps_per_generation", "num_generations", "learning_rate"):
        assert getattr(recipe.args, name) == getattr(bare.args, name), name
    # the recipe's in-reward KL (0.001) runs the reference forward; the bare arm gets the same work through beta
    assert recipe.reward_kl_coef == 0.001 and recipe.beta == bare.beta == 0.001


def test_the_benchmark_prints_the_overhead_last(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "bench.json"
    argv = ["--repeats", "1", "--max_steps", "1", "--warmup", "false", "--kl_reward_coef", "0"]
    summary = bench_grpo.main(
        [*argv, "--recipe_args", f"--model_name_or_path {tiny_model_dir}", "--json_out", str(out)]
    )
    last = capsys.readouterr().out.strip().splitlines()[-1]
    match = re.fullmatch(r"overhead: (\d+\.\d{3})x", last)
    assert match, last
    recipe, bare = summary["arms"]["recipe"], summary["arms"]["bare"]
    assert recipe["seconds"][0] > 0 and bare["seconds"][0] > 0
    assert float(match.group(1)) == round(recipe["median_s"] / bare["median_s"], 3)
    assert json.loads(out.read_text())["overhead"] == summary["overhead"]
    # kl_reward_coef 0: both arms are TRL's GRPO with the same seed, so they generate the same completions
    assert recipe["mean_completion_length"] == bare["mean_completion_length"]
