"""output_format native: the paper's prompts read back, turns in the model's own template, rewards, data, serving.

What a user relies on: a native row is what the tokenizer's chat template writes with ``tools=``; the reward
gives the reference turn its maximum and a malformed turn its minimum; the calls the reward sees are the calls
TRL's (and vLLM's hermes) response parser sees; rows a template cannot write are reported, never cut down.
"""

from __future__ import annotations

import importlib
import importlib.util
import json

import pytest
from helpers import SHARED_DATA
from transformers import AutoTokenizer

from toolrl_trl import grammar, synthetic
from toolrl_trl.data import DataConfig, DataValidationError, build_datasets, save_datasets
from toolrl_trl.rewards import RewardConfig, get_reward_funcs, reward_bounds, score

QWEN = grammar.NATIVE_FAMILIES["qwen2_5"]
LLAMA = grammar.NATIVE_FAMILIES["llama3"]
MAX = reward_bounds(1, RewardConfig())


def _synthetic_prompts(n: int = 40):
    tasks = synthetic.generate_tasks(n, 0, seed=3)["train"]
    return synthetic.render_rows(tasks, "rl")


# ---- reading the paper's prompt back -----------------------------------------------------------------------------


def test_system_prompt_and_history_read_back_what_the_grammar_renders():
    tools = [
        grammar.ToolSpec("get_weather", "Weather of a city.\nIn Celsius.", {"city": {"type": "str"}}),
        grammar.ToolSpec("Get Trending TV Shows", "No parameters.", {}),
    ]
    assert grammar.parse_system_prompt(grammar.render_system_prompt(tools)) == tools
    turn = grammar.render_assistant_turn("look it up", [{"name": "get_weather", "parameters": {"city": "Oslo"}}])
    history = grammar.render_user_message(
        [
            "<user> weather in Oslo? </user>",
            turn + "\n" + grammar.render_observation([{"name": "get_weather", "results": {"c": 3}}]),
            "<user> and now? </user>",
        ]
    )
    entries = grammar.parse_dialogue_history(history)
    assert [e.kind for e in entries] == ["user", "assistant", "observation", "user"]
    assert entries[1].turn == grammar.parse_assistant_turn(turn)
    messages, schemas = grammar.native_chat(
        [{"role": "system", "content": grammar.render_system_prompt(tools)}, {"role": "user", "content": history}],
        QWEN,
    )
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool", "user"]
    assert messages[2]["tool_calls"] == [
        {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}
    ]
    assert json.loads(messages[3]["content"]) == {"c": 3}
    assert [s["function"]["name"] for s in schemas] == ["get_weather", "Get Trending TV Shows"]


def test_a_prompt_that_is_not_the_papers_is_refused():
    with pytest.raises(grammar.GrammarError, match="not the paper's"):
        grammar.parse_system_prompt("You are a helpful assistant.")
    with pytest.raises(grammar.GrammarError, match="Dialogue Records History"):
        grammar.parse_dialogue_history("hello")
    system = grammar.render_system_prompt([grammar.ToolSpec("f", "d", {})])
    with pytest.raises(grammar.GrammarError, match="ends with an assistant turn"):
        grammar.native_chat(
            [{"role": "system", "content": system}, {"role": "user", "content": "**Dialogue Records History**\n"
             "<user> hi </user>\n\n<think> t </think>\n<response> hello </response>"}],
            QWEN,
        )  # fmt: skip


def test_parameter_types_map_to_json_schema_and_optional_ones_are_not_required():
    schema = grammar.tool_json_schema(
        grammar.ToolSpec(
            "t",
            "d",
            {
                "a": {"type": "str", "description": "x"},
                "b": {"type": "int, optional", "default": 3},
                "c": {"type": "List[int]", "default": ""},
                "d": {"type": "Callable[[float], float]", "description": "f"},
                "e": {"type": "float", "default": None},
            },
        )
    )["function"]["parameters"]
    props = schema["properties"]
    assert [props[k].get("type") for k in "abcde"] == ["string", "integer", "array", None, "number"]
    assert "Callable" in props["d"]["description"] and props["b"]["default"] == 3
    assert schema["required"] == ["a", "c", "d"]
    passthrough = {"type": "object", "properties": {"x": {"type": "string"}}, "required": ["x"]}
    assert grammar.tool_json_schema(grammar.ToolSpec("t", "d", passthrough))["function"]["parameters"] == passthrough


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"the paper's data is not at {SHARED_DATA}")
def test_every_prompt_of_the_papers_training_and_evaluation_files_converts():
    import pandas as pd

    from toolrl_trl.eval import apibank

    prompts = [
        [{"role": "system", "content": r["instruction"]}, {"role": "user", "content": r["input"]}]
        for r in json.loads((SHARED_DATA / "rlla_sft.json").read_text())
    ]
    prompts += [list(p) for p in pd.read_parquet(SHARED_DATA / "rlla_4k_test.parquet")["prompt"]]
    for level in (1, 2, 3):
        prompts += [i["messages"] for i in apibank.load_level(apibank.level_source(SHARED_DATA, level))]
    for prompt in prompts:
        messages, tools = grammar.native_chat(prompt, QWEN)
        assert messages[-1]["role"] in ("user", "tool") and all(t["type"] == "function" for t in tools)
    assert len(prompts) > 1000


# ---- parsing native turns ------------------------------------------------------------------------------------------


def test_qwen_turns_parse_as_the_template_writes_them():
    text = '<think> t </think>\nok\n<tool_call>\n{"name": "f", "arguments": {"n": "7"}}\n</tool_call>\n' \
        '<tool_call>\n{"name": "g", "arguments": {"n": 7}}\n</tool_call><|im_end|>'  # fmt: skip
    turn = grammar.parse_native_turn(text, QWEN)
    assert turn == grammar.NativeTurn(
        "t", "ok", ({"name": "f", "arguments": {"n": "7"}}, {"name": "g", "arguments": {"n": 7}})
    )
    assert turn.toolrl_calls()[0] == {"name": "f", "parameters": {"n": "7"}}  # "7" stays a string
    assert grammar.parse_native_turn(grammar.render_native_turn(turn, QWEN), QWEN) == turn
    for bad, reason in [
        ('<tool_call>\n{"name": "f"}\n</tool_call>', "arguments"),
        ('<tool_call>\n{"name": "f", "arguments": {}\n</tool_call>', "not valid JSON"),
        ('<tool_call>\n{"name": "f", "arguments": {}}\n</tool_call> and more', "after the tool calls"),
        ('<tool_call>\n{"name": "f", "arguments": {}}', "never closed"),
        ("<think> t", "never closed"),
        ("hi </think>", "stray"),
    ]:
        with pytest.raises(grammar.GrammarError, match=reason):
            grammar.parse_native_turn(bad, QWEN)
    lenient = grammar.parse_native_turn_lenient(
        '<tool_call>\n{"bad"\n</tool_call><tool_call>{"name": "f", "arguments": {}}</tool_call> x', QWEN
    )
    assert lenient.tool_calls == ({"name": "f", "arguments": {}},)


def test_llama_turns_are_one_json_call_or_text():
    assert grammar.parse_native_turn('{"name": "f", "parameters": {"a": 1}}<|eot_id|>', LLAMA).tool_calls == (
        {"name": "f", "arguments": {"a": 1}},
    )
    assert grammar.parse_native_turn("Hello there", LLAMA) == grammar.NativeTurn(None, "Hello there", ())
    with pytest.raises(grammar.GrammarError):
        grammar.parse_native_turn('{"name": "f", "parameters": {"a": 1}}\n{"name": "g", "parameters": {}}', LLAMA)
    two = grammar.NativeTurn(None, "", ({"name": "f", "arguments": {}}, {"name": "g", "arguments": {}}))
    assert grammar.parse_native_turn_lenient(grammar.render_native_turn(two, LLAMA), LLAMA) == two


def test_what_a_one_call_template_cannot_write_is_refused_not_cut_down():
    parallel = grammar.AssistantTurn("t", ({"name": "f", "parameters": {}}, {"name": "g", "parameters": {}}), None)
    with pytest.raises(grammar.GrammarError, match="one call per turn"):
        grammar.native_assistant_message(parallel, LLAMA)
    both = grammar.AssistantTurn("t", ({"name": "f", "parameters": {}},), "done")
    with pytest.raises(grammar.GrammarError, match="JSON only"):
        grammar.native_assistant_message(both, LLAMA)
    assert grammar.native_assistant_message(both, QWEN)["content"] == "<think> t </think>\ndone"


def test_unknown_chat_templates_are_named_not_guessed():
    class Tok:
        chat_template = "{{ messages }}"

    with pytest.raises(grammar.GrammarError, match="qwen2_5.*llama3"):
        grammar.native_family(Tok())


# ---- rewards on native completions ---------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["qwen2", "llama"])
def native_sft_rows(request):
    from toolrl_trl.tiny import tiny_model_path

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_path(request.param))
    config = DataConfig(
        synthetic_train_size=40, synthetic_test_size=0, output_format="native", skip_invalid_rows=True,
        max_prompt_length=None, dataset_seed=3,
    )  # fmt: skip
    return tokenizer, grammar.native_family(tokenizer), build_datasets(config, "sft", tokenizer)["train"]


def test_the_reference_turn_rendered_by_the_template_gets_the_maximum(native_sft_rows):
    tokenizer, family, rows = native_sft_rows
    assert len(rows) >= 20
    for row in rows:
        text = tokenizer.decode(
            tokenizer(row["completion"], add_special_tokens=False)["input_ids"], skip_special_tokens=True
        )
        result = score(text, row["ground_truth"], native_family=family)
        assert (result.format, result.correctness) == (
            MAX.format[1],
            MAX.correctness[1] if "<tool_call>" in row["ground_truth"] else 0.0,
        )
        # the same turn in the paper's grammar is another dialect: no format reward in native mode
        assert score(row["ground_truth"], row["ground_truth"], native_family=family).format == MAX.format[0]


def test_malformed_native_completions_get_the_minimum_and_never_raise():
    gt = grammar.render_assistant_turn("t", [{"name": "f", "parameters": {"a": 1}}])
    low_format, low_correct = MAX.format[0], MAX.correctness[0]
    for bad in ['<think> t </think>\n<tool_call>\n{"name": "f", "arguments": {"a": 1}\n</tool_call>', None, 42,
                "<think> t </think>\nI will not call it", '<tool_call>\n{"name": "f", "arguments": {"a": 1}}\n</tool_call>']:  # fmt: skip
        result = score(bad, gt, native_family=QWEN)
        assert result.format == low_format
        if bad is None or 'arguments": {"a": 1}}' not in str(bad):
            assert result.correctness == low_correct
    # right call, no thought: correctness counts, format does not
    result = score('<tool_call>\n{"name": "f", "arguments": {"a": 1}}\n</tool_call>', gt, native_family=QWEN)
    assert (result.format, result.correctness) == (low_format, MAX.correctness[1])
    partial = score(
        '<think> t </think>\n<tool_call>\n{"name": "f", "arguments": {"a": 2}}\n</tool_call>', gt, native_family=QWEN
    )
    assert low_correct < partial.correctness < MAX.correctness[1]


def test_reward_callables_score_native_completions_and_log_the_diagnostics():
    gt = grammar.render_assistant_turn("t", [{"name": "f", "parameters": {"a": 1}}])
    good = '<think> t </think>\n<tool_call>\n{"name": "f", "arguments": {"a": 1}}\n</tool_call>'
    logged = {}
    fmt, correctness = get_reward_funcs(RewardConfig(), native_family=QWEN)
    assert fmt([good, "x"], [gt, gt]) == [MAX.format[1], MAX.format[0]]
    assert correctness([good, "x"], [gt, gt], log_metric=logged.__setitem__) == [
        MAX.correctness[1],
        MAX.correctness[0],
    ]
    assert logged["tool_call/exact_match"] == 0.5 and logged["tool_call/parse_failure"] == 0.5


# ---- serving: the calls the reward saw are the calls a standard parser reads ----------------------------------------


def test_trl_response_parser_reads_the_same_calls_as_the_reward(native_sft_rows):
    from trl.chat_template_utils import add_response_schema, parse_response

    tokenizer, family, rows = native_sft_rows
    tokenizer = add_response_schema(AutoTokenizer.from_pretrained(tokenizer.name_or_path))
    for row in rows:
        ids = tokenizer(row["completion"], add_special_tokens=False)["input_ids"]
        parsed = parse_response(tokenizer, ids, prefix=tokenizer(row["prompt"], add_special_tokens=False)["input_ids"])
        served = [
            {"name": c["function"]["name"], "parameters": c["function"]["arguments"]}
            for c in parsed.get("tool_calls") or []
        ]
        assert served == (grammar.parse_ground_truth_calls(row["ground_truth"]) or [])
        assert served == grammar.parse_native_turn(row["completion"], family).toolrl_calls()


def _vllm_tool_parsers():
    """vLLM's tool-parser registry and request class (their modules moved between vLLM releases)."""
    for parsers in ("vllm.tool_parsers", "vllm.entrypoints.openai.tool_parsers"):
        try:
            manager = importlib.import_module(parsers).ToolParserManager
        except (ImportError, AttributeError):
            continue
        for protocol in ("vllm.entrypoints.openai.chat_completion.protocol", "vllm.entrypoints.openai.protocol"):
            try:
                return manager, importlib.import_module(protocol).ChatCompletionRequest
            except (ImportError, AttributeError):
                continue
    return None


@pytest.mark.skipif(
    importlib.util.find_spec("vllm") is None, reason="vLLM is not installed (GPU machines: make install)"
)
def test_vllm_hermes_parser_reads_the_same_calls_as_the_reward(tiny_model_dir):  # pragma: no cover - GPU install
    found = _vllm_tool_parsers()
    if found is None:
        pytest.skip("this vLLM has no ToolParserManager where this test looks for it")
    manager, request_class = found
    parser = manager.get_tool_parser("hermes")(AutoTokenizer.from_pretrained(tiny_model_dir))
    text = '<think> t </think>\n<tool_call>\n{"name": "f", "arguments": {"n": "7", "m": 7}}\n</tool_call>'
    info = parser.extract_tool_calls(text, request=request_class(model="m", messages=[]))
    served = [{"name": c.function.name, "parameters": json.loads(c.function.arguments)} for c in info.tool_calls]
    assert served == grammar.parse_native_turn(text, QWEN).toolrl_calls()


def test_a_servers_structured_reply_is_scored_as_its_raw_text():
    from toolrl_trl.eval.generation import NativeChat, native_reply_text, openai_messages

    reply = {
        "content": "",
        "reasoning_content": "t",
        "tool_calls": [{"function": {"name": "f", "arguments": '{"n": "7"}'}}],
    }
    text = native_reply_text(reply, QWEN)
    assert grammar.parse_native_turn(text, QWEN) == grammar.NativeTurn(
        "t", "", ({"name": "f", "arguments": {"n": "7"}},)
    )
    chat = NativeChat(
        [{"role": "user", "content": "q"}, {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": {"a": 1}}}]},
         {"role": "tool", "content": "1"}], [], QWEN)  # fmt: skip
    wire = openai_messages(chat)
    assert wire[1]["tool_calls"][0]["function"]["arguments"] == '{"a": 1}'
    assert wire[2]["tool_call_id"] == wire[1]["tool_calls"][0]["id"]


# ---- data -------------------------------------------------------------------------------------------------------------


def test_native_rows_are_the_templates_rendering_and_a_saved_folder_loads_back(tiny_model_dir, tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    config = DataConfig(synthetic_train_size=12, synthetic_test_size=2, output_format="native", max_prompt_length=None)
    rl = build_datasets(config, "rl", tokenizer)
    row = rl["train"][0]
    messages, tools = grammar.native_chat(row["prompt_messages"], QWEN)
    assert row["prompt"] == tokenizer.apply_chat_template(
        messages, tools=tools, tokenize=False, add_generation_prompt=True
    )
    assert "# Tools" in row["prompt"] and "**Available Tools**" not in row["prompt"]
    save_datasets(rl, str(tmp_path / "rl"))
    again = build_datasets(
        DataConfig(data_source=str(tmp_path / "rl"), output_format="native", max_prompt_length=None), "rl", tokenizer
    )
    assert again["train"]["prompt"] == rl["train"]["prompt"]
    sft = build_datasets(config, "sft", tokenizer)["train"][0]
    assert sft["completion"].endswith(tokenizer.eos_token) and sft["completion"].count(tokenizer.eos_token) == 1


def test_rows_a_template_cannot_write_are_reported_with_their_index(tiny_llama_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    config = DataConfig(
        synthetic_train_size=40, synthetic_test_size=0, output_format="native", max_prompt_length=None, dataset_seed=3
    )
    with pytest.raises(DataValidationError, match=r"row \d+: .*(one call per turn|JSON only) \[native_format\]"):
        build_datasets(config, "rl", tokenizer)
    config.skip_invalid_rows = True
    kept = build_datasets(config, "rl", tokenizer)["train"]
    assert 0 < len(kept) < 40
    assert all(len(grammar.parse_ground_truth_calls(g) or []) <= 1 for g in kept["ground_truth"])


def test_native_needs_a_tokenizer_and_a_valid_name():
    with pytest.raises(ValueError, match="--tokenizer"):
        build_datasets(DataConfig(synthetic_train_size=2, synthetic_test_size=0, output_format="native"), "rl")
    with pytest.raises(ValueError, match="toolrl.*native"):
        DataConfig(output_format="hermes")


# ---- evaluation through the template ---------------------------------------------------------------------------------


class NativeEcho:
    """A backend that answers every prompt with the Echo call in Qwen2.5's native format, checking what it gets."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.prompts: list[str] = []

    def generate(self, conversations, decoding=None):
        from toolrl_trl.eval.generation import NativeChat, render_prompt

        outputs = []
        for chat in conversations:
            assert isinstance(chat, NativeChat) and chat.tools[0]["function"]["name"] == "Echo"
            self.prompts.append(render_prompt(self.tokenizer, chat))
            text = chat.messages[-1]["content"].split()[-1]
            outputs.append(
                f'<think> echo </think>\n<tool_call>\n{{"name": "Echo", "arguments": {{"text": "{text}"}}}}\n</tool_call>'
            )
        return outputs


def test_evaluation_in_native_format_renders_tools_and_scores_native_calls(tmp_path, tiny_model_dir):
    from toolrl_trl.eval.generation import GenerationConfig
    from toolrl_trl.eval.runner import EvalConfig, run_evaluation

    system = grammar.render_system_prompt([grammar.ToolSpec("Echo", "Repeat a text.", {"text": {"type": "str"}})])
    items = [
        {"system": system, "user": f"**Dialogue Records History**\n<user> echo {i} </user>",
         "answer": [{"name": "Echo", "parameters": {"text": str(i)}}]}
        for i in range(3)
    ]  # fmt: skip
    for level in (1, 2, 3):
        (tmp_path / f"level-{level}-api_processed.json").write_text(json.dumps(items))
    backend = NativeEcho(AutoTokenizer.from_pretrained(tiny_model_dir))
    config = EvalConfig(benchmarks="apibank", apibank_data=str(tmp_path), apibank_levels="1", output_format="native")
    config.results_dir = str(tmp_path / "out")
    result = run_evaluation(config, GenerationConfig(model=str(tiny_model_dir)), backend=backend)
    assert result.reports["apibank"].summary["accuracy"] == 1.0
    assert all("<tools>" in p and "**Available Tools**" not in p for p in backend.prompts)
    assert "output format native" in result.table.to_text()
    saved = [
        json.loads(x)["output"] for x in (tmp_path / "out" / "apibank" / "level-1.jsonl").read_text().splitlines()
    ]
    assert grammar.parse_tool_calls_lenient(saved[2]) == [{"name": "Echo", "parameters": {"text": "2"}}]
    # the same native outputs read as the paper's grammar score nothing: the format decides how outputs are read
    from toolrl_trl.eval.generation import NativeChat

    echo = backend.generate
    backend.generate = lambda conversations, decoding=None: echo(
        [NativeChat(*grammar.native_chat(c, QWEN), QWEN) for c in conversations]
    )
    config.output_format, config.results_dir = "toolrl", str(tmp_path / "toolrl")
    toolrl = run_evaluation(config, GenerationConfig(model=str(tiny_model_dir)), backend=backend)
    assert toolrl.reports["apibank"].summary["accuracy"] == 0.0
