"""The README stays true to the code: targets, profiles, exit codes and CLI flags it documents exist."""

from __future__ import annotations

import io
import os
import re
import shlex
import subprocess
import sys
import tokenize
from pathlib import Path

from recipe import config, errors, finetune

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def make_targets() -> set[str]:
    out = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return {re.sub(r"\x1b\[[0-9;]*m", "", line).split()[0] for line in out.splitlines() if line.strip()}


def test_quick_start_commands_are_real_targets():
    quick_start = README.split("## Quick start", 1)[1].split("##", 1)[0]
    assert "make run-cpu" in quick_start and "make test" in quick_start
    assert {"run-cpu", "test"} <= make_targets()


def test_every_make_target_in_the_readme_exists():
    targets = make_targets()
    mentioned = set(re.findall(r"`make ([a-z0-9-]+)", README))
    assert mentioned, "the README names no make target"
    assert mentioned <= targets, f"README names targets the Makefile lacks: {sorted(mentioned - targets)}"


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, re.MULTILINE)
    assert "set -euo pipefail" in ci


def readme_exit_codes() -> dict[int, str]:
    """code -> the first word of its meaning, from the README's one exit-code table."""
    table = README.split("### Exit codes", 1)[1].split("\n#", 1)[0]
    rows = re.findall(r"^\| ([0-9][0-9 /]*) \| ([a-z]+)\b", table, re.MULTILINE)
    return {int(code): word for codes, word in rows for code in codes.split(" / ")}


def test_profiles_are_documented():
    for profile in config.available_profiles():
        assert f"| `{profile}` |" in README, profile


def test_the_readme_exit_code_table_is_the_code_table():
    """README.md lists recipe/errors.py's EXIT_CODES, code for code and kind for kind: a code added,
    renumbered or given another meaning in one place and not the other fails here."""
    assert readme_exit_codes() == {code: kind for code, (kind, _) in errors.EXIT_CODES.items()}
    for cls in (errors.ConfigError, errors.DataError, errors.ModelError, errors.DeviceError, errors.OutputError):
        assert errors.EXIT_CODES[cls.exit_code][0] == cls.kind.split()[0], cls.kind
    assert set(errors.INTERRUPTED_EXIT_CODES.values()) == {130, 143}   # the shell's 128 + signal: never renumber


def test_every_command_exits_with_a_code_of_the_one_table():
    """The codes each command returns are the table's: the report's errors, the doctor's, the card's,
    the bench's and the device check's. A module that numbers a failure itself fails here."""
    from bench import run as bench_run
    from dev import device_check
    from report import card, stability
    from report import errors as report_errors
    from verify import doctor

    used = [(report_errors.BadRunRecord.exit_code, "record"), (report_errors.BadOutput.exit_code, "output"),
            (report_errors.RecipeMissing.exit_code, "recipe"), (stability.EXIT_NO_RUN_FINISHED, "seeds"),
            (doctor.EXIT_FAILED, "failed"), (doctor.EXIT_USAGE, "usage"), (card.EXIT_STALE, "failed"),
            (bench_run.EXIT_FAILED, "bench"), (device_check.EXIT_MISSING, "device"),
            (device_check.EXIT_MISMATCH, "parity")]
    assert [(code, errors.EXIT_CODES.get(code, ("not in the table",))[0]) for code, _ in used] == used
    recipe_codes = {errors.EXIT_CONFIG, errors.EXIT_DATA, errors.EXIT_MODEL, errors.EXIT_DEVICE, errors.EXIT_OUTPUT}
    assert recipe_codes == {3, 4, 5, 6, 7}   # documented for the recipe from the start: users script against them


def test_every_recipe_flag_is_documented():
    flags = {a for action in finetune.parse_args.__code__.co_consts if isinstance(action, str)
             for a in re.findall(r"^--[a-z-]+$", action)}
    assert {"--profile", "--output", "--device", "--api", "--resume", "--no-swanlab"} <= flags
    for flag in flags:
        assert flag in README, flag


# ---------------------------------------------------------------- every path the docs name exists
DOCS = sorted((ROOT / "docs").glob("*.md"))
TOP = r"(?:recipe|verify|report|bench|tests|docker|dev|docs|results|requirements|mk|\.ci)"
REPO_PATH = re.compile(rf"(?<![\w/.~$-]){TOP}/[\w./*<>{{}}-]*[\w*>}}]|(?<![\w/.-])(?:README\.md|tox\.ini|pyproject\.toml)\b")
MD_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
ISSUE = re.compile(r"\bissues? #?\d+", re.IGNORECASE)
README_SECTION = re.compile(r'(?<![\w/] )(?<![\w/])README(?:\.md)?, "([^"]+)"')   # this repo's README, not "x/y README"


def referring_files() -> list[Path]:
    code = [p for top in ("recipe", "verify", "report", "bench", "tests", "docker", "dev")
            for p in (ROOT / top).rglob("*") if p.suffix in {".py", ".yaml", ".toml", ".sh"} or p.name == "Dockerfile"
            or p.name.endswith(".Dockerfile")]
    files = [ROOT / "README.md", *DOCS, *sorted((ROOT / "dev").rglob("*.md")), ROOT / "Makefile",
             *(ROOT / "mk").glob("*.mk"), *(ROOT / "dev" / "mk").glob("*.mk"), ROOT / "tox.ini",
             ROOT / ".ci" / "run", *sorted(code)]
    return [path for path in files if path.name != "test_readme.py"]   # this file names broken paths on purpose


def path_exists(text: str) -> bool:
    """`docker/locks/<image>-<arch>.txt`: the folder before the placeholder; `recipe/configs/*.yaml`: a match."""
    for mark in ("<", "{"):
        if mark in text:
            return (ROOT / text.split(mark)[0]).parent.exists()
    return any(ROOT.glob(text)) if "*" in text else (ROOT / text).exists()


def prose_lines(path: Path) -> list[tuple[int, str]]:
    """The lines a reader reads: all of a text file, only the comments and docstrings of Python
    (test data such as a deliberately missing path is not a reference)."""
    text = path.read_text(errors="replace")
    if path.suffix != ".py":
        return list(enumerate(text.splitlines(), 1))
    lines = []
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type == tokenize.COMMENT or (token.type == tokenize.STRING and token.string.lstrip("rbuf").startswith('"""')):
            lines += [(token.start[0] + i, line) for i, line in enumerate(token.string.splitlines())]
    return lines


def broken_references(path: Path) -> list[str]:
    found = []
    for number, line in prose_lines(path):
        if line.startswith("# syntax=docker/dockerfile"):   # BuildKit's frontend image, not a path
            continue
        where = f"{path.relative_to(ROOT)}:{number}"
        for match in REPO_PATH.finditer(line):
            if not path_exists(match.group(0).rstrip(".")):
                found.append(f"{where}: {match.group(0)} does not exist")
        if path.suffix == ".md":
            for target in MD_LINK.findall(line):
                if "://" not in target and not (path.parent / target).exists():
                    found.append(f"{where}: link ({target}) does not exist")
        for heading in README_SECTION.findall(line):
            if not re.search(rf"^#+ {re.escape(heading)}", README, re.MULTILINE):
                found.append(f"{where}: README.md has no section \"{heading}\"")
        if ISSUE.search(line) and path.name != "test_readme.py":
            found.append(f"{where}: '{ISSUE.search(line).group(0)}' names an issue the reader cannot open; "
                         "say what it measured or link a file in docs/")
    return found


def test_every_repo_path_named_in_docs_configs_and_comments_exists():
    broken = [problem for path in referring_files() for problem in broken_references(path)]
    assert not broken, "\n".join(broken)


def test_the_reference_check_catches_a_missing_file_a_dead_link_and_an_issue_number(tmp_path, monkeypatch):
    page = ROOT / "docs" / "performance.md"
    fake = tmp_path / "page.md"
    fake.write_text("see tests/test_distributed.py and [x](missing.md), as issue 6 said; docs/performance.md\n"
                    'README.md, "Performance"; README.md, "Quick start"\n')
    monkeypatch.setattr(Path, "relative_to", lambda self, other: self.name)
    problems = broken_references(fake)
    assert any("tests/test_distributed.py does not exist" in p for p in problems)
    assert any("link (missing.md)" in p for p in problems) and any("issue 6" in p for p in problems)
    assert page.exists() and not any("docs/performance.md" in p for p in problems)
    assert any('no section "Performance"' in p for p in problems) and not any("Quick start" in p for p in problems)


def test_the_readme_fits_on_a_few_screens_and_links_every_doc():
    assert len(README.splitlines()) <= 200, f"README.md has {len(README.splitlines())} lines; move detail into docs/"
    for doc in DOCS:
        assert f"(docs/{doc.name})" in README, f"README.md does not link docs/{doc.name}"


# ---------------------------------------------------------------- every command shown is checked
# The images' targets need Docker and a device: DRY_RUN=1 prints their docker commands instead.
DRY_RUN_TARGETS = {"build-npu", "build-a100", "run-npu", "run-a100", "verify-npu", "verify-a100", "shell-npu",
                   "shell-a100", "fetch"}
# Commands of the host or of other tools, shown for the reader to run there; not the kit's to test.
HOST_TOOLS = {"docker", "npu-smi", "nvidia-smi", "sudo", "export", "pip", "swanlab", "hccn_tool", "tox", "source",
              "."}
# The ones that run for real in a test here, with `make -n` below as well.
RUN_FOR_REAL = {"run-cpu": "tests/test_dashboard.py", "dashboard": "tests/test_dashboard.py",
                "stability": "tests/test_report_real_runs.py (python -m report.stability, what the target runs)",
                "compare": "tests/test_report_real_runs.py",
                "verify-cpu": "tests/test_verify_training.py (the same pytest command)", "test": ".ci/run"}


def shown_commands() -> list[tuple[str, str]]:
    """(where, command) for every line of every ```bash block in README.md and docs/*.md."""
    commands = []
    for path in [ROOT / "README.md", *DOCS]:
        text = path.read_text()
        for block in re.findall(r"^ *```bash\n(.*?)^ *```", text, re.MULTILINE | re.DOTALL):
            for command in re.sub(r"\\\n\s*", " ", block).splitlines():
                command = re.sub(r"(^|\s+)#.*$", "", command).strip()
                if command:
                    commands.extend((path.name, part.strip()) for part in command.split("&&"))
    return commands


def check_command(command: str) -> subprocess.CompletedProcess | None:
    words = shlex.split(command)
    while words and re.match(r"^[A-Z_]+=", words[0]):   # VAR=value make ...
        words.pop(0)
    tool = words[0]
    if tool in HOST_TOOLS:
        return None
    if tool == "make":
        args = words[1:]
        target = next(a for a in args if "=" not in a)
        dry = ["DRY_RUN=1"] if target in DRY_RUN_TARGETS else ["-n", "-o", ".venv/.stamp"]
        return subprocess.run(["make", "-s", "--no-print-directory", *dry, *args], cwd=ROOT, capture_output=True,
                              text=True, timeout=120, check=False)
    module = words[words.index("-m") + 1] if "-m" in words else None
    assert tool in ("python", "torchrun") and module, f"unknown command (add a test or a HOST_TOOLS entry): {command}"
    return subprocess.run([sys.executable, "-m", module, "--help"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False, env=dict(os.environ, PYTHONPATH=str(ROOT)))


def test_every_command_shown_in_the_readme_and_docs_runs_dry_or_answers_help():
    """make targets: `make -n` (or DRY_RUN=1 for the images' targets) must accept the exact line;
    python -m / torchrun: the module answers --help. RUN_FOR_REAL names where the rest runs for real."""
    failed, seen = [], set()
    for where, command in shown_commands():
        key = command if command.startswith("make") else command.split(" -m ")[-1].split()[0]
        if key in seen:
            continue
        seen.add(key)
        done = check_command(command)
        if done is not None and done.returncode != 0:
            failed.append(f"{where}: {command}\n    -> exit {done.returncode}: {(done.stderr or done.stdout)[-300:]}")
    assert not failed, "\n".join(failed)
    assert {t for t in RUN_FOR_REAL if f"make {t}" in README} == {"run-cpu", "dashboard", "compare", "stability",
                                                                   "test", "verify-cpu"}


# ---------------------------------------------------------------- multi-process commands fit their batch
TRAINING_TARGETS = {"run-npu", "run-a100", "verify-npu", "verify-a100"}


def batch_problem(command: str) -> str | None:
    """Why the recipe would refuse this documented `make run-*`/`verify-*` line at its batch plan
    (exit 3), or None. World = NPROC (or the cards DEVICES lists) x NNODES, profile = PROFILE
    (docker/run.sh's default smoke), plus any `--set` in ARGS."""
    from recipe import distributed
    from recipe.errors import ConfigError

    words = shlex.split(command)
    if not words or words[0] != "make" or not TRAINING_TARGETS & set(words):
        return None
    settings = dict(w.split("=", 1) for w in words[1:] if "=" in w)
    devices = settings.get("DEVICES", "0")
    nproc = int(settings.get("NPROC") or (8 if devices == "all" else len(devices.split(","))))
    world = nproc * int(settings.get("NNODES", "1"))
    args = shlex.split(settings.get("ARGS", ""))
    overrides = [args[i + 1] for i, a in enumerate(args[:-1]) if a == "--set"]
    try:
        resolved = config.apply_overrides(config.load_profile(settings.get("PROFILE", "smoke")), overrides)
        distributed.plan_batch(resolved["train"], world)
    except ConfigError as err:
        return err.render()
    return None


def test_the_batch_check_catches_a_documented_command_the_recipe_would_refuse():
    assert "cannot be split evenly over 8 processes" in batch_problem("make run-npu NPROC=8 PROFILE=published")
    assert "over 4 processes" in batch_problem("make run-a100 NPROC=2 NNODES=2 PROFILE=published "
                                                "ARGS='--set train.global_batch_size=6'")
    assert batch_problem("make run-npu NPROC=4 PROFILE=published") is None
    assert batch_problem("make run-npu NPROC=8 ARGS='--set train.global_batch_size=8' PROFILE=published") is None
    assert batch_problem("make run-npu DEVICES=0,1 PROFILE=published") is None
    assert batch_problem("make run-cpu PROFILE=published") is None   # one process


def test_every_documented_training_command_fits_its_profiles_global_batch():
    """`make -n` accepts any NPROC; the recipe then refuses a global batch the processes cannot
    share (exit 3). Every command the docs show must get past that plan."""
    refused = [f"{where}: {command}\n    -> {problem}" for where, command in shown_commands()
               if (problem := batch_problem(command))]
    assert not refused, "\n".join(refused)
