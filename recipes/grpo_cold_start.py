"""GRPO with the ToolRL rewards: cold start from any causal LM, or from an SFT checkpoint (SFT-then-GRPO).

    accelerate launch --config_file accelerate_configs/zero3.yaml recipes/grpo_cold_start.py \
        --config recipes/Qwen2.5-3B-Instruct/grpo_cold_start.yaml [--use_peft true] [--granularity coarse] ...

Without --config it runs the tiny CPU recipe (recipes/tiny/grpo_cold_start.yaml). The recipe holds every
setting; flags override it; unknown keys or flags are errors. Batch sizes are checked against the world size
(512 prompts x 4 rollouts per round, 4 updates) before the model loads. ``kl_reward_coef`` > 0 adds the paper
code's KL penalty inside the reward (toolrl_trl.grpo); 0 is TRL's GRPO.
"""

from pathlib import Path

from toolrl_trl.cli import PAPER_RUN, run_guarded, with_default_recipe
from toolrl_trl.configs import parse_grpo_args
from toolrl_trl.grpo import ToolRLGRPOTrainer
from toolrl_trl.training import run_rl

TINY_RECIPE = Path(__file__).parent / "tiny" / "grpo_cold_start.yaml"


def main(argv: list[str]) -> None:
    argv = with_default_recipe(
        argv, TINY_RECIPE, PAPER_RUN.format(script="recipes/grpo_cold_start.py", method="grpo_cold_start")
    )
    run_rl(ToolRLGRPOTrainer, *parse_grpo_args(argv))


if __name__ == "__main__":
    run_guarded(main)
