"""The doctor: run every catalogue check and print one table (check, status, evidence, fix).

    python -m verify.doctor                 # table; exit 1 when any check fails
    python -m verify.doctor --json          # the same as JSON
    python -m verify.doctor --markdown      # the troubleshooting catalogue (docs/troubleshooting.md)
    python -m verify.doctor --only cann-env,cann-libs --ascend-root /path/to/fake/Ascend
    python -m verify.doctor --log console.log   # explain an error log (a file, a plog directory, - for stdin)

Exit codes: 0 no check failed / nothing known in the log, 1 a check failed / the log shows a known
problem, 2 a usage error, 4 the LOG cannot be read (verify/logs.py).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import textwrap
from pathlib import Path

from verify import logs
from verify.catalogue import CATALOGUE
from verify.checks import FAIL, STATUSES, Result, run_all
from verify.system import System

EXIT_FAILED = 1
EXIT_USAGE = 2
MARKS = {"ok": "ok", "warn": "WARN", "fail": "FAIL", "n/a": "n/a"}


def render_table(results: list[Result], width: int | None = None) -> str:
    """A plain-text table that wraps evidence and fix to the terminal width."""
    width = width or max(100, shutil.get_terminal_size((140, 40)).columns)
    id_w, status_w = max(len(r.id) for r in results), 6
    text_w = max(30, width - id_w - status_w - 6)
    evidence_w = text_w * 11 // 20
    fix_w = text_w - evidence_w
    lines = [f"{'check':<{id_w}}  {'status':<{status_w}}  {'evidence':<{evidence_w}}  fix",
             f"{'-' * id_w}  {'-' * status_w}  {'-' * evidence_w}  {'-' * fix_w}"]
    for result in results:
        evidence = textwrap.wrap(result.evidence, evidence_w) or [""]
        fix = textwrap.wrap(result.fix or "", fix_w) or [""]
        for row in range(max(len(evidence), len(fix))):
            check_cell = result.id if row == 0 else ""
            status_cell = MARKS[result.status] if row == 0 else ""
            ev = evidence[row] if row < len(evidence) else ""
            fx = fix[row] if row < len(fix) else ""
            lines.append(f"{check_cell:<{id_w}}  {status_cell:<{status_w}}  {ev:<{evidence_w}}  {fx}".rstrip())
    counts = {status: sum(r.status == status for r in results) for status in STATUSES}
    lines.append("")
    lines.append("doctor: " + ", ".join(f"{n} {s}" for s, n in counts.items())
                 + (" — FAILED" if counts[FAIL] else " — no failures"))
    return "\n".join(lines)


def render_markdown() -> str:
    """The troubleshooting catalogue as markdown (docs/troubleshooting.md is exactly this)."""
    out = ["## Troubleshooting", "",
           "Run `make doctor` (or `python -m verify.doctor`, `--json` for machines) inside the image or on the",
           "host: it runs every check below and prints one table — check, status (ok / warn / fail / n/a),",
           "the evidence it saw and the fix. It exits non-zero when a check fails. This section is generated",
           "from the doctor's catalogue (`python -m verify.doctor --markdown`); a test fails when they drift.",
           "",
           "CANN's own logs (plog, device logs) are the first place to look after an `EH9999`, `E39999` or",
           "`EI...` error: `make run-npu` / `make verify-npu` write them to `runs/<RUN_NAME>/ascend-log/`",
           "(`ASCEND_PROCESS_LOG_PATH`), where they outlive the container; elsewhere CANN uses `~/ascend/log/`.",
           "`make doctor LOG=<file>` explains such a log, or a console log ([below](#error-logs-make-doctor-logfile)).",
           ""]
    out.append("| check | problem | fix |")
    out.append("|---|---|---|")
    for entry in CATALOGUE:
        out.append(f"| `{entry.id}` | {entry.title} | {entry.fix} |")
    for entry in CATALOGUE:
        out += ["", f"### `{entry.id}`: {entry.title}", "",
                f"- **Symptom:** {entry.symptom}",
                f"- **How the doctor detects it:** {entry.detect}",
                f"- **Fix:** {entry.fix}"]
    out += logs.render_markdown()
    return "\n".join(out) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m verify.doctor", description=__doc__.splitlines()[0])
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print the results as JSON")
    output.add_argument("--markdown", action="store_true", help="print the troubleshooting catalogue (markdown)")
    parser.add_argument("--only", help="comma-separated check ids (default: all)")
    parser.add_argument("--ascend-root", type=Path,
                        help="Ascend install root (default $KIT_ASCEND_ROOT or /usr/local/Ascend)")
    parser.add_argument("--python", default=sys.executable,
                        help="interpreter whose packages are checked (default: this one)")
    parser.add_argument("--log", metavar="PATH",
                        help="explain an error log instead: a console log, a plog directory, or - for stdin")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.log is not None and (args.only or args.markdown):
        print("doctor: --log explains a log; it takes neither --only (checks of this machine) nor --markdown",
              file=sys.stderr)
        return EXIT_USAGE
    if args.markdown:
        sys.stdout.write(render_markdown())
        return 0
    if args.log is not None:
        return logs.explain(args.log, as_json=args.json)
    only = [item.strip() for item in args.only.split(",")] if args.only else None
    known = {entry.id for entry in CATALOGUE}
    if only and not set(only) <= known:
        unknown = ", ".join(sorted(set(only) - known))
        print(f"doctor: unknown check(s) {unknown}; known: {', '.join(sorted(known))}", file=sys.stderr)
        return EXIT_USAGE
    system = System(environ=dict(os.environ), ascend_root=args.ascend_root, python=args.python)
    results = run_all(system, only)
    if args.json:
        failed = any(r.status == FAIL for r in results)
        print(json.dumps({"schema": "kit.doctor/1", "ok": not failed,
                          "results": [r.as_dict() for r in results]}, indent=2))
    else:
        print(render_table(results))
    return EXIT_FAILED if any(r.status == FAIL for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
