"""PPO with the ToolRL rewards (the paper's PPO baseline): cold start, or from an SFT checkpoint (SFT400-then-PPO).

    accelerate launch --config_file accelerate_configs/zero3.yaml recipes/ppo_cold_start.py \
        --config recipes/Qwen2.5-3B-Instruct/ppo_cold_start.yaml [--use_peft true] [--granularity coarse] ...

Same options as recipes/grpo_cold_start.py plus PPOConfig's (kl_coef, gamma, lam, critic_learning_rate,
critic_warmup_steps, ...); unknown keys or flags are errors. Batch sizes are checked against the world size
(512 prompts x 1 rollout per round, 4 updates) before the model loads.
"""

import logging

from trl import get_peft_config

from toolrl_trl import training
from toolrl_trl.ppo import PPOTrainer, parse_ppo_args
from toolrl_trl.rewards import get_reward_funcs

logger = logging.getLogger(__name__)


def main(script_args, data_args, reward_args, training_args, model_args):
    training.setup_logging(training_args)
    training.check_rl_run(script_args, training_args, min_generations=1)  # before anything heavy
    checkpoint = training.resolve_checkpoint(training_args)
    training.seed_everything(training_args)

    tokenizer = training.load_tokenizer(model_args, training_args, padding_side="left")
    splits = training.build_data(data_args, "rl", tokenizer, training_args)
    reward_funcs = get_reward_funcs(reward_args, training_args)
    logger.info("rewards: %s (%s)", [f.__name__ for f in reward_funcs], reward_args)

    trainer = PPOTrainer(
        model=training.load_model(model_args, training_args),
        reward_funcs=reward_funcs,
        args=training_args,
        train_dataset=splits["train"],
        eval_dataset=training.eval_split(splits, training_args),
        processing_class=tokenizer,
        peft_config=get_peft_config(model_args),
    )
    training.train_and_save(trainer, training_args, checkpoint, dataset_name=data_args.data_source)


if __name__ == "__main__":
    main(*parse_ppo_args())
