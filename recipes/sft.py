"""SFT on the ToolRL SFT data (SFT400 shipped with the paper, or the user's 4k file), loss on the assistant turn.

    accelerate launch --config_file accelerate_configs/zero3.yaml recipes/sft.py \
        --config recipes/Qwen2.5-3B-Instruct/sft400.yaml [--use_peft true] ...

Rows are prompt-completion conversations, so TRL's completion_only_loss masks the prompt. The output
directory is a full checkpoint (or a LoRA adapter: merge it with `python -m toolrl_trl.merge` before GRPO).
"""

from trl import SFTTrainer, get_peft_config

from toolrl_trl import training
from toolrl_trl.configs import make_sft_parser, parse_args


def main(script_args, data_args, training_args, model_args):
    training.setup_logging(training_args)
    training.check_sft_run(training_args)
    checkpoint = training.resolve_checkpoint(training_args)
    training.seed_everything(training_args)

    tokenizer = training.load_tokenizer(model_args, training_args)
    splits = training.build_data(data_args, "sft", tokenizer, training_args)

    trainer = SFTTrainer(
        model=training.load_model(model_args, training_args),
        args=training_args,
        train_dataset=splits["train"],
        eval_dataset=training.eval_split(splits, training_args),
        processing_class=tokenizer,
        peft_config=get_peft_config(model_args),
    )
    training.train_and_save(trainer, training_args, checkpoint, dataset_name=data_args.data_source)


if __name__ == "__main__":
    main(*parse_args(make_sft_parser()))
