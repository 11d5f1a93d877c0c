"""Setup shared by the training entry points (GRPO, SFT, and later PPO), written once.

Each function takes TRL's own config objects (``ModelConfig``, a ``TrainingArguments`` subclass)
so any trainer's recipe can use it: logging, seeding, checkpoint resume (skipping checkpoints a kill left
incomplete), checks that must run before the model loads, tokenizer/model loading, data building, and the final
save + model card (toolrl_trl.model_card).
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import zipfile
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datasets import DatasetDict
    from transformers import PreTrainedModel, PreTrainedTokenizerBase, Trainer, TrainingArguments
    from trl import GRPOConfig, ModelConfig

logger = logging.getLogger(__name__)

#: Tags written into every model card this project saves (see toolrl_trl.model_card).
MODEL_CARD_TAGS = ["toolrl", "tool-calling"]
VLLM_MODES = ("colocate", "server")


def setup_logging(training_args: TrainingArguments) -> int:
    """Configure Python, transformers and datasets logging the way open-r1 does; return this project's level.

    ``log_level`` (main process) and ``log_level_replica`` (others) set the libraries' verbosity; the
    project's loggers (``toolrl_trl``, the recipe's ``__main__``) log at INFO or finer on the main process.
    """
    import datasets
    import transformers

    from toolrl_trl.cli import configure_logging

    configure_logging()  # the one stdout handler; the levels are set per logger below
    level = training_args.get_process_log_level()
    # This project's own messages (batch geometry, data counts, saving) stay visible on the main process even
    # when the libraries are quietened with log_level: warning.
    own_level = min(level, logging.INFO) if training_args.should_log else level
    for name in ("toolrl_trl", "__main__"):
        logging.getLogger(name).setLevel(own_level)
    datasets.utils.logging.set_verbosity(level)
    transformers.utils.logging.set_verbosity(level)
    transformers.utils.logging.enable_default_handler()
    transformers.utils.logging.enable_explicit_format()
    logger.info(
        "process %d/%d, device %s, distributed type %s, mixed precision: bf16=%s fp16=%s",
        training_args.process_index,
        training_args.world_size,
        training_args.device,
        training_args.distributed_state.distributed_type,
        training_args.bf16,
        training_args.fp16,
    )
    return own_level


def seed_everything(training_args: TrainingArguments) -> None:
    """Seed python, numpy and torch before data shuffling, LoRA init and model loading."""
    from transformers import set_seed

    set_seed(training_args.seed)


def resolve_checkpoint(training_args: TrainingArguments, trainer_cls: type | None = None) -> str | None:
    """The checkpoint to resume from: the one given, or else the last *complete* ``checkpoint-*`` in ``output_dir``.

    Auto-resuming (as open-r1 does) makes a preempted job restartable with the same command; start fresh
    with a new ``output_dir``. A job killed while writing ``checkpoint-N`` leaves it incomplete: it is skipped
    (with a warning naming what is missing) in favour of the one before. An explicit ``resume_from_checkpoint``
    must exist and be complete. ``trainer_cls`` adds what that trainer writes into a checkpoint (PPO's critic).
    """
    from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

    critic = _saves_critic(trainer_cls)
    explicit = training_args.resume_from_checkpoint
    if explicit:
        if not os.path.isdir(explicit):
            raise FileNotFoundError(f"resume_from_checkpoint={explicit!r} is not a directory")
        problems = checkpoint_problems(explicit, training_args, critic=critic)
        if problems:
            raise ValueError(
                f"resume_from_checkpoint={explicit!r} is incomplete (its save was interrupted?): "
                f"{'; '.join(problems)}. Resume from an earlier checkpoint."
            )
        logger.info("resuming from %s", explicit)
        return explicit
    if not os.path.isdir(training_args.output_dir):
        return None
    steps = []
    for name in os.listdir(training_args.output_dir):
        match = re.fullmatch(rf"{PREFIX_CHECKPOINT_DIR}-(\d+)", name)
        if match and os.path.isdir(os.path.join(training_args.output_dir, name)):
            steps.append(int(match.group(1)))
    skipped = []
    for step in sorted(steps, reverse=True):
        path = os.path.join(training_args.output_dir, f"{PREFIX_CHECKPOINT_DIR}-{step}")
        problems = checkpoint_problems(path, training_args, critic=critic)
        if problems:
            logger.warning("skipping incomplete checkpoint %s: %s", path, "; ".join(problems))
            skipped.append(path)
            continue
        logger.warning(
            "found %s in output_dir: resuming from it%s (use another output_dir to start over)",
            path,
            f" (skipped incomplete {', '.join(skipped)})" if skipped else "",
        )
        return path
    if skipped:
        logger.warning("no complete checkpoint in %s: training starts from step 0", training_args.output_dir)
    return None


def _saves_critic(trainer_cls: type | None) -> bool:
    """Whether ``trainer_cls`` is (a subclass of) ``ppo.PPOTrainer``, whose checkpoints hold a ``critic/`` folder.

    Looked up in ``sys.modules``: a PPOTrainer class exists only once ``toolrl_trl.ppo`` is imported, so a GRPO or SFT
    run does not pay for importing it.
    """
    ppo = sys.modules.get("toolrl_trl.ppo")
    return bool(trainer_cls is not None and ppo is not None and issubclass(trainer_cls, ppo.PPOTrainer))


#: Weight files ``save_model`` may write (full, sharded, adapter); DeepSpeed ZeRO-3 without gathered weights and FSDP
#: write only their own formats (a ``latest`` tag, ``pytorch_model_fsdp*``).
_WEIGHT_FILES = ("model.safetensors", "adapter_model.safetensors", "pytorch_model.bin", "adapter_model.bin")
_WEIGHT_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")


def checkpoint_problems(path: str, training_args: TrainingArguments, *, critic: bool = False) -> list[str]:
    """What is missing or truncated in ``checkpoint-N`` at ``path``; empty when it can be resumed from.

    Trainer._save_checkpoint writes the weights, then the optimizer and scheduler, then the RNG state, and
    ``trainer_state.json`` last: a kill mid-save leaves no (or a truncated) ``trainer_state.json``. Files are checked
    too (a checkpoint half deleted by ``save_total_limit`` rotation has a state but no weights), each for its full
    length where the format allows it (safetensors, torch's zip). PPO then writes ``critic/`` *after* the state, so a
    PPO checkpoint needs its critic files as well. ``save_only_model`` (of this run) drops the optimizer and scheduler.
    """
    from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

    problems: list[str] = []
    state_path = os.path.join(path, "trainer_state.json")
    try:
        with open(state_path) as handle:
            state = json.load(handle)
    except FileNotFoundError:
        problems.append("no trainer_state.json")
    except (OSError, ValueError) as err:
        problems.append(f"trainer_state.json unreadable ({err})")
    else:
        match = re.search(rf"{PREFIX_CHECKPOINT_DIR}-(\d+)$", os.path.normpath(path))
        if match and state.get("global_step") != int(match.group(1)):
            problems.append(f"trainer_state.json says global_step {state.get('global_step')}")
    deepspeed_tag = _deepspeed_tag(path, problems)
    problems.extend(_weight_problems(path, has_deepspeed=deepspeed_tag is not None))
    save_only_model = getattr(training_args, "save_only_model", False)
    if not save_only_model and deepspeed_tag is None:  # DeepSpeed keeps the optimizer in its tag folder
        if not any(name.startswith("optimizer") for name in os.listdir(path)):
            problems.append("no optimizer state")
        elif os.path.exists(os.path.join(path, "optimizer.pt")):
            problems.extend(_torch_file_problems(os.path.join(path, "optimizer.pt")))
        problems.extend(_torch_file_problems(os.path.join(path, "scheduler.pt")))
    if getattr(training_args, "use_adaptive_entropy", False):  # GRPOTrainer writes it after trainer_state.json
        try:
            with open(os.path.join(path, "entropy_ctrl_state.json")) as handle:
                json.load(handle)
        except (OSError, ValueError):
            problems.append("entropy_ctrl_state.json missing or truncated")
    if critic:
        problems.extend(_critic_problems(os.path.join(path, "critic"), save_only_model))
    return problems


def _deepspeed_tag(path: str, problems: list[str]) -> str | None:
    """The tag named by a DeepSpeed ``latest`` file (written after the tag folder), or None without one."""
    latest = os.path.join(path, "latest")
    if not os.path.isfile(latest):
        return None
    with open(latest) as handle:
        tag = handle.read().strip()
    if not tag or not os.path.isdir(os.path.join(path, tag)):
        problems.append(f"latest names a missing DeepSpeed folder {tag!r}")
    return tag


def _weight_problems(path: str, *, has_deepspeed: bool) -> list[str]:
    for name in _WEIGHT_FILES:
        if os.path.exists(os.path.join(path, name)):
            return _weight_file_problems(os.path.join(path, name))
    for name in _WEIGHT_INDEXES:
        index_path = os.path.join(path, name)
        if os.path.exists(index_path):
            try:
                with open(index_path) as handle:
                    shards = sorted(set(json.load(handle)["weight_map"].values()))
            except (OSError, ValueError, KeyError) as err:
                return [f"{name} unreadable ({err})"]
            return [problem for shard in shards for problem in _weight_file_problems(os.path.join(path, shard))]
    if has_deepspeed or any(name.startswith("pytorch_model_fsdp") for name in os.listdir(path)):
        return []
    return ["no model weights"]


def _weight_file_problems(path: str) -> list[str]:
    if path.endswith(".safetensors"):
        return _safetensors_problems(path)
    return _torch_file_problems(path)


def _safetensors_problems(path: str) -> list[str]:
    """A safetensors file is complete when it is as long as its header says (8-byte length, JSON header, data)."""
    name = os.path.basename(path)
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as handle:
            header_length = int.from_bytes(handle.read(8), "little")
            if header_length <= 0 or 8 + header_length > size:
                return [f"{name} truncated"]
            header = json.loads(handle.read(header_length))
    except FileNotFoundError:
        return [f"no {name}"]
    except (OSError, ValueError) as err:
        return [f"{name} unreadable ({err})"]
    end = max((entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"), default=0)
    return [] if size == 8 + header_length + end else [f"{name} truncated ({size} of {8 + header_length + end} bytes)"]


def _torch_file_problems(path: str) -> list[str]:
    """``torch.save`` writes a zip archive whose directory comes last: a cut-off file is no longer a zip."""
    name = os.path.basename(path)
    if not os.path.isfile(path):
        return [f"no {name}"]
    return [] if zipfile.is_zipfile(path) else [f"{name} truncated"]


def _critic_problems(directory: str, save_only_model: bool) -> list[str]:
    """PPO's ``critic/`` (see ``ppo.PPOTrainer._save_critic_state``): DeepSpeed engine folder or torch files."""
    from toolrl_trl.ppo import CRITIC_OPTIMIZER_NAME, CRITIC_SCHEDULER_NAME, CRITIC_WEIGHTS_NAME

    if not os.path.isdir(directory):
        return ["no critic/ folder (PPO writes it after trainer_state.json)"]
    problems: list[str] = []
    if _deepspeed_tag(directory, problems) is None:
        problems.extend(_torch_file_problems(os.path.join(directory, CRITIC_WEIGHTS_NAME)))
        if not save_only_model:
            problems.extend(_torch_file_problems(os.path.join(directory, CRITIC_OPTIMIZER_NAME)))
    if not save_only_model:
        problems.extend(_torch_file_problems(os.path.join(directory, CRITIC_SCHEDULER_NAME)))
    return [f"critic: {problem}" for problem in problems]


def check_generation_backend(training_args: GRPOConfig) -> None:
    """Fail early, before any model loads, when vLLM generation is requested but cannot run."""
    if not getattr(training_args, "use_vllm", False):
        return
    from trl.import_utils import is_vllm_available

    if training_args.vllm_mode not in VLLM_MODES:
        from toolrl_trl.configs import ConfigError

        raise ConfigError(f"vllm_mode={training_args.vllm_mode!r} is not supported; valid: {list(VLLM_MODES)}")
    if not is_vllm_available():
        hint = (
            "start the server first with `trl vllm-serve --model <model>` on its own GPU(s)"
            if training_args.vllm_mode == "server"
            else "colocate mode runs vLLM inside each training process"
        )
        from toolrl_trl.cli import MissingDependencyError

        raise MissingDependencyError(
            f"use_vllm=true (vllm_mode={training_args.vllm_mode}) but the `vllm` package is not installed: install "
            f"it with `pip install -e '.[vllm]'` on a CUDA machine ({hint}), or pass `--use_vllm false` to generate "
            "with transformers."
        )


def uses_deepspeed(training_args: TrainingArguments) -> bool:
    """Whether DeepSpeed drives this run: an accelerate DeepSpeed config, or TrainingArguments' own ``deepspeed``."""
    return os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true" or bool(
        getattr(training_args, "deepspeed", None)
    )


def check_accelerator_setup(training_args: TrainingArguments) -> None:
    """Fail early on launcher/flag combinations that accelerate would otherwise resolve silently."""
    if uses_deepspeed(training_args) and getattr(training_args, "use_cpu", False):
        from toolrl_trl.configs import ConfigError

        raise ConfigError(
            "a DeepSpeed config was launched with use_cpu=true: accelerate then drops DeepSpeed without a word and "
            "trains with plain DDP. On a machine without GPUs, run DeepSpeed on CPU with `--use_cpu false "
            "--ddp_backend gloo` (and DS_ACCELERATOR=cpu); otherwise launch without the DeepSpeed config."
        )


def check_rl_run(
    script_args, training_args: GRPOConfig, world_size: int | None = None, *, min_generations: int = 2
) -> None:
    """Everything about a GRPO/PPO launch that can be wrong before loading a model: launcher, vLLM, batch geometry.

    ``script_args`` carries the batching targets (``GRPOScriptArguments``); ``prompts_per_generation_round``
    null skips the geometry check (TRL's own divisibility checks still apply).
    """
    from toolrl_trl.batching import BatchingError, get_world_size, validate_batching

    check_accelerator_setup(training_args)
    check_generation_backend(training_args)
    if script_args.prompts_per_generation_round is None:
        logger.info("prompts_per_generation_round is null: batch geometry not checked against the paper's")
        return
    launched = get_world_size() if world_size is None else world_size
    try:
        plan = validate_batching(
            training_args,
            launched,
            prompts_per_round=script_args.prompts_per_generation_round,
            updates_per_round=script_args.updates_per_generation_round,
            min_generations=min_generations,
        )
    except BatchingError as err:
        written_for = getattr(script_args, "world_size", None)
        if written_for is None or written_for == launched:
            raise
        raise BatchingError(
            f"this recipe's batch settings are written for world_size {written_for}, but {launched} process(es) were "
            f"launched: launch {written_for} (accelerate launch --num_processes {written_for}) or pass --auto_batch "
            f"true to recompute the split for {launched}. {err}"
        ) from err
    logger.info("batch geometry: %s", plan.describe())
    if training_args.num_iterations != 1:
        logger.info(
            "num_iterations=%d: each round is reused, %d optimizer steps per round",
            training_args.num_iterations,
            training_args.num_iterations * plan.updates_per_round,
        )


def check_sft_run(training_args, script_args=None) -> None:
    """Launcher checks; warnings when SFT would train on the prompt too (the paper's SFT learns the answer only) or
    runs on another world size than its recipe is written for (the effective batch then differs)."""
    check_accelerator_setup(training_args)
    written_for = getattr(script_args, "world_size", None)
    if written_for is not None and written_for != training_args.world_size:
        per_step = training_args.per_device_train_batch_size * training_args.gradient_accumulation_steps
        logger.warning(
            "this SFT recipe is written for world_size %d but runs on %d process(es): %d sequences per optimizer step "
            "instead of %d (scale gradient_accumulation_steps to keep the recipe's batch)",
            written_for,
            training_args.world_size,
            per_step * training_args.world_size,
            per_step * written_for,
        )
    if training_args.completion_only_loss is False:
        logger.warning(
            "completion_only_loss is false: the loss covers the system/user prompt as well as the assistant turn. "
            "The ToolRL SFT baselines train on the assistant turn only (completion_only_loss: true)."
        )


def prepare_model_path(script_args, model_args: ModelConfig, training_args: TrainingArguments) -> None:
    """Make ``model_name_or_path`` loadable or say why it is not, before anything heavy starts.

    A tiny recipe (``tiny_model_family`` set) builds its model there on first use, on the main process first. A
    path that does not exist and cannot be a Hub id (``owner/name``) is a user error with the fix.
    """
    import re

    from toolrl_trl.cli import UserError

    path = model_args.model_name_or_path
    family = getattr(script_args, "tiny_model_family", None)
    if family is not None and not os.path.exists(path):
        with training_args.main_process_first(desc="building the tiny model"):
            if training_args.process_index == 0:
                from toolrl_trl.cli import ensure_tiny_model

                ensure_tiny_model(path, family)
        return
    if os.path.exists(path):
        if not os.path.isdir(path):
            raise UserError(f"model_name_or_path={path!r} is a file; give the model's folder (with config.json)")
        return
    if not re.fullmatch(r"[\w.-]+(/[\w.-]+)?", path) or path.startswith((".", "/", "~")):
        raise UserError(
            f"model_name_or_path={path!r} is neither a folder nor a Hugging Face Hub id (owner/name): check the path"
        )


def load_tokenizer(
    model_args: ModelConfig, training_args: TrainingArguments, *, padding_side: str | None = None
) -> PreTrainedTokenizerBase:
    """The model's tokenizer (with its chat template); GRPO needs ``padding_side='left'`` for generation."""
    from transformers import AutoTokenizer

    kwargs: dict[str, Any] = {}
    if padding_side is not None:
        kwargs.update(padding_side=padding_side, truncation_side=padding_side)
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            model_args.model_name_or_path,
            revision=model_args.model_revision,
            trust_remote_code=getattr(training_args, "trust_remote_code", False),
            **kwargs,
        )
    except (OSError, ValueError) as err:
        from toolrl_trl.cli import UserError

        if os.path.isdir(model_args.model_name_or_path):
            raise
        offline = " (HF_HUB_OFFLINE=1 is set: only models already in the local cache load)" if _hub_offline() else ""
        raise UserError(
            f"model_name_or_path={model_args.model_name_or_path!r} is not a folder here and could not be loaded as a "
            f"Hugging Face Hub id{offline}: {' '.join(str(err).split())[:300]}"
        ) from err
    if tokenizer.chat_template is None:
        raise ValueError(
            f"{model_args.model_name_or_path} has no chat template: the ToolRL data are chat messages. Use an "
            "instruct/chat checkpoint (or set one with SFTConfig.chat_template_path for SFT)."
        )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on")


def model_init_kwargs(model_args: ModelConfig, training_args: TrainingArguments) -> dict[str, Any]:
    """``from_pretrained`` keyword arguments from TRL's ``ModelConfig`` (dtype, attention, quantization)."""
    from accelerate import PartialState
    from trl import get_quantization_config

    quantization_config = get_quantization_config(model_args)
    kwargs: dict[str, Any] = dict(
        revision=model_args.model_revision,
        trust_remote_code=getattr(training_args, "trust_remote_code", False),
        attn_implementation=model_args.attn_implementation,
        dtype=model_args.dtype,
        use_cache=not training_args.gradient_checkpointing,
    )
    if quantization_config is not None:
        kwargs["quantization_config"] = quantization_config
        # One full copy per process (what TRL's former get_kbit_device_map returned).
        kwargs["device_map"] = {"": PartialState().local_process_index}
    elif training_args.distributed_state.distributed_type in ("MULTI_GPU", "DEEPSPEED", "FSDP"):
        kwargs["device_map"] = None  # the trainer places (or shards) the model; "auto" would split it
    user_kwargs = getattr(training_args, "model_init_kwargs", None)
    if user_kwargs:
        kwargs.update(user_kwargs)
    return kwargs


def load_model(model_args: ModelConfig, training_args: TrainingArguments) -> PreTrainedModel:
    """Load the causal LM named by ``model_name_or_path`` (hub id, local directory or checkpoint) with TRL's loader."""
    from trl.trainer.utils import create_model_from_path

    kwargs = model_init_kwargs(model_args, training_args)
    if str(kwargs.get("dtype")) in ("bfloat16", "float16", "torch.bfloat16", "torch.float16") and not (
        model_args.use_peft or uses_deepspeed(training_args)
    ):
        logger.warning(
            "full fine-tuning with %s weights and no DeepSpeed: the optimizer updates half-precision weights with no "
            "fp32 master copy, so updates as small as lr 1e-6 mostly round away. Pass `--dtype float32` (bf16: true "
            "still computes in bf16) or use a ZeRO config (accelerate_configs/zero2.yaml, zero3.yaml).",
            kwargs.get("dtype"),
        )
    logger.info("loading model %s (dtype %s)", model_args.model_name_or_path, kwargs.get("dtype"))
    model = create_model_from_path(model_args.model_name_or_path, **kwargs)
    if getattr(training_args, "model_init_kwargs", None) is not None:
        # Already applied above; cleared so the trainer does not warn that they are ignored.
        training_args.model_init_kwargs = None
    return model


def build_data(data_args, kind: str, tokenizer: PreTrainedTokenizerBase, training_args: TrainingArguments):
    """Build the train/test splits from the data options (``kind`` is ``"rl"`` or ``"sft"``), main process first."""
    from toolrl_trl.data import build_datasets

    with training_args.main_process_first(desc=f"building the {kind} dataset"):
        splits: DatasetDict = build_datasets(data_args, kind=kind, tokenizer=tokenizer)
    logger.info(
        "%s data from %s: %s", kind, data_args.data_source, {name: len(split) for name, split in splits.items()}
    )
    if len(splits["train"]) == 0:
        from toolrl_trl.cli import UserError

        raise UserError(f"the {kind} training split built from data_source={data_args.data_source!r} is empty")
    return splits


def output_family(data_args, tokenizer: PreTrainedTokenizerBase, model_name: str = "the model"):
    """The chat-template family that writes and parses the rows (``output_format: native``); None for the paper's.

    Raises :class:`~toolrl_trl.cli.UserError` before any data is built when the model's template is not one the
    native rewards can parse.
    """
    if getattr(data_args, "output_format", "toolrl") != "native":
        return None
    from toolrl_trl import grammar
    from toolrl_trl.cli import UserError

    try:
        family = grammar.native_family(tokenizer)
    except grammar.GrammarError as err:
        raise UserError(f"{model_name}: {err}") from None
    logger.info("output_format native: rows, rewards and completions use the %s chat template", family.name)
    return family


def eval_split(splits, training_args: TrainingArguments):
    """The test split when evaluation is on (and non-empty), else ``None``."""
    if training_args.eval_strategy == "no":
        return None
    test = splits.get("test")
    if test is None or len(test) == 0:
        raise ValueError("eval_strategy is set but the data has no test rows: set test_size > 0 or eval_strategy: no")
    return test


def run_rl(trainer_cls, script_args, data_args, reward_args, training_args, model_args, *, min_generations: int = 2):
    """The body of an RL entry point: checks, data, ToolRL rewards, model (LoRA from ``--use_peft``), train, save.

    ``trainer_cls`` is TRL's ``GRPOTrainer`` or a subclass taking the same arguments (``ppo.PPOTrainer``);
    ``min_generations`` is the fewest rollouts per prompt its advantage needs (GRPO 2, PPO 1).
    """
    trainer, checkpoint = build_rl_trainer(
        trainer_cls, script_args, data_args, reward_args, training_args, model_args, min_generations=min_generations
    )
    return train_and_save(
        trainer,
        training_args,
        checkpoint,
        dataset_name=data_args.data_source,
        model_args=model_args,
        data_args=data_args,
        reward_args=reward_args,
        script_args=script_args,
    )


def build_rl_trainer(
    trainer_cls, script_args, data_args, reward_args, training_args, model_args, *, min_generations: int = 2
):
    """``run_rl`` up to training: the trainer (with ``throughput.ThroughputCallback``) and the checkpoint to resume.

    Separate so that ``toolrl_trl.bench_grpo`` and ``toolrl_trl.gpu_check`` time the recipe's own trainer.
    """
    from trl import get_peft_config

    from toolrl_trl.rewards import get_reward_funcs

    setup_logging(training_args)
    check_rl_run(script_args, training_args, min_generations=min_generations)  # before anything heavy
    checkpoint = resolve_checkpoint(training_args, trainer_cls)
    seed_everything(training_args)

    prepare_model_path(script_args, model_args, training_args)
    tokenizer = load_tokenizer(model_args, training_args, padding_side="left")
    family = output_family(data_args, tokenizer, model_args.model_name_or_path)
    splits = build_data(data_args, "rl", tokenizer, training_args)
    reward_funcs = get_reward_funcs(reward_args, training_args, native_family=family)
    logger.info("rewards: %s (%s)", [f.__name__ for f in reward_funcs], reward_args)

    trainer = trainer_cls(
        model=load_model(model_args, training_args),
        reward_funcs=reward_funcs,
        args=training_args,
        train_dataset=splits["train"],
        eval_dataset=eval_split(splits, training_args),
        processing_class=tokenizer,
        peft_config=get_peft_config(model_args),
    )
    from toolrl_trl import throughput

    throughput.attach(trainer)
    return trainer, checkpoint


def keep_hub_token_out_of_checkpoints(training_args: TrainingArguments) -> None:
    """Move ``hub_token`` into ``HF_TOKEN``: the Trainer pickles its arguments (``training_args.bin``) in every save.

    The Hub client reads ``HF_TOKEN`` wherever the token was passed explicitly, so pushing still works.
    """
    token = getattr(training_args, "hub_token", None)
    if token:
        os.environ["HF_TOKEN"] = token
        training_args.hub_token = None
        logger.info("hub_token moved to the HF_TOKEN environment variable, out of the saved training_args.bin")


def build_sft_trainer(script_args, data_args, training_args, model_args):
    """Checks, prompt-completion data and model (LoRA from ``--use_peft``): the SFT trainer, ready to train.

    Rows are prompt-completion conversations, so TRL's ``completion_only_loss`` masks the prompt. Returns
    ``(trainer, checkpoint)``, ``checkpoint`` being the one to resume from (or ``None``).
    """
    from trl import SFTTrainer, get_peft_config

    setup_logging(training_args)
    check_sft_run(training_args, script_args)
    checkpoint = resolve_checkpoint(training_args)
    seed_everything(training_args)

    prepare_model_path(script_args, model_args, training_args)
    tokenizer = load_tokenizer(model_args, training_args)
    output_family(data_args, tokenizer, model_args.model_name_or_path)
    splits = build_data(data_args, "sft", tokenizer, training_args)
    trainer = SFTTrainer(
        model=load_model(model_args, training_args),
        args=training_args,
        train_dataset=splits["train"],
        eval_dataset=eval_split(splits, training_args),
        processing_class=tokenizer,
        peft_config=get_peft_config(model_args),
    )
    return trainer, checkpoint


def run_sft(script_args, data_args, training_args, model_args) -> dict[str, float]:
    """The body of the SFT entry point: build the trainer, train, save; returns the train metrics."""
    trainer, checkpoint = build_sft_trainer(script_args, data_args, training_args, model_args)
    return train_and_save(
        trainer,
        training_args,
        checkpoint,
        dataset_name=data_args.data_source,
        model_args=model_args,
        data_args=data_args,
        script_args=script_args,
    )


def train_and_save(
    trainer: Trainer,
    training_args: TrainingArguments,
    checkpoint: str | None,
    *,
    dataset_name: str | None = None,
    model_args: ModelConfig | None = None,
    data_args: Any = None,
    reward_args: Any = None,
    script_args: Any = None,
) -> dict[str, float]:
    """Train (resuming from ``checkpoint``), then save the final model, metrics, state and this project's model card.

    With LoRA the output directory holds the adapter (``adapter_config.json``); otherwise full weights. The card
    (``toolrl_trl.model_card``) replaces TRL's at every checkpoint, at the end and on ``push_to_hub``; the parsed
    configs (all optional) fill its base-model, recipe, reward and data sections. Returns the train metrics.
    """
    from accelerate.utils import is_peft_model

    from toolrl_trl import model_card

    keep_hub_token_out_of_checkpoints(training_args)
    model_card.install(
        trainer,
        training_args,
        model_args=model_args,
        data_args=data_args,
        reward_args=reward_args,
        script_args=script_args,
        dataset_name=dataset_name,
    )
    result = trainer.train(resume_from_checkpoint=checkpoint)
    metrics = dict(result.metrics)
    trainer.log_metrics("train", metrics)
    trainer.save_metrics("train", metrics)
    trainer.save_state()

    trainer.save_model(training_args.output_dir)
    logger.info("model saved to %s", training_args.output_dir)
    if trainer.accelerator.is_main_process:
        model_name = os.path.basename(os.path.normpath(training_args.output_dir))
        trainer.create_model_card(model_name=model_name, dataset_name=dataset_name, tags=MODEL_CARD_TAGS)
        if not is_peft_model(trainer.model):
            # Gradient checkpointing trained with use_cache=False; inference wants the cache back. (An adapter
            # directory gets no config.json: it would look like a full checkpoint without weights.)
            trainer.model.config.use_cache = True
            trainer.model.config.save_pretrained(training_args.output_dir)

    if training_args.do_eval and trainer.eval_dataset is not None:
        eval_metrics = trainer.evaluate()
        trainer.log_metrics("eval", eval_metrics)
        trainer.save_metrics("eval", eval_metrics)

    if training_args.push_to_hub:
        trainer.push_to_hub(dataset_name=dataset_name, tags=MODEL_CARD_TAGS)
        logger.info("model pushed to the Hub: %s", trainer.hub_model_id)
    trainer.end()
    return metrics
