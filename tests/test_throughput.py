"""Throughput metrics in the logs (toolrl_trl.throughput): tokens generated, tokens/s, the split of a step's time."""

from __future__ import annotations

import pytest
from datasets import Dataset
from trl import GRPOConfig, GRPOTrainer

from toolrl_trl import throughput
from toolrl_trl.kl_reward import check_private_api


@pytest.mark.parametrize("entry", throughput.TRL_PRIVATE_API, ids=lambda e: e.describe())
def test_the_wrapped_trl_api_is_there(entry):
    assert check_private_api((entry,)) == []


def test_token_count_leaves_tool_output_out():
    assert throughput.completion_token_count((None, [[1, 2, 3], [4]], None)) == 4
    assert throughput.completion_token_count((None, [[1, 2, 3], [4]], [[1, 0, 1], [1]])) == 3


def _reward(completion_ids, **kwargs):
    return [float(sum(ids) % 5) for ids in completion_ids]


def test_a_tiny_run_logs_throughput(tiny_model_dir, tmp_path):
    args = GRPOConfig(
        output_dir=str(tmp_path),
        use_cpu=True,
        bf16=False,
        report_to=[],
        per_device_train_batch_size=8,
        num_generations=4,
        gradient_accumulation_steps=1,
        steps_per_generation=2,  # a round every second step: tokens per window differ
        max_completion_length=6,
        max_steps=4,
        logging_steps=2,
        save_strategy="no",
        disable_tqdm=True,
        seed=0,
    )
    rows = Dataset.from_dict({"prompt": [[{"role": "user", "content": f"Say {i}."}] for i in range(16)]})
    trainer = GRPOTrainer(model=str(tiny_model_dir), reward_funcs=_reward, args=args, train_dataset=rows)
    callback = throughput.attach(trainer)
    lengths: list[int] = []
    generate = trainer._generate

    def spy(prompts):
        result = generate(prompts)
        lengths.extend(len(ids) for ids in result[1])
        return result

    trainer._generate = spy  # on top of the callback's wrapper: sees the completions it counts
    trainer.train()

    logs = [entry for entry in trainer.state.log_history if "throughput/generated_tokens" in entry]
    assert [entry["step"] for entry in logs] == [2, 4]
    assert len(lengths) == 2 * 16 and logs[-1]["throughput/generated_tokens"] == sum(lengths)
    assert logs[0]["throughput/generated_tokens"] == sum(lengths[:16])
    for entry in logs:
        shares = [entry[f"throughput/{name}_share"] for name in ("generation", "reward", "logprob", "optimisation")]
        assert all(0.0 <= share <= 1.0 for share in shares) and sum(shares) == pytest.approx(1.0)
        assert shares[0] > 0.0 and shares[3] > 0.0
        expected_rate = sum(lengths[:16]) / (2 * entry["throughput/step_time_s"])
        assert entry["throughput/completion_tokens_per_s"] == pytest.approx(expected_rate, rel=1e-6)
        assert throughput.MEMORY_METRIC not in entry  # no accelerator here
    assert callback.totals.steps == 4 and callback.totals.tokens == sum(lengths)
