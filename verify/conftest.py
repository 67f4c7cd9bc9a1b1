"""Options, fixtures and reports of the verify suite.

    python -m pytest verify --profile smoke                    # check the environment, train, assert
    python -m pytest verify --run-dir runs/published-npu       # assert that run record (train into it if new)
    python -m pytest /opt/kit/verify --require-device npu      # (in the image) no NPU is a failure

Machine output: --junitxml=PATH (pytest's) and --result-json=PATH (this file's hook).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from verify.runrecord import RunRecord, thresholds
from verify.system import System

KIT_ROOT = Path(__file__).resolve().parent.parent  # the checkout, or /opt/kit in the images
DEVICES = ("none", "cuda", "npu", "any")
RECIPE_TIMEOUT_S = int(os.environ.get("KIT_VERIFY_TIMEOUT_S", "21600"))
_outcomes: list[dict] = []
_REPORT: dict = {}


def pytest_addoption(parser):
    group = parser.getgroup("kit verify")
    group.addoption("--profile", default="smoke", help="recipe profile to train and to take thresholds from")
    group.addoption("--run-dir", default=None,
                    help="run record to assert; when new or empty, the suite trains --profile into it first")
    group.addoption("--require-device", default="none", choices=DEVICES,
                    help="fail (instead of n/a) when this accelerator is missing")
    group.addoption("--recipe-arg", action="append", default=[],
                    help="extra argument for `python -m recipe.finetune` (repeatable), e.g. --recipe-arg=--set "
                         "--recipe-arg=learning_rate=0")
    group.addoption("--result-json", default=None, help="write a JSON summary of the outcome here")


@pytest.fixture(scope="session")
def options(request):
    return request.config.option


@pytest.fixture(scope="session")
def system():
    return System()


@pytest.fixture(scope="session")
def run_record(options, tmp_path_factory) -> RunRecord:
    """The run under test. --run-dir holding a run record: that record, as it is. --run-dir new or
    empty (or no --run-dir: a temporary directory): a fresh recipe run of --profile, written there."""
    output = Path(options.run_dir) if options.run_dir else tmp_path_factory.mktemp("run") / options.profile
    # imported here: the environment checks must run even where `import torch` breaks
    from recipe.rundir import holds_anything
    if holds_anything(output):   # CANN's ascend-log/ alone is no run: make verify-npu writes it first
        return RunRecord.load(output)
    command = [sys.executable, "-m", "recipe.finetune", "--profile", options.profile, "--output", str(output),
               "--no-swanlab", *_device_args(options.require_device), *options.recipe_arg]
    started = time.monotonic()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(KIT_ROOT), os.environ.get("PYTHONPATH")])))
    done = subprocess.run(command, cwd=KIT_ROOT, env=env, capture_output=True, text=True, check=False,
                          timeout=RECIPE_TIMEOUT_S)
    _REPORT["run"] = {"command": command, "returncode": done.returncode, "output": str(output),
                      "seconds": round(time.monotonic() - started, 1)}
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-25:])
        pytest.fail(f"recipe exited {done.returncode}: {' '.join(command)}\n{tail}", pytrace=False)
    return RunRecord.load(output)


def _device_args(required: str) -> list[str]:
    return ["--device", required] if required in ("cuda", "npu") else []


@pytest.fixture(scope="session")
def limits(options, run_record) -> dict[str, float]:
    profile = run_record.profile or options.profile
    if options.run_dir and run_record.profile and run_record.profile != options.profile:
        # a record knows its own profile: its thresholds apply
        _REPORT["profile_note"] = f"--profile {options.profile} ignored: the run record is {profile}"
    try:
        return thresholds(profile)
    except KeyError as err:
        pytest.fail(str(err), pytrace=False)


def pytest_runtest_logreport(report):
    if report.when != "call" and report.passed:
        return
    message = ""
    if report.failed:
        crash = getattr(report.longrepr, "reprcrash", None)
        message = crash.message if crash is not None else str(report.longrepr)
    elif report.skipped and isinstance(report.longrepr, tuple):
        message = report.longrepr[2]
    _outcomes.append({"test": report.nodeid, "outcome": report.outcome, "when": report.when,
                      "message": message.strip()[:500], "seconds": round(report.duration, 2)})


def _summary(config) -> dict:
    counts: dict[str, int] = {}
    for outcome in _outcomes:
        counts[outcome["outcome"]] = counts.get(outcome["outcome"], 0) + 1
    return {"schema": "kit.verify/1", "ok": counts.get("failed", 0) == 0 and bool(_outcomes),
            "profile": config.option.profile, "run_dir": config.option.run_dir,
            "require_device": config.option.require_device, "counts": counts, "tests": _outcomes,
            **{k: v for k, v in _REPORT.items() if k != "final"}, "final": _REPORT.get("final")}


def pytest_sessionfinish(session, exitstatus):
    path = session.config.option.result_json
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(_summary(session.config), indent=2, default=str) + "\n")


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    summary = _summary(config)
    write = terminalreporter.write_line
    terminalreporter.section("kit verify report")
    skipped = [o for o in _outcomes if o["outcome"] == "skipped"]
    for outcome in _outcomes:
        if outcome["outcome"] == "skipped":
            continue
        mark = {"passed": "ok  ", "failed": "FAIL"}.get(outcome["outcome"], outcome["outcome"])
        name = outcome["test"].split("::")[-1]
        detail = f" — {outcome['message'].splitlines()[0]}" if outcome["message"] else ""
        write(f"  {mark} {name}{detail}"[:160])
    if skipped:
        names = ", ".join(o["test"].split("::")[-1].split("[")[-1].rstrip("]") for o in skipped)
        write(f"  n/a  {len(skipped)} check(s) not applicable here (pytest -rs shows why): {names}"[:300])
    final = _REPORT.get("final")
    if final:
        write(f"  run: {final}")
    run = _REPORT.get("run")
    if run and run["returncode"] == 0:
        write(f"  trained in {run['seconds']} s -> {run['output']}")
    elif run:   # a recipe that failed trained nothing: say so, never "trained"
        write(f"  recipe FAILED (exit {run['returncode']}) after {run['seconds']} s; no run in {run['output']}")
    verdict = "PASS" if summary["ok"] else "FAIL"
    write(f"  verdict: {verdict} ({', '.join(f'{n} {k}' for k, n in summary['counts'].items())})")
    if config.option.result_json:
        write(f"  result: {config.option.result_json}")


@pytest.fixture(scope="session")
def verify_report() -> dict:
    """Lines for the human report: tests put "final" (the run's numbers against thresholds) here."""
    return _REPORT
