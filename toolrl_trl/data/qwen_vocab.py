"""A Qwen2.5-vocabulary tokenizer built offline, to measure the paper's prompts as Qwen2.5 counts them.

Nothing here downloads anything: the byte-level BPE ranks come from ``qwen.tiktoken`` (151,643
ranks), which the ``dashscope`` package ships (``pip install --no-deps dashscope`` is enough; it is a
measurement aid, not a dependency of the project). The builder adds what a Qwen2.5 checkpoint's
``tokenizer.json`` has on top of those ranks: Qwen's pre-tokenisation regex (digits one by one,
where ``transformers``' ``TikTokenConverter`` defaults to groups of 1-3), NFC normalisation, the 22
added tokens of Qwen2.5 (``<|endoftext|>`` = 151643 ... ``<|file_sep|>`` = 151664, ``<tool_call>`` =
151657 among them) and TRL's shipped ``qwen2_5`` chat template. The BPE merges are recovered from the
ranks exactly: each multi-byte token is re-merged with the lower ranks only, which leaves the one
pair it was made from.

CLI::

    python -m toolrl_trl.data.qwen_vocab save --out outputs/qwen2.5-vocab     # a from_pretrained folder
    python -m toolrl_trl.data.qwen_vocab measure SOURCE [SOURCE ...] --limits 1024 2048
"""

from __future__ import annotations

import argparse
import base64
import importlib.util
import logging
import sys
from pathlib import Path
from typing import Any

from toolrl_trl.cli import configure_logging

logger = logging.getLogger(__name__)

#: Qwen's pre-tokenisation regex (``dashscope``'s ``PAT_STR``, the Split pattern of Qwen2.5's tokenizer.json).
QWEN_PATTERN = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
#: BPE ranks in ``qwen.tiktoken``; the added tokens follow from this id on.
QWEN_BPE_SIZE = 151643
#: Qwen2.5's added tokens in id order (151643...151664) and whether each is special (tokenizer_config.json).
QWEN2_5_ADDED_TOKENS: tuple[tuple[str, bool], ...] = (
    ("<|endoftext|>", True),
    ("<|im_start|>", True),
    ("<|im_end|>", True),
    ("<|object_ref_start|>", True),
    ("<|object_ref_end|>", True),
    ("<|box_start|>", True),
    ("<|box_end|>", True),
    ("<|quad_start|>", True),
    ("<|quad_end|>", True),
    ("<|vision_start|>", True),
    ("<|vision_end|>", True),
    ("<|vision_pad|>", True),
    ("<|image_pad|>", True),
    ("<|video_pad|>", True),
    ("<tool_call>", False),
    ("</tool_call>", False),
    ("<|fim_prefix|>", False),
    ("<|fim_middle|>", False),
    ("<|fim_suffix|>", False),
    ("<|fim_pad|>", False),
    ("<|repo_name|>", False),
    ("<|file_sep|>", False),
)
_INSTALL_HINT = "install the dashscope package (`pip install --no-deps dashscope`), which ships qwen.tiktoken"


def dashscope_tiktoken_file() -> Path | None:
    """``qwen.tiktoken`` inside the installed ``dashscope`` package, or None when it is not installed."""
    spec = importlib.util.find_spec("dashscope")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "resources" / "qwen.tiktoken"
        if candidate.is_file():
            return candidate
    return None


def load_ranks(path: str | Path) -> dict[bytes, int]:
    """The ``token_base64 rank`` lines of a tiktoken file as ``{token bytes: rank}``."""
    ranks: dict[bytes, int] = {}
    for number, line in enumerate(Path(path).read_bytes().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
        except ValueError as err:
            raise ValueError(f"{path}: line {number} is not 'base64-token rank': {line[:60]!r}") from err
    return ranks


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table, which byte-level BPE vocabularies are written in."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars = list(printable)
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, chars), strict=True))


def recover_merges(ranks: dict[bytes, int]) -> list[tuple[bytes, bytes]]:
    """The BPE merges behind ``ranks``, in rank order: each token re-merged with lower ranks splits into its pair."""
    missing = [byte for byte in range(256) if bytes([byte]) not in ranks]
    if missing:
        raise ValueError(f"the ranks lack {len(missing)} single bytes (e.g. {missing[:5]}): not a byte-level BPE")
    merges: list[tuple[int, bytes, bytes]] = []
    for token, rank in ranks.items():
        if len(token) == 1:
            continue
        parts = [token[i : i + 1] for i in range(len(token))]
        while len(parts) > 2:
            best_rank, best = None, -1
            for i in range(len(parts) - 1):
                pair_rank = ranks.get(parts[i] + parts[i + 1])
                if pair_rank is not None and pair_rank < rank and (best_rank is None or pair_rank < best_rank):
                    best_rank, best = pair_rank, i
            if best_rank is None:
                break
            parts[best : best + 2] = [parts[best] + parts[best + 1]]
        if len(parts) != 2:
            raise ValueError(f"token of rank {rank} ({token!r}) is not the merge of two lower-ranked tokens")
        merges.append((rank, parts[0], parts[1]))
    merges.sort()
    return [(left, right) for _, left, right in merges]


def build_qwen_tokenizer(tiktoken_file: str | Path | None = None) -> Any:
    """A ``PreTrainedTokenizerFast`` with Qwen2.5's vocabulary, added tokens and TRL's ``qwen2_5`` chat template."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    from trl import chat_template_utils

    path = Path(tiktoken_file) if tiktoken_file is not None else dashscope_tiktoken_file()
    if path is None:
        raise FileNotFoundError(f"no qwen.tiktoken to build the Qwen vocabulary from: {_INSTALL_HINT}")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such tiktoken file")
    ranks = load_ranks(path)
    if sorted(ranks.values()) != list(range(len(ranks))):
        raise ValueError(f"{path}: ranks are not 0..{len(ranks) - 1} without gaps")
    to_char = bytes_to_unicode()

    def text(token: bytes) -> str:
        return "".join(to_char[byte] for byte in token)

    vocab = {text(token): rank for token, rank in ranks.items()}
    merges = [(text(left), text(right)) for left, right in recover_merges(ranks)]
    backend = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False, byte_fallback=False))
    backend.normalizer = normalizers.NFC()
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    backend.decoder = decoders.ByteLevel()
    for content, special in QWEN2_5_ADDED_TOKENS:
        token = AddedToken(content, special=special, normalized=False)
        (backend.add_special_tokens if special else backend.add_tokens)([token])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        model_max_length=131072,
        chat_template=chat_template_utils.qwen2_5_chat_template,
    )
    for offset, (content, _) in enumerate(QWEN2_5_ADDED_TOKENS):
        if tokenizer.convert_tokens_to_ids(content) != QWEN_BPE_SIZE + offset:
            raise ValueError(
                f"{path}: {content} got id {tokenizer.convert_tokens_to_ids(content)}, expected "
                f"{QWEN_BPE_SIZE + offset}: the file is not Qwen's {QWEN_BPE_SIZE}-rank vocabulary"
            )
    logger.info("built a Qwen2.5-vocabulary tokenizer from %s (%d tokens)", path, len(tokenizer))
    return tokenizer


def prompt_lengths(source: str, tokenizer: Any) -> list[int]:
    """Chat-templated prompt lengths (with the generation prompt) of every row of every split of ``source``."""
    from toolrl_trl.data.config import DataConfig
    from toolrl_trl.data.pipeline import build_datasets

    config = DataConfig(data_source=source, test_size=0.0, max_prompt_length=None)
    splits = build_datasets(config, kind="sft", tokenizer=None)
    prompts = [prompt for split in splits.values() for prompt in split["prompt"]]
    ids = tokenizer.apply_chat_template(prompts, add_generation_prompt=True, tokenize=True, return_dict=False)
    return [len(row) for row in ids]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m toolrl_trl.data.qwen_vocab", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiktoken", default=None, help="qwen.tiktoken to read (default: the installed dashscope's)")
    commands = parser.add_subparsers(dest="command", required=True)
    save = commands.add_parser("save", help="save the tokenizer as a from_pretrained folder")
    save.add_argument("--out", required=True, help="folder to write the tokenizer into")
    measure = commands.add_parser("measure", help="count prompts over token limits under Qwen2.5's chat template")
    measure.add_argument("sources", nargs="+", help="data sources, as data_source takes them")
    measure.add_argument("--limits", type=int, nargs="+", default=[1024, 2048], help="token limits to count against")
    args = parser.parse_args(argv)
    configure_logging()
    tokenizer = build_qwen_tokenizer(args.tiktoken)
    if args.command == "save":
        tokenizer.save_pretrained(args.out)
        logger.info("saved to %s", args.out)
        return 0
    rows = []
    for source in args.sources:
        lengths = prompt_lengths(source, tokenizer)
        over = "  ".join(f"> {limit}: {sum(n > limit for n in lengths)}" for limit in args.limits)
        rows.append(f"{source}: {len(lengths)} rows, prompt tokens max {max(lengths, default=0)}  {over}")
    sys.stdout.write("\n".join(rows) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
