"""``make gpu-check`` (toolrl_trl.gpu_check) in its dry mode on the CPU, and its one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from helpers import ROOT

from toolrl_trl import gpu_check


def _run(*flags: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "toolrl_trl.gpu_check", *flags],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_dry_run_in_process(tmp_path, capsys):
    status = gpu_check.main(
        [
            "--dry_run",
            "true",
            "--isolate",
            "false",
            "--cases",
            "grpo_lora,grpo_multiturn,sft",
            "--out_dir",
            str(tmp_path),
        ]
    )
    assert status == 0
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    results = {r["case"]: r for r in report["results"]}
    assert set(results) == {"grpo_lora", "grpo_multiturn", "sft"}
    assert all("error" not in r and r["steps"] == 1 and r["tokens_per_s"] > 0 for r in results.values())
    assert results["grpo_lora"]["peft"] and not results["sft"]["peft"]
    assert results["grpo_lora"]["tokens"] == "completion" and results["sft"]["tokens"] == "trained"
    assert results["grpo_multiturn"]["tokens"] == "completion" and not results["grpo_multiturn"]["peft"]
    assert capsys.readouterr().out.strip().splitlines()[-1] == "gpu check: 3/3 case(s) passed in " + (
        f"{report['wall_s']:.0f} s"
    )


def test_a_failing_case_fails_the_check(tmp_path, monkeypatch):
    def broken(case, args, model_dir):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(gpu_check, "run_case", broken)
    assert (
        gpu_check.main(["--dry_run", "true", "--isolate", "false", "--cases", "sft", "--out_dir", str(tmp_path)]) == 1
    )
    (result,) = json.loads((tmp_path / "gpu_check.json").read_text())["results"]
    assert result == {"case": "sft", "error": "RuntimeError: out of memory"}


def test_no_gpu_is_one_line_and_status_2(tmp_path):
    proc = _run("--out_dir", str(tmp_path), "--cases", "sft", timeout=120)
    if proc.returncode == 0:
        pytest.skip("a CUDA GPU is visible here")
    assert proc.returncode == 2
    assert "error: no CUDA GPU is visible" in proc.stderr and "--dry_run true" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_packages_are_named_with_the_wheel_command(monkeypatch):
    from toolrl_trl.cli import UserError

    real = gpu_check.importlib.util.find_spec
    monkeypatch.setattr(
        gpu_check.importlib.util, "find_spec", lambda name: None if name in ("deepspeed", "trl") else real(name)
    )
    with pytest.raises(UserError, match=r"missing package\(s\): trl==1.16.0 deepspeed\. .*--find-links wheels/"):
        gpu_check.check_environment(gpu_check.GpuCheckArguments(dry_run=True))


def test_unknown_case_is_refused():
    with pytest.raises(ValueError, match="unknown case"):
        gpu_check.GpuCheckArguments(cases="grpo_full,fsdp")


def test_the_tokenizer_covers_qwen25s_vocabulary():
    tokenizer = gpu_check.build_tokenizer(size=4096)  # the real size is 151,665; smaller here for speed
    assert len(tokenizer) == 4096
    text = "<think> x </think>\n<tool_call>\n{}\n</tool_call>"
    assert tokenizer.decode(tokenizer(text)["input_ids"]) == text
    assert tokenizer.decode([4000]).startswith("<|pad_")  # an id a random model may sample still decodes
    assert tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False).startswith(
        "<|im_start|>"
    )


@pytest.mark.slow
def test_the_whole_dry_run_as_the_gpu_runs_it(tmp_path):
    """Every case in its own process, ZeRO-2 through accelerate launch: the script exactly as on the GPU."""
    proc = _run("--dry_run", "true", "--out_dir", str(tmp_path), timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads((tmp_path / "gpu_check.json").read_text())["results"]
    assert [r["case"] for r in results] == list(gpu_check.CASES) and not any("error" in r for r in results)
    (zero2,) = [r for r in results if r["case"] == "grpo_zero2"]
    assert zero2["distributed"] == "DistributedType.DEEPSPEED"
    assert (
        proc.stdout.strip()
        .splitlines()[-1]
        .startswith(f"gpu check: {len(gpu_check.CASES)}/{len(gpu_check.CASES)} case(s) passed")
    )
