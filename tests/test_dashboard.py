"""`make dashboard RUN=...` for real: a smoke run logged with SwanLab's default mode here (local,
because swanboard is installed), the dashboard started on 127.0.0.1, its page and API fetched, the
run and its loss/accuracy/MCC series checked against the run record, then stopped."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from conftest import REPO, recipe_env

from recipe.record import read_metrics

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str, timeout: float = 10.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        assert response.status == 200, url
        return response.read()


def api(base: str, path: str):
    answer = json.loads(get(base + path))
    assert answer["code"] == 0, answer
    return answer["data"]


@pytest.fixture(scope="module")
def logged_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("dashboard") / "run"
    # the README's first command, as a newcomer runs it (two epochs: two points in each eval series)
    proc = subprocess.run(["make", "-s", "--no-print-directory", "-o", ".venv/.stamp", "run-cpu", f"OUTPUT={out}",
                           "ARGS=--epochs 2", f"PY={sys.executable}"], cwd=REPO, env=recipe_env(),
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.splitlines()[-1].startswith("done: accuracy")
    # SwanLab's own greeting and hints go to console.log; the screen gets the kit's one tracking line
    assert not [line for line in proc.stdout.splitlines() if "swanlab:" in line], proc.stdout
    assert f"tracking: SwanLab local -> {out / 'swanlog'} (view: make dashboard RUN={out})" in proc.stdout
    assert "swanlab: " in (out / "console.log").read_text()
    assert (out / "swanlog" / "runs.swanlab").is_file(), "the default mode logs for the dashboard"
    return out


@pytest.fixture(scope="module")
def dashboard(logged_run):
    port = free_port()
    # -o: the venv is this interpreter's; never rebuild it from a test
    proc = subprocess.Popen(["make", "-s", "--no-print-directory", "-o", ".venv/.stamp", "dashboard",
                             f"RUN={logged_run}", f"DASHBOARD_PORT={port}", f"PY={sys.executable}"],
                            cwd=REPO, env=recipe_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while True:
        try:
            get(base + "/", timeout=2)
            break
        except OSError:
            assert proc.poll() is None, proc.stdout.read()
            assert time.time() < deadline, "the dashboard did not answer within 90 s"
            time.sleep(0.5)
    yield base
    os.killpg(proc.pid, signal.SIGINT)   # what Ctrl-C does to `make dashboard`
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    with pytest.raises(OSError):
        get(base + "/", timeout=2)   # stopped: nothing answers on the port any more


def test_the_dashboard_serves_the_run_and_its_loss_accuracy_and_mcc_series(logged_run, dashboard):
    assert b"<!DOCTYPE html>" in get(dashboard + "/")
    project = api(dashboard, "/api/v1/project")
    manifest = json.loads((logged_run / "manifest.json").read_text())
    assert project["name"] == "cola-repro-kit" and project["logdir"] == str(logged_run / "swanlog")
    [experiment] = project["experiments"]
    assert experiment["name"] == manifest["run_id"] and experiment["status"] == 1   # 1: finished

    charts = {chart["name"] for chart in api(dashboard, "/api/v1/project/charts")["charts"]}
    assert {"train/loss", "eval/accuracy", "eval/mcc", "eval/loss"} <= charts

    lines = read_metrics(logged_run)
    train = [line for line in lines if line["kind"] == "train"]
    evals = [line for line in lines if line["kind"] == "eval"]
    series = {tag: api(dashboard, f"/api/v1/experiment/{experiment['id']}/tag/{tag}")["list"]
              for tag in ("train/loss", "eval/accuracy", "eval/mcc")}
    assert [p["index"] for p in series["train/loss"]] == [t["step"] for t in train]
    assert [p["data"] for p in series["train/loss"]] == pytest.approx([t["loss"] for t in train], rel=1e-5)
    assert [p["data"] for p in series["eval/accuracy"]] == pytest.approx([e["accuracy"] for e in evals])
    assert [p["data"] for p in series["eval/mcc"]] == pytest.approx([e["mcc"] for e in evals])
    assert len(evals) == 2


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium for the screenshot (Debian: apt-get install -y "
                    "chromium); the API test above checks the same run without a browser")
def test_a_headless_browser_renders_the_runs_charts(logged_run, dashboard, tmp_path):
    experiment = api(dashboard, "/api/v1/project")["experiments"][0]
    url = f"{dashboard}/experiment/{experiment['id']}"
    browser = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run",
               f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,1300", "--virtual-time-budget=15000"]
    dom = subprocess.run([*browser, "--dump-dom", url], capture_output=True, text=True, timeout=120, check=True).stdout
    for text in (experiment["name"], "train/loss", "eval/accuracy", "eval/mcc", "Finished"):
        assert text in dom, text
    shot = tmp_path / "dashboard.png"
    subprocess.run([*browser, f"--screenshot={shot}", url], capture_output=True, timeout=120, check=True)
    from PIL import Image
    with Image.open(shot) as image:
        assert image.size == (1400, 1300)
        assert len(image.convert("RGB").getcolors(maxcolors=1 << 20)) > 200, "a blank page"
    keep = os.environ.get("KIT_DASHBOARD_SHOT")   # to look at it: KIT_DASHBOARD_SHOT=/tmp/dashboard.png
    if keep:
        shutil.copy(shot, keep)
