"""`tox -e pinned` (run by `make test-pinned` and CI): the images' Python layer, rebuilt on the host.

These tests pin down what that env proves; CI runs the env itself right after `make test`.
"""

from __future__ import annotations

import configparser
import os
import re
import shlex
import subprocess
from pathlib import Path

from recipe import versions

REPO = Path(__file__).resolve().parent.parent


def pinned_env() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(REPO / "tox.ini")
    return parser["testenv:pinned"]


def lines(value: str) -> list[str]:
    return [line.strip() for line in value.splitlines() if line.strip() and not line.strip().startswith("#")]


def test_pinned_env_runs_on_the_images_python():
    assert pinned_env()["base_python"] == f"python{versions.load_table()['python']['version']}"


def test_pinned_env_installs_exactly_the_cuda_lock_hash_checked():
    (install,) = lines(pinned_env()["commands_pre"])
    argv = shlex.split(install)
    assert argv[:3] == ["uv", "pip", "sync"] and "--require-hashes" in argv
    assert REPO / argv[-1] == versions.lock_path("cuda", "x86_64")
    assert "torch-npu" not in versions.parse_lock(REPO / argv[-1]), "torch_npu breaks `import torch` here"
    assert "openmind" in versions.parse_lock(REPO / argv[-1])


def test_pinned_env_trains_the_smoke_profile_through_both_apis_and_runs_verify():
    commands = [shlex.split(c) for c in lines(pinned_env()["commands"])]
    smoke = [c for c in commands if c[1:3] == ["-m", "recipe.finetune"]]
    assert {c[c.index("--api") + 1] for c in smoke} == {"transformers", "openmind"}
    for command in smoke:
        assert command[command.index("--profile") + 1] == "smoke"
        assert command[command.index("--device") + 1] == "cpu"
    verify = [c for c in commands if "verify/test_environment.py" in c]
    assert len(verify) == 1
    deselected = [verify[0][i + 1] for i, a in enumerate(verify[0]) if a == "--deselect"]
    assert deselected == ["verify/test_environment.py::test_device_visible"]  # the one check needing the GPU
    assert ["python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_versions.py"] in commands


def test_pinned_env_looks_like_the_image_to_verify():
    settings = dict(line.split(" = ", 1) for line in lines(pinned_env()["set_env"]))
    assert settings["KIT_IMAGE"] == "cuda"  # verify's image-lock check compares with the same lock
    assert settings["HF_HUB_OFFLINE"] == "1" and settings["SWANLAB_MODE"] == "offline"


def make_env() -> dict:
    return {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}  # not the outer `make test`'s flags


def make_dry(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "-s", "--no-print-directory", "-n", "test-pinned", *args], cwd=REPO,
                          env=make_env(), capture_output=True, text=True, timeout=60, check=False)


def test_make_finds_the_newest_pyenv_310(tmp_path):
    for version in ("3.10.9", "3.10.13", "3.11.7"):
        (tmp_path / "versions" / version / "bin").mkdir(parents=True)
    done = make_dry(f"PYENV_ROOT_DIR={tmp_path}")
    assert re.search(rf'PATH="{tmp_path}/versions/3\.10\.13/bin:\S*/\.venv/bin:\$PATH" \S*tox -e pinned', done.stdout)


def test_make_without_python_310_says_how_to_get_it(tmp_path):
    done = subprocess.run(["make", "-s", "--no-print-directory", "test-pinned", f"PYENV_ROOT_DIR={tmp_path}"],
                          cwd=REPO, env=make_env(), capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0
    assert f"no Python 3.10 under {tmp_path}/versions/ (fix: pyenv install 3.10)" in done.stderr


def test_ci_runs_the_pinned_env_after_the_tests():
    steps = [line for line in (REPO / ".ci" / "run").read_text().splitlines() if line.startswith("make ")]
    assert steps.index("make test-pinned") > steps.index("make test")
