"""One run directory as a `Run`: a view of what recipe.record.load_record read.

recipe/record.py parses the record; this module only decides that every problem it found is
fatal (a missing summary.json aside: that is an unfinished run). The first one stops the report
with a message naming the file (and line) and what to do, because a report built on a misread
record would be worse than none.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from recipe.record import SUMMARY, RecordProblem, load_record
from report.errors import BadRunRecord

RECIPE_HINT = "a run directory is what `python -m recipe.finetune --output DIR` leaves"


@dataclass
class Run:
    path: Path
    manifest: dict
    summary: dict | None  # None: the run never finished (killed, or still running)
    train_steps: list[dict] = field(default_factory=list)  # the train lines in the record's order (one per step)
    evals: list[dict] = field(default_factory=list)  # the eval lines in the record's order
    label: str = ""
    chart_label: str = ""  # the label plus any warning the charts must carry (set by compare)
    problems: list[str] = field(default_factory=list)  # values the record has but that are unusable

    @property
    def complete(self) -> bool:
        return self.summary is not None and self.summary.get("status") == "complete"

    @property
    def seed(self):
        config = self.manifest.get("config") or {}
        return (config.get("train") or {}).get("seed")

    @property
    def device(self) -> dict:
        return self.manifest.get("device") or {}

    @property
    def device_key(self) -> str:
        """What runs are grouped by when asking whether devices differ: type + model name."""
        dev = self.device
        return f"{dev.get('type', '?')}: {dev.get('name') or 'unknown'}"

    def summary_value(self, *keys):
        """summary[k1][k2]..., or None when the run is incomplete or the key is absent."""
        node = self.summary
        for key in keys:
            if not isinstance(node, dict):
                return None
            node = node.get(key)
        return node

    @property
    def final_accuracy(self):
        return self.summary_value("final", "accuracy")

    @property
    def final_mcc(self):
        return self.summary_value("final", "mcc")

    @property
    def majority_baseline(self):
        return (self.manifest.get("data") or {}).get("majority_baseline")


def _refusal(problem: RecordProblem) -> BadRunRecord:
    """A problem recipe.record found, in the report's words."""
    path = problem.path
    if problem.line is not None:   # one line of metrics.jsonl
        return BadRunRecord(f"{problem}.")
    if problem.kind == "missing":
        return BadRunRecord(f"{path}: no {path.name} — {RECIPE_HINT}.")
    if problem.kind == "json":
        return BadRunRecord(f"{path}: {problem.why}; the file is written atomically by the recipe, so it was "
                            "edited or copied incompletely — re-copy it from the run.")
    if problem.kind == "schema":
        return BadRunRecord(f"{path}: {problem.why.replace('expected', 'this report reads')} "
                            "(docs/run-record.md); re-run the recipe from this kit, or update report/ for the "
                            "new schema.")
    return BadRunRecord(f"{path}: {problem.why}.")


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# Summary values that must be numbers (or null). Anything else is reported and treated as absent,
# so one odd value cannot take the whole report down.
NUMERIC_SUMMARY_KEYS = [
    ("train_seconds",), ("eval_seconds",), ("wall_seconds",), ("train_samples",), ("samples_per_second",),
    ("real_tokens_per_second",), ("padding_fraction",),
    ("memory", "peak_allocated_mb"), ("memory", "peak_reserved_mb"),
    ("memory", "device_used_mb_peak"), ("memory", "device_total_mb"),
    ("final", "accuracy"), ("final", "mcc"), ("final", "eval_loss"), ("final", "epoch"),
]


def sanitize_summary(path: Path, summary: dict) -> list[str]:
    """Replace non-numeric values of numeric keys by None, in place; return what was replaced."""
    problems = []
    for keys in NUMERIC_SUMMARY_KEYS:
        node = summary
        for key in keys[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if not isinstance(node, dict) or node.get(keys[-1]) is None:
            continue
        if not _is_number(node[keys[-1]]):
            problems.append(f"{path}: {'.'.join(keys)} is `{node[keys[-1]]!r}`, not a number; shown as n/a")
            node[keys[-1]] = None
    epochs = summary.get("epoch_seconds")
    if epochs is not None and not (isinstance(epochs, list) and all(_is_number(v) for v in epochs)):
        problems.append(f"{path}: epoch_seconds is `{epochs!r}`, not a list of numbers; shown as n/a")
        summary["epoch_seconds"] = None
    return problems


def _chartable(line: dict) -> dict:
    # Trainer logs NaN/inf loss when training diverges (recorded as null): keep the step, chart a gap.
    return line if _is_number(line.get("loss")) else {**line, "loss": None}


def load_run(path: str | Path) -> Run:
    path = Path(path)
    if not path.is_dir():
        raise BadRunRecord(f"{path}: not a directory — {RECIPE_HINT}.")
    record = load_record(path)
    for problem in record.problems:
        if not (problem.path.name == SUMMARY and problem.kind == "missing"):   # no summary: unfinished
            raise _refusal(problem)
    summary = record.summary
    problems = sanitize_summary(path / SUMMARY, summary) if summary else []
    return Run(path=path, manifest=record.manifest, summary=summary,
               train_steps=[_chartable(line) for line in record.train], evals=record.evals, problems=problems)


def assign_labels(runs: list[Run]) -> None:
    """Shortest unique label per run: the directory name, then with its parents as needed."""
    depth = 1
    while True:
        labels = ["/".join(r.path.resolve().parts[-depth:]) for r in runs]
        if len(set(labels)) == len(labels) or depth > 8:
            break
        depth += 1
    seen: dict[str, int] = {}
    for run, label in zip(runs, labels):
        # The same directory given twice still gets two distinct labels.
        seen[label] = seen.get(label, 0) + 1
        run.label = label if seen[label] == 1 else f"{label} ({seen[label]})"


def load_runs(paths) -> list[Run]:
    runs = [load_run(p) for p in paths]
    assign_labels(runs)
    return runs
