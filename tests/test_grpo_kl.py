"""The paper code's KL penalty inside the GRPO reward: the advantage against hand computations, the config checks,
and real tiny runs (full weights and LoRA) whose advantages are recomputed independently with the fork's formula."""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM
from trl import GRPOConfig, GRPOTrainer
from trl.trainer.utils import nanstd

from toolrl_trl.grpo import (
    KL_METRIC,
    PENALTY_METRIC,
    TIED_GROUPS_METRIC,
    ToolRLGRPOConfig,
    ToolRLGRPOTrainer,
)
from toolrl_trl.kl_reward import FORK_STD_EPSILON, grpo_kl_reward_advantages, per_token_kl, weighted_scores


def _close(actual: torch.Tensor, expected, atol: float = 1e-5) -> None:
    expected = torch.as_tensor(expected, dtype=actual.dtype)
    assert torch.allclose(actual, expected, atol=atol), f"\n{actual}\n!=\n{expected}"


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models on a shared 2-core machine: one intra-op thread is much faster than two contending ones."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ---------------------------------------------------------------------------------------------- the arithmetic

# Two prompt groups of 4 completions. Group 0: tied task rewards (all 1.0); group 1: different task rewards.
TASK = torch.tensor([1.0, 1.0, 1.0, 1.0, 3.0, 1.0, 0.0, 0.0])
KL_SUMS = torch.tensor([0.1, -0.1, 0.1, -0.1, 0.0, 10.0, -10.0, 0.0])
COEF = 0.01


def test_per_token_kl_sums_are_masked_k1():
    logps = torch.tensor([[-1.0, -2.0, 5.0], [-0.5, -0.5, -0.5]])
    ref = torch.tensor([[-1.5, -1.0, -9.0], [-1.0, -0.25, -0.5]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    # row 0: 0.5 - 1.0 (the padding's garbage 14 is masked out); row 1: 0.5 - 0.25 + 0
    _close(per_token_kl(logps, ref, mask).sum(dim=1), [-0.5, 0.25])


def test_tied_group_gets_kl_driven_advantages_and_the_other_group_the_forks():
    advantages, scores, tied = grpo_kl_reward_advantages(TASK, KL_SUMS, COEF, num_generations=4)
    # Group 0: s = 1 - 0.01 * (+-0.1) = 0.999, 1.001, 0.999, 1.001; mean 1; deviations -+0.001;
    # unbiased variance 4e-6 / 3, std 1.1547005e-3; A = -+0.001 / (1.1547005e-3 + 1e-6) = -+0.8652761.
    # (TRL's epsilon 1e-4 would give -+0.7970029: the damping the fork's 1e-6 avoids.)
    # Group 1: s = 3, 1 - 0.1, 0 + 0.1, 0 = 3, 0.9, 0.1, 0; mean 1; deviations 2, -0.1, -0.9, -1;
    # unbiased variance (4 + 0.01 + 0.81 + 1) / 3 = 1.94, std 1.3928388; A = deviation / (std + 1e-6).
    _close(scores, [0.999, 1.001, 0.999, 1.001, 3.0, 0.9, 0.1, 0.0])
    _close(
        advantages,
        [-0.8652761, 0.8652761, -0.8652761, 0.8652761, 1.4359153, -0.0717958, -0.6461619, -0.7179576],
        atol=2e-4,  # float32: the KL-only spread of group 0 is 1e-3 on scores of 1
    )
    assert tied.tolist() == [True, False]


def test_without_kl_a_tied_group_has_zero_advantages():
    advantages, _, tied = grpo_kl_reward_advantages(TASK, torch.zeros(8), 0.0, num_generations=4)
    _close(advantages[:4], [0.0] * 4)
    assert tied.tolist() == [True, False]


def test_zero_coefficient_with_trls_epsilon_is_trls_group_advantage():
    """The formula is TRL's own when the KL and the epsilon are TRL's (a check of the std: unbiased, per group)."""
    rewards = torch.tensor([0.5, -3.0, 1.25, 2.0, 1.0, 1.0, 0.0, 4.0])
    grouped = rewards.view(-1, 4)
    trl_advantages = (grouped - grouped.mean(dim=1, keepdim=True)) / (nanstd(grouped, dim=1).unsqueeze(1) + 1e-4)
    advantages, _, _ = grpo_kl_reward_advantages(rewards, torch.zeros(8), 0.0, 4, epsilon=1e-4)
    _close(advantages, trl_advantages.reshape(-1), atol=1e-6)
    # and the fork's own torch.std (unbiased, over the group) with its 1e-6
    fork = torch.cat([(g - g.mean()) / (torch.std(g.unsqueeze(0)) + FORK_STD_EPSILON) for g in grouped])
    _close(grpo_kl_reward_advantages(rewards, torch.zeros(8), 0.0, 4)[0], fork, atol=1e-6)


def test_unscorable_completions_are_left_out_with_advantage_zero():
    task = torch.tensor([math.nan, 2.0, 0.0, 1.0])
    advantages, _, tied = grpo_kl_reward_advantages(task, torch.zeros(4), COEF, num_generations=4)
    # valid scores 2, 0, 1: mean 1, unbiased variance (1 + 1 + 0) / 2 = 1
    _close(advantages, [0.0, 1 / (1 + 1e-6), -1 / (1 + 1e-6), 0.0])
    assert tied.tolist() == [False]
    _, _, tied = grpo_kl_reward_advantages(torch.tensor([math.nan, 2.0, 2.0, 2.0]), torch.zeros(4), COEF, 4)
    assert tied.tolist() == [True]


def test_scale_rewards_none_and_batch():
    advantages, _, _ = grpo_kl_reward_advantages(TASK, KL_SUMS, COEF, 4, scale_rewards="none")
    _close(advantages, [-0.001, 0.001, -0.001, 0.001, 2.0, -0.1, -0.9, -1.0])
    # batch: one std over the 8 scores (mean 1): squares 4 x 1e-6 + 5.82 -> unbiased variance 5.820004 / 7
    advantages, _, _ = grpo_kl_reward_advantages(TASK, KL_SUMS, COEF, 4, scale_rewards="batch")
    std = math.sqrt(5.820004 / 7)
    _close(advantages[4:], [2.0 / std, -0.1 / std, -0.9 / std, -1.0 / std])


def test_bad_shapes_and_settings_are_refused():
    with pytest.raises(ValueError, match="groups of num_generations=3"):
        grpo_kl_reward_advantages(TASK, KL_SUMS, COEF, num_generations=3)
    with pytest.raises(ValueError, match="same 1-D shape"):
        grpo_kl_reward_advantages(TASK, KL_SUMS[:4], COEF, num_generations=4)
    with pytest.raises(ValueError, match="scale_rewards must be one of"):
        grpo_kl_reward_advantages(TASK, KL_SUMS, COEF, 4, scale_rewards="sequence")


def test_weighted_scores_sum_the_reward_functions_like_grpo():
    rewards = torch.tensor([[1.0, 2.0], [math.nan, 3.0], [math.nan, math.nan]])
    scores, scorable = weighted_scores(rewards, torch.tensor([1.0, 0.5]))
    _close(scores, [2.0, 1.5, 0.0])
    assert scorable.tolist() == [True, True, False]


# ------------------------------------------------------------------------------------------------------ config


def _config(tmp_path, **kwargs) -> ToolRLGRPOConfig:
    settings = dict(
        output_dir=str(tmp_path),
        use_cpu=True,
        bf16=False,
        report_to=[],
        per_device_train_batch_size=4,
        num_generations=4,
    )
    settings.update(kwargs)
    return ToolRLGRPOConfig(**settings)


def test_config_default_is_off_and_documented(tmp_path):
    from dataclasses import fields

    config = _config(tmp_path)
    assert config.kl_reward_coef == 0.0 and config.beta == 0.0
    (field,) = [f for f in fields(ToolRLGRPOConfig) if f.name == "kl_reward_coef"]
    assert "1e-6" in field.metadata["help"] and "0.001" in field.metadata["help"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kl_reward_coef": -0.1}, "kl_reward_coef must be >= 0"),
        ({"kl_reward_coef": 0.001, "beta": 0.04}, "Set beta: 0"),
        (
            {"kl_reward_coef": 0.001, "multi_objective_aggregation": "normalize_then_sum"},
            "needs multi_objective_aggregation: sum_then_normalize",
        ),
    ],
)
def test_config_rejects_invalid_values(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        _config(tmp_path, **kwargs)


def test_trls_kl_loss_stays_available_with_the_in_reward_kl_off(tmp_path):
    assert _config(tmp_path, beta=0.04).beta == 0.04


def test_the_grpo_recipe_parser_knows_kl_reward_coef():
    from toolrl_trl.configs import parse_grpo_args

    tiny = Path(__file__).resolve().parents[1] / "recipes" / "tiny" / "grpo_cold_start.yaml"
    args = parse_grpo_args(["--config", str(tiny), "--kl_reward_coef", "0.001"], world_size=1)
    assert isinstance(args[3], ToolRLGRPOConfig) and args[3].kl_reward_coef == 0.001
    with pytest.raises(ValueError, match="Set beta: 0"):
        parse_grpo_args(["--config", str(tiny), "--kl_reward_coef", "0.001", "--beta", "0.04"], world_size=1)


# ----------------------------------------------------------------------------------------- tiny training runs


def _dataset(rows: int = 16) -> Dataset:
    return Dataset.from_dict(
        {"prompt": [[{"role": "user", "content": f"Write anything. ({i})"}] for i in range(rows)]}
    )


def _even_tokens_then_constant(completions, completion_ids, trainer_state=None, **kwargs):
    """A spread of rewards in the first round (so the policy moves), then the same reward for every completion
    (every group tied: what is left of the advantage is the KL's)."""
    if trainer_state is not None and trainer_state.global_step > 0:
        return [0.0] * len(completion_ids)
    return [sum(token % 2 == 0 for token in ids) / max(len(ids), 1) for ids in completion_ids]


@torch.no_grad()
def _logps(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, size: int) -> torch.Tensor:
    """Log-probabilities of the last ``size`` tokens from the full logits (temperature 1), independently of TRL."""
    logits = model(input_ids=input_ids, attention_mask=attention_mask).logits[:, -size - 1 : -1].float()
    return logits.log_softmax(dim=-1).gather(-1, input_ids[:, -size:, None])[..., 0]


class RecordingTrainer(ToolRLGRPOTrainer):
    """Records each training round's advantages next to independently computed log-probs and task scores."""

    reference: torch.nn.Module  # a fresh copy of the initial checkpoint

    def _generate_and_score_completions(self, inputs):
        output = super()._generate_and_score_completions(inputs)
        if self.model.training:
            input_ids = torch.cat([output["prompt_ids"], output["completion_ids"]], dim=1)
            attention_mask = torch.cat([output["prompt_mask"], output["completion_mask"]], dim=1)
            size = output["completion_ids"].size(1)
            policy = _logps(self.model, input_ids, attention_mask, size)
            ref = _logps(self.reference, input_ids, attention_mask, size)
            scores, _ = weighted_scores(self._last_rewards_per_func, self.reward_weights)
            self.rounds.append(
                {
                    "advantages": output["advantages"].clone(),
                    "old": output["old_per_token_logps"].clone(),
                    "policy": policy,
                    "ref": ref,
                    "mask": output["completion_mask"].float(),
                    "task": scores,
                }
            )
        return output


def _fork_advantages(task: torch.Tensor, kl_sums: torch.Tensor, coef: float, n: int) -> torch.Tensor:
    """compute_grpo_outcome_advantage, written as the fork writes it (per group: torch.mean, torch.std, + 1e-6)."""
    scores = task - coef * kl_sums
    out = torch.empty_like(scores)
    for start in range(0, scores.numel(), n):
        group = scores[start : start + n]
        out[start : start + n] = (group - torch.mean(group)) / (torch.std(group.unsqueeze(0)) + 1e-6)
    return out


def _lora():
    from peft import LoraConfig

    return LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", task_type="CAUSAL_LM")


@pytest.mark.parametrize(
    ("use_lora", "accumulation"),
    # full: 2 optimizer steps per round (TRL computes the old log-probs); LoRA: 1 step per round (the trainer does)
    [(False, 1), (True, 2)],
    ids=["full", "lora"],
)
def test_tiny_run_advantages_are_the_forks(tiny_model_dir, tmp_path, monkeypatch, use_lora, accumulation):
    coef = 0.05
    betas_in_loss: list[float] = []
    trl_compute_loss = GRPOTrainer._compute_loss

    def spy(self, model, inputs):
        betas_in_loss.append(self.beta)
        return trl_compute_loss(self, model, inputs)

    monkeypatch.setattr(GRPOTrainer, "_compute_loss", spy)
    args = _config(
        tmp_path,
        kl_reward_coef=coef,
        gradient_accumulation_steps=accumulation,
        steps_per_generation=2,  # 8 completions = 2 prompts x 4 per round
        max_steps=4 if accumulation == 1 else 2,  # two rounds
        max_completion_length=8,
        learning_rate=3e-2,
        lr_scheduler_type="constant",
        logging_steps=1,
        save_strategy="no",
        seed=0,
        disable_tqdm=True,
    )
    trainer = RecordingTrainer(
        model=str(tiny_model_dir),
        reward_funcs=_even_tokens_then_constant,
        args=args,
        train_dataset=_dataset(),
        peft_config=_lora() if use_lora else None,
    )
    # The reference: a frozen copy of the initial model, or (LoRA) the adapter-disabled policy itself.
    assert (trainer.ref_model is None) == use_lora
    assert trainer.beta == coef and args.beta == 0.0  # beta only routes TRL to the reference; no KL loss
    trainer.reference = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    trainer.rounds = []
    trainer.train()

    assert len(trainer.rounds) == 2
    for index, record in enumerate(trainer.rounds):
        # the old log-probs are the sampling policy's, at generation time
        _close(record["old"], record["policy"], atol=1e-5)
        kl_sums = ((record["old"] - record["ref"]) * record["mask"]).sum(dim=1)
        expected = _fork_advantages(record["task"], kl_sums, coef, 4)
        _close(record["advantages"], expected, atol=1e-4)  # TRL's epsilon (1e-4) would be off by 1e-3 to 1e-2
        if index == 0:  # nothing has moved yet: the policy is the reference
            assert kl_sums.abs().max() < 1e-5
    second = trainer.rounds[1]
    assert torch.all(second["task"] == 0.0)  # every group tied on the task reward ...
    assert second["advantages"].abs().max() > 0.5  # ... yet O(1) advantages, from the KL alone

    logs = [entry for entry in trainer.state.log_history if TIED_GROUPS_METRIC in entry]
    assert [entry[TIED_GROUPS_METRIC] for entry in logs] == [0.0, 1.0]
    assert logs[0][KL_METRIC] == pytest.approx(0.0, abs=1e-6) and logs[1][KL_METRIC] != 0.0
    assert logs[1][PENALTY_METRIC] == pytest.approx(coef * kl_sums.mean().item(), rel=1e-4)
    assert betas_in_loss and set(betas_in_loss) == {0.0}  # TRL's KL loss term never ran


def _history(trainer) -> list[dict]:
    skip = ("runtime", "per_second", "step_time", "total_flos")
    return [{k: v for k, v in entry.items() if not any(s in k for s in skip)} for entry in trainer.state.log_history]


def test_zero_coefficient_is_trls_grpo_number_for_number(tiny_model_dir, tmp_path):
    def reward(completions, completion_ids, **kwargs):
        return [sum(token % 3 == 0 for token in ids) / max(len(ids), 1) for ids in completion_ids]

    settings = dict(
        use_cpu=True,
        bf16=False,
        report_to=[],
        per_device_train_batch_size=4,
        num_generations=4,
        steps_per_generation=2,
        max_steps=2,
        max_completion_length=8,
        learning_rate=1e-2,
        logging_steps=1,
        save_strategy="no",
        seed=0,
        disable_tqdm=True,
    )
    histories, advantages = [], []
    for trainer_cls, config_cls in ((GRPOTrainer, GRPOConfig), (ToolRLGRPOTrainer, ToolRLGRPOConfig)):
        args = config_cls(output_dir=str(tmp_path / trainer_cls.__name__), **settings)
        trainer = trainer_cls(model=str(tiny_model_dir), reward_funcs=reward, args=args, train_dataset=_dataset())
        trainer.train()
        histories.append(_history(trainer))
        advantages.append(list(trainer._logs["advantages"]))
    assert histories[0] == histories[1]
    assert advantages[0] == advantages[1] and any(value != 0.0 for value in advantages[0])
    assert not any(TIED_GROUPS_METRIC in entry for entry in histories[1])


# ------------------------------------------------------------------------------------- the recipe entry point


ROOT = Path(__file__).resolve().parents[1]
TINY_GRPO = ROOT / "recipes" / "tiny" / "grpo_cold_start.yaml"
NEW_METRICS = (KL_METRIC, PENALTY_METRIC, TIED_GROUPS_METRIC)


def _recipe_args(tiny_model_dir, out: Path, *extra: str) -> list[str]:
    return [
        "--config",
        str(TINY_GRPO),
        "--model_name_or_path",
        str(tiny_model_dir),
        "--output_dir",
        str(out),
        "--max_steps",
        "2",
        "--max_completion_length",
        "8",
        "--kl_reward_coef",
        "0.001",
        *extra,
    ]


def _assert_kl_metrics(out: Path) -> None:
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    logged = [entry for entry in history if TIED_GROUPS_METRIC in entry]
    assert len(logged) == 1, history  # 2 optimizer steps = one generation round
    for name in NEW_METRICS:
        assert math.isfinite(logged[0][name]), (name, logged[0])
    assert 0.0 <= logged[0][TIED_GROUPS_METRIC] <= 1.0
    # First round: the policy is still the reference
    assert abs(logged[0][KL_METRIC]) < 1e-5 and abs(logged[0][PENALTY_METRIC]) < 1e-6


def test_recipe_entry_point_runs_the_paper_mode(tiny_model_dir, tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, "recipes/grpo_cold_start.py", *_recipe_args(tiny_model_dir, out)]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    assert "KL penalty in the reward: kl_reward_coef=0.001, reference a frozen copy" in proc.stdout + proc.stderr
    _assert_kl_metrics(out)


def test_run_rl_with_lora_uses_the_adapter_disabled_reference(tiny_model_dir, tmp_path, caplog):
    from toolrl_trl.configs import parse_grpo_args
    from toolrl_trl.training import run_rl

    out = tmp_path / "lora"
    parsed = parse_grpo_args(_recipe_args(tiny_model_dir, out, "--use_peft", "true"), world_size=1)
    with caplog.at_level(logging.INFO, logger="toolrl_trl"):
        run_rl(ToolRLGRPOTrainer, *parsed)
    assert "reference the adapter-disabled policy" in caplog.text
    assert (out / "adapter_config.json").is_file()
    _assert_kl_metrics(out)
