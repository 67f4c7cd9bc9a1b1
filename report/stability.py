"""Seed stability: train one profile over N seeds and count the failed runs.

    python -m report.stability --profile P --seeds N --out DIR [--first-seed 42] [--device D]
                               [--set key=value ...] [--reuse]

Seed S runs `python -m recipe.finetune --profile P --seed S --output DIR/seed-S --no-swanlab`
(its console output goes to DIR/logs/seed-S.log, outside the run directories,
so `make compare RUNS="DIR/seed-*"` sees runs only). Writes DIR/stability.json and DIR/stability.md:
mean ± sample std (ddof=1) of the final accuracy and MCC over the finished runs, and the failed
runs (see report/seeds.py: did not finish, accuracy at or under the majority baseline of its
validation data, or MCC <= 0). The seed directories are ordinary runs: `report.compare` reads them.
An existing seed directory is an error unless --reuse (keep finished seeds, resume unfinished ones).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from recipe.errors import EXIT_NO_RUN_FINISHED
from recipe.record import load_summary
from report import seeds
from report.document import Heading, Paragraph, Table, console_table, fmt, text, to_markdown
from report.errors import BadOutput, BadRunRecord, RecipeMissing, ReportError
from report.records import Run, load_run

ROOT = Path(__file__).resolve().parents[1]
LOG_TAIL_LINES = 15


def recipe_command(profile: str, seed: int, output: Path, device: str | None, overrides: list[str],
                   resume: bool = False) -> list[str]:
    command = [sys.executable, "-m", "recipe.finetune", "--profile", profile, "--seed", str(seed),
               "--output", str(output), "--no-swanlab"]
    if resume:
        command.append("--resume")
    if device:
        command += ["--device", device]
    for override in overrides:
        command += ["--set", override]
    return command


def _recipe_env() -> dict:
    # The recipe is imported from this checkout even when the kit is not pip-installed.
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def _finished(path: Path) -> bool:
    return load_summary(path) is not None   # recipe.record: a readable summary.json with status complete


def train_seed(profile, seed, out: Path, device, overrides, reuse: bool) -> tuple[Path, int | None, float]:
    """Run the recipe for one seed; returns (run dir, recipe exit code or None if reused, seconds)."""
    run_dir = out / f"seed-{seed}"
    if reuse and _finished(run_dir):
        print(f"seed {seed}: reusing the finished run in {run_dir}", flush=True)
        return run_dir, None, 0.0
    # With --reuse an unfinished seed continues from its last checkpoint.
    resume = reuse and (run_dir / "manifest.json").exists()
    command = recipe_command(profile, seed, run_dir, device, overrides, resume)
    print(f"seed {seed}: {' '.join(command[1:])}", flush=True)
    started = time.monotonic()
    (out / "logs").mkdir(parents=True, exist_ok=True)   # not beside seed-S/: a seed-* glob must match runs only
    with open(out / "logs" / f"seed-{seed}.log", "w", encoding="utf-8") as log:
        code = subprocess.run(command, check=False, stdout=log, stderr=subprocess.STDOUT, env=_recipe_env()).returncode
    return run_dir, code, time.monotonic() - started


def _log_tail(path: Path) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-LOG_TAIL_LINES:])
    except OSError:
        return "(no log)"


def _load_or_placeholder(run_dir: Path, seed: int) -> Run:
    """A run that crashed before writing its manifest still counts, as a failed run."""
    try:
        run = load_run(run_dir)
    except BadRunRecord:
        run = Run(path=run_dir, manifest={"config": {"train": {"seed": seed}}}, summary=None)
    run.label = run_dir.name
    return run


def run_rows(runs: list[Run], exit_codes: dict[str, int | None]) -> list[dict]:
    return [{
        "seed": run.seed, "dir": str(run.path), "recipe_exit_code": exit_codes.get(run.label),
        "complete": run.complete, "accuracy": run.final_accuracy, "mcc": run.final_mcc,
        "majority_baseline": run.majority_baseline, "failed": seeds.failure_reason(run) is not None,
        "failure_reason": seeds.failure_reason(run),
    } for run in runs]


def render(profile: str, rows: list[dict], summary: seeds.SeedSummary, overrides: list[str]) -> str:
    headers = ["seed", "accuracy", "mcc", "majority_baseline", "recipe exit code", "failed"]
    table = [[text(r["seed"]), fmt(r["accuracy"], 4), fmt(r["mcc"], 4), fmt(r["majority_baseline"], 4),
              text(r["recipe_exit_code"] if r["recipe_exit_code"] is not None else "reused"),
              r["failure_reason"] or "no"] for r in rows]
    totals = Table(["profile", "runs", "finished", "failed", "accuracy mean", "accuracy std", "mcc mean", "mcc std"],
                   [[profile, str(summary.runs), str(summary.finished), str(summary.failed),
                     fmt(summary.accuracy_mean, 4), fmt(summary.accuracy_std, 4), fmt(summary.mcc_mean, 4),
                     fmt(summary.mcc_std, 4)]])
    overrides_text = ", ".join(f"`{o}`" for o in overrides) or "none"
    return to_markdown([
        Heading(f"Seed stability: profile {profile}", 1),
        Paragraph(f"Seeds run: {summary.runs}; config overrides: {overrides_text}. Mean and sample standard deviation "
                  "(ddof=1) over the finished runs. A run failed when it did not finish, its final accuracy is at "
                  "or under the majority-class baseline of its validation data, or its MCC ≤ 0."),
        totals,
        Table(headers, table),
    ])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m report.stability", description=__doc__.split("\n")[0])
    parser.add_argument("--profile", required=True, help="recipe profile (smoke, fast, published)")
    parser.add_argument("--seeds", type=int, required=True, help="number of seeds to run")
    parser.add_argument("--first-seed", type=int, default=42, help="seeds are FIRST, FIRST+1, ... (default 42)")
    parser.add_argument("--out", type=Path, required=True, help="directory for seed-S runs and the summary")
    parser.add_argument("--device", default=None, help="passed to the recipe (cpu|cuda|npu)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override passed to the recipe (repeatable)")
    parser.add_argument("--reuse", action="store_true",
                        help="keep seed runs that already finished, resume unfinished ones")
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error(f"--seeds must be >= 1, got {args.seeds}")
    try:
        if importlib.util.find_spec("recipe.finetune") is None and not (ROOT / "recipe" / "finetune.py").exists():
            raise RecipeMissing("recipe.finetune not found: run from the kit's checkout or install the kit.")
        out = args.out.resolve()
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BadOutput(f"{args.out}: cannot create it ({exc.strerror}); pick a writable --out / OUT.") from None
        seed_list = range(args.first_seed, args.first_seed + args.seeds)
        taken = [out / f"seed-{s}" for s in seed_list if (out / f"seed-{s}").exists()]
        if taken and not args.reuse:
            # Otherwise the recipe refuses to overwrite, and an old result would be read as new.
            raise BadOutput(f"{taken[0]} already exists: pass --reuse to keep finished seeds and resume "
                            "unfinished ones, or choose another --out (or delete it).")
        runs, exit_codes = [], {}
        for seed in seed_list:
            run_dir, code, _ = train_seed(args.profile, seed, out, args.device, args.overrides, args.reuse)
            run = _load_or_placeholder(run_dir, seed)
            exit_codes[run.label] = code
            if not run.complete:
                print(f"seed {seed}: did not finish (exit code {code}); last lines of {out}/logs/seed-{seed}.log:\n"
                      f"{_log_tail(out / 'logs' / f'seed-{seed}.log')}", file=sys.stderr)
            runs.append(run)
        summary = seeds.summarize(runs)
        rows = run_rows(runs, exit_codes)
        result = {"schema": "kit.stability/1", "profile": args.profile, "overrides": args.overrides,
                  "device": args.device, **summary.__dict__, "runs_detail": rows}
        (out / "stability.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        (out / "stability.md").write_text(render(args.profile, rows, summary, args.overrides), encoding="utf-8")
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(console_table(
        ["seed", "accuracy", "mcc", "failed"],
        [[text(r["seed"]), fmt(r["accuracy"], 4), fmt(r["mcc"], 4), r["failure_reason"] or "no"] for r in rows]))
    print(f"\n{args.profile}: accuracy {fmt(summary.accuracy_mean, 4)} ± {fmt(summary.accuracy_std, 4)}, "
          f"MCC {fmt(summary.mcc_mean, 4)} ± {fmt(summary.mcc_std, 4)} (mean ± sample std over "
          f"{summary.finished} finished), failed {summary.failed}/{summary.runs}")
    print(f"written: {out / 'stability.md'}, {out / 'stability.json'}")
    if summary.finished == 0:
        print(f"error: no seed finished; the recipe's own message is at the end of {out}/logs/seed-*.log "
              "(shown above).", file=sys.stderr)
        return EXIT_NO_RUN_FINISHED
    return 0


if __name__ == "__main__":
    sys.exit(main())
