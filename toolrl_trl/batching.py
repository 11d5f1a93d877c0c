"""The paper's batch geometry expressed in TRL 1.16's GRPO batch semantics.

The reference (veRL) trains on rounds of ``prompts_per_round`` prompts x ``num_generations`` rollouts
(512 x 4 = 2048 completions), updating the policy in ``updates_per_round`` mini-batches (4 x 512
completions). TRL counts differently:

* one *micro-step* (``training_step`` call) consumes ``per_device_train_batch_size`` completions per process;
* one *optimizer step* = ``per_device_train_batch_size x world_size x gradient_accumulation_steps`` completions;
* one *generation round* = ``generation_batch_size = per_device_train_batch_size x world_size x
  steps_per_generation`` completions, where ``steps_per_generation`` counts micro-steps.

So the paper's round is reproduced by ``per_device x world x GA = 2048 / 4 = 512`` and
``steps_per_generation = 4 x GA``. This module computes those values for a world size and checks a
``GRPOConfig`` against them before any model is loaded, so a mis-sized launch fails in seconds with a fix.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from toolrl_trl.cli import UserError

logger = logging.getLogger(__name__)


class BatchingError(UserError, ValueError):
    """The batch settings do not reproduce the requested generation round; the message says what to change."""


@dataclass(frozen=True)
class BatchPlan:
    """Per-process batch settings that reproduce one generation round of the target geometry."""

    per_device_train_batch_size: int
    gradient_accumulation_steps: int
    steps_per_generation: int
    world_size: int
    num_generations: int

    @property
    def completions_per_update(self) -> int:
        """Completions in one optimizer step, summed over processes."""
        return self.per_device_train_batch_size * self.world_size * self.gradient_accumulation_steps

    @property
    def generation_batch_size(self) -> int:
        """Completions generated per round, summed over processes (TRL's ``generation_batch_size``)."""
        return self.per_device_train_batch_size * self.world_size * self.steps_per_generation

    @property
    def prompts_per_round(self) -> int:
        return self.generation_batch_size // self.num_generations

    @property
    def updates_per_round(self) -> int:
        return self.steps_per_generation // self.gradient_accumulation_steps

    def describe(self) -> str:
        """One line of arithmetic, for logs and recipe comments."""
        return (
            f"{self.prompts_per_round} prompts x {self.num_generations} rollouts = {self.generation_batch_size} "
            f"completions per round = {self.updates_per_round} optimizer steps x {self.completions_per_update} "
            f"(per_device_train_batch_size {self.per_device_train_batch_size} x world size {self.world_size} x "
            f"gradient_accumulation_steps {self.gradient_accumulation_steps}); "
            f"steps_per_generation {self.steps_per_generation}"
        )


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _check_targets(prompts_per_round: int, num_generations: int, updates_per_round: int, min_generations: int) -> int:
    """Validate the target geometry itself and return the completions per optimizer step.

    ``min_generations`` is 2 for GRPO (its advantage compares rollouts of one prompt) and 1 for PPO (the critic
    is the baseline).
    """
    for name, value in (
        ("prompts_per_generation_round", prompts_per_round),
        ("num_generations", num_generations),
        ("updates_per_generation_round", updates_per_round),
    ):
        if not isinstance(value, int) or value < 1:
            raise BatchingError(f"{name} must be a positive integer, got {value!r}.")
    if num_generations < min_generations:
        raise BatchingError(
            f"num_generations must be at least {min_generations} (GRPO's group advantages compare rollouts of one "
            f"prompt), got {num_generations}."
        )
    if prompts_per_round % updates_per_round:
        raise BatchingError(
            f"prompts_per_generation_round ({prompts_per_round}) must be divisible by updates_per_generation_round "
            f"({updates_per_round}) so that every optimizer step holds whole prompt groups; valid update counts: "
            f"{_divisors(prompts_per_round)[:12]}."
        )
    return prompts_per_round * num_generations // updates_per_round


def compute_batching(
    world_size: int,
    per_device_train_batch_size: int,
    *,
    prompts_per_round: int = 512,
    num_generations: int = 4,
    updates_per_round: int = 4,
    min_generations: int = 2,
) -> BatchPlan:
    """Gradient accumulation and ``steps_per_generation`` reproducing the target round on ``world_size`` processes.

    Raises `BatchingError` naming the per-device batch sizes that would work when the requested one does not.
    """
    if world_size < 1:
        raise BatchingError(f"world size must be at least 1, got {world_size}.")
    if per_device_train_batch_size < 1:
        raise BatchingError(f"per_device_train_batch_size must be at least 1, got {per_device_train_batch_size}.")
    per_update = _check_targets(prompts_per_round, num_generations, updates_per_round, min_generations)
    per_micro_step = per_device_train_batch_size * world_size
    if per_update % per_micro_step:
        if per_update % world_size:
            fix = (
                f"No per-device batch size fits: use a world size that divides {per_update} "
                f"(e.g. {[d for d in _divisors(per_update) if d <= 64]}), or change the targets."
            )
        else:
            options = _divisors(per_update // world_size)
            fix = f"Use a per_device_train_batch_size in {options[:16]}."
        raise BatchingError(
            f"One optimizer step must hold {per_update} completions ({prompts_per_round} prompts x {num_generations} "
            f"rollouts / {updates_per_round} updates), which is not divisible by per_device_train_batch_size "
            f"{per_device_train_batch_size} x world size {world_size} = {per_micro_step}. {fix}"
        )
    accumulation = per_update // per_micro_step
    return BatchPlan(
        per_device_train_batch_size=per_device_train_batch_size,
        gradient_accumulation_steps=accumulation,
        steps_per_generation=updates_per_round * accumulation,
        world_size=world_size,
        num_generations=num_generations,
    )


def validate_batching(
    args,
    world_size: int,
    *,
    prompts_per_round: int = 512,
    updates_per_round: int = 4,
    min_generations: int = 2,
) -> BatchPlan:
    """Check a parsed ``GRPOConfig`` (or ``PPOConfig``) against the target round on ``world_size`` processes; return its plan.

    ``args`` needs ``per_device_train_batch_size``, ``gradient_accumulation_steps``, ``steps_per_generation`` and
    ``num_generations`` (a ``GRPOConfig``). ``generation_batch_size`` is not read: ``GRPOConfig`` derives it from
    the world size of the process that parsed it, which is not ``world_size`` when a recipe is checked for another
    GPU count. The message of every error says which values to set, computed for this world size.
    """
    num_generations = args.num_generations
    per_update = _check_targets(prompts_per_round, num_generations, updates_per_round, min_generations)
    per_device = args.per_device_train_batch_size
    accumulation = args.gradient_accumulation_steps
    steps_per_generation = args.steps_per_generation
    if steps_per_generation is None:  # a config not yet through GRPOConfig.__post_init__
        steps_per_generation = accumulation
    generation_batch = per_device * world_size * steps_per_generation
    target_round = prompts_per_round * num_generations

    def fix() -> str:
        try:
            plan = compute_batching(
                world_size,
                per_device,
                prompts_per_round=prompts_per_round,
                num_generations=num_generations,
                updates_per_round=updates_per_round,
                min_generations=min_generations,
            )
        except BatchingError as err:
            return str(err)
        return (
            f"Set gradient_accumulation_steps: {plan.gradient_accumulation_steps} and steps_per_generation: "
            f"{plan.steps_per_generation} (and leave generation_batch_size unset), or pass --auto_batch true."
        )

    global_batch = per_device * world_size * accumulation
    if global_batch % num_generations:
        raise BatchingError(
            f"global batch {global_batch} (per_device_train_batch_size {per_device} x world size {world_size} x "
            f"gradient_accumulation_steps {accumulation}) is not divisible by num_generations ({num_generations}): "
            f"an optimizer step would split prompt groups. {fix()}"
        )
    if global_batch != per_update:
        raise BatchingError(
            f"one optimizer step holds {global_batch} completions (per_device_train_batch_size {per_device} x world "
            f"size {world_size} x gradient_accumulation_steps {accumulation}) but the target is {per_update} "
            f"({prompts_per_round} prompts x {num_generations} rollouts / {updates_per_round} updates per round). "
            f"{fix()}"
        )
    if generation_batch != target_round or steps_per_generation != updates_per_round * accumulation:
        raise BatchingError(
            f"a generation round holds {generation_batch} completions (per_device_train_batch_size {per_device} x "
            f"world size {world_size} x steps_per_generation {steps_per_generation}) but the target is "
            f"{prompts_per_round} prompts x {num_generations} rollouts = {target_round}, i.e. steps_per_generation = "
            f"{updates_per_round} updates x gradient_accumulation_steps {accumulation}. {fix()}"
        )
    return BatchPlan(
        per_device_train_batch_size=per_device,
        gradient_accumulation_steps=accumulation,
        steps_per_generation=steps_per_generation,
        world_size=world_size,
        num_generations=num_generations,
    )


def get_world_size() -> int:
    """Number of training processes, from accelerate's state (set up by ``accelerate launch`` or torchrun)."""
    from accelerate import PartialState

    return PartialState().num_processes
