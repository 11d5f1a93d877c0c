"""A generation budget for GRPO: stop regenerating prompts that teach nothing, and train on the rollouts that do.

In GRPO a prompt whose rollouts all get the same task reward has zero advantage: it costs a full generation round
and teaches nothing (a solved prompt, or one the policy cannot solve yet). The paper's recipe regenerates every
prompt in each of its 15 epochs. With ``generation_budget: true`` (off in every recipe):

* **Prompt skipping.** A prompt whose group had zero task-reward variance in each of the last ``budget_patience``
  epochs in which it was generated is not generated in the next epoch. Each skipped prompt is re-checked (generated
  anyway) with probability ``budget_recheck_rate`` per epoch, so one the policy has started to get wrong (or right)
  comes back: a re-check whose group shows a spread resets its count. The skipping happens in the sampler
  (``BudgetRepeatSampler``, TRL's ``RepeatSampler`` with the skipped prompts taken out), so a skipped prompt never
  reaches generation; the epoch is shorter, and the trainer's loop simply ends it early.
* **Rollout subsampling** (``rollout_subsample: M``, optional). Each group is still generated with
  ``num_generations`` (N) rollouts, but the loss is computed on the M of them whose task rewards have the largest
  variance (the highest k and lowest M - k, the max-variance subset), with the advantages recomputed over those M.
  It saves the policy's forward and backward on N - M rollouts, not generation (TRL computes the old and reference
  log-probs of all N before the subset is known).

What counts as "zero variance" is the **task** reward (the weighted sum of the reward functions), never the score
with the in-reward KL (``kl_reward_coef``): with the KL, a tied group still gets KL-only advantages, so skipping it
also drops the KL's pull towards the reference on that prompt. The recipes leave the budget off.

Limits: the history is per process and not saved in checkpoints (a resumed run starts with nothing skipped and
relearns what to skip in ``budget_patience`` epochs); an iterable dataset cannot be sampled, so it is refused.

Metrics (training, per generation batch): ``generation_budget/skipped_prompts`` and ``generation_budget/rechecked_prompts``
(counts for the current epoch), ``generation_budget/zero_variance_groups`` (share of this batch's groups with tied
task rewards) and, with subsampling, ``generation_budget/rollouts_trained`` (M / N). Generated tokens are logged by
``toolrl_trl.throughput`` (``throughput/generated_tokens``).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import TrainerCallback
from trl.trainer.utils import RepeatSampler

from toolrl_trl.kl_reward import FORK_STD_EPSILON, grpo_kl_reward_advantages, weighted_scores

logger = logging.getLogger(__name__)

#: Column added to the training dataset so each generation batch knows its prompts' dataset rows (removed from the
#: rows before TRL sees them, so reward functions never receive it).
INDEX_COLUMN = "_toolrl_budget_index"
SKIPPED_METRIC = "generation_budget/skipped_prompts"
RECHECKED_METRIC = "generation_budget/rechecked_prompts"
ZERO_VARIANCE_METRIC = "generation_budget/zero_variance_groups"
ROLLOUTS_METRIC = "generation_budget/rollouts_trained"
#: TRL's epsilon on the group std (the in-reward KL path uses the fork's, ``FORK_STD_EPSILON``).
TRL_STD_EPSILON = 1e-4


@dataclass
class GenerationBudget:
    """Which prompts to skip next epoch, from the zero-variance history of the epochs so far (pure Python).

    ``plan_epoch`` is called once per epoch by the sampler; ``record`` after each generation batch with the batch's
    groups. A prompt's *streak* counts the consecutive epochs in which it was generated and every group of it had
    tied task rewards; a streak of ``patience`` or more skips it (unless drawn for a re-check).
    """

    patience: int = 1
    recheck_rate: float = 0.1
    seed: int = 0
    epoch: int = -1
    streaks: dict[int, int] = field(default_factory=dict)
    #: Prompts generated in the current epoch -> whether all their groups so far were tied.
    observed: dict[int, bool] = field(default_factory=dict)
    skipped: frozenset[int] = frozenset()
    rechecked: frozenset[int] = frozenset()

    def __post_init__(self) -> None:
        if self.patience < 1:
            raise ValueError(f"budget_patience must be >= 1 (epochs), got {self.patience}")
        if not 0.0 <= self.recheck_rate <= 1.0:
            raise ValueError(f"budget_recheck_rate must be in [0, 1], got {self.recheck_rate}")

    def _close_epoch(self) -> None:
        for prompt, tied in self.observed.items():
            self.streaks[prompt] = self.streaks.get(prompt, 0) + 1 if tied else 0
        self.observed = {}

    def plan_epoch(self, order: Sequence[int], chunk: int) -> list[int]:
        """The prompts of the next epoch: ``order`` minus the skipped ones (re-checks included).

        The sampler drops a last partial batch of ``chunk`` prompts, as TRL's ``RepeatSampler`` does (those prompts
        wait for the next epoch's permutation); filling it with skipped prompts instead would spend a whole batch on
        prompts that teach nothing. Only when fewer than ``chunk`` prompts are left is one batch completed with
        skipped prompts (counted as re-checks), so an epoch is never empty.
        """
        self._close_epoch()
        self.epoch += 1
        rng = random.Random(f"toolrl-generation-budget:{self.seed}:{self.epoch}")
        candidates = sorted(prompt for prompt, streak in self.streaks.items() if streak >= self.patience)
        rechecked = {prompt for prompt in candidates if rng.random() < self.recheck_rate}
        skipped = set(candidates) - rechecked
        kept = [prompt for prompt in order if prompt not in skipped]
        if len(kept) < chunk:  # never an empty epoch: complete one batch with skipped prompts, counted as re-checks
            fill = set([prompt for prompt in order if prompt in skipped][: chunk - len(kept)])
            kept = [prompt for prompt in order if prompt not in skipped or prompt in fill]
            rechecked, skipped = rechecked | fill, skipped - fill
        self.skipped, self.rechecked = frozenset(skipped), frozenset(rechecked)
        if skipped or rechecked:
            logger.info(
                "generation budget, epoch %d: %d prompt(s) skipped, %d re-checked, %d generated",
                self.epoch,
                len(skipped),
                len(rechecked),
                len(kept) - len(kept) % chunk,
            )
        return kept

    def record(self, prompts: Sequence[int], tied: Sequence[bool]) -> None:
        """Note one generation batch: ``prompts[g]`` is group g's dataset row, ``tied[g]`` whether its task rewards tie."""
        for prompt, is_tied in zip(prompts, tied, strict=True):
            self.observed[int(prompt)] = self.observed.get(int(prompt), True) and bool(is_tied)


class BudgetRepeatSampler(RepeatSampler):
    """TRL's ``RepeatSampler`` whose epochs leave out the prompts ``budget`` skips.

    It draws the same permutation as ``RepeatSampler`` (one ``randperm`` per epoch from the same generator), so with
    nothing skipped it yields exactly TRL's sequence. ``len()`` stays the full epoch's: the trainer sizes its loop
    (and ``max_steps``) on it and ends a shorter epoch when the sampler runs out.
    """

    def __init__(self, *args: Any, budget: GenerationBudget, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.budget = budget

    def __iter__(self) -> Iterator[int]:
        if self.shuffle:
            order = torch.randperm(self.num_samples, generator=self.generator).tolist()
        else:
            order = list(range(self.num_samples))
        plan = self.budget.plan_epoch(order, self.batch_size)
        for start in range(0, len(plan) - self.batch_size + 1, self.batch_size):
            chunk = plan[start : start + self.batch_size]
            for _ in range(self.repeat_count):
                for index in chunk:
                    for _ in range(self.mini_repeat_count):
                        yield index


# --------------------------------------------------------------------------------------------------------------------
# Pure functions: ties and the max-variance subset
# --------------------------------------------------------------------------------------------------------------------


def tied_groups(task_scores: torch.Tensor, num_generations: int) -> torch.Tensor:
    """(G,) booleans: True for groups whose scorable (non-NaN) task scores are all equal (or that have none)."""
    grouped = task_scores.float().view(-1, num_generations)
    valid = ~torch.isnan(grouped)
    highest = torch.where(valid, grouped, torch.full_like(grouped, -torch.inf)).amax(dim=1)
    lowest = torch.where(valid, grouped, torch.full_like(grouped, torch.inf)).amin(dim=1)
    return ~valid.any(dim=1) | (highest == lowest)


def max_variance_subset(scores: Sequence[float], size: int) -> list[int]:
    """Indices of the ``size`` scores with the largest variance: the best k and worst ``size - k`` for the best k.

    A max-variance subset always has that shape (PODS, Xu et al. 2025), so trying every k is exact. Ties between
    equal scores are broken towards higher scores, then lower indices, so the choice is deterministic. NaN scores (unscorable) sort last and are
    picked only when needed.
    """
    if not 1 <= size <= len(scores):
        raise ValueError(f"cannot keep {size} of {len(scores)} rollouts")
    scorable = sorted((i for i in range(len(scores)) if scores[i] == scores[i]), key=lambda i: (-scores[i], i))
    if len(scorable) < size:
        unscorable = [i for i in range(len(scores)) if scores[i] != scores[i]]
        return sorted(scorable + unscorable[: size - len(scorable)])
    best_variance, best = -1.0, scorable[:size]
    for top in range(size, -1, -1):  # on a tie, the subset with more of the highest scores (then lower indices)
        chosen = scorable[:top] + scorable[len(scorable) - (size - top) :]
        values = [scores[i] for i in chosen]
        mean = sum(values) / size
        variance = sum((v - mean) ** 2 for v in values) / size
        if variance > best_variance + 1e-12:
            best_variance, best = variance, chosen
    return sorted(best)


# --------------------------------------------------------------------------------------------------------------------
# Trainer hooks (called by toolrl_trl.grpo.ToolRLGRPOTrainer)
# --------------------------------------------------------------------------------------------------------------------


def add_index_column(dataset: Any) -> Any:
    """``dataset`` with its row numbers in ``INDEX_COLUMN`` (a map-style ``datasets.Dataset`` is required)."""
    from datasets import Dataset

    if not isinstance(dataset, Dataset):
        raise ValueError(
            "generation_budget needs a map-style datasets.Dataset as train_dataset (it samples prompts by row), got "
            f"{type(dataset).__name__}"
        )
    if INDEX_COLUMN in dataset.column_names:
        return dataset
    return dataset.add_column(INDEX_COLUMN, list(range(len(dataset))))


def pop_prompt_indices(inputs: list[dict[str, Any]]) -> list[int] | None:
    """Take ``INDEX_COLUMN`` out of each row (reward functions never see it); None when the rows have none (eval)."""
    indices = [row.pop(INDEX_COLUMN, None) for row in inputs]
    if any(index is None for index in indices):
        return None
    return [int(index) for index in indices]


def record_generation_batch(trainer: Any, local_indices: list[int]) -> torch.Tensor:
    """Feed the batch's groups to ``trainer.generation_budget`` and log the budget metrics; returns the ties (G,)."""
    budget: GenerationBudget = trainer.generation_budget
    n = trainer.num_generations
    device = trainer.accelerator.device
    gathered = trainer.accelerator.gather(torch.tensor(local_indices, device=device, dtype=torch.long)).cpu()
    groups = gathered.view(-1, n)
    if not torch.all(groups == groups[:, :1]):
        raise RuntimeError(
            "generation_budget: a group of num_generations consecutive completions spans several prompts; the "
            "installed TRL groups completions differently than this module expects."
        )
    scores, _ = weighted_scores(trainer._last_rewards_per_func.cpu(), trainer.reward_weights.cpu())
    scorable = ~torch.isnan(trainer._last_rewards_per_func.cpu()).all(dim=1)
    scores = torch.where(scorable, scores, torch.full_like(scores, float("nan")))
    tied = tied_groups(scores, n)
    budget.record(groups[:, 0].tolist(), tied.tolist())
    metrics = trainer._metrics["train"]
    metrics[SKIPPED_METRIC].append(float(len(budget.skipped)))
    metrics[RECHECKED_METRIC].append(float(len(budget.rechecked)))
    metrics[ZERO_VARIANCE_METRIC].append(tied.float().mean().item())
    return tied


def check_subsample_geometry(num_generations: int, keep: int, per_device: int, steps_per_generation: int) -> None:
    """Raise ``ValueError`` unless each process holds whole groups and the kept rows split into equal micro-batches."""
    if not 2 <= keep < num_generations:
        raise ValueError(
            f"rollout_subsample={keep} must be at least 2 (a spread needs two rollouts) and below num_generations="
            f"{num_generations} (0 turns it off)"
        )
    local = per_device * steps_per_generation
    if local % num_generations or (per_device * keep) % num_generations:
        raise ValueError(
            f"rollout_subsample={keep} needs whole groups on each process and equal micro-batches after subsampling: "
            f"per_device_train_batch_size x steps_per_generation ({local}) and per_device_train_batch_size x "
            f"rollout_subsample ({per_device * keep}) must both be multiples of num_generations ({num_generations})"
        )


#: Per-completion entries of TRL's generation output that subsampling slices (the rest are scalars or per-batch).
_ROW_KEYS = (
    "prompt_ids",
    "prompt_mask",
    "completion_ids",
    "completion_mask",
    "advantages",
    "old_per_token_logps",
    "ref_per_token_logps",
    "sampling_per_token_logps",
    "importance_sampling_ratio",
    "tool_mask",
)
#: Entries subsampling cannot slice (images and their metadata): refused rather than silently misaligned.
_UNSUPPORTED_KEYS = ("pixel_values", "image_grid_thw", "num_images", "token_type_ids", "mm_token_type_ids")


def subsample_rollouts(trainer: Any, output: dict[str, Any], kl_sums: torch.Tensor | None) -> dict[str, Any]:
    """Keep, per group, the ``rollout_subsample`` rollouts with the largest task-reward variance; recompute advantages.

    ``kl_sums`` (all processes' completions, ``sum_t log pi_old - log pi_ref``) is given with the in-reward KL: the
    scores are then the fork's (task - coef x KL sum) and the epsilon the fork's; otherwise TRL's GRPO advantage.
    """
    keep = trainer.args.rollout_subsample
    n = trainer.num_generations
    unsupported = [key for key in _UNSUPPORTED_KEYS if key in output]
    if unsupported:
        raise ValueError(f"rollout_subsample does not support multimodal batches (got {unsupported})")
    rewards = trainer._last_rewards_per_func.cpu()
    task, scorable = weighted_scores(rewards, trainer.reward_weights.cpu())
    task = torch.where(scorable, task, torch.full_like(task, float("nan")))
    groups = task.view(-1, n)
    chosen = torch.tensor(
        [g * n + i for g in range(groups.size(0)) for i in max_variance_subset(groups[g].tolist(), keep)]
    )
    coef = getattr(trainer, "reward_kl_coef", 0.0)
    kl = kl_sums.cpu()[chosen] if kl_sums is not None else torch.zeros(len(chosen))
    advantages, _, _ = grpo_kl_reward_advantages(
        task[chosen],
        kl,
        coef,
        keep,
        trainer.scale_rewards,
        epsilon=FORK_STD_EPSILON if kl_sums is not None else TRL_STD_EPSILON,
    )
    batch = output["completion_ids"].size(0)
    start = trainer.accelerator.process_index * batch
    local = (chosen >= start) & (chosen < start + batch)
    rows = (chosen[local] - start).to(output["completion_ids"].device)
    for key in _ROW_KEYS:
        value = output.get(key)
        if isinstance(value, torch.Tensor) and value.dim() > 0 and value.size(0) == batch:
            output[key] = value[rows]
    output["advantages"] = advantages[local].to(output["advantages"].device, output["advantages"].dtype)
    mask = output["completion_mask"]
    if "tool_mask" in output:
        mask = mask * output["tool_mask"]
    output["num_items_in_batch"] = trainer.accelerator.gather(mask.sum()).sum()
    trainer._metrics["train"][ROLLOUTS_METRIC].append(keep / n)
    return output


# --------------------------------------------------------------------------------------------------------------------
# The measurement: ``python -m toolrl_trl.generation_budget`` (docs/performance.md)
# --------------------------------------------------------------------------------------------------------------------


@dataclass
class BudgetStudyArguments:
    """``python -m toolrl_trl.generation_budget``: GRPO with and without the budget, held-out reward per epoch."""

    start_dir: str = field(
        default="outputs/perf/demo_seed2",
        metadata={
            "help": "A `make demo` output folder: its sft/ model is the starting point, data/grpo.jsonl the training "
            "prompts, data/heldout.jsonl (the unseen_prompts subset) the held-out set."
        },
    )
    out_dir: str = field(default="outputs/perf/budget", metadata={"help": "Runs and budget_study.json go here."})
    seeds: str = field(default="0,1,2", metadata={"help": "Comma-separated GRPO seeds."})
    arms: str = field(
        default="off,on",
        metadata={
            "help": "Comma-separated arms: off (the paper's), on (budget_args), sub (budget_args + subsample_args)."
        },
    )
    train_prompts: int = field(default=96, metadata={"help": "Training prompts (the first rows of grpo.jsonl)."})
    eval_prompts: int = field(default=128, metadata={"help": "Held-out prompts evaluated after each epoch (greedy)."})
    epochs: int = field(default=6, metadata={"help": "Training epochs over the training prompts."})
    recipe_args: str = field(
        default="--num_generations 4 --per_device_train_batch_size 16 --prompts_per_generation_round 4 "
        "--learning_rate 1.0e-4",
        metadata={"help": "Flags added to recipes/tiny/demo_grpo.yaml for every arm (the paper's 4 rollouts)."},
    )
    budget_args: str = field(
        default="--generation_budget true --budget_patience 1 --budget_recheck_rate 0.1",
        metadata={"help": "Flags the `on` and `sub` arms add."},
    )
    subsample_args: str = field(
        default="--rollout_subsample 2", metadata={"help": "Flags the `sub` arm adds on top of budget_args."}
    )

    def __post_init__(self) -> None:
        unknown = set(self.arms.split(",")) - {"off", "on", "sub"}
        if unknown:
            raise ValueError(f"unknown arm(s) {sorted(unknown)}: use off, on, sub")


class _EpochEvaluation(TrainerCallback):
    """After each epoch (and before the first), greedy held-out reward; the clock of training excludes it."""

    def __init__(self, trainer: Any, prompts: list, truths: list[str], reward_config: Any, max_new_tokens: int):
        self.trainer, self.prompts, self.truths = trainer, prompts, truths
        self.reward_config, self.max_new_tokens = reward_config, max_new_tokens
        self.points: list[dict[str, float]] = []
        self.eval_s = 0.0
        self.start = 0.0

    def _evaluate(self, epoch: int) -> None:
        import time

        from toolrl_trl import throughput
        from toolrl_trl.rewards import score

        begin = time.perf_counter()
        train_s = begin - self.start - self.eval_s
        model, tokenizer = self.trainer.model, self.trainer.processing_class
        was_training = model.training
        model.eval()
        completions: list[str] = []
        with torch.no_grad():
            for start in range(0, len(self.prompts), 32):
                texts = [
                    tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True)
                    for p in self.prompts[start : start + 32]
                ]
                batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
                out = model.generate(
                    **batch, max_new_tokens=self.max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id
                )
                completions += tokenizer.batch_decode(out[:, batch["input_ids"].size(1) :], skip_special_tokens=True)
        model.train(was_training)
        rewards = [score(c, t, 1, self.reward_config).total for c, t in zip(completions, self.truths, strict=True)]
        callback = next(
            cb for cb in self.trainer.callback_handler.callbacks if isinstance(cb, throughput.ThroughputCallback)
        )
        budget = getattr(self.trainer, "generation_budget", None)
        self.points.append(
            {
                "epoch": epoch,
                "step": self.trainer.state.global_step,
                "train_s": train_s,
                "generated_tokens": callback.totals.tokens,
                "heldout_reward": sum(rewards) / len(rewards),
                "skipped_prompts": len(budget.skipped) if budget is not None else 0,
            }
        )
        self.eval_s += time.perf_counter() - begin
        logger.info("epoch %d: %s", epoch, self.points[-1])

    def on_train_begin(self, args, state, control, **kwargs):
        import time

        self.start = time.perf_counter()
        self._evaluate(0)

    def on_epoch_end(self, args, state, control, **kwargs):
        self._evaluate(len(self.points))


def _first_reach(points: list[dict[str, float]], key: str, target: float) -> float:
    """``key`` (time or tokens) where the held-out reward first reaches ``target``, interpolated between evaluations."""
    previous = None
    for point in points:
        if point["heldout_reward"] >= target:
            if previous is None or point["heldout_reward"] == previous["heldout_reward"]:
                return point[key]
            share = (target - previous["heldout_reward"]) / (point["heldout_reward"] - previous["heldout_reward"])
            return previous[key] + share * (point[key] - previous[key])
        previous = point
    return float("nan")


#: Targets of the comparison, as shares of the best held-out reward both arms reach (1.0: that reward itself).
TARGET_SHARES = (0.95, 0.99, 1.0)


def compare_at_equal_reward(off: list[dict[str, float]], on: list[dict[str, float]]) -> list[dict[str, float]]:
    """Per target reward: the wall time and generated tokens each arm needs to first reach it, and their ratios.

    The targets are ``TARGET_SHARES`` of the best held-out reward both arms reach (after any epoch), so both reach
    each. A ratio above 1 means the budget got there sooner.
    """
    common = min(max(p["heldout_reward"] for p in off[1:]), max(p["heldout_reward"] for p in on[1:]))
    results = []
    for share in TARGET_SHARES:
        target = common * share
        result = {"share": share, "target_reward": target}
        for key in ("train_s", "generated_tokens"):
            result[f"off_{key}"], result[f"on_{key}"] = _first_reach(off, key, target), _first_reach(on, key, target)
            result[f"speedup_{key}"] = (
                result[f"off_{key}"] / result[f"on_{key}"] if result[f"on_{key}"] else float("nan")
            )
        results.append(result)
    return results


def run_study_arm(args: BudgetStudyArguments, seed: int, arm: str, train_file: str) -> dict[str, Any]:
    import json
    import shlex
    import time
    from pathlib import Path

    from transformers import PrinterCallback

    from toolrl_trl.configs import parse_grpo_args
    from toolrl_trl.grpo import ToolRLGRPOTrainer
    from toolrl_trl.training import build_rl_trainer

    start_dir = Path(args.start_dir)
    out = Path(args.out_dir) / f"seed{seed}-{arm}"
    argv = ["--config", str(Path(__file__).resolve().parents[1] / "recipes" / "tiny" / "demo_grpo.yaml")]
    argv += ["--model_name_or_path", str(start_dir / "sft"), "--data_source", train_file, "--output_dir", str(out)]
    argv += [
        "--max_steps",
        "-1",
        "--num_train_epochs",
        str(args.epochs),
        "--seed",
        str(seed),
        "--disable_tqdm",
        "true",
    ]
    argv += shlex.split(args.recipe_args) + (shlex.split(args.budget_args) if arm in ("on", "sub") else [])
    argv += shlex.split(args.subsample_args) if arm == "sub" else []
    parsed = parse_grpo_args(argv, world_size=1)
    trainer, _ = build_rl_trainer(ToolRLGRPOTrainer, *parsed)
    trainer.remove_callback(PrinterCallback)
    held_out = [json.loads(line) for line in (start_dir / "data" / "heldout.jsonl").read_text().splitlines()]
    held_out = [row for row in held_out if row["subset"] == "unseen_prompts"][: args.eval_prompts]
    evaluation = _EpochEvaluation(
        trainer,
        [row["prompt"] for row in held_out],
        [row["ground_truth"] for row in held_out],
        parsed.reward,
        parsed.training.max_completion_length,
    )
    trainer.add_callback(evaluation)
    begin = time.perf_counter()
    trainer.train()
    return {
        "seed": seed,
        "arm": arm,
        "argv": argv,
        "points": evaluation.points,
        "wall_s": time.perf_counter() - begin,
        "eval_s": evaluation.eval_s,
        "steps": trainer.state.global_step,
    }


def study(args: BudgetStudyArguments) -> dict[str, Any]:
    """Every (seed, arm) run, interleaved by seed, and the per-seed comparison at equal held-out reward."""
    import json
    from pathlib import Path

    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = (Path(args.start_dir) / "data" / "grpo.jsonl").read_text().splitlines()[: args.train_prompts]
    train_file = out / "train.jsonl"
    train_file.write_text("\n".join(rows) + "\n")
    runs = []
    for seed in (int(s) for s in args.seeds.split(",")):
        for arm in args.arms.split(","):
            runs.append(run_study_arm(args, seed, arm, str(train_file)))
            (out / "budget_study.json").write_text(json.dumps({"runs": runs}, indent=2))
    comparisons = []
    for seed in sorted({run["seed"] for run in runs}):
        by_arm = {run["arm"]: run["points"] for run in runs if run["seed"] == seed}
        for arm in ("on", "sub"):
            if {"off", arm} <= set(by_arm):
                comparisons += [
                    {"seed": seed, "arm": arm, **c} for c in compare_at_equal_reward(by_arm["off"], by_arm[arm])
                ]
    summary = {"settings": {k: getattr(args, k) for k in args.__dataclass_fields__}, "runs": runs}
    summary["comparisons"] = comparisons
    (out / "budget_study.json").write_text(json.dumps(summary, indent=2))
    return summary


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    from transformers import HfArgumentParser

    from toolrl_trl.cli import configure_logging

    (args,) = HfArgumentParser(BudgetStudyArguments).parse_args_into_dataclasses(args=argv)
    configure_logging()
    summary = study(args)
    for run in summary["runs"]:
        last = run["points"][-1]
        print(
            f"seed {run['seed']} budget {run['arm']:<3}: {run['steps']:4d} steps, {last['train_s']:7.1f} s, "
            f"{last['generated_tokens']:8d} tokens, held-out reward {run['points'][0]['heldout_reward']:.3f} -> "
            f"{last['heldout_reward']:.3f}"
        )
    for c in summary["comparisons"]:
        print(
            f"seed {c['seed']}, off vs {c['arm']}: held-out reward {c['target_reward']:.3f} ({c['share']:.0%} of the "
            "best both reach): "
            f"time {c['off_train_s']:.1f} s -> "
            f"{c['on_train_s']:.1f} s ({c['speedup_train_s']:.2f}x), tokens {c['off_generated_tokens']:.0f} -> "
            f"{c['on_generated_tokens']:.0f} ({c['speedup_generated_tokens']:.2f}x)"
        )
    return summary


if __name__ == "__main__":
    from toolrl_trl.cli import run_guarded

    run_guarded(main)
