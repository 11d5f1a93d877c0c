"""Merge a LoRA adapter into its base model and save full weights.

GRPO with vLLM (and any recipe that takes ``model_name_or_path``) needs a full checkpoint, so
the LoRA branch of SFT-then-GRPO merges the SFT adapter first. peft's ``merge_and_unload`` does
the work; this module adds the checks and the tokenizer/chat-template copy around it.

CLI: ``python -m toolrl_trl.merge --adapter outputs/sft400 --out outputs/sft400-merged``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)

ADAPTER_CONFIG = "adapter_config.json"
DTYPES = ("auto", "float32", "bfloat16", "float16")


def is_adapter_dir(path: str | Path) -> bool:
    """True when ``path`` holds a peft adapter (what ``trainer.save_model`` writes when LoRA is on)."""
    return (Path(path) / ADAPTER_CONFIG).is_file()


def merge_adapter(
    adapter_dir: str | Path,
    output_dir: str | Path,
    *,
    base_model: str | None = None,
    dtype: str = "auto",
    trust_remote_code: bool = False,
) -> Path:
    """Load ``base_model`` (default: the adapter's ``base_model_name_or_path``) + the adapter, merge, save.

    The tokenizer (and its chat template) is taken from the adapter directory when the trainer saved one
    there, else from the base model, so the merged directory is self-contained.
    """
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    adapter_dir, output_dir = Path(adapter_dir), Path(output_dir)
    if not is_adapter_dir(adapter_dir):
        raise FileNotFoundError(
            f"{adapter_dir} has no {ADAPTER_CONFIG}: not a LoRA adapter directory. Full-weight checkpoints need no "
            "merge; pass them directly as model_name_or_path."
        )
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; valid: {list(DTYPES)}")
    if output_dir.resolve() == adapter_dir.resolve():
        raise ValueError(f"output directory {output_dir} must differ from the adapter directory")
    adapter_config = json.loads((adapter_dir / ADAPTER_CONFIG).read_text())
    base = base_model or adapter_config.get("base_model_name_or_path")
    if not base:
        raise ValueError(f"{adapter_dir / ADAPTER_CONFIG} names no base_model_name_or_path; pass --base_model")

    torch_dtype = dtype if dtype == "auto" else getattr(torch, dtype)
    logger.info("merging adapter %s into base model %s (dtype %s)", adapter_dir, base, dtype)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch_dtype, trust_remote_code=trust_remote_code)
    model = PeftModel.from_pretrained(model, str(adapter_dir))
    model = model.merge_and_unload()
    output_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output_dir)

    tokenizer_source = adapter_dir if (adapter_dir / "tokenizer_config.json").is_file() else base
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_source), trust_remote_code=trust_remote_code)
    tokenizer.save_pretrained(output_dir)
    logger.info("saved merged model and tokenizer (from %s) to %s", tokenizer_source, output_dir)
    return output_dir


@dataclass
class MergeArguments:
    """``python -m toolrl_trl.merge``: a LoRA adapter merged into its base model, saved as full weights."""

    adapter: str = field(metadata={"help": "Directory with adapter_config.json (the LoRA run's output)."})
    out: str = field(metadata={"help": "Directory to write the merged full-weight model to."})
    base_model: str | None = field(
        default=None, metadata={"help": "Base model path or hub id (default: the adapter's)."}
    )
    dtype: str = field(default="auto", metadata={"help": f"dtype to load the base model in: {', '.join(DTYPES)}."})
    trust_remote_code: bool = field(default=False, metadata={"help": "Allow custom model code from the Hub."})


def main(argv: list[str] | None = None) -> None:
    from transformers import HfArgumentParser

    from toolrl_trl.cli import configure_logging

    (args,) = HfArgumentParser(MergeArguments).parse_args_into_dataclasses(args=argv)
    if args.dtype not in DTYPES:
        raise SystemExit(f"merge: error: --dtype {args.dtype!r} is not one of {', '.join(DTYPES)}")
    configure_logging()
    merge_adapter(
        args.adapter, args.out, base_model=args.base_model, dtype=args.dtype, trust_remote_code=args.trust_remote_code
    )


if __name__ == "__main__":
    main()
