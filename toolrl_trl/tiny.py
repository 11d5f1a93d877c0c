"""Tiny Qwen2- and Llama-architecture models built offline, for the tests and the tiny recipes.

A model directory made here is a normal ``from_pretrained`` directory: random weights, a
byte-level BPE tokenizer trained on the spot, the special tokens of the family and the real
chat template that TRL ships (``qwen2_5`` / ``llama3_2``). Nothing is downloaded, so CPU runs
exercise the same code paths as the real checkpoints, including their chat templates.

CLI: ``python -m toolrl_trl.tiny --family qwen2 --out outputs/tiny-qwen2``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from toolrl_trl import grammar

logger = logging.getLogger(__name__)

#: Grammar tags become single (non-special) tokens, as ``<tool_call>`` is in the real Qwen2.5 vocabulary,
#: so tiny models see short sequences and learn the format quickly.
GRAMMAR_TOKENS = [
    grammar.THINK_OPEN,
    grammar.THINK_CLOSE,
    grammar.TOOL_CALL_OPEN,
    grammar.TOOL_CALL_CLOSE,
    grammar.RESPONSE_OPEN,
    grammar.RESPONSE_CLOSE,
    grammar.OBS_OPEN,
    grammar.OBS_CLOSE,
    grammar.USER_OPEN,
    grammar.USER_CLOSE,
]


@dataclass(frozen=True)
class TinyFamily:
    """What a model family needs beyond weights: its special tokens and TRL's chat template."""

    architecture: str
    template: str
    special_tokens: list[str]
    bos_token: str | None
    eos_token: str
    pad_token: str
    extra: dict = field(default_factory=dict)


FAMILIES: dict[str, TinyFamily] = {
    "qwen2": TinyFamily(
        architecture="qwen2",
        template="qwen2_5",
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
    ),
    "llama": TinyFamily(
        architecture="llama",
        template="llama3_2",
        special_tokens=[
            "<|begin_of_text|>",
            "<|end_of_text|>",
            "<|start_header_id|>",
            "<|end_header_id|>",
            "<|eot_id|>",
            "<|eom_id|>",
            "<|python_tag|>",
            "<|finetune_right_pad_id|>",
        ],
        bos_token="<|begin_of_text|>",
        eos_token="<|eot_id|>",
        pad_token="<|finetune_right_pad_id|>",
    ),
}


@dataclass(frozen=True)
class TinySize:
    """Model dimensions; the defaults build in about a second and train at hundreds of tokens/s on a CPU."""

    vocab_size: int = 2048
    hidden_size: int = 64
    intermediate_size: int = 128
    num_layers: int = 2
    num_heads: int = 4
    num_kv_heads: int = 2
    max_position_embeddings: int = 4096


def default_corpus() -> list[str]:
    """Text to train the tokenizer on when the caller gives none: the paper's prompt scaffolding plus tool-call JSON.

    Byte-level BPE can encode any text whatever the corpus; the corpus only decides which
    strings become short. Callers that train on specific data pass their own.
    """
    tools = [
        grammar.ToolSpec("get_weather", "Get the weather for a city.", {"city": {"type": "string"}}),
        grammar.ToolSpec("search_web", "Search the web.", {"query": {"type": "string"}, "top_k": {"type": "int"}}),
    ]
    turn = grammar.render_assistant_turn(
        "The user wants the weather, so I call get_weather with the city.",
        [{"name": "get_weather", "parameters": {"city": "Paris"}}],
        "Here is the weather in Paris.",
    )
    return [grammar.render_system_prompt(tools), grammar.render_user_message("What is the weather in Paris?"), turn]


def _train_tokenizer(
    corpus: Iterable[str],
    family: TinyFamily,
    vocab_size: int,
    whole_words: Sequence[str] = (),
    phrases: Sequence[str] = (),
):
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=family.special_tokens,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(corpus, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=family.bos_token,
        eos_token=family.eos_token,
        pad_token=family.pad_token,
        model_max_length=32768,
    )
    fast.add_tokens(GRAMMAR_TOKENS)
    fast.add_tokens([AddedToken(word, single_word=True) for word in whole_words])
    fast.add_tokens([AddedToken(phrase, normalized=False) for phrase in phrases])
    fast.chat_template = _chat_template(family.template)
    return fast


def _chat_template(name: str) -> str:
    from trl import chat_template_utils

    return getattr(chat_template_utils, f"{name}_chat_template")


def build_tiny_model(
    output_dir: str | os.PathLike,
    family: str = "qwen2",
    *,
    corpus: Iterable[str] | None = None,
    size: TinySize = TinySize(),
    seed: int = 0,
    whole_words: Sequence[str] = (),
    phrases: Sequence[str] = (),
) -> Path:
    """Build and save a tiny random-weight model of ``family`` with a freshly trained tokenizer. Offline, seconds.

    ``whole_words`` become single tokens wherever they stand as a word (identifiers such as tool names): with
    tied embeddings a tiny model can then copy a name it never trained on from the prompt, as a pretrained
    model copies any multi-token name. ``phrases`` become single tokens wherever they occur (a block of text
    that every prompt repeats verbatim, which a 2-layer model would otherwise have to attend across).
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, GenerationConfig

    if family not in FAMILIES:
        raise ValueError(f"unknown tiny model family {family!r}; valid: {sorted(FAMILIES)}")
    spec = FAMILIES[family]
    output_dir = Path(output_dir)
    tokenizer = _train_tokenizer(
        corpus if corpus is not None else default_corpus(), spec, size.vocab_size, whole_words, phrases
    )

    config = AutoConfig.for_model(
        spec.architecture,
        vocab_size=len(tokenizer),
        hidden_size=size.hidden_size,
        intermediate_size=size.intermediate_size,
        num_hidden_layers=size.num_layers,
        num_attention_heads=size.num_heads,
        num_key_value_heads=size.num_kv_heads,
        max_position_embeddings=size.max_position_embeddings,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    output_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    logger.info(
        "built tiny %s model (%d parameters, vocab %d) in %s",
        family,
        sum(p.numel() for p in model.parameters()),
        len(tokenizer),
        output_dir,
    )
    return output_dir


def tiny_model_path(family: str = "qwen2", *, size: TinySize = TinySize(), seed: int = 0) -> Path:
    """A cached tiny model (default corpus) under ``$TOOLRL_TRL_CACHE`` or ``~/.cache/toolrl_trl``.

    Built once per (family, size, seed, package version); concurrent callers (parallel tests,
    distributed ranks) wait on a file lock instead of racing to build it.
    """
    from filelock import FileLock

    from toolrl_trl import __version__

    cache = Path(os.environ.get("TOOLRL_TRL_CACHE", Path.home() / ".cache" / "toolrl_trl"))
    key = json.dumps({"family": family, "size": asdict(size), "seed": seed, "version": __version__}, sort_keys=True)
    target = cache / f"tiny-{family}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    cache.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if not (target / "config.json").exists():
            staging = Path(tempfile.mkdtemp(dir=cache, prefix=".building-"))
            try:
                build_tiny_model(staging, family, size=size, seed=seed)
                staging.rename(target)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    return target


@dataclass
class TinyModelArguments:
    """``python -m toolrl_trl.tiny``: build a tiny offline model (random weights, tokenizer trained on the spot)."""

    out: str = field(metadata={"help": "Directory to save the model and tokenizer into."})
    family: str = field(default="qwen2", metadata={"help": f"Architecture and chat template: {', '.join(FAMILIES)}."})
    seed: int = field(default=0, metadata={"help": "Seed for the random weights."})
    vocab_size: int = field(default=TinySize.vocab_size, metadata={"help": "BPE vocabulary size."})
    hidden_size: int = field(default=TinySize.hidden_size, metadata={"help": "Model width."})
    num_layers: int = field(default=TinySize.num_layers, metadata={"help": "Decoder layers."})


def main(argv: list[str] | None = None) -> None:
    from transformers import HfArgumentParser

    from toolrl_trl.cli import configure_logging

    (args,) = HfArgumentParser(TinyModelArguments).parse_args_into_dataclasses(args=argv)
    configure_logging()
    size = TinySize(vocab_size=args.vocab_size, hidden_size=args.hidden_size, num_layers=args.num_layers)
    build_tiny_model(args.out, args.family, size=size, seed=args.seed)


if __name__ == "__main__":
    main()
