"""SFT on the ToolRL SFT data (SFT400 shipped with the paper, or the user's 4k file), loss on the assistant turn.

    accelerate launch --config_file accelerate_configs/zero3.yaml recipes/sft.py \
        --config recipes/Qwen2.5-3B-Instruct/sft400.yaml [--use_peft true] ...

Rows are prompt-completion conversations, so TRL's completion_only_loss masks the prompt. The output
directory is a full checkpoint (or a LoRA adapter: merge it with `python -m toolrl_trl.merge` before GRPO).
"""

from toolrl_trl.configs import parse_sft_args
from toolrl_trl.training import run_sft

if __name__ == "__main__":
    run_sft(*parse_sft_args())
