"""Generation backends for evaluation: HF transformers (CPU/GPU), vLLM (GPU) and OpenAI-compatible servers.

Every backend takes chat conversations (lists of ``{"role", "content"}``) and returns the model's
raw text. Local backends render them with the model's own chat template (generation prompt
added); the OpenAI-compatible backend either sends the messages (``/chat/completions``, the
server applies the template) or renders them locally and sends the prompt (``/completions``).
Decoding is greedy unless a temperature is set.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from toolrl_trl.eval.common import post_json

logger = logging.getLogger(__name__)

Conversation = Sequence[dict[str, str]]


@dataclass
class GenerationConfig:
    """How outputs are generated (``recipes/evaluate.py`` parses these flags)."""

    model: str = field(
        default="",
        metadata={"help": "Model path or Hub id (the checkpoint to evaluate); the served model's name for openai."},
    )
    backend: str = field(default="hf", metadata={"help": "Generation backend: hf (transformers), vllm, or openai."})
    max_new_tokens: int = field(default=1024, metadata={"help": "Most tokens generated per model call."})
    generation_temperature: float = field(
        default=0.0, metadata={"help": "Sampling temperature; 0 means greedy decoding."}
    )
    batch_size: int = field(
        default=8, metadata={"help": "hf: conversations per generate() call; openai: concurrent requests."}
    )
    model_dtype: str = field(
        default="auto", metadata={"help": "Model dtype for hf/vllm: auto, bfloat16, float16, float32."}
    )
    device: str = field(default="auto", metadata={"help": "hf backend device: auto (cuda if available), cpu, cuda."})
    tokenizer: str | None = field(
        default=None, metadata={"help": "Tokenizer path if not the model's (openai completions mode renders with it)."}
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


class Backend(Protocol):
    def generate(self, conversations: Sequence[Conversation]) -> list[str]: ...


def _load_tokenizer(name: str, trust_remote_code: bool):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(name, trust_remote_code=trust_remote_code)
    if tokenizer.chat_template is None:
        raise ValueError(f"{name}: the tokenizer has no chat template; evaluation renders prompts with it")
    return tokenizer


def render_prompt(tokenizer: Any, conversation: Conversation) -> str:
    """The conversation through the model's chat template, ready for the assistant's turn."""
    return tokenizer.apply_chat_template(list(conversation), tokenize=False, add_generation_prompt=True)


class HFBackend:
    """transformers ``generate`` in left-padded batches (CPU or GPU)."""

    def __init__(self, config: GenerationConfig):
        import torch
        from transformers import AutoModelForCausalLM

        self.config = config
        self.tokenizer = _load_tokenizer(config.tokenizer or config.model, config.allow_remote_code)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        device = config.device if config.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
        self.model = AutoModelForCausalLM.from_pretrained(
            config.model, dtype=config.model_dtype, trust_remote_code=config.allow_remote_code
        ).to(device)
        self.model.eval()
        self.device = device

    def generate(self, conversations: Sequence[Conversation]) -> list[str]:
        import torch

        outputs: list[str] = []
        size = max(1, self.config.batch_size)
        for start in range(0, len(conversations), size):
            prompts = [render_prompt(self.tokenizer, c) for c in conversations[start : start + size]]
            batch = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(
                self.device
            )
            kwargs: dict[str, Any] = {
                "max_new_tokens": self.config.max_new_tokens,
                "pad_token_id": self.tokenizer.pad_token_id,
            }
            if self.config.generation_temperature > 0:
                kwargs.update(do_sample=True, temperature=self.config.generation_temperature)
            else:
                kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
            with torch.no_grad():
                generated = self.model.generate(**batch, **kwargs)
            new_tokens = generated[:, batch["input_ids"].shape[1] :]
            outputs.extend(self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True))
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
        self.tokenizer = _load_tokenizer(config.tokenizer or config.model, config.allow_remote_code)
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
        self.sampling = SamplingParams(temperature=config.generation_temperature, max_tokens=config.max_new_tokens)

    def generate(self, conversations: Sequence[Conversation]) -> list[str]:
        prompts = [render_prompt(self.tokenizer, c) for c in conversations]
        results = self.llm.generate(prompts, self.sampling, use_tqdm=False)
        return [r.outputs[0].text for r in results]


class OpenAIBackend:
    """Any OpenAI-compatible server (vLLM serve, TGI, SGLang ...) over plain HTTP."""

    def __init__(self, config: GenerationConfig):
        if config.api_mode not in ("chat", "completions"):
            raise ValueError(f"unknown api_mode {config.api_mode!r}; valid: chat, completions")
        self.config = config
        self.api_key = os.environ.get(config.api_key_env)
        self.tokenizer = None
        if config.api_mode == "completions":
            self.tokenizer = _load_tokenizer(config.tokenizer or config.model, config.allow_remote_code)

    def _one(self, conversation: Conversation) -> str:
        base = self.config.api_base.rstrip("/")
        payload: dict[str, Any] = {
            "model": self.config.model,
            "max_tokens": self.config.max_new_tokens,
            "temperature": self.config.generation_temperature,
        }
        if self.config.api_mode == "chat":
            payload["messages"] = list(conversation)
            reply = post_json(f"{base}/chat/completions", payload, self.api_key)
            try:
                return reply["choices"][0]["message"]["content"] or ""
            except (KeyError, IndexError, TypeError):
                raise RuntimeError(f"{base}/chat/completions: unexpected reply {str(reply)[:300]}") from None
        payload["prompt"] = render_prompt(self.tokenizer, conversation)
        reply = post_json(f"{base}/completions", payload, self.api_key)
        try:
            return reply["choices"][0]["text"]
        except (KeyError, IndexError, TypeError):
            raise RuntimeError(f"{base}/completions: unexpected reply {str(reply)[:300]}") from None

    def generate(self, conversations: Sequence[Conversation]) -> list[str]:
        """Up to ``batch_size`` requests in flight at once (the server batches them); outputs keep the input order."""
        with ThreadPoolExecutor(max_workers=max(1, self.config.batch_size)) as pool:
            return list(pool.map(self._one, conversations))


BACKENDS: dict[str, type] = {"hf": HFBackend, "vllm": VLLMBackend, "openai": OpenAIBackend}


def build_backend(config: GenerationConfig) -> Backend:
    if config.backend not in BACKENDS:
        raise ValueError(f"unknown generation backend {config.backend!r}; valid: {', '.join(BACKENDS)}")
    if not config.model:
        raise ValueError("--model is required (a checkpoint path or Hub id; the served model name for openai)")
    logger.info("generation backend %s for %s", config.backend, config.model)
    return BACKENDS[config.backend](config)
