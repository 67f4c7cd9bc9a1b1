"""The run record: manifest.json, metrics.jsonl, summary.json (see docs/run-record.md).

JSON files are written atomically (temporary file + os.replace) so a killed run never leaves a
half-written or complete-looking summary; secrets are redacted before anything is written.
The one reader is load_record: one policy for a bad file or line (a problem naming file:line,
the rest read all the same); report/ and verify/ are views over it that decide what is fatal.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TextIO

MANIFEST, METRICS, SUMMARY = "manifest.json", "metrics.jsonl", "summary.json"
INTERRUPTED = "interrupted.json"   # a run stopped by SIGINT/SIGTERM after saving a checkpoint
# The published numbers and thresholds: one file for the recipe's verdict and verify's asserts.
PUBLISHED = Path(__file__).resolve().parent.parent / "verify" / "published.json"
MANIFEST_SCHEMA, SUMMARY_SCHEMA, INTERRUPTED_SCHEMA = "kit.manifest/1", "kit.summary/1", "kit.interrupted/1"
# Names that hold secrets: redacted from the record, refused in --set (recipe.config).
SECRET_NAME = re.compile(r"(api[_-]?key|(^|[_.-])(token|key)s?$|secret|passw(or)?d)", re.IGNORECASE)
FILE_MODE = 0o644   # the host user must be able to read a record a container wrote as root
REDACTED = "***"
ASSIGNMENT = re.compile(r"(?P<key>[^\s=]+)=(?P<value>\S*)")   # one KEY=value word of a longer text


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def write_atomic(path: Path, write: Callable[[TextIO], object]) -> None:
    """Write through `write(handle)` into a temporary file beside `path`, then rename it over
    `path`: readers see the old file or the whole new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, FILE_MODE)   # mkstemp makes 0600
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    write_atomic(path, lambda handle: handle.write(text))


def write_json_atomic(path: Path, payload: dict) -> None:
    def dump(handle):
        json.dump(payload, handle, indent=2, sort_keys=False, default=str)
        handle.write("\n")
    write_atomic(path, dump)


def redact(value):
    """Blank out values whose key looks secret, and any literal secret from the environment."""
    secrets = [v for k, v in os.environ.items() if SECRET_NAME.search(k) and len(v) >= 6]
    if isinstance(value, dict):
        return {k: REDACTED if SECRET_NAME.search(str(k)) else redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return _redact_argv([redact(v) for v in value])
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, REDACTED)
        value = _redact_assignments(value)
    return value


def _redact_assignments(text: str) -> str:
    """`KEY=value` with a secret-looking KEY: when the text starts with it, everything after the `=`
    goes (a value may hold spaces); elsewhere in the text, that one value does."""
    if "=" not in text:
        return text
    head = text.split("=", 1)[0]
    if SECRET_NAME.search(head):
        return head + "=" + REDACTED
    return ASSIGNMENT.sub(lambda m: f"{m['key']}={REDACTED}" if SECRET_NAME.search(m["key"]) else m[0], text)


def _redact_argv(items: list) -> list:
    """`--swanlab-api-key VALUE` style: redact the value after a secret-looking flag."""
    out = list(items)
    for i, item in enumerate(out[:-1]):
        if isinstance(item, str) and item.startswith("-") and "=" not in item and SECRET_NAME.search(item):
            out[i + 1] = REDACTED
    return out


def git_sha(repo: Path) -> str | None:
    try:
        return subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return os.environ.get("KIT_GIT_SHA")  # images bake the sha in at build time


class RunRecord:
    """Owns the files of one run directory."""

    def __init__(self, directory: Path, enabled: bool = True):
        self.dir = Path(directory)
        self.enabled = enabled  # False on non-zero ranks: only rank 0 writes the record

    @property
    def summary_path(self) -> Path:
        return self.dir / SUMMARY

    def start(self, manifest: dict, resume_step: int | None, resumed_from: str | None = None) -> list[RecordProblem]:
        """Write the manifest; a fresh run starts an empty metrics stream, a resumed one keeps the
        lines up to the checkpoint it continues from (the Trainer replays nothing before it), so no
        step is ever logged twice. A resume keeps the manifest's original start and appends itself
        to `resumes`. Returns the problems of the bad metrics lines a resume dropped (load_metrics):
        the rewritten stream has none."""
        if not self.enabled:
            return []
        self.dir.mkdir(parents=True, exist_ok=True)
        self.summary_path.unlink(missing_ok=True)
        (self.dir / INTERRUPTED).unlink(missing_ok=True)
        manifest = {"schema": MANIFEST_SCHEMA, **manifest}
        earlier = load_manifest(self.dir) if resume_step is not None or resumed_from else None
        if earlier and earlier.get("schema") == MANIFEST_SCHEMA:
            resume = {"at": manifest.get("started_at"), "command": manifest.get("command"),
                      "checkpoint": Path(resumed_from).name if resumed_from else None}
            manifest.update({key: earlier[key] for key in ("run_id", "started_at", "command") if key in earlier})
            manifest["resumes"] = [*earlier.get("resumes", []), resume]
        write_json_atomic(self.dir / MANIFEST, redact(manifest))
        metrics = self.dir / METRICS
        lines, problems = load_metrics(metrics) if resume_step is not None else ([], [])
        kept = [line for line in lines if _step(line) is not None and line["step"] <= resume_step]
        write_text_atomic(metrics, "".join(json.dumps(line) + "\n" for line in kept))
        return [problem for problem in problems if problem.kind != "missing"]

    def interrupted(self, details: dict) -> None:
        """Mark the run as stopped by a signal (summary.json stays absent: complete means complete)."""
        if self.enabled:
            write_json_atomic(self.dir / INTERRUPTED, redact({"schema": INTERRUPTED_SCHEMA, "at": now_iso(),
                                                              **details}))

    def append_metrics(self, line: dict) -> None:
        if not self.enabled:
            return
        with (self.dir / METRICS).open("a") as handle:
            handle.write(json.dumps(_finite(line)) + "\n")
            handle.flush()

    def finish(self, summary: dict) -> None:
        if self.enabled:
            write_json_atomic(self.summary_path, redact({"schema": SUMMARY_SCHEMA, "status": "complete",
                                                         "finished_at": now_iso(), **summary}))


def _finite(line: dict) -> dict:
    # JSON has no NaN/Infinity; a diverged loss is recorded as null with a flag, not as invalid JSON
    out = {}
    for key, value in line.items():
        if isinstance(value, float) and not math.isfinite(value):
            out[key], out[f"{key}_nonfinite"] = None, str(value)
        else:
            out[key] = value
    return out


class RecordProblem(ValueError):
    """What is wrong with one record file, or with one line of metrics.jsonl (`line` set).

    `kind`: missing | unreadable | json | shape | schema (a file), json | shape | step (a line).
    str(): `path: why`, or `path:line: why`: the same text for every reader."""

    def __init__(self, path: Path, why: str, kind: str, line: int | None = None):
        where = f"{path}:{line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {why}")
        self.path, self.why, self.kind, self.line = Path(path), why, kind, line


# The kinds of metrics.jsonl line this kit writes; each has an integer `step`. Other kinds are
# kept in Record.lines and otherwise ignored (a newer kit may add some: docs/run-record.md).
KINDS = ("train", "eval", "epoch", "checkpoint")


def _step(line: dict) -> int | None:
    step = line.get("step")
    return step if isinstance(step, int) and not isinstance(step, bool) else None


def _parse_line(path: Path, lineno: int, raw: bytes) -> tuple[dict | None, RecordProblem | None]:
    """One line of metrics.jsonl: (row, None), (None, problem), or (None, None) when blank."""
    def bad(why: str, kind: str):
        return None, RecordProblem(path, why, kind, lineno)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        return bad(f"not valid UTF-8 ({err.reason} at byte {err.start})", "json")
    if not text.strip():
        return None, None
    try:
        row = json.loads(text)
    except json.JSONDecodeError as err:
        return bad(f"not valid JSON ({err.msg})", "json")
    if not isinstance(row, dict):
        return bad("not a JSON object", "shape")
    if row.get("kind") in KINDS and _step(row) is None:
        return bad(f"{row['kind']} line has no integer 'step'", "step")
    return row, None


def _lines(path: Path) -> Iterator[tuple[int, dict | None, RecordProblem | None]]:
    """(line number, row, None) per good non-blank line, (line number, None, problem) per bad one.
    Split as bytes, so a JSON string holding U+2028 stays on its line. Raises OSError when the
    file cannot be read."""
    for lineno, raw in enumerate(Path(path).read_bytes().splitlines(), start=1):
        row, problem = _parse_line(path, lineno, raw)
        if row is not None or problem is not None:
            yield lineno, row, problem


def metrics_lines(path: Path) -> Iterator[tuple[int, dict | None, str | None]]:
    """Each non-blank line of a metrics.jsonl as (line number, row, None), or (line number, None,
    why) for a line that is not a JSON object, or that is of a known kind without an integer step."""
    for lineno, row, problem in _lines(path):
        yield lineno, row, problem.why if problem else None


def load_metrics(path: Path) -> tuple[list[dict], list[RecordProblem]]:
    """THE policy for metrics.jsonl: every good line in file order (unknown kinds included), and a
    problem naming `path:line` for each bad line, which is then skipped (the lines after it are
    kept). A missing or unreadable file is one problem and no lines. Whether a problem is fatal
    is the reader's call (docs/run-record.md)."""
    path = Path(path)
    lines, problems = [], []
    try:
        for _, row, problem in _lines(path):
            if problem is None:
                lines.append(row)
            else:
                problems.append(problem)
    except FileNotFoundError:
        return [], [RecordProblem(path, "missing", "missing")]
    except OSError as err:
        return [], [RecordProblem(path, f"cannot be read ({err.strerror or err})", "unreadable")]
    return lines, problems


def read_metrics(directory: Path) -> list[dict]:
    """The good lines of DIR/metrics.jsonl (none when it is missing); bad lines skipped (load_metrics)."""
    return load_metrics(Path(directory) / METRICS)[0]


def read_json(path: Path, schema: str | None = None) -> dict:
    """One record file as a dict; RecordProblem saying what is wrong with it otherwise."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecordProblem(path, "missing", "missing") from None
    except UnicodeDecodeError as err:
        raise RecordProblem(path, f"not valid UTF-8 ({err.reason} at byte {err.start})", "json") from None
    except OSError as err:
        raise RecordProblem(path, f"cannot be read ({err.strerror or err})", "unreadable") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise RecordProblem(path, f"not valid JSON (line {err.lineno}, column {err.colno}: {err.msg})",
                            "json") from None
    if not isinstance(data, dict):
        raise RecordProblem(path, f"expected a JSON object, found {type(data).__name__}", "shape")
    if schema is not None and data.get("schema") != schema:
        raise _schema_problem(path, data, schema)
    return data


def _schema_problem(path: Path, data: dict, schema: str) -> RecordProblem:
    return RecordProblem(path, f"schema is {data.get('schema')!r}, expected {schema!r}", "schema")


@dataclass
class Record:
    """One run directory as load_record read it. `problems` lists, in the order manifest.json,
    summary.json, metrics.jsonl (by line), everything that is wrong; what was readable is here
    all the same (a file of the wrong schema too). Readers decide which problems are fatal."""

    directory: Path
    manifest: dict | None      # None: missing or unreadable
    summary: dict | None       # as written, any status; None: missing (a run not finished) or unreadable
    lines: list[dict]          # every good metrics line in file order, unknown kinds included
    problems: list[RecordProblem] = field(default_factory=list)

    def of_kind(self, kind: str) -> list[dict]:
        return [line for line in self.lines if line.get("kind") == kind]

    @property
    def train(self) -> list[dict]:
        return self.of_kind("train")

    @property
    def evals(self) -> list[dict]:
        return self.of_kind("eval")

    @property
    def epochs(self) -> list[dict]:
        return self.of_kind("epoch")

    @property
    def checkpoints(self) -> list[dict]:
        return self.of_kind("checkpoint")


def load_record(directory: Path) -> Record:
    """THE reader of a run record: manifest.json and summary.json (each checked against its
    schema), metrics.jsonl through load_metrics. Never raises for what is in the files."""
    directory = Path(directory)
    problems: list[RecordProblem] = []
    found = {}
    for name, schema in ((MANIFEST, MANIFEST_SCHEMA), (SUMMARY, SUMMARY_SCHEMA)):
        try:
            found[name] = read_json(directory / name)
        except RecordProblem as problem:
            found[name] = None
            problems.append(problem)
            continue
        if found[name].get("schema") != schema:   # a problem, but what the file says stays readable
            problems.append(_schema_problem(directory / name, found[name], schema))
    lines, line_problems = load_metrics(directory / METRICS)
    return Record(directory, found[MANIFEST], found[SUMMARY], lines, problems + line_problems)


def load_manifest(directory: Path) -> dict | None:
    path = Path(directory) / MANIFEST
    return read_json(path) if path.is_file() else None


def load_summary(directory: Path) -> dict | None:
    """The summary of a finished run, or None for a run that is missing, running or was killed."""
    try:
        summary = read_json(Path(directory) / SUMMARY)
    except RecordProblem:
        return None
    return summary if summary.get("status") == "complete" else None


def load_interrupted(directory: Path) -> dict | None:
    """interrupted.json of a run stopped by a signal, or None."""
    try:
        return read_json(Path(directory) / INTERRUPTED, INTERRUPTED_SCHEMA)
    except RecordProblem:
        return None


def published_thresholds(profile: str, path: Path = PUBLISHED) -> dict | None:
    """thresholds[profile] of verify/published.json; None when the profile has none (a custom YAML)."""
    if not path.is_file():
        return None
    found = json.loads(path.read_text()).get("thresholds", {}).get(profile)
    return dict(found) if found is not None else None


def choose_thresholds(profile: str, model: str, data: str, user: dict | None,
                      path: Path = PUBLISHED) -> dict:
    """The manifest's `thresholds`: the user's (--threshold), else the profile's published ones
    when this run trains the model on the data they were set for; else none, with the reason."""
    if user:
        return {"limits": dict(user), "source": "--threshold", "reason": None}
    published = published_thresholds(profile, path)
    if not published:
        return {"limits": {}, "source": None,
                "reason": f"profile {profile!r} has no published thresholds; pass --threshold METRIC=VALUE"}
    applies = json.loads(path.read_text()).get("applies_to", {}).get(profile, {})
    if applies and (applies.get("model"), applies.get("data")) != (model, data):
        return {"limits": {}, "source": None,
                "reason": f"the {profile} thresholds were set for {applies['model']} on {applies['data']}, "
                          f"this run is {model} on {data}; pass --threshold METRIC=VALUE to judge it"}
    return {"limits": published, "source": f"{path.name}: {profile}", "reason": None}


def verdict(final: dict, thresholds: dict) -> tuple[str, str | None]:
    """(pass | fail | n/a, why) of final metrics against the manifest's `thresholds`."""
    if not thresholds.get("limits"):
        return "n/a", thresholds.get("reason") or "no thresholds"
    if not final:
        return "n/a", "no evaluation ran"
    failures = threshold_failures(final, thresholds["limits"])
    return ("fail", "; ".join(failures)) if failures else ("pass", None)


def threshold_failures(final: dict, limits: dict[str, float]) -> list[str]:
    """Why `final` (summary.json's final metrics) misses `limits`; empty when every one is met."""
    failures = []
    for metric, minimum in limits.items():
        value = final.get(metric)
        if value is None:
            failures.append(f"final {metric} missing from summary.json")
        elif not value >= minimum:
            failures.append(f"final {metric} {value:.4f} is below the threshold {minimum}")
    return failures
