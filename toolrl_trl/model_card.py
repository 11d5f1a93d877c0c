"""This project's model card (``README.md``) and run record (``toolrl_run.json``) for a trained output directory.

TRL's generic card names a local base model ``[None](https://huggingface.co/None)`` and asks a chit-chat
question. This card says what the run was: the base model (and, for SFT-then-GRPO, the chain back to the Hub
model), the trainer and recipe with the resolved settings and reward variant, the data, a quick start in the
ToolRL prompt format with the parsing of the calls, the evaluation table once ``make eval`` has produced one,
and the ToolRL citation beside TRL's.

The card is rendered from the run record, which is saved beside it, so that after ``make eval`` the card can
be refreshed without the trainer::

    python -m toolrl_trl.model_card outputs/Qwen2.5-3B-Instruct/grpo_cold_start [--eval_dir DIR]

Evaluation results are looked up (first hit wins) in ``--eval_dir``, ``<output_dir>/eval``,
``<output_dir>/../../eval/<name>`` (where ``make eval`` writes, ``$(OUT)/eval/<name>``) and ``outputs/eval/<name>``
(``recipes/evaluate.py``'s default). In each, a Markdown table (:data:`EVAL_TABLE_NAMES`) is embedded as is;
otherwise the JSON scores (:data:`EVAL_SCORES_NAMES`, ``{"model", "backend", <benchmark>: {"n", "accuracy", ...}}``)
are rendered. A results folder whose JSON names another model is ignored.

No secret reaches the card or the record: fields named like API keys or tokens are replaced by
:data:`REDACTED`, and the values of secret-looking environment variables (``OPENAI_API_KEY``,
``SERPER_API_KEY``, ``HF_TOKEN``, ...) are scrubbed from every string, the command line included.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from toolrl_trl import __version__, grammar
from toolrl_trl.cli import configure_logging

logger = logging.getLogger(__name__)

CARD_NAME = "README.md"
RUN_RECORD_NAME = "toolrl_run.json"
#: Markdown tables of evaluation results, embedded verbatim (the first found wins).
EVAL_TABLE_NAMES = ("results.md", "scores.md", "eval_results.md")
#: JSON evaluation results; ``scores.json`` is what ``toolrl_trl.eval.runner.run_evaluation`` writes.
EVAL_SCORES_NAMES = ("results.json", "scores.json")
REDACTED = "<redacted>"
#: Tags on every card (with the trainer's own, e.g. ``trl``, ``grpo``).
CARD_TAGS = ("toolrl", "tool-calling")

TOOLRL_CITATION = """@article{qian2025toolrl,
  title   = {{ToolRL: Reward is All Tool Learning Needs}},
  author  = {Qian, Cheng and Acikgoz, Emre Can and He, Qi and Wang, Hongru and Chen, Xiusi and Hakkani-T{\\"u}r, Dilek and Tur, Gokhan and Ji, Heng},
  journal = {arXiv preprint arXiv:2504.13958},
  year    = {2025}
}"""
TRL_CITATION = """@software{vonwerra2020trl,
  title   = {{TRL: Transformers Reinforcement Learning}},
  author  = {von Werra, Leandro and Belkada, Younes and Tunstall, Lewis and Beeching, Edward and Thrush, Tristan and Lambert, Nathan and Huang, Shengyi and Rasul, Kashif and Gallou\\'edec, Quentin},
  license = {Apache-2.0},
  url     = {https://github.com/huggingface/trl},
  year    = {2020}
}"""

#: The quick start's tool and request (the shape of the paper's and the synthetic data's tool lists).
EXAMPLE_TOOLS = (
    grammar.ToolSpec(
        name="get_weather",
        description="Get the current weather for a city.",
        parameters={
            "city": {"description": "The city name.", "type": "str"},
            "unit": {
                "description": "Temperature unit.",
                "type": "str, optional",
                "enum": ["celsius", "fahrenheit"],
                "default": "celsius",
            },
        },
    ),
)
EXAMPLE_REQUEST = "What is the weather in Paris right now?"
EXAMPLE_ANSWER = grammar.render_assistant_turn(
    "The user wants the current weather in Paris, so I should call get_weather with city Paris.",
    [{"name": "get_weather", "parameters": {"city": "Paris"}}],
)

#: Settings shown in the card's table (all resolved settings are in the record and the card's details block).
KEY_TRAINING_SETTINGS = (
    "learning_rate",
    "lr_scheduler_type",
    "num_train_epochs",
    "max_steps",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "steps_per_generation",
    "num_generations",
    "num_iterations",
    "max_completion_length",
    "max_length",
    "temperature",
    "top_p",
    "beta",
    "epsilon",
    "loss_type",
    "scale_rewards",
    "kl_coef",
    "gamma",
    "lam",
    "critic_learning_rate",
    "critic_warmup_steps",
    "completion_only_loss",
    "bf16",
    "use_vllm",
    "seed",
)
#: The reward settings that name the variant (paper section 5); the others show when they differ from the default.
_REWARD_VARIANT_FIELDS = ("correctness_scale", "scale_schedule", "granularity", "length_reward")
KEY_MODEL_SETTINGS = ("dtype", "use_peft", "lora_r", "lora_alpha", "lora_dropout", "lora_target_modules")

_SPECIAL_TOKEN_FIELDS = frozenset(
    {"eos_token", "pad_token", "bos_token", "unk_token", "sep_token", "cls_token", "mask_token"}
)
_SECRET_WORDS = re.compile(r"api_?key|apikey|secret|passw|credential|private_key")
_TOKEN_NAME = re.compile(r"(^|_)token$")
#: Key shapes that are secrets wherever they appear (Hugging Face, OpenAI-style).
_KEY_SHAPES = re.compile(r"\b(?:hf_[A-Za-z0-9]{30,}|sk-[A-Za-z0-9_-]{20,})")


# ---------------------------------------------------------------------------------------------------------------------
# Secrets
# ---------------------------------------------------------------------------------------------------------------------


def is_secret_name(name: str) -> bool:
    """Whether a field or environment variable of this name holds a secret (``*api_key*``, ``hub_token``, ...).

    Names ending in ``_env`` name the variable that holds a key (``api_key_env``), not the key; special-token
    fields (``eos_token``) and counts (``*_tokens*``) are settings.
    """
    lowered = name.lower()
    if lowered.endswith("_env"):
        return False
    if _SECRET_WORDS.search(lowered):
        return True
    return bool(_TOKEN_NAME.search(lowered)) and lowered not in _SPECIAL_TOKEN_FIELDS


def secret_values(env: Mapping[str, str] | None = None) -> list[str]:
    """Values of the secret-looking environment variables, longest first (so that no fragment is left behind)."""
    env = os.environ if env is None else env
    values = {value for name, value in env.items() if is_secret_name(name) and len(value) >= 8}
    return sorted(values, key=len, reverse=True)


def redact(value: Any, secrets: Sequence[str] = ()) -> Any:
    """``value`` with secret-named fields replaced and every occurrence of ``secrets`` (and key shapes) scrubbed."""
    if isinstance(value, Mapping):
        return {
            key: REDACTED if is_secret_name(str(key)) and item not in (None, "") else redact(item, secrets)
            for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [redact(item, secrets) for item in value]
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, REDACTED)
        return _KEY_SHAPES.sub(REDACTED, value)
    return value


def redact_argv(argv: Sequence[str], secrets: Sequence[str] = ()) -> list[str]:
    """A command line with the values of secret flags (``--hub_token X``, ``--api_key=X``) replaced."""
    out: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            out.append(REDACTED)
            hide_next = False
            continue
        if arg.startswith("--") and is_secret_name(arg[2:].split("=", 1)[0].replace("-", "_")):
            if "=" in arg:
                arg = arg.split("=", 1)[0] + "=" + REDACTED
            else:
                hide_next = True
        out.append(redact(arg, secrets))
    return out


# ---------------------------------------------------------------------------------------------------------------------
# The run record
# ---------------------------------------------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    """Dataclasses and enums as plain JSON values (``str`` for anything else json cannot write)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    return json.loads(json.dumps(value, default=str))


def _config_value(argv: Sequence[str], flag: str) -> str | None:
    for index, arg in enumerate(argv):
        if arg == flag and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def is_local(model: str | None) -> bool:
    return bool(model) and os.path.isdir(model)


def read_run_record(directory: str | os.PathLike) -> dict[str, Any] | None:
    """The run record saved in ``directory`` (None when it has none or it is unreadable)."""
    path = Path(directory) / RUN_RECORD_NAME
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def model_lineage(model: str | None) -> list[dict[str, Any]]:
    """The chain of models ``model`` came from, itself first: each ``{"model", "trainer", "recipe", "data"}``.

    A local directory trained by this project carries a run record naming its own base, so an SFT-then-GRPO
    run traces back to the Hub model the SFT started from. The last entry is a Hub id or a directory without
    a record (a tiny model, a LoRA-merged folder): ``{"model", "local", "model_type"}``.
    """
    chain: list[dict[str, Any]] = []
    seen: set[str] = set()
    while model and model not in seen:
        seen.add(model)
        record = read_run_record(model) if is_local(model) else None
        if record is None:
            entry: dict[str, Any] = {"model": model, "local": is_local(model)}
            if entry["local"]:
                try:
                    config = json.loads((Path(model) / "config.json").read_text(encoding="utf-8"))
                    entry["model_type"] = config.get("model_type")
                except (OSError, ValueError):
                    entry["model_type"] = None
            chain.append(entry)
            break
        chain.append(
            {
                "model": model,
                "trainer": record.get("trainer"),
                "recipe": record.get("recipe"),
                "data": record.get("data", {}).get("data_source"),
            }
        )
        model = record.get("base_model")
    return chain


def _base_model_of(trainer: Any, model_args: Any) -> str | None:
    if model_args is not None and getattr(model_args, "model_name_or_path", None):
        return model_args.model_name_or_path
    model = trainer.model
    peft_config = getattr(model, "peft_config", None)
    if peft_config:
        return next(iter(peft_config.values())).base_model_name_or_path
    return getattr(model.config, "_name_or_path", None) or None


def _versions(use_vllm: bool) -> dict[str, str]:
    import datasets
    import tokenizers
    import torch
    import transformers
    import trl

    versions = {
        "toolrl-trl": __version__,
        "TRL": trl.__version__,
        "Transformers": transformers.__version__,
        "PyTorch": torch.__version__,
        "Datasets": datasets.__version__,
        "Tokenizers": tokenizers.__version__,
    }
    if use_vllm:
        import vllm

        versions["vLLM"] = vllm.__version__
    return versions


def collect_run_record(
    trainer: Any,
    training_args: Any,
    *,
    model_args: Any = None,
    data_args: Any = None,
    reward_args: Any = None,
    script_args: Any = None,
    dataset_name: str | None = None,
    argv: Sequence[str] | None = None,
) -> dict[str, Any]:
    """What the card says about a run, from the trainer and the parsed configs, secrets redacted.

    The configs beyond ``training_args`` are optional (an entry point that does not pass them gets a card
    without those sections); ``argv`` defaults to ``sys.argv`` (the recipe script and its ``--config``).
    """
    from accelerate.utils import is_peft_model

    argv = list(sys.argv if argv is None else argv)
    secrets = secret_values()
    base_model = _base_model_of(trainer, model_args)
    data = _jsonable(data_args) if data_args is not None else {}
    if dataset_name is not None:
        data.setdefault("data_source", dataset_name)
    paper = getattr(trainer, "_paper", None) or {}
    record = {
        "format": 1,
        "trainer": getattr(trainer, "_name", type(trainer).__name__),
        "trainer_class": f"{type(trainer).__module__}.{type(trainer).__qualname__}",
        "trainer_tags": list(getattr(trainer, "_tag_names", [])),
        "method_paper": {key: paper.get(key) for key in ("title", "id", "citation")} if paper else None,
        "base_model": base_model,
        "base_model_lineage": model_lineage(base_model),
        "adapter": bool(is_peft_model(trainer.model)),
        "output_dir": training_args.output_dir,
        "hub_model_id": getattr(trainer, "hub_model_id", None) if training_args.push_to_hub else None,
        "recipe": _config_value(argv[1:], "--config"),
        "command": ["python", *argv],
        "world_size": training_args.world_size,
        "global_step": trainer.state.global_step,
        "data": data,
        "reward": _jsonable(reward_args) if reward_args is not None else None,
        "reward_defaults": _jsonable(type(reward_args)()) if reward_args is not None else None,
        "script": _jsonable(script_args) if script_args is not None else None,
        "model": _jsonable(model_args) if model_args is not None else None,
        "training": _jsonable(training_args.to_dict()),
        "versions": _versions(bool(getattr(training_args, "use_vllm", False))),
    }
    record = redact(record, secrets)
    record["command"] = redact_argv(record["command"], secrets)
    return record


def save_run_record(directory: str | os.PathLike, record: Mapping[str, Any]) -> Path:
    """Write the record (redacted once more: it may have been edited) as ``toolrl_run.json``."""
    path = Path(directory) / RUN_RECORD_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(redact(dict(record), secret_values()), indent=2) + "\n", encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------------------------------
# Evaluation results
# ---------------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class EvalResults:
    """An evaluation table for the card and the file it was read from."""

    source: Path
    markdown: str


def eval_result_dirs(output_dir: str | os.PathLike, extra: Sequence[str | os.PathLike] = ()) -> list[Path]:
    """Where evaluation results of ``output_dir`` may be, in the order they are tried (see the module docstring)."""
    out = Path(output_dir)
    name = out.resolve().name
    candidates = [*map(Path, extra), out / "eval", out.parent.parent / "eval" / name, Path("outputs") / "eval" / name]
    unique: list[Path] = []
    for candidate in candidates:
        if candidate.resolve() not in [path.resolve() for path in unique]:
            unique.append(candidate)
    return unique


def _same_model(named: Any, output_dir: Path) -> bool:
    return isinstance(named, str) and Path(named).expanduser().resolve() == output_dir.resolve()


def find_eval_results(output_dir: str | os.PathLike, extra: Sequence[str | os.PathLike] = ()) -> EvalResults | None:
    """The evaluation table of ``output_dir`` if ``make eval`` (or ``recipes/evaluate.py``) produced one.

    A folder outside ``output_dir`` counts only when its JSON scores name this model (``make eval`` names its
    folder after the checkpoint's last path part, which several runs share).
    """
    out = Path(output_dir)
    for directory in eval_result_dirs(out, extra):
        if not directory.is_dir():
            continue
        scores_path = next((directory / n for n in EVAL_SCORES_NAMES if (directory / n).is_file()), None)
        scores = None
        if scores_path is not None:
            try:
                scores = json.loads(scores_path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as err:
                logger.warning("ignoring unreadable evaluation results %s (%s)", scores_path, err)
        inside = directory.resolve().is_relative_to(out.resolve())
        explicit = any(directory.resolve() == Path(e).resolve() for e in extra)
        if isinstance(scores, Mapping) and "model" in scores and not _same_model(scores["model"], out):
            if not explicit:
                logger.info("%s holds the results of %s, not of %s: ignored", directory, scores["model"], out)
                continue
        elif not (inside or explicit or isinstance(scores, Mapping)):
            continue
        table_path = next((directory / n for n in EVAL_TABLE_NAMES if (directory / n).is_file()), None)
        if table_path is not None:
            return EvalResults(table_path, table_path.read_text(encoding="utf-8").strip())
        if isinstance(scores, Mapping):
            table = render_scores_table(scores)
            if table:
                return EvalResults(scores_path, table)
    return None


def render_scores_table(scores: Mapping[str, Any]) -> str:
    """A Markdown table of evaluation JSON: ``results.json``'s paper columns, or ``scores.json``'s summaries."""
    columns = scores.get("columns")
    if isinstance(columns, list) and columns:  # toolrl_trl.eval.table.PaperTable.to_json
        cells = []
        for column in columns:
            mean = column.get("mean")
            cells.append("skipped" if column.get("skipped") else "N/A" if mean is None else f"{100 * mean:.2f}")
        headers = [str(column.get("header", column.get("key"))) for column in columns]
        return "\n".join(
            ["| " + " | ".join(headers) + " |", "|" + "---:|" * len(headers), "| " + " | ".join(cells) + " |"]
        )
    rows = []
    for name, summary in scores.items():
        if not isinstance(summary, Mapping) or "accuracy" not in summary:
            continue
        scope = summary.get("category", summary.get("level", ""))
        accuracy = summary["accuracy"]
        shown = "N/A" if accuracy is None else f"{100 * accuracy:.2f}"
        rows.append(f"| {name} | {scope} | {summary.get('n', '')} | {shown} |")
    if not rows:
        return ""
    header = "| Benchmark | Scope | Items | Accuracy (%) |\n|---|---|---:|---:|"
    backend = f"\n\nGenerated with the `{scores['backend']}` backend." if scores.get("backend") else ""
    return header + "\n" + "\n".join(rows) + backend


# ---------------------------------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------------------------------

_STANDALONE_PARSER = '''import json

def parse_tool_calls(text):
    """The calls of the last <tool_call> block; lines that are not {"name": str, "parameters": dict} are dropped."""
    if "<tool_call>" not in text:
        return []
    block = text.rsplit("<tool_call>", 1)[1].split("</tool_call>", 1)[0].strip()
    calls = []
    for line in block.split("\\n"):
        try:
            call = json.loads(line)
        except ValueError:
            continue
        if isinstance(call, dict) and isinstance(call.get("name"), str) and call["name"] and isinstance(call.get("parameters"), dict):
            calls.append(call)
    return calls'''


def _hub_root(lineage: Sequence[Mapping[str, Any]]) -> str | None:
    root = lineage[-1] if lineage else None
    return None if root is None or root.get("local", True) else root["model"]


def _describe_model(entry: Mapping[str, Any]) -> str:
    model = entry["model"]
    if entry.get("trainer"):
        recipe = f" with `{entry['recipe']}`" if entry.get("recipe") else ""
        data = f" on `{entry['data']}` data" if entry.get("data") else ""
        return f"`{model}`: {entry['trainer']}{recipe}{data}, from"
    if entry.get("local"):
        kind = f"{entry['model_type']} architecture, " if entry.get("model_type") else ""
        return f"`{model}` (a local model directory, {kind}not on the Hugging Face Hub)"
    return f"[{model}](https://huggingface.co/{model})"


def _settings_table(settings: Mapping[str, Any] | None, keys: Sequence[str] | None = None) -> list[str]:
    if not settings:
        return []
    names = [k for k in (keys or settings) if k in settings]
    return [f"| `{name}` | `{json.dumps(settings[name])}` |" for name in names]


def _reward_sentence(reward: Mapping[str, Any] | None, defaults: Mapping[str, Any] | None) -> str | None:
    if not reward:
        return None
    changed = [key for key, value in reward.items() if defaults is not None and defaults.get(key) != value]
    shown = [key for key in reward if key in _REWARD_VARIANT_FIELDS or key in changed]
    parts = ", ".join(f"{key} `{reward[key]}`" for key in shown)
    verdict = "the paper's default reward" if not changed else f"a reward variant (differs in {', '.join(changed)})"
    return (
        f"ToolRL rule-based rewards (format + correctness), {verdict}: {parts}. "
        "See paper section 5 and `toolrl_trl/rewards.py` for what each setting does."
    )


def _data_sentence(data: Mapping[str, Any]) -> str:
    source = data.get("data_source")
    if source is None:
        return "The training data is not recorded for this run."
    if source == "synthetic":
        size = f" ({data['synthetic_train_size']} training tasks)" if "synthetic_train_size" in data else ""
        described = f"the synthetic tool-calling tasks generated by `toolrl_trl.synthetic`{size}, no external data"
    elif is_local(source) or os.path.exists(source):
        described = f"the local file or folder `{source}`"
    else:
        described = f"[{source}](https://huggingface.co/datasets/{source})"
    if data.get("output_format") == "native":
        return (
            f"Trained on {described}, converted by `toolrl_trl.data` into rows in the model's own chat template "
            "(`output_format: native`): the tools passed as `tools=`, the dialogue as chat messages, and tool calls "
            "written as the template writes them, so an OpenAI-compatible server with the matching tool parser "
            "(Qwen2.5: `vllm serve --enable-auto-tool-choice --tool-call-parser hermes`) returns them as `tool_calls`."
        )
    return (
        f"Trained on {described}, converted by `toolrl_trl.data` into ToolRL rows: a system prompt listing the "
        "tools (the paper's, rendered by `toolrl_trl.grammar.render_system_prompt`) and the dialogue history as "
        "the user turn."
    )


def _toolrl_quick_start(model_id: str) -> list[str]:
    """How to prompt a checkpoint trained in the paper's format and read its calls."""
    system_prompt = grammar.render_system_prompt(EXAMPLE_TOOLS)
    user_message = grammar.render_user_message(EXAMPLE_REQUEST)
    tools_code = ",\n".join(
        f"    ToolSpec({tool.name!r}, {tool.description!r}, {dict(tool.parameters)!r})" for tool in EXAMPLE_TOOLS
    )
    return [
        "",
        "## Quick start",
        "",
        "The model was trained on the ToolRL prompt format: the tools are listed in the system prompt, the dialogue "
        "history is the user turn, and the answer is `<think> ... </think>` followed by a `<tool_call>` block (one "
        "JSON call per line) and/or a `<response> ... </response>`. With this project installed "
        "(`pip install -e .` in the toolrl-trl repository), `toolrl_trl.grammar` renders the prompt and parses the "
        "calls:",
        "",
        "```python",
        "from transformers import pipeline",
        "",
        "from toolrl_trl.grammar import ToolSpec, parse_tool_calls_lenient, render_system_prompt, render_user_message",
        "",
        "tools = [",
        tools_code + ",",
        "]",
        "messages = [",
        '    {"role": "system", "content": render_system_prompt(tools)},',
        f'    {{"role": "user", "content": render_user_message({EXAMPLE_REQUEST!r})}},',
        "]",
        f'generator = pipeline("text-generation", model={model_id!r}, device_map="auto")',
        'answer = generator(messages, max_new_tokens=512, return_full_text=False)[0]["generated_text"]',
        "print(answer)",
        "print(parse_tool_calls_lenient(answer))  # e.g. [{'name': 'get_weather', 'parameters': {'city': 'Paris'}}]",
        "```",
        "",
        "Run the calls, then send their results back as the next user turn: the history so far (`<user> ... </user>`,"
        " the model's turn, `grammar.render_observation(results)`) joined by `render_user_message([...])`.",
        "",
        "The system prompt the code above builds:",
        "",
        "````text",
        system_prompt,
        "````",
        "",
        "The user turn:",
        "",
        "````text",
        user_message,
        "````",
        "",
        "A well-formed answer:",
        "",
        "````text",
        EXAMPLE_ANSWER,
        "````",
        "",
        "Parsing the calls without this project (what `parse_tool_calls_lenient` does, as the paper's BFCL handler):",
        "",
        "```python",
        _STANDALONE_PARSER,
        "```",
    ]


def _native_quick_start(model_id: str) -> list[str]:
    """How to serve a checkpoint trained in its own template (output_format native): standard tool calling."""
    tools = json.dumps([grammar.tool_json_schema(tool) for tool in EXAMPLE_TOOLS], indent=4)
    return [
        "",
        "## Quick start",
        "",
        "The model was trained in its own chat template's tool-calling format (`output_format: native`), so it is "
        "served like any tool-calling model. With vLLM's OpenAI-compatible server and the parser of its template "
        "(Qwen2.5: `hermes`; Llama 3.x: `llama3_json`, one call per turn):",
        "",
        "```bash",
        f"vllm serve {model_id} --enable-auto-tool-choice --tool-call-parser hermes",
        "```",
        "",
        "```python",
        "from openai import OpenAI",
        "",
        'client = OpenAI(base_url="http://localhost:8000/v1", api_key="none")',
        f"tools = {tools}",
        f'messages = [{{"role": "user", "content": {EXAMPLE_REQUEST!r}}}]',
        f"reply = client.chat.completions.create(model={model_id!r}, messages=messages, tools=tools)",
        "print(reply.choices[0].message.tool_calls)",
        "```",
        "",
        "With transformers alone: `tokenizer.apply_chat_template(messages, tools=tools, add_generation_prompt=True)`, "
        "generate, and read the calls with `toolrl_trl.grammar.parse_native_turn` (the parser the rewards used).",
    ]


def render_model_card(record: Mapping[str, Any], eval_results: EvalResults | None = None) -> str:
    """The card's Markdown (YAML metadata first) from a run record; no secret survives (scrubbed again here)."""
    from huggingface_hub import ModelCardData

    output_dir = record.get("output_dir") or "."
    model_name = Path(output_dir).name or "model"
    model_id = record.get("hub_model_id") or output_dir
    trainer = record.get("trainer") or "a TRL trainer"
    lineage = record.get("base_model_lineage") or []
    hub_root = _hub_root(lineage)
    data = record.get("data") or {}
    source = data.get("data_source")
    hub_dataset = source if source and source != "synthetic" and not os.path.exists(source) and "/" in source else None
    tags = sorted({*CARD_TAGS, *(record.get("trainer_tags") or []), "generated_from_trainer"})
    card_data = ModelCardData(
        base_model=hub_root,
        datasets=[hub_dataset] if hub_dataset else None,
        library_name="peft" if record.get("adapter") else "transformers",
        model_name=model_name,
        tags=tags,
        pipeline_tag="text-generation",
    )
    paper = record.get("method_paper") or {}
    method = f"**{trainer}**"
    if paper.get("title") and paper.get("id"):
        method += f" ([{paper['title']}](https://huggingface.co/papers/{paper['id']}))"
    kind = "a LoRA adapter" if record.get("adapter") else "full weights"
    # An RL run records its reward settings; an SFT run learns the reference answers in the same format.
    objective = "and the rule-based rewards" if record.get("reward") else "on answers in the tool-calling format"

    lines = [
        "---",
        card_data.to_yaml(),
        "---",
        "",
        f"# {model_name}",
        "",
        f"A tool-calling model trained with {method} {objective} of "
        "[ToolRL: Reward is All Tool Learning Needs](https://arxiv.org/abs/2504.13958) (Qian et al., 2025), using "
        f"[TRL](https://github.com/huggingface/trl) and the toolrl-trl recipes. This folder holds {kind}"
        f" after {record.get('global_step', '?')} optimizer steps.",
        "",
        "## Base model",
        "",
    ]
    if lineage:
        lines += [f"{'  ' * depth}- {_describe_model(entry)}" for depth, entry in enumerate(lineage)]
    else:
        lines.append("- not recorded")
    if record.get("adapter") and record.get("base_model"):
        lines += ["", f"The adapter applies to `{record['base_model']}` (`python -m toolrl_trl.merge` merges it)."]

    lines += ["", "## Method and recipe", ""]
    lines.append(f"- Trainer: {method}, `{record.get('trainer_class')}`, world size {record.get('world_size')}.")
    if record.get("recipe"):
        lines.append(f"- Recipe: `{record['recipe']}`; command: `{' '.join(record.get('command') or [])}`")
    reward = _reward_sentence(record.get("reward"), record.get("reward_defaults"))
    if reward:
        lines.append(f"- Reward: {reward}")
    training = dict(record.get("training") or {})
    if training.get("max_steps", -1) > 0:  # max_steps overrides the epoch count
        training.pop("num_train_epochs", None)
    model = dict(record.get("model") or {})
    if not model.get("use_peft"):
        model = {key: value for key, value in model.items() if not key.startswith("lora_")}
    table = _settings_table(training, KEY_TRAINING_SETTINGS) + _settings_table(model, KEY_MODEL_SETTINGS)
    if record.get("script"):
        table += _settings_table(record["script"], ("prompts_per_generation_round", "updates_per_generation_round"))
    if table:
        lines += ["", "| Setting | Value |", "|---|---|", *table]
    resolved = {
        key: record[key] for key in ("model", "data", "reward", "script", "training") if record.get(key) is not None
    }
    lines += [
        "",
        f"<details><summary>All resolved settings (also in <code>{RUN_RECORD_NAME}</code>)</summary>",
        "",
        "```json",
        json.dumps(resolved, indent=2),
        "```",
        "",
        "</details>",
        "",
        "## Data",
        "",
        _data_sentence(data),
    ]
    data_table = _settings_table({k: v for k, v in data.items() if k != "data_source"})
    if data_table:
        lines += ["", "| Data setting | Value |", "|---|---|", *data_table]

    if data.get("output_format") == "native":
        lines += _native_quick_start(model_id)
    else:
        lines += _toolrl_quick_start(model_id)
    lines += ["", "## Evaluation", ""]
    if eval_results is not None:
        lines += [eval_results.markdown, "", f"From `{eval_results.source}`."]
    else:
        lines.append(
            f"No evaluation results yet. Run `make eval MODEL={output_dir}`, then "
            f"`python -m toolrl_trl.model_card {output_dir}` adds the table here."
        )
    versions = record.get("versions") or {}
    lines += ["", "## Framework versions", "", *[f"- {name}: {version}" for name, version in versions.items()]]
    lines += ["", "## Citations", "", "Cite ToolRL as:", "", "```bibtex", TOOLRL_CITATION, "```"]
    if paper.get("citation"):
        lines += ["", f"Cite {trainer} as:", "", "```bibtex", paper["citation"].strip(), "```"]
    lines += ["", "Cite TRL as:", "", "```bibtex", TRL_CITATION, "```", ""]
    return redact("\n".join(lines), secret_values())


def write_model_card(
    output_dir: str | os.PathLike,
    record: Mapping[str, Any] | None = None,
    *,
    eval_dirs: Sequence[str | os.PathLike] = (),
) -> Path:
    """Write ``README.md`` (and, when ``record`` is given, ``toolrl_run.json``) in ``output_dir``.

    Without ``record`` the saved one is read: this is how the card is refreshed after ``make eval``.
    """
    out = Path(output_dir)
    if record is None:
        record = read_run_record(out)
        if record is None:
            raise FileNotFoundError(f"{out} has no {RUN_RECORD_NAME}: it was not trained by a toolrl-trl recipe")
    else:
        save_run_record(out, record)
    eval_results = find_eval_results(out, eval_dirs)
    if eval_results is not None:
        logger.info("model card: evaluation table from %s", eval_results.source)
    path = out / CARD_NAME
    path.write_text(render_model_card(record, eval_results), encoding="utf-8")
    return path


def install(trainer: Any, training_args: Any, **run_configs: Any) -> None:
    """Make ``trainer.create_model_card`` write this card: TRL calls it at every checkpoint and ``push_to_hub``.

    An instance attribute, because the trainers come from TRL (and ``recipes/sft.py``) unchanged; the keyword
    arguments are those of :func:`collect_run_record` (``model_args``, ``data_args``, ``reward_args``, ...).
    """

    def create_model_card(model_name: str | None = None, dataset_name: str | None = None, tags: Any = None) -> None:
        if not trainer.is_world_process_zero():
            return
        configs = dict(run_configs)
        if dataset_name is not None:
            configs.setdefault("dataset_name", dataset_name)
        record = collect_run_record(trainer, training_args, **configs)
        if tags:
            extra = [tags] if isinstance(tags, str) else list(tags)
            record["trainer_tags"] = sorted({*record["trainer_tags"], *extra})
        path = write_model_card(training_args.output_dir, record)
        logger.info("model card written to %s", path)

    trainer.create_model_card = create_model_card


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m toolrl_trl.model_card OUTPUT_DIR``: re-render the card from the saved record (after ``make eval``)."""
    parser = argparse.ArgumentParser(prog="python -m toolrl_trl.model_card", description=main.__doc__)
    parser.add_argument("output_dir", help="a training output directory (holds toolrl_run.json)")
    parser.add_argument(
        "--eval_dir", action="append", default=[], help="a results folder of recipes/evaluate.py (tried first)"
    )
    args = parser.parse_args(argv)
    configure_logging()
    try:
        path = write_model_card(args.output_dir, eval_dirs=args.eval_dir)
    except FileNotFoundError as err:
        logger.error("%s", err)
        return 1
    logger.info("model card written to %s", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
