"""The image targets (mk/docker.mk -> docker/run.sh): what `make ... DRY_RUN=1` prints, and what docker gets."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from recipe.tools import versions

REPO = Path(__file__).resolve().parent.parent
SECRET = "sk-test-5ecret-value"
IMAGE_NPU, IMAGE_A100 = versions.image_tag("npu"), versions.image_tag("cuda")


# Host settings that would leak into the commands under test: the tests set what they need.
HOST_ONLY = ("SWANLAB_", "MAKE", "HF_", "PIP_", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy",
             "https_proxy", "no_proxy", "OPENMIND_", "DEVICES", "NPROC", "REGISTRY", "RUN_AS", "ARGS")


def make(*args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(HOST_ONLY)}
    return subprocess.run(["make", "-s", "--no-print-directory", *args], cwd=REPO, env={**base, **env},
                          capture_output=True, text=True, timeout=60, check=False)


def dry(target: str, *args: str, **env: str) -> list[list[str]]:
    """The printed commands, each split the way the shell would split it when pasted."""
    done = make(target, "DRY_RUN=1", *args, **env)
    assert done.returncode == 0, done.stderr
    return [shlex.split(line) for line in done.stdout.splitlines() if line.strip()]


def docker_run(commands: list[list[str]]) -> list[str]:
    runs = [c for c in commands if c[:2] == ["docker", "run"]]
    assert len(runs) == 1, commands
    return runs[0]


def pairs(argv: list[str], flag: str) -> list[str]:
    """Values of a docker flag (only before the image: the recipe has its own --device)."""
    image = next((i for i, a in enumerate(argv) if a.startswith(("cola-repro-kit/", "stand-in/")) and argv[i - 1] != "-t"),
                 len(argv))
    return [argv[i + 1] for i, a in enumerate(argv[:image - 1]) if a == flag]


def inner(argv: list[str], image: str) -> list[str]:
    """The command the container runs: everything after the image name."""
    return argv[argv.index(image) + 1:]


# --------------------------------------------------------------------------- Ascend
def test_run_npu_passes_the_chosen_cards_management_devices_and_driver_mounts():
    argv = docker_run(dry("run-npu", "DEVICES=0,1"))
    assert pairs(argv, "--device") == ["/dev/davinci0", "/dev/davinci1", "/dev/davinci_manager",
                                        "/dev/devmm_svm", "/dev/hisi_hdc"]
    mounts = pairs(argv, "-v")
    for host_path in ("/usr/local/Ascend/driver/lib64/", "/usr/local/dcmi", "/usr/local/bin/npu-smi",
                      "/usr/local/Ascend/driver/version.info", "/etc/ascend_install.info"):
        assert f"{host_path}:{host_path}:ro" in mounts, host_path
    assert f"{REPO}/.cache/kit:/cache" in mounts and f"{REPO}/runs:/runs" in mounts
    assert {"--rm", "--init", "--ipc=host"} <= set(argv)  # signals reach Python; HCCL shares host IPC
    assert pairs(argv, "--ulimit") == ["memlock=-1", "stack=67108864"] and "--shm-size" not in argv
    command = inner(argv, IMAGE_NPU)   # two cards: one process each through torchrun
    assert command[:3] == ["python", "-m", "torch.distributed.run"] and "2" in command
    assert command[-8:] == ["-m", "recipe.finetune", "--profile", "smoke", "--device", "npu",
                            "--output", "/runs/smoke-npu"]


def test_run_npu_default_is_card_0_only():
    argv = docker_run(dry("run-npu"))
    assert [d for d in pairs(argv, "--device") if d.startswith("/dev/davinci") and d[-1].isdigit()] == ["/dev/davinci0"]


def test_run_npu_with_the_ascend_docker_runtime_lets_it_mount_the_devices():
    argv = docker_run(dry("run-npu", "DEVICES=0,1,2,3", "ASCEND_RUNTIME=1"))
    assert pairs(argv, "--runtime") == ["ascend"] and "ASCEND_VISIBLE_DEVICES=0,1,2,3" in pairs(argv, "-e")
    assert pairs(argv, "--device") == [] and not any("driver" in m for m in pairs(argv, "-v"))


def test_swanlab_settings_pass_by_name_and_the_key_is_never_printed():
    done = make("run-npu", "DRY_RUN=1", SWANLAB_API_KEY=SECRET, SWANLAB_PROJECT="cola", SWANLAB_WORKSPACE="me",
                SWANLAB_MODE="offline")
    assert done.returncode == 0 and SECRET not in done.stdout + done.stderr
    names = pairs(docker_run([shlex.split(line) for line in done.stdout.splitlines()]), "-e")
    assert {"SWANLAB_API_KEY", "SWANLAB_MODE", "SWANLAB_PROJECT", "SWANLAB_WORKSPACE"} <= set(names)
    assert not [n for n in names if n.startswith("SWANLAB") and "=" in n]
    unset = pairs(docker_run(dry("run-npu")), "-e")  # a name not set on the host is not passed at all
    assert not [n for n in unset if n.startswith("SWANLAB")]


def test_profile_run_name_and_extra_args_reach_the_recipe():
    argv = docker_run(dry("run-npu", "PROFILE=published", "RUN_NAME=npu-910b-seed1", "ARGS=--seed 1"))
    command = inner(argv, IMAGE_NPU)
    assert command[command.index("--profile") + 1] == "published"
    assert command[command.index("--output") + 1] == "/runs/npu-910b-seed1"
    assert command[command.index("--seed") + 1] == "1"


def test_verify_npu_runs_the_shipped_suite_requiring_the_npu():
    argv = docker_run(dry("verify-npu", "PROFILE=fast"))
    assert inner(argv, IMAGE_NPU) == ["python", "-m", "pytest", "/opt/kit/verify", "--profile", "fast",
                                      "--require-device", "npu", "--run-dir", "/runs/verify-fast-npu"]
    assert "/dev/davinci_manager" in pairs(argv, "--device")


def test_shell_npu_is_interactive_with_the_same_access():
    argv = docker_run(dry("shell-npu"))
    assert "-it" in argv and inner(argv, IMAGE_NPU) == ["bash"] and "/dev/hisi_hdc" in pairs(argv, "--device")


# --------------------------------------------------------------------------- NVIDIA
def test_run_a100_selects_gpus_with_the_quotes_docker_needs():
    argv = docker_run(dry("run-a100", "DEVICES=0,1"))
    assert pairs(argv, "--gpus") == ['"device=0,1"']  # without the inner quotes docker splits at the comma
    assert not any(a.startswith("/dev/davinci") for a in argv)
    assert inner(argv, IMAGE_A100)[-4:] == ["--device", "cuda", "--output", "/runs/smoke-a100"]
    assert "--ipc=host" in argv and f"{REPO}/runs:/runs" in pairs(argv, "-v")
    assert not [e for e in pairs(argv, "-e") if e.startswith("ASCEND_")]  # CANN's logs: NPU only


def test_run_a100_all_gpus_counts_the_hosts_gpus_for_torchrun(tmp_path):
    for node in ("nvidia0", "nvidia1", "nvidiactl", "nvidia-uvm"):
        (tmp_path / node).touch()
    argv = docker_run(dry("run-a100", "DEVICES=all", f"DEV_DIR={tmp_path}"))
    assert pairs(argv, "--gpus") == ["all"]
    assert inner(argv, IMAGE_A100)[inner(argv, IMAGE_A100).index("--nproc_per_node") + 1] == "2"


def test_verify_a100_requires_cuda():
    argv = docker_run(dry("verify-a100"))
    assert inner(argv, IMAGE_A100)[-4:] == ["--require-device", "cuda", "--run-dir", "/runs/verify-smoke-a100"]


# --------------------------------------------------------------------------- build, fetch
@pytest.mark.parametrize("target,image,dockerfile", [("build-npu", "npu", "docker/npu/Dockerfile"),
                                                     ("build-a100", "cuda", "docker/cuda/Dockerfile")])
def test_build_passes_every_table_value_and_tags_the_image(target, image, dockerfile):
    (argv,) = dry(target)
    assert argv[:2] == ["docker", "build"] and pairs(argv, "-f") == [dockerfile] and argv[-1] == "."
    build_args = dict(a.split("=", 1) for a in pairs(argv, "--build-arg") if "=" in a)
    assert {k: build_args[k] for k in versions.build_args(image)} == versions.build_args(image)
    assert build_args["REVISION"] and pairs(argv, "-t") == [versions.image_tag(image)]


def test_build_npu_takes_the_hosts_hwhiaiuser_ids():
    (argv,) = dry("build-npu", "HWHIAIUSER_GID=1001")
    assert "HWHIAIUSER_GID=1001" in pairs(argv, "--build-arg")
    assert not [a for a in pairs(argv, "--build-arg") if a.startswith("HWHIAIUSER_UID")]
    (default,) = dry("build-npu")
    assert not [a for a in pairs(default, "--build-arg") if a.startswith("HWHIAIUSER")]  # the Dockerfile's 1000


def test_image_tags_name_the_stack():
    assert IMAGE_NPU == "cola-repro-kit/npu:cann8.0.RC3-torch2.1.0-py3.10"
    assert IMAGE_A100 == "cola-repro-kit/cuda:cuda12.1-torch2.1.0-py3.10"


def test_fetch_downloads_into_the_cache_volume_without_any_card():
    argv = docker_run(dry("fetch", "FETCH_ON=a100", "FETCH_API=transformers"))
    assert inner(argv, IMAGE_A100) == ["python", "-m", "recipe.tools.fetch", "--cache", "/cache", "--api", "transformers"]
    assert f"{REPO}/.cache/kit:/cache" in pairs(argv, "-v") and "--gpus" not in argv
    npu = docker_run(dry("fetch"))  # the NPU image: no device nodes, but the driver's libraries for torch_npu
    assert inner(npu, IMAGE_NPU)[-2:] == ["--api", "both"] and pairs(npu, "--device") == []
    assert "/usr/local/Ascend/driver/lib64/:/usr/local/Ascend/driver/lib64/:ro" in pairs(npu, "-v")
    assert "--group-add" not in npu and not [e for e in pairs(npu, "-e") if e.startswith("ASCEND_")]


# --------------------------------------------------------------------------- really running (fake docker)
def test_without_dry_run_docker_gets_exactly_the_printed_arguments(tmp_path):
    log = tmp_path / "argv.json"
    fake = tmp_path / "docker"
    fake.write_text(f'#!/usr/bin/env python3\nimport json, sys\njson.dump(sys.argv[1:], open("{log}", "w"))\n')
    fake.chmod(0o755)
    cache, runs = tmp_path / "cache", tmp_path / "runs"
    common = ("DEVICES=0,1", f"DOCKER={fake}", f"KIT_CACHE={cache}", f"RUNS_DIR={runs}")
    printed = docker_run([["docker", *c[1:]] if c[0] == str(fake) else c
                          for c in dry("run-a100", *common, SWANLAB_API_KEY=SECRET)])
    assert not cache.exists(), "DRY_RUN=1 must not create anything"
    done = make("run-a100", *common, SWANLAB_API_KEY=SECRET)
    assert done.returncode == 0, done.stderr
    assert ["docker", *json.loads(log.read_text())] == printed
    assert cache.is_dir() and runs.is_dir() and SECRET not in done.stdout + done.stderr
    assert (cache / "home").is_dir(), "the container's HOME, owned by the invoking user"


def test_help_lists_every_image_target():
    listed = re.sub(r"\x1b\[[0-9;]*m", "", make("help").stdout)  # drop the colours
    for target in ("build-npu", "build-a100", "run-npu", "run-a100", "verify-npu", "verify-a100", "shell-npu",
                   "shell-a100", "fetch", "lock", "pin-digests", "test-pinned", "lint-docker"):
        assert re.search(rf"^\s+{target}\s+\S", listed, re.MULTILINE), target
