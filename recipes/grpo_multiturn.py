"""Executed multi-turn GRPO: rollouts that call real tools (TRL's environment_factory) with the ToolRL rewards.

    accelerate launch --config_file accelerate_configs/zero3.yaml --num_processes 8 \
        recipes/grpo_multiturn.py --config recipes/Qwen2.5-3B-Instruct/grpo_multiturn.yaml [--use_peft true]

Without --config it runs the tiny CPU recipe (recipes/tiny/grpo_multiturn.yaml). Each rollout gets its own
environment (toolrl_trl/envs: the synthetic world's executable tools, or any registered environment); TRL executes
the calls, masks the tool results from the loss and generates again up to max_tool_calling_iterations. Rewards:
per-turn format, fine-grained call correctness and the executed outcome (toolrl_trl.trajectory_rewards);
docs/multiturn.md explains the mode.
"""

from pathlib import Path

from toolrl_trl.cli import PAPER_RUN, run_guarded, with_default_recipe
from toolrl_trl.configs import parse_grpo_multiturn_args
from toolrl_trl.envs.multiturn import run_grpo_multiturn
from toolrl_trl.grpo import ToolRLGRPOTrainer

TINY_RECIPE = Path(__file__).parent / "tiny" / "grpo_multiturn.yaml"


def main(argv: list[str]) -> None:
    argv = with_default_recipe(
        argv, TINY_RECIPE, PAPER_RUN.format(script="recipes/grpo_multiturn.py", method="grpo_multiturn")
    )
    run_grpo_multiturn(ToolRLGRPOTrainer, *parse_grpo_multiturn_args(argv))


if __name__ == "__main__":
    run_guarded(main)
