"""The host around the images (docs/ascend.md, docs/nvidia.md): docker/run.sh needs no Python, reads the cards, HCCN files
and the driver's group from the host, passes mirrors and proxies by name, runs as the invoking user,
and refuses a bad setting with its name and the fix before docker starts."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from test_docker_make import IMAGE_A100, IMAGE_NPU, REPO, SECRET, docker_run, dry, inner, make, pairs
from test_versions import lock

from recipe.tools import versions

TABLE = versions.load_table()
TARGETS = [("run-npu",), ("run-npu", "NPROC=8"), ("run-npu", "NPROC=8", "NNODES=2", "NODE_RANK=1",
           "MASTER_ADDR=10.0.0.1"), ("run-a100",), ("run-a100", "DEVICES=0,1"), ("build-npu",), ("build-a100",),
           ("verify-npu",), ("verify-a100",), ("shell-npu",), ("fetch",), ("fetch", "FETCH_ON=a100")]


def run_sh(action: str, *settings: str, **env: str) -> subprocess.CompletedProcess:
    """docker/run.sh directly, to see its own exit code (make turns every failure into 2)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SWANLAB_", "MAKE", "DEVICES", "NPROC"))}
    given = dict(s.split("=", 1) for s in settings)
    return subprocess.run(["bash", str(REPO / "docker" / "run.sh"), action], env={**base, "DRY_RUN": "1", **given, **env},
                          capture_output=True, text=True, timeout=60, check=False)


def executable(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


# --------------------------------------------------------------------------- no host Python
def path_without_python(tmp_path: Path) -> str:
    """A PATH holding every program of this PATH except python*: what a host without Python has."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for folder in os.environ["PATH"].split(os.pathsep):
        if not os.path.isdir(folder) or ".venv" in folder:
            continue
        for entry in os.scandir(folder):
            target = bin_dir / entry.name
            if not entry.name.startswith("python") and not target.exists() and os.access(entry.path, os.X_OK):
                target.symlink_to(entry.path)
    return str(bin_dir)


def test_dry_run_commands_are_identical_without_python_or_with_a_broken_one(tmp_path):
    bare = path_without_python(tmp_path)
    assert shutil.which("python3", path=bare) is None and shutil.which("make", path=bare)
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("python", "python3"):  # a host Python that fails (3.7 on EulerOS, no tomllib)
        executable(broken / name, "#!/bin/sh\necho 'TypeError: unsupported operand' >&2\nexit 1\n")
    for target in TARGETS:
        normal = make(target[0], "DRY_RUN=1", *target[1:])
        for path in (bare, f"{broken}{os.pathsep}{bare}"):
            other = make(target[0], "DRY_RUN=1", *target[1:], PATH=path, PY="/nonexistent/python")
            assert (other.returncode, other.stdout) == (0, normal.stdout), (target, other.stderr)
        assert normal.returncode == 0 and "docker " in normal.stdout, target


def test_make_n_evaluates_nothing_and_make_targets_are_one_line_calls():
    done = make("-n", "run-npu", "NPROC=$(touch /tmp/kit-should-not-exist)")
    assert done.returncode == 0 and done.stdout.strip() == "docker/run.sh run-npu"
    assert not Path("/tmp/kit-should-not-exist").exists()
    recipes = re.findall(r"^([a-z0-9-]+):.*\n\t(.*)", (REPO / "mk" / "docker.mk").read_text(), re.MULTILINE)
    for target, line in recipes:
        if target in ("build-npu", "build-a100", "run-npu", "run-a100", "verify-npu", "verify-a100",
                      "shell-npu", "shell-a100", "fetch"):
            assert line == f"@$(RUN_SH) {target}"


def test_versions_sh_is_generated_from_the_table_and_never_drifts():
    committed = (REPO / "docker" / "versions.sh").read_text()
    assert committed == lock.shell_table(TABLE), "docker/versions.toml changed: run `make lock`"
    table = json.loads(json.dumps(TABLE))
    table["pins"]["transformers"] = "4.44.0"
    assert lock.shell_table(table) != committed
    # what bash reads is what the Python side computes
    script = f'. "{REPO}/docker/versions.sh"; echo "$NPU_IMAGE|$CUDA_IMAGE|$NPU_BASE_quay_io|$NPU_BUILD_ARGS"'
    npu_image, cuda_image, quay, args = subprocess.run(["bash", "-c", script], capture_output=True, text=True,
                                                       check=True).stdout.strip().split("|")
    assert (npu_image, cuda_image) == (IMAGE_NPU, IMAGE_A100)
    assert quay == versions.base_image("npu", TABLE, "quay.io")
    built = dict(a.split("=", 1) for a in args.split())
    assert built == {k: v for k, v in versions.build_args("npu", TABLE).items() if k != "BASE_IMAGE"}


def test_lock_check_reports_a_stale_versions_sh(tmp_path, monkeypatch):
    monkeypatch.setattr(lock, "SHELL_TABLE", tmp_path / "versions.sh")
    (tmp_path / "versions.sh").write_text("NPU_IMAGE='old'\n")
    assert lock.main(["--check"]) == 1


# --------------------------------------------------------------------------- mirrors and digests
def test_registry_picks_the_mirror_of_the_base_image():
    (argv,) = dry("build-npu", "REGISTRY=quay.io")
    assert "BASE_IMAGE=quay.io/ascend/cann:8.0.rc3.beta1-910b-ubuntu22.04-py3.10" in pairs(argv, "--build-arg")
    (cuda,) = dry("build-a100", "REGISTRY=nvcr.io")
    assert "BASE_IMAGE=nvcr.io/nvidia/cuda:12.1.1-runtime-ubuntu22.04" in pairs(cuda, "--build-arg")
    wrong = run_sh("build-a100", "REGISTRY=quay.io")
    assert wrong.returncode == 3 and "docker" not in wrong.stdout
    assert "REGISTRY=quay.io is not a mirror of the cuda base image" in wrong.stderr
    assert "docker.io nvcr.io" in wrong.stderr


def test_every_mirror_has_an_explicit_digest_that_is_empty_or_a_sha256():
    for image in versions.IMAGES:
        mirrors = versions.mirrors(image, TABLE)
        assert TABLE["images"][image]["registry"] in mirrors and len(mirrors) >= 2
        for spec in mirrors.values():
            assert "digest" in spec and re.fullmatch(r"(sha256:[0-9a-f]{64})?", spec["digest"])


def fake_buildx(tmp_path: Path, answers: dict[str, str]) -> Path:
    """`docker buildx imagetools inspect REF --format '{{json .Manifest}}'` as the real one answers:
    the index descriptor as JSON; an unknown or unreachable reference fails with docker's error."""
    return executable(tmp_path / "docker", f"""#!/usr/bin/env python3
import json, sys
answers = {json.dumps(answers)}
ref = sys.argv[4]
if ref not in answers:
    print(f"ERROR: failed to do request: Head \\"https://registry/v2/manifests\\": dial tcp: i/o timeout", file=sys.stderr)
    sys.exit(1)
print(json.dumps({{"mediaType": "application/vnd.oci.image.index.v1+json", "digest": answers[ref], "size": 1609}}))
""")


def test_pin_digests_writes_what_the_registry_answers_and_invents_nothing(tmp_path, monkeypatch):
    table_file = tmp_path / "versions.toml"
    table_file.write_text((REPO / "docker" / "versions.toml").read_text())
    digest = "sha256:" + "0123456789abcdef" * 4
    quay = "quay.io/ascend/cann:" + TABLE["images"]["npu"]["tag"]
    monkeypatch.setenv("DOCKER", str(fake_buildx(tmp_path, {quay: digest})))
    monkeypatch.setenv(versions.ENV_TABLE, str(table_file))
    monkeypatch.setattr(lock, "SHELL_TABLE", tmp_path / "versions.sh")
    assert lock.main(["--pin-digests"]) == 1  # the other registries did not answer
    pinned = versions.load_table(table_file)
    mirrors = {image: versions.mirrors(image, pinned) for image in versions.IMAGES}
    assert mirrors["npu"]["quay.io"]["digest"] == digest
    assert [s["digest"] for i in mirrors for r, s in mirrors[i].items() if (i, r) != ("npu", "quay.io")] == [""] * 4
    assert f"NPU_BASE_quay_io='{quay}@{digest}'" in (tmp_path / "versions.sh").read_text()
    original = (REPO / "docker" / "versions.toml").read_text().splitlines()
    changed = [line for line in table_file.read_text().splitlines() if line not in original]
    assert changed == [f'"quay.io" = {{ repository = "quay.io/ascend/cann", digest = "{digest}" }}']


def test_pin_digests_refuses_an_answer_that_is_not_a_digest(tmp_path, monkeypatch):
    table_file = tmp_path / "versions.toml"
    table_file.write_text((REPO / "docker" / "versions.toml").read_text())
    monkeypatch.setenv("DOCKER", str(fake_buildx(tmp_path, {"nvidia/cuda:12.1.1-runtime-ubuntu22.04": "latest"})))
    monkeypatch.setenv(versions.ENV_TABLE, str(table_file))
    monkeypatch.setattr(lock, "SHELL_TABLE", tmp_path / "versions.sh")
    assert lock.main(["--pin-digests"]) == 1
    assert table_file.read_text() == (REPO / "docker" / "versions.toml").read_text()


# --------------------------------------------------------------------------- mirrors and proxies by name
PROXY_ENV = {"HTTPS_PROXY": f"http://user:{SECRET}@proxy:3128", "NO_PROXY": "localhost",
             "PIP_INDEX_URL": f"https://user:{SECRET}@mirror/simple", "PIP_TRUSTED_HOST": "mirror",
             "HF_ENDPOINT": "https://hf-mirror.com", "OPENMIND_HUB_ENDPOINT": "https://telecom.openmind.cn"}


def test_pip_index_and_proxies_reach_the_build_by_name_only():
    done = make("build-npu", "DRY_RUN=1", **PROXY_ENV)
    assert done.returncode == 0 and SECRET not in done.stdout + done.stderr
    (argv,) = [shlex.split(line) for line in done.stdout.splitlines()]
    assert {"HTTPS_PROXY", "NO_PROXY", "PIP_INDEX_URL", "PIP_TRUSTED_HOST"} <= set(pairs(argv, "--build-arg"))
    assert "HF_ENDPOINT" not in pairs(argv, "--build-arg"), "hub endpoints matter at run time, not build time"
    for image in ("npu", "cuda"):  # the Dockerfiles declare the pip settings (proxies are docker's own)
        dockerfile = (REPO / "docker" / image / "Dockerfile").read_text()
        assert all(f"ARG {name}" in dockerfile for name in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_TRUSTED_HOST"))


def test_hub_endpoints_and_proxies_reach_the_run_by_name_only():
    done = make("run-npu", "DRY_RUN=1", **PROXY_ENV)
    assert done.returncode == 0 and SECRET not in done.stdout + done.stderr
    names = pairs(docker_run([shlex.split(line) for line in done.stdout.splitlines()]), "-e")
    assert set(PROXY_ENV) <= set(names)


# --------------------------------------------------------------------------- the x86_64 NPU lock
def test_x86_64_npu_image_installs_ascends_documented_torch_cpu_wheel_by_url_and_hash():
    wheel = versions.url_wheels("npu", "x86_64", TABLE)["torch"]
    assert wheel["url"].startswith("https://download.pytorch.org/whl/cpu/torch-2.1.0%2Bcpu-cp310-cp310-linux_x86_64")
    assert re.fullmatch(r"[0-9a-f]{64}", wheel["sha256"])
    nodeps = versions.lock_path("npu", "x86_64", no_deps=True).read_text()
    assert f"torch @ {wheel['url']} \\\n    --hash=sha256:{wheel['sha256']}\n" in nodeps
    main = versions.parse_lock(versions.lock_path("npu", "x86_64"))
    assert "torch" not in main and "triton" not in main and not [n for n in main if n.endswith("-cu12")]
    aarch64 = versions.parse_lock(versions.lock_path("npu", "aarch64"))
    for dependency in ("filelock", "typing-extensions", "sympy", "networkx", "jinja2", "fsspec"):
        assert main[dependency] == aarch64[dependency], dependency  # torch's own dependencies stay
    source = (REPO / "docker" / "versions.toml").read_text()
    assert "source: Ascend/pytorch README.md" in source.split("[images.npu.wheels.x86_64.torch]")[0]


def test_swanboard_is_in_every_lock_for_the_offline_dashboard():
    for image in versions.IMAGES:
        for arch in versions.image_arches(image, TABLE):
            assert versions.parse_lock(versions.lock_path(image, arch))["swanboard"] == TABLE["pins"]["swanboard"]


# --------------------------------------------------------------------------- files owned by the user
def fake_getent(tmp_path: Path, line: str) -> str:
    executable(tmp_path / "getent", f'#!/bin/sh\n[ "$1 $2" = "group HwHiAiUser" ] && echo "{line}" || exit 2\n')
    return f"{tmp_path}{os.pathsep}{os.environ['PATH']}"


def test_runs_as_the_invoking_user_with_the_hosts_hwhiaiuser_group(tmp_path):
    argv = docker_run(dry("run-npu", PATH=fake_getent(tmp_path, "HwHiAiUser:x:1234:")))
    assert pairs(argv, "--user") == [f"{os.getuid()}:{os.getgid()}"] and pairs(argv, "--group-add") == ["1234"]
    env = pairs(argv, "-e")
    assert "HOME=/cache/home" in env and any(e.startswith("USER=") for e in env)
    assert pairs(docker_run(dry("run-npu", "HWHIAIUSER_GID=1001")), "--group-add") == ["1001"]
    root = docker_run(dry("run-npu", "RUN_AS=root"))
    assert "--user" not in root and "--group-add" not in root and "HOME=/cache/home" not in pairs(root, "-e")
    assert "--group-add" not in docker_run(dry("run-a100", PATH=fake_getent(tmp_path, "HwHiAiUser:x:1234:")))


def test_without_the_driver_group_the_run_says_what_to_do(tmp_path):
    executable(tmp_path / "getent", "#!/bin/sh\nexit 2\n")
    done = make("run-npu", "DRY_RUN=1", PATH=f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert done.returncode == 0 and "no HwHiAiUser group" in done.stderr and "RUN_AS=root" in done.stderr


def test_ipc_mode_private_uses_a_shm_size_instead():
    argv = docker_run(dry("run-a100", "IPC_MODE=private", "SHM_SIZE=32g"))
    assert pairs(argv, "--shm-size") == ["32g"] and "--ipc=host" not in argv


def test_memlock_off_leaves_the_engines_limit_for_engines_that_refuse_unlimited():
    assert "memlock=-1" in pairs(docker_run(dry("run-a100")), "--ulimit")
    argv = docker_run(dry("run-a100", "MEMLOCK=off"))
    assert pairs(argv, "--ulimit") == ["stack=67108864"]
    bad = run_sh("run-a100", "MEMLOCK=maybe")
    assert bad.returncode == 3 and "MEMLOCK" in bad.stderr and "unlimited or off" in bad.stderr


# --------------------------------------------------------------------------- multi-card and logs on Ascend
def test_hccn_files_are_mounted_read_only_for_several_cards_when_the_host_has_them(tmp_path):
    conf, tool = tmp_path / "hccn.conf", tmp_path / "hccn_tool"
    conf.write_text("address_0=192.168.100.101\nnetmask_0=255.255.255.0\n")
    executable(tool, "#!/bin/sh\n")
    paths = (f"HCCN_CONF={conf}", f"HCCN_TOOL={tool}")
    for many in (("NPROC=8",), ("NPROC=1", "NNODES=2")):
        mounts = pairs(docker_run(dry("run-npu", *many, *paths)), "-v")
        assert f"{conf}:/etc/hccn.conf:ro" in mounts and f"{tool}:/usr/local/Ascend/driver/tools/hccn_tool:ro" in mounts
    assert not [m for m in pairs(docker_run(dry("run-npu", *paths)), "-v") if "hccn" in m], "one card: no HCCL"
    missing = make("run-npu", "DRY_RUN=1", "NPROC=2", f"HCCN_CONF={tmp_path}/none", f"HCCN_TOOL={tmp_path}/none")
    assert missing.returncode == 0 and "hccn" not in missing.stdout and "hccn_tool -i 0 -ip -g" in missing.stderr


def test_cann_logs_go_into_the_run_directory():
    env = pairs(docker_run(dry("run-npu", "RUN_NAME=npu-a")), "-e")
    assert "ASCEND_PROCESS_LOG_PATH=/runs/npu-a/ascend-log" in env
    assert "ASCEND_PROCESS_LOG_PATH=/runs/verify-fast-npu/ascend-log" in pairs(docker_run(dry("verify-npu", "PROFILE=fast")), "-e")


def fake_dev(tmp_path: Path, *names: str) -> Path:
    dev = tmp_path / "dev"
    dev.mkdir()
    for name in names:
        (dev / name).touch()
    return dev


def test_devices_all_expands_to_the_hosts_cards(tmp_path):
    dev = fake_dev(tmp_path, "davinci0", "davinci1", "davinci10", "davinci2", "davinci_manager", "davinci3")
    argv = docker_run(dry("run-npu", "DEVICES=all", f"DEV_DIR={dev}"))
    cards = [d for d in pairs(argv, "--device") if re.fullmatch(r"/dev/davinci\d+", d)]
    assert cards == ["/dev/davinci0", "/dev/davinci1", "/dev/davinci2", "/dev/davinci3", "/dev/davinci10"]
    command = inner(argv, IMAGE_NPU)
    assert command[command.index("--nproc_per_node") + 1] == "5"
    runtime = docker_run(dry("run-npu", "DEVICES=all", f"DEV_DIR={dev}", "ASCEND_RUNTIME=1"))
    assert "ASCEND_VISIBLE_DEVICES=0,1,2,3,10" in pairs(runtime, "-e")


def test_devices_all_without_cards_is_refused_with_the_fix(tmp_path):
    done = run_sh("run-npu", "DEVICES=all", f"DEV_DIR={fake_dev(tmp_path, 'davinci_manager')}")
    assert done.returncode == 6 and "docker" not in done.stdout
    assert "DEVICES=all but there is no" in done.stderr and "DEVICES=0,1" in done.stderr


# --------------------------------------------------------------------------- core binding
def test_bind_cores_starts_each_rank_through_the_binding_entrypoint():
    argv = docker_run(dry("run-npu", "NPROC=8", "BIND_CORES=1"))
    assert "KIT_BIND_CORES=1" in pairs(argv, "-e")
    command = inner(argv, IMAGE_NPU)
    start = command.index("--no-python")
    assert command[start:start + 5] == ["--no-python", "/opt/kit/docker/entrypoint.sh", "python", "-m", "recipe.finetune"]
    single = docker_run(dry("run-npu", "BIND_CORES=1"))  # one process: the container's entry point binds it
    assert "KIT_BIND_CORES=1" in pairs(single, "-e") and "--no-python" not in single
    assert "KIT_BIND_CORES=1" not in pairs(docker_run(dry("run-npu", "NPROC=8")), "-e")


# --------------------------------------------------------------------------- validation
@pytest.mark.parametrize("setting,message", [
    ("NPROC=two", "NPROC=two is not a whole number"),
    ("RUN_NAME=../etc", "RUN_NAME=../etc is not a directory name"),
    ("MASTER_PORT=70000", "MASTER_PORT=70000 is not a port"),
    ("DEVICES=0,0", "DEVICES=0,0 names a card twice"),
    ("DEVICES=0;reboot", "DEVICES='0;reboot' is not a card list"),
    ("KIT_CACHE=cache", "KIT_CACHE=cache is not an absolute host path"),
    ("NODE_RANK=2", "NODE_RANK=2 but NNODES=1"),
    ("BIND_CORES=yes", "BIND_CORES=yes is not 0 or 1"),
    ("PROFILE=a b", "PROFILE='a b' is not a profile name"),
    ("NPROC=0", "NPROC=0 is below 1"),
])
def test_a_bad_setting_stops_before_docker_with_its_name_and_the_fix(setting, message):
    done = run_sh("run-npu", setting)
    assert done.returncode == 3, done.stderr
    assert make("run-npu", "DRY_RUN=1", setting).returncode != 0
    assert message in done.stderr and "fix:" in done.stderr and "docker" not in done.stdout


def test_image_tags_can_be_overridden_and_are_checked():
    (argv,) = dry("build-a100", "IMAGE_A100=stand-in/cuda:test")
    assert pairs(argv, "-t") == ["stand-in/cuda:test"]
    assert inner(docker_run(dry("run-npu", "IMAGE_NPU=stand-in/npu:test")), "stand-in/npu:test")[:2] == ["python", "-m"]
    assert run_sh("run-npu", "IMAGE_NPU=x y").returncode == 3


def test_numbers_with_leading_zeros_are_decimal():
    argv = docker_run(dry("run-npu", "NPROC=08"))  # bash alone would read 08 as a bad octal number
    command = inner(argv, IMAGE_NPU)
    assert command[command.index("--nproc_per_node") + 1] == "8" and "/dev/davinci7" in pairs(argv, "--device")


def test_args_reach_the_recipe_as_words_and_are_never_evaluated(tmp_path):
    marker = tmp_path / "evaluated"
    done = run_sh("run-a100", f"ARGS=--set name=$(date>{marker}) --tag `date>{marker}` * --seed 7")
    assert done.returncode == 0, done.stderr
    printed = [shlex.split(line) for line in done.stdout.splitlines()]
    assert inner(docker_run(printed), IMAGE_A100)[-7:] == ["--set", f"name=$(date>{marker})", "--tag",
                                                           f"`date>{marker}`", "*", "--seed", "7"]
    assert not marker.exists()
    via_make = docker_run(dry("run-a100", "ARGS=--seed 1 --set note=it's"))  # what the shell would choke on
    assert inner(via_make, IMAGE_A100)[-4:] == ["--seed", "1", "--set", "note=it's"]


def test_unknown_action_prints_the_usage():
    done = subprocess.run(["bash", str(REPO / "docker" / "run.sh"), "frobnicate"], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 2 and "run-npu" in done.stderr

