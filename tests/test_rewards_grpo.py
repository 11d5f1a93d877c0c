"""The reward callables inside a real (tiny, CPU) GRPOTrainer run: names, diagnostics and the schedule step."""

from __future__ import annotations

import pytest

from toolrl_trl.rewards import METRIC_NAMES, RewardConfig, generation_round, get_reward_funcs

GROUND_TRUTH = (
    "<think> The user wants the weather. </think>\n<tool_call>\n"
    '{"name": "get_weather", "parameters": {"city": "Paris"}}\n</tool_call>'
)


def _dataset(rows: int):
    from datasets import Dataset

    return Dataset.from_list(
        [
            {
                "prompt": [
                    {"role": "system", "content": "You can call get_weather(city)."},
                    {"role": "user", "content": f"What is the weather in city number {index}?"},
                ],
                "ground_truth": GROUND_TRUTH,
            }
            for index in range(rows)
        ]
    )


@pytest.mark.parametrize(
    ("accumulation", "per_generation", "iterations", "max_steps", "expected"),
    [
        # 4 micro-steps per round, 2 per optimizer step: rounds 1, 2, 3 generated at global steps 0, 2, 4
        (2, 4, 1, 6, [(0, 1), (2, 2), (4, 3)]),
        # the same cadence reached through num_iterations (2 micro-steps x 2 passes per round); opt-in to keep the
        # default suite fast (the unit test of generation_round covers the arithmetic)
        pytest.param(2, 2, 2, 4, [(0, 1), (2, 2)], marks=pytest.mark.slow),
    ],
)
def test_grpo_logs_rewards_diagnostics_and_sees_generation_rounds(
    tmp_path, tiny_model_dir, accumulation, per_generation, iterations, max_steps, expected
):
    from trl import GRPOConfig, GRPOTrainer

    args = GRPOConfig(
        output_dir=str(tmp_path / "out"),
        use_cpu=True,
        bf16=False,
        report_to="none",
        max_steps=max_steps,
        per_device_train_batch_size=2,
        num_generations=2,
        gradient_accumulation_steps=accumulation,
        steps_per_generation=per_generation,
        num_iterations=iterations,
        max_completion_length=8,
        loss_type="grpo",
        logging_steps=1,
        save_strategy="no",
        seed=0,
    )
    # The switch at round 2 makes the step visible in the logged rewards: correctness bounds are -1/1 in
    # round 1 (3 / 3) and -3/3 from round 2 on; a random tiny model never writes a parseable call -> the minimum.
    config = RewardConfig(scale_schedule="two_stage", two_stage_switch_step=2, length_reward="fixed")
    seen: list[tuple[int, int]] = []

    def probe(completions, trainer_state=None, **kwargs):
        seen.append((trainer_state.global_step, generation_round(trainer_state.global_step, args)))
        return [0.0] * len(completions)

    trainer = GRPOTrainer(
        model=str(tiny_model_dir),
        reward_funcs=[*get_reward_funcs(config, args), probe],
        args=args,
        train_dataset=_dataset(8),
    )
    trainer.train()

    assert seen == expected
    generation_logs = [log for log in trainer.state.log_history if "rewards/correctness/mean" in log]
    assert len(generation_logs) == len(expected)
    for log in generation_logs:
        for name in ("rewards/format/mean", "rewards/length/mean", *METRIC_NAMES):
            assert name in log, name
        assert all(0.0 <= log[name] <= 1.0 for name in METRIC_NAMES)
    assert [log["rewards/correctness/mean"] for log in generation_logs] == [-1.0] + [-3.0] * (len(expected) - 1)
