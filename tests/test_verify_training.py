"""The verify suite end to end on real smoke runs of the recipe (CPU, ~1-2 min each on 2 cores):
it passes a normal run and FAILS the same run crippled with learning_rate=0."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def verify_with_training(tmp_path: Path, *recipe_args: str):
    result_json = tmp_path / "result.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT), SWANLAB_MODE="disabled")
    command = [sys.executable, "-m", "pytest", "verify", "-p", "no:cacheprovider", "--profile", "smoke",
               "--run-dir", str(tmp_path / "run"), "--result-json", str(result_json),
               *[f"--recipe-arg={arg}" for arg in recipe_args]]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=900)
    result = json.loads(result_json.read_text())
    failed = {t["test"].split("::")[-1]: t["message"] for t in result["tests"] if t["outcome"] == "failed"}
    return done, result, failed


def test_smoke_run_passes(tmp_path):
    done, result, failed = verify_with_training(tmp_path)
    assert done.returncode == 0 and not failed, done.stdout[-3000:]
    assert (tmp_path / "run" / "summary.json").is_file()
    assert result["run"]["returncode"] == 0


def test_smoke_run_with_learning_rate_zero_fails(tmp_path):
    done, _, failed = verify_with_training(tmp_path, "--set", "train.learning_rate=0")
    assert done.returncode == 1, done.stdout[-3000:]
    assert "test_thresholds" in failed and "is below the threshold 0.85" in failed["test_thresholds"]
    assert "test_record_complete" not in failed  # the run finished; it just learned nothing


@pytest.mark.skipif(__import__("torch").cuda.is_available(),
                    reason="this test needs a machine WITHOUT a CUDA GPU")
def test_recipe_that_fails_is_never_reported_as_trained(tmp_path):
    """--require-device cuda here: the recipe exits 6 (device); the report must say it failed."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), SWANLAB_MODE="disabled")
    result_json = tmp_path / "result.json"
    command = [sys.executable, "-m", "pytest", "verify/test_training.py", "-p", "no:cacheprovider",
               "--profile", "smoke", "--require-device", "cuda", "--run-dir", str(tmp_path / "a100"),
               "--result-json", str(result_json)]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 1, done.stdout[-3000:]
    assert "trained in" not in done.stdout
    assert "recipe FAILED (exit 6) after" in done.stdout and str(tmp_path / "a100") in done.stdout
    result = json.loads(result_json.read_text())
    assert result["run"]["returncode"] == 6 and result["ok"] is False
