"""The verify suite's training assertions on hand-made run records (docs/run-record.md): a healthy
record passes, a crippled one (majority-baseline accuracy, NaN loss, a missing eval, a killed
run) fails — checked both on the functions and on `pytest verify --run-dir` as users run it."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from verify.runrecord import (
    RunRecord,
    completeness_problems,
    eval_problems,
    loss_problems,
    threshold_problems,
    thresholds,
)

ROOT = Path(__file__).resolve().parent.parent
MAJORITY = json.loads((ROOT / "verify" / "published.json").read_text())["references"][
    "cola_validation_majority_accuracy"]


def write_record(directory: Path, accuracy=0.9, mcc=0.75, losses=None, eval_epochs=(1, 2, 3), complete=True,
                 profile="smoke") -> Path:
    """A run record in the contract's shape (kit.manifest/1, metrics.jsonl, kit.summary/1)."""
    directory.mkdir(parents=True)
    losses = losses if losses is not None else [0.70 - 0.02 * i for i in range(30)]
    manifest = {"schema": "kit.manifest/1", "profile": profile, "versions": {"torch": "2.1.0"},
                "device": {"type": "cpu", "name": "cpu", "count": 1},
                "config": {"profile": profile, "train": {"num_train_epochs": 3, "learning_rate": 2e-3}},
                "config_sha256": "0" * 64, "data": {"source": "smoke", "majority_baseline": MAJORITY}}
    (directory / "manifest.json").write_text(json.dumps(manifest))
    lines = [{"kind": "train", "step": 5 * (i + 1), "epoch": round(3 * (i + 1) / len(losses), 2), "loss": loss}
             for i, loss in enumerate(losses)]
    lines += [{"kind": "epoch", "step": 10 * e, "epoch": float(e), "seconds": 1.0} for e in eval_epochs]
    lines += [{"kind": "eval", "step": 10 * e, "epoch": float(e), "accuracy": accuracy, "mcc": mcc,
               "eval_loss": 0.4} for e in eval_epochs]
    (directory / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    if complete:
        summary = {"schema": "kit.summary/1", "status": "complete", "train_seconds": 40.0, "samples_per_second": 50.0,
                   "memory": {"source": "none"}, "final": {"accuracy": accuracy, "mcc": mcc, "epoch": 3.0},
                   "evals": len(eval_epochs), "thresholds": {"accuracy": 0.85}, "verdict": "pass"}
        (directory / "summary.json").write_text(json.dumps(summary))
    return directory


def test_thresholds_come_from_published_json():
    assert thresholds("published") == {"accuracy": 0.80, "mcc": 0.50}
    assert thresholds("smoke") == {"accuracy": 0.85}
    with pytest.raises(KeyError, match="no thresholds for profile 'nope'"):
        thresholds("nope")


def test_healthy_record_has_no_problems(tmp_path):
    record = RunRecord.load(write_record(tmp_path / "run"))
    assert completeness_problems(record) == []
    assert loss_problems(record) == []
    assert eval_problems(record) == []
    assert threshold_problems(record, thresholds("smoke")) == []
    assert threshold_problems(record, thresholds("published")) == []


def test_majority_baseline_fails_the_published_thresholds(tmp_path):
    record = RunRecord.load(write_record(tmp_path / "run", accuracy=MAJORITY, mcc=0.0))
    assert threshold_problems(record, thresholds("published")) == [
        f"final accuracy {MAJORITY:.4f} is below the threshold 0.8", "final mcc 0.0000 is below the threshold 0.5"]


def test_a_value_exactly_at_its_threshold_passes_and_just_below_fails(tmp_path):
    limits = thresholds("published")   # accuracy >= 0.80, mcc >= 0.50: "at or above" passes
    at = RunRecord.load(write_record(tmp_path / "at", accuracy=limits["accuracy"], mcc=limits["mcc"]))
    assert threshold_problems(at, limits) == []
    below = RunRecord.load(write_record(tmp_path / "below", accuracy=limits["accuracy"] - 1e-6, mcc=limits["mcc"]))
    assert threshold_problems(below, limits) == ["final accuracy 0.8000 is below the threshold 0.8"]


def test_nan_and_flat_losses_fail(tmp_path):
    nan = RunRecord.load(write_record(tmp_path / "nan", losses=[0.7, 0.6, math.nan, 0.5]))
    assert loss_problems(nan) == ["1 train line(s) with a non-finite loss, first at step 15"]
    flat = RunRecord.load(write_record(tmp_path / "flat", losses=[0.69] * 20))
    assert loss_problems(flat)[0].startswith("loss did not go down")


def test_missing_epoch_evaluation_fails(tmp_path):
    record = RunRecord.load(write_record(tmp_path / "run", eval_epochs=(1, 3)))
    assert eval_problems(record) == ["evaluations at epochs [1, 3], expected one per epoch [1, 2, 3]"]


def test_killed_run_is_incomplete(tmp_path):
    record = RunRecord.load(write_record(tmp_path / "run", complete=False))
    assert any(p.endswith("summary.json missing") for p in completeness_problems(record))
    assert threshold_problems(record, {"accuracy": 0.85}) == ["final accuracy missing from summary.json"]


def run_verify(run_dir: Path, tmp_path: Path, *extra: str):
    result_json, junit = tmp_path / "result.json", tmp_path / "junit.xml"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", "pytest", "verify", "-p", "no:cacheprovider", "--run-dir",
                           str(run_dir), "--result-json", str(result_json), "--junitxml", str(junit), *extra],
                          cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=600)
    result = json.loads(result_json.read_text()) if result_json.exists() else None
    return done, result, junit


def test_verify_suite_passes_a_healthy_record(tmp_path):
    done, result, junit = run_verify(write_record(tmp_path / "run"), tmp_path)
    assert done.returncode == 0, done.stdout[-3000:]
    assert result["ok"] is True and result["counts"].get("failed", 0) == 0
    assert "kit verify report" in done.stdout and "verdict: PASS" in done.stdout
    assert ET.parse(junit).getroot().iter("testcase")


def test_verify_suite_fails_a_crippled_record(tmp_path):
    """A run that learned nothing: validation accuracy at the majority baseline, loss flat."""
    crippled = write_record(tmp_path / "run", accuracy=MAJORITY, mcc=0.0, losses=[0.69] * 30)
    done, result, junit = run_verify(crippled, tmp_path)
    assert done.returncode == 1
    failed = {t["test"].split("::")[-1]: t["message"] for t in result["tests"] if t["outcome"] == "failed"}
    assert set(failed) == {"test_thresholds", "test_loss_finite_and_decreasing"}
    assert f"final accuracy {MAJORITY:.4f} is below the threshold 0.85" in failed["test_thresholds"]
    assert "verdict: FAIL" in done.stdout
    failures = [case.get("name") for case in ET.parse(junit).getroot().iter("testcase")
                if case.find("failure") is not None]
    assert sorted(failures) == ["test_loss_finite_and_decreasing", "test_thresholds"]
