"""How fast the ToolRL reward is, alone and inside a GRPO step: ``python -m toolrl_trl.reward_benchmark``.

Two measurements, printed as tables:

1. throughput: completions scored per second by the TRL callables (format + correctness + length,
   diagnostics included) on a seeded mixed batch shaped like one of the paper's generation rounds
   (512 prompts x 4 rollouts): well-formed, partially right, malformed and adversarial (64k-char)
   completions, per category and mixed;
2. share of a GRPO step: a short real ``GRPOTrainer`` run on a tiny CPU model (``toolrl_trl.tiny``)
   whose reward callables are timed, against the whole training time and the generation rounds.

The second number depends on the policy model's cost: with a tiny model it is an upper bound of
what the reward costs relative to training a real one.
"""

from __future__ import annotations

import json
import logging
import os
import random
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from toolrl_trl import grammar
from toolrl_trl.rewards import RewardConfig, get_reward_funcs

logger = logging.getLogger(__name__)

CATEGORIES = ("well_formed", "partial", "malformed", "adversarial")
#: Share of each category in the mixed batch (adversarial completions are rare in practice but costly).
MIX = {"well_formed": 0.3, "partial": 0.4, "malformed": 0.28, "adversarial": 0.02}

_TOOLS = {
    "get_weather": {"city": ["Paris", "Tokyo", "Lima"], "unit": ["C", "F"], "days": [1, 3, 7]},
    "search_web": {"query": ["toolrl", "grpo paper", "weather"], "top_k": [3, 5, 10]},
    "convert_currency": {"amount": [10, 99.5, 1000], "from": ["EUR", "USD"], "to": ["JPY", "GBP"]},
    "book_table": {"restaurant": ["Chez Nous", "Sushi Bar"], "people": [2, 4], "time": ["19:00", "20:30"]},
}


def _random_call(rng: random.Random) -> dict[str, Any]:
    name = rng.choice(sorted(_TOOLS))
    params = {key: rng.choice(values) for key, values in _TOOLS[name].items() if rng.random() < 0.8}
    return {"name": name, "parameters": params}


def _ground_truth(rng: random.Random) -> str:
    """One reference answer: one to three calls (some with a response) or a response only."""
    kind = rng.random()
    think = " ".join(rng.choice(["check", "the", "user", "wants", "tool", "call"]) for _ in range(rng.randint(5, 40)))
    if kind < 0.15:
        return grammar.render_assistant_turn(think, None, "Here is what I found.")
    calls = [_random_call(rng) for _ in range(rng.choice([1, 1, 1, 2, 3]))]
    return grammar.render_assistant_turn(think, calls, "Done." if kind > 0.85 else None)


def _partial(rng: random.Random, ground_truth: str) -> str:
    calls = grammar.parse_ground_truth_calls(ground_truth)
    if not calls:
        return grammar.render_assistant_turn("I will answer directly.", [_random_call(rng)], None)
    calls = [{"name": c["name"], "parameters": dict(c["parameters"])} for c in calls]
    edit = rng.choice(["value", "drop_param", "extra_call", "swap", "rename"])
    target = rng.choice(calls)
    if edit == "value" and target["parameters"]:
        key = rng.choice(sorted(target["parameters"]))
        target["parameters"][key] = "wrong"
    elif edit == "drop_param" and target["parameters"]:
        target["parameters"].pop(rng.choice(sorted(target["parameters"])))
    elif edit == "extra_call":
        calls.append(_random_call(rng))
    elif edit == "swap":
        rng.shuffle(calls)
    else:
        target["name"] += "_v2"
    return grammar.render_assistant_turn("Let me call the tools.", calls, None)


def _malformed(rng: random.Random, ground_truth: str) -> str:
    choice = rng.randrange(5)
    if choice == 0:
        return ground_truth.replace(grammar.TOOL_CALL_CLOSE, "")
    if choice == 1:
        return ground_truth.replace('"parameters"', "parameters")
    if choice == 2:
        return "I think I should call get_weather for Paris."
    if choice == 3:
        return ground_truth.replace(grammar.THINK_CLOSE, "") + "\n" + grammar.TOOL_CALL_OPEN
    return "<think> calling </think>\n<tool_call>\n{'name': 'get_weather', 'parameters': {}}\n</tool_call>"


def _adversarial(rng: random.Random, size: int = 64_000) -> str:
    call = json.dumps({"name": "get_weather", "parameters": {"city": "Paris", "unit": "X"}})
    shapes = [
        "<think> x </think>\n<tool_call>\n" + "[" * size + "\n</tool_call>",
        ("</think>\n<tool_call>\n" * size)[:size],
        "<think> x </think>\n<tool_call>\n" + "\n".join([call] * (size // (len(call) + 1))) + "\n</tool_call>",
        "<think> " + "word " * (size // 5) + "</think>",
    ]
    return rng.choice(shapes)


def make_batch(size: int, seed: int = 0) -> dict[str, tuple[list[str], list[str]]]:
    """Completions and their ground truths per category (``size`` in all, split by :data:`MIX`), seeded."""
    rng = random.Random(f"reward-benchmark-{seed}")
    batch: dict[str, tuple[list[str], list[str]]] = {}
    counts = {category: max(1, round(size * MIX[category])) for category in CATEGORIES[1:]}
    counts = {CATEGORIES[0]: max(1, size - sum(counts.values())), **counts}
    for category in CATEGORIES:
        completions, ground_truths = [], []
        for _ in range(counts[category]):
            gt = _ground_truth(rng)
            if category == "well_formed":
                completion = gt.replace("<think> ", "<think> In short: ", 1)
            elif category == "partial":
                completion = _partial(rng, gt)
            elif category == "malformed":
                completion = _malformed(rng, gt)
            else:
                completion = _adversarial(rng)
            completions.append(completion)
            ground_truths.append(gt)
        batch[category] = (completions, ground_truths)
    return batch


def _score_batch(funcs: Sequence[Callable[..., list[float]]], completions: list, ground_truths: list[str]) -> None:
    metrics: list[tuple[str, float]] = []
    for func in funcs:
        func(completions, ground_truth=ground_truths, log_metric=lambda name, value: metrics.append((name, value)))


def throughput(size: int = 2048, repeats: int = 3, config: RewardConfig | None = None) -> dict[str, float]:
    """Completions per second (best of ``repeats``) per category and for the whole mixed batch."""
    config = config or RewardConfig(length_reward="fixed")
    funcs = get_reward_funcs(config)
    batch = make_batch(size)
    rates: dict[str, float] = {}
    mixed_completions, mixed_gts = [], []
    for category, (completions, gts) in batch.items():
        conversational = [[{"role": "assistant", "content": c}] for c in completions]
        mixed_completions += conversational
        mixed_gts += gts
        rates[category] = len(completions) / _best_time(
            lambda c=conversational, g=gts: _score_batch(funcs, c, g), repeats
        )
    rates["mixed"] = len(mixed_completions) / _best_time(
        lambda: _score_batch(funcs, mixed_completions, mixed_gts), repeats
    )
    return rates


def _best_time(func: Callable[[], None], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - start)
    return best


@dataclass
class GrpoShare:
    train_seconds: float
    generation_seconds: float
    reward_seconds: float
    completions_scored: int

    @property
    def reward_share_of_training(self) -> float:
        return self.reward_seconds / self.train_seconds

    @property
    def reward_share_of_generation(self) -> float:
        return self.reward_seconds / self.generation_seconds


def _timed(func: Callable[..., Any], totals: dict[str, float], key: str) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return func(*args, **kwargs)
        finally:
            totals[key] += time.perf_counter() - start

    wrapper.__name__ = getattr(func, "__name__", key)
    return wrapper


def grpo_share(
    max_steps: int = 3, max_completion_length: int = 32, prompts_per_step: int = 8, model_dir: str | None = None
) -> GrpoShare:
    """Run a short GRPO training on a tiny CPU model and time the reward callables inside it."""
    from datasets import Dataset
    from transformers import PrinterCallback
    from trl import GRPOConfig, GRPOTrainer

    from toolrl_trl.tiny import tiny_model_path

    model_dir = model_dir or str(tiny_model_path("qwen2"))
    rng = random.Random("reward-benchmark-grpo")
    rows = [
        {
            "prompt": [
                {"role": "system", "content": "Use the tools."},
                {"role": "user", "content": grammar.render_user_message(f"Request {index}: help with {tool}.")},
            ],
            "ground_truth": _ground_truth(rng),
        }
        for index, tool in enumerate(rng.choice(sorted(_TOOLS)) for _ in range(max(64, max_steps * prompts_per_step)))
    ]
    totals = {"reward": 0.0, "generation": 0.0}
    scored = [0]

    with tempfile.TemporaryDirectory() as output_dir:
        args = GRPOConfig(
            output_dir=output_dir,
            use_cpu=True,
            bf16=False,
            report_to="none",
            max_steps=max_steps,
            per_device_train_batch_size=prompts_per_step * 4,
            num_generations=4,
            gradient_accumulation_steps=1,
            steps_per_generation=1,
            max_completion_length=max_completion_length,
            loss_type="grpo",
            logging_strategy="no",
            save_strategy="no",
            seed=0,
            disable_tqdm=True,
        )
        funcs = []
        for func in get_reward_funcs(RewardConfig(length_reward="fixed"), args):
            timed = _timed(func, totals, "reward")
            funcs.append(timed)

        def count(completions, **kwargs):
            scored[0] += len(completions)
            return [0.0] * len(completions)

        trainer = GRPOTrainer(
            model=model_dir, reward_funcs=[*funcs, count], args=args, train_dataset=Dataset.from_list(rows)
        )
        trainer.remove_callback(PrinterCallback)  # the table below is the output; no per-step log dicts
        trainer._generate_and_score_completions = _timed(trainer._generate_and_score_completions, totals, "generation")
        start = time.perf_counter()
        trainer.train()
        train_seconds = time.perf_counter() - start
    return GrpoShare(train_seconds, totals["generation"], totals["reward"], scored[0])


@dataclass
class BenchmarkArguments:
    """``python -m toolrl_trl.reward_benchmark``: reward throughput and its share of a tiny-model GRPO step."""

    size: int = field(default=2048, metadata={"help": "Completions in the mixed batch (the paper's round: 2048)."})
    repeats: int = field(default=3, metadata={"help": "Timing repeats; the best is reported."})
    grpo_steps: int = field(default=3, metadata={"help": "Optimizer steps of the GRPO run (0: skip it)."})
    prompts_per_step: int = field(default=8, metadata={"help": "Prompts per GRPO step (4 rollouts each)."})
    max_completion_length: int = field(default=32, metadata={"help": "Tokens per rollout in the GRPO run."})
    model_dir: str | None = field(
        default=None, metadata={"help": "Policy model for the GRPO run (default: the cached tiny qwen2)."}
    )


def main(argv: Sequence[str] | None = None) -> None:
    from transformers import HfArgumentParser

    from toolrl_trl.cli import configure_logging

    (args,) = HfArgumentParser(BenchmarkArguments).parse_args_into_dataclasses(args=argv)
    configure_logging(logging.WARNING)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    rates = throughput(args.size, args.repeats)
    batch_counts = {category: len(pair[0]) for category, pair in make_batch(args.size).items()}
    batch_counts["mixed"] = sum(batch_counts.values())
    print(f"Reward throughput (format + correctness + length callables, diagnostics on; best of {args.repeats})")
    print(f"  {'category':<12} {'completions':>11} {'per second':>12} {'batch time':>11}")
    for category, rate in rates.items():
        count = batch_counts[category]
        print(f"  {category:<12} {count:>11} {rate:>12,.0f} {count / rate:>10.3f}s")
    if args.grpo_steps > 0:
        share = grpo_share(args.grpo_steps, args.max_completion_length, args.prompts_per_step, args.model_dir)
        print(
            f"\nTiny-model GRPO run on CPU ({args.grpo_steps} optimizer steps, {args.prompts_per_step} prompts x 4 "
            f"rollouts per step, up to {args.max_completion_length} tokens each)"
        )
        print(f"  training time          {share.train_seconds:9.2f} s")
        print(f"  generation rounds      {share.generation_seconds:9.2f} s (generate + score)")
        print(f"  reward callables       {share.reward_seconds:9.4f} s for {share.completions_scored} completions")
        print(f"  reward share of training          {share.reward_share_of_training:8.3%}")
        print(f"  reward share of generation rounds {share.reward_share_of_generation:8.3%}")


if __name__ == "__main__":
    main()
