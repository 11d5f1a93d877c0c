"""Generation backends for evaluation: HF transformers (CPU/GPU), vLLM (GPU) and OpenAI-compatible servers.

Every backend takes chat conversations (lists of ``{"role", "content"}``) and returns the model's
raw text. Local backends render them with the model's own chat template (generation prompt
added); the OpenAI-compatible backend either sends the messages (``/chat/completions``, the
server applies the template) or renders them locally and sends the prompt (``/completions``).

How many tokens a call may generate and at which temperature is a :class:`Decoding`, chosen per
benchmark by the runner: the paper's scripts bounded the new tokens by what the context leaves
after the prompt (BFCL: ``min(4096, context - prompt - 2)``; API-Bank and Bamboogle: 4096 inside
a 4096-token context), so the budget is computed per conversation from its prompt length.
Decoding is greedy unless a temperature is set; sampling is plain temperature sampling (top-p 1,
no top-k, no repetition penalty, whatever the checkpoint's ``generation_config`` says), as the
paper's vLLM ``SamplingParams`` were.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from toolrl_trl import grammar
from toolrl_trl.eval.common import post_json

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class NativeChat:
    """A conversation for the model's own tool-calling template (``output_format native``): chat messages (with
    ``tool_calls`` and ``tool`` turns), the tools as JSON schemas, and the family that writes and reads them."""

    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    family: grammar.NativeFamily


Conversation = Sequence[dict[str, str]] | NativeChat

#: Larger values of a tokenizer's ``model_max_length`` are transformers' "no limit" sentinel, not a context.
_NO_LIMIT = 10**8


@dataclass(frozen=True)
class TokenBudget:
    """New tokens allowed for one call: ``min(cap, context - prompt - margin)``; a fixed ``cap`` without a context.

    ``context`` is the window the prompt and the output share (API-Bank/Bamboogle: vLLM's
    ``max_model_len`` 4096); ``model_context`` takes the model's own (its ``max_position_embeddings``,
    as BFCL's OSS handler reads it). When the prompt leaves less than ``margin``, ``overflow`` tokens
    are asked for (BFCL's handler asks for 1000 and lets the server fail; 0 gives an empty output).
    """

    cap: int
    context: int | None = None
    model_context: bool = False
    margin: int = 0
    overflow: int = 0

    def tokens(self, prompt_tokens: int, model_context: int | None) -> int:
        window = model_context if self.model_context else self.context
        if window is None:
            return self.cap
        if window < prompt_tokens + self.margin:
            return self.overflow
        return min(self.cap, window - prompt_tokens - self.margin)

    @property
    def needs_prompt_length(self) -> bool:
        return self.model_context or self.context is not None

    def describe(self) -> str:
        if not self.needs_prompt_length:
            return f"{self.cap} new tokens (fixed)"
        window = "model context" if self.model_context else f"{self.context}-token context"
        margin = f" - {self.margin}" if self.margin else ""
        return f"min({self.cap}, {window} - prompt{margin}) new tokens"


@dataclass(frozen=True)
class Decoding:
    """How one benchmark's calls are decoded: the token budget, the temperature (0 = greedy) and the sampling seed."""

    budget: TokenBudget
    temperature: float = 0.0
    seed: int | None = None

    def describe(self) -> str:
        mode = "greedy" if self.temperature <= 0 else f"temperature {self.temperature:g}"
        seed = f", seed {self.seed}" if self.seed is not None and self.temperature > 0 else ""
        return f"{mode}{seed}, {self.budget.describe()}"


@dataclass
class GenerationConfig:
    """How outputs are generated (``recipes/evaluate.py`` parses these flags)."""

    model: str = field(
        default="",
        metadata={"help": "Model path or Hub id (the checkpoint to evaluate); the served model's name for openai."},
    )
    backend: str = field(default="hf", metadata={"help": "Generation backend: hf (transformers), vllm, or openai."})
    max_new_tokens: int | None = field(
        default=None,
        metadata={
            "help": "Most tokens generated per model call, fixed. Unset: each benchmark's budget under --protocol "
            "(paper: BFCL min(4096, context - prompt - 2), API-Bank/Bamboogle 4096 - prompt; project: 1024)."
        },
    )
    generation_temperature: float = field(
        default=0.0,
        metadata={
            "help": "Sampling temperature; 0 means greedy decoding (the paper's 0.001/1e-4: see --paper_temperatures)."
        },
    )
    batch_size: int = field(
        default=8, metadata={"help": "hf: conversations per generate() call; openai: concurrent requests."}
    )
    model_dtype: str = field(
        default="auto", metadata={"help": "Model dtype for hf/vllm: auto, bfloat16, float16, float32."}
    )
    device: str = field(default="auto", metadata={"help": "hf backend device: auto (cuda if available), cpu, cuda."})
    tokenizer: str | None = field(
        default=None,
        metadata={
            "help": "Tokenizer path if not the model's (openai: renders completions prompts and counts prompt tokens)."
        },
    )
    api_base: str = field(
        default="http://127.0.0.1:8000/v1", metadata={"help": "openai backend: base URL of the server (ends in /v1)."}
    )
    api_mode: str = field(
        default="chat", metadata={"help": "openai backend: chat (/chat/completions) or completions (/completions)."}
    )
    api_key_env: str = field(
        default="OPENAI_API_KEY", metadata={"help": "openai backend: environment variable holding the API key."}
    )
    tensor_parallel_size: int = field(default=1, metadata={"help": "vllm backend: GPUs per model replica."})
    gpu_memory_utilization: float = field(default=0.9, metadata={"help": "vllm backend: fraction of GPU memory."})
    max_model_len: int | None = field(
        default=None, metadata={"help": "vllm backend: context length (default: the model's)."}
    )
    allow_remote_code: bool = field(
        default=False, metadata={"help": "Allow model code from the checkpoint (hf/vllm)."}
    )

    def default_decoding(self) -> Decoding:
        """The decoding of a call made without one: the fixed ``max_new_tokens`` (1024 if unset), this temperature."""
        cap = self.max_new_tokens if self.max_new_tokens is not None else DEFAULT_MAX_NEW_TOKENS
        return Decoding(TokenBudget(cap=cap), temperature=self.generation_temperature)


#: The project's fixed budget (the paper's training completion length) when no protocol budget applies.
DEFAULT_MAX_NEW_TOKENS = 1024


class Backend(Protocol):
    def generate(self, conversations: Sequence[Conversation], decoding: Decoding | None = None) -> list[str]: ...


def accepts_decoding(backend: Any) -> bool:
    """Whether ``backend.generate`` takes a ``decoding`` argument (a user's older backend may not)."""
    try:
        parameters = inspect.signature(backend.generate).parameters
    except (TypeError, ValueError):
        return False
    return "decoding" in parameters or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())


def load_tokenizer(name: str, trust_remote_code: bool):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(name, trust_remote_code=trust_remote_code)
    if tokenizer.chat_template is None:
        raise ValueError(f"{name}: the tokenizer has no chat template; evaluation renders prompts with it")
    return tokenizer


def model_context_length(model_config: Any, tokenizer: Any = None) -> int | None:
    """The context BFCL's OSS handler reads: ``max_position_embeddings``, else the tokenizer's ``model_max_length``."""
    value = getattr(model_config, "max_position_embeddings", None)
    if isinstance(value, int) and value > 0:
        return value
    value = getattr(tokenizer, "model_max_length", None)
    return value if isinstance(value, int) and 0 < value < _NO_LIMIT else None


def render_prompt(tokenizer: Any, conversation: Conversation) -> str:
    """The conversation through the model's chat template, ready for the assistant's turn (``tools=`` when native)."""
    if isinstance(conversation, NativeChat):
        return tokenizer.apply_chat_template(
            conversation.messages,
            tools=conversation.tools or None,
            tokenize=False,
            add_generation_prompt=True,
            **conversation.family.template_kwargs,
        )
    return tokenizer.apply_chat_template(list(conversation), tokenize=False, add_generation_prompt=True)


def openai_messages(chat: NativeChat) -> list[dict[str, Any]]:
    """A native chat in the OpenAI wire format: call arguments as JSON strings, calls and tool turns paired by id."""
    out, pending = [], []
    for index, message in enumerate(chat.messages):
        message = dict(message)
        if message.get("tool_calls"):
            calls = []
            for number, call in enumerate(message["tool_calls"]):
                call_id = f"call_{index}_{number}"
                pending.append(call_id)
                function = call["function"]
                calls.append(
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {
                            "name": function["name"],
                            "arguments": json.dumps(function["arguments"], ensure_ascii=False),
                        },
                    }
                )
            message["tool_calls"] = calls
        elif message.get("role") == "tool":
            message["tool_call_id"] = pending.pop(0) if pending else f"call_{index}"
        out.append(message)
    return out


def native_reply_text(message: dict[str, Any], family: grammar.NativeFamily) -> str:
    """An OpenAI-compatible server's parsed reply (content, tool_calls, reasoning_content) as the template's text.

    A server started with a tool parser (``vllm serve --enable-auto-tool-choice --tool-call-parser hermes``)
    moves the calls out of the content; this writes them back, so the reply is scored as the raw text would be.
    """
    calls = []
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        arguments = function.get("arguments")
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments)
            except ValueError:
                continue  # what the server could not parse is not a call
        if isinstance(function.get("name"), str) and isinstance(arguments, dict):
            calls.append({"name": function["name"], "arguments": arguments})
    content = message.get("content") or ""
    if not calls:
        return content
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    turn = grammar.NativeTurn(reasoning if isinstance(reasoning, str) else None, content.strip(), tuple(calls))
    if turn.think is None and family.thinks and content.lstrip().startswith(grammar.THINK_OPEN):
        turn = grammar.parse_native_turn_lenient(content, family)
        turn = grammar.NativeTurn(turn.think, turn.content, tuple(calls))
    return grammar.render_native_turn(turn, family)


def prompt_length(tokenizer: Any, prompt: str) -> int:
    """Tokens of a rendered prompt (special tokens in the text count once, nothing added)."""
    return len(tokenizer(prompt, add_special_tokens=False)["input_ids"])


class _SeedStream:
    """Per-request seeds that are reproducible for a run's seed and differ between calls (a re-sent prompt re-samples)."""

    def __init__(self) -> None:
        self.seed: int | None = None
        self.calls = 0

    def next(self, seed: int | None, count: int) -> list[int | None]:
        if seed is None:
            return [None] * count
        if seed != self.seed:
            self.seed, self.calls = seed, 0
        self.calls += 1
        return [(seed * 1_000_003 + self.calls * 10_007 + i) % 2**31 for i in range(count)]


class HFBackend:
    """transformers ``generate`` in left-padded batches (CPU or GPU); each output cut at its own token budget."""

    def __init__(self, config: GenerationConfig):
        import torch
        from transformers import AutoModelForCausalLM

        self.config = config
        self.tokenizer = load_tokenizer(config.tokenizer or config.model, config.allow_remote_code)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        device = config.device if config.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
        self.model = AutoModelForCausalLM.from_pretrained(
            config.model, dtype=config.model_dtype, trust_remote_code=config.allow_remote_code
        ).to(device)
        self.model.eval()
        self.device = device
        self.context = model_context_length(self.model.config, self.tokenizer)
        self._seeded: int | None = None

    def generate(self, conversations: Sequence[Conversation], decoding: Decoding | None = None) -> list[str]:
        import torch
        from transformers import set_seed

        decoding = decoding or self.config.default_decoding()
        sampling = decoding.temperature > 0
        if sampling and decoding.seed is not None and decoding.seed != self._seeded:
            set_seed(decoding.seed)  # once per run: later calls go on from the generator's state
            self._seeded = decoding.seed
        outputs: list[str] = []
        size = max(1, self.config.batch_size)
        for start in range(0, len(conversations), size):
            prompts = [render_prompt(self.tokenizer, c) for c in conversations[start : start + size]]
            batch = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
            lengths = batch["attention_mask"].sum(dim=1).tolist()
            budgets = [decoding.budget.tokens(int(n), self.context) for n in lengths]
            if max(budgets) <= 0:
                outputs.extend("" for _ in prompts)
                continue
            # The paper's samplers had top-p 1, no top-k and no repetition penalty: override generation_config's.
            kwargs: dict[str, Any] = {
                "max_new_tokens": max(budgets),
                "pad_token_id": self.tokenizer.pad_token_id,
                "repetition_penalty": 1.0,
            }
            if sampling:
                kwargs.update(do_sample=True, temperature=decoding.temperature, top_p=1.0, top_k=0)
            else:
                kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
            with torch.no_grad():
                generated = self.model.generate(**batch.to(self.device), **kwargs)
            new_tokens = generated[:, batch["input_ids"].shape[1] :]
            outputs.extend(
                self.tokenizer.decode(row[: max(budget, 0)], skip_special_tokens=True)
                for row, budget in zip(new_tokens, budgets, strict=True)
            )
        return outputs


class VLLMBackend:
    """vLLM offline inference (GPU); prompts rendered with the same chat template as the hf backend."""

    def __init__(self, config: GenerationConfig):
        try:
            from vllm import LLM, SamplingParams
        except ImportError as err:
            raise ImportError(
                f'the vllm backend needs vLLM ({err}); install it with `pip install -e ".[vllm]"` on a GPU machine, '
                "or use --backend hf"
            ) from err
        from transformers import AutoConfig

        self.config = config
        self.tokenizer = load_tokenizer(config.tokenizer or config.model, config.allow_remote_code)
        kwargs: dict[str, Any] = {
            "model": config.model,
            "tokenizer": config.tokenizer or config.model,
            "dtype": config.model_dtype,
            "tensor_parallel_size": config.tensor_parallel_size,
            "gpu_memory_utilization": config.gpu_memory_utilization,
            "trust_remote_code": config.allow_remote_code,
        }
        if config.max_model_len:
            kwargs["max_model_len"] = config.max_model_len
        self.llm = LLM(**kwargs)
        self._sampling_params = SamplingParams
        model_config = AutoConfig.from_pretrained(config.model, trust_remote_code=config.allow_remote_code)
        self.context = model_context_length(model_config, self.tokenizer)
        self.engine_context = config.max_model_len or self.context
        self._seeds = _SeedStream()

    def generate(self, conversations: Sequence[Conversation], decoding: Decoding | None = None) -> list[str]:
        decoding = decoding or self.config.default_decoding()
        prompts = [render_prompt(self.tokenizer, c) for c in conversations]
        lengths = [prompt_length(self.tokenizer, p) for p in prompts]
        budgets = [decoding.budget.tokens(n, self.context) for n in lengths]
        if self.engine_context:  # the engine refuses more than its own window
            budgets = [min(b, self.engine_context - n) for b, n in zip(budgets, lengths, strict=True)]
        seeds = self._seeds.next(decoding.seed if decoding.temperature > 0 else None, len(prompts))
        outputs = [""] * len(prompts)
        todo = [i for i, b in enumerate(budgets) if b > 0]
        params = [
            self._sampling_params(
                temperature=max(decoding.temperature, 0.0), max_tokens=budgets[i], top_p=1.0, top_k=-1, seed=seeds[i]
            )
            for i in todo
        ]
        if todo:
            results = self.llm.generate([prompts[i] for i in todo], params, use_tqdm=False)
            for i, result in zip(todo, results, strict=True):
                outputs[i] = result.outputs[0].text
        return outputs


class OpenAIBackend:
    """Any OpenAI-compatible server (vLLM serve, TGI, SGLang ...) over plain HTTP."""

    def __init__(self, config: GenerationConfig):
        if config.api_mode not in ("chat", "completions"):
            raise ValueError(f"unknown --api_mode {config.api_mode!r}; valid: chat, completions")
        self.config = config
        self.api_key = os.environ.get(config.api_key_env)
        self.tokenizer = None
        self.context: int | None = None
        if config.api_mode == "completions":
            self.tokenizer = load_tokenizer(config.tokenizer or config.model, config.allow_remote_code)
        self._counting_checked = False
        self._seeds = _SeedStream()

    def _prepare_counting(self) -> None:
        """Load a tokenizer (and the model's context) to size context-bound budgets; warn once if there is none."""
        if self._counting_checked:
            return
        self._counting_checked = True
        name = self.config.tokenizer or self.config.model
        try:
            from transformers import AutoConfig

            if self.tokenizer is None:
                self.tokenizer = load_tokenizer(name, self.config.allow_remote_code)
            self.context = model_context_length(
                AutoConfig.from_pretrained(name, trust_remote_code=self.config.allow_remote_code), self.tokenizer
            )
        except (OSError, ValueError) as err:
            logger.warning(
                "openai backend: cannot load a tokenizer/config from %r (%s); budgets that depend on the prompt "
                "length fall back to their cap (pass --tokenizer to size them as the paper did)",
                name,
                err,
            )

    def _budget(self, conversation: Conversation, decoding: Decoding) -> int:
        if not decoding.budget.needs_prompt_length:
            return decoding.budget.cap
        self._prepare_counting()
        if self.tokenizer is None:
            return decoding.budget.cap
        return decoding.budget.tokens(
            prompt_length(self.tokenizer, render_prompt(self.tokenizer, conversation)), self.context
        )

    def _one(self, job: tuple[Conversation, Decoding, int | None]) -> str:
        conversation, decoding, seed = job
        max_tokens = self._budget(conversation, decoding)
        if max_tokens <= 0:
            return ""
        base = self.config.api_base.rstrip("/")
        payload: dict[str, Any] = {
            "model": self.config.model,
            "max_tokens": max_tokens,
            "temperature": decoding.temperature,
        }
        if seed is not None:
            payload["seed"] = seed
        if self.config.api_mode == "chat":
            native = isinstance(conversation, NativeChat)
            payload["messages"] = openai_messages(conversation) if native else list(conversation)
            if native and conversation.tools:
                payload["tools"] = conversation.tools
            reply = post_json(f"{base}/chat/completions", payload, self.api_key)
            try:
                message = reply["choices"][0]["message"]
                return native_reply_text(message, conversation.family) if native else message["content"] or ""
            except (KeyError, IndexError, TypeError, AttributeError):
                raise RuntimeError(f"{base}/chat/completions: unexpected reply {str(reply)[:300]}") from None
        payload["prompt"] = render_prompt(self.tokenizer, conversation)
        reply = post_json(f"{base}/completions", payload, self.api_key)
        try:
            return reply["choices"][0]["text"]
        except (KeyError, IndexError, TypeError):
            raise RuntimeError(f"{base}/completions: unexpected reply {str(reply)[:300]}") from None

    def generate(self, conversations: Sequence[Conversation], decoding: Decoding | None = None) -> list[str]:
        """Up to ``batch_size`` requests in flight at once (the server batches them); outputs keep the input order."""
        decoding = decoding or self.config.default_decoding()
        seeds = self._seeds.next(decoding.seed if decoding.temperature > 0 else None, len(conversations))
        jobs = [(c, decoding, s) for c, s in zip(conversations, seeds, strict=True)]
        with ThreadPoolExecutor(max_workers=max(1, self.config.batch_size)) as pool:
            return list(pool.map(self._one, jobs))


BACKENDS: dict[str, type] = {"hf": HFBackend, "vllm": VLLMBackend, "openai": OpenAIBackend}


def build_backend(config: GenerationConfig) -> Backend:
    if config.backend not in BACKENDS:
        raise ValueError(f"unknown generation backend {config.backend!r}; valid: {', '.join(BACKENDS)}")
    if not config.model:
        raise ValueError("--model is required (a checkpoint path or Hub id; the served model name for openai)")
    logger.info("generation backend %s for %s", config.backend, config.model)
    return BACKENDS[config.backend](config)
