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


# --------------------------------------------------------------------------- each problem's exact words
def edited(directory: Path, name: str, **changes) -> Path:
    path = directory / name
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))
    return directory


def test_thresholds_read_the_file_they_are_given(tmp_path):
    custom = tmp_path / "published.json"
    custom.write_text(json.dumps({"thresholds": {"mine": {"mcc": 0.4}}}))
    assert thresholds("mine", custom) == {"mcc": 0.4}


def test_completeness_names_each_wrong_schema_status_and_missing_key(tmp_path):
    run = write_record(tmp_path / "run")
    edited(run, "manifest.json", schema="kit.manifest/0", versions={}, data=None)
    edited(run, "summary.json", schema="kit.summary/0", status="running", memory=None)
    problems = completeness_problems(RunRecord.load(run))
    assert problems == ["manifest schema 'kit.manifest/0' is not kit.manifest/1",
                        "summary schema 'kit.summary/0' is not kit.summary/1",
                        "summary status is 'running', not 'complete'",
                        "summary.json has no memory",
                        "manifest.json has no versions", "manifest.json has no data"]


def test_a_record_without_manifest_or_train_lines_says_so_once(tmp_path):
    run = write_record(tmp_path / "run", losses=[])
    (run / "manifest.json").unlink()
    problems = completeness_problems(RunRecord.load(run))
    assert problems == [f"{run / 'manifest.json'} missing", "metrics.jsonl has no train lines"]


def test_loading_reports_unreadable_files_and_keeps_the_good_lines(tmp_path):
    run = write_record(tmp_path / "run", losses=[0.7, 0.6, 0.5])
    (run / "summary.json").write_text("{not json")
    metrics = run / "metrics.jsonl"
    lines = metrics.read_text().splitlines()
    metrics.write_text("\n".join([lines[0], "[1, 2]", *lines[1:]]) + "\n")   # a bad second line
    record = RunRecord.load(run)
    assert record.directory == run and record.summary is None
    unreadable = (f"{run / 'summary.json'}: not valid JSON (line 1, column 2: Expecting property name enclosed "
                  "in double quotes)")
    assert record.problems == [unreadable, f"{metrics}:2: not a JSON object"]
    assert [row["loss"] for row in record.train] == [0.7, 0.6, 0.5]   # the lines after the bad one too
    metrics.unlink()
    assert RunRecord.load(run).problems[-1] == f"{metrics} missing"


def test_eval_problems_in_words(tmp_path):
    run = write_record(tmp_path / "run")
    edited(run, "manifest.json", config={"profile": "smoke", "train": {}})
    assert eval_problems(RunRecord.load(run)) == [
        "manifest config has no num_train_epochs: cannot tell whether eval ran every epoch"]
    record = RunRecord.load(write_record(tmp_path / "run2", eval_epochs=(1,)))
    record.manifest["config"]["train"]["num_train_epochs"] = 1
    record.evals = [{"kind": "eval", "accuracy": 0.9}]                      # no epoch logged
    assert eval_problems(record) == ["evaluations at epochs [-1], expected one per epoch [1]"]
    record.manifest["config"]["train"]["num_train_epochs"] = 3
    record.evals = [{"epoch": 1.0, "accuracy": 0.9}, {"epoch": 2.0, "accuracy": None}, {"epoch": 3.0}]
    assert eval_problems(record) == ["eval at epoch 2.0 has no accuracy"]


def test_loss_trend_uses_the_first_and_last_tenth(tmp_path):
    record = RunRecord.load(write_record(tmp_path / "run", losses=[0.7, 0.6]))
    assert loss_problems(record) == []                                      # two values are enough
    record.train = [{"loss": 0.7}]
    assert loss_problems(record) == ["only 1 logged loss value(s): cannot tell whether it went down"]
    record.train = [{"loss": v} for v in (0.7, 0.5, 0.6, 0.6, 0.6)]          # 5 points: a window of 1
    assert loss_problems(record) == []
    # 20 points, window 2: the first two average 0.55, the last two 0.6 (the very last alone is lower)
    record.train = [{"loss": v} for v in [0.5, 0.6] + [0.58] * 16 + [0.7, 0.5]]
    assert loss_problems(record) == ["loss did not go down: mean of the first 2 step(s) 0.5500, of the last 0.6000"]
