"""Put run records side by side: report.md + report.html + PNG charts, and a console summary.

    python -m report.compare RUN [RUN ...] --out DIR [--spread DIR ...] [--window W] [--format text|json]
                             [--record]

The report opens with the headline (report/headline.py): the tutorial's three claims and
accuracy parity, each with a verdict. The first RUN is the reference: every other run is checked
against it for comparability (see report/comparability.py) and its training time is the 100 % the
others are measured by. A RUN may be a `make stability` directory (its seed-*/ runs are taken);
files among the RUNs (the seed-N.log a shell glob picks up) are skipped with a warning.
--spread names repeated runs (stability directories or run directories; each argument one group)
whose spread the headline's verdicts must beat; those that repeat the step-parity baseline also
measure its noise (report/parity_standard.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

from report import charts, comparability, curves, headline, parity, parity_standard, seeds
from report.document import (
    Bullets,
    Heading,
    Image,
    Paragraph,
    Table,
    console_table,
    fmt,
    text,
    to_html,
    to_markdown,
)
from report.errors import BadOutput, ReportError
from report.records import Run, load_run, load_runs

SHA_SHOWN = 12  # enough hex digits to tell hashes apart in a table


def _short(sha) -> str:
    return text(sha[:SHA_SHOWN] if isinstance(sha, str) else sha)


def _last_loss(run: Run):
    losses = [row["loss"] for row in run.train_steps if row.get("loss") is not None]
    return losses[-1] if losses else None


def _relative(value, reference):
    if value is None or not reference:
        return None
    return 100.0 * (value - reference) / reference


def _signed(value, decimals: int) -> str:
    return "n/a" if value is None else f"{value:+.{decimals}f} %"


def problem_blocks(runs: list[Run]) -> list:
    problems = [p for r in runs for p in r.problems]
    if not problems:
        return []
    return [Paragraph("**Record problems** (values that are not numbers are shown as n/a):"), Bullets(problems)]


def provenance_blocks(runs: list[Run], flags) -> list:
    where = Table(
        ["run", "device.type", "device.name", "device.count", "device.driver", "device.cuda", "device.cann",
         "host", "started_at"],
        [[r.label, text(r.device.get("type")), text(r.device.get("name")), text(r.device.get("count")),
          text(r.device.get("driver")), text(r.device.get("cuda")), text(r.device.get("cann")),
          text((r.manifest.get("host") or {}).get("hostname")), text(r.manifest.get("started_at"))]
         for r in runs],
    )
    version_keys = ["python", "torch", "torch_npu", "transformers", "openmind", "datasets", "accelerate"]
    versions = Table(
        ["run", "api", *version_keys],
        [[r.label, text(r.manifest.get("api")),
          *[text((r.manifest.get("versions") or {}).get(k)) for k in version_keys]] for r in runs],
    )
    config = Table(
        ["run", "profile", "seed", "effective_batch", "world_size", "precision (requested → effective)",
         "threads (intra, inter)", "config_sha256", "comparable config sha256", "data.sha256", "comparable"],
        [[r.label, text(r.manifest.get("profile")), text(r.seed), text(r.manifest.get("effective_batch")),
          text(r.manifest.get("world_size")), comparability.precision_shown(r),
          "n/a" if comparability.threads(r) is None else "{}, {}".format(*comparability.threads(r)),
          _short(r.manifest.get("config_sha256")),
          _short(comparability.comparable_config_sha256(r.manifest.get("config") or {})),
          _short((r.manifest.get("data") or {}).get("sha256")),
          "yes (reference)" if r is runs[0] and flags[r.label].comparable
          else ("yes" if flags[r.label].comparable else "**NOT comparable**")]
         for r in runs],
    )
    return [
        Heading("Where, with what, and which config"),
        Paragraph("Each run as its manifest.json records it."),
        where, versions, config,
        Paragraph("`comparable config sha256` is the sha256 of the manifest config without these keys "
                  "(they change where or how a run is recorded, or vary on purpose across seeds, "
                  "not what is trained): "
                  + ", ".join(f"`{k}`" for k in sorted(comparability.IGNORED_CONFIG_KEYS)) + "."),
    ]


def comparability_blocks(runs: list[Run], flags) -> list:
    bad = [r for r in runs if not flags[r.label].comparable]
    notes = [f"`{r.label}`: {note}" for r in runs for note in flags[r.label].notes]
    noted = [Paragraph("Noted (the runs stay comparable):"), Bullets(notes)] if notes else []
    if not bad:
        return [Paragraph(f"All {len(runs)} runs are comparable with the reference `{runs[0].label}`: "
                          "same config (ignoring the keys listed below), same data sha256, same effective batch, "
                          "same effective precision."), *noted]
    items = [f"**NOT comparable**: `{r.label}` — " + "; ".join(flags[r.label].reasons) for r in bad]
    return [Paragraph(f"**Warning**: {len(bad)} of {len(runs)} runs are NOT comparable with the reference "
                      f"`{runs[0].label}`. They are still shown; do not read their differences as device "
                      "differences."), Bullets(items), *noted]


def time_blocks(runs: list[Run], chart: str) -> list:
    n_epochs = max((len(r.summary_value("epoch_seconds") or []) for r in runs), default=0)
    reference = runs[0].summary_value("train_seconds")
    rows = []
    for run in runs:
        epochs = run.summary_value("epoch_seconds") or []
        rows.append([run.label, fmt(run.summary_value("train_seconds"), 2),
                     _signed(_relative(run.summary_value("train_seconds"), reference), 1),
                     fmt(run.summary_value("eval_seconds"), 2), fmt(run.summary_value("wall_seconds"), 2),
                     *[fmt(epochs[e] if e < len(epochs) else None, 2) for e in range(n_epochs)]])
    suspects = [f"**suspect epoch**: `{run.label}` epoch {epoch} took {seconds:.2f} s, over "
                f"{headline.SUSPECT_EPOCH_FACTOR:g}× the run's median epoch ({median:.2f} s): the machine was "
                "probably busy with something else; rerun before reading its time as the device's"
                for run in runs for epoch, seconds, median in headline.suspect_epochs(run)]
    return [
        Heading("Training time"),
        Paragraph("Seconds from summary.json. `train_seconds vs first` is "
                  "(train_seconds − first run's) / first run's × 100 (negative: faster than the first run)."),
        Table(["run", "train_seconds", "train_seconds vs first", "eval_seconds", "wall_seconds",
               *[f"epoch_seconds[{e + 1}]" for e in range(n_epochs)]], rows),
        *([Bullets(suspects)] if suspects else []),
        Image(chart, "training time, total and per epoch"),
    ]


def memory_blocks(runs: list[Run], chart: str) -> list:
    keys = ["peak_allocated_mb", "peak_reserved_mb", "device_used_mb_peak", "device_baseline_mb",
            "device_used_mb_over_baseline", "device_total_mb", "host_rss_mb_peak"]
    rows = [[r.label, *[fmt(headline.number(r.summary_value("memory", k)), 1) for k in keys],
             text(r.summary_value("memory", "source")), text(r.summary_value("memory", "device_source"))]
            for r in runs]
    return [
        Heading("Peak memory"),
        Paragraph("MB from summary.json `memory`. Allocator figures come from torch (what tensors used and what "
                  "the caching allocator held; `peak_reserved_mb` is what the headline's memory claim judges, the "
                  "same quantity on an NPU and a GPU); device-level figures from nvidia-smi / npu-smi samples (what "
                  "the whole device had in use, as the tutorial watched it; `device_baseline_mb` is the reading "
                  "before the run touched the card, which on a 910B already holds ~3 GB, and "
                  "`device_used_mb_over_baseline` the peak above it); `host_rss_mb_peak` is the training "
                  "process's peak resident memory on the host — the only memory a CPU run has, and what the chart "
                  "shows for it, labelled host. n/a: the record has no value."),
        Table(["run", *keys, "source", "device_source"], rows),
        Image(chart, "peak memory: allocator, device-level, host where no device"),
    ]


def loss_blocks(runs: list[Run], chart: str, window: int, chosen: str) -> list:
    rows = []
    for run in runs:
        osc = curves.oscillation(run.train_steps, window)
        rows.append([run.label, str(len(run.train_steps)), fmt(_last_loss(run), 4),
                     fmt(osc["step_diff_std"], 4), fmt(osc["residual_std"], 4), str(osc["points"])])
    return [
        Heading("Loss curves and oscillation"),
        Paragraph(f"Smoothing window W = {curves.odd_window(window)} logged steps ({chosen}). Definitions:"),
        Bullets(curves.DEFINITIONS),
        Table(["run", "logged steps", "last logged loss", "step-to-step oscillation", "residual oscillation",
               "last-epoch points"], rows),
        Image(chart, "training loss per step, raw and smoothed"),
    ]


def eval_blocks(runs: list[Run], chart: str) -> list:
    per_epoch = [[r.label, fmt(e.get("epoch"), 2), str(e["step"]), fmt(e.get("accuracy"), 4),
                  fmt(e.get("mcc"), 4), fmt(e.get("eval_loss"), 4)] for r in runs for e in r.evals]
    final = [[r.label, fmt(r.final_accuracy, 4), fmt(r.final_mcc, 4), fmt(r.majority_baseline, 4),
              text(r.summary_value("verdict")), text(seeds.failure_reason(r) or "no")] for r in runs]
    return [
        Heading("Evaluation"),
        Paragraph("Per-epoch evaluations from metrics.jsonl (`eval` lines); final values from summary.json. "
                  "A run failed when it did not finish, its final accuracy is at or under the majority-class "
                  "baseline of its validation data (manifest `data.majority_baseline`), or its MCC ≤ 0."),
        Table(["run", "epoch", "step", "accuracy", "mcc", "eval_loss"], per_epoch),
        Table(["run", "final.accuracy", "final.mcc", "majority_baseline", "verdict", "failed"], final),
        Image(chart, "eval accuracy and MCC per epoch"),
    ]


def throughput_blocks(runs: list[Run], chart: str) -> list:
    rows = [[r.label, text(r.summary_value("train_samples")), fmt(r.summary_value("samples_per_second"), 1),
             fmt(r.summary_value("real_tokens_per_second"), 1), fmt(r.summary_value("padding_fraction"), 4)]
            for r in runs]
    return [
        Heading("Throughput"),
        Paragraph("From summary.json: training samples per second, and real (non-padding) tokens per second — "
                  "with padding to a fixed length the second is the honest measure of useful work."),
        Table(["run", "train_samples", "samples_per_second", "real_tokens_per_second", "padding_fraction"], rows),
        Image(chart, "throughput"),
    ]


def seed_blocks(runs: list[Run], flags) -> list:
    comparable = [r for r in runs if flags[r.label].comparable]
    groups: dict[str, list[Run]] = {}
    for run in comparable:
        groups.setdefault(run.device_key, []).append(run)
    rows = []
    for device, members in sorted(groups.items()):
        s = seeds.summarize(members)
        rows.append([device, str(s.runs), str(s.finished), str(s.failed), fmt(s.accuracy_mean, 4),
                     fmt(s.accuracy_std, 4), fmt(s.mcc_mean, 4), fmt(s.mcc_std, 4)])
    blocks = [
        Heading("Seeds and devices"),
        Paragraph("Comparable runs grouped by device (type: name). Mean and sample standard deviation (ddof=1) of "
                  "the final accuracy and MCC over finished runs; std is n/a with fewer than 2 runs."),
        Table(["device", "runs", "finished", "failed", "accuracy mean", "accuracy std", "mcc mean", "mcc std"], rows),
    ]
    tests = seeds.device_tests(comparable)
    if tests:
        blocks += [
            Paragraph(f"Do devices differ beyond seed noise? Welch's t-test (unequal variances, "
                      f"scipy.stats.ttest_ind(equal_var=False)) on the per-seed final MCC; differ when "
                      f"p < {seeds.ALPHA}; needs ≥ {seeds.MIN_SEEDS_FOR_TEST} finished seeds per device."),
            Table(["device A", "device B", "n A", "n B", "t", "p", "verdict"],
                  [[t.device_a, t.device_b, str(t.n_a), str(t.n_b), fmt(t.t, 3), fmt(t.p, 4), t.verdict]
                   for t in tests]),
        ]
    else:
        blocks.append(Paragraph("Only one device among the comparable runs: no device test."))
    return blocks


def pair_blocks(head: headline.Headline, steps: parity.StepParity | None, chart_files: dict[str, str],
                window: int, standard: parity_standard.Standard | None = None) -> list:
    """Parity and trace need one run per side: the first run of each headline side."""
    if head.side_a is None:
        return []
    a, b = head.side_a.runs[0], head.side_b.runs[0]
    parity_row = next((c for c in head.claims if c.key == "parity"), None)
    return [*parity.parity_blocks(a, b, steps, window, chart_files["parity"], parity_row, standard),
            *parity.trace_blocks(a, b)]


def build_document(runs: list[Run], flags, chart_files: dict[str, str], window: int, head: headline.Headline,
                   chosen: str = "", steps: parity.StepParity | None = None, standard=None) -> list:
    generated = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
    return [
        Heading("Run comparison", 1),
        *headline.blocks(head),
        Heading("Runs"),
        Paragraph(f"Generated {generated} by `python -m report.compare` from {len(runs)} run records; "
                  f"reference (first) run: `{runs[0].label}`. Every number below is read from, or computed "
                  "from, the run's manifest.json, metrics.jsonl and summary.json (docs/run-record.md)."),
        Bullets([f"`{r.label}`: {r.path}" for r in runs]),
        *comparability_blocks(runs, flags),
        *problem_blocks(runs),
        *provenance_blocks(runs, flags),
        *time_blocks(runs, chart_files["time"]),
        *memory_blocks(runs, chart_files["memory"]),
        *loss_blocks(runs, chart_files["loss"], window, chosen),
        *eval_blocks(runs, chart_files["eval"]),
        *throughput_blocks(runs, chart_files["throughput"]),
        *seed_blocks(runs, flags),
        *pair_blocks(head, steps, chart_files, window, standard),
        *parity.energy_blocks(runs, chart_files["energy"]),
    ]


def console_summary(runs: list[Run], flags, window: int) -> str:
    headers = ["run", "device", "ok?", "train s", "alloc MB", "smi MB", "acc", "MCC", "osc", "samples/s"]
    rows = []
    for r in runs:
        osc = curves.oscillation(r.train_steps, window)["step_diff_std"]
        rows.append([r.label, r.device_key, "yes" if flags[r.label].comparable else "NO",
                     fmt(r.summary_value("train_seconds"), 1), fmt(r.summary_value("memory", "peak_allocated_mb"), 0),
                     fmt(r.summary_value("memory", "device_used_mb_peak"), 0), fmt(r.final_accuracy, 4),
                     fmt(r.final_mcc, 4), fmt(osc, 4), fmt(r.summary_value("samples_per_second"), 1)])
    legend = "ok? = comparable with the first run; osc = std of step-to-step loss change, last epoch"
    return console_table(headers, rows) + "\n" + legend


def choose_window(runs: list[Run], window: int | None) -> tuple[int, str]:
    """The loss smoothing window and how it was chosen (one W for all runs, so their residuals compare)."""
    if window is not None:
        return curves.odd_window(window), "set with --window"
    points = min((len(r.train_steps) for r in runs if r.train_steps), default=0)
    return curves.auto_window(points), (f"chosen from the fewest logged points among the runs, {points}: the largest "
                                        f"odd number <= points / {curves.POINTS_PER_WINDOW}, between 1 and "
                                        f"{curves.DEFAULT_WINDOW}")


def write_report(runs: list[Run], flags, out: Path, window: int, head: headline.Headline, chosen: str = "",
                 rtol: float = parity.RTOL, spread=()) -> Path:
    try:
        out.mkdir(parents=True, exist_ok=True)
        for run in runs:
            run.chart_label = run.label if flags[run.label].comparable else f"{run.label} (NOT comparable)"
        files = charts.draw_all(runs, out, window)
        steps = None
        if head.side_a is not None:
            a, b = head.side_a.runs[0], head.side_b.runs[0]
            steps = parity.step_parity(a, b, rtol=rtol)
            files["parity"] = charts.parity_chart(steps, a, b, out / "parity.png")
        standard = parity_standard.for_pair(head, spread)
        blocks = build_document(runs, flags, {k: p.name for k, p in files.items()}, window, head, chosen, steps,
                                standard)
        (out / "report.md").write_text(to_markdown(blocks), encoding="utf-8")
        (out / "report.html").write_text(to_html(blocks, "Run comparison"), encoding="utf-8")
        (out / "headline.json").write_text(json.dumps(parity_standard.with_json(head.as_json(), steps, standard), indent=2) + "\n",
                                           encoding="utf-8")
    except OSError as exc:
        raise BadOutput(f"{out}: cannot write the report ({exc.strerror}); pick a writable --out / OUT.") from None
    return out / "report.md"


def expand_runs(paths) -> list[Path]:
    """Run directories from the command line: a `make stability` directory stands for its seed-*/ runs;
    a file (the seed-N.log beside each seed that `seed-*` also matches) is skipped with a warning."""
    out = []
    for raw in paths:
        path = Path(raw)
        if path.is_file():
            print(f"warning: {path}: a file, not a run directory; skipped", file=sys.stderr)
        elif path.is_dir() and not (path / "manifest.json").exists() and any(path.glob("seed-*/manifest.json")):
            out += sorted((p.parent for p in path.glob("seed-*/manifest.json")),
                          key=lambda p: (len(p.name), p.name))
        else:
            out.append(path)
    return out


def spread_groups(paths) -> list[headline.Group]:
    """One group per argument: a stability directory, or run directories joined by commas."""
    groups = []
    for raw in paths or []:
        members = expand_runs(raw.split(","))
        groups.append(headline.Group(f"--spread {raw}", [load_run(p) for p in members]))
    return groups


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m report.compare", description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", metavar="RUN",
                        help="run directories or stability directories (the first run is the reference)")
    parser.add_argument("--out", required=True, type=Path, help="report directory to write")
    parser.add_argument("--spread", nargs="+", default=[], metavar="DIR",
                        help="repeated runs measuring run-to-run/seed spread, one group per DIR: a stability "
                             "directory (its seed-*/ runs) or run directories joined by commas (run1,run2)")
    parser.add_argument("--window", type=int, default=None,
                        help="loss smoothing window in logged steps (odd); default: chosen from the number of "
                             "logged points")
    parser.add_argument("--parity-rtol", type=float, default=parity.RTOL,
                        help=f"step parity: relative loss tolerance per step (default {parity.RTOL:g})")
    parser.add_argument("--format", choices=["text", "json"], default="text",
                        help="console summary: text tables, or the headline as JSON (also written to "
                             "OUT/headline.json)")
    parser.add_argument("--record", action="store_true",
                        help="also append the finished runs to results/measured.json and refresh results/published.md")
    parser.add_argument("--measured", type=Path, default=None, help="measured-runs file for --record")
    parser.add_argument("--card", type=Path, default=None, help="card to refresh for --record")
    args = parser.parse_args(argv)
    if args.window is not None and args.window < 1:
        parser.error(f"--window must be >= 1, got {args.window}")
    if not args.parity_rtol > 0:
        parser.error(f"--parity-rtol must be > 0, got {args.parity_rtol}")
    try:
        runs = load_runs(expand_runs(args.runs))
        flags = comparability.check_all(runs)
        window, chosen = choose_window(runs, args.window)
        spread = spread_groups(args.spread)
        head = headline.build(runs, flags, window, spread)
        report = write_report(runs, flags, args.out, window, head, chosen, args.parity_rtol, spread)
        for problem in (p for r in runs for p in r.problems):
            print(f"warning: {problem}", file=sys.stderr)
        if args.format == "json":
            print((report.parent / "headline.json").read_text(encoding="utf-8"), end="")
        else:
            print(headline.console(head) + "\n")
            print(console_summary(runs, flags, window))
            print(f"\nreport: {report}  (and {report.with_suffix('.html').name}, headline.json, PNG charts)")
        if args.record:
            from report import card
            added = card.record_runs(runs, measured=args.measured, card_path=args.card)
            print(f"recorded {added} new run(s) in {args.measured or card.MEASURED}",
                  file=sys.stderr if args.format == "json" else sys.stdout)
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
