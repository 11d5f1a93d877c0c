"""PPO with the ToolRL rewards (the paper's PPO baseline): cold start, or from an SFT checkpoint (SFT400-then-PPO).

    accelerate launch --config_file accelerate_configs/zero3.yaml recipes/ppo_cold_start.py \
        --config recipes/Qwen2.5-3B-Instruct/ppo_cold_start.yaml [--use_peft true] [--granularity coarse] ...

Without --config it runs the tiny CPU recipe (recipes/tiny/ppo_cold_start.yaml). Same options as
recipes/grpo_cold_start.py plus PPOConfig's (kl_coef, gamma, lam, critic_learning_rate, critic_warmup_steps,
...); unknown keys or flags are errors. Batch sizes are checked against the world size (512 prompts x 1
rollout per round, 4 updates) before the model loads.
"""

from pathlib import Path

from toolrl_trl.cli import PAPER_RUN, run_guarded, with_default_recipe
from toolrl_trl.configs import parse_ppo_args
from toolrl_trl.ppo import PPOTrainer
from toolrl_trl.training import run_rl

TINY_RECIPE = Path(__file__).parent / "tiny" / "ppo_cold_start.yaml"


def main(argv: list[str]) -> None:
    argv = with_default_recipe(
        argv, TINY_RECIPE, PAPER_RUN.format(script="recipes/ppo_cold_start.py", method="ppo_cold_start")
    )
    run_rl(PPOTrainer, *parse_ppo_args(argv), min_generations=1)


if __name__ == "__main__":
    run_guarded(main)
