"""PPO's arithmetic against hand computations: per-token rewards, GAE, whitening, value loss; and PPOConfig."""

import math

import pytest
import torch

from toolrl_trl.kl_reward import compute_token_rewards, last_valid_index
from toolrl_trl.ppo import PPOConfig, clipped_value_loss, compute_gae, masked_whiten

# Three completions of up to 5 tokens: EOS at index 2 then right padding; truncated at max length (no EOS, every
# position real); fully masked (e.g. dropped by mask_truncated_completions).
MASK = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]], dtype=torch.float32)
SCORES = torch.tensor([1.0, 2.0, 3.0])
# Padding positions carry garbage (what a forward pass returns there); it must never leak into rewards or GAE.
LOGPS = torch.tensor([[-1.0, -2.0, -0.5, 9.0, 9.0], [-1.0, -1.0, -1.0, -1.0, -1.0], [5.0] * 5])
REF_LOGPS = torch.tensor([[-1.5, -1.0, -0.5, -7.0, -7.0], [-1.0, -2.0, -1.0, -1.0, -3.0], [-5.0] * 5])


def _close(actual: torch.Tensor, expected, atol: float = 1e-6) -> None:
    expected = torch.tensor(expected, dtype=actual.dtype)
    assert torch.allclose(actual, expected, atol=atol), f"\n{actual}\n!=\n{expected}"


def test_last_valid_index_handles_padding_truncation_and_empty_rows():
    assert last_valid_index(MASK).tolist() == [2, 4, -1]
    assert last_valid_index(torch.tensor([[1, 0, 1, 0]])).tolist() == [2]  # interior gap (tool output)


def test_token_rewards_put_score_on_last_real_token_and_kl_on_every_token():
    rewards, kl = compute_token_rewards(SCORES, LOGPS, REF_LOGPS, MASK, kl_coef=0.1)
    # kl = logp - ref_logp on real tokens only; reward = -0.1 * kl, + score on the last real token.
    _close(kl, [[0.5, -1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0, 2.0], [0.0] * 5])
    _close(
        rewards,
        [
            [-0.05, 0.1, 1.0, 0.0, 0.0],  # EOS-ended: score at index 2, nothing on padding
            [0.0, -0.1, 0.0, 0.0, 1.8],  # truncated: score on the last generated token (2.0 - 0.1 * 2)
            [0.0] * 5,  # no real token: the score has nowhere to go
        ],
    )


def test_token_rewards_without_kl_need_no_logprobs():
    rewards, kl = compute_token_rewards(SCORES, None, None, MASK, kl_coef=0.0)
    _close(rewards, [[0.0, 0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 2.0], [0.0] * 5])
    assert not kl.any()
    with pytest.raises(ValueError, match="needs both logprobs and ref_logprobs"):
        compute_token_rewards(SCORES, None, None, MASK, kl_coef=0.1)


def test_gae_with_gamma_lambda_one_is_return_to_go_minus_value():
    rewards, _ = compute_token_rewards(SCORES, LOGPS, REF_LOGPS, MASK, kl_coef=0.1)
    values = torch.tensor(
        [[0.2, 0.4, 0.6, 100.0, 100.0], [0.5, 0.5, 0.5, 0.5, 0.5], [7.0] * 5]  # garbage on padding
    )
    advantages, returns = compute_gae(rewards, values, MASK, gamma=1.0, lam=1.0)
    # Row 0: rewards -0.05, 0.1, 1.0 -> returns-to-go 1.05, 1.1, 1.0; minus values 0.2, 0.4, 0.6.
    # Row 1 (truncated): rewards 0, -0.1, 0, 0, 1.8 -> returns-to-go 1.7, 1.7, 1.8, 1.8, 1.8; the last token is
    # terminal (1.8 - 0.5), no bootstrap from the critic.
    _close(advantages, [[0.85, 0.7, 0.4, 0.0, 0.0], [1.2, 1.2, 1.3, 1.3, 1.3], [0.0] * 5])
    _close(returns, [[1.05, 1.1, 1.0, 0.0, 0.0], [1.7, 1.7, 1.8, 1.8, 1.8], [0.0] * 5])


def test_gae_with_discount_and_lambda_matches_hand_computation():
    # delta_2 = 1 - 0.7 = 0.3                      A_2 = 0.3
    # delta_1 = 0.9 * 0.7 - 0.6 = 0.03             A_1 = 0.03 + 0.9 * 0.8 * 0.3 = 0.246
    # delta_0 = 0.9 * 0.6 - 0.5 = 0.04             A_0 = 0.04 + 0.72 * 0.246 = 0.21712
    expected_adv = [0.21712, 0.246, 0.3]
    expected_ret = [0.71712, 0.846, 1.0]
    # Row 0 ends with EOS at index 2 (padding after it, garbage value there); row 1 is truncated: every position is
    # real and its reward is on the last one.
    rewards = torch.tensor([[0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
    values = torch.tensor([[0.5, 0.6, 0.7, 5.0], [0.5, 0.6, 0.7, 0.2]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    advantages, returns = compute_gae(rewards, values, mask, gamma=0.9, lam=0.8)
    _close(advantages[0], [*expected_adv, 0.0])
    _close(returns[0], [*expected_ret, 0.0])
    # Row 1, by hand: A_3 = 1 - 0.2 = 0.8; delta_2 = 0.9 * 0.2 - 0.7 = -0.52, A_2 = -0.52 + 0.72 * 0.8 = 0.056;
    # delta_1 = 0.9 * 0.7 - 0.6 = 0.03, A_1 = 0.03 + 0.72 * 0.056 = 0.07032;
    # delta_0 = 0.9 * 0.6 - 0.5 = 0.04, A_0 = 0.04 + 0.72 * 0.07032 = 0.0906304.
    _close(advantages[1], [0.0906304, 0.07032, 0.056, 0.8])
    _close(returns[1], [0.5906304, 0.67032, 0.756, 1.0])


def test_gae_skips_masked_tokens_inside_a_completion():
    """Tool output inside a completion is not an action: GAE chains over it as if it were absent."""
    rewards = torch.tensor([[0.0, 0.0, 0.0, 1.0]])
    values = torch.tensor([[0.5, 9.0, 0.6, 0.7]])
    mask = torch.tensor([[1.0, 0.0, 1.0, 1.0]])
    advantages, returns = compute_gae(rewards, values, mask, gamma=0.9, lam=0.8)
    _close(advantages, [[0.21712, 0.0, 0.246, 0.3]])
    _close(returns, [[0.71712, 0.0, 0.846, 1.0]])


def test_gae_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="same"):
        compute_gae(torch.zeros(2, 3), torch.zeros(2, 4), torch.ones(2, 3))


def test_masked_whiten_uses_masked_entries_and_unbiased_variance():
    x = torch.tensor([[1.0, 2.0, 3.0, 50.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    # mean 2, unbiased variance ((1 + 0 + 1) / 2) = 1
    _close(masked_whiten(x, mask), [[-1.0, 0.0, 1.0, 0.0]], atol=1e-6)


def test_masked_whiten_reduces_statistics_over_processes():
    """With ``reduce`` (a sum over processes) the statistics are those of every process's entries together."""
    x = torch.tensor([[1.0, 2.0, 3.0, 50.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    other = torch.tensor([5.0, 7.0])  # another process's two entries
    other_stats = torch.stack([other.sum(), (other * other).sum(), torch.tensor(2.0)])
    whitened = masked_whiten(x, mask, reduce=lambda stats: stats + other_stats)
    # All five values 1, 2, 3, 5, 7: mean 3.6, unbiased variance 23.2 / 4 = 5.8.
    std = math.sqrt(5.8)
    _close(whitened, [[(1 - 3.6) / std, (2 - 3.6) / std, (3 - 3.6) / std, 0.0]], atol=1e-6)


def test_clipped_value_loss_takes_the_larger_branch_per_token():
    values = torch.tensor([[1.0, 0.0, 2.0, 123.0]])
    old_values = torch.tensor([[0.5, 0.5, 0.5, 0.0]])
    returns = torch.tensor([[2.0, 0.0, 0.0, -50.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    loss, clipfrac = clipped_value_loss(values, old_values, returns, mask, cliprange_value=0.2)
    # token 0: unclipped (1 - 2)^2 = 1, clipped V = 0.7: (0.7 - 2)^2 = 1.69 -> 1.69 (clipped branch)
    # token 1: unclipped 0, clipped V = 0.3: 0.09 -> 0.09 (clipped branch)
    # token 2: unclipped (2 - 0)^2 = 4, clipped V = 0.7: 0.49 -> 4
    # token 3 is masked out
    assert loss.item() == pytest.approx(0.5 * (1.69 + 0.09 + 4.0) / 3)
    assert clipfrac.item() == pytest.approx(2 / 3)


def test_clipped_value_loss_gradient_vanishes_where_clipping_wins():
    values = torch.tensor([[1.0, 2.0]], requires_grad=True)
    loss, _ = clipped_value_loss(
        values, torch.tensor([[0.5, 0.5]]), torch.tensor([[2.0, 0.0]]), torch.ones(1, 2), cliprange_value=0.2
    )
    loss.backward()
    # token 0: the clipped branch (constant in V once clipped) wins -> no gradient; token 1: d/dV 0.5 * V^2 / 2 = V / 2
    _close(values.grad, [[0.0, 1.0]])


# ------------------------------------------------------------------------------------------------------ config


def _config(tmp_path, **kwargs) -> PPOConfig:
    kwargs.setdefault("per_device_train_batch_size", 2)
    return PPOConfig(output_dir=str(tmp_path), use_cpu=True, report_to=[], **kwargs)


def test_config_defaults_are_the_papers_ppo_settings(tmp_path):
    config = _config(tmp_path)
    assert config.num_generations == 1
    assert (config.kl_coef, config.gamma, config.lam) == (0.001, 1.0, 1.0)
    assert (config.learning_rate, config.critic_learning_rate) == (1e-6, 1e-5)
    assert config.critic_warmup_steps == 0
    assert config.cliprange_value == 0.5 and config.epsilon == 0.2
    assert config.beta == 0.0 and config.loss_type == "bnpo" and config.whiten_advantages
    assert config.generation_batch_size == 2 and config.num_generations_eval is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"beta": 0.04}, "folds the KL into the reward"),
        ({"kl_coef": -1.0}, "kl_coef must be >= 0"),
        ({"gamma": 1.5}, r"gamma must be in \[0, 1\]"),
        ({"lam": -0.1}, r"lam must be in \[0, 1\]"),
        ({"cliprange_value": 0.0}, "cliprange_value must be > 0"),
        ({"critic_learning_rate": 0.0}, "critic_learning_rate must be > 0"),
        ({"critic_warmup_steps": -1}, "critic_warmup_steps must be >= 0"),
        ({"loss_type": "cispo"}, "valid values: bnpo, dapo, grpo, dr_grpo"),
        ({"num_generations": 0}, "num_generations must be >= 1"),
        ({"per_device_train_batch_size": 3}, "must be even"),
    ],
)
def test_config_rejects_invalid_values(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        _config(tmp_path, **kwargs)


def test_config_allows_several_generations_per_prompt(tmp_path):
    config = _config(tmp_path, num_generations=2, per_device_train_batch_size=4)
    assert config.num_generations == 2 and config.generation_batch_size == 4
