"""Shared fixtures: running the recipe for real (subprocess, like a user) and reusing one smoke run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# Threads are part of the result and, on a busy machine, of the speed: in-process runs take the
# kit's choice from OMP_NUM_THREADS (recipe/threads.py) like the subprocess runs below.
os.environ.setdefault("OMP_NUM_THREADS", "2")


def recipe_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWANLAB_")}
    env.update({"PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
                "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": env.get("OMP_NUM_THREADS", "2")})
    env.update(extra)
    return env


def run_recipe(*args: str, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """`python -m recipe.finetune ARGS` as a user runs it; returns the finished process."""
    return subprocess.run([sys.executable, "-m", "recipe.finetune", *args], cwd=REPO, env=env or recipe_env(),
                          check=False, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory) -> Path:
    """One real smoke-profile run on the CPU, shared by every test that only reads its record."""
    out = tmp_path_factory.mktemp("smoke") / "run"
    proc = run_recipe("--profile", "smoke", "--device", "cpu", "--no-swanlab", "--output", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    (out.parent / "stdout.txt").write_text(proc.stdout)   # what the user saw (tests/test_console.py)
    (out.parent / "stderr.txt").write_text(proc.stderr)
    return out


@pytest.fixture(scope="session")
def parity_runs(tmp_path_factory) -> dict:
    """Smoke-sized runs of the parity profile, trained once per session (tests/test_parity_runs.py
    `train_parity_runs`), read by tests/test_parity_runs.py and tests/test_report_parity.py."""
    from test_parity_runs import train_parity_runs

    return train_parity_runs(tmp_path_factory.mktemp("parity"))


def pytest_collection_modifyitems(config, items):
    """`make mutation` (tests/mutation_score.py) sets KIT_MUTATION_SKIP_SLOW for the modules whose
    mutants fast tests can judge: a slow test then skips instead of training once per mutant."""
    # never while mutmut maps tests to functions ("stats"): resume's mutants need the slow tests mapped
    if os.environ.get("KIT_MUTATION_SKIP_SLOW") and os.environ.get("MUTANT_UNDER_TEST") != "stats":
        skip = pytest.mark.skip(reason="KIT_MUTATION_SKIP_SLOW: slow tests are left out of this mutation run")
        for item in items:
            if "slow" in item.keywords:
                item.add_marker(skip)


def pytest_runtest_logreport(report):
    """With KIT_TEST_TIMINGS=FILE (set by .ci/run), each test phase's seconds are appended as it ends,
    so a CI run cut off by its time limit still says where the time went."""
    path = os.environ.get("KIT_TEST_TIMINGS")
    if path:
        with open(path, "a", encoding="utf-8") as timings:
            timings.write(f"{report.duration:.2f}\t{report.when}\t{report.outcome}\t{report.nodeid}\n")
