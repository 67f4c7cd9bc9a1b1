"""Step-by-step parity of two runs, energy, and where the time went (summary `parity`, `energy`,
`trace`; docs/run-record.md).

Whether two runs are aligned is judged by Ascend's published standards (report/parity_standard.py);
this module gives the kit's own per-step detail below that verdict.

Two runs are the same computation (`StepParity.aligned`), comparable optimizer step by optimizer step, when
their configs (ignoring only where/how they were recorded; the seed counts), data sha256, per-epoch
sample-order hashes and initial-weight hash all agree. Then, over the optimizer steps both logged a
finite loss, with d_i = L_B,i − L_A,i:
- max |d_i| and mean |d_i|; relative: max |d_i| / |L_A,i|;
- the first step with |d_i| > ATOL + RTOL · |L_A,i| (the tolerance band drawn on parity.png; RTOL is
  --parity-rtol: 1e-3 by default, so a run nudged by 1e-3 on every weight, which moves the loss by
  ~5e-5 relative, stays inside it; pass 1e-6 to catch that);
- Pearson's correlation of the two loss series.
With dropout > 0 the two runs draw different dropout masks (each device its own generator), so
step-by-step parity is impossible whatever the devices: the report says so.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from report import comparability, curves
from report.headline import number
from report.records import Run

RTOL = 1e-3  # relative tolerance per step: fp32 on two devices stays well inside it for hundreds of steps
ATOL = 1e-6  # so a loss near 0 is not held to an impossible relative bound
# What parity ignores of the config: only where/how a run is recorded (the seed DOES count here).
PARITY_IGNORED = tuple(k for k in comparability.IGNORED_CONFIG_KEYS if k not in ("train.seed", "train.data_seed"))


def _parity_record(run: Run) -> dict | None:
    record = run.summary_value("parity")
    return record if isinstance(record, dict) else None


def alignment_reasons(a: Run, b: Run, ignored=PARITY_IGNORED) -> list[str]:
    """Why the two runs are not the same computation step by step; empty when they are. `ignored`: the
    config keys left out (report/parity_standard.py also leaves out `deterministic` for repeats)."""
    reasons = []
    pa, pb = _parity_record(a), _parity_record(b)
    for run, record in ((a, pa), (b, pb)):
        if record is None:
            reasons.append(f"`{run.label}` has no parity record (summary.json `parity`: a run from an older kit, "
                           "or unfinished)")
    ca, cb = a.manifest.get("config") or {}, b.manifest.get("config") or {}
    if comparability.comparable_config_sha256(ca, ignored) != comparability.comparable_config_sha256(cb, ignored):
        diffs = comparability.config_differences(ca, cb, ignored)
        reasons.append("config differs (" + "; ".join(diffs[:4]) + (" …" if len(diffs) > 4 else "") + ")")
    if (a.manifest.get("data") or {}).get("sha256") != (b.manifest.get("data") or {}).get("sha256"):
        reasons.append("data sha256 differs")
    if pa is not None and pb is not None:
        order_a, order_b = pa.get("sample_order_sha256"), pb.get("sample_order_sha256")
        if order_a != order_b:
            epoch = next((i + 1 for i, (x, y) in enumerate(zip(order_a or [], order_b or [])) if x != y), None)
            reasons.append("sample order differs" + (f" from epoch {epoch}" if epoch else
                                                     f" ({len(order_a or [])} vs {len(order_b or [])} epochs hashed)"))
        if pa.get("initial_weights_sha256") != pb.get("initial_weights_sha256"):
            reasons.append("initial weights differ (initial_weights_sha256)")
    return reasons


def dropout_used(run: Run):
    record = _parity_record(run)
    return None if record is None else number(record.get("dropout"))


@dataclass
class StepParity:
    aligned: bool
    reasons: list[str]
    steps: list[int] = field(default_factory=list)  # matched optimizer steps (both logged a finite loss)
    differences: list[float] = field(default_factory=list)  # L_B − L_A per matched step
    tolerances: list[float] = field(default_factory=list)  # ATOL + RTOL |L_A| per matched step
    max_abs: float | None = None
    mean_abs: float | None = None
    max_relative: float | None = None
    first_beyond: int | None = None  # first step beyond the tolerance
    correlation: float | None = None
    dropout: tuple = (None, None)
    not_bit_comparable: list[str] = field(default_factory=list)
    rtol: float = RTOL
    atol: float = ATOL


def matched_losses(a: Run, b: Run) -> tuple[list[int], list[float], list[float]]:
    la = {row["step"]: row["loss"] for row in a.train_steps if row.get("loss") is not None}
    lb = {row["step"]: row["loss"] for row in b.train_steps if row.get("loss") is not None}
    steps = sorted(set(la) & set(lb))
    return steps, [la[s] for s in steps], [lb[s] for s in steps]


def step_parity(a: Run, b: Run, rtol: float = RTOL, atol: float = ATOL) -> StepParity:
    reasons = alignment_reasons(a, b)
    result = StepParity(aligned=not reasons, reasons=reasons, dropout=(dropout_used(a), dropout_used(b)),
                        rtol=rtol, atol=atol)
    result.not_bit_comparable = [n for n in comparability.notes_for(a, b) if n.startswith("not bit-comparable")]
    if reasons:
        return result
    steps, la, lb = matched_losses(a, b)
    if not steps:
        result.aligned, result.reasons = False, ["no optimizer step with a finite loss in both runs"]
        return result
    result.steps = steps
    result.differences = [y - x for x, y in zip(la, lb)]
    result.tolerances = [atol + rtol * abs(x) for x in la]
    absolute = [abs(d) for d in result.differences]
    result.max_abs, result.mean_abs = max(absolute), statistics.fmean(absolute)
    relative = [abs(d) / abs(x) for d, x in zip(result.differences, la) if x != 0]
    result.max_relative = max(relative) if relative else None
    result.first_beyond = next((s for s, d, t in zip(steps, absolute, result.tolerances) if d > t), None)
    if len(steps) >= 2 and statistics.pvariance(la) > 0 and statistics.pvariance(lb) > 0:
        result.correlation = statistics.correlation(la, lb)
    return result


def matched_oscillation(a: Run, b: Run, window: int) -> dict:
    """The step-to-step oscillation of each run over the SAME logged steps (those both logged), in the last
    epoch, and the share of matched step pairs where B's loss moved more than A's."""
    steps = set(matched_losses(a, b)[0])
    rows_a = [r for r in a.train_steps if r["step"] in steps]
    rows_b = [r for r in b.train_steps if r["step"] in steps]
    osc_a, osc_b = curves.oscillation(rows_a, window), curves.oscillation(rows_b, window)
    last = curves.last_epoch_mask([r.get("epoch") for r in rows_a])
    la, lb = [r["loss"] for r in rows_a], [r["loss"] for r in rows_b]
    pairs = [(abs(lb[i + 1] - lb[i]), abs(la[i + 1] - la[i])) for i in range(len(la) - 1) if last[i] and last[i + 1]]
    return {"points": osc_a["points"], "a": osc_a["step_diff_std"], "b": osc_b["step_diff_std"],
            "b_moves_more": (sum(x > y for x, y in pairs) / len(pairs)) if pairs else None, "pairs": len(pairs)}


def _fmt(value, decimals=4):
    """Fixed decimals; a negative `decimals` means that many significant digits (tiny differences)."""
    if value is None:
        return "n/a"
    return f"{value:.{-decimals}g}" if decimals < 0 else f"{value:.{decimals}f}"


def oscillation_sentence(a: Run, b: Run, window: int) -> str:
    m = matched_oscillation(a, b, window)
    if m["a"] is None or m["b"] is None:
        return (f"Oscillation at matched steps: n/a (fewer than {curves.MIN_POINTS} logged steps in common in the "
                "last epoch).")
    ratio = m["b"] / m["a"] if m["a"] else None
    more = "more" if m["b"] > m["a"] else "less" if m["b"] < m["a"] else "exactly as much"
    return (f"\"Oscillates more\", at matched steps: over the {m['points']} logged steps both runs share in the last "
            f"epoch, the std of the step-to-step loss change is {m['b']:.4f} for B (`{b.label}`) and {m['a']:.4f} "
            f"for A (`{a.label}`)" + (f", ratio B/A {ratio:.3f}" if ratio is not None else "")
            + f": B oscillates {more}. B's loss moved by more than A's at "
            f"{100 * m['b_moves_more']:.1f} % of the {m['pairs']} consecutive step pairs.")


def parity_blocks(a: Run, b: Run, result: StepParity, window: int, chart: str, parity_row, standard=None) -> list:
    """The verdict by the published standards (report/parity_standard.py) first, the kit's own per-step
    figures (first divergence beyond --parity-rtol, correlation, chart) below it as detail."""
    from report import parity_standard
    from report.document import Bullets, Heading, Image, Paragraph, Table

    out = [Heading("Step-by-step parity")]
    drop_a, drop_b = result.dropout
    if (drop_a or 0) > 0 or (drop_b or 0) > 0:
        out.append(Paragraph(f"**Dropout is on** (A {_fmt(drop_a, 2)}, B {_fmt(drop_b, 2)}): each device draws "
                             "its dropout masks from its own generator, so step-by-step parity is impossible; "
                             "use the `parity` profile (dropout off) to check two devices step by step."))
    elif drop_a is None or drop_b is None:
        out.append(Paragraph("Dropout: n/a (no parity record); with dropout on, step-by-step parity is impossible "
                             "(each device draws its own masks)."))
    if standard is not None:
        out += parity_standard.blocks(standard)
    out.append(Paragraph(f"Detail, the kit's own per-step figures: A = `{a.label}`, B = `{b.label}`, the same "
                         "computation when config (seed included), data sha256, per-epoch sample-order hashes and "
                         "initial-weight hash agree. Per matched step d = L_B − L_A; the first step with "
                         f"|d| > {result.atol:g} + {result.rtol:g} × |L_A| (--parity-rtol) is where the two first "
                         "diverge beyond that band (a detail, not the verdict)."))
    if not result.aligned:
        out += [Paragraph("**Not the same computation** step by step:"), Bullets(result.reasons)]
    else:
        out.append(Table(
            ["matched steps", "max abs d", "mean abs d", "max relative", "first step beyond tolerance",
             "correlation"],
            [[str(len(result.steps)), _fmt(result.max_abs, -4), _fmt(result.mean_abs, -4),
              _fmt(result.max_relative, -4), "none" if result.first_beyond is None else str(result.first_beyond),
              _fmt(result.correlation, 6)]]))
        out.append(Image(chart, "loss difference per step with the tolerance band"))
    out += [Bullets(result.not_bit_comparable)] if result.not_bit_comparable else []
    if parity_row is not None:
        out.append(Paragraph(f"Final metrics against the seed spread: {parity_row.why} → parity "
                             f"**{parity_row.verdict}** (headline)."))
    out.append(Paragraph(oscillation_sentence(a, b, window)))
    return out


# -- energy -------------------------------------------------------------------------------------------

ENERGY_KEYS = ["train_wh", "eval_wh", "mean_power_w", "peak_power_w", "samples_per_joule", "interval_s"]


def energy(run: Run) -> dict:
    record = run.summary_value("energy")
    if not isinstance(record, dict):
        return {"source": None, "reason": "no energy record (summary.json `energy`: a run from an older kit)",
                **{k: None for k in ENERGY_KEYS}}
    return {"source": record.get("source"), "reason": record.get("reason"),
            **{k: number(record.get(k)) for k in ENERGY_KEYS}}


def energy_blocks(runs: list[Run], chart: str) -> list:
    from report.document import Heading, Image, Paragraph, Table, fmt, text

    rows = []
    for run in runs:
        e = energy(run)
        rows.append([run.label, text(e["source"]), fmt(e["train_wh"], 3), fmt(e["eval_wh"], 3),
                     fmt(e["mean_power_w"], 1), fmt(e["peak_power_w"], 1), fmt(e["samples_per_joule"], 3),
                     fmt(e["interval_s"], 2), text(e["reason"]) if e["train_wh"] is None else ""])
    return [Heading("Energy"),
            Paragraph("From summary.json `energy`: NVML's energy counter (nvidia), npu-smi power samples integrated "
                      "over time (Ascend), RAPL (CPU, where readable). n/a with the recorded reason otherwise."),
            Table(["run", "source", "train_wh", "eval_wh", "mean_power_w", "peak_power_w", "samples_per_joule",
                   "interval_s", "why n/a"], rows),
            Image(chart, "energy per run")]


# -- trace --------------------------------------------------------------------------------------------

TOP_OPS_SHOWN = 10


def trace(run: Run) -> dict | None:
    record = run.summary_value("trace")
    return record if isinstance(record, dict) else None


def trace_blocks(a: Run, b: Run) -> list:
    from report.document import Heading, Paragraph, Table, fmt, text

    out = [Heading("Where the time goes (profiler trace)")]
    ta, tb = trace(a), trace(b)
    summary_rows = []
    for run, t in ((a, ta), (b, tb)):
        if t is None:
            summary_rows.append([run.label, "n/a", "n/a", "n/a", "n/a", "no trace (run without --trace N)"])
        else:
            summary_rows.append([run.label, text(t.get("steps")), fmt(number(t.get("traced_wall_ms")), 1),
                                 fmt(number(t.get("outside_kernels_share")), 3), text(t.get("time_basis")),
                                 text(t.get("file"))])
    out.append(Table(["run", "traced steps", "traced_wall_ms", "outside_kernels_share", "time basis", "trace file"],
                     summary_rows))
    ops_a, ops_b = ((t or {}).get("top_ops") or [] for t in (ta, tb))
    if not ops_a and not ops_b:
        return out + [Paragraph("No operator table in either run.")]
    rows = []
    for i in range(min(max(len(ops_a), len(ops_b)), TOP_OPS_SHOWN)):
        row = [str(i + 1)]
        for ops in (ops_a, ops_b):
            op = ops[i] if i < len(ops) else {}
            row += [f"`{op['name']}`" if op.get("name") else "", fmt(number(op.get("self_ms")), 2),
                    fmt(number(op.get("share")), 3)]
        rows.append(row)
    out += [Paragraph(f"Top operators by self time, side by side (A = `{a.label}`, B = `{b.label}`); share of the "
                      "traced time."),
            Table(["#", "A operator", "A self ms", "A share", "B operator", "B self ms", "B share"], rows)]
    return out
