"""The recipe under torchrun on the CPU (gloo, two processes), launched as a user launches it:
one record, world size 2, the profile's global batch kept, thresholds met; a rank that fails or is
killed fails the whole run, with that rank named, and leaves no complete-looking summary."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time

import psutil
import pytest
import yaml
from conftest import REPO, assert_time_and_throughput, recipe_env

from recipe.record import load_summary, read_metrics

pytestmark = pytest.mark.slow
SMOKE = yaml.safe_load((REPO / "recipe" / "configs" / "smoke.yaml").read_text())
PUBLISHED = json.loads((REPO / "verify" / "published.json").read_text())
SMOKE_THRESHOLD = PUBLISHED["thresholds"]["smoke"]["accuracy"]
RECORD_ENTRIES = ["checkpoints", "console.log", "data", "manifest.json", "metrics.jsonl", "model", "summary.json",
                  "swanlog", "tiny-model"]


def torchrun(*args: str, nproc: int = 2, entry: tuple = ("-m", "recipe.finetune")) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
            *entry, "--profile", "smoke", "--device", "cpu", *args]


def torchrun_env(**extra: str) -> dict:
    return recipe_env(OMP_NUM_THREADS="1", **extra)   # two ranks share the two cores


def run_torchrun(*args: str, nproc: int = 2, entry: tuple = ("-m", "recipe.finetune"),
                 **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(torchrun(*args, nproc=nproc, entry=entry), cwd=REPO, env=torchrun_env(**env),
                          capture_output=True, text=True, timeout=600, check=False)


@pytest.fixture(scope="module")
def two_rank_run(tmp_path_factory):
    out, scratch = tmp_path_factory.mktemp("torchrun") / "run", tmp_path_factory.mktemp("tmpdir")
    # SwanLab on, offline (recipe_env drops SWANLAB_*)
    proc = run_torchrun("--output", str(out), TMPDIR=str(scratch))
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert not list(scratch.glob("kit-rank*")), "rank 1's private scratch directory is removed at exit"
    return out, proc


def test_two_ranks_leave_one_record_with_world_size_2_and_the_global_batch(two_rank_run):
    out, proc = two_rank_run
    assert sorted(p.name for p in out.iterdir()) == RECORD_ENTRIES     # rank 1 wrote nothing of its own
    assert len(list((out / "swanlog").glob("run-*"))) == 1              # one SwanLab run: rank 0's
    manifest = json.loads((out / "manifest.json").read_text())
    global_batch = SMOKE["train"]["per_device_train_batch_size"]
    assert manifest["world_size"] == 2 and manifest["effective_batch"] == global_batch
    assert manifest["batch"]["global"] == global_batch and manifest["batch"]["world_size"] == 2
    batch = manifest["batch"]
    assert batch["per_device"] * 2 * batch["gradient_accumulation_steps"] == global_batch
    assert manifest["batch"]["adjusted"].startswith(f"per_device_train_batch_size {global_batch} -> "
                                                    f"{global_batch // 2}")
    assert manifest["distributed"] == {"backend": "gloo", "world_size": 2, "nodes": 1, "ddp_timeout_s": 1800}
    assert manifest["config"]["train"]["per_device_train_batch_size"] == global_batch   # as written

    lines = read_metrics(out)
    steps = [line["step"] for line in lines if line["kind"] == "train"]
    assert steps == sorted(set(steps)), "every step once: one rank wrote the stream"
    steps_per_epoch = -(-SMOKE["smoke_data"]["train"] // global_batch)    # the global batch sets the steps
    evals = [line["step"] for line in lines if line["kind"] == "eval"]
    assert evals == [steps_per_epoch * epoch for epoch in (1, 2, 3)]
    assert proc.stdout.count("done: accuracy") == 1
    assert proc.stdout.count("profile smoke |") == 1 and proc.stdout.count(" 3/3 ") == 1   # rank 0 speaks
    last = max((out / "checkpoints").glob("checkpoint-*"), key=lambda c: int(c.name.split("-")[1]))
    assert {"rng_state_0.pth", "rng_state_1.pth"} <= {p.name for p in last.iterdir()}   # both ranks trained


def test_two_ranks_meet_the_threshold_with_global_throughput_and_per_rank_memory(two_rank_run):
    out, _ = two_rank_run
    summary = load_summary(out)
    assert summary["verdict"] == "pass" and summary["final"]["accuracy"] >= SMOKE_THRESHOLD
    assert summary["evals"] == 3
    samples = SMOKE["smoke_data"]["train"] * SMOKE["train"]["num_train_epochs"]
    assert_time_and_throughput(summary, samples)                     # both ranks' samples, rank 0's epochs
    per_rank = summary["memory"]["per_rank"]
    assert [r["rank"] for r in per_rank] == [0, 1] and {r["device"] for r in per_rank} == {"cpu"}
    assert all(r["host_rss_mb_peak"] > 50 for r in per_rank)
    assert summary["memory"]["host_rss_mb_peak"] == max(r["host_rss_mb_peak"] for r in per_rank)
    assert 0.3 < summary["padding_fraction"] < 0.95


def test_a_rank_that_raises_fails_the_run_with_its_error_and_no_summary(tmp_path):
    out = tmp_path / "run"
    proc = run_torchrun("--output", str(out), "--no-swanlab", entry=("tests/fakes/failing_recipe.py", "1", "30"))
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "RuntimeError: rank 1 fails at step 30 on purpose" in output
    assert re.search(r"rank\s*: 1 \(local_rank: 1\)\s*\n\s*exitcode\s*: 1 ", output), output[-3000:]
    assert "done: accuracy" not in proc.stdout
    assert load_summary(out) is None and not (out / "summary.json").exists()
    assert (out / "manifest.json").exists()          # the directory says: an unfinished run


def _rank_process(launcher: psutil.Process, rank: str) -> psutil.Process | None:
    for child in launcher.children(recursive=True):
        try:
            if child.environ().get("RANK") == rank and "recipe.finetune" in " ".join(child.cmdline()):
                return child
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return None


def test_a_rank_killed_mid_training_fails_the_run_and_leaves_no_summary(tmp_path):
    out, log = tmp_path / "run", tmp_path / "torchrun.log"
    with log.open("w") as sink:
        launcher = subprocess.Popen(torchrun("--output", str(out), "--no-swanlab"), cwd=REPO,
                                    env=torchrun_env(), stdout=sink, stderr=subprocess.STDOUT)
        checkpoint = out / "checkpoints" / f"checkpoint-{SMOKE['train']['save_steps']}" / "trainer_state.json"
        deadline = time.time() + 300
        while not checkpoint.exists() and launcher.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        rank1 = _rank_process(psutil.Process(launcher.pid), "1")
        assert rank1 is not None, "rank 1 not found (did the run end early?)"
        rank1.send_signal(signal.SIGKILL)      # like the OOM killer: no exception, no cleanup
        returncode = launcher.wait(timeout=300)
    output = log.read_text()
    assert returncode != 0, output[-3000:]
    assert f"Signal 9 (SIGKILL) received by PID {rank1.pid}" in output
    assert re.search(r"rank\s*: 1 \(local_rank: 1\)\s*\n\s*exitcode\s*: -9", output)
    assert "done: accuracy" not in output
    assert load_summary(out) is None and not (out / "summary.json").exists()


def test_a_global_batch_the_processes_cannot_split_stops_every_rank_before_training(tmp_path):
    out = tmp_path / "run"
    proc = run_torchrun("--output", str(out), "--no-swanlab", nproc=3)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert ("config error: the profile's global batch (per_device_train_batch_size 16 x "
            "gradient_accumulation_steps 1) = 16 cannot be split evenly over 3 processes") in output
    assert "--set train.global_batch_size=18" in output
    codes = re.findall(r"exitcode\s*: (-?\d+)", output)   # torchrun may SIGTERM (-15) a rank still exiting
    assert "3" in codes and set(codes) <= {"3", "-15"}, codes   # the config exit code, no crash
    assert not (out / "manifest.json").exists()
