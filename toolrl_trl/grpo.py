"""GRPO as the paper's code ran it: TRL's ``GRPOTrainer`` plus the KL penalty inside the reward (``kl_reward_coef``).

``ToolRLGRPOConfig`` is ``GRPOConfig`` with one more field, ``kl_reward_coef``. At 0 (the default)
``ToolRLGRPOTrainer`` is TRL's GRPO, number for number. Above 0 (the paper's code: 0.001) it reproduces the fork's
GRPO advantage (``compute_grpo_outcome_advantage`` after ``apply_kl_penalty``, see ``kl_reward``):

    s_i = sum_k w_k R_k(i) - kl_reward_coef * sum_t (log pi_old(y_it) - log pi_ref(y_it))
    A_i = (s_i - mean_group(s)) / (std_group(s) + 1e-6)          (unbiased std, as torch.std)

``pi_old`` is the policy that sampled the round (its log-probs recomputed by the trainer at generation time),
``pi_ref`` the frozen initial model (with LoRA, the adapter-disabled policy). Where TRL's GRPO gives every
completion of a group with tied task rewards advantage 0, the KL term breaks the tie: the advantages of such a group
are O(1) and driven by the KL alone. That is why the fork's epsilon matters: TRL divides by ``std + 1e-4``, which
would damp KL-only spreads of 1e-4 to 1e-3 by a factor of 2 to 10.

What differs from TRL's normalisation in this mode: the score includes the KL term; the epsilon is 1e-6 instead of
1e-4. What stays TRL's: ``scale_rewards`` ("group" is the fork's; "batch" and "none" keep TRL's meaning with the
fork's epsilon), completions no reward function scored (NaN) are left out of the statistics with advantage 0, and
the evaluation loss uses TRL's advantages (evaluation skips the reference forward).

Metrics, on top of TRL's (all on training generation batches, over all processes):

- ``kl``: mean per-token ``log pi_old - log pi_ref`` over completion tokens (the same quantity PPO logs as ``kl``);
- ``kl_reward/penalty_mean``: mean over completions of ``kl_reward_coef * sum_t kl_t``, what the KL took off scores;
- ``kl_reward/frac_tied_groups``: the share of prompt groups whose task rewards are all equal.

The private TRL API this module relies on is listed in ``TRL_PRIVATE_API`` below (and ``kl_reward.TRL_PRIVATE_API``
for the base class); tests/test_trl_private_api.py checks both against the installed TRL.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import torch
from trl import GRPOConfig, GRPOTrainer

from toolrl_trl import generation_budget as budget_lib
from toolrl_trl.generation_budget import GenerationBudget, check_subsample_geometry
from toolrl_trl.kl_reward import (
    PrivateAttribute,
    PrivateMethod,
    RewardKLTrainer,
    grpo_kl_reward_advantages,
    per_token_kl,
    weighted_scores,
)

logger = logging.getLogger(__name__)

#: Private GRPOTrainer API that ``ToolRLGRPOTrainer`` relies on beyond its base class ``RewardKLTrainer``.
TRL_PRIVATE_API: tuple[PrivateMethod | PrivateAttribute, ...] = (
    PrivateMethod(GRPOTrainer, "_generate_and_score_completions", ("self", "inputs"), "override"),
    PrivateAttribute(GRPOTrainer, "num_generations"),
    PrivateAttribute(GRPOTrainer, "scale_rewards"),
    PrivateAttribute(GRPOTrainer, "reward_weights"),
    PrivateAttribute(GRPOTrainer, "_metrics"),
    PrivateAttribute(GRPOTrainer, "_logs"),
    # generation_budget: the train sampler (TRL's RepeatSampler with skipped prompts left out) and what it is built from
    PrivateMethod(GRPOTrainer, "_get_train_sampler", ("self", "dataset"), "override"),
    PrivateAttribute(GRPOTrainer, "shuffle_dataset"),
    PrivateAttribute(GRPOTrainer, "num_iterations"),
)

#: Metric names this trainer adds to TRL's (training only, with kl_reward_coef > 0).
KL_METRIC = "kl"
PENALTY_METRIC = "kl_reward/penalty_mean"
TIED_GROUPS_METRIC = "kl_reward/frac_tied_groups"


@dataclass
class ToolRLGRPOConfig(GRPOConfig):
    """``GRPOConfig`` plus the paper code's KL penalty inside the reward (``kl_reward_coef``, off by default) and the
    generation budget (``generation_budget``, ``rollout_subsample``: off; see ``toolrl_trl.generation_budget``)."""

    kl_reward_coef: float = field(
        default=0.0,
        metadata={
            "help": "Coefficient of the KL penalty inside the reward, as the paper's code applied it with "
            "use_kl_loss=False: each completion's score becomes the task reward minus kl_reward_coef * "
            "sum_t (log pi_old - log pi_ref) before the group normalisation, which then divides by std + 1e-6 (the "
            "fork's; TRL's own uses 1e-4). The paper's code used 0.001 (algorithm.kl_ctrl.kl_coef). 0 (default) is "
            "TRL's GRPO unchanged. Needs beta: 0 (beta is TRL's KL loss term, a different thing)."
        },
    )
    generation_budget: bool = field(
        default=False,
        metadata={
            "help": "Skip, for the next epoch, prompts whose group had zero task-reward variance (all rollouts scored "
            "the same, so GRPO's advantage is 0) in each of the last budget_patience epochs they were generated in; "
            "each skipped prompt is re-checked with probability budget_recheck_rate per epoch. Off in the paper "
            "recipes. With kl_reward_coef > 0 a tied group still has KL-only advantages, which skipping drops. See "
            "toolrl_trl.generation_budget and docs/performance.md."
        },
    )
    budget_patience: int = field(
        default=1,
        metadata={
            "help": "generation_budget: epochs in a row with zero task-reward variance before a prompt is skipped."
        },
    )
    budget_recheck_rate: float = field(
        default=0.1,
        metadata={
            "help": "generation_budget: probability per epoch that a skipped prompt is generated anyway, so one that "
            "started to differ comes back (a re-check with a reward spread resets its count)."
        },
    )
    rollout_subsample: int = field(
        default=0,
        metadata={
            "help": "Generate num_generations rollouts per prompt but compute the loss on this many of them: those "
            "with the largest task-reward variance, advantages recomputed over them. Saves the policy's forward and "
            "backward on the rest, not generation. 0 (default): off. Needs whole groups on each process and "
            "per_device_train_batch_size x rollout_subsample divisible by num_generations."
        },
    )

    def __post_init__(self):
        super().__post_init__()
        if self.kl_reward_coef < 0.0:
            raise ValueError(f"ToolRLGRPOConfig: kl_reward_coef must be >= 0, got {self.kl_reward_coef}.")
        if self.kl_reward_coef > 0.0 and self.beta != 0.0:
            raise ValueError(
                f"ToolRLGRPOConfig: kl_reward_coef={self.kl_reward_coef} puts the KL penalty into the reward, as the "
                f"paper's code did; beta={self.beta} would add TRL's KL loss on top. Set beta: 0 (or kl_reward_coef: "
                "0 to use TRL's KL loss instead)."
            )
        if self.kl_reward_coef > 0.0 and self.multi_objective_aggregation != "sum_then_normalize":
            raise ValueError(
                f"ToolRLGRPOConfig: kl_reward_coef > 0 subtracts the KL from the summed reward before the group "
                f"normalisation, so it needs multi_objective_aggregation: sum_then_normalize (got "
                f"{self.multi_objective_aggregation!r})."
            )
        GenerationBudget(self.budget_patience, self.budget_recheck_rate)  # validates both
        if self.rollout_subsample:
            if self.multi_objective_aggregation != "sum_then_normalize":
                raise ValueError(
                    "ToolRLGRPOConfig: rollout_subsample recomputes the advantages from the summed reward, so it needs "
                    f"multi_objective_aggregation: sum_then_normalize (got {self.multi_objective_aggregation!r})."
                )
            try:
                check_subsample_geometry(
                    self.num_generations,
                    self.rollout_subsample,
                    self.per_device_train_batch_size,
                    self.steps_per_generation,
                )
            except ValueError as err:
                raise ValueError(f"ToolRLGRPOConfig: {err}") from None


class ToolRLGRPOTrainer(RewardKLTrainer):
    """TRL's ``GRPOTrainer`` with the paper code's in-reward KL when ``args.kl_reward_coef > 0`` (see the module docstring).

    Same constructor as ``GRPOTrainer``. A plain ``GRPOConfig`` (no ``kl_reward_coef``) means coefficient 0.
    """

    def __init__(
        self,
        model: Any,
        reward_funcs: Any = None,
        args: GRPOConfig | None = None,
        train_dataset: Any = None,
        eval_dataset: Any = None,
        processing_class: Any = None,
        reward_processing_classes: Any = None,
        callbacks: Any = None,
        optimizers: tuple[Any, Any] = (None, None),
        peft_config: Any = None,
        **kwargs: Any,
    ):
        self.generation_budget: GenerationBudget | None = None
        if getattr(args, "generation_budget", False):
            self.generation_budget = GenerationBudget(args.budget_patience, args.budget_recheck_rate, args.seed)
            train_dataset = budget_lib.add_index_column(train_dataset)
        self._last_kl_sums: torch.Tensor | None = None
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
            reward_kl_coef=getattr(args, "kl_reward_coef", 0.0),
            **kwargs,
        )
        if self.reward_kl_coef > 0.0:
            logger.info(
                "KL penalty in the reward: kl_reward_coef=%g, reference %s",
                self.reward_kl_coef,
                "a frozen copy of the model" if self.ref_model is not None else "the adapter-disabled policy",
            )

    def _get_train_sampler(self, dataset=None):
        if self.generation_budget is None:
            return super()._get_train_sampler(dataset)
        return budget_lib.BudgetRepeatSampler(
            data_source=self.train_dataset if dataset is None else dataset,
            mini_repeat_count=self.num_generations,
            batch_size=self.args.generation_batch_size // self.num_generations,
            repeat_count=self.num_iterations * self.args.steps_per_generation,
            shuffle=self.shuffle_dataset,
            seed=self.args.seed,
            budget=self.generation_budget,
        )

    def _generate_and_score_completions(self, inputs):
        prompt_indices = budget_lib.pop_prompt_indices(inputs) if self.generation_budget is not None else None
        output = super()._generate_and_score_completions(inputs)
        if not self.model.training:
            return output
        self._last_kl_sums = None
        if self.reward_kl_coef != 0.0:
            output = self._add_kl_to_advantages(output)
        if prompt_indices is not None:
            budget_lib.record_generation_batch(self, prompt_indices)
        if getattr(self.args, "rollout_subsample", 0):
            output = budget_lib.subsample_rollouts(self, output, self._last_kl_sums)
        return output

    def _add_kl_to_advantages(self, output: dict[str, Any]) -> dict[str, Any]:
        """Replace GRPO's advantages by the fork's: group-normalised (task reward - coef * summed KL)."""
        old_logps, ref_logps = self._policy_and_reference_logps(output)
        mask = self._loss_mask(output)
        kl = per_token_kl(old_logps, ref_logps, mask)
        kl_sums = self.accelerator.gather(kl.sum(dim=1))
        self._last_kl_sums = kl_sums

        if self._last_rewards_per_func is None:
            raise RuntimeError("ToolRLGRPOTrainer: no rewards were computed for this generation batch.")
        task_scores, scorable = weighted_scores(self._last_rewards_per_func.to(kl.device), self.reward_weights)
        task_scores = torch.where(scorable, task_scores, torch.full_like(task_scores, float("nan")))
        advantages, _, tied = grpo_kl_reward_advantages(
            task_scores, kl_sums, self.reward_kl_coef, self.num_generations, self.scale_rewards
        )
        batch = output["completion_ids"].size(0)
        start = self.accelerator.process_index * batch
        output["advantages"] = advantages[start : start + batch].to(output["advantages"].dtype)

        metrics = self._metrics["train"]
        metrics[KL_METRIC].append(self._global_masked_mean(kl, mask))
        metrics[PENALTY_METRIC].append((self.reward_kl_coef * kl_sums).mean().item())
        metrics[TIED_GROUPS_METRIC].append(tied.float().mean().item())
        self._replace_logged_advantages(advantages.tolist())
        return output
