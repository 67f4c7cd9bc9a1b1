"""--resume continues from the LAST complete checkpoint, tested through the recipe's CLI entry point
(recipe.finetune.main, in this process so a mutation tool sees which code it covers)."""

from __future__ import annotations

import pytest

from recipe import finetune
from recipe.callbacks import FAIL_RANK_ENV, FAIL_STEP_ENV
from recipe.record import load_summary, read_metrics

pytestmark = pytest.mark.slow

# 400 generated rows / batch 16 = 25 steps per epoch; the smoke profile saves every 25 steps and keeps 2
SMALL = ["--profile", "smoke", "--device", "cpu", "--no-swanlab", "--epochs", "3",
         "--set", "smoke_data.train=400", "--set", "smoke_data.validation=64"]


@pytest.fixture
def offline(monkeypatch):
    for name, value in (("HF_HUB_OFFLINE", "1"), ("HF_DATASETS_OFFLINE", "1"), ("TOKENIZERS_PARALLELISM", "false")):
        monkeypatch.setenv(name, value)
    return monkeypatch


def test_resume_takes_the_last_complete_checkpoint_and_skips_a_partial_one(tmp_path, offline):
    out = tmp_path / "run"
    offline.setenv(FAIL_RANK_ENV, "0")
    offline.setenv(FAIL_STEP_ENV, "60")   # dies in epoch 3, after checkpoint-25 and checkpoint-50
    with pytest.raises(RuntimeError, match="fails at step 60 on purpose"):
        finetune.main([*SMALL, "--output", str(out)])
    offline.delenv(FAIL_RANK_ENV)
    offline.delenv(FAIL_STEP_ENV)
    checkpoints = out / "checkpoints"
    assert sorted(c.name for c in checkpoints.iterdir()) == ["checkpoint-25", "checkpoint-50"]
    assert load_summary(out) is None
    # a save cut by the kill: weights written, trainer_state.json (written last) missing
    partial = checkpoints / "checkpoint-75"
    partial.mkdir()
    (partial / "model.safetensors").write_bytes(b"truncated")

    assert finetune.main([*SMALL, "--output", str(out), "--resume"]) == 0
    summary = load_summary(out)
    assert summary["resumed_from"] == "checkpoint-50"
    lines = read_metrics(out)
    steps = [line["step"] for line in lines if line["kind"] == "train"]
    assert steps == sorted(set(steps)) and steps[-1] == 75
    assert [line["epoch"] for line in lines if line["kind"] == "eval"] == [1.0, 2.0, 3.0]


def test_resume_without_a_complete_checkpoint_starts_from_scratch(tmp_path, offline, capfd):
    out = tmp_path / "run"
    offline.setenv(FAIL_RANK_ENV, "0")
    offline.setenv(FAIL_STEP_ENV, "10")   # dies before the first save
    with pytest.raises(RuntimeError, match="fails at step 10 on purpose"):
        finetune.main([*SMALL, "--epochs", "1", "--output", str(out)])
    offline.delenv(FAIL_RANK_ENV)
    offline.delenv(FAIL_STEP_ENV)
    (out / "checkpoints" / "checkpoint-25").mkdir(parents=True)   # partial: no trainer_state.json
    assert finetune.main([*SMALL, "--epochs", "1", "--output", str(out), "--resume"]) == 0
    assert "no checkpoint under" in capfd.readouterr().err
    assert load_summary(out)["resumed_from"] is None
