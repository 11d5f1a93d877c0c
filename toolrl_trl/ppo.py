"""PPO with a learned critic, built on TRL's ``GRPOTrainer``: the paper's PPO baseline.

TRL 1.16 has no PPO trainer. ``PPOTrainer`` subclasses ``GRPOTrainer`` so that everything but the
advantage estimate is TRL's own: dataset handling, generation (transformers or vLLM, including vLLM's
importance-sampling correction), the reward callables and their ``rewards/<name>/mean`` metrics, the
reference model (a frozen copy, or the adapter-disabled policy under LoRA), the clipped surrogate loss
and its clip-ratio/entropy metrics, LoRA through ``peft_config``, and accelerate/DeepSpeed preparation.

What PPO changes, following the reference implementation the paper used (veRL, TinyZero era):

- one completion per prompt (``num_generations=1``): the critic, not a group of samples, is the baseline;
- a critic: the same base checkpoint loaded as ``AutoModelForTokenClassification`` with one label (a
  scalar head on every token), trained with its own AdamW optimizer, learning rate and scheduler;
- per-token rewards: ``-kl_coef * (log pi - log pi_ref)`` on every completion token, plus the sum of the
  reward callables on the last completion token (the KL lives in the reward, never in the loss);
- GAE over the per-token values (the paper used gamma = lambda = 1), advantages whitened over the
  generation batch (all processes), returns = advantages + values;
- the clipped value loss ``0.5 * max((V - R)^2, (clip(V, V_old +- c) - R)^2)`` (token mean), stepped on the
  same micro-batches and optimizer-step boundaries as the policy;
- ``critic_warmup_steps``: during the first N optimizer steps only the critic learns.

A truncated completion (no EOS within ``max_completion_length``) is treated as terminal, like an EOS-ended
one: its reward is what the reward callables returned for the text that exists, and it is placed on its
last token with no bootstrap from the critic, as the reference does. ``mask_truncated_completions=True``
(TRL's option) drops such completions from the loss instead.

DeepSpeed: the critic is a second DeepSpeed engine built by ``accelerator.prepare`` from the same plugin
configuration (same ZeRO stage, micro-batch and accumulation) once the Trainer has prepared the policy,
with a plain ``torch.optim.AdamW`` (DeepSpeed's CPU Adam under optimizer offload, as accelerate maps it).
Its backward and step are driven here, not by ``accelerator.backward``, which belongs to the policy. A
DeepSpeed config file that declares its own ``optimizer`` block is refused (it would give the critic the
actor's learning rate). FSDP and vision-language models are not supported.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from accelerate.utils import DistributedType, gather
from torch import nn
from transformers import AutoModelForTokenClassification, PreTrainedModel, get_scheduler
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR
from trl import GRPOConfig, GRPOTrainer
from trl.models.utils import disable_gradient_checkpointing
from trl.trainer.utils import disable_dropout_in_model, get_config_model_id

logger = logging.getLogger(__name__)

#: Loss aggregations of ``GRPOConfig.loss_type`` that are a clipped surrogate, hence valid PPO objectives.
PPO_LOSS_TYPES = ("bnpo", "dapo", "grpo", "dr_grpo")

#: File names of the critic state inside a ``checkpoint-N/critic`` folder (non-DeepSpeed runs).
CRITIC_WEIGHTS_NAME = "critic_trainable.pt"
CRITIC_OPTIMIZER_NAME = "critic_optimizer.pt"
CRITIC_SCHEDULER_NAME = "critic_scheduler.pt"
CRITIC_DIRNAME = "critic"


# --------------------------------------------------------------------------------------------------------------------
# Pure functions: per-token rewards, GAE, whitening, value loss. No trainer state, tested against hand computations.
# --------------------------------------------------------------------------------------------------------------------


def last_valid_index(mask: torch.Tensor) -> torch.Tensor:
    """Index of the last non-zero entry of each row of ``mask`` (B, T); -1 for an all-zero row."""
    mask = mask.bool()
    length = mask.size(1)
    last = length - 1 - mask.flip(dims=[1]).float().argmax(dim=1)
    return torch.where(mask.any(dim=1), last, torch.full_like(last, -1))


def compute_token_rewards(
    scores: torch.Tensor,
    logprobs: torch.Tensor | None,
    ref_logprobs: torch.Tensor | None,
    mask: torch.Tensor,
    kl_coef: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token rewards: ``-kl_coef * (logprobs - ref_logprobs)`` on every masked-in token, plus ``scores`` on the last.

    Args:
        scores: (B,) sequence rewards (the weighted sum of the reward callables).
        logprobs: (B, T) log-probabilities of the sampled tokens under the policy that sampled them.
        ref_logprobs: (B, T) the same under the reference model; both may be None when ``kl_coef == 0``.
        mask: (B, T) 1 on completion tokens the policy produced, 0 on padding (and tool output).
        kl_coef: coefficient of the KL penalty (the reference's fixed ``kl_ctrl.kl_coef``).

    Returns:
        ``(token_rewards, kl)``, both (B, T) and zero outside ``mask``; ``kl`` is the k1 estimate ``logp - ref_logp``.
        A row whose mask is all zero gets no score (nothing to attach it to).
    """
    mask = mask.to(scores.dtype if scores.is_floating_point() else torch.float32)
    if kl_coef != 0.0:
        if logprobs is None or ref_logprobs is None:
            raise ValueError("compute_token_rewards: kl_coef != 0 needs both logprobs and ref_logprobs.")
        kl = (logprobs - ref_logprobs).to(mask.dtype) * mask
    else:
        kl = torch.zeros_like(mask)
    rewards = -kl_coef * kl
    last = last_valid_index(mask)
    rows = torch.nonzero(last >= 0, as_tuple=True)[0]
    rewards[rows, last[rows]] += scores[rows].to(rewards.dtype)
    return rewards, kl


def compute_gae(
    token_rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float = 1.0, lam: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation over the masked-in tokens of each row.

    ``delta_t = r_t + gamma * V_next - V_t`` and ``A_t = delta_t + gamma * lam * A_next``, where "next" is the next
    masked-in token: masked-out positions (right padding, tool output inside a completion) are skipped, not treated
    as the end of the episode. After the last masked-in token the episode is over (``V_next = 0``), whether the
    completion ended with EOS or was truncated at ``max_completion_length``.

    Returns:
        ``(advantages, returns)``, both (B, T), zero outside ``mask``; ``returns = advantages + values``.
    """
    if token_rewards.shape != values.shape or values.shape != mask.shape:
        raise ValueError(
            f"compute_gae: token_rewards {tuple(token_rewards.shape)}, values {tuple(values.shape)} and mask "
            f"{tuple(mask.shape)} must have the same (batch, tokens) shape."
        )
    values = values.float()
    token_rewards = token_rewards.float()
    mask = mask.float()
    batch, length = values.shape
    advantages = torch.zeros_like(values)
    next_advantage = values.new_zeros(batch)
    next_value = values.new_zeros(batch)
    for t in reversed(range(length)):
        m = mask[:, t]
        delta = token_rewards[:, t] + gamma * next_value - values[:, t]
        advantage = delta + gamma * lam * next_advantage
        advantages[:, t] = advantage * m
        next_advantage = m * advantage + (1.0 - m) * next_advantage
        next_value = m * values[:, t] + (1.0 - m) * next_value
    returns = (advantages + values) * mask
    return advantages, returns


def masked_whiten(
    x: torch.Tensor,
    mask: torch.Tensor,
    reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
    eps: float = 1e-8,
) -> torch.Tensor:
    """``(x - mean) / sqrt(var + eps)`` over the masked-in entries (unbiased variance), zero outside ``mask``.

    ``reduce`` sums a tensor over processes, so the statistics are those of the whole generation batch rather
    than of one process's share (the reference whitens the full batch in one place).
    """
    mask = mask.to(x.dtype)
    stats = torch.stack([(x * mask).sum(), (x * x * mask).sum(), mask.sum()])
    if reduce is not None:
        stats = reduce(stats)
    total, total_sq, count = stats.unbind()
    if count < 1:
        return x * mask
    mean = total / count
    if count < 2:
        return (x - mean) * mask
    variance = (total_sq / count - mean * mean).clamp(min=0.0) * count / (count - 1)
    return (x - mean) * torch.rsqrt(variance + eps) * mask


def clipped_value_loss(
    values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    mask: torch.Tensor,
    cliprange_value: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO's clipped value loss, ``0.5 * mean(max((V - R)^2, (V_old + clip(V - V_old, +-c) - R)^2))`` over ``mask``.

    Returns ``(loss, clipfrac)``; ``clipfrac`` is the fraction of tokens where the clipped branch was larger.
    """
    mask = mask.to(values.dtype)
    clipped = old_values + (values - old_values).clamp(-cliprange_value, cliprange_value)
    unclipped_loss = (values - returns) ** 2
    clipped_loss = (clipped - returns) ** 2
    count = mask.sum().clamp(min=1.0)
    loss = 0.5 * (torch.max(unclipped_loss, clipped_loss) * mask).sum() / count
    clipfrac = ((clipped_loss > unclipped_loss).to(values.dtype) * mask).sum() / count
    return loss, clipfrac


# --------------------------------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------------------------------


@dataclass
class PPOConfig(GRPOConfig):
    """``GRPOConfig`` plus the critic, GAE and KL-in-reward settings of PPO (defaults: the paper's reference).

    GRPOConfig fields keep their meaning: ``learning_rate`` is the actor's, ``epsilon`` the policy clip range,
    ``num_iterations`` the PPO epochs per generation round, ``steps_per_generation`` the micro-batches per round,
    ``entropy_coef`` the entropy bonus, ``max_grad_norm`` the clip of both models' gradients. ``beta`` (GRPO's KL
    loss term) must stay 0: PPO puts the KL into the reward with ``kl_coef``.
    """

    num_generations: int | None = field(
        default=1,
        metadata={
            "help": "Completions sampled per prompt. PPO's baseline is the critic, so one is enough (the paper's "
            "setting); more are allowed."
        },
    )
    loss_type: str = field(
        default="bnpo",
        metadata={
            "help": f"How the clipped surrogate is aggregated, one of {', '.join(PPO_LOSS_TYPES)} (see GRPOConfig). "
            "'bnpo' (default) is the reference's token mean per micro-batch."
        },
    )
    kl_coef: float = field(
        default=0.001,
        metadata={
            "help": "Coefficient of the per-token KL penalty -kl_coef * (log pi - log pi_ref) added to the reward "
            "(the reference's algorithm.kl_ctrl.kl_coef, fixed). 0 disables it and the reference model."
        },
    )
    gamma: float = field(
        default=1.0, metadata={"help": "Discount factor of GAE, in [0, 1] (the paper's reference used 1.0)."}
    )
    lam: float = field(default=1.0, metadata={"help": "Lambda of GAE, in [0, 1] (the paper's reference used 1.0)."})
    cliprange_value: float = field(
        default=0.5,
        metadata={"help": "Clip range of the value loss around the values at generation time (reference: 0.5)."},
    )
    critic_learning_rate: float = field(
        default=1e-5, metadata={"help": "Learning rate of the critic's AdamW optimizer (reference: 1e-5)."}
    )
    critic_warmup_steps: int = field(
        default=0,
        metadata={
            "help": "Optimizer steps at the start of training during which only the critic is updated (the actor's "
            "loss and learning rate are zeroed). Reference: 0."
        },
    )
    whiten_advantages: bool = field(
        default=True,
        metadata={"help": "Normalise the advantages to zero mean and unit variance over the generation batch."},
    )
    value_model_name_or_path: str | None = field(
        default=None,
        metadata={
            "help": "Checkpoint the critic is initialised from. Default: the policy's own checkpoint, as in the "
            "reference (a scalar head on the same base model)."
        },
    )

    def __post_init__(self):
        if self.beta != 0.0:
            raise ValueError(
                f"PPOConfig: beta={self.beta} is GRPO's KL loss term; PPO folds the KL into the reward. Set "
                "kl_coef instead and leave beta at 0."
            )
        if self.kl_coef < 0.0:
            raise ValueError(f"PPOConfig: kl_coef must be >= 0, got {self.kl_coef}.")
        for name in ("gamma", "lam"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"PPOConfig: {name} must be in [0, 1], got {value}.")
        if self.cliprange_value <= 0.0:
            raise ValueError(f"PPOConfig: cliprange_value must be > 0, got {self.cliprange_value}.")
        if self.critic_learning_rate <= 0.0:
            raise ValueError(f"PPOConfig: critic_learning_rate must be > 0, got {self.critic_learning_rate}.")
        if self.critic_warmup_steps < 0:
            raise ValueError(f"PPOConfig: critic_warmup_steps must be >= 0, got {self.critic_warmup_steps}.")
        if self.loss_type not in PPO_LOSS_TYPES:
            raise ValueError(
                f"PPOConfig: loss_type={self.loss_type!r} is not a clipped-surrogate aggregation; valid values: "
                f"{', '.join(PPO_LOSS_TYPES)}."
            )
        requested = self.num_generations
        if requested is None or requested < 1:
            raise ValueError(f"PPOConfig: num_generations must be >= 1, got {requested}.")
        requested_eval = self.num_generations_eval
        # GRPOConfig rejects num_generations < 2 (a group baseline needs two samples). PPO's baseline is the critic,
        # so the check is satisfied with a stand-in value and the requested one restored afterwards.
        if requested == 1:
            self.num_generations = 2
            self.num_generations_eval = requested_eval or 1
        try:
            super().__post_init__()
        except ValueError as err:
            if requested == 1 and "divisible by num_generations (2)" in str(err):
                raise ValueError(
                    "PPOConfig: with num_generations=1 the generation batch (per_device_train_batch_size x processes "
                    "x steps_per_generation) must be even: GRPOConfig's validation, which PPOConfig reuses, checks "
                    f"it against groups of 2. ({err})"
                ) from err
            raise
        finally:
            self.num_generations = requested
            self.num_generations_eval = requested_eval
        if self.generation_batch_size % self.num_generations != 0:
            raise ValueError(
                f"PPOConfig: generation_batch_size ({self.generation_batch_size}) must be divisible by "
                f"num_generations ({self.num_generations})."
            )


# --------------------------------------------------------------------------------------------------------------------
# Trainer
# --------------------------------------------------------------------------------------------------------------------


def _critic_lora_config(peft_config: Any, head_name: str) -> Any:
    """The actor's LoRA settings for the critic: a token-classification task whose scalar head is fully trained."""
    config = copy.deepcopy(peft_config)
    config.task_type = "TOKEN_CLS"  # PEFT then trains the `score`/`classifier` head in full (modules_to_save)
    # "all-linear" would also put an adapter on the head, which modules_to_save cannot wrap; keep it off the head.
    exclude = getattr(config, "exclude_modules", None)
    if exclude is None:
        config.exclude_modules = [head_name]
    elif isinstance(exclude, str):
        config.exclude_modules = rf"(?:{exclude})|(?:.*\b{head_name})"
    else:
        config.exclude_modules = sorted({*exclude, head_name})
    return config


class PPOTrainer(GRPOTrainer):
    """PPO with a learned critic on top of ``GRPOTrainer`` (see the module docstring for what is reused and changed).

    Same constructor as ``GRPOTrainer`` (``model``, ``reward_funcs``, ``args``, datasets, ``peft_config``, ...), with
    a ``PPOConfig`` and an optional ``value_model``: a checkpoint path/id or a module whose forward takes
    ``input_ids``/``attention_mask`` and returns ``.logits`` of shape (batch, tokens, 1). Default: the policy's
    checkpoint loaded with ``AutoModelForTokenClassification(num_labels=1)``. With ``peft_config`` the critic gets
    the same LoRA adapter settings (plus a fully trained head).
    """

    _tag_names = ["trl", "ppo", "toolrl-trl"]
    _name = "PPO"
    _paper = {
        "title": "Proximal Policy Optimization Algorithms",
        "id": "1707.06347",
        # docstyle-ignore
        "citation": textwrap.dedent("""\
            @article{schulman2017proximal,
                title        = {{Proximal Policy Optimization Algorithms}},
                author       = {John Schulman and Filip Wolski and Prafulla Dhariwal and Alec Radford and Oleg Klimov},
                year         = 2017,
                eprint       = {arXiv:1707.06347},
            }"""),
    }

    def __init__(
        self,
        model: str | PreTrainedModel,
        reward_funcs: Any = None,
        args: PPOConfig | None = None,
        train_dataset: Any = None,
        eval_dataset: Any = None,
        processing_class: Any = None,
        reward_processing_classes: Any = None,
        callbacks: Any = None,
        optimizers: tuple[Any, Any] = (None, None),
        peft_config: Any = None,
        value_model: str | nn.Module | None = None,
        **kwargs: Any,
    ):
        if args is None:
            name = model if isinstance(model, str) else get_config_model_id(model.config)
            args = PPOConfig(f"{name.split('/')[-1]}-PPO")
        if not isinstance(args, PPOConfig):
            raise TypeError(f"PPOTrainer needs a PPOConfig, got {type(args).__name__}.")
        # GRPOTrainer builds the reference (a frozen copy, a "ref" adapter, or the adapter-disabled policy) and
        # computes its per-token log-probs at generation time iff beta != 0. Borrow that path for the KL-in-reward;
        # `_compute_loss` switches beta off so GRPO never adds its own KL loss term.
        args.beta = args.kl_coef
        try:
            super().__init__(
                model=model,
                reward_funcs=reward_funcs,
                args=args,
                train_dataset=train_dataset,
                eval_dataset=eval_dataset,
                processing_class=processing_class,
                reward_processing_classes=reward_processing_classes,
                callbacks=callbacks,
                optimizers=optimizers,
                peft_config=peft_config,
                **kwargs,
            )
        finally:
            args.beta = 0.0
        if self._is_vlm:
            raise ValueError("PPOTrainer supports text-only models: the critic is a token-classification model.")
        if self.is_fsdp_enabled:
            raise ValueError(
                "PPOTrainer supports single-device, DDP and DeepSpeed (ZeRO-0/1/2/3) runs, not FSDP: the critic is "
                "prepared as a second DeepSpeed engine or DDP module."
            )
        if args.fp16 and not self.is_deepspeed_enabled:
            raise ValueError(
                "PPOTrainer: fp16 mixed precision without DeepSpeed would need a second gradient scaler for the "
                "critic; use bf16 (or fp16 under DeepSpeed)."
            )
        self.kl_coef = args.kl_coef
        self.critic = self._build_critic(value_model, peft_config)
        self.critic_optimizer: torch.optim.Optimizer | None = None
        self.critic_lr_scheduler: Any = None
        self._critic_prepared = False
        self._last_rewards_per_func: torch.Tensor | None = None

    # ----------------------------------------------------------------------------------------------- critic set-up

    def _build_critic(self, value_model: str | nn.Module | None, peft_config: Any) -> nn.Module:
        """Load the critic (scalar head on the base model), LoRA-wrap it like the actor, match the actor's settings."""
        policy = self.accelerator.unwrap_model(self.model)
        if value_model is None:
            value_model = self.args.value_model_name_or_path or get_config_model_id(policy.config)
        if isinstance(value_model, str):
            init_kwargs = dict(self.args.model_init_kwargs or {})
            init_kwargs.pop("quantization_config", None)
            if self.args.distributed_state.distributed_type in ("MULTI_GPU", "DEEPSPEED"):
                init_kwargs["device_map"] = None
            init_kwargs.setdefault("trust_remote_code", self.args.trust_remote_code)
            init_kwargs.setdefault("dtype", policy.dtype)
            init_kwargs.setdefault("attn_implementation", policy.config._attn_implementation)
            try:
                critic = AutoModelForTokenClassification.from_pretrained(value_model, num_labels=1, **init_kwargs)
            except (OSError, ValueError) as err:
                raise ValueError(
                    f"PPOTrainer: could not load the critic from {value_model!r} as a token-classification model "
                    f"with one label ({err}). Set value_model_name_or_path to a causal LM checkpoint of a supported "
                    "architecture."
                ) from err
        elif isinstance(value_model, nn.Module):
            critic = value_model
        else:
            raise TypeError(f"PPOTrainer: value_model must be a path/id or an nn.Module, got {type(value_model)}.")

        config = getattr(critic, "config", None)
        if config is not None and hasattr(config, "use_cache"):
            config.use_cache = False  # one forward over prompt + completion; no generation
        # The reference critic has no dropout (classifier_dropout=0); dropout in the value head only adds noise.
        disable_dropout_in_model(critic)
        if peft_config is not None:
            from peft import get_peft_model

            head_name = "score" if hasattr(critic, "score") else "classifier"
            critic = get_peft_model(critic, _critic_lora_config(peft_config, head_name))
        if self.args.gradient_checkpointing and hasattr(critic, "gradient_checkpointing_enable"):
            critic.gradient_checkpointing_enable(gradient_checkpointing_kwargs=self.args.gradient_checkpointing_kwargs)
            if peft_config is not None:
                critic.enable_input_require_grads()
        return critic

    def _prepare_for_training(self, max_steps, train_dataloader, resume_from_checkpoint):
        """After the Trainer prepared the policy (DeepSpeed config filled), prepare the critic the same way."""
        model, train_dataloader = super()._prepare_for_training(max_steps, train_dataloader, resume_from_checkpoint)
        self._prepare_critic(max_steps)
        if resume_from_checkpoint is not None:
            self._load_critic_state(resume_from_checkpoint)
        return model, train_dataloader

    def _prepare_critic(self, max_steps: int) -> None:
        args = self.args
        if not self._critic_prepared:
            # Weight decay on the same parameters as the Trainer decays for the actor (not biases and norms).
            decay = set(self.get_decay_parameter_names(self.critic))
            trainable = [(name, p) for name, p in self.critic.named_parameters() if p.requires_grad]
            if not trainable:
                raise ValueError("PPOTrainer: the critic has no trainable parameters.")
            groups = [
                {"params": [p for name, p in trainable if name in decay], "weight_decay": args.weight_decay},
                {"params": [p for name, p in trainable if name not in decay], "weight_decay": 0.0},
            ]
            optimizer = torch.optim.AdamW(
                [group for group in groups if group["params"]],
                lr=args.critic_learning_rate,
                betas=(args.adam_beta1, args.adam_beta2),
                eps=args.adam_epsilon,
            )
            if self.is_deepspeed_enabled:
                ds_config = self.accelerator.state.deepspeed_plugin.deepspeed_config
                if "optimizer" in ds_config:
                    raise ValueError(
                        "PPOTrainer: the DeepSpeed config declares an `optimizer` block, which would also drive the "
                        "critic (with the actor's learning rate). Remove it; the Trainer then builds AdamW from "
                        "learning_rate and PPOConfig.critic_learning_rate."
                    )
                # accelerate ties `accelerator.backward` to the first engine it prepares (the policy) and warns on a
                # second one; the critic's backward is driven directly on its own engine, so keep the policy's.
                policy_engine = self.accelerator.deepspeed_engine_wrapped
                self.accelerator.deepspeed_engine_wrapped = None
                try:
                    self.critic, optimizer = self.accelerator.prepare(self.critic, optimizer)
                finally:
                    self.accelerator.deepspeed_engine_wrapped = policy_engine
            else:
                self.critic = self.accelerator.prepare_model(self.critic)
            self.critic_optimizer = optimizer
            self._critic_prepared = True
        # A plain scheduler stepped at each optimizer step (not handed to accelerate, which would step it once per
        # process). Under DeepSpeed it drives the torch optimizer that ZeRO wraps (AdamW, or the DeepSpeedCPUAdam that
        # accelerate substitutes under optimizer offload), whose param groups ZeRO steps with.
        base_optimizer = self.critic_optimizer
        while not isinstance(base_optimizer, torch.optim.Optimizer) and hasattr(base_optimizer, "optimizer"):
            base_optimizer = base_optimizer.optimizer
        self.critic_lr_scheduler = get_scheduler(
            args.lr_scheduler_type,
            optimizer=base_optimizer,
            num_warmup_steps=args.get_warmup_steps(max_steps),
            num_training_steps=max_steps,
            scheduler_specific_kwargs=args.lr_scheduler_kwargs or {},
        )

    # -------------------------------------------------------------------------------- generation: PPO's targets

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        # Keep the raw (gathered) rewards: GRPO's advantages are replaced by GAE, which needs the scores themselves.
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        self._last_rewards_per_func = rewards_per_func
        return rewards_per_func

    def _generate_and_score_completions(self, inputs):
        output = super()._generate_and_score_completions(inputs)
        # GRPO's share of prompt groups with zero reward spread describes its group baseline, which PPO does not use.
        self._metrics["train" if self.model.training else "eval"].pop("frac_reward_zero_std", None)
        if not self.model.training:
            return output  # evaluation reports rewards; it neither needs nor updates the critic
        return self._add_ppo_targets(output)

    def _sum_over_processes(self, tensor: torch.Tensor) -> torch.Tensor:
        return self.accelerator.reduce(tensor, reduction="sum") if self.accelerator.num_processes > 1 else tensor

    def _global_masked_mean(self, x: torch.Tensor, mask: torch.Tensor) -> float:
        totals = self._sum_over_processes(torch.stack([(x * mask).sum(), mask.sum()]).float())
        return (totals[0] / totals[1].clamp(min=1.0)).item()

    @torch.no_grad()
    def _critic_values(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, logits_to_keep: int):
        """Per-token values of the states before each completion token: logits at positions P-1 .. P+C-2."""
        batch_size = self.args.per_device_train_batch_size
        critic_module = self.accelerator.unwrap_model(self.critic)
        chunks = []
        with disable_gradient_checkpointing(critic_module, self.args.gradient_checkpointing_kwargs):
            for start in range(0, input_ids.size(0), batch_size):
                chunks.append(
                    self._critic_forward(
                        input_ids[start : start + batch_size],
                        attention_mask[start : start + batch_size],
                        logits_to_keep,
                    )
                )
        return torch.cat(chunks, dim=0)

    def _critic_forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, logits_to_keep: int):
        with self.accelerator.autocast():
            logits = self.critic(input_ids=input_ids, attention_mask=attention_mask).logits
        if logits.dim() != 3 or logits.size(-1) != 1:
            raise ValueError(
                f"PPOTrainer: the critic must return logits (batch, tokens, 1), got {tuple(logits.shape)}."
            )
        return logits[:, -logits_to_keep - 1 : -1, 0].float()

    def _add_ppo_targets(self, output: dict[str, Any]) -> dict[str, Any]:
        device = self.accelerator.device
        prompt_ids, prompt_mask = output["prompt_ids"], output["prompt_mask"]
        completion_ids, completion_mask = output["completion_ids"], output["completion_mask"]
        loss_mask = completion_mask if "tool_mask" not in output else completion_mask * output["tool_mask"]
        loss_mask = loss_mask.float()
        batch = completion_ids.size(0)
        logits_to_keep = completion_ids.size(1)

        # This process's rows of the gathered rewards, combined exactly as GRPO does (weighted, None-aware sum).
        if self._last_rewards_per_func is None:
            raise RuntimeError("PPOTrainer: no rewards were computed for this generation batch.")
        start = self.accelerator.process_index * batch
        rewards_per_func = self._last_rewards_per_func[start : start + batch].to(device)
        scorable = ~torch.isnan(rewards_per_func).all(dim=1)
        scores = (rewards_per_func * self.reward_weights.to(device).unsqueeze(0)).nansum(dim=1)
        value_mask = loss_mask * scorable.unsqueeze(1).float()

        input_ids = torch.cat([prompt_ids, completion_ids], dim=1)
        attention_mask = torch.cat([prompt_mask, completion_mask], dim=1)
        old_logps = output.get("old_per_token_logps")
        ref_logps = output.pop("ref_per_token_logps", None)
        if self.kl_coef != 0.0 and old_logps is None:
            # GRPO skips these when the batch is used in a single optimizer step; the KL-in-reward needs them.
            with torch.no_grad(), disable_gradient_checkpointing(self.model, self.args.gradient_checkpointing_kwargs):
                old_logps, _, _ = self._get_per_token_logps_and_entropies(
                    self.model,
                    input_ids,
                    attention_mask,
                    logits_to_keep,
                    batch_size=self.args.per_device_train_batch_size,
                )
            output["old_per_token_logps"] = old_logps
        values = self._critic_values(input_ids, attention_mask, logits_to_keep) * value_mask

        token_rewards, kl = compute_token_rewards(scores, old_logps, ref_logps, value_mask, self.kl_coef)
        advantages, returns = compute_gae(token_rewards, values, value_mask, self.args.gamma, self.args.lam)
        raw_advantages = advantages
        if self.args.whiten_advantages:
            advantages = masked_whiten(advantages, value_mask, reduce=self._sum_over_processes)

        output["advantages"] = advantages
        output["returns"] = returns
        output["old_values"] = values
        output["value_mask"] = value_mask

        metrics = self._metrics["train"]
        metrics["kl"].append(self._global_masked_mean(kl, value_mask))
        metrics["critic/values/mean"].append(self._global_masked_mean(values, value_mask))
        metrics["critic/returns/mean"].append(self._global_masked_mean(returns, value_mask))
        metrics["critic/advantages/mean"].append(self._global_masked_mean(raw_advantages, value_mask))
        sequence_rewards = token_rewards.sum(dim=1)
        totals = self._sum_over_processes(
            torch.stack([sequence_rewards.sum(), torch.tensor(float(batch), device=device)])
        )
        metrics["critic/rewards/mean"].append((totals[0] / totals[1]).item())
        residual = returns - values
        mean_r = self._global_masked_mean(returns, value_mask)
        mean_res = self._global_masked_mean(residual, value_mask)
        var_r = self._global_masked_mean((returns - mean_r) ** 2, value_mask)
        var_res = self._global_masked_mean((residual - mean_res) ** 2, value_mask)
        metrics["critic/vf_explained_var"].append(1.0 - var_res / var_r if var_r > 0 else float("nan"))
        # The completions table shows each completion's first-token advantage instead of GRPO's group advantage.
        first_token_advantages = gather(advantages[:, 0] if logits_to_keep else advantages.new_zeros(batch)).tolist()
        logged = self._logs["advantages"]
        for _ in range(min(len(first_token_advantages), len(logged))):
            logged.pop()
        logged.extend(first_token_advantages)
        return output

    # ------------------------------------------------------------------------------------------------- the loss

    @contextlib.contextmanager
    def _without_grpo_kl_loss(self):
        """GRPO adds ``beta * KL`` to the loss when beta != 0; in PPO the KL is already in the reward."""
        beta, self.beta = self.beta, 0.0
        try:
            yield
        finally:
            self.beta = beta

    def _compute_loss(self, model, inputs):
        training = self.model.training
        if training:
            self._critic_training_step(inputs)
        with self._without_grpo_kl_loss():
            loss = super()._compute_loss(model, inputs)
        if training and self.state.global_step < self.args.critic_warmup_steps:
            # Critic warm-up: the actor gets a zero gradient and a zero learning rate for this optimizer step, so
            # neither the update nor AdamW's decoupled weight decay moves it (the scheduler restores the lr after).
            loss = loss * 0.0
            for group in self.optimizer.param_groups:
                group["lr"] = 0.0
        return loss

    def _critic_training_step(self, inputs: dict[str, Any]) -> None:
        """Forward/backward the critic on this micro-batch; step it at the same boundaries as the policy."""
        prompt_ids, prompt_mask = inputs["prompt_ids"], inputs["prompt_mask"]
        completion_ids, completion_mask = inputs["completion_ids"], inputs["completion_mask"]
        input_ids = torch.cat([prompt_ids, completion_ids], dim=1)
        attention_mask = torch.cat([prompt_mask, completion_mask], dim=1)
        sync = self.accelerator.sync_gradients
        accumulation = self.current_gradient_accumulation_steps
        deepspeed = self.accelerator.distributed_type == DistributedType.DEEPSPEED
        self.critic.train()
        no_sync = contextlib.nullcontext() if (sync or deepspeed) else self.accelerator.no_sync(self.critic)
        with no_sync:
            values = self._critic_forward(input_ids, attention_mask, completion_ids.size(1))
            vf_loss, vf_clipfrac = clipped_value_loss(
                values, inputs["old_values"], inputs["returns"], inputs["value_mask"], self.args.cliprange_value
            )
            scaled = vf_loss / accumulation
            if deepspeed:
                self.critic.set_gradient_accumulation_boundary(is_boundary=sync)
                self.critic.backward(scaled, scale_wrt_gas=False)
            else:
                scaled.backward()
        metrics = self._metrics["train"]
        metrics["critic/vf_loss"].append(self.accelerator.gather(vf_loss.detach()).mean().item())
        metrics["critic/vf_clipfrac"].append(self.accelerator.gather(vf_clipfrac.detach()).mean().item())
        if not sync:
            return
        if deepspeed:
            self.critic.step()
            grad_norm = self.critic.get_global_grad_norm()
        else:
            grad_norm = None
            if self.args.max_grad_norm and self.args.max_grad_norm > 0:
                grad_norm = torch.nn.utils.clip_grad_norm_(
                    [p for p in self.critic.parameters() if p.requires_grad], self.args.max_grad_norm
                )
            self.critic_optimizer.step()
            self.critic_optimizer.zero_grad(set_to_none=True)
        metrics["critic/lr"].append(self.critic_lr_scheduler.get_last_lr()[0])
        self.critic_lr_scheduler.step()
        if grad_norm is not None:
            metrics["critic/grad_norm"].append(float(grad_norm))

    # ------------------------------------------------------------------------------------ checkpoints (resume)

    def _save_checkpoint(self, model, trial):
        super()._save_checkpoint(model, trial)
        checkpoint = os.path.join(
            self._get_output_dir(trial=trial), f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        )
        self._save_critic_state(os.path.join(checkpoint, CRITIC_DIRNAME))

    def _save_critic_state(self, directory: str) -> None:
        """Save what resuming needs: the critic's trainable weights, its optimizer and its scheduler."""
        os.makedirs(directory, exist_ok=True)
        if self.is_deepspeed_enabled:
            self.critic.save_checkpoint(directory, exclude_frozen_parameters=True)
        elif self.accelerator.is_main_process:
            critic = self.accelerator.unwrap_model(self.critic)
            trainable = {name: p.detach().cpu() for name, p in critic.named_parameters() if p.requires_grad}
            torch.save(trainable, os.path.join(directory, CRITIC_WEIGHTS_NAME))
            if not self.args.save_only_model:
                torch.save(self.critic_optimizer.state_dict(), os.path.join(directory, CRITIC_OPTIMIZER_NAME))
        if self.accelerator.is_main_process and not self.args.save_only_model:
            torch.save(self.critic_lr_scheduler.state_dict(), os.path.join(directory, CRITIC_SCHEDULER_NAME))

    def _load_critic_state(self, checkpoint: str) -> None:
        directory = os.path.join(checkpoint, CRITIC_DIRNAME)
        if not os.path.isdir(directory):
            logger.warning(
                "Resuming from %s, which has no %s/ folder: the critic restarts from its initial weights.",
                checkpoint,
                CRITIC_DIRNAME,
            )
            return
        if self.is_deepspeed_enabled:
            load_path, _ = self.critic.load_checkpoint(
                directory,
                load_module_strict=False,
                load_optimizer_states=not self.args.save_only_model,
                load_lr_scheduler_states=False,
            )
            if load_path is None:
                raise ValueError(f"{directory} holds no DeepSpeed checkpoint of the critic (no 'latest' tag).")
        else:
            critic = self.accelerator.unwrap_model(self.critic)
            state = torch.load(os.path.join(directory, CRITIC_WEIGHTS_NAME), map_location="cpu", weights_only=True)
            trainable = {name for name, p in critic.named_parameters() if p.requires_grad}
            missing = sorted(trainable - set(state))
            unexpected = sorted(set(state) - trainable)
            if missing or unexpected:
                raise ValueError(
                    f"{directory}/{CRITIC_WEIGHTS_NAME} does not match the critic: missing {missing[:5]}, "
                    f"unexpected {unexpected[:5]}."
                )
            critic.load_state_dict(state, strict=False)
            optimizer_path = os.path.join(directory, CRITIC_OPTIMIZER_NAME)
            if os.path.isfile(optimizer_path):
                self.critic_optimizer.load_state_dict(
                    torch.load(optimizer_path, map_location="cpu", weights_only=True)
                )
        scheduler_path = os.path.join(directory, CRITIC_SCHEDULER_NAME)
        if os.path.isfile(scheduler_path):
            self.critic_lr_scheduler.load_state_dict(torch.load(scheduler_path, weights_only=True))
        logger.info("critic state restored from %s", directory)


# --------------------------------------------------------------------------------------------------------------------
# Recipe support: parsing and pre-flight checks of recipes/ppo_cold_start.py
# --------------------------------------------------------------------------------------------------------------------


def make_ppo_parser() -> Any:
    """Parser for PPO entry points: the GRPO recipe's script, data and reward options, ``PPOConfig``, ``ModelConfig``."""
    from trl import ModelConfig, TrlParser

    from toolrl_trl.configs import GRPOScriptArguments
    from toolrl_trl.data import DataConfig
    from toolrl_trl.rewards import RewardConfig

    return TrlParser((GRPOScriptArguments, DataConfig, RewardConfig, PPOConfig, ModelConfig))


def parse_ppo_args(argv: list[str] | None = None, world_size: int | None = None) -> tuple:
    """Parse ``--config`` YAML + flags like ``configs.parse_grpo_args`` (one rollout per prompt is allowed)."""
    from toolrl_trl.configs import parse_rl_args

    return parse_rl_args(make_ppo_parser, argv, world_size, min_generations=1)
