"""The README stays true to the code: targets, profiles, exit codes and CLI flags it documents exist."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from recipe import config, errors, finetune

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def make_targets() -> set[str]:
    out = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return {re.sub(r"\x1b\[[0-9;]*m", "", line).split()[0] for line in out.splitlines() if line.strip()}


def test_quick_start_commands_are_real_targets():
    quick_start = README.split("## Quick start", 1)[1].split("##", 1)[0]
    assert "make run-cpu" in quick_start and "make test" in quick_start
    assert {"run-cpu", "test"} <= make_targets()


def test_every_make_target_in_the_readme_exists():
    targets = make_targets()
    mentioned = set(re.findall(r"`make ([a-z0-9-]+)", README))
    assert mentioned, "the README names no make target"
    assert mentioned <= targets, f"README names targets the Makefile lacks: {sorted(mentioned - targets)}"


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, re.MULTILINE)
    assert "set -euo pipefail" in ci


def test_profiles_and_exit_codes_match_the_code():
    for profile in config.available_profiles():
        assert f"| `{profile}` |" in README, profile
    for cls in (errors.ConfigError, errors.DataError, errors.ModelError, errors.DeviceError, errors.OutputError):
        assert re.search(rf"^\| {cls.exit_code} \| {cls.kind.split()[0]}", README, re.MULTILINE), cls.kind


def test_every_recipe_flag_is_documented():
    flags = {a for action in finetune.parse_args.__code__.co_consts if isinstance(action, str)
             for a in re.findall(r"^--[a-z-]+$", action)}
    assert {"--profile", "--output", "--device", "--api", "--resume", "--no-swanlab"} <= flags
    for flag in flags:
        assert flag in README, flag
