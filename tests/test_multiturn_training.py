"""Executed multi-turn GRPO through TRL's own tool loop: masking, outcome from the environment, failing tools.

The fast tests replace only the policy's sampling (``GRPOTrainer._generate_single_turn``) by a script that writes
each turn as a model would (token ids of the Qwen2.5 tool-call format), so the episodes are known; everything else
is TRL's loop and this project's code: parsing, execution on the environment, tool-result suffixes, masks, rewards,
loss, optimizer step. The slow tests launch the recipe on 2 CPU ranks with ZeRO-2 and run the measured tiny demo.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
import torch
from helpers import ROOT, accelerate_cli, free_port, launch_env

from toolrl_trl.envs import ENVIRONMENTS, ToolEnvironment, register
from toolrl_trl.envs.world import WorldGenerator

RECIPE = ROOT / "recipes" / "tiny" / "grpo_multiturn.yaml"


class Faulty(ToolEnvironment):
    """One tool that works and three that fail: raising, hanging past the timeout, returning a non-text object."""

    tool_timeout_s = 0.3

    def _load(self, task):
        self.state = dict(task["initial_state"])

    def end_state(self):
        return dict(self.state)

    def lookup(self, key: str) -> str:
        """Look a key up.

        Args:
            key: The key.
        """
        return self.state[key]

    def explode(self, key: str) -> str:
        """Raise.

        Args:
            key: The key.
        """
        raise RuntimeError(f"exploded on {key}")

    def stall(self, key: str) -> str:
        """Hang.

        Args:
            key: The key.
        """
        time.sleep(30)
        return key

    def opaque(self, key: str) -> str:
        """Return a non-text object.

        Args:
            key: The key.
        """
        return object()


if "test_faulty" not in ENVIRONMENTS:
    register("test_faulty")(Faulty)


def native_call(tool_name: str, **arguments) -> str:
    return f"<tool_call>\n{json.dumps({'name': tool_name, 'arguments': arguments})}\n</tool_call>"


def build(tmp_path, model_dir, rows, *extra):
    from toolrl_trl.configs import parse_grpo_multiturn_args
    from toolrl_trl.envs.multiturn import build_trainer, routed
    from toolrl_trl.grpo import ToolRLGRPOTrainer

    argv = ["--config", str(RECIPE), "--model_name_or_path", str(model_dir), "--output_dir", str(tmp_path / "out")]
    argv += ["--max_steps", "1", "--max_completion_length", "400", "--logging_steps", "1", *extra]
    parsed = parse_grpo_multiturn_args(argv, world_size=1)
    trainer, _ = build_trainer(ToolRLGRPOTrainer, *parsed, rows={"train": routed(rows), "test": []})
    return trainer


def script(trainer, turns_for):
    """Make the policy write ``turns_for(prompt_text, round)``: round = tool results seen so far in the context."""
    tokenizer = trainer.processing_class

    def generate(prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        outputs = []
        for ids in prompt_ids:
            text = tokenizer.decode(ids)
            turn = turns_for(text, text.count("<tool_response>"))
            outputs.append(tokenizer(turn + tokenizer.eos_token, add_special_tokens=False)["input_ids"])
        return outputs, None

    trainer._generate_single_turn = generate


def batch(trainer):
    return [trainer.train_dataset[0]] * trainer.args.per_device_train_batch_size


@pytest.fixture(scope="module")
def email_task():
    return WorldGenerator(seed=0, chains=("contact_email",)).tasks("train", 1)[0]


def email_turns(task):
    first, second = task.task["reference_calls"]

    def turns(text, round_):
        if round_ == 0:
            return native_call(first["name"], **first["arguments"])
        if round_ == 1:
            return native_call(second["name"], **second["arguments"])
        return task.answer

    return turns


def test_tool_results_are_masked_from_the_loss_and_the_outcome_reads_the_state(tmp_path, tiny_model_dir, email_task):
    trainer = build(tmp_path, tiny_model_dir, [email_task.row()])
    script(trainer, email_turns(email_task))
    trainer.model.train()
    out = trainer._generate_and_score_completions(batch(trainer))
    tokenizer = trainer.processing_class

    # The mask: 0 exactly on the tool-result suffixes TRL inserted, 1 on what the policy wrote.
    ids, mask = out["completion_ids"][0], out["tool_mask"][0]
    valid = out["completion_mask"][0].bool()
    model_text = tokenizer.decode(ids[valid & mask.bool()])
    tool_text = tokenizer.decode(ids[valid & ~mask.bool()])
    assert "<tool_response>" in tool_text and email_task.task["reference_calls"][1]["arguments"]["to"] in tool_text
    assert "<tool_response>" not in model_text and model_text.count("<tool_call>") == 2
    assert email_task.answer in model_text

    # The environment ran the calls: its end state is the reference state, and the outcome says so.
    env = trainer.environments[0]
    assert env.end_state() == email_task.task["reference_state"] != email_task.task["initial_state"]
    assert [c["name"] for c in env.calls] == ["find_contact", "send_email"]
    metrics = {k: v[-1] for k, v in trainer._metrics["train"].items() if v}
    assert metrics["outcome/success"] == 1.0 and metrics["episode/turns"] == 3.0
    assert metrics["rewards/outcome/mean"] == 1.0 and metrics["rewards/correctness/mean"] == 3.0

    # The loss: no gradient reaches the positions that predict tool-result tokens, some reaches the policy's own.
    # (TRL scores with a fused LM head, so the hook sits on the final norm: hidden state i feeds only token i+1.)
    captured = {}
    handle = trainer.model.model.norm.register_forward_hook(lambda m, i, o: captured.setdefault("logits", o))
    out["advantages"] = torch.ones_like(out["advantages"])
    trainer.current_gradient_accumulation_steps = 1  # set by Trainer.train; this calls compute_loss by itself
    try:
        loss = trainer.compute_loss(trainer.model, out)
        captured["logits"].retain_grad()
        loss.backward()
    finally:
        handle.remove()
    grad = captured["logits"].grad[:, -ids.size(0) - 1 : -1].abs().sum(-1)  # position i predicts completion token i
    tool_positions = out["completion_mask"].bool() & ~out["tool_mask"].bool()
    assert tool_positions.any()
    assert grad[tool_positions].max() == 0
    assert grad[out["completion_mask"].bool() & out["tool_mask"].bool()].min() > 0


def test_failing_tools_become_error_messages_and_training_goes_on(tmp_path, tiny_model_dir):
    task = {
        "env": "test_faulty",
        "initial_state": {"a": "alpha"},
        "reference_calls": [{"name": "lookup", "arguments": {"key": "a"}}],
        "reference_state": {"a": "alpha"},
        "reference_answer": "alpha",
    }
    row = {"prompt": [{"role": "user", "content": "Look up a."}], "task": json.dumps(task)}
    trainer = build(tmp_path, tiny_model_dir, [row])
    failing = "".join(native_call(name, key="a") for name in ("explode", "opaque", "missing_tool", "stall"))
    seen_after_tools = []

    def turns(text, round_):
        if round_ == 0:
            return failing
        seen_after_tools.append(text)  # the context the policy continues from: its call and the tool results
        return "It is alpha."

    script(trainer, turns)

    start = time.perf_counter()
    trainer.train()  # one optimizer step on episodes whose tools raise, hang and return junk
    elapsed = time.perf_counter() - start
    assert elapsed < 60, f"a step took {elapsed:.0f} s: a hanging tool stalled training"

    context = seen_after_tools[0]
    for message in ("exploded on a", "did not return within 0.3 s", "returned object, not text", "missing_tool"):
        assert message in context.split("<tool_response>", 1)[1], message  # shown to the model as tool results
    env = trainer.environments[0]
    errors = {c["name"]: c["error"] for c in env.calls}
    assert "RuntimeError: exploded on a" in errors["explode"]
    assert "did not return within 0.3 s" in errors["stall"]
    assert "returned object, not text" in errors["opaque"]
    assert env.stalled
    logged = {k: v for e in trainer.state.log_history for k, v in e.items()}
    assert logged["tools/failure_frequency"] == 1.0  # every call failed, each one reported to the model
    assert logged["episode/tool_errors"] == 3.0  # the unknown tool never reached the environment
    assert logged["outcome/success"] == 0.0  # a stalled episode is never a success


def test_the_toolrl_grammar_runs_through_the_same_tool_loop(tmp_path, tiny_model_dir, email_task):
    first, second = email_task.task["reference_calls"]

    def line(c):
        return json.dumps({"name": c["name"], "parameters": c["arguments"]})

    def turns(text, round_):
        if round_ < 2:
            return f"<think> step {round_} </think>\n<tool_call>\n{line((first, second)[round_])}\n</tool_call>"
        return f"<think> done </think>\n<response> {email_task.answer} </response>"

    trainer = build(tmp_path, tiny_model_dir, [email_task.row("toolrl")], "--output_format", "toolrl")
    script(trainer, turns)
    trainer.model.train()
    trainer._generate_and_score_completions(batch(trainer))
    assert trainer.environments[0].end_state() == email_task.task["reference_state"]
    metrics = {k: v[-1] for k, v in trainer._metrics["train"].items() if v}
    assert metrics["rewards/format/mean"] == 1.0 and metrics["rewards/correctness/mean"] == 3.0
    assert metrics["outcome/success"] == 1.0


# ---------------------------------------------------------------------------------------------------------------------
# Recipes
# ---------------------------------------------------------------------------------------------------------------------

MODELS = ("Qwen2.5-1.5B-Instruct", "Qwen2.5-3B-Instruct", "Qwen2.5-7B-Instruct", "Llama-3.2-3B-Instruct")


@pytest.mark.parametrize("model", MODELS)
def test_each_model_recipe_parses_and_fits_the_papers_round_on_its_world_size(model):
    from toolrl_trl.batching import validate_batching
    from toolrl_trl.configs import parse_grpo_multiturn_args

    recipe = ROOT / "recipes" / model / "grpo_multiturn.yaml"
    cpu = ["--bf16", "false", "--use_cpu", "true", "--use_vllm", "false"]
    script, data, reward, training, model_args = parse_grpo_multiturn_args(["--config", str(recipe), *cpu])
    assert model_args.model_name_or_path.endswith(model) and training.output_dir.endswith(f"{model}/grpo_multiturn")
    assert data.task_source == "synthetic_world" and training.max_tool_calling_iterations == 6
    assert reward.weights == [1.0, 1.0, 2.0]
    plan = validate_batching(training, script.world_size, prompts_per_round=512, updates_per_round=4)
    assert plan.updates_per_round == 4


def test_reward_weights_come_from_the_reward_options_only(tmp_path, tiny_model_dir):
    from toolrl_trl.configs import ConfigError

    with pytest.raises(ConfigError, match="remove reward_weights"):
        build(
            tmp_path,
            tiny_model_dir,
            [WorldGenerator(seed=0).tasks("train", 1)[0].row()],
            "--reward_weights",
            "1",
            "1",
            "1",
        )


def test_a_bad_task_source_is_a_one_line_user_error(tmp_path):
    from toolrl_trl.cli import UserError
    from toolrl_trl.configs import parse_grpo_multiturn_args

    with pytest.raises(
        UserError, match=r"task_source='.*nope.jsonl' is neither a registered task source \(synthetic_world"
    ):
        parse_grpo_multiturn_args(["--config", str(RECIPE), "--task_source", str(tmp_path / "nope.jsonl")])
    with pytest.raises(UserError, match=r"unknown chain 'nope'; valid: all, two_step, contact_weather"):
        parse_grpo_multiturn_args(["--config", str(RECIPE), "--world_chains", "contact_time,nope"])


# ---------------------------------------------------------------------------------------------------------------------
# Slow: ZeRO-2 on 2 CPU ranks, and the measured tiny-model demo
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.distributed
def test_zero2_on_two_cpu_ranks_trains_on_executed_environments(tmp_path, tiny_model_dir):
    out = tmp_path / "zero2"
    cmd = [
        *accelerate_cli(),
        "launch",
        "--config_file",
        str(ROOT / "accelerate_configs" / "zero2.yaml"),
        "--num_processes",
        "2",
        "--mixed_precision",
        "no",
        "--main_process_port",
        str(free_port()),
        str(ROOT / "recipes" / "grpo_multiturn.py"),
        "--config",
        str(RECIPE),
        "--model_name_or_path",
        str(tiny_model_dir),
        "--output_dir",
        str(out),
        "--use_cpu",
        "false",
        "--ddp_backend",
        "gloo",
        "--auto_batch",
        "true",
        "--prompts_per_generation_round",
        "2",
        "--per_device_train_batch_size",
        "2",
        "--num_generations",
        "2",
    ]
    log = tmp_path / "launch.log"
    with open(log, "w") as handle:
        result = subprocess.run(cmd, cwd=ROOT, env=launch_env(), stdout=handle, stderr=subprocess.STDOUT, timeout=900)
    text = log.read_text()
    assert result.returncode == 0, text[-3000:]
    state = json.loads((out / "trainer_state.json").read_text())
    logged = {k for entry in state["log_history"] for k in entry}
    assert {"rewards/outcome/mean", "episode/turns", "tools/call_frequency"} <= logged
    assert "DEEPSPEED" in text or "deepspeed" in text.lower()
    assert (Path(out) / "model.safetensors").exists()
