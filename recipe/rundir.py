"""The run directory: who may use it, what --overwrite may delete, where --resume continues.

A run first *claims* its directory (`claim`): it refuses directories a run must never write into,
takes an OS lock (two runs never share a directory; the kernel drops the lock when its holder
dies, so a killed run leaves no stale lock) and checks the previous run there. Until training
starts, everything the run writes goes to a staging folder inside the directory: a run that fails
before training leaves the directory exactly as it found it. `Claim.commit` is the point of no
return: only then does --overwrite delete the old run (only the paths this kit writes) and the
staged files move into place.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
from pathlib import Path

from recipe import record
from recipe.config import config_sha256, differences
from recipe.console import LOG_NAME as CONSOLE_LOG
from recipe.errors import ConfigError, OutputError
from recipe.trace import TRACE_DIR

LOCK = ".kit-run.lock"
STAGING = ".kit-staging"
REPO_ROOT = Path(__file__).resolve().parent.parent
# What a run writes into its directory. --overwrite deletes these and nothing else; the folders
# the kit shares with nobody are deleted whole, the others only in the parts the kit wrote.
KIT_FILES = (record.MANIFEST, record.METRICS, record.SUMMARY, record.INTERRUPTED, CONSOLE_LOG)
KIT_DIRS = ("model", "tiny-model", "swanlog", TRACE_DIR)
KIT_PARTS = {"data": ("smoke-data",), "checkpoints": ("checkpoint-*",)}
# What the kit's container writes into the run directory before the recipe starts: CANN's logs
# (docker/run.sh points ASCEND_PROCESS_LOG_PATH there, so they outlive the container). They never
# make the directory hold a previous run, and --overwrite keeps them: CANN may be writing them now.
SIDE_FOLDERS = ("ascend-log",)


def entries(directory: Path) -> set[str]:
    """The names in `directory` that belong to a run (the side folders left out)."""
    return {p.name for p in directory.iterdir()} - set(SIDE_FOLDERS)


def holds_anything(directory: Path) -> bool:
    """Whether `directory` holds anything besides the side folders: a run, or a stranger's files."""
    return directory.is_dir() and bool(entries(directory))


def forbidden_reason(directory: Path) -> str | None:
    """Why `directory` may never be a run directory, or None."""
    resolved = directory.expanduser().resolve()
    home = Path.home().resolve()
    named = {Path("/"): "the root directory", home: "your home directory", REPO_ROOT: "the kit's repository root"}
    return f"{resolved} is {named[resolved]}" if resolved in named else None


def is_kit_run(directory: Path) -> bool:
    """A directory this kit wrote a run into: its manifest has the kit's schema, or (a run stopped
    before its manifest) only the kit's lock file and staging folder are there."""
    try:
        manifest = record.load_manifest(directory)
    except (ValueError, OSError):
        manifest = None
    if isinstance(manifest, dict) and manifest.get("schema") == record.MANIFEST_SCHEMA:
        return True
    return entries(directory) <= {LOCK, STAGING}


def delete_kit_paths(directory: Path) -> None:
    """Delete what a run of this kit writes, and only that: user files beside or inside survive."""
    for name in KIT_FILES:
        (directory / name).unlink(missing_ok=True)
    for name in KIT_DIRS:
        shutil.rmtree(directory / name, ignore_errors=True)
    for parent, patterns in KIT_PARTS.items():
        for pattern in patterns:
            for path in (directory / parent).glob(pattern):
                shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
        _rmdir_if_empty(directory / parent)


def _rmdir_if_empty(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass   # missing, or holds something that is not ours


def lock_holder(path: Path) -> str:
    try:
        return path.read_text().strip() or "another process"
    except OSError:
        return "another process"


class Claim:
    """This process's hold on a run directory (rank 0 only; see `claim`)."""

    def __init__(self, directory: Path, created: bool, handle, old_lock_text: str | None):
        self.dir, self.created, self._handle = directory, created, handle
        self.old_lock_text = old_lock_text   # a lock file left by a killed run: restored by rollback
        self.committed = False
        self.staging = directory / STAGING
        shutil.rmtree(self.staging, ignore_errors=True)   # left by a run killed before training
        self.staging.mkdir()

    def final(self, path: str | Path) -> Path:
        """Where a staged path lies once committed (other paths: themselves)."""
        path = Path(path)
        return self.dir / path.relative_to(self.staging) if path.is_relative_to(self.staging) else path

    def commit(self, overwrite: bool) -> None:
        """Training starts: delete the old run if asked, move the staged files into the directory."""
        if overwrite:
            delete_kit_paths(self.dir)
        for staged in sorted(self.staging.rglob("*"), key=lambda p: len(p.parts)):
            if staged.is_dir():
                continue
            target = self.dir / staged.relative_to(self.staging)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged, target)
        shutil.rmtree(self.staging, ignore_errors=True)
        self.committed = True

    def rollback(self) -> None:
        """The run failed before training: leave the directory as it was found."""
        shutil.rmtree(self.staging, ignore_errors=True)
        if self.created:
            shutil.rmtree(self.dir, ignore_errors=True)
        elif self.old_lock_text is not None:
            (self.dir / LOCK).write_text(self.old_lock_text)
        else:
            (self.dir / LOCK).unlink(missing_ok=True)
        self._close()

    def release(self) -> None:
        """The run ended (finished or interrupted): remove the lock file, then drop the lock."""
        if self._handle is not None:
            (self.dir / LOCK).unlink(missing_ok=True)
        self._close()

    def _close(self) -> None:
        if self._handle is not None:
            self._handle.close()   # closing the file drops the flock
            self._handle = None


def _take_lock(directory: Path):
    """An exclusive flock on directory/LOCK, or OutputError naming the process that holds it."""
    path = directory / LOCK
    while True:
        handle = open(path, "a+")   # noqa: SIM115 - kept open for the whole run: the lock lives as long as it
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            handle.close()
            if err.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            raise OutputError(f"{directory} is in use by {lock_holder(path)} (lock {path})",
                              fix="wait for that run to end, stop it, or choose another --output") from None
        try:
            same = os.fstat(handle.fileno()).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:   # not a file that the previous holder unlinked while we waited
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()} on {os.uname().nodename}\n")
            handle.flush()
            return handle
        handle.close()


def check_previous_run(directory: Path, resume: bool, overwrite: bool) -> None:
    """Refuse to mix a new run with what the directory holds."""
    if not directory.exists() or not holds_anything(directory):
        return
    kit = is_kit_run(directory)
    if overwrite and not kit:
        raise OutputError(f"--overwrite refused: {directory} is not empty and holds no run of this kit",
                          fix="choose an empty or new --output directory; the kit deletes only its own runs")
    if overwrite:
        return
    if record.load_summary(directory) is not None and not resume:
        raise OutputError(f"{directory} already holds a finished run",
                          fix="choose another --output, or pass --overwrite to replace it")
    if (directory / record.MANIFEST).exists() and not resume:
        raise OutputError(f"{directory} holds an unfinished run", fix="pass --resume to continue it or --overwrite")


def check_resume_config(directory: Path, config: dict) -> None:
    """A resumed run must be the same run: the resolved config as when it started (its sha256;
    a record hashed before numbers were made canonical is compared setting by setting)."""
    manifest = record.load_manifest(directory) or {}
    before = manifest.get("config")
    if before is None or manifest.get("config_sha256") == config_sha256(config):
        return
    keys = differing_keys(before, config)
    if not keys:
        return
    raise ConfigError(f"--resume with a different config than the run in {directory} started with: "
                      f"{', '.join(keys)} differ",
                      fix="resume with the original settings (see its manifest.json `command`), "
                          "or start a new run in another --output")


def differing_keys(before: dict, after: dict) -> list[str]:
    return [f"{key} ({old!r} -> {new!r})" for key, old, new in differences(before, after)]


def last_checkpoint(directory: Path) -> str | None:
    """The newest complete checkpoint: trainer_state.json is written last, so one without it was
    cut by a kill."""
    found = sorted((c for c in (directory / "checkpoints").glob("checkpoint-*")
                    if c.name.split("-")[-1].isdigit() and (c / "trainer_state.json").is_file()),
                   key=lambda c: int(c.name.split("-")[-1]))
    return str(found[-1]) if found else None


def claim(directory: Path, resume: bool, overwrite: bool, config: dict) -> Claim:
    """Check and lock the run directory before anything is written into it."""
    why = forbidden_reason(directory)
    if why:
        raise OutputError(f"--output {directory}: {why}, which can never be a run directory",
                          fix="pass a new or empty directory, e.g. --output runs/my-run")
    if directory.exists() and not directory.is_dir():
        raise OutputError(f"--output {directory} is a file", fix="pass a directory")
    created = not directory.exists()
    # check before taking the lock: a refusal must not even create the lock file
    old_lock_text = None
    if directory.exists() and (directory / LOCK).exists():
        _probe_lock(directory)
        old_lock_text = (directory / LOCK).read_text()
    check_previous_run(directory, resume, overwrite)
    if resume and not overwrite and directory.exists():
        check_resume_config(directory, config)
    directory.mkdir(parents=True, exist_ok=True)
    try:
        handle = _take_lock(directory)
    except OutputError:
        if created:
            shutil.rmtree(directory, ignore_errors=True)
        raise
    return Claim(directory, created, handle, old_lock_text)


def _probe_lock(directory: Path) -> None:
    """OutputError when another process holds the lock; touches nothing."""
    path = directory / LOCK
    with open(path) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            raise OutputError(f"{directory} is in use by {lock_holder(path)} (lock {path})",
                              fix="wait for that run to end, stop it, or choose another --output") from None


def disk_full(err: BaseException, directory: Path) -> OutputError | None:
    """An OutputError with the path and the free space when `err` (or its cause) is ENOSPC: torch
    raises OSError, safetensors its own SafetensorError carrying "No space left on device"."""
    seen = err
    while seen is not None:
        if (isinstance(seen, OSError) and seen.errno == errno.ENOSPC) or "No space left on device" in str(seen) \
                or "os error 28" in str(seen):
            where = getattr(seen, "filename", None) or directory
            try:
                free = f"{shutil.disk_usage(Path(directory)).free / 2**20:.0f} MiB free"
            except OSError:
                free = "free space unknown"
            return OutputError(f"no space left on the device while writing {where} ({free} under {directory}); "
                               "no summary was written", fix="free space there (old checkpoints/, model/ of other "
                                                             "runs) or choose another --output, then --resume")
        seen = seen.__cause__ or seen.__context__
    return None
