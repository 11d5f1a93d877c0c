"""``make demo``: ToolRL end to end on a CPU in minutes, offline, through the same entry points as a GPU run.

1. Build a tiny Qwen2.5-architecture model (random weights, a tokenizer trained on the task text) and a
   synthetic task set with held-out tools (:mod:`toolrl_trl.synthetic`).
2. Give it a starting point that knows the output format but is often wrong: ``recipes/sft.py`` on transcripts
   with two habits, each drawn per transcript: the call is made twice (costs correctness: the name match counts
   the extra call) and an unrequested ``<response>`` follows it (costs the format reward). Greedy decoding then
   shows both habits, as an instruct checkpoint shows its own; sampling still finds the right shape sometimes.
3. GRPO cold start from that starting point with the ToolRL rewards: ``recipes/grpo_cold_start.py``, run as a
   subprocess exactly as a GPU user runs it (TRL's progress bar included).
4. Evaluate the starting point and the GRPO result on held-out tasks, greedy decoding: tasks on the training
   tools that training never saw ("unseen prompts") and tasks on tools that no training prompt lists
   ("unseen tools"). Every metric comes from :mod:`toolrl_trl.rewards` (``score`` and the diagnostics that the
   ``correctness`` reward logs during training), so "exact match" has one definition in the project.
5. Print a before/after table; write ``summary.json`` and ``rewards.png`` (reward components per GRPO step).

Concessions to a 2-layer model trained from scratch on 2 CPU cores, all in the data the demo writes, none in the
recipes or the reward: the system prompt is one sentence instead of the paper's ~360 tokens, the tool list drops
the parameters' descriptions, thoughts are one fixed sentence, and every task is a single call. The reward
ignores thoughts and the system prompt: it scores the format tags and the tool calls.

CLI: ``python -m toolrl_trl.demo --output_dir outputs/demo [--seed 0] [--fast true]``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from toolrl_trl import grammar, synthetic
from toolrl_trl.cli import configure_logging, parse_options
from toolrl_trl.tiny import TinySize, build_tiny_model

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
RECIPES_DIR = REPO_ROOT / "recipes"
#: Metrics of one evaluation, in table order; the first three are the headline numbers.
METRICS = (
    "format_ok",
    "exact_match",
    "mean_reward",
    "name_match",
    "param_name_match",
    "param_value_match",
    "parse_failure",
)
#: Per-step series of the plot: TRL's reward logs and the diagnostics of the ``correctness`` reward.
REWARD_SERIES = {"rewards/format/mean": "format", "rewards/correctness/mean": "correctness", "reward": "total"}
MATCH_SERIES = {
    "tool_call/name_match": "name match",
    "tool_call/param_name_match": "parameter-name match",
    "tool_call/param_value_match": "parameter-value match",
    "tool_call/exact_match": "exact match",
}
SUBSETS = ("unseen_prompts", "unseen_tools")
#: The demo's short system prompt; the tool list under it is the paper's rendering, compacted (compact_tool).
SYSTEM_HEAD = (
    "Think inside <think> </think>, then call tools inside <tool_call> </tool_call> (one JSON object per line) "
    "or answer inside <response> </response>.\nTools:\n"
)
#: The one thought of every demo transcript.
THOUGHT = "I will call the tool that fits the request."
#: What the starting point's chatty transcripts say after their calls.
EXTRA_RESPONSE = "I am calling the tool for you now."


@dataclass
class DemoConfig:
    """Options of ``python -m toolrl_trl.demo``; training settings live in the two recipe YAMLs."""

    output_dir: str = field(
        default="outputs/demo",
        metadata={
            "help": "Where data, models, summary.json and rewards.png go. Emptied on each run if it holds a previous "
            "demo's output; any other non-empty folder is refused."
        },
    )
    seed: int = field(
        default=0,
        metadata={
            "help": "One seed for everything: model weights, tasks, held-out tools, which transcripts carry the "
            "habits, SFT and GRPO sampling. The same seed gives the same numbers."
        },
    )
    fast: bool = field(
        default=False,
        metadata={
            "help": "A smoke run (a few steps, small data and evaluation sets) that checks every stage in about 30 "
            "s; its numbers mean nothing. The test suite runs it."
        },
    )
    sft_recipe: str = field(
        default=str(RECIPES_DIR / "tiny" / "demo_sft.yaml"),
        metadata={"help": "recipes/sft.py YAML that trains the starting point."},
    )
    grpo_recipe: str = field(
        default=str(RECIPES_DIR / "tiny" / "demo_grpo.yaml"),
        metadata={"help": "recipes/grpo_cold_start.py YAML: GRPO settings and rewards."},
    )
    train_tasks: int = field(
        default=3000, metadata={"help": "Synthetic training tasks (SFT and GRPO draw from them)."}
    )
    held_out_tools: float = field(
        default=0.25, metadata={"help": "Tools never shown in training, as a fraction (< 1) or a count (>= 1)."}
    )
    task_weights: str = field(
        default="single=1",
        metadata={"help": "Synthetic task mix (kind=weight pairs); one call per prompt by default."},
    )
    max_tools_per_prompt: int = field(default=2, metadata={"help": "Tools a prompt lists (targets plus distractors)."})
    repeated_call_rate: float = field(
        default=0.6,
        metadata={
            "help": "Share of SFT transcripts that make their last call twice: the starting point's correctness "
            "habit (the name match of the fine-grained reward counts every extra call)."
        },
    )
    extra_response_rate: float = field(
        default=0.6,
        metadata={
            "help": "Share of SFT transcripts that add an unrequested <response> after the call: the starting "
            "point's format habit (the format reward wants the blocks the ground truth has, no more)."
        },
    )
    copy_transcripts: int = field(
        default=0,
        metadata={
            "help": "SFT transcripts on made-up tools (names from training name parts and syllables, random "
            "single-token parameters) added to the SFT data: generic copying from the tool list. Measured: no held-out "
            "tool was copied (see the README)."
        },
    )
    copy_pretrain_steps: int = field(
        default=0,
        metadata={
            "help": "Steps of a stage before SFT on random token strings repeated once (loss on the repeat): the "
            "induction-style copying a pretrained model brings, learned over the whole vocabulary. 0 skips it. "
            "Measured: the repeat is learned, the SFT after it is worse (see the README)."
        },
    )
    eval_unseen_prompts: int = field(
        default=128, metadata={"help": "Held-out tasks on the training tools that neither SFT nor GRPO saw."}
    )
    eval_unseen_tools: int = field(default=64, metadata={"help": "Held-out tasks on tools no training prompt lists."})
    eval_batch_size: int = field(default=32, metadata={"help": "Prompts per generate() call in the evaluation."})
    hidden_size: int = field(default=128, metadata={"help": "Tiny model width."})
    intermediate_size: int = field(default=256, metadata={"help": "Tiny model MLP width."})
    num_layers: int = field(default=2, metadata={"help": "Tiny model decoder layers."})
    num_heads: int = field(default=4, metadata={"help": "Attention heads."})
    num_kv_heads: int = field(default=2, metadata={"help": "Key/value heads (grouped-query attention, as Qwen2.5)."})
    vocab_size: int = field(default=1024, metadata={"help": "BPE vocabulary trained on the task text."})
    tokenizer_corpus_tasks: int = field(
        default=400, metadata={"help": "Training tasks whose text trains the tokenizer (held-out tasks never do)."}
    )

    def __post_init__(self) -> None:
        positive = ("train_tasks", "eval_batch_size", "tokenizer_corpus_tasks", "max_tools_per_prompt")
        for name in (*positive, "eval_unseen_prompts", "eval_unseen_tools"):
            value = getattr(self, name)
            if value < 0 or (name in positive and value == 0):
                raise ValueError(f"{name} must be {'positive' if name in positive else '>= 0'}, got {value}")
        for name in ("repeated_call_rate", "extra_response_rate"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if not self.held_out_tools:
            raise ValueError("held_out_tools is 0: the demo evaluates on held-out tools")
        synthetic.parse_task_weights(self.task_weights)
        synthetic.select_held_out_tools(self.held_out_tools, self.seed)
        for name in ("sft_recipe", "grpo_recipe"):
            if not Path(getattr(self, name)).is_file():
                raise FileNotFoundError(f"{name}={getattr(self, name)!r} is not a file")

    def model_size(self) -> TinySize:
        """The tiny model's dimensions: the fields named as :class:`~toolrl_trl.tiny.TinySize` names them."""
        return TinySize(
            **{f.name: getattr(self, f.name) for f in dataclasses.fields(TinySize) if hasattr(self, f.name)}
        )


#: What --fast changes: enough to run every stage, nothing more.
FAST_PRESET = {
    "sft_args": ["--max_steps", "3"],
    "grpo_args": ["--max_steps", "2"],
    "train_tasks": 48,
    "eval_unseen_prompts": 4,
    "eval_unseen_tools": 4,
    "tokenizer_corpus_tasks": 40,
}


# ---------------------------------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------------------------------


def compact_tool(spec: grammar.ToolSpec) -> grammar.ToolSpec:
    """The tool without its parameters' descriptions: names, types, enums and defaults are what a call needs."""
    params = {
        name: {k: v for k, v in schema.items() if k != "description"} for name, schema in spec.parameters.items()
    }
    return grammar.ToolSpec(spec.name, spec.description, params)


def demo_prompt(task: synthetic.SyntheticTask) -> list[dict[str, str]]:
    """The chat prompt of a task: the demo's short system prompt over the paper's (compacted) tool list, the
    paper's user turn."""
    system = SYSTEM_HEAD + grammar.render_tool_list(compact_tool(spec) for spec in task.tools)
    return [{"role": "system", "content": system}, {"role": "user", "content": task.user_message}]


def repeat_call(task: synthetic.SyntheticTask) -> synthetic.SyntheticTask:
    """The reference turn with its last call made a second time."""
    return dataclasses.replace(task, calls=task.calls + task.calls[-1:])


def add_response(task: synthetic.SyntheticTask) -> synthetic.SyntheticTask:
    """The reference turn with a chatty ``<response>`` after its calls (a valid turn, the wrong shape here)."""
    return dataclasses.replace(task, response=EXTRA_RESPONSE)


def build_tasks(config: DemoConfig) -> dict[str, list[synthetic.SyntheticTask]]:
    """Training tasks (fixed thought) and the two held-out sets, all from one seeded generator."""
    generator = synthetic.SyntheticGenerator(
        config.seed, config.held_out_tools, config.task_weights, config.max_tools_per_prompt
    )
    # One stream: its first train_tasks are the training set, the next ones (minus exact repeats) are unseen.
    stream = generator.tasks("train", config.train_tasks + 2 * config.eval_unseen_prompts)
    train = stream[: config.train_tasks]
    seen = {(task.user_message, task.output) for task in train}
    unseen = [task for task in stream[config.train_tasks :] if (task.user_message, task.output) not in seen]
    unseen_prompts = unseen[: config.eval_unseen_prompts]
    unseen_tools = generator.tasks("test", config.eval_unseen_tools)
    return {
        name: [dataclasses.replace(task, think=THOUGHT) for task in tasks]
        for name, tasks in (("train", train), ("unseen_prompts", unseen_prompts), ("unseen_tools", unseen_tools))
    }


#: Letters of the made-up name parts of copy transcripts (consonant-vowel syllables).
_CONSONANTS = "bdfgklmnprstvz"
_VOWELS = "aeiou"
#: What a copy transcript's user says; ``{part}`` is a word of the target's name, ``{value}`` the argument.
COPY_REQUESTS = (
    "Please {part} {value}.",
    "Can you {part} the {value}?",
    "I need {part} for {value}.",
    "Show me {value} {part}.",
    "What is the {part} of {value}?",
)


def _made_up_part(rng: random.Random) -> str:
    return "".join(rng.choice(_CONSONANTS) + rng.choice(_VOWELS) for _ in range(rng.randint(2, 3)))


def training_name_parts(tools: Sequence[synthetic.SyntheticTool]) -> list[str]:
    """The ``_``-separated parts of the training tools' names (``get``, ``weather``, ...), in catalogue order."""
    return list(dict.fromkeys(part for tool in tools for part in tool.name.split("_")))


def copy_tool(rng: random.Random, name_parts: Sequence[str], words: Sequence[str]) -> tuple[grammar.ToolSpec, str]:
    """A made-up tool and its one required parameter.

    The name joins 2-3 parts, each a training tool's name part or a made-up syllable string, so that copying it
    is a sequence of sub-word pieces as a held-out name is; parameters are random single-token words.
    """
    parts = [rng.choice(name_parts) if rng.random() < 0.5 else _made_up_part(rng) for _ in range(rng.randint(2, 3))]
    name = "_".join(parts)
    required, optional = rng.sample(words, 2)
    params: dict[str, Any] = {required: {"type": "str"}}
    if rng.random() < 0.5:
        params[optional] = {"type": "str, optional", "default": rng.choice(words)}
    description = f"{parts[0].capitalize()} the {' '.join(parts[1:])}."
    return grammar.ToolSpec(name, description, params), required


def _typed(spoken: str) -> Any:
    """``"25000"`` as 25000 and ``"2.5"`` as 2.5: a number a request says is a number in the call."""
    for kind in (int, float):
        try:
            return kind(spoken)
        except ValueError:
            pass
    return spoken


def copy_tasks(
    n: int, seed: int, tools: Sequence[synthetic.SyntheticTool], words: Sequence[str]
) -> list[synthetic.SyntheticTask]:
    """``n`` single-call tasks on made-up tools: the copying a pretrained model brings to a tool it never saw.

    The user names a part of one listed tool's name and a value; the reference call copies that tool's name,
    its required parameter and the value. No held-out tool name appears (its parts are training names' parts or
    made-up syllables); parameter names and values are drawn from ``words``, the tokenizer's single-token words.
    """
    rng = random.Random(f"toolrl-demo-copy:{seed}")
    values = list(words)
    words = [word for word in words if word.isidentifier()]
    name_parts = training_name_parts(tools)
    tasks = []
    for _ in range(n):
        listed = [copy_tool(rng, name_parts, words) for _ in range(2)]
        target, required = rng.choice(listed)
        spoken = rng.choice(values)
        value = _typed(spoken)
        if not isinstance(value, str):
            target = dataclasses.replace(
                target, parameters={**target.parameters, required: {"type": type(value).__name__}}
            )
            listed = [(target, required) if spec.name == target.name else (spec, r) for spec, r in listed]
        part = rng.choice(target.name.split("_")[1:])
        request = rng.choice(COPY_REQUESTS).format(part=part, value=spoken)
        tasks.append(
            synthetic.SyntheticTask(
                kind="single",
                variant="copy",
                tools=tuple(spec for spec, _ in listed),
                history=(f"{grammar.USER_OPEN} {request} {grammar.USER_CLOSE}",),
                think=THOUGHT,
                calls=({"name": target.name, "parameters": {required: value}},),
                target_tools=(target.name,),
                request=request,
            )
        )
    return tasks


def write_datasets(
    tasks: dict[str, list[synthetic.SyntheticTask]], config: DemoConfig, folder: Path
) -> dict[str, Any]:
    """``sft.jsonl`` (transcripts with the starting point's habits), ``grpo.jsonl`` (correct ground truths) and
    ``heldout.jsonl``.

    The recipes read them through the data layer as any user file (validation, length filter). Each habit is
    drawn independently per transcript; returns how many transcripts there are and how many carry each habit.
    """
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(f"toolrl-demo-habits:{config.seed}")
    sft_rows = []
    counts = {"sft_transcripts": 0, "repeated_call": 0, "extra_response": 0}
    for task in tasks["train"]:
        target = task
        if rng.random() < config.repeated_call_rate and target.calls:
            target = repeat_call(target)
            counts["repeated_call"] += 1
        if rng.random() < config.extra_response_rate and target.calls and target.response is None:
            target = add_response(target)
            counts["extra_response"] += 1
        counts["sft_transcripts"] += 1
        sft_rows.append({"prompt": demo_prompt(task), "completion": [{"role": "assistant", "content": target.output}]})
    files = {
        "sft.jsonl": sft_rows,
        "grpo.jsonl": [{"prompt": demo_prompt(t), "ground_truth": t.output} for t in tasks["train"]],
        "heldout.jsonl": [
            {"prompt": demo_prompt(t), "ground_truth": t.output, "subset": name}
            for name in SUBSETS
            for t in tasks[name]
        ],
    }
    if config.copy_transcripts:
        words = catalogue_words()
        held_out = set(synthetic.select_held_out_tools(config.held_out_tools, config.seed))
        train_tools = [t for t in synthetic.CATALOG if t.name not in held_out]
        made_up = copy_tasks(config.copy_transcripts, config.seed, train_tools, words)
        sft_rows += [
            {"prompt": demo_prompt(t), "completion": [{"role": "assistant", "content": t.output}]} for t in made_up
        ]
        counts["copy_transcripts"] = len(made_up)
    for name, rows in files.items():
        with open(folder / name, "w", encoding="utf-8") as handle:
            handle.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    return counts


def pretrain_copying(model_dir: Path, steps: int, seed: int, length: int = 24, batch_size: int = 16) -> None:
    """Train ``model_dir`` in place to continue a random token string that it has seen once before.

    Two-layer transformers learn this induction circuit in a few hundred steps; it copies any token sequence,
    so it does not depend on which names the tool list holds.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainingArguments

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    special = set(AutoTokenizer.from_pretrained(model_dir).all_special_ids)
    ordinary = torch.tensor([i for i in range(model.config.vocab_size) if i not in special])
    generator = torch.Generator().manual_seed(seed)
    picks = torch.randint(len(ordinary), (steps * batch_size, length), generator=generator)
    rows = [
        {"input_ids": torch.cat([ids, ids]), "labels": torch.cat([torch.full_like(ids, -100), ids])}
        for ids in ordinary[picks]
    ]
    args = TrainingArguments(
        output_dir=str(model_dir / "copy_pretraining"),
        max_steps=steps,
        per_device_train_batch_size=batch_size,
        learning_rate=1e-3,
        warmup_steps=min(20, steps),
        lr_scheduler_type="constant_with_warmup",
        use_cpu=True,
        seed=seed,
        logging_steps=50,
        save_strategy="no",
        report_to="none",
        disable_tqdm=False,
    )
    Trainer(model=model, args=args, train_dataset=rows).train()
    model.save_pretrained(model_dir)
    shutil.rmtree(model_dir / "copy_pretraining", ignore_errors=True)


def tokenizer_corpus(tasks: Sequence[synthetic.SyntheticTask], count: int) -> list[str]:
    """Prompts and reference turns of the first ``count`` training tasks."""
    corpus: list[str] = []
    for task in tasks[:count]:
        corpus += [message["content"] for message in demo_prompt(task)] + [task.output]
    return corpus


def catalogue_words() -> list[str]:
    """Every parameter name and value of the catalogue (held-out tools' too), to be single tokens.

    A request and a call then spell a value with the same token (`` Paris`` and ``"Paris"`` differ in byte-level
    BPE), so copying is one attention lookup. Numbers are spelled as requests say them (``25000`` for 25000.0).
    Tool names stay in BPE pieces: a training tool's name is learned whole anyway, and a held-out tool's name as
    one never-trained token was never copied either (measured: name match 0 on unseen tools both ways).
    """
    words: set[str] = set()
    for tool in synthetic.CATALOG:
        words |= {param.name for param in tool.params}
        for param in tool.params:
            for value in param.pool:
                if isinstance(value, str):
                    words.add(value)
                elif isinstance(value, (int, float)) and not isinstance(value, bool):
                    words.add(synthetic.say(value))
    return sorted(words)


# ---------------------------------------------------------------------------------------------------------------------
# Plan: the two recipe command lines, parsed here so a bad option fails before anything runs
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class DemoPlan:
    """Everything one demo run does: the recipe command lines and the parsed settings they amount to."""

    sft_args: list[str]
    grpo_args: list[str]
    sft_training: Any  # trl.SFTConfig
    grpo_training: Any  # trl.GRPOConfig
    reward: Any  # toolrl_trl.rewards.RewardConfig


def make_plan(config: DemoConfig) -> DemoPlan:
    """Recipe command lines for this run (what a user would type), parsed with the recipes' own parsers."""
    from toolrl_trl.configs import make_sft_parser, parse_args, parse_grpo_args

    out = Path(config.output_dir)
    common = ["--seed", str(config.seed), "--dataset_seed", str(config.seed), "--test_size", "0"]
    sft_args = ["--config", config.sft_recipe, "--model_name_or_path", str(out / "base")]
    sft_args += ["--data_source", str(out / "data" / "sft.jsonl"), "--output_dir", str(out / "sft"), *common]
    grpo_args = ["--config", config.grpo_recipe, "--model_name_or_path", str(out / "sft")]
    grpo_args += ["--data_source", str(out / "data" / "grpo.jsonl"), "--output_dir", str(out / "grpo"), *common]
    if config.fast:
        sft_args += FAST_PRESET["sft_args"]
        grpo_args += FAST_PRESET["grpo_args"]
    _, _, sft_training, _ = parse_args(make_sft_parser(), sft_args)
    _, _, reward, grpo_training, _ = parse_grpo_args(grpo_args, world_size=1)
    return DemoPlan(sft_args, grpo_args, sft_training, grpo_training, reward)


def apply_fast_preset(config: DemoConfig) -> DemoConfig:
    """The smoke-run sizes (never larger than what was asked)."""
    if not config.fast:
        return config
    sizes = {k: min(getattr(config, k), v) for k, v in FAST_PRESET.items() if hasattr(config, k)}
    return dataclasses.replace(config, **sizes)


def run_recipe(script: str, args: Sequence[str]) -> None:
    """Run ``recipes/<script>`` in a subprocess with ``args``: the exact command line a user would type."""
    path = RECIPES_DIR / script
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run the demo from a clone of the repository (pip install -e .)")
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    cmd = [sys.executable, str(path), *args]
    logger.info("running %s", " ".join(cmd))
    subprocess.run(cmd, check=True, env=env, cwd=REPO_ROOT)


# ---------------------------------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------------------------------


def generate(
    model_dir: Path, prompts: Sequence[list[dict[str, str]]], max_new_tokens: int, batch_size: int
) -> list[str]:
    """Greedy completions for chat ``prompts``, through the evaluation package's transformers backend."""
    from toolrl_trl.eval.generation import GenerationConfig, HFBackend

    config = GenerationConfig(
        model=str(model_dir), max_new_tokens=max_new_tokens, batch_size=batch_size, model_dtype="float32", device="cpu"
    )
    return HFBackend(config).generate(prompts)


def score_completions(completions: Sequence[str], ground_truths: Sequence[str], reward_config: Any) -> dict[str, Any]:
    """The demo's metrics, all from :mod:`toolrl_trl.rewards`.

    ``format_ok`` (format reward at its maximum) and ``mean_reward`` come from ``score()`` at round 1; the
    match rates and ``exact_match`` are the diagnostics the ``correctness`` reward logs during GRPO
    (``tool_call/*``).
    """
    from toolrl_trl.rewards import get_reward_funcs, reward_bounds, score

    if not completions:
        return dict.fromkeys(METRICS, float("nan")) | {"n": 0}
    format_max = reward_bounds(1, reward_config).format[1]
    scores = [score(c, g, 1, reward_config) for c, g in zip(completions, ground_truths, strict=True)]
    logged: dict[str, float] = {}
    correctness = next(f for f in get_reward_funcs(reward_config) if f.__name__ == "correctness")
    correctness(list(completions), list(ground_truths), log_metric=logged.__setitem__)
    result: dict[str, Any] = {
        "format_ok": sum(s.format == format_max for s in scores) / len(scores),
        "exact_match": logged.get("tool_call/exact_match", float("nan")),
        "mean_reward": sum(s.total for s in scores) / len(scores),
    }
    for name in ("name_match", "param_name_match", "param_value_match", "parse_failure"):
        result[name] = logged.get(f"tool_call/{name}", float("nan"))
    result["n"] = len(scores)
    return result


def evaluate(
    model_dir: Path, tasks: dict[str, list], max_new_tokens: int, batch_size: int, reward_config: Any
) -> dict[str, Any]:
    """Metrics on all held-out tasks together, the same per subset, and two sample outputs."""
    names = [name for name in SUBSETS if tasks[name]]
    flat = [task for name in names for task in tasks[name]]
    logger.info("evaluating %s on %d held-out tasks (greedy decoding)", model_dir, len(flat))
    completions = generate(model_dir, [demo_prompt(task) for task in flat], max_new_tokens, batch_size)
    truths = [task.output for task in flat]
    result = score_completions(completions, truths, reward_config)
    result["subsets"] = {}
    start = 0
    for name in names:
        end = start + len(tasks[name])
        result["subsets"][name] = score_completions(completions[start:end], truths[start:end], reward_config)
        start = end
    result["samples"] = [
        {"ground_truth": t, "completion": c} for t, c in zip(truths[:2], completions[:2], strict=True)
    ]
    return result


# ---------------------------------------------------------------------------------------------------------------------
# Outputs: table, plot, summary
# ---------------------------------------------------------------------------------------------------------------------


def format_table(before: dict[str, Any], after: dict[str, Any]) -> str:
    """The before/after table: all held-out tasks, then each subset."""
    blocks = [("held-out, all", before, after)]
    for name in SUBSETS:
        if name in before.get("subsets", {}):
            blocks.append((f"  {name.replace('_', ' ')}", before["subsets"][name], after["subsets"][name]))
    width = 26
    lines = [f"{'':<{width}}{'start (SFT)':>13}{'after GRPO':>13}{'change':>10}"]
    for title, b, a in blocks:
        lines.append(f"{title} ({b['n']} tasks)")
        for metric in METRICS:
            lines.append(f"  {metric:<{width - 2}}{b[metric]:>13.3f}{a[metric]:>13.3f}{a[metric] - b[metric]:>+10.3f}")
    return "\n".join(lines)


def reward_history(trainer_state_path: Path) -> dict[str, list[tuple[int, float]]]:
    """Per-step series of the GRPO run's logged rewards and tool-call match rates (``trainer_state.json``)."""
    state = json.loads(trainer_state_path.read_text())
    series: dict[str, list[tuple[int, float]]] = {}
    for entry in state.get("log_history", []):
        for key in (*REWARD_SERIES, *MATCH_SERIES):
            if key in entry and "step" in entry:
                series.setdefault(key, []).append((int(entry["step"]), float(entry[key])))
    return series


#: Steps in the plot's moving average: a GRPO step scores only 4 prompts, so single steps are noisy.
SMOOTHING_WINDOW = 5


def moving_average(values: Sequence[float], window: int) -> list[float]:
    """Trailing mean over up to ``window`` values (shorter at the start), one per input value."""
    return [sum(values[max(0, i + 1 - window) : i + 1]) / (i + 1 - max(0, i + 1 - window)) for i in range(len(values))]


def plot_rewards(series: dict[str, list[tuple[int, float]]], path: Path, title: str) -> None:
    """Two panels over GRPO steps: the reward components, and the tool-call match rates (raw and smoothed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 7), sharex=True)
    for ax, names, ylabel in (
        (top, REWARD_SERIES, "reward (mean over completions)"),
        (bottom, MATCH_SERIES, "share of completions"),
    ):
        for key, label in names.items():
            points = series.get(key)
            if points:
                steps, values = [s for s, _ in points], [v for _, v in points]
                (line,) = ax.plot(steps, moving_average(values, SMOOTHING_WINDOW), linewidth=2, label=label)
                ax.plot(steps, values, color=line.get_color(), alpha=0.25, linewidth=1)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
    bottom.set_xlabel(f"GRPO step (thin: per step; thick: mean of the last {SMOOTHING_WINDOW})")
    bottom.set_ylim(-0.05, 1.05)
    top.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _settings(config: DemoConfig, plan: DemoPlan, data_counts: dict[str, Any]) -> dict[str, Any]:
    sft, grpo = plan.sft_training, plan.grpo_training
    return {
        "seed": config.seed,
        "fast": config.fast,
        "model": {"family": "qwen2", **asdict(config.model_size())},
        "data": {
            "train_tasks": config.train_tasks,
            "task_weights": config.task_weights,
            "max_tools_per_prompt": config.max_tools_per_prompt,
            "held_out_tools": list(synthetic.select_held_out_tools(config.held_out_tools, config.seed)),
            "repeated_call_rate": config.repeated_call_rate,
            "extra_response_rate": config.extra_response_rate,
            **data_counts,
            "eval_unseen_prompts": config.eval_unseen_prompts,
            "eval_unseen_tools": config.eval_unseen_tools,
            "eval_decoding": "greedy",
        },
        "sft": {
            "max_steps": sft.max_steps,
            "per_device_train_batch_size": sft.per_device_train_batch_size,
            "learning_rate": sft.learning_rate,
            "command": ["recipes/sft.py", *plan.sft_args],
        },
        "grpo": {
            "max_steps": grpo.max_steps,
            "num_generations": grpo.num_generations,
            "generation_batch_size": grpo.generation_batch_size,
            "per_device_train_batch_size": grpo.per_device_train_batch_size,
            "gradient_accumulation_steps": grpo.gradient_accumulation_steps,
            "steps_per_generation": grpo.steps_per_generation,
            "learning_rate": grpo.learning_rate,
            "temperature": grpo.temperature,
            "beta": grpo.beta,
            "loss_type": grpo.loss_type,
            "max_completion_length": grpo.max_completion_length,
            "reward": asdict(plan.reward),
            "command": ["recipes/grpo_cold_start.py", *plan.grpo_args],
        },
    }


# ---------------------------------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------------------------------


#: Written into every demo output folder: only a folder holding it is ever emptied by a later run.
OUTPUT_MARKER = ".toolrl-demo"


def prepare_output_dir(out: Path) -> Path:
    """An empty ``out``: a previous demo's folder is emptied (a stale ``checkpoint-*`` would make the recipes
    resume instead of starting over); any other non-empty folder is refused, never deleted."""
    if out.exists() and any(out.iterdir()):
        if not (out / OUTPUT_MARKER).is_file():
            raise FileExistsError(
                f"{out} is not empty and is not a previous demo output (no {OUTPUT_MARKER} file): "
                "choose a new --output_dir, the demo empties its folder on each run"
            )
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / OUTPUT_MARKER).write_text("written by python -m toolrl_trl.demo; the next run empties this folder\n")
    return out


def run(config: DemoConfig) -> dict[str, Any]:
    """The whole demo; returns the summary it writes to ``<output_dir>/summary.json``."""
    start = time.perf_counter()
    config = apply_fast_preset(config)
    plan = make_plan(config)  # before anything is deleted or built: a bad recipe option fails here
    out = prepare_output_dir(Path(config.output_dir))
    stage_times: dict[str, float] = {}

    t0 = time.perf_counter()
    tasks = build_tasks(config)
    data_counts = write_datasets(tasks, config, out / "data")
    corpus = tokenizer_corpus(tasks["train"], config.tokenizer_corpus_tasks)
    build_tiny_model(
        out / "base",
        "qwen2",
        corpus=corpus,
        size=config.model_size(),
        seed=config.seed,
        whole_words=catalogue_words(),
    )
    stage_times["build"] = time.perf_counter() - t0

    if config.copy_pretrain_steps:
        t0 = time.perf_counter()
        pretrain_copying(out / "base", config.copy_pretrain_steps, config.seed)
        stage_times["copy_pretraining"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    run_recipe("sft.py", plan.sft_args)
    stage_times["sft"] = time.perf_counter() - t0

    max_new_tokens = plan.grpo_training.max_completion_length
    t0 = time.perf_counter()
    before = evaluate(out / "sft", tasks, max_new_tokens, config.eval_batch_size, plan.reward)
    stage_times["eval_before"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    run_recipe("grpo_cold_start.py", plan.grpo_args)
    stage_times["grpo"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    after = evaluate(out / "grpo", tasks, max_new_tokens, config.eval_batch_size, plan.reward)
    stage_times["eval_after"] = time.perf_counter() - t0

    series = reward_history(out / "grpo" / "trainer_state.json")
    plot_rewards(series, out / "rewards.png", f"GRPO with the ToolRL reward (tiny model, seed {config.seed})")
    summary = {
        "before": before,
        "after": after,
        "settings": _settings(config, plan, data_counts),
        "training_curves": {key: [[s, v] for s, v in points] for key, points in series.items()},
        "stage_times_s": {k: round(v, 1) for k, v in stage_times.items()},
        "wall_time_s": round(time.perf_counter() - start, 1),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    configure_logging()
    config = parse_options(DemoConfig, argv)
    summary = run(config)
    out = Path(config.output_dir)
    times = ", ".join(f"{k} {v:.0f} s" for k, v in summary["stage_times_s"].items())
    logger.info(
        "held-out results (greedy decoding):\n%s\nwall time %.0f s (%s)\nwrote %s and %s",
        format_table(summary["before"], summary["after"]),
        summary["wall_time_s"],
        times,
        out / "summary.json",
        out / "rewards.png",
    )
    return summary


if __name__ == "__main__":
    main()
