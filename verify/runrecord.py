"""A run record (docs/run-record.md) and the thresholds (verify/published.json), as verify judges them.

recipe.record.load_record reads the record; every problem it found is a failure here (in
completeness_problems), and the rest of the record is judged all the same. Pure functions that
return lists of problems, so that the verify tests stay one-line asserts and the kit's own tests
can call them on hand-made records.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from recipe.record import (
    MANIFEST,
    MANIFEST_SCHEMA,
    PUBLISHED,
    SUMMARY,
    SUMMARY_SCHEMA,
    Record,
    RecordProblem,
    load_record,
    published_thresholds,
    threshold_failures,
)


def thresholds(profile: str, path: Path = PUBLISHED) -> dict[str, float]:
    found = published_thresholds(profile, path)
    if found is None:
        raise KeyError(f"{path} has no thresholds for profile {profile!r}")
    return found


@dataclass
class RunRecord:
    directory: Path
    manifest: dict | None
    summary: dict | None
    train: list[dict]
    evals: list[dict]
    problems: list[str]  # what recipe.record found wrong while loading: files, then metrics lines

    @classmethod
    def load(cls, directory: Path) -> RunRecord:
        directory = Path(directory)
        record = load_record(directory)   # recipe.record owns the record's format
        return cls(directory, record.manifest, record.summary, record.train, record.evals,
                   [_in_words(problem, record) for problem in record.problems])

    @property
    def profile(self) -> str | None:
        return (self.manifest or {}).get("profile")

    @property
    def epochs(self) -> int | None:
        config = (self.manifest or {}).get("config", {})
        # the recipe nests TrainingArguments under "train"; accept a flat config too
        value = (config.get("train") or {}).get("num_train_epochs", config.get("num_train_epochs"))
        return math.ceil(float(value)) if value is not None else None

    @property
    def final(self) -> dict:
        return (self.summary or {}).get("final") or {}


def _in_words(problem: RecordProblem, record: Record) -> str:
    """A problem recipe.record found, as verify has always said it."""
    if problem.kind == "missing":
        return f"{problem.path} missing"
    if problem.kind == "schema":
        name, expected, found = {MANIFEST: ("manifest", MANIFEST_SCHEMA, record.manifest),
                                 SUMMARY: ("summary", SUMMARY_SCHEMA, record.summary)}[problem.path.name]
        return f"{name} schema {found.get('schema')!r} is not {expected}"
    return str(problem)   # `path: why`, or `path:line: why` for a line of metrics.jsonl


def completeness_problems(record: RunRecord) -> list[str]:
    problems = list(record.problems)   # wrong schemas among them
    if record.summary is not None:
        if record.summary.get("status") != "complete":
            problems.append(f"summary status is {record.summary.get('status')!r}, not 'complete'")
        for key in ("train_seconds", "samples_per_second", "memory", "final", "evals"):
            if record.summary.get(key) is None:
                problems.append(f"summary.json has no {key}")
    if record.manifest is not None:
        for key in ("versions", "device", "config", "config_sha256", "data"):
            if not record.manifest.get(key):
                problems.append(f"manifest.json has no {key}")
    if not record.train:
        problems.append("metrics.jsonl has no train lines")
    return problems


def loss_problems(record: RunRecord) -> list[str]:
    losses = [row.get("loss") for row in record.train]
    bad = [i for i, loss in enumerate(losses) if not isinstance(loss, (int, float)) or not math.isfinite(loss)]
    if bad:
        return [f"{len(bad)} train line(s) with a non-finite loss, first at step {record.train[bad[0]].get('step')}"]
    if len(losses) < 2:
        return [f"only {len(losses)} logged loss value(s): cannot tell whether it went down"]
    window = max(1, len(losses) // 10)  # compare the first and last tenth: single steps are noisy
    start, end = sum(losses[:window]) / window, sum(losses[-window:]) / window
    if not end < start:
        return [f"loss did not go down: mean of the first {window} step(s) {start:.4f}, of the last {end:.4f}"]
    return []


def eval_problems(record: RunRecord) -> list[str]:
    epochs = record.epochs
    if epochs is None:
        return ["manifest config has no num_train_epochs: cannot tell whether eval ran every epoch"]
    seen = sorted({round(float(row.get("epoch", -1))) for row in record.evals})
    wanted = list(range(1, epochs + 1))
    if seen != wanted:
        return [f"evaluations at epochs {seen}, expected one per epoch {wanted}"]
    missing = [row.get("epoch") for row in record.evals if row.get("accuracy") is None]
    return [f"eval at epoch {missing[0]} has no accuracy"] if missing else []


def threshold_problems(record: RunRecord, limits: dict[str, float]) -> list[str]:
    return threshold_failures(record.final, limits)
