"""The `fast` profile: the published run's model, data and epochs with faster settings, resolved per
device by the facade, and still learning: on the smoke data it must reach the smoke threshold."""

from __future__ import annotations

import json

import pytest
from conftest import REPO, recipe_env, run_recipe

from recipe import compat, config, facade
from recipe.errors import ConfigError

PUBLISHED_JSON = json.loads((REPO / "verify" / "published.json").read_text())


def test_fast_changes_speed_settings_only():
    fast, published = config.load_profile("fast"), config.load_profile("published")
    for key in ("model", "data", "num_labels"):
        assert fast[key] == published[key]
    assert fast["train"]["num_train_epochs"] == published["train"]["num_train_epochs"] == 3
    assert fast["train"]["seed"] == published["train"]["seed"]
    # same inputs to the model: nothing is cut, only the padding goes
    assert fast["tokenize"]["max_length"] == published["tokenize"]["max_length"] == 512
    assert fast["tokenize"]["truncation"] is True
    assert fast["tokenize"]["padding"] == "dynamic"
    # HF run_glue's CoLA settings, the published reference inside the band
    reference = PUBLISHED_JSON["references"]["hf_run_glue_bert_base_cased_cola"]["settings"]
    assert "batch 32" in reference and "lr 2e-5" in reference
    assert fast["train"]["per_device_train_batch_size"] == 32 and fast["train"]["learning_rate"] == 2e-5
    # fewer host syncs, big eval batches, no per-epoch 1.3 GB checkpoints
    assert fast["train"]["logging_steps"] >= 25 and fast["train"]["logging_nan_inf_filter"] is False
    assert fast["train"]["per_device_eval_batch_size"] >= 128
    assert fast["train"]["save_strategy"] == "no"   # the string: YAML's bare `no` would be False
    assert fast["precision"] == "bf16" and fast["train"]["optim"] == facade.FUSED_ADAMW
    assert "precision" not in published             # the published profile stays exactly the tutorial


def _device(kind: str) -> facade.Device:
    return facade.Device(type=kind, name=f"fake {kind}")


def test_cpu_gets_fp32_and_unfused_adamw():
    settings, notes = facade.resolve_speed_settings(config.load_profile("fast")["train"], "bf16", _device("cpu"))
    assert (settings["bf16"], settings["fp16"], settings["optim"]) == (False, False, "adamw_torch")
    assert any("bf16 -> fp32 on cpu" in n for n in notes) and any("-> adamw_torch on cpu" in n for n in notes)


@pytest.mark.parametrize("capability, bf16", [((9, 0), True), ((8, 0), True), ((7, 0), False)])
def test_cuda_gets_bf16_where_the_card_has_it(monkeypatch, capability, bf16):
    monkeypatch.setattr(facade.torch.cuda, "get_device_capability", lambda index=None: capability)
    settings, notes = facade.resolve_speed_settings(config.load_profile("fast")["train"], "bf16", _device("cuda"))
    assert settings["bf16"] is bf16 and settings["fp16"] is False
    assert settings["optim"] == "adamw_torch_fused"      # torch's fused kernel exists on every CUDA card
    assert bool(notes) is not bf16                          # a V100 (7.0) is told it runs fp32


def test_npu_gets_bf16_and_torch_npus_fused_adamw():
    settings, notes = facade.resolve_speed_settings(config.load_profile("fast")["train"], "bf16", _device("npu"))
    assert settings["bf16"] is True
    assert settings["optim"] == "adamw_torch_npu_fused"    # torch_npu.optim.NpuFusedAdamW, known to transformers
    assert notes == ["optim adamw_torch_fused -> adamw_torch_npu_fused on npu"]


def test_published_settings_pass_through_untouched():
    train = config.load_profile("published")["train"]
    for kind in ("cpu", "npu"):
        settings, notes = facade.resolve_speed_settings(train, None, _device(kind))
        assert settings == train and notes == []


def test_fast_settings_build_training_arguments(tmp_path):
    from transformers import TrainingArguments

    settings, _ = facade.resolve_speed_settings(config.load_profile("fast")["train"], "bf16", _device("cpu"))
    args = compat.training_arguments(TrainingArguments, {"output_dir": str(tmp_path), "report_to": "none",
                                                         **settings})
    assert args.per_device_train_batch_size == 32 and args.logging_steps == settings["logging_steps"]
    assert str(args.save_strategy.value if hasattr(args.save_strategy, "value") else args.save_strategy) == "no"
    assert args.bf16 is False and args.logging_nan_inf_filter is False


def test_unknown_precision_is_refused_with_the_choices():
    with pytest.raises(ConfigError, match=r"precision='fp8'") as err:
        config.apply_overrides(config.load_profile("fast"), ["precision=fp8"])
    assert "bf16" in err.value.fix and err.value.exit_code == 3


@pytest.mark.slow
def test_fast_profile_on_smoke_data_reaches_the_smoke_threshold(tmp_path):
    """Everything of `fast` (batch 32, dynamic padding, sparse logging, large eval batches, device
    resolution) on the smoke profile's data and tiny BERT. Only the learning rate is the smoke
    profile's: a randomly initialised tiny BERT needs 2e-3, not fine-tuning's 2e-5. One torch thread:
    on a shared 2-core machine OpenMP spin-waiting made this run 12x slower with two."""
    out = tmp_path / "run"
    proc = run_recipe("--profile", "fast", "--model", "tiny-bert", "--data", "smoke", "--device", "cpu",
                      "--no-swanlab", "--set", "train.learning_rate=2e-3", "--set", "smoke_data.train=3000",
                      "--set", "smoke_data.validation=400", "--output", str(out),
                      env=recipe_env(OMP_NUM_THREADS="1"), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    manifest = json.loads((out / "manifest.json").read_text())
    threshold = PUBLISHED_JSON["thresholds"]["smoke"]["accuracy"]
    assert summary["final"]["accuracy"] >= threshold, summary["final"]
    assert manifest["profile"] == "fast" and manifest["config"]["tokenize"]["padding"] == "dynamic"
    assert manifest["effective_batch"] == 32
    assert summary["padding_fraction"] < 0.3          # the smoke profile, padding to 32, wastes ~72 %
    assert summary["evals"] == 3                      # still evaluated every epoch
    assert "note: precision bf16 -> fp32 on cpu" in proc.stdout
    assert summary["train_seconds"] < 60
