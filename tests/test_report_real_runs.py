"""End to end on REAL runs: the smoke recipe trained on this CPU (two seeds, plus one crippled run
with learning rate 0), `report.stability` over them, then `report.compare` on all three.

The expected values are read straight from the run record files here, independently of report/,
and every figure in every table of report.md is checked against them.
"""

from __future__ import annotations

import json
import math
import re
import statistics
import struct
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
# Learning rate 0: the model never moves from its random initialisation. One epoch is enough for
# that, and a run with fewer epochs also checks how the report shows epochs one run lacks.
CRIPPLE = ("--set", "train.learning_rate=0", "--set", "train.num_train_epochs=1")
SLEEP_PER_STEP = 0.12  # x 563 smoke steps: about 68 s more, beyond two seeds' spread even on a loaded 2-core box


def _cli(module: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=900, check=False)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Three real smoke runs made through `report.stability`, and a comparison of them."""
    base = tmp_path_factory.mktemp("real")
    stable = _cli("report.stability", "--profile", "smoke", "--seeds", "2", "--first-seed", "42",
                  "--out", str(base / "stable"), "--device", "cpu")
    crippled = _cli("report.stability", "--profile", "smoke", "--seeds", "1", "--first-seed", "42",
                    "--out", str(base / "crippled"), "--device", "cpu", *CRIPPLE)
    # seed 42 again, slowed by a sleep after every optimizer step (tests/fakes/slow_recipe.py, test-only)
    slowed = subprocess.run([sys.executable, str(ROOT / "tests" / "fakes" / "slow_recipe.py"), str(SLEEP_PER_STEP),
                             "--profile", "smoke", "--seed", "42", "--device", "cpu", "--no-swanlab",
                             "--output", str(base / "slowed")], cwd=ROOT, capture_output=True, text=True,
                            timeout=900, check=False)
    dirs = [base / "stable" / "seed-42", base / "stable" / "seed-43", base / "crippled" / "seed-42"]
    compared = _cli("report.compare", *map(str, dirs), "--out", str(base / "report"), "--window", "5")
    spread = ("--spread", str(base / "stable"), "--format", "json")
    headlines = {
        "slowed B": _cli("report.compare", str(dirs[0]), str(base / "slowed"), "--out", str(base / "r1"), *spread),
        "slowed A": _cli("report.compare", str(base / "slowed"), str(dirs[0]), "--out", str(base / "r2"), *spread),
        "seeds": _cli("report.compare", str(dirs[0]), str(dirs[1]), "--out", str(base / "r3"), *spread),
    }
    return {"base": base, "dirs": dirs, "stable": stable, "crippled": crippled, "compare": compared,
            "report": base / "report", "slowed": slowed, "headlines": headlines}


def _record(run_dir: Path) -> dict:
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return {"manifest": json.loads((run_dir / "manifest.json").read_text()),
            "summary": json.loads((run_dir / "summary.json").read_text()),
            "train": {line["step"]: line for line in lines if line["kind"] == "train"},
            "eval": {line["step"]: line for line in lines if line["kind"] == "eval"}}


def _failed(rec: dict) -> bool:
    final = rec["summary"]["final"]
    return final["accuracy"] <= rec["manifest"]["data"]["majority_baseline"] or final["mcc"] <= 0


# -- the stability command ---------------------------------------------------------------------------

def test_stability_runs_each_seed_and_summarises(runs):
    assert runs["stable"].returncode == 0, runs["stable"].stdout + runs["stable"].stderr
    result = json.loads((runs["base"] / "stable" / "stability.json").read_text())
    records = [_record(d) for d in runs["dirs"][:2]]
    assert [r["manifest"]["config"]["train"]["seed"] for r in records] == [42, 43]
    mccs = [r["summary"]["final"]["mcc"] for r in records]
    accs = [r["summary"]["final"]["accuracy"] for r in records]
    assert result["runs"] == 2 and result["finished"] == 2
    assert result["mcc_mean"] == pytest.approx(statistics.fmean(mccs))
    assert result["mcc_std"] == pytest.approx(statistics.stdev(mccs))
    assert result["accuracy_mean"] == pytest.approx(statistics.fmean(accs))
    assert result["failed"] == sum(_failed(r) for r in records)
    assert result["failed"] < 2, "the smoke recipe should learn: the failed count must be able to say 'no'"
    assert f"failed {result['failed']}/2" in runs["stable"].stdout


def test_stability_counts_the_crippled_run_as_failed(runs):
    assert runs["crippled"].returncode == 0, runs["crippled"].stdout + runs["crippled"].stderr
    result = json.loads((runs["base"] / "crippled" / "stability.json").read_text())
    rec = _record(runs["dirs"][2])
    assert rec["manifest"]["config"]["train"]["learning_rate"] == 0
    assert result["failed"] == 1 and result["runs_detail"][0]["failed"] is True
    assert "failed 1/1" in runs["crippled"].stdout
    assert "| 42 |" in (runs["base"] / "crippled" / "stability.md").read_text()


# -- the comparison ----------------------------------------------------------------------------------

def _cells(row: str) -> list[str]:
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", row)[1:-1]]


def _tables(markdown: str) -> list[tuple[list[str], list[list[str]]]]:
    tables, lines = [], markdown.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("|") and i + 1 < len(lines) and lines[i + 1].startswith("|---"):
            rows = []
            for body in lines[i + 2:]:
                if not body.startswith("|"):
                    break
                rows.append(_cells(body))
            tables.append((_cells(line), rows))
    return tables


def _matches(cell: str, expected) -> bool:
    """A cell shows `expected` when it is that value rounded to the cell's own decimals."""
    if expected is None:
        return cell == "n/a"
    if isinstance(expected, bool) or not isinstance(expected, (int, float)):
        return cell == str(expected)
    number = cell.replace(" %", "")
    decimals = len(number.split(".")[1]) if "." in number else 0
    return abs(float(number) - expected) <= 0.5 * 10 ** -decimals + 1e-9


def _oscillation(rec: dict, window: int) -> tuple:
    """The report's stated definitions, re-implemented here from the text."""
    rows = [rec["train"][s] for s in sorted(rec["train"])]
    losses, epochs = [r["loss"] for r in rows], [r["epoch"] for r in rows]
    half = window // 2
    smooth = [statistics.fmean(losses[max(0, i - half): i + half + 1]) for i in range(len(losses))]
    last = [e > math.ceil(max(epochs)) - 1 for e in epochs]
    diffs = [losses[i + 1] - losses[i] for i in range(len(losses) - 1) if last[i] and last[i + 1]]
    resid = [loss - s for loss, s, keep in zip(losses, smooth, last) if keep]
    return statistics.pstdev(diffs), statistics.pstdev(resid), len(resid)


def test_compare_succeeds_and_prints_a_compact_table(runs):
    out = runs["compare"]
    assert out.returncode == 0, out.stdout + out.stderr
    headline, table = (part.splitlines() for part in out.stdout.split("\n\nreport:")[0].split("\n\n"))
    assert len(table) == 2 + 3 + 1 and all(len(line) <= 120 for line in table)
    assert headline[0].split() == ["claim", "A", "B", "B", "-", "A", "(B", "-", "A)/A", "verdict"]
    assert [line.split("  ")[0] for line in headline[2:6]] == ["faster", "memory about the same", "oscillates more",
                                                               "accuracy/MCC parity"]
    for run_dir in runs["dirs"]:
        rec = _record(run_dir)
        label = f"{run_dir.parent.name}/{run_dir.name}"
        row = next(line for line in table if line.startswith(label))
        assert f"{rec['summary']['final']['mcc']:.4f}" in row


# report.md column -> where the figure lives in the run record
RECORD_FIELDS = {
    **{f"device.{k}": ("manifest", "device", k) for k in ("type", "name", "count", "driver", "cuda", "cann")},
    "host": ("manifest", "host", "hostname"), "started_at": ("manifest", "started_at"), "api": ("manifest", "api"),
    **{k: ("manifest", "versions", k)
       for k in ("python", "torch", "torch_npu", "transformers", "openmind", "datasets", "accelerate")},
    "profile": ("manifest", "profile"), "seed": ("manifest", "config", "train", "seed"),
    "effective_batch": ("manifest", "effective_batch"), "world_size": ("manifest", "world_size"),
    "majority_baseline": ("manifest", "data", "majority_baseline"),
    **{k: ("summary", k) for k in ("train_seconds", "eval_seconds", "wall_seconds", "verdict", "train_samples",
                                   "samples_per_second", "real_tokens_per_second", "padding_fraction")},
    **{f"epoch_seconds[{e}]": ("summary", "epoch_seconds", e - 1) for e in (1, 2, 3)},
    **{k: ("summary", "memory", k) for k in ("peak_allocated_mb", "peak_reserved_mb", "device_used_mb_peak",
                                             "device_baseline_mb", "device_used_mb_over_baseline",
                                             "device_total_mb", "host_rss_mb_peak", "source", "device_source")},
    "final.accuracy": ("summary", "final", "accuracy"), "final.mcc": ("summary", "final", "mcc"),
}


# Tables of fields that runs from an older recipe lack (n/a), each with its own column -> record path.
OPTIONAL_TABLES = {
    "train_wh": {**{k: ("summary", "energy", k) for k in ("source", "train_wh", "eval_wh", "mean_power_w",
                                                          "peak_power_w", "samples_per_joule", "interval_s")}},
    "traced_wall_ms": {"traced steps": ("summary", "trace", "steps"),
                       "traced_wall_ms": ("summary", "trace", "traced_wall_ms"),
                       "outside_kernels_share": ("summary", "trace", "outside_kernels_share"),
                       "time basis": ("summary", "trace", "time_basis")},
}


def _dig(rec: dict, path: tuple):
    for key in path:
        if isinstance(rec, list) and key >= len(rec):
            return None  # e.g. epoch_seconds[3] of a one-epoch run: the report must say n/a
        if rec is None or (isinstance(rec, dict) and key not in rec):
            return None  # a field absent or null (`trace` without --trace N): the report must say n/a
        rec = rec[key]
    return rec


def test_every_figure_in_the_report_equals_the_run_records(runs):
    recs = {f"{d.parent.name}/{d.name}": _record(d) for d in runs["dirs"]}
    first_seconds = recs["stable/seed-42"]["summary"]["train_seconds"]
    window = 5
    derived = {
        "config_sha256": lambda r: r["manifest"]["config_sha256"][:12],
        "data.sha256": lambda r: r["manifest"]["data"]["sha256"][:12],
        "train_seconds vs first": lambda r: 100 * (r["summary"]["train_seconds"] - first_seconds) / first_seconds,
        "logged steps": lambda r: len(r["train"]),
        "last logged loss": lambda r: r["train"][max(r["train"])]["loss"],
        "step-to-step oscillation": lambda r: _oscillation(r, window)[0],
        "residual oscillation": lambda r: _oscillation(r, window)[1],
        "last-epoch points": lambda r: _oscillation(r, window)[2],
    }

    def expected(header: str, rec: dict):
        return _dig(rec, RECORD_FIELDS[header]) if header in RECORD_FIELDS else derived[header](rec)
    # Columns checked another way below (they are judgements, not figures from one record).
    judged = {"comparable config sha256", "comparable", "failed", "precision (requested → effective)",
              "threads (intra, inter)", "why n/a", "trace file"}
    # Checked by test_headline_figures_equal_the_run_records; '#': the side-by-side trace operators;
    # 'criterion': the step-parity standard (tests/test_report_parity_standard.py).
    other_tests = {"claim (tutorial)", "#", "matched steps", "criterion"}
    per_eval = {"epoch", "step", "accuracy", "mcc", "eval_loss"}
    text = (runs["report"] / "report.md").read_text()
    tables = _tables(text)
    checked = 0
    for headers, rows in tables:
        if headers[0] in other_tests:
            continue
        optional = next((fields for key, fields in OPTIONAL_TABLES.items() if key in headers), None)
        for row in rows:
            cells = dict(zip(headers, row))
            if optional is not None:
                for header, cell in cells.items():
                    if header != "run" and header not in judged:
                        assert _matches(cell, _dig(recs[cells["run"]], optional[header])), (header, cell)
                        checked += 1
                continue
            if headers[0] == "device":  # seed-group table: recompute from the comparable records
                group = [r for label, r in recs.items() if label.startswith("stable/")]
                accs = [r["summary"]["final"]["accuracy"] for r in group]
                mccs = [r["summary"]["final"]["mcc"] for r in group]
                expected = {"runs": 2, "finished": 2, "failed": sum(_failed(r) for r in group),
                            "accuracy mean": statistics.fmean(accs), "accuracy std": statistics.stdev(accs),
                            "mcc mean": statistics.fmean(mccs), "mcc std": statistics.stdev(mccs),
                            "device": f"cpu: {group[0]['manifest']['device']['name']}"}
                for header, cell in cells.items():
                    assert _matches(cell, expected[header]), (header, cell, expected[header])
                    checked += 1
                continue
            rec = recs[cells["run"]]
            if set(headers) >= per_eval:
                line = rec["eval"][int(cells["step"])]
                for header in per_eval:
                    assert _matches(cells[header], line[header]), (cells["run"], header, cells[header])
                    checked += 1
                continue
            for header, cell in cells.items():
                if header == "run" or header in judged:
                    continue
                assert header in RECORD_FIELDS or header in derived, f"report.md column {header!r} is unchecked"
                assert _matches(cell, expected(header, rec)), (cells["run"], header, cell, expected(header, rec))
                checked += 1
    assert checked > 150  # 3 runs x ~50 figures, plus the per-epoch and seed tables


def test_the_crippled_run_is_flagged_not_comparable_but_shown(runs):
    text = (runs["report"] / "report.md").read_text()
    assert "**Warning**: 1 of 3 runs are NOT comparable" in text
    train = _record(runs["dirs"][0])["manifest"]["config"]["train"]
    assert (f"`crippled/seed-42` — config differs (`train.learning_rate: {train['learning_rate']} → 0`; "
            f"`train.num_train_epochs: {train['num_train_epochs']} → 1`)") in text
    config_table = next(rows for headers, rows in _tables(text) if "comparable" in headers)
    verdicts = {row[0]: row[-1] for row in config_table}
    assert verdicts == {"stable/seed-42": "yes (reference)", "stable/seed-43": "yes",
                        "crippled/seed-42": "**NOT comparable**"}
    # shown everywhere all the same, and counted as failed in the final table
    final = next(rows for headers, rows in _tables(text) if "final.mcc" in headers)
    assert [row[0] for row in final] == list(verdicts)
    assert final[2][-1] != "no"
    assert "NOT comparable" in (runs["report"] / "report.html").read_text()
    time_table = next(rows for headers, rows in _tables(text) if "epoch_seconds[3]" in headers)
    assert time_table[2][-2:] == ["n/a", "n/a"]  # the one-epoch run has no epochs 2 and 3


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize("chart", ["time", "memory", "loss", "eval", "throughput"])
def test_charts_are_valid_pngs_of_sensible_size_and_embedded(runs, chart):
    path = runs["report"] / f"{chart}.png"
    width, height = _png_size(path)
    assert 600 <= width <= 2500 and 300 <= height <= 1500, (width, height)
    from PIL import Image

    with Image.open(path) as image:
        image.verify()  # decodes every chunk and its checksum
    assert f"]({chart}.png)" in (runs["report"] / "report.md").read_text()
    assert f'src="{chart}.png"' in (runs["report"] / "report.html").read_text()


def test_make_compare_of_a_stability_seed_glob_sees_only_the_runs(runs, tmp_path):
    """The README's `make compare RUNS="runs/stability-smoke/seed-*"`: the seed logs are in logs/,
    so the shell's glob matches the two run directories and nothing else."""
    stable = runs["base"] / "stable"
    assert sorted(p.name for p in stable.glob("seed-*")) == ["seed-42", "seed-43"]
    assert (stable / "logs" / "seed-42.log").is_file()
    command = (f'make -s --no-print-directory -o .venv/.stamp compare RUNS="{stable}/seed-*" '
               f'OUT={tmp_path / "report"} PY={sys.executable}')
    done = subprocess.run(["bash", "-c", command], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "report" / "report.md").is_file()


# -- the headline ------------------------------------------------------------------------------------

def test_headline_figures_equal_the_run_records(runs):
    text = (runs["report"] / "report.md").read_text()
    assert text.index("## The tutorial's claims, re-measured") < text.index("## Runs")
    headers, rows = next(t for t in _tables(text) if t[0][0] == "claim (tutorial)")
    a, b = _record(runs["dirs"][0]), _record(runs["dirs"][1])  # both CPU: A is the first run, B the second
    table = {row[0]: dict(zip(headers, row)) for row in rows}
    figures = {
        "NPU slightly faster than A100 over 3 epochs": ("time", a["summary"]["train_seconds"],
                                                        b["summary"]["train_seconds"], 2, " s"),
        "device memory about the same": ("memory", a["summary"]["memory"]["host_rss_mb_peak"],
                                         b["summary"]["memory"]["host_rss_mb_peak"], 1, " MB"),
        "A100 loss oscillates more": ("oscillation", _oscillation(a, 5)[0], _oscillation(b, 5)[0], 4, ""),
    }
    for claim, (key, fa, fb, decimals, unit) in figures.items():
        row = table[claim]
        assert row["A"] == f"{fa:.{decimals}f}{unit}" and row["B"] == f"{fb:.{decimals}f}{unit}", (claim, row)
        assert row["B − A"] == f"{fb - fa:+.{decimals}f}{unit}"
        assert row["(B − A) / A"] == f"{100 * (fb - fa) / fa:+.1f} %"
        # the stated rule (docs/compare.md) with one run each: no spread, so no verdict either way
        assert row["verdict"].strip("*") == "cannot tell", (claim, row)
        assert "one run each: no spread measured" in row["why"]
    assert "host" in table["device memory about the same"]["measured as"]
    parity = next(row for claim, row in table.items() if "accuracy" in row["tested here"])
    fa, fb = a["summary"]["final"], b["summary"]["final"]
    assert parity["A"] == f"acc {fa['accuracy']:.4f} / MCC {fa['mcc']:.4f}"
    assert parity["B"] == f"acc {fb['accuracy']:.4f} / MCC {fb['mcc']:.4f}"
    same = fa["accuracy"] == fb["accuracy"] and fa["mcc"] == fb["mcc"]
    assert parity["verdict"].strip("*") == ("holds" if same else "cannot tell")
    assert "Not in the headline (same device as the sides, not a side of its own): `crippled/seed-42`" in text


def test_a_deliberately_slowed_run_loses_the_faster_claim(runs):
    assert runs["slowed"].returncode == 0, runs["slowed"].stderr[-3000:]
    for name, proc in runs["headlines"].items():
        assert proc.returncode == 0, (name, proc.stderr[-3000:])
    heads = {name: json.loads(proc.stdout) for name, proc in runs["headlines"].items()}
    seconds = {d: _record(d)["summary"]["train_seconds"] for d in runs["dirs"][:2]}
    slowed = _record(runs["base"] / "slowed")
    spread = (max(seconds.values()) - min(seconds.values())) / min(seconds.values())
    normal = seconds[runs["dirs"][0]]
    slow = slowed["summary"]["train_seconds"]
    assert (slow - normal) / normal > spread  # the premise, from the records
    time = {name: head["rows"][0] for name, head in heads.items()}
    assert (time["slowed B"]["a"], time["slowed B"]["b"]) == (normal, slow)
    assert time["slowed B"]["verdict"] == "holds"  # run A (not slowed) is faster, beyond the seeds' spread
    # the other way round d = (normal - slow) / slow is smaller in size: on a machine whose load made the
    # seeds' spread larger than that, the rule says "cannot tell"; never that the slowed run is faster
    if (slow - normal) / slow > spread:
        assert time["slowed A"]["verdict"] == "does not hold"
        assert time["slowed A"]["why"].startswith("run B is the faster one")
    else:
        assert time["slowed A"]["verdict"] == "cannot tell", (slow, normal, spread)
    assert f"spread {100 * spread:.1f} %" in time["slowed B"]["why"]
    # two seeds against their own spread cannot be told apart, by construction of the rule
    assert time["seeds"]["verdict"] == "cannot tell"
    # the sleep touches no tensor: same seed, same threads, same final metrics
    assert slowed["summary"]["final"] == _record(runs["dirs"][0])["summary"]["final"]
    assert heads["slowed B"]["rows"][3]["verdict"] == "holds"
