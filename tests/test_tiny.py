"""The tiny offline models behave like the real checkpoints where the recipes depend on it."""

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from toolrl_trl import grammar
from toolrl_trl.tiny import GRAMMAR_TOKENS, build_tiny_model, main

MESSAGES = [
    {"role": "system", "content": "You can call tools."},
    {"role": "user", "content": "Weather in Paris?"},
]


@pytest.mark.parametrize(
    ("fixture", "architecture", "turn_prefix", "eos"),
    [
        ("tiny_model_dir", "qwen2", "<|im_start|>assistant\n", "<|im_end|>"),
        ("tiny_llama_dir", "llama", "<|start_header_id|>assistant<|end_header_id|>\n\n", "<|eot_id|>"),
    ],
)
def test_family_has_real_chat_template_and_special_tokens(request, fixture, architecture, turn_prefix, eos):
    path = request.getfixturevalue(fixture)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    assert model.config.model_type == architecture
    assert model.config.vocab_size == len(tokenizer)
    assert tokenizer.eos_token == eos and tokenizer.pad_token is not None
    assert tokenizer.pad_token_id != tokenizer.eos_token_id, "GRPO masks pad tokens; eos must stay visible"
    text = tokenizer.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True)
    assert text.endswith(turn_prefix)
    ids = tokenizer(text, add_special_tokens=False).input_ids
    assert tokenizer.decode(ids) == text, "byte-level BPE must round-trip the templated prompt"
    for tag in GRAMMAR_TOKENS:
        assert len(tokenizer(tag, add_special_tokens=False).input_ids) == 1, tag


def test_build_is_deterministic_and_uses_given_corpus(tmp_path):
    corpus = [grammar.render_assistant_turn("call the lookup tool", [{"name": "zebrafinder", "parameters": {}}])] * 50
    first = build_tiny_model(tmp_path / "a", "qwen2", corpus=corpus, seed=3)
    second = build_tiny_model(tmp_path / "b", "qwen2", corpus=corpus, seed=3)
    assert (first / "tokenizer.json").read_bytes() == (second / "tokenizer.json").read_bytes()
    assert (first / "model.safetensors").read_bytes() == (second / "model.safetensors").read_bytes()
    tokenizer = AutoTokenizer.from_pretrained(first)
    # The corpus decides what is short: a word repeated in it becomes a single token.
    assert len(tokenizer("zebrafinder", add_special_tokens=False).input_ids) == 1


def test_unknown_family_lists_valid_names(tmp_path):
    with pytest.raises(ValueError, match=r"valid: \['llama', 'qwen2'\]"):
        build_tiny_model(tmp_path, "gpt2")


def test_cli_writes_a_loadable_directory(tmp_path):
    main(["--family", "llama", "--out", str(tmp_path / "m"), "--hidden_size", "32"])
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "m")
    assert model.config.hidden_size == 32


def test_whole_words_are_one_token_in_a_request_and_in_a_call(tmp_path):
    corpus = ["Find jobs in Paris and London.", '{"city": "Paris"}'] * 20
    path = build_tiny_model(tmp_path / "m", "qwen2", corpus=corpus, whole_words=["Toronto", "data analyst"])
    tokenizer = AutoTokenizer.from_pretrained(path)
    request = tokenizer("Find data analyst jobs in Toronto.", add_special_tokens=False).input_ids
    call = tokenizer('{"title": "data analyst", "city": "Toronto"}', add_special_tokens=False).input_ids
    for word in ("Toronto", "data analyst"):
        (token,) = tokenizer(word, add_special_tokens=False).input_ids
        assert token in request and token in call, word
    # Only where it stands as a word: inside another word the usual BPE pieces spell it.
    (toronto,) = tokenizer("Toronto", add_special_tokens=False).input_ids
    assert toronto not in tokenizer("Torontonian", add_special_tokens=False).input_ids
    assert tokenizer.decode(call) == '{"title": "data analyst", "city": "Toronto"}'
