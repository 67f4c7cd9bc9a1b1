"""The quick tier (`make test-quick`, `pytest -m "not slow"`) holds no training: tests/conftest.py fails
any test not marked slow that steps an optimizer or starts the recipe, in its body or in a fixture."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from conftest import (
    REPO,
    TrainingInAQuickTest,
    assert_time_and_throughput,
    training_command,
    training_refused,
)


@pytest.mark.parametrize("argv, what", [
    ([sys.executable, "-m", "recipe.finetune", "--profile", "smoke"], "python -m recipe.finetune"),
    (["python", "-m", "report.stability", "--seeds", "2"], "python -m report.stability"),
    (["python3", "-m", "bench", "--device", "cpu"], "python -m bench"),
    (["python3", "-m", "dev.device_check", "--dry-run"], "python -m dev.device_check"),
    ([sys.executable, "tests/fakes/slow_recipe.py", "0.1", "--profile", "smoke"], "tests/fakes/slow_recipe.py"),
    (["make", "-s", "run-cpu", "OUTPUT=x"], "make run-cpu"),
    (["/usr/bin/make", "verify-cpu"], "make verify-cpu"),
    ([sys.executable, "-m", "pytest", "verify", "--profile", "smoke", "--run-dir", "r"],
     "the verify suite training a profile"),
    ("python -m recipe.finetune --profile smoke", "python -m recipe.finetune"),   # a shell string
])
def test_commands_that_train_are_recognised(argv, what):
    assert training_command(argv) == what


@pytest.mark.parametrize("argv", [
    [sys.executable, "-m", "recipe.finetune", "--help"],                 # the README check asks for --help
    ["make", "-n", "-o", ".venv/.stamp", "run-cpu"],                     # a dry make prints, it does not train
    ["make", "DRY_RUN=1", "run-npu"],
    ["make", "-s", "test-pinned", "PYENV_ROOT_DIR=/nowhere"],
    [sys.executable, "-m", "pytest", "verify", "--run-dir", "an-existing-record"],   # verify reads a record
    [sys.executable, "-m", "report.compare", "runs/a", "runs/b"],
    ["docker", "info"],
])
def test_commands_that_do_not_train_pass(argv):
    assert training_command(argv) is None


def test_the_guard_refuses_the_recipe_and_an_optimizer_step_and_remembers_a_caught_refusal():
    from torch.optim.optimizer import _global_optimizer_pre_hooks

    before = dict(_global_optimizer_pre_hooks)
    popen_init = subprocess.Popen.__init__
    with training_refused("probe") as seen:
        with pytest.raises(TrainingInAQuickTest, match="probe trains a model .python -m recipe.finetune."):
            subprocess.run([sys.executable, "-m", "recipe.finetune", "--profile", "smoke"], check=False)
        (hook,) = [h for key, h in _global_optimizer_pre_hooks.items() if key not in before]
        try:                                       # what torch calls before every optimizer.step()
            hook(None, (), {})
        except TrainingInAQuickTest:
            pass                                   # code under test may swallow it: `seen` still knows
        assert seen == ["python -m recipe.finetune", "an optimizer step"]
        assert subprocess.run([sys.executable, "-c", "pass"], check=False).returncode == 0
    assert dict(_global_optimizer_pre_hooks) == before and subprocess.Popen.__init__ is popen_init


@pytest.mark.slow   # a pytest of its own in a subprocess, with torch
def test_a_quick_test_or_fixture_that_trains_fails_and_a_slow_one_may(tmp_path):
    (tmp_path / "conftest.py").write_text((REPO / "tests" / "conftest.py").read_text())
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    slow: trains\n")
    (tmp_path / "test_probe.py").write_text(textwrap.dedent("""
        import subprocess, sys
        import pytest, torch

        def step():
            model = torch.nn.Linear(2, 1)
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            model(torch.ones(1, 2)).sum().backward()
            optimizer.step()

        @pytest.fixture(scope="module")
        def trained():
            step()

        def test_fixture_trains(trained):
            pass

        def test_body_trains_and_swallows_the_refusal():
            try:
                step()
            except Exception:
                pass

        def test_starts_the_recipe():
            subprocess.run([sys.executable, "-m", "recipe.finetune", "--help"], check=False)
            subprocess.run([sys.executable, "-m", "recipe.finetune", "--profile", "nope"], check=False)

        def test_evaluates_only():
            with torch.no_grad():
                torch.nn.Linear(2, 1)(torch.ones(1, 2))

        @pytest.mark.slow
        def test_slow_may_train():
            step()
    """))
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfE", str(tmp_path)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    out = done.stdout
    assert "ERROR test_probe.py::test_fixture_trains" in out, out[-3000:]
    assert "FAILED test_probe.py::test_body_trains_and_swallows_the_refusal" in out, out[-3000:]
    assert "FAILED test_probe.py::test_starts_the_recipe" in out and "(python -m recipe.finetune)" in out
    assert "2 failed, 2 passed, 1 error" in out, out[-3000:]


# ---------------------------------------------------------------- the time check the slow runs use
MEASURED = {"train_seconds": 28.285, "eval_seconds": 0.704, "wall_seconds": 28.989,   # a real smoke run here
            "epoch_seconds": [10.91, 8.138, 9.198], "train_samples": 9000, "samples_per_second": 318.19}


@pytest.mark.parametrize("bug", [
    {"train_samples": 188 * 16 * 3, "samples_per_second": 188 * 16 * 3 / 28.285},   # steps x batch
    {"train_seconds": 28.285 + 8.0, "samples_per_second": 9000 / 36.285},           # setup timed as training
    {"train_seconds": 28.285 - 2 * 0.704, "samples_per_second": 9000 / 26.877},     # evaluation subtracted twice
    {"samples_per_second": 9000 / 28.285 * 1.05},                                   # another time or count
])
def test_the_time_and_throughput_check_passes_a_real_run_and_catches_each_bug(bug):
    assert_time_and_throughput(MEASURED, samples=9000)
    with pytest.raises(AssertionError):
        assert_time_and_throughput({**MEASURED, **bug}, samples=9000)
