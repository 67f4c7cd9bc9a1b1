"""What a user sees on the console: the header, one aligned line per epoch, the done line; bars on
stderr, one per phase; no log dicts, no library bars; everything also in <run>/console.log."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from conftest import REPO

from recipe import console, finetune
from recipe.record import read_metrics

EPOCH = re.compile(r"^ +(\d)/3 +(\d\.\d{4}) +(\d\.\d{4}) +(0\.\d{4}|1\.0000) +(-?\d\.\d{4}) +(\d+\.\d) +(\d+\.\d)"
                   r"  \d+ MiB host RSS$")


@pytest.mark.slow
def test_a_smoke_run_prints_a_header_one_line_per_epoch_and_the_done_line(smoke_run):
    stdout = (smoke_run.parent / "stdout.txt").read_text()
    stderr = (smoke_run.parent / "stderr.txt").read_text()
    lines = stdout.splitlines()
    assert lines[0].startswith("profile smoke | device cpu (") and lines[0].endswith(f"output {smoke_run}")
    assert lines[1] == console.epoch_header()
    epochs = [EPOCH.match(line) for line in lines[2:5]]
    assert all(epochs), "\n".join(lines[2:5])
    assert [m.group(1) for m in epochs] == ["1", "2", "3"]
    header = lines[1]
    for line in lines[2:5]:   # aligned: every number ends where its column's title ends
        for title in ("train loss", "eval loss", "accuracy", "MCC", "seconds", "samples/s"):
            end = header.index(title) + len(title)
            assert line[end - 1] != " " and line[end] == " ", (title, line)
    assert re.match(r"^done: accuracy \d\.\d{4}  MCC \d\.\d{4}  train [\d.]+ s  peak memory \d+ MiB host RSS  "
                    r"verdict PASS \(accuracy >= 0\.85\)  record: ", lines[5])
    assert len(lines) == 6, stdout

    both = stdout + stderr
    for noise in ("{'loss'", "{'eval_loss'", "{'train_runtime'", "Writing model shards", "Map:", "Loading weights"):
        assert noise not in both, noise
    assert stderr.count("train: 100%") >= 1 and "\ntrain: 100%" in stderr.replace("\r", "\n")

    evals = [line for line in read_metrics(smoke_run) if line["kind"] == "eval"]
    assert [float(m.group(5)) for m in epochs] == [round(e["mcc"], 4) for e in evals]   # the record's numbers

    log = (smoke_run / console.LOG_NAME).read_text().splitlines()
    library = re.compile(r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.]+: ")   # libraries' log records: file only
    assert [line for line in log if not line.startswith("{") and not library.match(line)] == lines   # the screen
    logged = [json.loads(line) for line in log if line.startswith("{")]
    train = [line for line in read_metrics(smoke_run) if line["kind"] == "train"]
    assert [entry["step"] for entry in logged if "loss" in entry] == [t["step"] for t in train]
    assert sum("eval_mcc" in entry for entry in logged) == 3 and "train_runtime" in logged[-1]


WARN_TWICE = """
import warnings
from pathlib import Path
from recipe import console
out = console.Console(main=True)
out.attach(Path({run!r}))
for _ in range(2):
    warnings.warn("same words", UserWarning)
warnings.warn("same words", UserWarning)   # another line: Python's own registry would show it again
warnings.warn("other words", UserWarning)
out.close()
"""


@pytest.mark.slow   # a fresh interpreter importing transformers (recipe.console): 5-10 s on 2 cores
def test_a_warning_shows_once_on_stderr_and_every_time_in_console_log(tmp_path):
    done = subprocess.run([sys.executable, "-c", WARN_TWICE.format(run=str(tmp_path))], cwd=REPO,
                          capture_output=True, text=True, timeout=120, check=True)
    assert done.stderr.count("same words") == 1 and done.stderr.count("other words") == 1, done.stderr
    log = (tmp_path / console.LOG_NAME).read_text()
    assert log.count("same words") == 2 and log.count("other words") == 1   # per call site, as Python counts


def test_ranks_other_than_zero_print_nothing(tmp_path, capsys):
    quiet = console.Console(main=False)
    quiet.say("profile smoke | ...")
    quiet.attach(tmp_path)
    quiet.say("done: ...")
    assert capsys.readouterr().out == "" and not (tmp_path / console.LOG_NAME).exists()


def test_ctrl_c_says_how_to_resume(tmp_path):
    hint = finetune.resume_command(["--profile", "smoke", "--output", str(tmp_path), "--overwrite"])
    assert f"python -m recipe.finetune --profile smoke --output {tmp_path} --resume" in hint
    assert "--overwrite" not in hint


@pytest.mark.slow
def test_ctrl_c_mid_training_prints_the_resume_command_not_a_traceback(tmp_path):
    import signal
    import time

    from conftest import recipe_env
    out = tmp_path / "run"
    args = ["--profile", "smoke", "--device", "cpu", "--no-swanlab", "--output", str(out)]
    proc = subprocess.Popen([sys.executable, "-m", "recipe.finetune", *args], cwd=REPO, env=recipe_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    checkpoint = out / "checkpoints" / "checkpoint-25" / "trainer_state.json"
    deadline = time.time() + 300
    while not checkpoint.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    assert f"python -m recipe.finetune {' '.join(args)} --resume" in stderr
