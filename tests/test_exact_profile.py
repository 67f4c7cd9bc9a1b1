"""The `exact` profile computes what `published` computes, step by step.

(a) With dropout off (a test-only model setting: dropout draws its masks over the padded shape, so
padding to max_length and dynamic padding draw different masks), the per-step training losses of
`exact` and `published` agree within bench.parity's fp32 tolerance at every step, on the smoke data
with the tiny BERT and on a few steps at bert-base shape; and the same check fails when a change
breaks the math (learning rate, batch, clipping, seed). The seed-level comparison with dropout on
is tests/test_exact_seeds.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from bench import parity, workload
from recipe import config, equivalence, facade, finetune, record

STEPS = 150
DROPOUT_OFF = ("tiny_model.hidden_dropout_prob=0.0", "tiny_model.attention_probs_dropout_prob=0.0")
# a test-sized max_length: published pads every batch to it, exact to the batch's longest sentence
SMALL = ("tokenize.max_length=64", "smoke_data.train=800", "smoke_data.validation=64")
TEST_SETTINGS = {"model", "data", "tiny_model", "smoke_data", "tokenize.max_length", "train.max_steps",
                 "train.eval_strategy"}


def train_losses(profile: str, out: Path, *sets: str, steps: int = STEPS, model: str = "tiny-bert",
                 data: str = "smoke") -> list[float]:
    """Train `profile` for `steps` steps in this process; every step's loss (forward hook, no sync)."""
    losses = parity.StepLosses()
    argv = ["--profile", profile, "--model", model, "--data", data, "--device", "cpu", "--no-swanlab",
            "--output", str(out), "--set", f"train.max_steps={steps}", "--set", "train.eval_strategy='no'"]
    for setting in sets:
        argv += ["--set", setting]
    assert finetune.run(finetune.parse_args(argv), extra_callbacks=(losses,)) == 0
    return losses.values()


@pytest.fixture(scope="module")
def published_run(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("published") / "run"


@pytest.fixture(scope="module")
def published_losses(published_run) -> list[float]:
    return train_losses("published", published_run, *DROPOUT_OFF, *SMALL, "train.save_strategy='no'")


# ---------------------------------------------------------------- the profile as written
def _device(kind: str) -> facade.Device:
    return facade.Device(type=kind, name=f"fake {kind}")


@pytest.mark.parametrize("kind", ["cpu", "cuda", "npu"])
def test_exact_has_published_math_on_every_device(kind):
    exact = config.load_profile("exact")
    settings, _ = facade.resolve_speed_settings(exact["train"], exact.get("precision"), _device(kind))
    result = equivalence.compare(exact, settings)
    assert result["math_changes"] == []
    names = " | ".join(result["equivalences"])
    for removal in ("dynamic padding", "every 50 steps", "NaN/inf", "eval batch 256", "checkpoints"):
        assert removal in names, removal
    assert ("fused AdamW" in names) is (kind != "cpu")   # torch 2.1 (the images) has no fused CPU AdamW
    assert settings["bf16"] is False and settings["fp16"] is False and settings["tf32"] is False


@pytest.mark.parametrize("override, change", [
    ("train.learning_rate=3e-5", "train.learning_rate: 2e-05 -> 3e-05"),
    ("train.per_device_train_batch_size=8", "global batch: 4 -> 8"),
    ("train.tf32=true", "train.tf32: None -> True"),
    ("tokenize.max_length=128", "tokenize.max_length: 512 -> 128"),
    ("train.optim=sgd", "train.optim: adamw_torch -> sgd"),
])
def test_a_change_of_the_math_is_named_not_called_an_equivalence(override, change):
    exact = config.apply_overrides(config.load_profile("exact"), [override])
    assert change in equivalence.compare(exact, exact["train"])["math_changes"]


def test_fast_is_a_different_experiment_and_torch_compile_keeps_fp32_only_with_tf32_pinned_off():
    fast = config.load_profile("fast")
    assert equivalence.compare(fast, fast["train"])["math_changes"] == ["global batch: 4 -> 32"]
    compiled = dict(config.load_profile("exact")["train"], torch_compile=True)
    assert any("torch.compile" in e for e in equivalence.compare(config.load_profile("exact"), compiled)["equivalences"])
    compiled.pop("tf32")   # the Trainer turns TF32 on for torch_compile when tf32 is unset
    assert "train.torch_compile: False -> True" in equivalence.compare(config.load_profile("exact"),
                                                                       compiled)["math_changes"]


# ---------------------------------------------------------------- (a) per-step losses, dropout off
# Every test from here to the comparison below trains (published_losses trains once per module): slow.
@pytest.mark.slow
def test_exact_matches_published_at_every_step(published_losses, published_run, tmp_path):
    losses = train_losses("exact", tmp_path / "exact", *DROPOUT_OFF, *SMALL)
    result = parity.compare(losses, published_losses)
    assert result["steps"] == STEPS and result["agree"], parity.describe(result)
    summary = record.load_summary(tmp_path / "exact")
    # the same initial weights, by the run record's own hash (its sample-order hash digests the padded
    # input_ids, so it differs between the two paddings: the equal losses above show the same order)
    theirs = record.load_summary(published_run)["parity"]
    assert summary["parity"]["initial_weights_sha256"] == theirs["initial_weights_sha256"]
    assert summary["parity"]["dropout"] == theirs["dropout"] == 0.0
    # against published as written, the only math changes are this test's own settings
    assert {change.split(":")[0] for change in summary["math_changes"]} == TEST_SETTINGS, summary["math_changes"]
    assert any("dynamic padding" in e for e in summary["equivalences"])
    # the logged loss (every 50 steps, summed on the device) is the mean of the per-step losses
    logged = [line["loss"] for line in record.read_metrics(tmp_path / "exact") if line["kind"] == "train"]
    means = parity.interval_means(losses, 50)
    assert len(logged) == STEPS // 50 and logged == pytest.approx(means, rel=1e-6, abs=1e-7)
    assert logged != pytest.approx(losses[49::50], rel=1e-6, abs=1e-7)   # not the interval's last step
    # and the padding really was removed (padded to 64, the smoke sentences are ~80 % padding)
    assert summary["padding_fraction"] < 0.5


@pytest.mark.slow
@pytest.mark.parametrize("mutant", ["train.learning_rate=2.2e-5", "train.per_device_train_batch_size=5",
                                    "train.max_grad_norm=0.5", "train.seed=43"])
def test_the_parity_check_fails_when_a_change_breaks_the_math(published_losses, tmp_path, mutant):
    losses = train_losses("exact", tmp_path / "mutant", *DROPOUT_OFF, *SMALL, mutant)
    result = parity.compare(losses, published_losses)
    assert not result["agree"], f"{mutant}: {parity.describe(result)}"
    assert result["max_abs_diff"] > 10 * (parity.ATOL + parity.RTOL), mutant   # well outside the tolerance


@pytest.mark.slow
def test_dropout_on_is_why_the_check_needs_dropout_off(published_losses, tmp_path):
    """Same math, dropout 0.1: padding changes the dropout masks, so steps differ from the first one."""
    losses = train_losses("exact", tmp_path / "dropout", *SMALL, steps=20)
    assert not parity.compare(losses, published_losses[:20])["agree"]


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(torch.optim, "AdamW") or "fused" not in torch.optim.AdamW.__init__.__code__.co_varnames,
                    reason="this torch has no fused AdamW")
def test_fused_adamw_is_the_same_update(published_losses, tmp_path, monkeypatch):
    """The CUDA path's optimizer, here on the CPU (torch >= 2.4 has a fused CPU AdamW; the facade maps
    it to adamw_torch on CPUs for torch 2.1, so this test keeps the profile's optim as written)."""
    monkeypatch.setattr(facade, "resolve_speed_settings", lambda settings, precision, device: (dict(settings), []))
    losses = train_losses("exact", tmp_path / "fused", *DROPOUT_OFF, *SMALL)
    assert record.load_manifest(tmp_path / "fused")["effective"]["optim"] == "adamw_torch_fused"
    assert any("fused AdamW" in e for e in record.load_summary(tmp_path / "fused")["equivalences"])
    result = parity.compare(losses, published_losses)
    assert result["agree"], parity.describe(result)


@pytest.mark.slow
def test_exact_matches_published_at_bert_base_shape(tmp_path):
    """bert-base-cased's shape (12 x 768, vocab 28 996) with random weights and dropout off, on generated
    CoLA-length data, a few steps at a test-sized max_length (CPU time)."""
    data = workload.write_data(tmp_path / "data", train_rows=64)
    model = workload.write_model(tmp_path / "model", "bert-base", workload.train_sentences(data), dropout=0.0)
    assert json.loads((model / "config.json").read_text())["hidden_size"] == 768
    sets = ("tokenize.max_length=64", "train.save_strategy='no'")
    published = train_losses("published", tmp_path / "p", *sets, steps=4, model=str(model), data=str(data))
    exact = train_losses("exact", tmp_path / "e", *sets, steps=4, model=str(model), data=str(data))
    result = parity.compare(exact, published)
    assert result["agree"], parity.describe(result)
    wrong = train_losses("exact", tmp_path / "w", *sets, "train.learning_rate=1e-4", steps=4, model=str(model),
                         data=str(data))
    assert not parity.compare(wrong, published)["agree"]


# ---------------------------------------------------------------- the comparison itself
def test_compare_applies_the_tolerance_at_every_step():
    reference = [0.7, 0.69, 0.68]
    assert parity.compare([0.7 + 5e-5, 0.69, 0.68], reference)["agree"]            # 5e-5 <= 1e-5 + 7e-5
    late = parity.compare([0.7, 0.69, 0.68 + 1e-4], reference)
    assert not late["agree"] and late["first_step_over"] == 3 and late["max_abs_diff"] == pytest.approx(1e-4)
    first = parity.compare([0.7 + 1e-4, 0.69, 0.68], reference)
    assert not first["agree"] and first["first_step_over"] == 1
    assert not parity.compare([0.7, float("nan"), 0.68], reference)["agree"]
    short = parity.compare([0.7, 0.69], reference)
    assert not short["agree"] and "step counts differ" in short["reason"] and "n/a" in parity.describe(short)
    assert parity.interval_means([1.0, 3.0, 2.0, 4.0, 9.0], 2) == [2.0, 3.0]      # a partial interval is not logged
