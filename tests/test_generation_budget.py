"""The generation budget (toolrl_trl.generation_budget): which prompts are skipped and re-checked, the sampler that
leaves them out before generation, rollout subsampling, and both settings of the in-reward KL."""

from __future__ import annotations

import itertools
import random
from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch
from datasets import Dataset
from trl.trainer.utils import RepeatSampler

from toolrl_trl import generation_budget as gb
from toolrl_trl.generation_budget import BudgetRepeatSampler, GenerationBudget, max_variance_subset, tied_groups
from toolrl_trl.grpo import ToolRLGRPOConfig, ToolRLGRPOTrainer

# ----------------------------------------------------------------------------------------------- the history


def _epoch(budget: GenerationBudget, order: list[int], chunk: int, tied: dict[int, bool]) -> list[int]:
    """Plan an epoch, then record one group per planned prompt with the given tie (default: not tied)."""
    plan = budget.plan_epoch(order, chunk)
    plan = plan[: len(plan) - len(plan) % chunk]
    budget.record(plan, [tied.get(prompt, False) for prompt in plan])
    return plan


def test_a_tied_prompt_is_skipped_the_next_epoch_and_a_spread_resets_it():
    budget = GenerationBudget(patience=1, recheck_rate=0.0)
    order = list(range(6))
    assert _epoch(budget, order, 2, {1: True, 4: True}) == order
    assert _epoch(budget, order, 2, {}) == [0, 2, 3, 5]
    assert budget.skipped == {1, 4} and budget.rechecked == frozenset()
    # skipped prompts are not observed: their streak stands, so they stay skipped
    assert _epoch(budget, order, 2, {}) == [0, 2, 3, 5]


def test_patience_counts_consecutive_tied_epochs():
    budget = GenerationBudget(patience=2, recheck_rate=0.0)
    order = list(range(4))
    _epoch(budget, order, 1, {0: True, 1: True})
    _epoch(budget, order, 1, {0: True})  # prompt 1 had a spread: its count starts over
    assert _epoch(budget, order, 1, {1: True}) == [1, 2, 3]
    assert budget.skipped == {0}
    assert _epoch(budget, order, 1, {1: True}) == [1, 2, 3]  # prompt 1: tied once since its spread
    assert budget.plan_epoch(order, 1) == [2, 3]  # tied twice in a row now
    assert budget.skipped == {0, 1}


def test_a_recheck_brings_a_prompt_back():
    budget = GenerationBudget(patience=1, recheck_rate=0.3, seed=7)
    order = list(range(8))
    _epoch(budget, order, 1, {5: True})
    for _ in range(50):  # seeded: the first re-check comes within a few epochs
        plan = _epoch(budget, order, 1, {})  # the re-check shows a spread ...
        if 5 in plan:
            assert budget.rechecked == {5} and budget.skipped == frozenset()
            break
        assert budget.skipped == {5}
    else:
        pytest.fail("prompt 5 was never re-checked")
    assert _epoch(budget, order, 1, {}) == order  # ... so it is an ordinary prompt again
    assert budget.skipped == budget.rechecked == frozenset()


def test_recheck_draws_are_seeded_and_near_the_rate():
    def draws(seed: int) -> list[int]:
        budget = GenerationBudget(patience=1, recheck_rate=0.25, seed=seed)
        order = list(range(400))
        _epoch(budget, order, 1, dict.fromkeys(order, True))
        return [len(budget.plan_epoch(order, 1)) for _ in range(3)]

    assert draws(0) == draws(0) and draws(0) != draws(1)
    assert all(60 <= n <= 140 for n in draws(0))  # 25% of 400, binomial spread


def test_a_partial_last_batch_is_left_to_the_sampler_to_drop():
    budget = GenerationBudget(patience=1, recheck_rate=0.0)
    order = [3, 0, 5, 1, 4, 2]
    _epoch(budget, order, 2, {0: True, 5: True, 2: True})
    assert budget.plan_epoch(order, 2) == [3, 1, 4]  # no skipped prompt is brought back to complete the batch
    assert budget.rechecked == frozenset() and budget.skipped == {0, 5, 2}


def test_an_epoch_is_never_empty():
    budget = GenerationBudget(patience=1, recheck_rate=0.0)
    order = list(range(4))
    _epoch(budget, order, 2, dict.fromkeys(order, True))
    assert budget.plan_epoch(order, 2) == [0, 1]  # one batch of re-checks rather than an epoch with nothing
    assert budget.rechecked == {0, 1} and budget.skipped == {2, 3}


@pytest.mark.parametrize("kwargs", [{"patience": 0}, {"recheck_rate": -0.1}, {"recheck_rate": 1.5}])
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ValueError, match="budget_"):
        GenerationBudget(**kwargs)


# ----------------------------------------------------------------------------------------------- the sampler


def test_with_nothing_skipped_the_sampler_is_trls():
    kwargs = dict(data_source=list(range(10)), mini_repeat_count=3, batch_size=4, repeat_count=2, seed=5)
    trl, ours = RepeatSampler(**kwargs), BudgetRepeatSampler(**kwargs, budget=GenerationBudget())
    for _ in range(3):  # three epochs: the generator advances the same way
        assert list(ours) == list(trl)
    assert len(ours) == len(trl)


def test_the_sampler_never_yields_a_skipped_prompt():
    budget = GenerationBudget(patience=1, recheck_rate=0.0)
    sampler = BudgetRepeatSampler(
        list(range(12)), mini_repeat_count=2, batch_size=2, repeat_count=1, seed=0, budget=budget
    )
    first = list(sampler)
    assert sorted(set(first)) == list(range(12))
    budget.record([0, 7], [True, True])
    budget.record([i for i in range(12) if i not in (0, 7)], [False] * 10)
    second = list(sampler)
    assert 0 not in second and 7 not in second and len(second) == 10 * 2
    assert all(second[i] == second[i + 1] for i in range(0, len(second), 2))  # groups stay together


# ----------------------------------------------------------------------------------------------- pure functions


def test_tied_groups_uses_scorable_values():
    nan = float("nan")
    scores = torch.tensor([1.0, 1.0, 1.0, 1.0, 0.0, 1.0, nan, nan, nan, 2.0, 2.0, nan, nan, nan, nan, nan])
    assert tied_groups(scores, 4).tolist() == [True, False, True, True]


def test_max_variance_subset_is_the_best_of_all_subsets():
    rng = random.Random(0)
    for _ in range(200):
        n = rng.randint(2, 8)
        size = rng.randint(1, n)
        scores = [rng.choice([0.0, 0.5, 1.0, 2.0, rng.random()]) for _ in range(n)]

        def variance(idx, scores=scores):
            values = [scores[i] for i in idx]
            mean = sum(values) / len(values)
            return sum((v - mean) ** 2 for v in values) / len(values)

        best = max(variance(c) for c in itertools.combinations(range(n), size))
        chosen = max_variance_subset(scores, size)
        assert len(set(chosen)) == size and variance(chosen) == pytest.approx(best, abs=1e-12)
    assert max_variance_subset([0.0, 0.0, 0.0, 1.0], 2) == [0, 3]
    assert max_variance_subset([float("nan"), 1.0, 0.0, float("nan")], 3) == [0, 1, 2]


def _fake_trainer(rewards: torch.Tensor, n: int, keep: int, coef: float = 0.0) -> SimpleNamespace:
    accelerator = SimpleNamespace(process_index=0, gather=lambda t: t.reshape(-1) if t.dim() == 0 else t)
    return SimpleNamespace(
        args=SimpleNamespace(rollout_subsample=keep),
        num_generations=n,
        _last_rewards_per_func=rewards,
        reward_weights=torch.ones(rewards.size(1)),
        reward_kl_coef=coef,
        scale_rewards="group",
        accelerator=accelerator,
        _metrics={"train": defaultdict(list)},
    )


@pytest.mark.parametrize("coef", [0.0, 0.1], ids=["no-kl", "kl-in-reward"])
def test_subsampling_keeps_the_spread_and_recomputes_advantages(coef):
    task = torch.tensor([[0.0], [1.0], [1.0], [3.0], [2.0], [2.0], [2.0], [2.0]])  # two groups of 4
    trainer = _fake_trainer(task, n=4, keep=2, coef=coef)
    kl_sums = torch.tensor([0.0, 1.0, 2.0, 0.5, 0.0, 1.0, 2.0, 3.0]) if coef else None
    output = {
        "prompt_ids": torch.arange(8)[:, None],
        "prompt_mask": torch.ones(8, 1),
        "completion_ids": torch.arange(8)[:, None] + 100,
        "completion_mask": torch.tensor([[1, 1], [1, 0], [1, 1], [1, 1], [1, 0], [1, 0], [1, 1], [1, 1]]),
        "advantages": torch.zeros(8),
        "num_items_in_batch": torch.tensor(13),
    }
    out = gb.subsample_rollouts(trainer, output, kl_sums)
    # group 0: lowest (0) and highest (3); group 1 all tied at 2: the first two by index
    assert out["prompt_ids"][:, 0].tolist() == [0, 3, 4, 5]
    assert out["completion_ids"][:, 0].tolist() == [100, 103, 104, 105]
    assert out["num_items_in_batch"].item() == 2 + 2 + 1 + 1
    scores = torch.tensor([0.0, 3.0, 2.0, 2.0]) - coef * (kl_sums[[0, 3, 4, 5]] if coef else 0.0)
    eps = 1e-6 if coef else 1e-4
    expected = []
    for group in scores.view(2, 2):
        expected += ((group - group.mean()) / (group.std() + eps)).tolist()
    assert out["advantages"].tolist() == pytest.approx(expected, abs=1e-5)
    if coef:  # the tied group still moves, on its KL alone
        assert out["advantages"][2:].abs().min() > 0.5
    else:
        assert out["advantages"][2:].tolist() == [0.0, 0.0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rollout_subsample": 4}, "below num_generations"),
        ({"rollout_subsample": 1}, "at least 2"),
        ({"rollout_subsample": 3, "per_device_train_batch_size": 2, "steps_per_generation": 2}, "multiples of"),
        ({"budget_patience": 0}, "budget_patience"),
    ],
)
def test_config_refuses_impossible_settings(tmp_path, kwargs, message):
    settings = dict(output_dir=str(tmp_path), use_cpu=True, bf16=False, report_to=[], per_device_train_batch_size=4)
    with pytest.raises(ValueError, match=message):
        ToolRLGRPOConfig(num_generations=4, **{**settings, **kwargs})


def test_the_recipes_leave_the_budget_off():
    from helpers import TINY

    from toolrl_trl.configs import parse_grpo_args

    training = parse_grpo_args(["--config", str(TINY / "grpo_cold_start.yaml")], world_size=1).training
    assert training.generation_budget is False and training.rollout_subsample == 0


# ----------------------------------------------------------------------------------------------- tiny training runs

ROWS = 8


def _dataset() -> Dataset:
    return Dataset.from_dict(
        {
            "prompt": [[{"role": "user", "content": f"Write anything. ({i})"}] for i in range(ROWS)],
            "kind": ["tied" if i % 2 == 0 else "spread" for i in range(ROWS)],
        }
    )


def _reward(completions, kind, **kwargs):
    """0 for every rollout of an even prompt (a tied group); 0, 1, 2, 3 across an odd prompt's group."""
    assert gb.INDEX_COLUMN not in kwargs  # the budget's column never reaches a reward function
    return [0.0 if k == "tied" else float(i % 4) for i, k in enumerate(kind)]


class _Recorder(ToolRLGRPOTrainer):
    """Records, per generation batch, the budget's epoch, the prompts that reached generation and the advantages."""

    def _generate(self, prompts):
        self.generated.append((self.generation_budget.epoch, sorted({int(p[-1]["content"][-2]) for p in prompts})))
        return super()._generate(prompts)

    def _generate_and_score_completions(self, inputs):
        kinds = [row["kind"] for row in inputs]
        output = super()._generate_and_score_completions(inputs)
        if len(kinds) == output["advantages"].numel():
            tied = torch.tensor([kind == "tied" for kind in kinds])
            self.tied_advantages.append(output["advantages"][tied].clone())
        return output


def _train(tmp_path, **kwargs) -> _Recorder:
    settings = dict(
        output_dir=str(tmp_path),
        use_cpu=True,
        bf16=False,
        report_to=[],
        per_device_train_batch_size=8,  # 2 prompts x 4 rollouts per step and round
        num_generations=4,
        max_completion_length=4,
        num_train_epochs=3,
        generation_budget=True,
        budget_recheck_rate=0.0,
        learning_rate=3e-2,
        logging_steps=1,
        save_strategy="no",
        disable_tqdm=True,
        seed=0,
    )
    args = ToolRLGRPOConfig(**{**settings, **kwargs})
    from toolrl_trl.tiny import tiny_model_path

    trainer = _Recorder(model=str(tiny_model_path("qwen2")), reward_funcs=_reward, args=args, train_dataset=_dataset())
    trainer.generated, trainer.tied_advantages = [], []
    trainer.train()
    return trainer


@pytest.mark.parametrize("coef", [0.0, 0.05], ids=["no-kl", "kl-in-reward"])
def test_a_skipped_prompt_never_reaches_generation(tmp_path, coef):
    trainer = _train(tmp_path, kl_reward_coef=coef)
    by_epoch: dict[int, set[int]] = {}
    for epoch, prompts in trainer.generated:
        by_epoch.setdefault(epoch, set()).update(prompts)
    assert by_epoch == {0: set(range(ROWS)), 1: {1, 3, 5, 7}, 2: {1, 3, 5, 7}}
    logs = [entry for entry in trainer.state.log_history if gb.SKIPPED_METRIC in entry]
    assert [entry[gb.SKIPPED_METRIC] for entry in logs] == [0.0] * 4 + [4.0] * 4
    assert {entry[gb.ZERO_VARIANCE_METRIC] for entry in logs[4:]} == {0.0}  # only spread prompts left
    tied = torch.cat(trainer.tied_advantages[1:])  # epoch 0 after the first update: the policy has moved
    assert tied.numel() > 0
    if coef:
        # The interaction with the in-reward KL: the tied groups were not advantage-free (KL-only advantages),
        # yet they were skipped, because the budget looks at the task reward alone.
        assert tied.abs().max() > 0.1
    else:
        assert tied.abs().max() == 0.0


def test_recheck_rate_one_generates_every_prompt_and_subsampling_trains_on_the_kept_rollouts(tmp_path, monkeypatch):
    from trl import GRPOTrainer

    rows_in_loss: list[int] = []
    trl_compute_loss = GRPOTrainer._compute_loss

    def spy(self, model, inputs):
        rows_in_loss.append(inputs["completion_ids"].size(0))
        return trl_compute_loss(self, model, inputs)

    monkeypatch.setattr(GRPOTrainer, "_compute_loss", spy)
    trainer = _train(tmp_path, budget_recheck_rate=1.0, rollout_subsample=2)
    # every skipped prompt is re-checked (rate 1): all prompts are generated each epoch, the re-checks are counted
    assert {epoch for epoch, _ in trainer.generated} == {0, 1, 2}
    assert all(len(prompts) == 2 for _, prompts in trainer.generated) and len(trainer.generated) == 12
    logs = [entry for entry in trainer.state.log_history if gb.RECHECKED_METRIC in entry]
    assert [entry[gb.RECHECKED_METRIC] for entry in logs] == [0.0] * 4 + [4.0] * 8
    assert {entry[gb.ROLLOUTS_METRIC] for entry in logs} == {0.5}
    assert set(rows_in_loss) == {4}  # 2 prompts x 2 of their 4 rollouts


def test_the_comparison_interpolates_the_first_time_a_reward_is_reached():
    def points(rewards, seconds, tokens):
        return [
            {"heldout_reward": r, "train_s": s, "generated_tokens": t}
            for r, s, t in zip(rewards, seconds, tokens, strict=True)
        ]

    off = points([1.0, 2.0, 3.0, 3.0], [0, 10, 20, 30], [0, 100, 200, 300])
    on = points([1.0, 2.0, 2.5, 3.0], [0, 10, 15, 18], [0, 100, 140, 160])
    full = next(c for c in gb.compare_at_equal_reward(off, on) if c["share"] == 1.0)
    assert full["target_reward"] == 3.0
    assert (full["off_train_s"], full["on_train_s"], full["speedup_train_s"]) == (20, 18, 20 / 18)
    assert full["speedup_generated_tokens"] == 200 / 160
    assert gb._first_reach(off, "train_s", 2.5) == 15.0  # halfway between the evaluations at 10 s and 20 s
    assert gb._first_reach(off, "train_s", 3.5) != gb._first_reach(off, "train_s", 3.5)  # never reached: NaN
