"""PPO with the ToolRL rewards (the paper's PPO baseline): cold start, or from an SFT checkpoint (SFT400-then-PPO).

    accelerate launch --config_file accelerate_configs/zero3.yaml recipes/ppo_cold_start.py \
        --config recipes/Qwen2.5-3B-Instruct/ppo_cold_start.yaml [--use_peft true] [--granularity coarse] ...

Same options as recipes/grpo_cold_start.py plus PPOConfig's (kl_coef, gamma, lam, critic_learning_rate,
critic_warmup_steps, ...); unknown keys or flags are errors. Batch sizes are checked against the world size
(512 prompts x 1 rollout per round, 4 updates) before the model loads.
"""

from toolrl_trl.ppo import PPOTrainer, parse_ppo_args
from toolrl_trl.training import run_rl

if __name__ == "__main__":
    run_rl(PPOTrainer, *parse_ppo_args(), min_generations=1)
