"""PPOTrainer on a CPU: it learns (LoRA off and on), warms the critic up alone, evaluates, and resumes its critic.

The learning tests use the tiny Qwen2 model with its output embeddings scaled up x5. A random tiny model's
logits are all within a few tenths of each other, and with LoRA (which TRL keeps off ``lm_head``) no hidden
state can change that, so no reward could move; scaled, its next-token distribution has ~4.5 nats of entropy
and a shift of the last hidden state moves probability mass, as in a real model. The reward is verifiable and
dense: the fraction of completion tokens in a fixed half of the vocabulary (the tokens whose output embedding is
positive along one coordinate, so that a hidden-state direction favours them).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback

from toolrl_trl.ppo import CRITIC_DIRNAME, CRITIC_OPTIMIZER_NAME, CRITIC_WEIGHTS_NAME, PPOConfig, PPOTrainer

PROMPT = [{"role": "user", "content": "Write anything."}]
OUTPUT_SCALE = 5.0
INITIAL_REWARD_TARGET = 0.35  # start well below the ceiling of 1.0, so that learning has room to show


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models on a shared 2-core machine: one intra-op thread is ~50x faster than two contending ones."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def sharp_model(tiny_model_dir, tmp_path_factory) -> tuple[Path, frozenset[int]]:
    """The tiny model with x5 output embeddings, and the token set whose completion fraction is the reward."""
    path = tmp_path_factory.mktemp("sharp-tiny")
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    with torch.no_grad():
        model.get_output_embeddings().weight.mul_(OUTPUT_SCALE)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)

    ids = tokenizer.apply_chat_template(PROMPT, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        probs = model(**ids).logits[0, -1].softmax(-1)
    weight = model.get_output_embeddings().weight.detach()
    candidates = [(sign * weight[:, k] > 0) for k in range(weight.size(1)) for sign in (1, -1)]
    chosen = min(candidates, key=lambda half: abs(probs[half].sum().item() - INITIAL_REWARD_TARGET))
    return path, frozenset(chosen.nonzero()[:, 0].tolist())


def _fraction_reward(token_set: frozenset[int]):
    def in_token_set(completions, completion_ids, **kwargs):
        return [sum(token in token_set for token in ids) / max(len(ids), 1) for ids in completion_ids]

    return in_token_set


def _dataset(rows: int = 64) -> Dataset:
    return Dataset.from_dict(
        {"prompt": [[{"role": "user", "content": f"Write anything. ({i})"}] for i in range(rows)]}
    )


def _config(output_dir: Path, **kwargs) -> PPOConfig:
    settings = dict(
        per_device_train_batch_size=16,
        gradient_accumulation_steps=1,
        steps_per_generation=2,  # a round of 32 completions spent in 2 optimizer steps
        max_completion_length=6,
        lr_scheduler_type="constant",
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        seed=0,
        use_cpu=True,
        bf16=False,
        disable_tqdm=True,
    )
    settings.update(kwargs)
    return PPOConfig(output_dir=str(output_dir), **settings)


def _lora():
    from peft import LoraConfig

    return LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", task_type="CAUSAL_LM")


def _history(trainer: PPOTrainer, key: str) -> list[float]:
    return [entry[key] for entry in trainer.state.log_history if key in entry]


@pytest.mark.parametrize(
    ("use_lora", "learning_rate"),
    [(False, 3e-3), (True, 1e-2)],
    ids=["full", "lora"],
)
def test_ppo_raises_the_mean_reward(sharp_model, tmp_path, use_lora, learning_rate):
    path, token_set = sharp_model
    trainer = PPOTrainer(
        model=str(path),
        reward_funcs=_fraction_reward(token_set),
        args=_config(tmp_path, learning_rate=learning_rate, critic_learning_rate=1e-3, max_steps=40),
        train_dataset=_dataset(),
        peft_config=_lora() if use_lora else None,
    )
    # The reference for the KL-in-reward: the adapter-disabled policy with LoRA, a frozen copy without.
    assert (trainer.ref_model is None) == use_lora
    trainer.train()

    rewards = _history(trainer, "reward")
    assert len(rewards) == 20, rewards  # 40 optimizer steps = 20 generation rounds
    first, last = sum(rewards[:4]) / 4, sum(rewards[-4:]) / 4
    print(f"{'lora' if use_lora else 'full'} reward per round: {[round(r, 3) for r in rewards]}")
    assert last - first >= 0.15, f"mean reward {first:.3f} (first 4 rounds) -> {last:.3f} (last 4): {rewards}"
    # The critic tracks the returns: its loss falls from its untrained start.
    vf_loss = _history(trainer, "critic/vf_loss")
    assert sum(vf_loss[-8:]) / 8 < 0.5 * sum(vf_loss[:4]) / 4, vf_loss
    kl = _history(trainer, "kl")
    assert all(torch.isfinite(torch.tensor(kl))) and any(value != 0.0 for value in kl)


def test_critic_warmup_trains_only_the_critic(sharp_model, tmp_path):
    path, token_set = sharp_model
    trainer = PPOTrainer(
        model=str(path),
        reward_funcs=_fraction_reward(token_set),
        # weight_decay: AdamW's decoupled decay would move the actor even with a zero gradient, unless its lr is 0
        args=_config(tmp_path, learning_rate=1e-2, critic_warmup_steps=2, max_steps=2, weight_decay=0.1),
        train_dataset=_dataset(32),
    )
    policy_before = {name: p.detach().clone() for name, p in trainer.model.named_parameters()}
    critic_before = {name: p.detach().clone() for name, p in trainer.critic.named_parameters()}
    trainer.train()
    policy = dict(trainer.accelerator.unwrap_model(trainer.model).named_parameters())
    critic = dict(trainer.accelerator.unwrap_model(trainer.critic).named_parameters())
    unchanged = [name for name, before in policy_before.items() if torch.equal(before, policy[name])]
    assert len(unchanged) == len(policy_before), "the actor moved during critic warm-up"
    assert any(not torch.equal(before, critic[name]) for name, before in critic_before.items()), "critic never moved"
    assert _history(trainer, "critic/lr") == [1e-5, 1e-5]


def test_actor_moves_once_warmup_is_over(sharp_model, tmp_path):
    path, token_set = sharp_model
    trainer = PPOTrainer(
        model=str(path),
        reward_funcs=_fraction_reward(token_set),
        args=_config(tmp_path, learning_rate=1e-2, critic_warmup_steps=1, max_steps=2),
        train_dataset=_dataset(32),
    )
    before = {name: p.detach().clone() for name, p in trainer.model.named_parameters()}
    trainer.train()
    after = dict(trainer.accelerator.unwrap_model(trainer.model).named_parameters())
    assert any(not torch.equal(value, after[name]) for name, value in before.items())
    assert _history(trainer, "learning_rate")[-1] == pytest.approx(1e-2)


def test_evaluation_reports_rewards_without_the_critic(sharp_model, tmp_path):
    path, token_set = sharp_model
    trainer = PPOTrainer(
        model=str(path),
        reward_funcs=_fraction_reward(token_set),
        args=_config(tmp_path, per_device_eval_batch_size=8, max_steps=1),
        train_dataset=_dataset(32),
        eval_dataset=_dataset(8),
    )
    metrics = trainer.evaluate()
    assert 0.0 <= metrics["eval_reward"] <= 1.0
    assert "eval_rewards/in_token_set/mean" in metrics
    assert not any(key.startswith("eval_critic/") for key in metrics)
    assert "eval_frac_reward_zero_std" not in metrics  # GRPO's group statistic: no groups in PPO


def test_llama_critic_loads_and_trains(tiny_llama_dir, tmp_path):
    def length(completions, completion_ids, **kwargs):
        return [len(ids) / 6 for ids in completion_ids]

    trainer = PPOTrainer(
        model=str(tiny_llama_dir),
        reward_funcs=length,
        args=_config(tmp_path, per_device_train_batch_size=4, max_steps=2),
        train_dataset=_dataset(16),
    )
    assert type(trainer.critic).__name__ == "LlamaForTokenClassification"
    trainer.train()
    assert len(_history(trainer, "critic/vf_loss")) == 2


def test_checkpoint_holds_the_critic_and_resume_restores_it(sharp_model, tmp_path):
    path, token_set = sharp_model

    def make() -> PPOTrainer:
        return PPOTrainer(
            model=str(path),
            reward_funcs=_fraction_reward(token_set),
            args=_config(tmp_path / "run", learning_rate=1e-3, max_steps=1, save_strategy="steps", save_steps=1),
            train_dataset=_dataset(32),
            peft_config=_lora(),
        )

    first = make()
    first.train()
    checkpoint = tmp_path / "run" / "checkpoint-1"
    saved = torch.load(checkpoint / CRITIC_DIRNAME / CRITIC_WEIGHTS_NAME, weights_only=True)
    # LoRA: only the critic's adapter and its scalar head are trainable, hence saved.
    assert saved and all("lora_" in name or "score" in name for name in saved), sorted(saved)[:6]
    trained = dict(first.accelerator.unwrap_model(first.critic).named_parameters())
    assert all(torch.equal(tensor, trained[name].detach()) for name, tensor in saved.items())
    assert os.path.isfile(checkpoint / CRITIC_DIRNAME / CRITIC_OPTIMIZER_NAME)

    resumed = make()
    fresh = {name: p.detach().clone() for name, p in resumed.critic.named_parameters() if name in saved}
    assert any(not torch.equal(fresh[name], tensor) for name, tensor in saved.items())
    at_start: dict = {}

    class SnapshotCritic(TrainerCallback):
        """The critic as training (re)starts, i.e. right after the checkpoint was loaded."""

        def on_train_begin(self, args, state, control, **kwargs):
            critic = resumed.accelerator.unwrap_model(resumed.critic)
            at_start.update({name: p.detach().clone() for name, p in critic.named_parameters() if name in saved})
            at_start["optimizer state"] = resumed.critic_optimizer.state_dict()["state"]

    resumed.add_callback(SnapshotCritic())
    resumed.train(resume_from_checkpoint=str(checkpoint))
    assert all(torch.equal(tensor, at_start[name]) for name, tensor in saved.items())
    assert at_start["optimizer state"], "the critic's AdamW moments were not restored"

    # A critic state that does not fit the critic fails, naming the file, instead of resuming half-loaded.
    torch.save(dict(list(saved.items())[1:]), checkpoint / CRITIC_DIRNAME / CRITIC_WEIGHTS_NAME)
    with pytest.raises(ValueError, match=f"{CRITIC_WEIGHTS_NAME} does not match the critic: missing"):
        make().train(resume_from_checkpoint=str(checkpoint))
