"""Shared fixtures: running the recipe for real (subprocess, like a user) and reusing one smoke run."""

from __future__ import annotations

import contextlib
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


def assert_time_and_throughput(summary: dict, samples: int) -> None:
    """summary.json's training time and samples/s against measures it did not compute them from: the
    epoch timer (each epoch's seconds, without its evaluation, in `epoch_seconds`) and `samples`, the
    rows x epochs the data and the profile imply. Catches evaluation or setup counted as training,
    evaluation subtracted twice, and samples counted as steps x batch (the last batch is partial)."""
    epochs = sum(summary["epoch_seconds"])
    slack = max(2.0, 0.2 * epochs)   # train begin -> first epoch, saving the model, the ranks' last gather
    assert summary["train_samples"] == samples
    assert epochs - 0.01 <= summary["train_seconds"] <= epochs + slack, (summary["train_seconds"], epochs)
    assert samples / (epochs + slack) <= summary["samples_per_second"] <= samples / epochs * 1.001


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


# ---------------------------------------------------------------- the quick tier stays quick
# `make test-quick` runs `pytest -m "not slow"`. A test that trains a model belongs to the slow tier, and
# this guard makes sure it is marked so: structurally, not by a stopwatch. While a test that is not
# marked slow sets up (its fixtures included, whatever their scope) or runs, an optimizer step in this
# process, or a child process that runs the recipe (or a command that trains through it), fails that
# test at once, naming what it started.
TRAINING_MODULES = {"recipe.finetune", "report.stability", "bench", "dev.device_check"}
TRAINING_TARGETS = {"run-cpu", "verify-cpu", "stability", "bench", "device-check", "device-check-dry"}


def training_command(argv) -> str | None:
    """What in `argv` (a Popen argument list or shell string) trains a model, or None: `python -m` one
    of TRAINING_MODULES (not just its --help), a test-only recipe wrapper (tests/fakes/*_recipe.py),
    `make` of a training target without -n, or the verify suite asked to train a profile."""
    words = [str(w) for w in argv] if isinstance(argv, (list, tuple)) else str(argv).split()
    if "--help" in words or "-h" in words:
        return None
    for i, word in enumerate(words):
        if word == "-m" and i + 1 < len(words) and words[i + 1] in TRAINING_MODULES:
            return f"python -m {words[i + 1]}"
        if word.endswith("_recipe.py"):
            return word
    if words and Path(words[0]).name == "make" and not {"-n", "--dry-run", "DRY_RUN=1"} & set(words):
        targets = [w for w in words[1:] if w in TRAINING_TARGETS]
        if targets:
            return f"make {targets[0]}"
    if "pytest" in words and any(w == "verify" or w.startswith("verify/test_training") for w in words) \
            and any(w == "--profile" or w.startswith("--recipe-arg") for w in words):
        return "the verify suite training a profile"
    return None


class TrainingInAQuickTest(Exception):
    pass


@contextlib.contextmanager
def training_refused(nodeid: str):
    """Inside: starting the recipe or stepping an optimizer raises TrainingInAQuickTest; `seen` lists
    what was refused, also when the code under test caught the exception."""
    from torch.optim.optimizer import register_optimizer_step_pre_hook  # every optimizer, in this process

    seen: list[str] = []

    def refuse(what: str):
        seen.append(what)
        raise TrainingInAQuickTest(f"{nodeid} trains a model ({what}) but is not marked slow: add "
                                   "@pytest.mark.slow (docs/development.md, \"The quick tier\")")

    popen_init = subprocess.Popen.__init__

    def guarded_init(self, args, *rest, **kwargs):
        what = training_command(args)
        if what:
            refuse(what)
        popen_init(self, args, *rest, **kwargs)

    subprocess.Popen.__init__ = guarded_init
    handle = register_optimizer_step_pre_hook(lambda *_: refuse("an optimizer step"))
    try:
        yield seen
    finally:
        handle.remove()
        subprocess.Popen.__init__ = popen_init


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    if item.get_closest_marker("slow"):
        return (yield)
    return (yield from _guarded(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    if item.get_closest_marker("slow"):
        return (yield)
    return (yield from _guarded(item))


def _guarded(item):
    """The body of the two wrappers above for a quick test (a generator: it yields to the phase)."""
    with training_refused(item.nodeid) as seen:
        result = yield
    if seen:
        pytest.fail(f"{item.nodeid} trains a model ({seen[0]}) but is not marked slow", pytrace=False)
    return result


def pytest_collection_modifyitems(config, items):
    """`make mutation` (dev/mutation_score.py) sets KIT_MUTATION_SKIP_SLOW for the modules whose
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
