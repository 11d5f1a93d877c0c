"""The executed multi-turn mode end to end on a CPU: does GRPO on real tool results teach a tiny model anything?

1. Draw executed two-step tasks from the synthetic world (:mod:`toolrl_trl.envs.world`): a lookup, a second call
   that uses its result, an answer from the second result. Training tasks, and held-out tasks on the same tools
   whose request texts no training task uses ("seen tools, unseen prompts").
2. Build a tiny Qwen2.5-architecture model (random weights; a tokenizer trained on the rendered tasks; every world
   value a whole-word token, as :mod:`toolrl_trl.demo` does) with the real Qwen2.5 chat template.
3. A short SFT start on reference transcripts (native Qwen2.5 tool calls, tool results, answer), loss on the
   assistant turns only: it learns the format and part of the copying, so it solves some held-out tasks.
4. Evaluate it: one greedy episode per held-out task, rolled out by TRL's tool loop (:mod:`toolrl_trl.eval.executed`).
5. GRPO with executed rollouts from that start (:func:`toolrl_trl.envs.multiturn.run_grpo_multiturn`, the body of
   ``recipes/grpo_multiturn.py``), rewards format + correctness + outcome.
6. Evaluate again; write ``summary.json``.

CLI: ``python -m toolrl_trl.envs.demo --output_dir outputs/multiturn_demo [--seed 0] [--fast true]``.
"""

from __future__ import annotations

import json
import logging
import random
import shlex
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from toolrl_trl.tiny import TinySize

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
RECIPES_DIR = REPO_ROOT / "recipes"
OUTPUT_MARKER = ".toolrl-multiturn-demo"
#: The starting point's habits (see MultiTurnDemoConfig.habit).
HABITS = ("stop_early", "answer_early", "guess")
#: What a ``stop_early`` transcript says instead of making the second call.
STOP_EARLY_REPLY = "I looked that up, but I cannot finish this request."


@dataclass
class MultiTurnDemoConfig:
    """Options of ``python -m toolrl_trl.envs.demo``; training settings live in the two recipe YAMLs."""

    output_dir: str = field(
        default="outputs/multiturn_demo",
        metadata={"help": "Where data, models and summary.json go; a previous demo's folder is emptied first."},
    )
    seed: int = field(default=0, metadata={"help": "One seed for the tasks, the model weights, SFT and GRPO."})
    fast: bool = field(
        default=False,
        metadata={"help": "A smoke run of every stage (a few steps, a few tasks); numbers mean nothing."},
    )
    sft_recipe: str = field(
        default=str(RECIPES_DIR / "tiny" / "demo_multiturn_sft.yaml"),
        metadata={"help": "SFTConfig/ModelConfig YAML of the SFT start."},
    )
    grpo_recipe: str = field(
        default=str(RECIPES_DIR / "tiny" / "demo_multiturn_grpo.yaml"),
        metadata={"help": "recipes/grpo_multiturn.py YAML of the GRPO stage."},
    )
    sft_flags: str = field(default="", metadata={"help": "Extra flags for the SFT recipe, e.g. '--max_steps 50'."})
    grpo_flags: str = field(default="", metadata={"help": "Extra flags for the GRPO recipe, e.g. '--max_steps 10'."})
    chains: str = field(
        default="contact_weather,contact_time,contact_email",
        metadata={
            "help": "Synthetic world chains to train and evaluate on (two-step: a contact lookup, then a call "
            "that uses the city or address it returned)."
        },
    )
    distractors: int = field(default=0, metadata={"help": "Distractor tools listed in each prompt."})
    habit: str = field(
        default="stop_early",
        metadata={
            "help": "The starting point's habit, put in a habit_rate share of the SFT transcripts: 'stop_early' "
            "(reply right after the lookup that it cannot finish, without the second call), 'answer_early' (answer "
            "right after the lookup with what a guess would have returned) or 'guess' (make the second call with a "
            "default value instead of the one the lookup returned).",
            "choices": list(HABITS),
        },
    )
    habit_rate: float = field(
        default=0.6, metadata={"help": "Share of SFT transcripts (drawn per transcript) that carry the habit."}
    )
    sft_tasks: int = field(default=1600, metadata={"help": "Reference transcripts for the SFT start."})
    eval_tasks: int = field(default=64, metadata={"help": "Held-out tasks (seen tools, unseen prompts)."})
    eval_batch_size: int = field(default=32, metadata={"help": "Episodes rolled out together in the evaluation."})
    hidden_size: int = field(default=128, metadata={"help": "Tiny model width."})
    intermediate_size: int = field(default=256, metadata={"help": "Tiny model MLP width."})
    num_layers: int = field(default=2, metadata={"help": "Tiny model decoder layers."})
    num_heads: int = field(default=4, metadata={"help": "Attention heads."})
    num_kv_heads: int = field(default=2, metadata={"help": "Key/value heads."})
    vocab_size: int = field(default=1024, metadata={"help": "BPE vocabulary trained on the rendered tasks."})
    tokenizer_corpus_tasks: int = field(
        default=300, metadata={"help": "Training tasks whose text trains the tokenizer."}
    )

    def __post_init__(self) -> None:
        if self.habit not in HABITS:
            raise ValueError(f"habit={self.habit!r} is not valid; valid: {', '.join(HABITS)}")
        if not 0 <= self.habit_rate <= 1:
            raise ValueError(f"habit_rate must be in [0, 1], got {self.habit_rate}")
        for name in ("sft_tasks", "eval_tasks", "eval_batch_size", "tokenizer_corpus_tasks"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("sft_recipe", "grpo_recipe"):
            if not Path(getattr(self, name)).is_file():
                raise FileNotFoundError(f"{name}={getattr(self, name)!r} is not a file")

    def model_size(self) -> TinySize:
        return TinySize(
            vocab_size=self.vocab_size,
            hidden_size=self.hidden_size,
            intermediate_size=self.intermediate_size,
            num_layers=self.num_layers,
            num_heads=self.num_heads,
            num_kv_heads=self.num_kv_heads,
        )


FAST_PRESET = {"sft_tasks": 48, "eval_tasks": 4, "tokenizer_corpus_tasks": 24}
FAST_SFT_ARGS = ["--max_steps", "3"]
FAST_GRPO_ARGS = ["--max_steps", "2"]


def generator_for(config: MultiTurnDemoConfig):
    from toolrl_trl.envs.world import WorldGenerator

    return WorldGenerator(seed=config.seed, chains=config.chains, distractors=config.distractors)


def _other_values(key: str, value: Any, world_state: dict[str, Any]) -> list[Any]:
    """Values a result field could hold in this world, other than ``value`` (all valid arguments of the next tool)."""
    from toolrl_trl.envs import world

    pools = {
        "city": world.CITIES,
        "email": sorted(c["email"] for c in world_state["contacts"].values()),
        "product": world.PRODUCTS,
        "balance": world.BALANCES,
        "currency": world.CURRENCIES,
    }
    return [v for v in pools.get(key, ()) if v != value]


def guessed_calls(task: Any) -> list[dict[str, Any]] | None:
    """The reference calls with every argument that copies the first result replaced by a default value.

    The default is the first other valid value (the same one for most tasks), so that a starting point trained on
    a majority of such transcripts makes the guess under greedy decoding, and GRPO has a behaviour to select
    against. The transcript then carries what the world returns for the guess. None when nothing depends.
    """
    first_result = task.results[0]
    calls = json.loads(json.dumps(task.task["reference_calls"]))
    changed = False
    for name, value in list(calls[1]["arguments"].items()):
        source = next((k for k, v in first_result.items() if v == value and str(v) not in task.request), None)
        options = _other_values(source, value, task.task["initial_state"]) if source else []
        if options:
            calls[1]["arguments"][name] = options[0]
            changed = True
    return calls if changed else None


def habit_transcript(task: Any, habit: str) -> list[dict[str, Any]] | None:
    """The transcript of ``task`` with ``habit`` (:data:`HABITS`); None when the task has no dependent argument.

    ``guess``: the dependent call made with a default value, its result, and the answer from that result.
    ``answer_early``: the lookup and its result, then at once the answer a guess would have produced: the second
    call is never made, so an email is never sent and a weather or time answer is made up.
    ``stop_early``: the lookup and its result, then :data:`STOP_EARLY_REPLY`. Unlike the other two it never shows
    an answer or a call that ignores what is in the context, so the reference transcripts alone teach copying.
    """
    calls = guessed_calls(task)
    if calls is None:
        return None
    messages = task.transcript(calls=calls)
    if habit == "answer_early":
        messages = messages[:2] + messages[-1:]
    elif habit == "stop_early":
        messages = messages[:2] + [{"role": "assistant", "content": STOP_EARLY_REPLY}]
    return messages


def sft_rows(
    tasks: Sequence[Any], habit: str = "stop_early", habit_rate: float = 0.0, seed: int = 0
) -> tuple[list[dict[str, Any]], int]:
    """Prompt-completion rows (every turn and tool result) with the tool schemas, and how many carry the habit.

    A ``habit_rate`` share of the transcripts (drawn per transcript) carries ``habit`` (:func:`habit_transcript`);
    the others are the reference transcripts.
    """
    from toolrl_trl.envs.multiturn import tool_schemas

    rng = random.Random(f"toolrl-multiturn-demo-habit:{seed}")
    schemas: dict[str, str] = {}
    rows, with_habit = [], 0
    for task in tasks:
        if task.env_name not in schemas:
            schemas[task.env_name] = json.dumps(tool_schemas(task.env_name))
        completion = habit_transcript(task, habit) if rng.random() < habit_rate else None
        with_habit += completion is not None
        completion = completion or task.transcript()
        rows.append({"prompt": task.prompt(), "completion": completion, "tools": schemas[task.env_name]})
    return rows, with_habit


def tokenized_sft_rows(rows: Sequence[dict[str, Any]], tokenizer: Any) -> list[dict[str, list[int]]]:
    """The transcripts as token ids with the assistant-turn mask, rendered by TRL's training variant of the template.

    Tokenized here rather than by ``SFTTrainer``: a ``datasets`` table would unify the calls' argument objects into
    one struct with every tool's parameters (``{"name": "Bob", "city": null, ...}``), and the template would render
    those nulls into the training text.
    """
    from trl.chat_template_utils import get_training_chat_template

    template = get_training_chat_template(tokenizer)
    examples = []
    for row in rows:
        encoded = tokenizer.apply_chat_template(
            row["prompt"] + row["completion"],
            tools=json.loads(row["tools"]),
            chat_template=template,
            tokenize=True,
            return_dict=True,
            return_assistant_tokens_mask=True,
        )
        examples.append({"input_ids": list(encoded["input_ids"]), "assistant_masks": list(encoded["assistant_masks"])})
    return examples


def tokenizer_corpus(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The rows as the Qwen2.5 chat template renders them (any tokenizer with that template renders the same text)."""
    from transformers import AutoTokenizer

    from toolrl_trl.tiny import tiny_model_path

    renderer = AutoTokenizer.from_pretrained(tiny_model_path("qwen2"))
    return [
        renderer.apply_chat_template(row["prompt"] + row["completion"], tools=json.loads(row["tools"]), tokenize=False)
        for row in rows
    ]


def system_blocks(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Each environment's system turn as the Qwen2.5 template renders it (instructions and tool schemas), once.

    The tiny tokenizer holds each block as one token: every prompt of an environment repeats it verbatim (about 250
    BPE tokens), and a 2-layer model trained for minutes does not learn to copy across them (measured: a user's name
    was copied at chance level after 400 SFT steps with the block in BPE pieces; without it, from step ~300).
    """
    from transformers import AutoTokenizer

    from toolrl_trl.tiny import tiny_model_path

    renderer = AutoTokenizer.from_pretrained(tiny_model_path("qwen2"))
    blocks: dict[str, str] = {}
    for row in rows:
        if row["tools"] in blocks:
            continue
        text = renderer.apply_chat_template(row["prompt"][:1], tools=json.loads(row["tools"]), tokenize=False)
        head, sep, rest = text.partition("<|im_start|>system\n")
        body, end, _ = rest.partition("<|im_end|>")
        if head or not sep or not end:
            raise ValueError(f"unexpected rendering of the system turn: {text[:200]!r}")
        blocks[row["tools"]] = body
    return list(blocks.values())


def run_sft(config: MultiTurnDemoConfig, rows: list[dict[str, Any]], base: Path, out: Path) -> None:
    """TRL's SFTTrainer on the transcripts, assistant turns only (settings from ``sft_recipe``)."""
    from datasets import Dataset
    from trl import ModelConfig, SFTConfig, SFTTrainer

    from toolrl_trl.configs import ToolRLParser, ToolRLScriptArguments, parse_args

    argv = ["--config", config.sft_recipe, "--model_name_or_path", str(base), "--output_dir", str(out)]
    argv += ["--seed", str(config.seed), *(FAST_SFT_ARGS if config.fast else []), *shlex.split(config.sft_flags)]
    _, training, model_args = parse_args(ToolRLParser((ToolRLScriptArguments, SFTConfig, ModelConfig)), argv)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_args.model_name_or_path)
    dataset = Dataset.from_list(tokenized_sft_rows(rows, tokenizer))
    trainer = SFTTrainer(
        model=model_args.model_name_or_path, args=training, train_dataset=dataset, processing_class=tokenizer
    )
    trainer.train()
    trainer.save_model(str(out))


def run_grpo(config: MultiTurnDemoConfig, start: Path, out: Path) -> list[str]:
    """``recipes/grpo_multiturn.py``'s body in this process, on the demo's world; returns its command line."""
    from toolrl_trl.configs import parse_grpo_multiturn_args
    from toolrl_trl.envs.multiturn import run_grpo_multiturn
    from toolrl_trl.grpo import ToolRLGRPOTrainer

    argv = ["--config", config.grpo_recipe, "--model_name_or_path", str(start), "--output_dir", str(out)]
    argv += ["--seed", str(config.seed), "--dataset_seed", str(config.seed), "--world_chains", config.chains]
    argv += ["--world_distractors", str(config.distractors), *(FAST_GRPO_ARGS if config.fast else [])]
    argv += shlex.split(config.grpo_flags)
    run_grpo_multiturn(ToolRLGRPOTrainer, *parse_grpo_multiturn_args(argv, world_size=1))
    return argv


def evaluate(model: Path, rows: list[dict[str, Any]], config: MultiTurnDemoConfig, grpo_args: Any) -> dict[str, Any]:
    from toolrl_trl.eval.executed import evaluate_rows

    return evaluate_rows(
        str(model),
        rows,
        max_tool_calling_iterations=grpo_args.max_tool_calling_iterations,
        max_completion_length=grpo_args.max_completion_length,
        batch_size=config.eval_batch_size,
    )


def prepare_output_dir(out: Path) -> Path:
    """An empty ``out``; only a previous demo's folder (with the marker file) is ever emptied."""
    if out.exists() and any(out.iterdir()):
        if not (out / OUTPUT_MARKER).is_file():
            raise FileExistsError(f"{out} is not empty and is not a previous multi-turn demo output")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / OUTPUT_MARKER).write_text("written by python -m toolrl_trl.envs.demo; the next run empties this folder\n")
    return out


def run(config: MultiTurnDemoConfig) -> dict[str, Any]:
    """The whole demo; returns the summary written to ``<output_dir>/summary.json``."""
    import dataclasses

    from toolrl_trl.configs import parse_grpo_multiturn_args
    from toolrl_trl.envs.world import world_vocabulary
    from toolrl_trl.tiny import build_tiny_model

    start = time.perf_counter()
    if config.fast:
        config = dataclasses.replace(config, **{k: min(getattr(config, k), v) for k, v in FAST_PRESET.items()})
    out = prepare_output_dir(Path(config.output_dir))
    grpo_args = parse_grpo_multiturn_args(
        ["--config", config.grpo_recipe, *shlex.split(config.grpo_flags)], world_size=1
    ).training
    times: dict[str, float] = {}

    t0 = time.perf_counter()
    generator = generator_for(config)
    train_tasks = generator.tasks("train", config.sft_tasks)
    eval_rows = [t.row() for t in generator.tasks("unseen_prompts", config.eval_tasks)]
    from toolrl_trl.envs.multiturn import routed

    eval_rows = routed(eval_rows)
    rows, with_habit = sft_rows(train_tasks, config.habit, config.habit_rate, config.seed)
    build_tiny_model(
        out / "base",
        "qwen2",
        corpus=tokenizer_corpus(rows[: config.tokenizer_corpus_tasks]),
        size=config.model_size(),
        seed=config.seed,
        whole_words=world_vocabulary(),
        phrases=system_blocks(rows),
    )
    times["build"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    run_sft(config, rows, out / "base", out / "sft")
    times["sft"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    before = evaluate(out / "sft", eval_rows, config, grpo_args)
    times["eval_before"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    grpo_argv = run_grpo(config, out / "sft", out / "grpo")
    times["grpo"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    after = evaluate(out / "grpo", eval_rows, config, grpo_args)
    times["eval_after"] = time.perf_counter() - t0

    history = json.loads((out / "grpo" / "trainer_state.json").read_text()).get("log_history", [])
    curves = {
        key: [[e["step"], e[key]] for e in history if key in e]
        for key in ("outcome/success", "rewards/format/mean", "rewards/correctness/mean", "episode/turns", "reward")
    }
    summary = {
        "before": before,
        "after": after,
        "settings": {
            **{k: v for k, v in asdict(config).items() if k not in ("sft_recipe", "grpo_recipe")},
            "sft_recipe": str(Path(config.sft_recipe).relative_to(REPO_ROOT))
            if REPO_ROOT in Path(config.sft_recipe).resolve().parents
            else config.sft_recipe,
            "grpo_command": ["recipes/grpo_multiturn.py", *grpo_argv],
            "eval_decoding": "greedy (top_k=1), one episode per task, TRL's tool loop",
        },
        "sft_transcripts": {"total": len(rows), "with_habit": with_habit, "habit": config.habit},
        "training_curves": curves,
        "stage_times_s": {k: round(v, 1) for k, v in times.items()},
        "wall_time_s": round(time.perf_counter() - start, 1),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    from toolrl_trl.cli import configure_logging, parse_options

    configure_logging()
    config = parse_options(MultiTurnDemoConfig, argv)
    summary = run(config)
    b, a = summary["before"], summary["after"]
    logger.info(
        "held-out executed tasks (%d, seen tools, unseen prompts, greedy): success %.3f -> %.3f, turns %.2f -> %.2f, "
        "format %.3f -> %.3f, correctness %.3f -> %.3f; wall time %.0f s (%s)",
        b["n"],
        b["success"],
        a["success"],
        b["turns"],
        a["turns"],
        b["format"],
        a["format"],
        b["correctness"],
        a["correctness"],
        summary["wall_time_s"],
        ", ".join(f"{k} {v:.0f} s" for k, v in summary["stage_times_s"].items()),
    )
    return summary


if __name__ == "__main__":
    main()
