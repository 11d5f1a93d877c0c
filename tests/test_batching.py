"""The paper's batch geometry (512 prompts x 4 rollouts per round, 4 updates) in TRL 1.16's batch semantics."""

from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from toolrl_trl.batching import BatchingError, BatchPlan, compute_batching, validate_batching


def grpo_args(per_device, accumulation, steps_per_generation, num_generations=4):
    return SimpleNamespace(
        per_device_train_batch_size=per_device,
        gradient_accumulation_steps=accumulation,
        steps_per_generation=steps_per_generation,
        num_generations=num_generations,
    )


@pytest.mark.parametrize(
    ("world_size", "per_device", "accumulation"),
    [(1, 8, 64), (4, 8, 16), (8, 4, 16), (8, 2, 32), (8, 8, 8), (16, 32, 1)],
)
def test_compute_batching_reproduces_the_reference_round(world_size, per_device, accumulation):
    plan = compute_batching(world_size, per_device)
    assert plan.gradient_accumulation_steps == accumulation
    assert plan.steps_per_generation == 4 * accumulation
    assert plan.completions_per_update == 512  # 128 prompts x 4 rollouts per optimizer step
    assert plan.generation_batch_size == 2048  # 512 prompts x 4 rollouts per round
    assert plan.prompts_per_round == 512
    assert plan.updates_per_round == 4


@given(
    world_size=st.integers(1, 64),
    per_device=st.integers(1, 64),
    prompts=st.sampled_from([8, 16, 64, 128, 512, 1024]),
    generations=st.integers(2, 16),
    updates=st.sampled_from([1, 2, 4, 8]),
)
def test_compute_batching_plan_always_matches_targets_or_explains(
    world_size, per_device, prompts, generations, updates
):
    try:
        plan = compute_batching(
            world_size, per_device, prompts_per_round=prompts, num_generations=generations, updates_per_round=updates
        )
    except BatchingError as err:
        assert "per_device_train_batch_size" in str(err) or "world size" in str(err)
        return
    assert plan.generation_batch_size == prompts * generations
    assert plan.steps_per_generation == updates * plan.gradient_accumulation_steps
    # The plan passes the validator it was computed for.
    args = grpo_args(per_device, plan.gradient_accumulation_steps, plan.steps_per_generation, generations)
    assert validate_batching(args, world_size, prompts_per_round=prompts, updates_per_round=updates) == plan


def test_compute_batching_lists_valid_per_device_sizes():
    with pytest.raises(BatchingError, match=r"per_device_train_batch_size in \[1, 2, 4, 8, 16, 32, 64\]"):
        compute_batching(8, 3)


def test_compute_batching_rejects_world_size_that_cannot_divide_an_update():
    with pytest.raises(BatchingError, match="use a world size that divides 512"):
        compute_batching(6, 1)


def test_targets_must_give_whole_prompt_groups_per_update():
    with pytest.raises(BatchingError, match="must be divisible by updates_per_generation_round"):
        compute_batching(1, 1, prompts_per_round=6, updates_per_round=4)
    with pytest.raises(BatchingError, match="at least 2"):
        compute_batching(1, 1, num_generations=1)


def test_validate_accepts_the_reference_geometry():
    plan = validate_batching(grpo_args(4, 16, 64), 8)
    assert plan == BatchPlan(4, 16, 64, 8, 4)
    assert "512 prompts x 4 rollouts = 2048 completions per round = 4 optimizer steps x 512" in plan.describe()


def test_validate_names_the_fix_when_the_world_size_changes():
    # A recipe sized for 8 GPUs launched on 4: each update is half the target.
    with pytest.raises(BatchingError) as err:
        validate_batching(grpo_args(4, 16, 64), 4)
    message = str(err.value)
    assert "one optimizer step holds 256 completions" in message
    assert "gradient_accumulation_steps: 32 and steps_per_generation: 128" in message
    assert "--auto_batch true" in message


def test_validate_rejects_split_prompt_groups():
    with pytest.raises(BatchingError, match="global batch 6 .* not divisible by num_generations"):
        validate_batching(grpo_args(3, 2, 8), 1)


def test_validate_rejects_trl_default_steps_per_generation():
    # TRL's default steps_per_generation = gradient_accumulation_steps gives 1 update per round, not 4.
    with pytest.raises(BatchingError, match="a generation round holds 512 completions .* steps_per_generation = 4"):
        validate_batching(grpo_args(8, 16, 16), 4)


def test_validate_works_on_a_real_grpo_config():
    from trl import GRPOConfig

    args = GRPOConfig(
        output_dir="unused",
        per_device_train_batch_size=4,
        gradient_accumulation_steps=2,
        steps_per_generation=8,
        num_generations=4,
        use_cpu=True,
        bf16=False,
        activation_checkpointing=False,
        report_to="none",
    )
    plan = validate_batching(args, 1, prompts_per_round=8, updates_per_round=4)
    assert args.generation_batch_size == plan.generation_batch_size == 32
