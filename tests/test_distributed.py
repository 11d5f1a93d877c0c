"""Real multi-process launches of accelerate_configs/ on CPU: DDP, ZeRO-2, ZeRO-3, two-machine ZeRO-3, checkpoints.

Each run is the tiny GRPO recipe started with ``accelerate launch --config_file accelerate_configs/<x>.yaml
--num_processes 2 --mixed_precision no``: the shipped files, with only the launcher overrides a CPU needs. Marked
``distributed`` (a few minutes on 2 cores; the first DeepSpeed launch on a machine also compiles DeepSpeed's
shared-memory comm op into ~/.cache/torch_extensions, 1-4 minutes). Skip locally with ``-m "not distributed"``;
``make test`` and CI run them.

CPU specifics, set here and documented in the README ("Scaling: accelerate and DeepSpeed"):
* DDP runs with the recipe's ``use_cpu: true``: accelerate then uses its MULTI_CPU (gloo) data parallelism.
* DeepSpeed runs need ``--use_cpu false --ddp_backend gloo``: with ``use_cpu`` accelerate silently drops DeepSpeed
  and trains with plain DDP, and without a backend it counts a CPU world as one process.
* ``CUDA_VISIBLE_DEVICES=""`` and ``DS_ACCELERATOR=cpu`` keep a GPU CI machine on the same CPU path.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from helpers import accelerate_cli, free_port, launch_env

pytestmark = pytest.mark.distributed

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "accelerate_configs"
ENTRY = REPO / "recipes" / "grpo_cold_start.py"
RECIPE = REPO / "recipes" / "tiny" / "grpo_cold_start.yaml"
LAUNCH_TIMEOUT_S = 600  # generous: the first DeepSpeed launch on a fresh machine compiles an op
FAIL_FAST_TIMEOUT_S = 120
# Flags that the 2-process CPU runs add to the tiny recipe. GRPO batch arithmetic comes from the world size.
RUN_FLAGS = ["--max_steps", "2", "--log_level_replica", "info", "--save_strategy", "steps", "--save_steps", "2"]
DDP_CPU_FLAGS = ["--use_cpu", "true", "--auto_batch", "true"]
DEEPSPEED_CPU_FLAGS = ["--use_cpu", "false", "--ddp_backend", "gloo", "--auto_batch", "true"]
# Keys of log_history that carry reward information (TRL's `rewards/<name>/mean|std`, `reward`, the ToolRL
# `tool_call/*` match rates).
REWARD_KEY_PREFIXES = ("rewards/", "reward", "tool_call/")


def _launch_args(config: str, *, num_processes: int = 2, port: int | None = None) -> list[str]:
    return [
        *accelerate_cli(),
        "launch",
        "--config_file",
        str(CONFIGS / f"{config}.yaml"),
        "--num_processes",
        str(num_processes),
        "--mixed_precision",
        "no",
        "--main_process_port",
        str(port or free_port()),
    ]


def _recipe_args(model_dir: Path, output_dir: Path, *flags: str) -> list[str]:
    return [
        str(ENTRY),
        "--config",
        str(RECIPE),
        "--model_name_or_path",
        str(model_dir),
        "--output_dir",
        str(output_dir),
        *flags,
    ]


def _start(cmd: list[str], log: Path) -> subprocess.Popen:
    """Start ``cmd`` in its own process group (so that a hung launcher and its workers can all be killed)."""
    with open(log, "w") as handle:
        return subprocess.Popen(
            cmd, cwd=REPO, env=launch_env(), stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )


def _kill(proc: subprocess.Popen) -> None:
    """Kill the launcher's whole process group (workers too, even when the launcher itself already exited)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _wait_all(procs: list[subprocess.Popen], timeout: float) -> list[int]:
    """Wait for every launch; when one fails the others are stopped (a peer would wait for it until the timeout)."""
    deadline = time.monotonic() + timeout
    try:
        while any(proc.poll() is None for proc in procs):
            if any(proc.poll() not in (None, 0) for proc in procs):
                break
            if time.monotonic() > deadline:
                pytest.fail(f"launch did not finish within {timeout}s")
            time.sleep(0.5)
    finally:
        for proc in procs:
            _kill(proc)
    return [proc.returncode for proc in procs]


def _tail(log: Path, lines: int = 60) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def _run(cmd: list[str], log: Path, timeout: float = LAUNCH_TIMEOUT_S) -> str:
    """Run one launch to completion; fail with the end of its log unless it exits 0. Returns the whole log."""
    (returncode,) = _wait_all([_start(cmd, log)], timeout)
    assert returncode == 0, f"{' '.join(cmd)}\nexited {returncode}; end of {log}:\n{_tail(log)}"
    return log.read_text(errors="replace")


def _reward_log(output_dir: Path) -> dict[str, list[float]]:
    """Reward metrics of a finished run from its trainer_state.json, by key; also checks it ran its 2 steps."""
    state = json.loads((output_dir / "trainer_state.json").read_text())
    assert state["global_step"] == 2, f"{output_dir}: global_step {state['global_step']}, expected 2"
    metrics: dict[str, list[float]] = {}
    for entry in state["log_history"]:
        for key, value in entry.items():
            if key.startswith(REWARD_KEY_PREFIXES):
                metrics.setdefault(key, []).append(value)
    return metrics


def _assert_same_reward_metrics(run_dir: Path, baseline: dict[str, list[float]]) -> None:
    metrics = _reward_log(run_dir)
    assert set(metrics) == set(baseline), (
        f"reward metrics differ from the single-process run: missing {sorted(set(baseline) - set(metrics))}, "
        f"extra {sorted(set(metrics) - set(baseline))}"
    )
    for value in metrics["reward"]:
        assert math.isfinite(value) and -3.0 <= value <= 4.0, f"reward {value} outside format+correctness [-3, 4]"


def _assert_ranks(log: str, distributed_type: str, ranks=(0, 1)) -> None:
    """toolrl_trl.training logs `process i/world, device ..., distributed type ...` on every rank."""
    for rank in ranks:
        line = f"process {rank}/2, device cpu"
        found = [row for row in log.splitlines() if line in row]
        assert found, f"no log line {line!r}: rank {rank} of a 2-process world did not run"
        assert f"DistributedType.{distributed_type}" in found[0], found[0]


def _deepspeed_shards(checkpoint: Path) -> tuple[list[str], dict]:
    """Files of the DeepSpeed checkpoint inside a Trainer checkpoint, and the ZeRO config stored with rank 0's shard."""
    import torch

    (step_dir,) = checkpoint.glob("global_step*")
    names = sorted(p.name for p in step_dir.iterdir())
    optim = torch.load(step_dir / "zero_pp_rank_0_mp_rank_00_optim_states.pt", map_location="cpu", weights_only=False)
    return names, optim["ds_config"]["zero_optimization"]


# ---------------------------------------------------------------------------------------------------- runs


@pytest.fixture(scope="module")
def baseline(tiny_model_dir, tmp_path_factory):
    """One single-process run (single_gpu.yaml, recipe values as they are) whose reward metrics the others match."""
    out = tmp_path_factory.mktemp("single")
    cmd = _launch_args("single_gpu", num_processes=1) + _recipe_args(tiny_model_dir, out / "run", *RUN_FLAGS)
    log = _run(cmd, out / "launch.log")
    assert "process 0/1, device cpu, distributed type DistributedType.NO" in log
    metrics = _reward_log(out / "run")
    assert {"rewards/format/mean", "rewards/correctness/mean", "reward"} <= set(metrics), sorted(metrics)
    return metrics


@pytest.fixture(scope="module")
def zero3_run(tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("zero3")
    cmd = _launch_args("zero3") + _recipe_args(tiny_model_dir, out / "run", *RUN_FLAGS, *DEEPSPEED_CPU_FLAGS)
    return out / "run", _run(cmd, out / "launch.log")


# --------------------------------------------------------------------------------------------------- tests


def test_ddp_runs_two_ranks_with_same_reward_metrics(baseline, tiny_model_dir, tmp_path):
    cmd = _launch_args("ddp") + _recipe_args(tiny_model_dir, tmp_path / "run", *RUN_FLAGS, *DDP_CPU_FLAGS)
    log = _run(cmd, tmp_path / "launch.log")
    _assert_ranks(log, "MULTI_CPU")
    assert "world size 2 x gradient_accumulation_steps 1" in log, "auto_batch did not use world size 2"
    checkpoint = tmp_path / "run" / "checkpoint-2"
    # The Trainer saves one RNG state per process; DDP writes no DeepSpeed shards.
    assert {p.name for p in checkpoint.glob("rng_state_*.pth")} == {"rng_state_0.pth", "rng_state_1.pth"}
    assert not list(checkpoint.glob("global_step*"))
    _assert_same_reward_metrics(tmp_path / "run", baseline)


def test_zero2_runs_deepspeed_engine_on_two_ranks(baseline, tiny_model_dir, tmp_path):
    cmd = _launch_args("zero2") + _recipe_args(tiny_model_dir, tmp_path / "run", *RUN_FLAGS, *DEEPSPEED_CPU_FLAGS)
    log = _run(cmd, tmp_path / "launch.log")
    _assert_ranks(log, "DEEPSPEED")
    names, zero = _deepspeed_shards(tmp_path / "run" / "checkpoint-2")
    assert zero["stage"] == 2
    # ZeRO-2: one replicated model file, optimizer states partitioned over the 2 ranks.
    assert names == [
        "mp_rank_00_model_states.pt",
        "zero_pp_rank_0_mp_rank_00_optim_states.pt",
        "zero_pp_rank_1_mp_rank_00_optim_states.pt",
    ]
    _assert_same_reward_metrics(tmp_path / "run", baseline)


def test_zero3_runs_deepspeed_engine_on_two_ranks(baseline, zero3_run):
    run_dir, log = zero3_run
    _assert_ranks(log, "DEEPSPEED")
    assert "Detected DeepSpeed ZeRO-3: activating zero.init() for this model" in log
    names, zero = _deepspeed_shards(run_dir / "checkpoint-2")
    assert zero["stage"] == 3
    # ZeRO-3: parameters are partitioned too, so every rank writes its own model-states shard.
    assert names == [
        "zero_pp_rank_0_mp_rank_00_model_states.pt",
        "zero_pp_rank_0_mp_rank_00_optim_states.pt",
        "zero_pp_rank_1_mp_rank_00_model_states.pt",
        "zero_pp_rank_1_mp_rank_00_optim_states.pt",
    ]
    _assert_same_reward_metrics(run_dir, baseline)


def test_zero3_checkpoint_loads_as_plain_model_directory(zero3_run, tiny_model_dir):
    """zero3_save_16bit_model gathers the shards: checkpoints are `from_pretrained` directories with full weights."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    run_dir, _ = zero3_run
    reference = AutoModelForCausalLM.from_pretrained(tiny_model_dir).state_dict()
    for directory in (run_dir / "checkpoint-2", run_dir):
        assert (directory / "model.safetensors").is_file(), f"{directory}: no gathered model.safetensors"
        model, info = AutoModelForCausalLM.from_pretrained(directory, output_loading_info=True)
        assert not any(info.values()), f"{directory}: loading info {info}"
        state = model.state_dict()
        assert state.keys() == reference.keys()
        for name, tensor in state.items():
            assert tensor.shape == reference[name].shape, f"{name}: {tuple(tensor.shape)} (a ZeRO-3 partition?)"
            # 2 steps at lr 1e-4 move a weight by at most ~2e-4; empty, zeroed or re-initialised weights would not pass.
            assert torch.allclose(tensor, reference[name], atol=1e-3), f"{name} differs from the trained start point"
        tokenizer = AutoTokenizer.from_pretrained(directory)
        ids = tokenizer("<tool_call>", return_tensors="pt").input_ids
        assert torch.isfinite(model(ids).logits).all()


def test_multinode_zero3_over_loopback(baseline, tiny_model_dir, tmp_path):
    """Two launchers, one per simulated machine (--num_machines 2, --machine_rank 0|1), one process each."""
    port = free_port()
    procs, logs = [], []
    for rank in (0, 1):
        cmd = _launch_args("zero3", num_processes=2, port=port) + [
            "--num_machines",
            "2",
            "--machine_rank",
            str(rank),
            "--main_process_ip",
            "127.0.0.1",
        ]
        cmd += _recipe_args(tiny_model_dir, tmp_path / "run", *RUN_FLAGS, *DEEPSPEED_CPU_FLAGS)
        logs.append(tmp_path / f"machine{rank}.log")
        procs.append(_start(cmd, logs[-1]))
    returncodes = _wait_all(procs, LAUNCH_TIMEOUT_S)
    assert returncodes == [0, 0], "\n".join(
        f"machine {rank} exited {code} (-9: stopped after its peer failed); end of its log:\n{_tail(log)}"
        for rank, (code, log) in enumerate(zip(returncodes, logs, strict=True))
    )
    # Each machine ran exactly its own rank of the 2-process world.
    _assert_ranks(logs[0].read_text(), "DEEPSPEED", ranks=(0,))
    _assert_ranks(logs[1].read_text(), "DEEPSPEED", ranks=(1,))
    assert "process 1/2" not in logs[0].read_text() and "process 0/2" not in logs[1].read_text()
    names, zero = _deepspeed_shards(tmp_path / "run" / "checkpoint-2")
    assert zero["stage"] == 3
    assert {"zero_pp_rank_0_mp_rank_00_model_states.pt", "zero_pp_rank_1_mp_rank_00_model_states.pt"} <= set(names)
    _assert_same_reward_metrics(tmp_path / "run", baseline)


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        # The world-size-1 values of the YAML on 2 processes: 2 x 2 x 2 = 8 completions per update instead of 4.
        ([], "Set gradient_accumulation_steps: 1 and steps_per_generation: 2"),
        # 3 x 2 processes can never make 4 completions per update.
        (
            ["--per_device_train_batch_size", "3", "--auto_batch", "true"],
            "Use a per_device_train_batch_size in [1, 2]",
        ),
    ],
    ids=["recipe-for-another-world-size", "per-device-batch-not-dividing"],
)
def test_wrong_batch_for_world_size_fails_before_loading_the_model(tiny_model_dir, tmp_path, flags, expected):
    cmd = _launch_args("ddp") + _recipe_args(tiny_model_dir, tmp_path / "run", "--use_cpu", "true", *flags)
    (returncode,) = _wait_all([_start(cmd, tmp_path / "launch.log")], FAIL_FAST_TIMEOUT_S)
    log = (tmp_path / "launch.log").read_text(errors="replace")
    assert returncode != 0, "a batch geometry that does not fit 2 processes must stop the launch"
    # One clear line per rank (a user error, exit status 2), naming the fix; the traceback after it is the launcher's.
    assert "grpo_cold_start.py: error: " in log and expected in log, _tail(tmp_path / "launch.log")
    assert "exitcode  : 2" in log, _tail(tmp_path / "launch.log")
    assert "loading model" not in log, "the check must run before the model is loaded"
    assert not (tmp_path / "run").exists()
