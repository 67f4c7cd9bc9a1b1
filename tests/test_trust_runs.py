"""Trust the run (docs/run-record.md), end to end on the CPU as a user runs it: stopping and resuming,
failing before training without a trace, a full disk, verdicts about what ran."""

from __future__ import annotations

import errno
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from recipe import finetune, model, record, rundir
from tests.conftest import recipe_env, run_recipe
from tests.test_trust_units import kit_run, snapshot, user_folder, write

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow
# One thread: the same numbers on every run of this file, and fast on a loaded 2-core machine.
ENV = recipe_env(OMP_NUM_THREADS="1")
SMOKE = ["--profile", "smoke", "--device", "cpu", "--no-swanlab", "--epochs", "1"]
SMALL = [*SMOKE, "--set", "smoke_data.train=320", "--set", "smoke_data.validation=64"]


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "recipe.finetune", *args], cwd=REPO, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def stop_mid_epoch(proc: subprocess.Popen, out: Path, after_step: int, sig=signal.SIGTERM) -> tuple[int, str]:
    """Send `sig` once the run logged a train step >= after_step; return (exit code, stderr)."""
    deadline = time.time() + 300
    while proc.poll() is None and time.time() < deadline:
        if any(line["kind"] == "train" and line["step"] >= after_step for line in record.read_metrics(out)):
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=300)
    return proc.returncode, err


def test_sigterm_mid_epoch_then_resume_equals_an_uninterrupted_run(tmp_path):
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    assert run_recipe(*SMOKE, "--output", str(whole), env=ENV).returncode == 0
    code, err = stop_mid_epoch(start(*SMOKE, "--output", str(cut)), cut, after_step=60)

    assert code == 143, err[-2000:]
    assert "Traceback" not in err
    marker = record.load_interrupted(cut)
    assert marker["signal"] == "SIGTERM" and 60 <= marker["step"] < 188   # mid-epoch: 188 steps in one
    assert (cut / "checkpoints" / f"checkpoint-{marker['step']}" / "trainer_state.json").is_file()
    assert record.load_summary(cut) is None and not (cut / record.SUMMARY).exists()
    command = err.split("this command: ", 1)[1].splitlines()[0]
    assert command == marker["resume_command"] == shlex.join(
        ["python", "-m", "recipe.finetune", *SMOKE, "--output", str(cut), "--resume"])

    started = record.load_manifest(cut)["started_at"]
    resumed = subprocess.run([sys.executable, *shlex.split(command)[1:]], check=False, cwd=REPO, env=ENV,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a, b = record.load_summary(whole), record.load_summary(cut)
    assert b["final"] == a["final"] and b["verdict"] == a["verdict"]
    assert b["resumed_from"] == f"checkpoint-{marker['step']}"

    def math_of(run):   # every logged loss, lr, grad norm and evaluation, without the timings
        lines = [{k: v for k, v in line.items() if k not in ("elapsed_s", "eval_runtime_s", "seconds")}
                 for line in record.read_metrics(run) if line["kind"] not in ("epoch", "checkpoint")]   # timings
        # the Trainer logs the mean loss since its last log: the first log after the resume averages
        # only the steps after the checkpoint, so that one mean differs by design (its grad norm does not)
        first_after = next(line for line in lines if line["kind"] == "train" and line["step"] > marker["step"])
        first_after.pop("loss")
        return lines
    assert math_of(cut) == math_of(whole)
    manifest = record.load_manifest(cut)
    assert manifest["started_at"] == started
    assert [r["checkpoint"] for r in manifest["resumes"]] == [f"checkpoint-{marker['step']}"]
    assert record.load_interrupted(cut) is None
    assert manifest["threads"]["intra_op"] == 1 and manifest["threads"]["env"]["OMP_NUM_THREADS"] == "1"


def test_fast_profile_without_checkpoints_still_saves_on_interrupt(tmp_path):
    out = tmp_path / "fast"
    args = ["--profile", "fast", "--device", "cpu", "--no-swanlab", "--model", "tiny-bert", "--data", "smoke",
            "--epochs", "1", "--set", "train.logging_steps=2", "--output", str(out)]
    code, err = stop_mid_epoch(start(*args), out, after_step=4, sig=signal.SIGINT)
    assert code == 130, err[-2000:]
    step = record.load_interrupted(out)["step"]
    assert (out / "checkpoints" / f"checkpoint-{step}" / "trainer_state.json").is_file()
    resumed = run_recipe(*args, "--resume", env=ENV)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert record.load_summary(out)["resumed_from"] == f"checkpoint-{step}"


def malformed_tsv(root: Path) -> Path:
    raw = root / "raw"
    write(raw / "in_domain_train.tsv", "gj04\t1\t\tGood .\ngj04\tx\t\tBad .\n")
    write(raw / "in_domain_dev.tsv", "gj04\t1\t\tGood .\n")
    write(raw / "out_of_domain_dev.tsv", "gj04\t1\t\tGood .\n")
    return root


def unloadable_model(root: Path) -> Path:
    write(root / "config.json", '{"model_type": "bert"}')   # a config, but no tokenizer and no weights
    return root


# Every error class, raised before training; each must leave a previous run (and --overwrite) untouched.
ERRORS = {
    "config-type": (3, lambda t: ["--set", "train.learning_rate=abc"], "train.learning_rate='abc' is not a number"),
    "config-epochs": (3, lambda t: ["--epochs", "0"], "train.num_train_epochs=0: a run must train"),
    "config-secret": (3, lambda t: ["--set", "train.hub_token=hf_secret123456"], "use the environment"),
    "config-threshold": (3, lambda t: ["--threshold", "loss=1"], "--threshold 'loss=1'"),
    "data": (4, lambda t: ["--data", str(malformed_tsv(t / "cola"))], "in_domain_train.tsv:2: label 'x'"),
    "model-missing": (5, lambda t: ["--model", str(t / "nonexistent")], "nonexistent does not exist"),
    "model-unloadable": (5, lambda t: ["--model", str(unloadable_model(t / "bert"))], "model error: cannot load"),
    "device": (6, lambda t: ["--device", "cuda"], "device error: no usable CUDA GPU"),
}


@pytest.mark.parametrize("name", list(ERRORS))
def test_a_run_that_fails_before_training_leaves_the_directory_as_found(tmp_path, name):
    code, extra, message = ERRORS[name]
    out = kit_run(tmp_path / "run")
    before = snapshot(out)
    proc = run_recipe(*SMALL, "--output", str(out), "--overwrite", *extra(tmp_path), env=ENV)
    assert proc.returncode == code, proc.stderr[-2000:]
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert snapshot(out) == before


def test_a_failure_into_a_new_directory_leaves_no_directory(tmp_path):
    out = tmp_path / "new"
    proc = run_recipe(*SMALL, "--output", str(out), "--data", str(malformed_tsv(tmp_path / "cola")), env=ENV)
    assert proc.returncode == 4 and not out.exists()


def test_overwrite_refuses_a_users_folder_and_a_busy_directory(tmp_path):
    folder = user_folder(tmp_path / "mine")
    before = snapshot(folder)
    proc = run_recipe(*SMALL, "--output", str(folder), "--overwrite", env=ENV)
    assert proc.returncode == 7
    assert proc.stderr.splitlines()[0] == (f"output error: --overwrite refused: {folder} is not empty and holds no "
                                           "run of this kit")
    assert proc.stderr.splitlines()[1].startswith("  fix: ")
    assert snapshot(folder) == before

    busy = tmp_path / "busy"
    held = rundir.claim(busy, resume=False, overwrite=False, config={})
    before = snapshot(busy)
    proc = run_recipe(*SMALL, "--output", str(busy), env=ENV)
    assert proc.returncode == 7 and f"is in use by pid {os.getpid()} " in proc.stderr
    assert snapshot(busy) == before
    held.release()


@pytest.mark.parametrize("failure", [
    OSError(errno.ENOSPC, "No space left on device", "model/model.safetensors"),
    RuntimeError('Error while serializing: IoError(Os { code: 28, kind: StorageFull, '
                 'message: "No space left on device" })'),   # safetensors' SafetensorError text
])
def test_a_full_disk_while_saving_is_exit_7_with_the_path_and_no_summary(tmp_path, monkeypatch, capsys, failure):
    import transformers

    def full(self, *args, **kwargs):
        raise failure
    monkeypatch.setattr(transformers.Trainer, "save_model", full)
    out = tmp_path / "run"
    code = finetune.main([*SMALL, "--output", str(out)])
    err = capsys.readouterr().err
    assert code == 7, err[-2000:]
    assert "no space left on the device while writing" in err and "MiB free" in err and str(out) in err
    if isinstance(failure, OSError):
        assert "model/model.safetensors" in err
    assert not (out / record.SUMMARY).exists()


def test_verdict_is_about_the_model_that_ran(tmp_path):
    tiny = model.write_tiny_bert(tmp_path / "my-bert", ["It works .", "Works it ."] * 10, None, 32, 2)
    out = tmp_path / "other"
    proc = run_recipe(*SMALL, "--model", str(tiny), "--output", str(out), env=ENV)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary, manifest = record.load_summary(out), record.load_manifest(out)
    assert summary["verdict"] == "n/a" and summary["thresholds"] == {}
    assert f"set for tiny-bert on smoke, this run is {tiny} on smoke" in summary["verdict_reason"]
    assert "verdict N/A" in proc.stdout and "pass --threshold" in proc.stdout
    assert str(tiny) in manifest["config"]["description"] and "Tiny BERT" not in manifest["config"]["description"]
    assert manifest["model_fingerprint"]["files"]["config.json"] == model.fingerprint(str(tiny))["files"]["config.json"]

    judged = tmp_path / "judged"
    proc = run_recipe(*SMALL, "--model", str(tiny), "--threshold", "accuracy=0.01", "--output", str(judged), env=ENV)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert record.load_summary(judged)["verdict"] == "pass"
    assert record.load_manifest(judged)["thresholds"] == {"limits": {"accuracy": 0.01}, "source": "--threshold",
                                                          "reason": None}
    assert json.loads((judged / record.SUMMARY).read_text())["thresholds"] == {"accuracy": 0.01}


def test_a_signal_to_one_rank_stops_every_rank_at_the_same_step_and_resumes(tmp_path):
    import psutil

    from tests.test_distributed_runs import _rank_process, torchrun, torchrun_env
    out = tmp_path / "run"
    args = torchrun("--output", str(out), "--no-swanlab", "--epochs", "1")
    launcher = subprocess.Popen(args, cwd=REPO, env=torchrun_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 300
    while launcher.poll() is None and time.time() < deadline and not any(
            line["kind"] == "train" and line["step"] >= 10 for line in record.read_metrics(out)):
        time.sleep(0.05)
    rank1 = _rank_process(psutil.Process(launcher.pid), "1")
    assert rank1 is not None, "rank 1 not found (did the run end early?)"
    rank1.send_signal(signal.SIGTERM)   # only rank 1 hears it: rank 0 must stop at the same step
    output, _ = launcher.communicate(timeout=300)
    assert launcher.returncode != 0, output[-3000:]
    marker = record.load_interrupted(out)
    assert marker is not None, output[-3000:]
    checkpoint = out / "checkpoints" / f"checkpoint-{marker['step']}"
    assert {p.name for p in checkpoint.glob("rng_state_*.pth")} == {"rng_state_0.pth", "rng_state_1.pth"}
    resumed = subprocess.run([*args, "--resume"], cwd=REPO, env=torchrun_env(), capture_output=True, text=True,
                             timeout=600, check=False)
    assert resumed.returncode == 0, (resumed.stdout + resumed.stderr)[-3000:]
    assert record.load_summary(out)["resumed_from"] == checkpoint.name
