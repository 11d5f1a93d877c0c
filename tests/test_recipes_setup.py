"""The shared entry-point setup (toolrl_trl.training, toolrl_trl.merge) in-process, on tiny models."""

import pytest
import torch
from helpers import TINY, make_checkpoint, run_recipe

from toolrl_trl import training
from toolrl_trl.batching import BatchingError
from toolrl_trl.configs import parse_grpo_args, parse_sft_args
from toolrl_trl.merge import is_adapter_dir, merge_adapter


def test_resolve_checkpoint_explicit_and_automatic(tmp_path):
    args = parse_grpo_args(["--config", str(TINY / "grpo_cold_start.yaml"), "--output_dir", str(tmp_path)])[3]
    assert training.resolve_checkpoint(args) is None  # empty output_dir: fresh start
    for step in (2, 10):
        make_checkpoint(tmp_path, step)
    assert training.resolve_checkpoint(args) == str(tmp_path / "checkpoint-10")  # a preempted job resumes
    args.resume_from_checkpoint = str(tmp_path / "checkpoint-2")
    assert training.resolve_checkpoint(args) == str(tmp_path / "checkpoint-2")
    args.resume_from_checkpoint = str(tmp_path / "checkpoint-99")
    with pytest.raises(FileNotFoundError, match="checkpoint-99"):
        training.resolve_checkpoint(args)


@pytest.mark.parametrize("mode", ["colocate", "server"])
def test_vllm_requested_but_missing_fails_before_the_model_loads(mode, capsys):
    pytest.importorskip("trl")
    from trl.import_utils import is_vllm_available

    if is_vllm_available():
        pytest.skip("vllm is installed here")
    # A model path that does not exist: reaching the model load would raise OSError, not ImportError.
    argv = ["--config", str(TINY / "grpo_cold_start.yaml"), "--model_name_or_path", "/nonexistent/model"]
    with pytest.raises(ImportError, match=rf"use_vllm=true \(vllm_mode={mode}\) but the `vllm` package"):
        run_recipe("grpo_cold_start.py", [*argv, "--use_vllm", "true", "--vllm_mode", mode])


def test_unsupported_vllm_mode_is_refused():
    args = parse_grpo_args(["--config", str(TINY / "grpo_cold_start.yaml"), "--use_vllm", "true"])[3]
    args.vllm_mode = "remote"
    with pytest.raises(ValueError, match="vllm_mode='remote'"):
        training.check_generation_backend(args)


def test_batch_mismatch_fails_before_the_model_loads():
    argv = ["--config", str(TINY / "grpo_cold_start.yaml"), "--model_name_or_path", "/nonexistent/model"]
    with pytest.raises(BatchingError, match="gradient_accumulation_steps: 2 and steps_per_generation: 4"):
        run_recipe("grpo_cold_start.py", [*argv, "--steps_per_generation", "2"])


def test_batch_check_can_be_switched_off(caplog):
    script_args, _, _, args, _ = parse_grpo_args(
        ["--config", str(TINY / "grpo_cold_start.yaml"), "--steps_per_generation", "2"]
    )
    script_args.prompts_per_generation_round = None
    training.check_rl_run(script_args, args)  # TRL's own checks only


def test_load_model_and_tokenizer_follow_model_config(tiny_model_dir):
    _, _, _, args, model_args = parse_grpo_args(
        ["--config", str(TINY / "grpo_cold_start.yaml"), "--model_name_or_path", str(tiny_model_dir)]
        + ["--dtype", "bfloat16", "--attn_implementation", "eager", "--activation_checkpointing", "true"]
    )
    tokenizer = training.load_tokenizer(model_args, args, padding_side="left")
    assert tokenizer.padding_side == "left" and tokenizer.chat_template
    model = training.load_model(model_args, args)
    assert model.dtype == torch.bfloat16
    assert model.config._attn_implementation == "eager"
    assert model.config.use_cache is False  # activation checkpointing trains without the KV cache


def test_sft_loss_is_on_the_assistant_turn_only(tiny_model_dir, tmp_path):
    script_args, data_args, args, model_args = parse_sft_args(
        ["--config", str(TINY / "sft400.yaml"), "--model_name_or_path", str(tiny_model_dir)]
        + ["--output_dir", str(tmp_path), "--synthetic_train_size", "8", "--per_device_train_batch_size", "2"],
    )
    trainer, _ = training.build_sft_trainer(script_args, data_args, args, model_args)
    tokenizer = trainer.processing_class
    splits = training.build_data(data_args, "sft", tokenizer, args)
    row, example = splits["train"][0], trainer.train_dataset[0]
    batch = trainer.data_collator([example])
    labels, input_ids = batch["labels"][0], batch["input_ids"][0]
    prompt_ids = tokenizer.apply_chat_template(row["prompt"], tokenize=True, add_generation_prompt=True)["input_ids"]
    assert input_ids[: len(prompt_ids)].tolist() == list(prompt_ids)
    trained = (labels != -100).nonzero().flatten().tolist()
    # Every prompt token is masked; exactly the assistant turn (through its end-of-turn token) is trained on.
    assert trained == list(range(len(prompt_ids), len(input_ids)))
    completion = tokenizer.decode(input_ids[len(prompt_ids) :])
    assert completion.startswith(row["completion"][0]["content"])
    assert completion.rstrip().endswith(tokenizer.eos_token)


def test_merge_adapter_gives_the_same_outputs_as_the_adapter(tiny_model_dir, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    peft_model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    torch.manual_seed(0)
    for name, param in peft_model.named_parameters():
        if "lora_B" in name:  # LoRA starts as a no-op; make it change the model
            torch.nn.init.normal_(param, std=0.5)
    adapter = tmp_path / "adapter"
    peft_model.save_pretrained(adapter)
    assert is_adapter_dir(adapter)

    merged_dir = merge_adapter(adapter, tmp_path / "merged")
    assert (merged_dir / "model.safetensors").is_file() and not is_adapter_dir(merged_dir)
    assert (merged_dir / "tokenizer_config.json").is_file()  # self-contained: tokenizer from the base
    merged = AutoModelForCausalLM.from_pretrained(merged_dir)
    ids = torch.tensor([[1, 5, 9, 13, 17, 21]])
    peft_model.eval()
    with torch.no_grad():
        expected = peft_model(ids).logits
        fresh_base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)(ids).logits
        got = merged(ids).logits
    assert not torch.allclose(expected, fresh_base, atol=1e-4)  # the adapter matters
    assert torch.allclose(got, expected, atol=1e-4)


def test_merge_refuses_a_full_checkpoint(tiny_model_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="not a LoRA adapter directory"):
        merge_adapter(tiny_model_dir, tmp_path / "out")


def test_sft_on_the_whole_sequence_is_flagged(caplog):
    args = parse_sft_args(["--config", str(TINY / "sft400.yaml"), "--completion_only_loss", "false"])[2]
    with caplog.at_level("WARNING", logger="toolrl_trl.training"):
        training.check_sft_run(args)
    assert "completion_only_loss is false" in caplog.text
    caplog.clear()
    args.completion_only_loss = True
    training.check_sft_run(args)
    assert not caplog.text


@pytest.mark.parametrize("script", ["grpo_cold_start.py", "sft400.yaml"])
def test_deepspeed_with_use_cpu_fails_before_the_model_loads(script, monkeypatch):
    # accelerate would silently drop DeepSpeed and train with DDP: the run must stop and say what to pass.
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    recipe, config = ("grpo_cold_start.py", "grpo_cold_start.yaml") if script.endswith(".py") else ("sft.py", script)
    argv = ["--config", str(TINY / config), "--model_name_or_path", "/nonexistent/model", "--use_cpu", "true"]
    with pytest.raises(ValueError, match="--use_cpu false --ddp_backend gloo"):
        run_recipe(recipe, argv)


def test_half_precision_full_finetuning_without_deepspeed_is_flagged(tiny_model_dir, caplog, monkeypatch):
    monkeypatch.delenv("ACCELERATE_USE_DEEPSPEED", raising=False)
    base = ["--config", str(TINY / "grpo_cold_start.yaml"), "--model_name_or_path", str(tiny_model_dir)]
    for dtype, use_peft, flagged in [
        ("bfloat16", "false", True),
        ("float32", "false", False),
        ("bfloat16", "true", False),
    ]:
        _, _, _, args, model_args = parse_grpo_args([*base, "--dtype", dtype, "--use_peft", use_peft])
        caplog.clear()
        with caplog.at_level("WARNING", logger="toolrl_trl.training"):
            training.load_model(model_args, args)
        assert ("no fp32 master copy" in caplog.text) is flagged, (dtype, use_peft)
