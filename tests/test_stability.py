"""report.stability: the recipe command it runs, and how runs that crash are counted.

Training runs are in test_report_real_runs.py; here the real recipe is only asked to start with
a setting it refuses, which fails in seconds, before any training."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from recipe.errors import EXIT_NO_RUN_FINISHED, EXIT_OUTPUT
from report import stability


def test_each_seed_runs_the_documented_recipe_command(tmp_path):
    command = stability.recipe_command("published", 7, tmp_path / "seed-7", "npu", ["train.learning_rate=3e-5"])
    assert command == [sys.executable, "-m", "recipe.finetune", "--profile", "published", "--seed", "7",
                       "--output", str(tmp_path / "seed-7"), "--no-swanlab", "--device", "npu",
                       "--set", "train.learning_rate=3e-5"]


def test_zero_seeds_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        stability.main(["--profile", "smoke", "--seeds", "0", "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "--seeds must be >= 1" in capsys.readouterr().err


@pytest.mark.slow   # starts the recipe twice (it refuses the setting before training)
def test_runs_that_crash_count_as_failed_and_show_the_recipe_error(tmp_path, capsys):
    code = stability.main(["--profile", "smoke", "--seeds", "2", "--out", str(tmp_path), "--device", "cpu",
                           "--set", "no_such_setting=1"])
    assert code == EXIT_NO_RUN_FINISHED
    result = json.loads((tmp_path / "stability.json").read_text())
    assert (result["runs"], result["finished"], result["failed"]) == (2, 0, 2)
    assert [r["seed"] for r in result["runs_detail"]] == [42, 43]
    assert all(r["recipe_exit_code"] not in (0, None) for r in result["runs_detail"])
    printed = capsys.readouterr()
    assert "no_such_setting" in printed.err and "seed-42.log" in printed.err  # the recipe's message, and where
    assert "failed 2/2" in printed.out
    assert "| 2 | 0 | 2 |" in (tmp_path / "stability.md").read_text()


def test_reuse_keeps_a_finished_seed_without_running_the_recipe(tmp_path, monkeypatch):
    seed_dir = tmp_path / "seed-42"
    seed_dir.mkdir()
    (seed_dir / "summary.json").write_text(json.dumps({"status": "complete"}))
    monkeypatch.setattr(stability.subprocess, "run", lambda *a, **k: pytest.fail("the recipe must not run"))
    run_dir, code, _ = stability.train_seed("smoke", 42, tmp_path, None, [], reuse=True)
    assert (run_dir, code) == (Path(seed_dir), None)


def test_an_existing_seed_directory_is_refused_without_reuse(tmp_path, capsys, monkeypatch):
    # The recipe would refuse to overwrite it, and the old result would be read as this run's.
    (tmp_path / "seed-43").mkdir()
    monkeypatch.setattr(stability.subprocess, "run", lambda *a, **k: pytest.fail("the recipe must not run"))
    code = stability.main(["--profile", "smoke", "--seeds", "2", "--out", str(tmp_path)])
    assert code == EXIT_OUTPUT
    assert "seed-43 already exists: pass --reuse" in capsys.readouterr().err


def test_reuse_resumes_an_unfinished_seed(tmp_path, monkeypatch):
    (tmp_path / "seed-42").mkdir()
    (tmp_path / "seed-42" / "manifest.json").write_text("{}")
    commands = []
    monkeypatch.setattr(stability.subprocess, "run",
                        lambda command, **k: commands.append(command) or stability.subprocess.CompletedProcess(command, 0))
    stability.train_seed("smoke", 42, tmp_path, None, [], reuse=True)
    assert commands[0][-1] == "--resume"
