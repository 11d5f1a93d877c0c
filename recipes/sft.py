"""SFT on the ToolRL SFT data (SFT400 shipped with the paper, or the user's 4k file), loss on the assistant turn.

    accelerate launch --config_file accelerate_configs/zero3.yaml recipes/sft.py \
        --config recipes/Qwen2.5-3B-Instruct/sft400.yaml [--use_peft true] ...

Without --config it runs the tiny CPU recipe (recipes/tiny/sft400.yaml). Rows are prompt-completion
conversations, so TRL's completion_only_loss masks the prompt. The output directory is a full checkpoint
(or a LoRA adapter: merge it with `python -m toolrl_trl.merge` before GRPO).
"""

from pathlib import Path

from toolrl_trl.cli import PAPER_RUN, run_guarded, with_default_recipe
from toolrl_trl.configs import parse_sft_args
from toolrl_trl.training import run_sft

TINY_RECIPE = Path(__file__).parent / "tiny" / "sft400.yaml"


def main(argv: list[str]) -> None:
    run_sft(
        *parse_sft_args(
            with_default_recipe(argv, TINY_RECIPE, PAPER_RUN.format(script="recipes/sft.py", method="sft400"))
        )
    )


if __name__ == "__main__":
    run_guarded(main)
