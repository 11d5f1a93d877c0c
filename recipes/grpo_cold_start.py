"""GRPO with the ToolRL rewards: cold start from any causal LM, or from an SFT checkpoint (SFT-then-GRPO).

    accelerate launch --config_file accelerate_configs/zero3.yaml recipes/grpo_cold_start.py \
        --config recipes/Qwen2.5-3B-Instruct/grpo_cold_start.yaml [--use_peft true] [--granularity coarse] ...

The YAML holds every setting; flags override it; unknown keys or flags are errors. Batch sizes are
checked against the world size (512 prompts x 4 rollouts per round, 4 updates) before the model loads.
"""

from trl import GRPOTrainer

from toolrl_trl.configs import parse_grpo_args
from toolrl_trl.training import run_rl

if __name__ == "__main__":
    run_rl(GRPOTrainer, *parse_grpo_args())
