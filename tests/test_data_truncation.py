"""prompt_truncation=left keeps the last max_prompt_length tokens of the templated prompt, as the trainer sees them.

Expected tokens are computed here with the tokenizer's own chat template and plain slicing, and what the
trainer sees is read back with ``tokenizer(text)``, which is how TRL's GRPOTrainer tokenizes a text prompt.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from helpers import SHARED_DATA  # noqa: E402

from toolrl_trl import grammar
from toolrl_trl.data import PROMPT_MESSAGES, DataConfig, build_datasets, prepare_datasets, save_datasets

SHARED = SHARED_DATA
RL_PARQUET = SHARED / "rlla_4k_test.parquet"

USER = grammar.render_user_message("What is the weather in Paris?")
CALL = '<think> I call get_weather. </think>\n<tool_call>\n{"name": "get_weather", "parameters": {"city": "Paris"}}\n</tool_call>'


def _system(tools: int) -> str:
    specs = [
        grammar.ToolSpec(f"tool_{i}", f"Tool number {i} does thing {i}.", {"x": {"type": "str"}}) for i in range(tools)
    ]
    return grammar.render_system_prompt(specs)


def _rows(tool_counts: list[int]) -> list[dict]:
    return [
        {"instruction": _system(n), "input": USER, "output": CALL.replace("Paris", f"City{i}")}
        for i, n in enumerate(tool_counts)
    ]


def _write(path: Path, rows: list[dict]) -> str:
    path.write_text(json.dumps(rows))
    return str(path)


def _messages(row: dict) -> list[dict]:
    return [{"role": "system", "content": row["instruction"]}, {"role": "user", "content": row["input"]}]


def _template_ids(tokenizer, messages) -> list[int]:
    return list(tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=False))


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="module")
def long_rows():
    return _rows([1, 30, 2, 60, 45, 1, 90])


def _limit(tokenizer, rows) -> int:
    """A limit between the short and the long prompts: every long one is cut, well inside its system prompt."""
    lengths = sorted(len(_template_ids(tokenizer, _messages(row))) for row in rows)
    return (lengths[2] + lengths[3]) // 2


def test_left_truncation_keeps_the_last_tokens_and_counts_rows(tmp_path, tokenizer, long_rows, caplog):
    source = _write(tmp_path / "rows.json", long_rows)
    limit = _limit(tokenizer, long_rows)
    config = DataConfig(data_source=source, test_size=0.0, max_prompt_length=limit, prompt_truncation="left")
    with caplog.at_level(logging.WARNING, logger="toolrl_trl.data"):
        prepared = prepare_datasets(config, kind="rl", tokenizer=tokenizer)
    train = prepared.datasets["train"]
    assert len(train) == len(long_rows), "nothing is dropped"
    assert train.column_names == ["prompt", "ground_truth", PROMPT_MESSAGES]
    ending = f"<|im_start|>user\n{USER}<|im_end|>\n<|im_start|>assistant\n"
    truncated = 0
    for row, out in zip(long_rows, train, strict=True):
        full = _template_ids(tokenizer, _messages(row))
        seen = tokenizer(out["prompt"])["input_ids"]  # what GRPOTrainer does with a text prompt
        assert out[PROMPT_MESSAGES] == _messages(row) and out["ground_truth"] == row["output"]
        assert out["prompt"].endswith(ending), "the user turn and the generation prompt survive"
        if len(full) > limit:
            truncated += 1
            assert seen == full[-limit:] and len(seen) == limit
            assert not out["prompt"].startswith("<|im_start|>system"), "the start of the system prompt goes"
        else:
            assert seen == full
            assert out["prompt"] == tokenizer.apply_chat_template(
                _messages(row), add_generation_prompt=True, tokenize=False
            )
    assert truncated == 4 and prepared.reports[0].truncated == 4 and prepared.reports[0].too_long == 0
    assert f"left-truncated 4 prompt(s) longer than max_prompt_length={limit} tokens" in caplog.text
    stats = prepared.stats()["train"]
    assert stats["prompt_tokens_max"] == limit


def test_drop_is_unchanged(tmp_path, tokenizer, long_rows):
    source = _write(tmp_path / "rows.json", long_rows)
    limit = _limit(tokenizer, long_rows)
    prepared = prepare_datasets(
        DataConfig(data_source=source, test_size=0.0, max_prompt_length=limit), kind="rl", tokenizer=tokenizer
    )
    train = prepared.datasets["train"]
    kept = [row for row in long_rows if len(_template_ids(tokenizer, _messages(row))) <= limit]
    assert train.column_names == ["prompt", "ground_truth"]
    assert train["prompt"] == [_messages(row) for row in kept]
    assert prepared.reports[0].too_long == 4 and prepared.reports[0].truncated == 0
    assert DataConfig().prompt_truncation == "drop" and DataConfig().split_method == "random"


def test_left_without_a_tokenizer_leaves_message_prompts(tmp_path, long_rows):
    data = build_datasets(
        DataConfig(data_source=_write(tmp_path / "r.json", long_rows), test_size=0.0, prompt_truncation="left")
    )
    assert data["train"]["prompt"] == [_messages(row) for row in long_rows]


def test_sft_rows_are_kept_whole_and_counted(tmp_path, tokenizer, long_rows, caplog):
    source = _write(tmp_path / "rows.json", long_rows)
    limit = _limit(tokenizer, long_rows)
    config = DataConfig(data_source=source, test_size=0.0, max_prompt_length=limit, prompt_truncation="left")
    with caplog.at_level(logging.WARNING, logger="toolrl_trl.data"):
        prepared = prepare_datasets(config, kind="sft", tokenizer=tokenizer)
    train = prepared.datasets["train"]
    assert train.column_names == ["prompt", "completion"]
    assert train["prompt"] == [_messages(row) for row in long_rows]
    report = prepared.reports[0]
    assert (report.too_long_kept, report.too_long, report.truncated) == (4, 0, 0)
    assert "4 SFT row(s) have a prompt over max_prompt_length" in caplog.text


def test_prepared_folder_with_text_prompts_loads_again(tmp_path, tokenizer, long_rows):
    source = _write(tmp_path / "rows.json", long_rows)
    limit = _limit(tokenizer, long_rows)
    config = DataConfig(data_source=source, test_size=0.0, max_prompt_length=limit, prompt_truncation="left")
    first = build_datasets(config, tokenizer=tokenizer)
    save_datasets(first, str(tmp_path / "saved"))  # the test split is empty
    again = DataConfig(data_source=str(tmp_path / "saved"), max_prompt_length=limit, prompt_truncation="left")
    assert build_datasets(again, tokenizer=tokenizer)["train"].to_list() == first["train"].to_list()
    as_messages = build_datasets(DataConfig(data_source=str(tmp_path / "saved")))
    assert as_messages["train"]["prompt"] == [_messages(row) for row in long_rows]


def test_a_tokenizer_that_adds_bos_gets_it_once(tmp_path, tiny_llama_dir, long_rows):
    from tokenizers import processors
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    bos = tokenizer.convert_tokens_to_ids("<|begin_of_text|>")
    # As the real Llama 3 tokenizer does: every encoded text starts with <|begin_of_text|>.
    tokenizer._tokenizer.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A", special_tokens=[("<|begin_of_text|>", bos)]
    )
    assert tokenizer("a")["input_ids"][0] == bos
    limit = _limit(tokenizer, long_rows)
    config = DataConfig(
        data_source=_write(tmp_path / "r.json", long_rows),
        test_size=0,
        max_prompt_length=limit,
        prompt_truncation="left",
    )
    train = build_datasets(config, tokenizer=tokenizer)["train"]
    for row, out in zip(long_rows, train, strict=True):
        full = _template_ids(tokenizer, _messages(row))
        assert full[0] == bos and full[1] != bos, "the Llama template writes the BOS itself"
        seen = tokenizer(out["prompt"])["input_ids"]
        assert seen == (full if len(full) <= limit else [bos] + full[-(limit - 1) :])
        assert seen.count(bos) == 1


def test_a_cut_inside_a_character_moves_right_until_the_text_tokenizes_back(tokenizer):
    from toolrl_trl.data import left_truncated_prompt

    # The tiny vocabulary has no merges for this emoji: four byte tokens, so most cuts split a character.
    messages = [{"role": "system", "content": "\U0001f642" * 40}, {"role": "user", "content": USER}]
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    full = _template_ids(tokenizer, messages)
    tail = len(_template_ids(tokenizer, [{"role": "system", "content": "x"}, messages[1]])) + 4
    shifts = set()
    for limit in range(tail, tail + 8):
        kept_text, seen, shift = left_truncated_prompt(full, text, tokenizer, limit, [])
        assert seen == full[-len(seen) :] and len(seen) == limit - shift and 0 <= shift < 4
        assert tokenizer(kept_text)["input_ids"] == seen and "\ufffd" not in kept_text
        shifts.add(shift)
    assert shifts - {0}, "some cut fell inside a character"


def test_grpo_trainer_generates_from_the_truncated_prompt(tmp_path, tiny_model_dir, tokenizer, long_rows):
    """A real tiny GRPOTrainer step: the prompt ids it generates from are the last max_prompt_length tokens."""
    from trl import GRPOConfig, GRPOTrainer

    rows = [long_rows[1], long_rows[0]]  # one long prompt, one short
    limit = _limit(tokenizer, long_rows)
    config = DataConfig(
        data_source=_write(tmp_path / "r.json", rows), test_size=0, max_prompt_length=limit, prompt_truncation="left"
    )
    train = build_datasets(config, tokenizer=tokenizer)["train"]
    expected = {}
    for row in rows:
        full = _template_ids(tokenizer, _messages(row))
        expected[row["output"]] = full[-limit:] if len(full) > limit else full
    assert len(expected[rows[0]["output"]]) == limit > len(expected[rows[1]["output"]])

    generated_from: list[list[int]] = []
    rewarded: list[tuple[str, str]] = []

    class RecordingTrainer(GRPOTrainer):
        def _generate_single_turn(self, prompt_ids, *args, **kwargs):
            generated_from.extend(list(ids) for ids in prompt_ids)
            return super()._generate_single_turn(prompt_ids, *args, **kwargs)

    def probe(completions, prompts=None, ground_truth=None, **kwargs):
        rewarded.extend(zip(prompts, ground_truth, strict=True))
        assert all(isinstance(c, str) for c in completions)
        return [0.0] * len(completions)

    args = GRPOConfig(
        output_dir=str(tmp_path / "out"),
        use_cpu=True,
        bf16=False,
        report_to="none",
        max_steps=1,
        per_device_train_batch_size=4,
        num_generations=2,
        max_completion_length=4,
        logging_steps=1,
        save_strategy="no",
        seed=0,
    )
    RecordingTrainer(
        model=str(tiny_model_dir), reward_funcs=[probe], args=args, train_dataset=train, processing_class=tokenizer
    ).train()
    by_text = {out["prompt"]: out["ground_truth"] for out in train}
    assert len(generated_from) == 4 and len(rewarded) == 4
    assert sorted(map(tuple, generated_from)) == sorted(tuple(expected[gt]) for _, gt in rewarded)
    assert all(by_text[prompt] == gt for prompt, gt in rewarded), "each reward call gets its row's ground_truth"
    assert {gt for _, gt in rewarded} == set(expected)


# ---------------------------------------------------------------------------------------------------------------------
# The Qwen2.5 vocabulary (needs the dashscope package, which ships qwen.tiktoken)
# ---------------------------------------------------------------------------------------------------------------------


def _qwen_tokenizer():
    from toolrl_trl.data.qwen_vocab import build_qwen_tokenizer, dashscope_tiktoken_file

    if dashscope_tiktoken_file() is None:
        pytest.skip(
            "the dashscope package (which ships qwen.tiktoken) is not installed: pip install --no-deps dashscope"
        )
    return build_qwen_tokenizer()


@pytest.fixture(scope="module")
def qwen_tokenizer():
    return _qwen_tokenizer()


def test_qwen_vocabulary_matches_qwen2_5(qwen_tokenizer):
    # Ids that Qwen2.5's own tokenizer gives (published examples), and its added tokens.
    assert qwen_tokenizer("how are you!")["input_ids"] == [5158, 525, 498, 0]
    assert qwen_tokenizer("I'm fine!")["input_ids"] == [40, 2776, 6915, 0]
    assert qwen_tokenizer("Hello, world!")["input_ids"] == [9707, 11, 1879, 0]
    assert qwen_tokenizer("2048")["input_ids"] == [17, 15, 19, 23], "digits one by one"
    ids = {t: qwen_tokenizer.convert_tokens_to_ids(t) for t in ("<|endoftext|>", "<|im_start|>", "<|im_end|>")}
    assert ids == {"<|endoftext|>": 151643, "<|im_start|>": 151644, "<|im_end|>": 151645}
    assert qwen_tokenizer("<tool_call>\n</tool_call>")["input_ids"] == [151657, 198, 151658]
    assert len(qwen_tokenizer) == 151665


@pytest.mark.skipif(not RL_PARQUET.exists(), reason=f"the paper's ToolRL data is not at {SHARED}")
def test_paper_rl_rows_left_truncated_under_the_qwen_vocabulary(qwen_tokenizer):
    import pyarrow.parquet as pq

    table = pq.read_table(RL_PARQUET).to_pylist()
    config = DataConfig(data_source=str(RL_PARQUET), test_size=0, max_prompt_length=1024, prompt_truncation="left")
    prepared = prepare_datasets(config, kind="rl", tokenizer=qwen_tokenizer)
    over = 0
    for raw, out in zip(table, prepared.datasets["train"], strict=True):
        messages = [{"role": m["role"], "content": m["content"]} for m in raw["prompt"]]
        full = _template_ids(qwen_tokenizer, messages)
        over += len(full) > 1024
        assert qwen_tokenizer(out["prompt"])["input_ids"] == (full[-1024:] if len(full) > 1024 else full)
    assert prepared.reports[0].truncated == over > 0
