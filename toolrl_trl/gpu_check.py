"""``make gpu-check``: one script that checks a single CUDA GPU runs the recipes, offline, in a few minutes.

    python -m toolrl_trl.gpu_check                       # on a machine with one CUDA GPU, no network needed
    python -m toolrl_trl.gpu_check --dry_run true        # the same cases on a CPU with tiny sizes (the test suite)

It builds a random-weight model with Qwen2.5-0.5B's architecture (24 layers, width 896, 14 heads / 2 KV heads,
151,936-row tied embedding) and a byte-level BPE tokenizer trained on the spot and padded to Qwen2.5's vocabulary
size (nothing is downloaded), then runs each case in its own process through the recipes' own code
(``training.build_rl_trainer`` / ``build_sft_trainer`` on the tiny recipes, with the GPU flags):

- ``grpo_full``: bf16 GRPO steps, full fine-tuning (fp32 weights, bf16 autocast), transformers generation, the
  paper's in-reward KL (a frozen reference copy) and activation checkpointing;
- ``grpo_lora``: the same with LoRA (bf16 weights; the reference is the adapter-disabled policy);
- ``grpo_zero2``: the same as ``grpo_full`` under DeepSpeed ZeRO-2 in one process
  (``accelerate launch --config_file accelerate_configs/zero2.yaml --num_processes 1``);
- ``grpo_multiturn``: the ``grpo_full`` settings on executed rollouts (``recipes/tiny/grpo_multiturn.yaml``
  through ``envs.multiturn.build_trainer``: TRL's tool loop, the synthetic world, the trajectory rewards). A random
  model seldom writes a call that parses, so this checks the multi-turn trainer's GPU path (generation, rewards,
  in-reward KL, loss with the episode masks); tool execution itself is CPU code, tested in the suite;
- ``sft``: the tiny SFT recipe (``recipes/tiny/sft400.yaml``) on the GPU.

Per case it prints completion tokens/s (SFT: trained tokens/s), step time and peak GPU memory, and it exits with
status 1 if any case fails (status 2, one line, for a missing package or no GPU). Results also go to
``<out_dir>/gpu_check.json``. Packages it needs beyond torch/transformers/peft/accelerate: ``trl``, ``datasets``,
``deepspeed`` (and this package); docs/performance.md says how to carry them in as wheels.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
RECIPES = REPO_ROOT / "recipes"
CASES = ("grpo_full", "grpo_lora", "grpo_zero2", "grpo_multiturn", "sft")
RESULT_PREFIX = "GPU_CHECK_RESULT "
#: Importable modules the check needs, with the pip distribution that provides each.
REQUIRED = {
    "torch": "torch",
    "transformers": "transformers",
    "accelerate": "accelerate",
    "peft": "peft",
    "trl": "trl==1.16.0",
    "datasets": "datasets",
    "deepspeed": "deepspeed",
    "tokenizers": "tokenizers",
    "safetensors": "safetensors",
    "yaml": "pyyaml",
}
#: Qwen2.5-0.5B(-Instruct)'s config.json, less the weights: what the random model is built with.
QWEN25_05B = dict(
    hidden_size=896,
    intermediate_size=4864,
    num_hidden_layers=24,
    num_attention_heads=14,
    num_key_value_heads=2,
    max_position_embeddings=32768,
    rope_theta=1_000_000.0,
    rms_norm_eps=1e-6,
    tie_word_embeddings=True,
    vocab_size=151_936,
    hidden_act="silu",
)
#: len(tokenizer) of the Qwen2.5 instruct tokenizers (the embedding has 151,936 rows).
QWEN25_TOKENIZER_SIZE = 151_665


@dataclass
class GpuCheckArguments:
    """``python -m toolrl_trl.gpu_check``: GRPO (full, LoRA, ZeRO-2) and SFT steps on one CUDA GPU, offline."""

    dry_run: bool = field(
        default=False,
        metadata={
            "help": "Run every case on the CPU with a tiny model and sizes (no GPU needed; what the tests run)."
        },
    )
    cases: str = field(
        default=",".join(CASES), metadata={"help": f"Comma-separated cases to run, of {', '.join(CASES)}."}
    )
    out_dir: str = field(
        default="outputs/gpu_check", metadata={"help": "Model, per-case outputs and gpu_check.json go here."}
    )
    max_steps: int = field(default=3, metadata={"help": "Optimizer steps per case (dry run: 1)."})
    completion_length: int = field(
        default=256, metadata={"help": "max_completion_length of the GRPO cases (dry run: 8)."}
    )
    prompts_per_step: int = field(default=4, metadata={"help": "Prompts per GRPO step, 4 rollouts each (dry run: 2)."})
    case_timeout_s: int = field(default=240, metadata={"help": "A case running longer fails."})
    isolate: bool = field(
        default=True,
        metadata={
            "help": "Run each case in its own process (peak memory per case, no state shared). false runs them in "
            "this process, except grpo_zero2, which is always launched (the test suite's quick dry run)."
        },
    )
    case: str | None = field(default=None, metadata={"help": "Internal: run this one case here and print its result."})
    model_dir: str | None = field(default=None, metadata={"help": "Internal: the model a --case run uses."})

    def __post_init__(self) -> None:
        unknown = sorted(set(self.case_list()) - set(CASES))
        if unknown:
            raise ValueError(f"unknown case(s) {unknown}; valid: {', '.join(CASES)}")
        if self.dry_run:
            self.max_steps = min(self.max_steps, 1)
            self.completion_length = min(self.completion_length, 8)
            self.prompts_per_step = min(self.prompts_per_step, 2)

    def case_list(self) -> list[str]:
        return [name for name in self.cases.split(",") if name]


def missing_packages() -> list[str]:
    """The pip distributions whose modules cannot be imported here."""
    return [dist for module, dist in REQUIRED.items() if importlib.util.find_spec(module) is None]


def check_environment(args: GpuCheckArguments) -> None:
    """Fail in one line (``UserError``) on a missing package, or on no CUDA GPU outside a dry run."""
    from toolrl_trl.cli import UserError

    missing = missing_packages()
    if missing:
        raise UserError(
            f"missing package(s): {' '.join(missing)}. With no network, install them from carried wheels: "
            f"pip install --no-index --find-links wheels/ {' '.join(missing)} (docs/performance.md, 'GPU check')"
        )
    import torch

    if not args.dry_run and not torch.cuda.is_available():
        raise UserError(
            "no CUDA GPU is visible (torch.cuda.is_available() is False): run with --dry_run true on a CPU"
        )


# --------------------------------------------------------------------------------------------------------------------
# The model: Qwen2.5-0.5B's architecture, random weights, a tokenizer built here
# --------------------------------------------------------------------------------------------------------------------


def build_tokenizer(size: int = QWEN25_TOKENIZER_SIZE) -> Any:
    """A Qwen2.5-style tokenizer built offline: byte-level BPE trained on the task text, padded to ``size`` entries.

    The padding entries (``<|pad_N|>``) are never produced by encoding, but a random model samples them, so decoding
    works on every id the embedding can emit.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast
    from trl import chat_template_utils

    from toolrl_trl.tiny import FAMILIES, GRAMMAR_TOKENS, default_corpus

    family = FAMILIES["qwen2"]
    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=8000,
        special_tokens=family.special_tokens,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    raw.train_from_iterator(default_corpus() * 4, trainer=trainer)
    spec = json.loads(raw.to_str())
    vocab = spec["model"]["vocab"]
    for index in range(size - len(vocab) - len(GRAMMAR_TOKENS)):
        vocab[f"<|pad_{index}|>"] = len(vocab)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(json.dumps(spec)),
        eos_token=family.eos_token,
        pad_token=family.pad_token,
        model_max_length=32768,
    )
    tokenizer.add_tokens(GRAMMAR_TOKENS)
    tokenizer.chat_template = chat_template_utils.qwen2_5_chat_template
    return tokenizer


def build_model(out: Path, dry_run: bool) -> Path:
    """The model every case loads (kept in ``out`` and reused): Qwen2.5-0.5B's shape, or the tiny model (dry run)."""
    if dry_run:
        from toolrl_trl.tiny import tiny_model_path

        return tiny_model_path("qwen2")
    target = out / "qwen2.5-0.5b-random"
    if (target / "config.json").exists():
        return target
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, GenerationConfig

    start = time.perf_counter()
    tokenizer = build_tokenizer()
    config = AutoConfig.for_model(
        "qwen2",
        **QWEN25_05B,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id
    )
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    logger.info(
        "built %s: %.0fM parameters, tokenizer of %d entries, in %.0f s",
        target,
        sum(p.numel() for p in model.parameters()) / 1e6,
        len(tokenizer),
        time.perf_counter() - start,
    )
    del model
    return target


# --------------------------------------------------------------------------------------------------------------------
# One case
# --------------------------------------------------------------------------------------------------------------------


def grpo_argv(case: str, args: GpuCheckArguments, model_dir: str, output_dir: str) -> list[str]:
    """The tiny GRPO recipe's command line (multi-turn: ``grpo_multiturn.yaml``) with this case's model, sizes and
    device flags."""
    batch = args.prompts_per_step * 4
    recipe = "grpo_multiturn.yaml" if case == "grpo_multiturn" else "grpo_cold_start.yaml"
    argv = ["--config", str(RECIPES / "tiny" / recipe), "--model_name_or_path", model_dir]
    argv += ["--output_dir", output_dir, "--max_steps", str(args.max_steps), "--num_generations", "4"]
    argv += ["--per_device_train_batch_size", str(batch), "--gradient_accumulation_steps", "1"]
    argv += ["--steps_per_generation", "1", "--prompts_per_generation_round", str(args.prompts_per_step)]
    argv += ["--updates_per_generation_round", "1", "--max_completion_length", str(args.completion_length)]
    argv += ["--kl_reward_coef", "0.001", "--logging_steps", "1", "--disable_tqdm", "true", "--log_level", "warning"]
    argv += ["--save_strategy", "no", "--eval_strategy", "no", "--report_to", "none", "--use_vllm", "false"]
    if args.dry_run:
        argv += ["--bf16", "false", "--dtype", "float32", "--activation_checkpointing", "false"]
        argv += ["--use_cpu", "false", "--ddp_backend", "gloo"] if case == "grpo_zero2" else ["--use_cpu", "true"]
    else:
        dtype = "float32" if case == "grpo_full" else "bfloat16"  # full FT keeps fp32 master weights (training.py)
        argv += ["--use_cpu", "false", "--bf16", "true", "--dtype", dtype, "--activation_checkpointing", "true"]
    if case == "grpo_lora":
        argv += ["--use_peft", "true", "--learning_rate", "1.0e-5"]
    return argv


def sft_argv(args: GpuCheckArguments, output_dir: str) -> list[str]:
    argv = ["--config", str(RECIPES / "tiny" / "sft400.yaml"), "--output_dir", output_dir]
    argv += ["--max_steps", str(args.max_steps), "--logging_steps", "1", "--disable_tqdm", "true"]
    argv += ["--save_strategy", "no", "--eval_strategy", "no", "--report_to", "none", "--log_level", "warning"]
    if not args.dry_run:
        argv += ["--use_cpu", "false", "--bf16", "true"]
    return argv


def run_case(case: str, args: GpuCheckArguments, model_dir: str) -> dict[str, Any]:
    """Build the case's trainer with the recipes' code, train ``max_steps`` steps, measure; returns the numbers."""
    import torch
    from transformers import PrinterCallback

    output_dir = str(Path(args.out_dir) / case)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    if case == "sft":
        from toolrl_trl.configs import parse_sft_args
        from toolrl_trl.training import build_sft_trainer

        trainer, _ = build_sft_trainer(*parse_sft_args(sft_argv(args, output_dir)))
    else:
        from toolrl_trl.configs import parse_grpo_args, parse_grpo_multiturn_args
        from toolrl_trl.envs.multiturn import build_trainer
        from toolrl_trl.grpo import ToolRLGRPOTrainer
        from toolrl_trl.training import build_rl_trainer

        parse, build = (
            (parse_grpo_multiturn_args, build_trainer)
            if case == "grpo_multiturn"
            else (parse_grpo_args, build_rl_trainer)
        )
        trainer, _ = build(ToolRLGRPOTrainer, *parse(grpo_argv(case, args, model_dir, output_dir)))
    trainer.remove_callback(PrinterCallback)
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    result: dict[str, Any] = {
        "case": case,
        "train_s": seconds,
        "steps": trainer.state.global_step,
        "device": str(trainer.args.device),
        "distributed": str(trainer.accelerator.distributed_type),
        "bf16": bool(trainer.args.bf16),
        "peft": type(trainer.model).__name__.startswith("Peft"),
    }
    from toolrl_trl.throughput import ThroughputCallback

    callbacks = [cb for cb in trainer.callback_handler.callbacks if isinstance(cb, ThroughputCallback)]
    if callbacks:
        totals = callbacks[0].totals
        result.update(
            step_s=totals.step_s / max(totals.steps, 1),
            tokens_per_s=totals.tokens / totals.step_s if totals.step_s else float("nan"),
            tokens="completion",
        )
    else:
        seen = [e["num_tokens"] for e in trainer.state.log_history if "num_tokens" in e]
        result.update(
            step_s=seconds / max(trainer.state.global_step, 1),
            tokens_per_s=(seen[-1] / seconds) if seen else float("nan"),
            tokens="trained",
        )
    result["peak_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None
    if trainer.state.global_step != args.max_steps:
        raise RuntimeError(f"{case}: trained {trainer.state.global_step} steps instead of {args.max_steps}")
    return result


def _case_command(case: str, args: GpuCheckArguments, model_dir: str) -> list[str]:
    flags = ["--case", case, "--model_dir", model_dir, "--out_dir", args.out_dir, "--dry_run", str(args.dry_run)]
    flags += ["--max_steps", str(args.max_steps), "--completion_length", str(args.completion_length)]
    flags += ["--prompts_per_step", str(args.prompts_per_step)]
    if case != "grpo_zero2":
        return [sys.executable, "-m", "toolrl_trl.gpu_check", *flags]
    accelerate = Path(sys.executable).with_name("accelerate")
    launcher = (
        [str(accelerate)] if accelerate.exists() else [sys.executable, "-m", "accelerate.commands.accelerate_cli"]
    )
    launch = ["launch", "--config_file", str(REPO_ROOT / "accelerate_configs" / "zero2.yaml"), "--num_processes", "1"]
    launch += ["--mixed_precision", "no" if args.dry_run else "bf16", "--main_process_port", str(_free_port())]
    return [*launcher, *launch, "--module", "toolrl_trl.gpu_check", *flags]


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _case_env(args: GpuCheckArguments) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ACCELERATE_", "DEEPSPEED_"))}
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    env.setdefault("PYTHONPATH", str(REPO_ROOT))
    if args.dry_run:
        env.update(CUDA_VISIBLE_DEVICES="", DS_ACCELERATOR="cpu")
    return env


def launch_case(case: str, args: GpuCheckArguments, model_dir: str) -> dict[str, Any]:
    """Run one case in its own process; its result, or ``{"case", "error"}`` with the end of its output."""
    command = _case_command(case, args, model_dir)
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            command,
            cwd=REPO_ROOT,
            env=_case_env(args),
            capture_output=True,
            text=True,
            timeout=args.case_timeout_s,
        )
    except subprocess.TimeoutExpired:
        return {"case": case, "error": f"timed out after {args.case_timeout_s} s"}
    lines = [line for line in proc.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if proc.returncode != 0 or not lines:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-25:])
        return {"case": case, "error": f"exit status {proc.returncode}", "output_tail": tail}
    result = json.loads(lines[-1][len(RESULT_PREFIX) :])
    result["wall_s"] = time.perf_counter() - start
    return result


def format_results(results: list[dict[str, Any]], dry_run: bool) -> str:
    title = "GPU check (dry run on CPU, tiny sizes: numbers mean nothing)" if dry_run else "GPU check"
    lines = [title, f"  {'case':<16}{'status':<8}{'tokens/s':>12}{'step s':>9}{'peak GiB':>10}{'wall s':>8}  details"]
    for r in results:
        if "error" in r:
            lines.append(f"  {r['case']:<16}{'FAILED':<8}  {r['error']}")
            lines.extend(f"      {line}" for line in r.get("output_tail", "").splitlines())
            continue
        memory = f"{r['peak_memory_gib']:.2f}" if r.get("peak_memory_gib") is not None else "n/a"
        details = f"{r['tokens']} tokens, {r['distributed']}, {r['device']}, bf16={r['bf16']}, peft={r['peft']}"
        lines.append(
            f"  {r['case']:<16}{'ok':<8}{r['tokens_per_s']:>12.1f}{r['step_s']:>9.3f}{memory:>10}"
            f"{r.get('wall_s', r['train_s']):>8.1f}  {details}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    from transformers import HfArgumentParser

    from toolrl_trl.cli import configure_logging

    (args,) = HfArgumentParser(GpuCheckArguments).parse_args_into_dataclasses(args=argv)
    configure_logging()
    if args.case is not None:  # a child: one case, one result line
        result = run_case(args.case, args, args.model_dir)
        print(RESULT_PREFIX + json.dumps(result), flush=True)
        return 0
    check_environment(args)
    start = time.perf_counter()
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model_dir = str(build_model(out, args.dry_run))
    results = []
    for case in args.case_list():
        logger.info("gpu check: %s", case)
        if args.isolate or case == "grpo_zero2":
            results.append(launch_case(case, args, model_dir))
        else:
            try:
                results.append(run_case(case, args, model_dir))
            except Exception as err:  # a case's failure is reported with the others, not a traceback
                results.append({"case": case, "error": f"{type(err).__name__}: {err}"})
    summary = {"settings": asdict(args), "results": results, "wall_s": time.perf_counter() - start}
    (out / "gpu_check.json").write_text(json.dumps(summary, indent=2))
    print(format_results(results, args.dry_run), flush=True)
    failed = [r["case"] for r in results if "error" in r]
    print(
        f"gpu check: {len(results) - len(failed)}/{len(results)} case(s) passed in {summary['wall_s']:.0f} s",
        flush=True,
    )
    return 1 if failed else 0


if __name__ == "__main__":
    from toolrl_trl.cli import run_guarded

    status: list[int] = []
    run_guarded(lambda argv: status.append(main(argv)))
    raise SystemExit(status[0] if status else 0)
