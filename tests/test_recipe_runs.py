"""The recipe end to end on the CPU, run as a user runs it: record, thresholds, errors, resume."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
from conftest import REPO, assert_time_and_throughput, recipe_env, run_recipe

from recipe.record import load_summary, read_metrics

pytestmark = pytest.mark.slow
SMOKE_THRESHOLD = json.loads((REPO / "verify" / "published.json").read_text())["thresholds"]["smoke"]["accuracy"]


def test_smoke_run_reaches_its_threshold_and_writes_a_complete_record(smoke_run):
    manifest = json.loads((smoke_run / "manifest.json").read_text())
    summary = json.loads((smoke_run / "summary.json").read_text())
    lines = read_metrics(smoke_run)

    assert summary["status"] == "complete" and summary["verdict"] == "pass"
    assert summary["final"]["accuracy"] >= SMOKE_THRESHOLD
    assert summary["final"]["mcc"] > 0.5
    assert summary["thresholds"] == {"accuracy": SMOKE_THRESHOLD}

    assert manifest["schema"] == "kit.manifest/1" and manifest["profile"] == "smoke"
    for key in ("python", "torch", "transformers", "datasets", "accelerate", "swanlab", "numpy"):
        assert manifest["versions"][key], key
    assert manifest["device"]["type"] == "cpu" and manifest["api"] == "transformers"
    assert len(manifest["config_sha256"]) == 64 and manifest["world_size"] == 1
    assert manifest["effective_batch"] == manifest["config"]["train"]["per_device_train_batch_size"]
    assert manifest["data"]["kind"] == "generated" and manifest["data"]["rows"] == {"train": 3000, "validation": 400}
    assert all(len(h) == 64 for h in manifest["data"]["files"].values())
    assert 0.5 < manifest["data"]["majority_baseline"] < 0.8

    train = [line for line in lines if line["kind"] == "train"]
    evals = [line for line in lines if line["kind"] == "eval"]
    assert [e["epoch"] for e in evals] == [1.0, 2.0, 3.0]          # evaluated every epoch
    assert summary["evals"] == 3 and len(summary["epoch_seconds"]) == 3
    assert all({"step", "epoch", "loss", "lr", "grad_norm", "elapsed_s"} <= set(t) for t in train)
    assert [t["step"] for t in train] == sorted({t["step"] for t in train})
    assert train[-1]["loss"] < train[0]["loss"]
    assert summary["final"]["accuracy"] == evals[-1]["accuracy"]

    # 3 epochs of the 3000 generated rows (188 steps of 16 per epoch, the last one partial: not 188 x 16)
    assert_time_and_throughput(summary, samples=3000 * 3)
    assert 0.3 < summary["padding_fraction"] < 0.95                    # short sentences padded to 32
    assert summary["memory"]["peak_allocated_mb"] is None              # cpu: no allocator statistics
    assert (smoke_run / "model" / "config.json").is_file()


def test_crippled_run_fails_its_threshold_and_leaks_no_secret(tmp_path):
    out = tmp_path / "lr0"
    secret = "sk-swanlab-do-not-leak-123456"
    proc = run_recipe("--profile", "smoke", "--device", "cpu", "--no-swanlab", "--output", str(out),
                      "--epochs", "1", "--set", "train.learning_rate=0",
                      env=recipe_env(SWANLAB_API_KEY=secret))
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = load_summary(out)
    assert summary["verdict"] == "fail"
    assert summary["final"]["accuracy"] < SMOKE_THRESHOLD
    assert "verdict FAIL" in proc.stdout
    for path in out.rglob("*"):
        if path.is_file() and path.suffix in {".json", ".jsonl", ".txt", ".yaml", ""}:
            assert secret not in path.read_text(errors="ignore"), path
    assert secret not in proc.stdout + proc.stderr


@pytest.mark.parametrize("args, code, message", [
    (["--data", "/nonexistent/cola"], 4, "data error: --data /nonexistent/cola: no such file or directory"),
    (["--model", "/nonexistent/bert"], 5, "model error: --model /nonexistent/bert: the directory /nonexistent/bert does not exist"),
    (["--profile", "nope"], 3, "config error: unknown profile 'nope'"),
    (["--set", "train.lerning_rate=1"], 3, "train.lerning_rate is not a TrainingArguments setting"),
])
def test_bad_input_gives_one_message_a_distinct_code_and_no_record(tmp_path, args, code, message):
    out = tmp_path / "run"
    proc = run_recipe("--profile", "smoke", "--device", "cpu", "--no-swanlab", "--output", str(out), *args)
    assert proc.returncode == code, proc.stderr[-2000:]
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (out / "manifest.json").exists() and not (out / "summary.json").exists()


def test_malformed_tsv_through_the_cli_names_file_and_line(tmp_path):
    raw = tmp_path / "cola" / "raw"
    raw.mkdir(parents=True)
    (raw / "in_domain_train.tsv").write_text("gj04\t1\t\tGood .\ngj04\tx\t\tBad .\n")
    (raw / "in_domain_dev.tsv").write_text("gj04\t1\t\tGood .\n")
    (raw / "out_of_domain_dev.tsv").write_text("gj04\t1\t\tGood .\n")
    proc = run_recipe("--profile", "smoke", "--device", "cpu", "--no-swanlab", "--output", str(tmp_path / "run"),
                      "--data", str(tmp_path / "cola"))
    assert proc.returncode == 4
    assert f"{raw / 'in_domain_train.tsv'}:2: label 'x' is not 0 or 1" in proc.stderr


def test_a_finished_run_is_not_overwritten_by_accident(smoke_run):
    before = (smoke_run / "summary.json").read_text()
    proc = run_recipe("--profile", "smoke", "--device", "cpu", "--no-swanlab", "--output", str(smoke_run))
    assert proc.returncode == 7 and "already holds a finished run" in proc.stderr
    assert (smoke_run / "summary.json").read_text() == before


def test_sigterm_then_resume_gives_a_complete_passing_record(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "recipe.finetune", "--profile", "smoke", "--device", "cpu", "--no-swanlab",
           "--output", str(out)]
    proc = subprocess.Popen(cmd, cwd=REPO, env=recipe_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first_checkpoint = out / "checkpoints" / "checkpoint-50" / "trainer_state.json"
    deadline = time.time() + 300
    while not first_checkpoint.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) != 0, "the run finished before it could be interrupted"
    assert load_summary(out) is None and not (out / "summary.json").exists()   # nothing looks complete

    resumed = run_recipe(*cmd[3:], "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    summary = load_summary(out)
    assert summary["resumed_from"].startswith("checkpoint-") and summary["verdict"] == "pass"
    lines = read_metrics(out)
    steps = [line["step"] for line in lines if line["kind"] == "train"]
    assert steps == sorted(set(steps)), "the stream must not repeat the steps replayed after the checkpoint"
    assert [line["epoch"] for line in lines if line["kind"] == "eval"] == [1.0, 2.0, 3.0]
    elapsed = [line["elapsed_s"] for line in lines]
    assert elapsed == sorted(elapsed)


def test_overwrite_keeps_the_old_run_when_a_setting_is_wrong(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "manifest.json").write_text('{"schema": "kit.manifest/1"}')
    (out / "summary.json").write_text('{"status": "complete"}')
    proc = run_recipe("--profile", "smoke", "--device", "cpu", "--no-swanlab", "--output", str(out),
                      "--overwrite", "--set", "train.lerning_rate=1")
    assert proc.returncode == 3 and "train.lerning_rate" in proc.stderr
    assert load_summary(out) == {"status": "complete"}, "--overwrite deleted a run before the settings were checked"
