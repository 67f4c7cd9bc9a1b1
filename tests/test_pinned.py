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

from recipe.tools import versions

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


def recipe_commands() -> list[list[str]]:
    """The env's recipe runs, as `python -m recipe.finetune ARGS` (torchrun's included): the ARGS."""
    commands = [shlex.split(c.replace("{env_tmp_dir}", "/tmp/env")) for c in lines(pinned_env()["commands"])]
    return [c[c.index("recipe.finetune") + 1:] for c in commands if "recipe.finetune" in c]


def test_pinned_env_recipe_runs_are_ones_the_recipe_accepts_on_both_apis():
    """CI runs the env only after the whole suite: a flag, profile or choice the recipe renamed would
    fail there late. Every run must parse with the recipe's own parser and name a real profile, and
    the openMind API must be among them (only this env has openmind installed)."""
    from recipe import config, finetune

    runs = [finetune.parse_args(argv) for argv in recipe_commands()]
    assert runs and all(run.profile in config.available_profiles() for run in runs)
    assert {"transformers", "openmind"} <= {run.api for run in runs}
    assert all(run.device == "cpu" for run in runs)   # the host of CI has no card


def test_pinned_env_runs_test_files_and_deselects_tests_that_exist():
    """A renamed verify test makes --deselect match nothing, and pytest says nothing: the GPU check
    would then run (and fail) in CI. Every path and node the env names must exist."""
    commands = [shlex.split(c) for c in lines(pinned_env()["commands"])]
    pytest_runs = [c for c in commands if c[1:3] == ["-m", "pytest"]]
    assert pytest_runs
    for command in pytest_runs:
        for i, arg in enumerate(command):
            if arg.endswith(".py"):
                assert (REPO / arg).is_file(), arg
            if command[i - 1] == "--deselect":
                path, name = arg.split("::")
                assert re.search(rf"^def {name}\(", (REPO / path).read_text(), re.MULTILINE), arg


def test_pinned_env_looks_like_the_cuda_image_to_verify():
    """What the env sets must be what the CUDA image sets (docker/cuda/Dockerfile ENV), and KIT_IMAGE
    must name the image whose lock the env installs: verify's image-lock check compares the
    installed distributions with that image's lock."""
    settings = dict(line.split(" = ", 1) for line in lines(pinned_env()["set_env"]))
    dockerfile = (REPO / "docker" / "cuda" / "Dockerfile").read_text().replace("\\\n", " ")
    image_env = dict(re.findall(r"(?<![\w$])([A-Z][A-Z0-9_]*)=(\S+)", " ".join(
        line for line in dockerfile.splitlines() if line.startswith("ENV "))))
    shared = set(settings) & set(image_env) - {"PYTHONPATH"}   # the kit's root: the checkout here, /opt/kit there
    assert {"KIT_IMAGE", "OPENMIND_HIDE_STACKTRACE"} <= shared
    assert {name: settings[name] for name in shared} == {name: image_env[name] for name in shared}
    (install,) = lines(pinned_env()["commands_pre"])
    assert REPO / shlex.split(install)[-1] == versions.lock_path(settings["KIT_IMAGE"], "x86_64")


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
