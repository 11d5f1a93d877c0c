"""The KL penalty inside the reward, as the paper's code applies it: shared by PPO (``ppo``) and GRPO (``grpo``).

The paper's numbers come from a veRL fork run with ``use_kl_loss=False``. With that flag the fork never adds a KL
term to the loss; instead ``apply_kl_penalty`` (verl/trainer/ppo/ray_trainer.py) puts it into the reward, per token:

    kl_t = log pi_old(y_t | y_<t) - log pi_ref(y_t | y_<t)             (the k1 estimate, ``kl_penalty: kl``)
    r_t  = score * [t is the last completion token] - kl_coef * kl_t    (fixed controller, ``kl_coef: 0.001``)

``pi_old`` is the policy that sampled the round, its log-probs recomputed by the trainer right after generation
(the fork's ``old_log_probs``, temperature-scaled, before any update of the round); ``pi_ref`` is the frozen initial
model. PPO runs GAE over the ``r_t``; GRPO sums them into the sequence score before its group normalisation.

This module holds the arithmetic (pure functions, tested against hand computations) and ``RewardKLTrainer``, the
``GRPOTrainer`` subclass both trainers derive from. It obtains the two log-probs from TRL itself: GRPOTrainer builds
a reference (a frozen copy; with LoRA the adapter-disabled policy, or a frozen "ref" copy of a pretrained adapter)
and computes its per-token log-probs at generation time iff ``beta != 0``. ``RewardKLTrainer`` borrows that path by
setting ``beta`` to the in-reward coefficient, and switches it off around TRL's loss so that GRPO's own KL *loss*
term is never added. The old log-probs are TRL's ``old_per_token_logps`` (computed at generation time whenever a
round spans several optimizer steps, or under vLLM), else computed here with the same forward.

The private TRL API this module relies on is listed in ``TRL_PRIVATE_API`` below (checked against the installed TRL
by tests/test_trl_private_api.py).
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from trl import GRPOTrainer
from trl.models.utils import disable_gradient_checkpointing

# --------------------------------------------------------------------------------------------------------------------
# The private API of TRL (and transformers) the trainers of this project rely on
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PrivateMethod:
    """A private method of a TRL/transformers class that a trainer here overrides or calls.

    ``use`` is ``"override"`` (the subclass redefines it with exactly ``parameters``) or ``"call"`` (the subclass calls
    it passing ``parameters``, which must be its leading parameters, in that order).
    """

    owner: type
    name: str
    parameters: tuple[str, ...]
    use: str

    def describe(self) -> str:
        return f"{self.owner.__name__}.{self.name}({', '.join(self.parameters)}) [{self.use}]"


@dataclass(frozen=True)
class PrivateAttribute:
    """An attribute that a TRL/transformers/accelerate class sets (``self.<name> = ...`` in its source) and a trainer here reads."""

    owner: type
    name: str

    def describe(self) -> str:
        return f"{self.owner.__name__}.{self.name}"


def check_private_api(entries: tuple[PrivateMethod | PrivateAttribute, ...]) -> list[str]:
    """Problems of ``entries`` against the installed libraries (empty when everything is as expected)."""
    problems = []
    for entry in entries:
        if isinstance(entry, PrivateAttribute):
            source = inspect.getsource(entry.owner)
            if f"self.{entry.name} =" not in source and f"self.{entry.name}:" not in source:
                problems.append(f"{entry.describe()}: {entry.owner.__name__} no longer sets self.{entry.name}")
            continue
        method = getattr(entry.owner, entry.name, None)
        if method is None:
            problems.append(f"{entry.describe()}: no such method in {entry.owner.__module__}")
            continue
        actual = tuple(inspect.signature(method).parameters)
        if entry.use == "override":
            expected_ok = actual == entry.parameters
        elif entry.use == "call":
            expected_ok = actual[: len(entry.parameters)] == entry.parameters
        else:
            raise ValueError(f"{entry.describe()}: use must be 'override' or 'call', got {entry.use!r}")
        if not expected_ok:
            problems.append(f"{entry.describe()}: the installed signature is ({', '.join(actual)})")
    return problems


#: Private GRPOTrainer API that ``RewardKLTrainer`` overrides, calls or reads.
TRL_PRIVATE_API: tuple[PrivateMethod | PrivateAttribute, ...] = (
    PrivateMethod(
        GRPOTrainer,
        "_calculate_rewards",
        ("self", "inputs", "prompts", "completions", "completion_ids_list"),
        "override",
    ),
    PrivateMethod(GRPOTrainer, "_generate_and_score_completions", ("self", "inputs"), "override"),
    PrivateMethod(GRPOTrainer, "_compute_loss", ("self", "model", "inputs"), "override"),
    PrivateMethod(
        GRPOTrainer,
        "_get_per_token_logps_and_entropies",
        ("self", "model", "input_ids", "attention_mask", "logits_to_keep", "batch_size"),
        "call",
    ),
    # beta != 0 at construction builds the reference model; at generation it computes ref_per_token_logps
    PrivateAttribute(GRPOTrainer, "beta"),
    PrivateAttribute(GRPOTrainer, "ref_model"),
    PrivateAttribute(GRPOTrainer, "reward_weights"),
    PrivateAttribute(GRPOTrainer, "_metrics"),
    PrivateAttribute(GRPOTrainer, "_logs"),
)


# --------------------------------------------------------------------------------------------------------------------
# Pure functions: tested against hand computations
# --------------------------------------------------------------------------------------------------------------------

#: Added to the group std by the fork's ``compute_grpo_outcome_advantage`` (TRL's own GRPO adds 1e-4).
FORK_STD_EPSILON = 1e-6


def last_valid_index(mask: torch.Tensor) -> torch.Tensor:
    """Index of the last non-zero entry of each row of ``mask`` (B, T); -1 for an all-zero row."""
    mask = mask.bool()
    length = mask.size(1)
    last = length - 1 - mask.flip(dims=[1]).float().argmax(dim=1)
    return torch.where(mask.any(dim=1), last, torch.full_like(last, -1))


def per_token_kl(logprobs: torch.Tensor, ref_logprobs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The k1 estimate ``logprobs - ref_logprobs`` on the masked-in tokens, zero elsewhere (float32 or ``mask``'s dtype)."""
    mask = mask.to(mask.dtype if mask.is_floating_point() else torch.float32)
    return (logprobs - ref_logprobs).to(mask.dtype) * mask


def weighted_scores(rewards_per_func: torch.Tensor, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sequence scores as GRPO combines its reward functions: the weighted sum, a None (NaN) reward counting as 0.

    Returns ``(scores, scorable)``; ``scorable`` is False where every reward function returned None.
    """
    scorable = ~torch.isnan(rewards_per_func).all(dim=1)
    scores = (rewards_per_func * weights.to(rewards_per_func.device).unsqueeze(0)).nansum(dim=1)
    return scores, scorable


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
        kl = per_token_kl(logprobs, ref_logprobs, mask)
    else:
        kl = torch.zeros_like(mask)
    rewards = -kl_coef * kl
    last = last_valid_index(mask)
    rows = torch.nonzero(last >= 0, as_tuple=True)[0]
    rewards[rows, last[rows]] += scores[rows].to(rewards.dtype)
    return rewards, kl


def _nan_std(x: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Unbiased (Bessel-corrected, like ``torch.std``) standard deviation ignoring NaNs; NaN with < 2 values."""
    if dim is None:
        x, dim = x.reshape(1, -1), 1
    count = (~torch.isnan(x)).sum(dim=dim, keepdim=True)
    mean = torch.nanmean(x, dim=dim, keepdim=True)
    squares = torch.nansum((x - mean) ** 2, dim=dim, keepdim=True)
    variance = torch.where(count > 1, squares / (count - 1).clamp(min=1), torch.full_like(squares, float("nan")))
    return variance.sqrt()


def grpo_kl_reward_advantages(
    task_scores: torch.Tensor,
    kl_sums: torch.Tensor,
    kl_coef: float,
    num_generations: int,
    scale_rewards: str = "group",
    epsilon: float = FORK_STD_EPSILON,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The fork's GRPO advantage with the KL in the reward (``compute_grpo_outcome_advantage``).

    ``s_i = task_i - kl_coef * sum_t kl_{i,t}`` (the sum of the token rewards ``r_t``), then per prompt group of
    ``num_generations`` consecutive completions ``A_i = (s_i - mean(s)) / (std(s) + epsilon)`` with the unbiased std,
    as ``torch.std`` computes it. ``scale_rewards`` follows TRL's meaning: ``"group"`` (the fork's), ``"batch"`` (one
    std over all completions) or ``"none"`` (no division). A NaN task score (no reward function scored the completion)
    is left out of its group's statistics and gets advantage 0, as in TRL.

    Args:
        task_scores: (N,) weighted sum of the reward functions per completion, NaN for unscorable ones.
        kl_sums: (N,) ``sum_t (log pi_old - log pi_ref)`` over each completion's tokens.

    Returns:
        ``(advantages, scores, tied)``: (N,) advantages, (N,) KL-penalised scores ``s_i``, and (N / num_generations,)
        booleans, True for groups whose (scorable) task scores are all equal, whose advantages then come from the
        KL alone.
    """
    if task_scores.shape != kl_sums.shape or task_scores.dim() != 1:
        raise ValueError(
            f"grpo_kl_reward_advantages: task_scores {tuple(task_scores.shape)} and kl_sums {tuple(kl_sums.shape)} "
            "must be the same 1-D shape."
        )
    if num_generations < 1 or task_scores.numel() % num_generations != 0:
        raise ValueError(
            f"grpo_kl_reward_advantages: {task_scores.numel()} completions do not split into groups of "
            f"num_generations={num_generations}."
        )
    scores = task_scores.float() - kl_coef * kl_sums.float()
    grouped = scores.view(-1, num_generations)
    centred = grouped - torch.nanmean(grouped, dim=1, keepdim=True)
    if scale_rewards == "group":
        advantages = centred / (_nan_std(grouped, dim=1) + epsilon)
    elif scale_rewards == "batch":
        advantages = centred / (_nan_std(scores) + epsilon)
    elif scale_rewards == "none":
        advantages = centred
    else:
        raise ValueError(f"scale_rewards must be one of 'group', 'batch', 'none', got {scale_rewards!r}.")
    advantages = torch.nan_to_num(advantages.reshape(-1), nan=0.0)

    task = task_scores.float().view(-1, num_generations)
    valid = ~torch.isnan(task)
    highest = torch.where(valid, task, torch.full_like(task, -torch.inf)).amax(dim=1)
    lowest = torch.where(valid, task, torch.full_like(task, torch.inf)).amin(dim=1)
    tied = valid.any(dim=1) & (highest == lowest)
    return advantages, scores, tied


# --------------------------------------------------------------------------------------------------------------------
# The trainer base: reference model, both log-probs at generation time, no KL loss
# --------------------------------------------------------------------------------------------------------------------


class RewardKLTrainer(GRPOTrainer):
    """``GRPOTrainer`` whose KL penalty lives in the reward (``reward_kl_coef``), never in the loss.

    With ``reward_kl_coef > 0`` it builds TRL's reference model, has both per-token log-probs ready after generation
    (``_policy_and_reference_logps``), skips the reference forward during evaluation, and keeps TRL's ``beta`` KL
    loss off. With ``reward_kl_coef == 0`` it is ``GRPOTrainer`` unchanged (``beta``, if set, works as in TRL).
    Subclasses turn the log-probs into advantages in ``_generate_and_score_completions``.
    """

    def __init__(
        self,
        model: Any,
        reward_funcs: Any = None,
        args: Any = None,
        train_dataset: Any = None,
        eval_dataset: Any = None,
        processing_class: Any = None,
        reward_processing_classes: Any = None,
        callbacks: Any = None,
        optimizers: tuple[Any, Any] = (None, None),
        peft_config: Any = None,
        *,
        reward_kl_coef: float = 0.0,
        **kwargs: Any,
    ):
        if reward_kl_coef < 0.0:
            raise ValueError(
                f"{type(self).__name__}: the in-reward KL coefficient must be >= 0, got {reward_kl_coef}."
            )
        if reward_kl_coef > 0.0 and (args is None or args.beta != 0.0):
            raise ValueError(
                f"{type(self).__name__}: the KL penalty is in the reward (coefficient {reward_kl_coef}); TRL's beta "
                f"(a KL loss term, got {getattr(args, 'beta', None)}) must be 0 and an explicit config given."
            )
        self.reward_kl_coef = reward_kl_coef
        self._last_rewards_per_func: torch.Tensor | None = None
        # GRPOTrainer builds the reference and computes its log-probs at generation time iff beta != 0: borrow that
        # path. self.beta keeps the coefficient (generation reads it); args.beta is restored, and `_compute_loss`
        # switches self.beta off so GRPO never adds its KL loss.
        if reward_kl_coef > 0.0:
            args.beta = reward_kl_coef
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
            if reward_kl_coef > 0.0:
                args.beta = 0.0

    @contextlib.contextmanager
    def _grpo_kl_loss_off(self) -> Iterator[None]:
        """``self.beta = 0`` inside: TRL then neither adds ``beta * KL`` to the loss nor runs the reference forward."""
        beta, self.beta = self.beta, 0.0
        try:
            yield
        finally:
            self.beta = beta

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        # Keep the raw rewards (gathered over processes): the subclasses recompute the advantages from them.
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        self._last_rewards_per_func = rewards_per_func
        return rewards_per_func

    def _generate_and_score_completions(self, inputs):
        if self.reward_kl_coef == 0.0 or self.model.training:
            return super()._generate_and_score_completions(inputs)
        with self._grpo_kl_loss_off():  # evaluation reports rewards; no reference forward
            return super()._generate_and_score_completions(inputs)

    def _compute_loss(self, model, inputs):
        if self.reward_kl_coef == 0.0:
            return super()._compute_loss(model, inputs)
        with self._grpo_kl_loss_off():
            return super()._compute_loss(model, inputs)

    # ------------------------------------------------------------------------------------------------ helpers

    @staticmethod
    def _loss_mask(output: dict[str, Any]) -> torch.Tensor:
        """The completion tokens the policy produced (tool output excluded), as float."""
        mask = output["completion_mask"]
        if "tool_mask" in output:
            mask = mask * output["tool_mask"]
        return mask.float()

    def _local_rewards_per_func(self, batch: int) -> torch.Tensor:
        """This process's rows of the gathered rewards of the current generation batch."""
        if self._last_rewards_per_func is None:
            raise RuntimeError(f"{type(self).__name__}: no rewards were computed for this generation batch.")
        start = self.accelerator.process_index * batch
        return self._last_rewards_per_func[start : start + batch].to(self.accelerator.device)

    def _policy_and_reference_logps(self, output: dict[str, Any]) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """``(old_per_token_logps, ref_per_token_logps)`` of a training generation batch; both None when the coefficient is 0.

        The reference log-probs are taken out of ``output`` (the loss does not use them). The old ones are TRL's when it
        computed them; otherwise they are computed here, with the policy before any update of this round, and stored
        in ``output`` (the loss's importance ratio then uses them too, as it does when TRL computes them).
        """
        old_logps = output.get("old_per_token_logps")
        ref_logps = output.pop("ref_per_token_logps", None)
        if self.reward_kl_coef == 0.0:
            return old_logps, None
        if ref_logps is None:
            raise RuntimeError(
                f"{type(self).__name__}: GRPOTrainer returned no ref_per_token_logps although beta was set to the "
                "in-reward KL coefficient; the installed TRL may have changed (see tests/test_trl_private_api.py)."
            )
        if old_logps is None:
            # GRPO skips these when the round is spent in a single optimizer step; the KL-in-reward needs them.
            prompt_ids, completion_ids = output["prompt_ids"], output["completion_ids"]
            input_ids = torch.cat([prompt_ids, completion_ids], dim=1)
            attention_mask = torch.cat([output["prompt_mask"], output["completion_mask"]], dim=1)
            with torch.no_grad(), disable_gradient_checkpointing(self.model, self.args.gradient_checkpointing_kwargs):
                old_logps, _, _ = self._get_per_token_logps_and_entropies(
                    self.model,
                    input_ids,
                    attention_mask,
                    completion_ids.size(1),
                    batch_size=self.args.per_device_train_batch_size,
                )
            output["old_per_token_logps"] = old_logps
        return old_logps, ref_logps

    def _sum_over_processes(self, tensor: torch.Tensor) -> torch.Tensor:
        return self.accelerator.reduce(tensor, reduction="sum") if self.accelerator.num_processes > 1 else tensor

    def _global_masked_mean(self, x: torch.Tensor, mask: torch.Tensor) -> float:
        totals = self._sum_over_processes(torch.stack([(x * mask).sum(), mask.sum()]).float())
        return (totals[0] / totals[1].clamp(min=1.0)).item()

    def _replace_logged_advantages(self, values: list[float]) -> None:
        """Show ``values`` (one per completion of the generation batch, all processes) in the completions table."""
        logged = self._logs["advantages"]
        for _ in range(min(len(values), len(logged))):
            logged.pop()
        logged.extend(values)
