"""Both kit images, built for real on local stand-in bases and run in a Docker engine, on the CPU.

`make test-images` builds them (dev/standin/test_images.sh) and runs this file with
KIT_TEST_IMAGES=1; anywhere else (plain `make test`, CI without an engine) every test is skipped.

What the stand-ins cannot prove (listed in full in dev/standin/build.sh and docs/images.md):
the NPU stand-in has a FAKE CANN tree (right layout, version files and set_env.sh, placeholder
libraries), so `import torch_npu` fails in it and nothing runs on an NPU; the CUDA stand-in has
no CUDA libraries; no GPU or NPU device exists here. So everything below runs with `--device cpu`.

The checks:
  1. verify's environment checks in both images: exactly one framework, the lock's versions
     installed, and (NPU) the CANN environment that only the image's entry point sets;
  2. the smoke profile through the kit's own run command (`make run-a100 DRY_RUN=1`, device flags
     swapped for the CPU), run dir mounted from the host: the record lands there, owned by the
     invoking user (a non-root uid here, since this machine runs as root), readable. In the NPU
     stand-in the recipe cannot start (transformers imports torch_npu, which cannot load the fake
     CANN's placeholder libraries): that limit is pinned by its own test;
  3. `docker stop` mid-run: the run saves and stops; a second container with --resume finishes;
  4. the doctor in the NPU stand-in finds and sources CANN; with the toolkit's version changed to
     one that does not go with torch_npu 2.1.0.post8, the version check fails with its fix.
"""

from __future__ import annotations

import functools
import json
import os
import shlex
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOCKER = os.environ.get("KIT_DOCKER", "docker")
IMAGES = {"npu": os.environ.get("KIT_STANDIN_NPU_IMAGE", "cola-repro-kit/npu:standin"),
          "cuda": os.environ.get("KIT_STANDIN_CUDA_IMAGE", "cola-repro-kit/cuda:standin")}
MAKE_TARGET = {"npu": ("run-npu", "IMAGE_NPU"), "cuda": ("run-a100", "IMAGE_A100")}
# A non-root invoking user: the run record must come out owned by them, not by root.
USER_ID, GROUP_ID = 4321, 4321
INSTALL_INFO = "/usr/local/Ascend/ascend-toolkit/latest/*-linux/ascend_toolkit_install.info"


def docker(*args: str, check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess:
    done = subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check and done.returncode != 0:
        pytest.fail(f"docker {' '.join(args)} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}",
                    pytrace=False)
    return done


def _skip_reason() -> str | None:
    if os.environ.get("KIT_TEST_IMAGES") != "1":
        return "image tests run through `make test-images` (KIT_TEST_IMAGES=1)"
    try:
        if subprocess.run([DOCKER, "info"], check=False, capture_output=True, timeout=30).returncode != 0:
            return "no Docker engine answers"
    except (OSError, subprocess.TimeoutExpired):
        return "no docker CLI"
    missing = [tag for tag in IMAGES.values()
               if subprocess.run([DOCKER, "image", "inspect", tag], check=False, capture_output=True).returncode != 0]
    return f"images not built: {', '.join(missing)}" if missing else None


# slow: they build and run both images (make test-images)
pytestmark = [pytest.mark.slow, pytest.mark.skipif(_skip_reason() is not None, reason=str(_skip_reason()))]


# --------------------------------------------------------------------------- the kit's run command
@functools.cache
def engine_grants_unlimited_memlock() -> bool:
    """`--ulimit memlock=-1` needs CAP_SYS_RESOURCE in the engine: a normal root dockerd has it;
    this machine (itself a sandbox) and rootless Docker do not, and runc then refuses to start."""
    done = docker("run", "--rm", "--ulimit", "memlock=-1", "--entrypoint", "true", IMAGES["cuda"], check=False)
    return done.returncode == 0


def kit_run_command(image: str, host_runs: Path, host_cache: Path, run_name: str, args: str = "") -> list[str]:
    """`make run-<image> DRY_RUN=1` as the kit prints it, made runnable on this CPU-only machine:
    no device flags or host driver mounts, `--device cpu` for the recipe, a non-root --user, and no
    `--ulimit memlock=-1` where the engine cannot grant it."""
    target, image_var = MAKE_TARGET[image]
    shown = subprocess.run(
        ["make", "--no-print-directory", "-C", str(REPO), target, "DRY_RUN=1", "PROFILE=smoke",
         f"{image_var}={IMAGES[image]}", f"RUNS_DIR={host_runs}", f"KIT_CACHE={host_cache}",
         f"RUN_NAME={run_name}", f"ARGS=--no-swanlab {args}".strip()],
        capture_output=True, text=True, check=True).stdout
    line = next(line for line in shown.splitlines() if " run " in f" {line} " and IMAGES[image] in line)
    words = shlex.split(line)
    out, i = [], 0
    while i < len(words):
        word = words[i]
        if word in ("--gpus", "--runtime") or (word == "--device" and words[i + 1].startswith("/dev/")):
            i += 2
            continue
        if word == "-v" and not words[i + 1].startswith((str(host_runs), str(host_cache))):
            i += 2  # the host's Ascend driver pieces: this machine has none
            continue
        if word == "--device" and words[i + 1] in ("cuda", "npu"):
            out += ["--device", "cpu"]
            i += 2
            continue
        if word == "--ulimit" and words[i + 1] == "memlock=-1" and not engine_grants_unlimited_memlock():
            i += 2
            continue
        if word == "--user":
            out += ["--user", f"{USER_ID}:{GROUP_ID}"]
            i += 2
            continue
        out.append(word)
        i += 1
    assert out[:2] == ["docker", "run"], line
    return out[2:]


def has_flag(words: list[str], flag: str) -> bool:
    return flag in words or any(word.startswith(flag + "=") for word in words)


@pytest.fixture
def host_dirs(tmp_path):
    """runs/ and the cache on the host, writable by the invoking user (as the kit's README asks)."""
    runs, cache = tmp_path / "runs", tmp_path / "cache"
    for path in (runs, cache, cache / "home"):  # make_dirs of docker/run.sh, as that user
        path.mkdir()
        os.chown(path, USER_ID, GROUP_ID)
    return runs, cache


# --------------------------------------------------------------------------- 1. environment checks
def verify_environment(image: str, tmp_path: Path, entrypoint: bool = True) -> dict[str, tuple[str, str]]:
    """verify's environment tests in the image (what `make verify-*` runs first): outcome and message
    per test. entrypoint=False starts python directly, as `docker run --entrypoint python` would."""
    out = tmp_path / ("out" if entrypoint else "out-no-entrypoint")
    out.mkdir()
    command = ["python", "-m", "pytest", "/opt/kit/verify/test_environment.py", "-p", "no:cacheprovider",
               "--require-device", "none", "--junitxml", "/out/junit.xml"]
    start = [IMAGES[image]] if entrypoint else ["--entrypoint", "python", IMAGES[image]]
    docker("run", "--rm", "-v", f"{out}:/out", *start, *(command if entrypoint else command[1:]), check=False)
    outcomes = {}
    for case in ET.parse(out / "junit.xml").getroot().iter("testcase"):
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        text = " ".join((child.get("message") or "") + (child.text or "") for child in case)
        outcomes[case.get("name")] = (kinds[0] if kinds else "passed", text)
    return outcomes


@pytest.mark.parametrize("image", ["npu", "cuda"])
def test_verify_environment_one_framework_and_the_lock_installed(image, tmp_path):
    outcomes = verify_environment(image, tmp_path)
    assert outcomes["test_exactly_one_framework"][0] == "passed", outcomes["test_exactly_one_framework"]
    assert outcomes["test_installed_versions_equal_the_image_lock"][0] == "passed", \
        outcomes["test_installed_versions_equal_the_image_lock"]


def test_verify_environment_npu_cann_sourced_by_the_entrypoint_only(tmp_path):
    through_entrypoint = verify_environment("npu", tmp_path)
    for entry in ("cann-toolkit", "cann-env"):
        assert through_entrypoint[f"test_cann_installed_and_sourced[{entry}]"][0] == "passed", through_entrypoint
    assert through_entrypoint["test_torch_torch_npu_cann_agree[versions-table]"][0] == "passed", through_entrypoint
    # Without the entry point nothing sources set_env.sh: the same check must fail, with its fix.
    bypassed = verify_environment("npu", tmp_path, entrypoint=False)
    outcome, text = bypassed["test_cann_installed_and_sourced[cann-env]"]
    assert outcome == "failure" and "set_env.sh" in text, bypassed["test_cann_installed_and_sourced[cann-env]"]


def test_npu_entrypoint_sources_cann_and_keeps_the_kit_importable():
    shown = docker("run", "--rm", IMAGES["npu"], "python", "-c",
                   "import os, recipe; print(os.environ['ASCEND_HOME_PATH']); print(os.environ['PYTHONPATH']);"
                   "print(os.environ['LD_LIBRARY_PATH'])").stdout.splitlines()
    assert shown[0] == "/usr/local/Ascend/ascend-toolkit/latest"
    assert "/opt/kit" in shown[1].split(":"), shown[1]     # set_env.sh prepends; the kit stays on the path
    assert "/usr/local/Ascend/ascend-toolkit/latest/lib64" in shown[2].split(":"), shown[2]


# --------------------------------------------------------------------------- 2. smoke run, record on the host
@pytest.mark.parametrize("image", ["cuda"])
def test_smoke_run_record_lands_on_the_host_owned_by_the_invoking_user(image, host_dirs):
    runs, cache = host_dirs
    command = kit_run_command(image, runs, cache, f"smoke-{image}")
    if not has_flag(command, "--user"):
        pytest.xfail("the kit's run command has no --user yet (host branch): the record would be root's")
    docker("run", *command, timeout=900)
    record = runs / f"smoke-{image}"
    summary = json.loads((record / "summary.json").read_text())
    assert summary["verdict"] == "pass", summary.get("verdict_reason")
    for path in [record, *record.rglob("*")]:
        info = path.stat()
        assert (info.st_uid, info.st_gid) == (USER_ID, GROUP_ID), f"{path} is {info.st_uid}:{info.st_gid}"
        assert info.st_mode & 0o400, f"{path} is not readable by its owner"


def test_npu_standin_cannot_train_without_a_real_cann_and_says_which_library(host_dirs):
    """The NPU stand-in's limit, pinned: transformers imports torch_npu whenever it is installed, and
    torch_npu loads CANN's libraries, which are 4-byte placeholders here. So the recipe cannot run in
    it, not even on the CPU; the failure must name the placeholder library and nothing else."""
    runs, cache = host_dirs
    done = docker("run", *kit_run_command("npu", runs, cache, "smoke-npu"), check=False, timeout=900)
    assert done.returncode != 0
    assert "libhccl.so: file too short" in done.stderr, done.stderr[-2000:]
    assert not (runs / "smoke-npu" / "summary.json").exists()


# --------------------------------------------------------------------------- 3. docker stop, then --resume
def read_metrics(record: Path) -> list[dict]:
    path = record / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def test_docker_stop_mid_run_saves_stops_and_a_second_container_resumes(host_dirs):
    runs, cache = host_dirs
    # Stopped in the middle (past step 40) of 2 epochs of the smoke profile (188 steps each).
    args = "--set train.num_train_epochs=2"
    command = kit_run_command("cuda", runs, cache, "stopped", args=args)
    name = f"kit-stop-test-{os.getpid()}"
    record = runs / "stopped"
    try:
        docker("run", "-d", "--name", name, *[word for word in command if word != "--rm"])
        deadline = time.monotonic() + 600
        while not any(entry.get("step", 0) >= 40 for entry in read_metrics(record)):
            if time.monotonic() > deadline or json.loads(docker("inspect", name).stdout)[0]["State"]["Status"] != "running":
                pytest.fail(docker("logs", name, check=False).stderr[-3000:], pytrace=False)
            time.sleep(1)
        docker("stop", "-t", "60", name)
        state = json.loads(docker("inspect", name).stdout)[0]["State"]
        stop_log = docker("logs", name, check=False).stderr
    finally:
        docker("rm", "-f", name, check=False)
    assert not (record / "summary.json").exists(), "a stopped run must not leave a complete-looking summary"
    stop_note = json.loads((record / "interrupted.json").read_text()) if (record / "interrupted.json").exists() else None
    steps_at_stop = max(entry.get("step", 0) for entry in read_metrics(record))
    checkpoints = sorted(int(p.name.split("-")[-1]) for p in record.glob("checkpoints/checkpoint-*"))
    assert checkpoints, f"nothing to resume from after the stop (exit {state['ExitCode']})"

    docker("run", *kit_run_command("cuda", runs, cache, "stopped", args=f"{args} --resume"))
    summary = json.loads((record / "summary.json").read_text())
    assert summary["verdict"] == "pass", summary.get("verdict_reason")
    assert summary["resumed_from"], summary["resumed_from"]
    epochs = [entry for entry in read_metrics(record) if entry.get("kind") == "epoch"]
    assert epochs[-1]["epoch"] == 2 and epochs[-1]["step"] == 2 * 188, epochs[-1]

    # The stop itself: with --init, SIGTERM reaches the recipe, which finishes the step, saves a
    # checkpoint there, writes interrupted.json and exits 143 (recipe/errors.py).
    if not has_flag(command, "--init"):
        pytest.xfail(f"no --init in the kit's run command (host branch): exit {state['ExitCode']}, resumed "
                     f"from the periodic checkpoint {checkpoints[-1]} (stopped near step {steps_at_stop})")
    if stop_note is None:
        pytest.xfail(f"no SIGTERM handling in the recipe (trust branch): exit {state['ExitCode']}, resumed "
                     f"from the periodic checkpoint {checkpoints[-1]} (stopped near step {steps_at_stop})")
    assert state["ExitCode"] == 143, (state, stop_log[-2000:])
    assert stop_note["signal"] == "SIGTERM" and stop_note["step"] >= steps_at_stop, stop_note
    assert stop_note["checkpoint"] == f"checkpoint-{stop_note['step']}", stop_note


# --------------------------------------------------------------------------- 4. the doctor in the NPU stand-in
def doctor(*before: str) -> dict[str, dict]:
    """`python -m verify.doctor --json` through the image's entry point, after the shell lines `before`."""
    script = " && ".join([*before, "exec /opt/kit/docker/entrypoint.sh python -m verify.doctor --json"])
    done = docker("run", "--rm", "--entrypoint", "bash", IMAGES["npu"], "-c", script, check=False)
    report = json.loads(done.stdout)
    return {row["id"]: row for row in report["results"]}


def test_doctor_finds_and_sources_cann_in_the_npu_image():
    rows = doctor()
    assert rows["cann-toolkit"]["status"] == "ok" and "CANN 8.0.RC3" in rows["cann-toolkit"]["evidence"], rows["cann-toolkit"]
    assert rows["cann-env"]["status"] == "ok", rows["cann-env"]
    assert rows["versions-table"]["status"] == "ok", rows["versions-table"]


def test_doctor_version_check_fails_with_its_fix_when_cann_does_not_match():
    rows = doctor(f"sed -i 's/^version=.*/version=8.0.RC2/' {INSTALL_INFO}")
    row = rows["versions-table"]
    assert row["status"] == "fail", row
    assert "CANN 8.0.RC2" in row["evidence"], row
    # The table's row for CANN 8.0.RC2 pairs torch 2.1.0 with torch_npu 2.1.0.post6.
    assert row["fix"].startswith("`pip install torch==2.1.0 torch_npu==2.1.0.post6`"), row
