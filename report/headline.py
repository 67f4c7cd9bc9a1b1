"""The headline: the tutorial's three claims, plus accuracy/MCC parity, re-measured from two sides'
run records, each with a verdict — holds / does not hold / cannot tell.

Sides. The tutorial's NPU is side A, its A100 side B:
- runs are grouped by device (manifest `device` type + name, `Run.device_key`); with an `npu` and a
  `cuda` group, A is the npu group and B the cuda group; otherwise A is the first run's group and B
  the next group in the order given;
- when every run has the same device (e.g. two CPU runs) A is the first run and B the second, and
  they are named "run A" / "run B" rather than NPU / A100. Further runs of that device are not
  used by the headline (pass them with --spread to measure the spread).
A side's figure is the mean over its runs.

Spread (the noise a difference must beat). Groups of repeated runs: a side with >= 2 runs, and each
--spread group (a `make stability` directory or a list of runs). For each figure the spread is the
largest range (max − min) inside any group: relative to the group's smallest value for time, memory
and oscillation (so a CPU stability run can bound a device comparison, and any two runs of one group
always read "cannot tell"), absolute for accuracy and MCC.
Without any group there is no spread: time, memory and oscillation then read "cannot tell" (one
run each cannot separate the device from run-to-run noise), as parity does.

Rules (d = the difference in the claim's direction, s = the spread, both in the same unit):
- no spread measured (one run per side, no --spread group with that figure): cannot tell.
- directional claims (A faster than B; B oscillates more than A), d = (B − A) / A:
  holds when d > s; does not hold when d < −s; cannot tell when |d| <= s.
  So two runs with the same figure (d = 0) always read "cannot tell".
- "about the same" (memory), tolerance T = MEMORY_SAME (10 % relative), d = (B − A) / A:
  holds when |d| + s <= T; does not hold when |d| − s > T; cannot tell otherwise.
- parity (final accuracy and MCC, absolute differences d_acc, d_mcc, spreads s_acc, s_mcc):
  with a spread: holds when |d_acc| <= s_acc and |d_mcc| <= s_mcc, else does not hold;
  without one: holds only when both are exactly equal, else cannot tell.
- Any side run NOT comparable (report/comparability.py), or a side without a finished run: every
  verdict is "cannot tell", with the reason.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field

from report import curves
from report.records import Run

HOLDS, DOES_NOT_HOLD, CANNOT_TELL = "holds", "does not hold", "cannot tell"
MEMORY_SAME = 0.10  # "about the same" device memory: within 10 % of side A
SUSPECT_EPOCH_FACTOR = 3.0  # an epoch over 3x its run's median epoch is suspect (machine load)

# Memory figure the claim judges, for both sides: the first that every side run records. The
# framework's own peak first: torch.npu and torch.cuda count the same thing (what the caching
# allocator reserved for this process). nvidia-smi / npu-smi figures are device-wide and differ in
# kind (npu-smi's HBM usage includes the card's idle reservation, ~3 GB on a 910B): shown beside
# the claim, never judged.
MEMORY_FIGURES = [
    ("peak_reserved_mb", "peak reserved by the framework's allocator (torch.npu/torch.cuda max_memory_reserved), MB"),
    ("peak_allocated_mb", "peak allocated by the framework's allocator (max_memory_allocated), MB"),
    ("host_rss_mb_peak", "peak host memory (process RSS; no device memory on this device), MB"),
]
SMI_FIGURES = [   # beside the claim: device-wide, this run's share when the idle baseline was measured
    ("device_used_mb_over_baseline", "above the idle baseline measured before the run"),
    ("device_used_mb_peak", "idle baseline not measured: includes what the card holds anyway"),
]


def number(value):
    """A finite number, else None (records from other versions may hold anything)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


@dataclass
class Side:
    name: str  # "NPU", "A100", "GPU", "CPU", "run A", ...
    runs: list[Run]

    @property
    def labels(self) -> list[str]:
        return [r.label for r in self.runs]


@dataclass
class Group:
    """Repeated runs of one setup, whose spread bounds the noise."""
    name: str
    runs: list[Run]


def _role(run: Run, fallback: str, types_differ: bool) -> str:
    if not types_differ:
        return fallback
    kind, name = run.device.get("type"), str(run.device.get("name") or "")
    if kind == "npu":
        return "NPU"
    if kind == "cuda":
        return "A100" if "A100" in name else "GPU"
    return str(kind or fallback).upper() if kind else fallback


def pick_sides(runs: list[Run]) -> tuple[Side, Side, list[Run]] | None:
    """(A, B, runs the headline leaves out), or None with fewer than two runs."""
    if len(runs) < 2:
        return None
    groups: dict[str, list[Run]] = {}
    for run in runs:
        groups.setdefault(run.device_key, []).append(run)
    if len(groups) == 1:
        a, b = [runs[0]], [runs[1]]
    else:
        by_type = {members[0].device.get("type"): members for members in groups.values()}
        if "npu" in by_type and "cuda" in by_type:
            a, b = by_type["npu"], by_type["cuda"]
        else:
            ordered = list(groups.values())
            a, b = ordered[0], ordered[1]
    types_differ = a[0].device.get("type") != b[0].device.get("type")
    used = {id(r) for r in a + b}
    return (Side(_role(a[0], "run A", types_differ), a), Side(_role(b[0], "run B", types_differ), b),
            [r for r in runs if id(r) not in used])


# -- figures --------------------------------------------------------------------------------------

def train_seconds(run: Run):
    return number(run.summary_value("train_seconds"))


def oscillation(run: Run, window: int):
    return number(curves.oscillation(run.train_steps, window)["step_diff_std"])


def memory_figure(runs: list[Run]) -> tuple[str, str] | None:
    """The first memory figure that every run records, so both sides are measured alike."""
    for key, meaning in MEMORY_FIGURES:
        if runs and all(number(r.summary_value("memory", key)) is not None for r in runs):
            return key, meaning
    return None


def smi_beside(a: Side, b: Side) -> str | None:
    """The device-wide figure (nvidia-smi / npu-smi) of both sides, labelled, or None."""
    for key, meaning in SMI_FIGURES:
        values = {side.name: [number(r.summary_value("memory", key)) for r in side.runs] for side in (a, b)}
        if all(v is not None for vs in values.values() for v in vs):
            tools = sorted({str(r.summary_value("memory", "device_source")) for r in a.runs + b.runs})
            shown = ", ".join(f"{name} {_mean(vs):.0f} MB" for name, vs in values.items())
            return f"device-wide beside it ({' / '.join(tools)}, {meaning}; not judged): {shown}"
    return None


def _mean(values: list) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.fmean(known) if known else None


@dataclass
class Spread:
    value: float | None  # None: no group of repeated runs measured this figure
    source: str  # "side A (3 runs)" or "none"


def spread(groups: list[Group], figure, relative: bool) -> Spread:
    best, source = None, "none"
    for group in groups:
        values = [v for v in (figure(r) for r in group.runs) if v is not None]
        if len(values) < 2:
            continue
        width = max(values) - min(values)
        if relative:
            # Relative to the smallest: |B − A| / A of any two runs of the group is then <= width.
            if min(values) <= 0:
                continue
            width = width / min(values)
        if best is None or width > best:
            best, source = width, f"{group.name} ({len(values)} runs)"
    return Spread(best, source)


# -- verdicts -------------------------------------------------------------------------------------

def directional(d: float | None, s: float | None) -> str:
    """d > 0 is the claimed direction; s the spread it must beat (None: not measured)."""
    if d is None or s is None:
        return CANNOT_TELL
    if d > s:
        return HOLDS
    if d < -s:
        return DOES_NOT_HOLD
    return CANNOT_TELL


def about_the_same(d: float | None, s: float | None, tolerance: float = MEMORY_SAME) -> str:
    if d is None or s is None:
        return CANNOT_TELL
    if abs(d) + s <= tolerance:
        return HOLDS
    if abs(d) - s > tolerance:
        return DOES_NOT_HOLD
    return CANNOT_TELL


def parity(d_acc, d_mcc, s_acc: float | None, s_mcc: float | None) -> str:
    if d_acc is None or d_mcc is None:
        return CANNOT_TELL
    if s_acc is None or s_mcc is None:
        return HOLDS if d_acc == 0 and d_mcc == 0 else CANNOT_TELL
    return HOLDS if abs(d_acc) <= s_acc and abs(d_mcc) <= s_mcc else DOES_NOT_HOLD


def _relative(a, b):
    return None if a is None or b is None or a == 0 else (b - a) / a


def _diff(a, b):
    return None if a is None or b is None else b - a


def suspect_epochs(run: Run) -> list[tuple[int, float, float]]:
    """(epoch number from 1, seconds, run median) for each epoch over SUSPECT_EPOCH_FACTOR x the median."""
    epochs = [number(v) for v in (run.summary_value("epoch_seconds") or [])]
    known = [v for v in epochs if v is not None]
    if len(known) < 2:
        return []
    median = statistics.median(known)
    return [(i + 1, v, median) for i, v in enumerate(epochs) if v is not None and v > SUSPECT_EPOCH_FACTOR * median]


# -- the headline ---------------------------------------------------------------------------------

@dataclass
class Claim:
    key: str  # time | memory | oscillation | parity
    tutorial: str  # the claim in the tutorial's words
    tested: str  # the claim as tested here, with this comparison's side names
    measure: str  # what is measured, with its unit
    a: float | None | dict
    b: float | None | dict
    difference: float | None | dict  # B − A
    relative: float | None  # (B − A) / A
    verdict: str
    why: str


@dataclass
class Headline:
    side_a: Side | None
    side_b: Side | None
    claims: list[Claim] = field(default_factory=list)
    comparable: bool = True
    reasons: list[str] = field(default_factory=list)
    basis: str = ""  # one sentence: what the spread came from, or that there is none
    left_out: list[str] = field(default_factory=list)

    def as_json(self) -> dict:
        return {
            "schema": "kit.compare-headline/1",
            "side_a": None if self.side_a is None else {"name": self.side_a.name, "runs": self.side_a.labels},
            "side_b": None if self.side_b is None else {"name": self.side_b.name, "runs": self.side_b.labels},
            "comparable": self.comparable, "reasons": self.reasons, "basis": self.basis,
            "left_out": self.left_out,
            "rows": [asdict(c) for c in self.claims],
        }


def _spread_phrase(s: Spread, relative: bool, decimals: int) -> str:
    if s.value is None:
        return "one run each: no spread measured, so device and run-to-run noise cannot be separated"
    shown = f"{100 * s.value:.{max(decimals - 2, 1)}f} %" if relative else f"{s.value:.{decimals}f}"
    return f"spread {shown} from {s.source}"


def _epochs(side: Side):
    config = side.runs[0].manifest.get("config") or {}
    return (config.get("train") or {}).get("num_train_epochs")


def build(runs: list[Run], flags, window: int, spread_groups: list[Group] = ()) -> Headline:
    sides = pick_sides(runs)
    if sides is None:
        return Headline(None, None, comparable=False, reasons=["one run only: nothing to compare"],
                        basis="one run only")
    a, b, left_out = sides
    headline = Headline(a, b, left_out=[r.label for r in left_out])
    for run in a.runs + b.runs:
        if not flags[run.label].comparable:
            headline.reasons.append(f"`{run.label}` NOT comparable: " + "; ".join(flags[run.label].reasons))
    headline.comparable = not headline.reasons
    groups = [Group(f"side {which}", side.runs) for which, side in (("A", a), ("B", b))
              if len(side.runs) >= 2] + list(spread_groups)
    headline.basis = ("spread from repeated runs: " + ", ".join(f"{g.name}: {len(g.runs)} runs" for g in groups)
                      if groups else "one run each: no spread measured, so time, memory and oscillation read "
                      "cannot tell (one run per side cannot separate the device from run-to-run noise); repeat the "
                      "runs (RUNS with several per device, or SPREAD=<a make stability directory>) to judge them")

    def side_value(side, figure):
        return _mean([figure(r) for r in side.runs])

    epochs = _epochs(a)
    claims = []

    # 1. time
    t_a, t_b = side_value(a, train_seconds), side_value(b, train_seconds)
    s = spread(groups, train_seconds, relative=True)
    d = _relative(t_a, t_b)
    verdict = directional(d, s.value)
    why = [_spread_phrase(s, True, 3)]
    if verdict == DOES_NOT_HOLD:
        why.insert(0, f"{b.name} is the faster one")
    for run in a.runs + b.runs:
        if run.summary_value("timing", "comparable") is False:   # e.g. a --trace run
            verdict = CANNOT_TELL
            why.insert(0, f"`{run.label}`'s time is not comparable: "
                          f"{run.summary_value('timing', 'not_comparable_because') or 'see its summary timing'}")
    for run in a.runs + b.runs:
        for epoch, seconds, median in suspect_epochs(run):
            why.append(f"`{run.label}` epoch {epoch} took {seconds:.1f} s, over {SUSPECT_EPOCH_FACTOR:g}× its "
                       f"median {median:.1f} s: suspect (machine load?)")
    claims.append(Claim("time", "NPU slightly faster than A100 over 3 epochs",
                        f"{a.name} faster than {b.name} over {epochs} epochs", "train_seconds, s",
                        t_a, t_b, _diff(t_a, t_b), d, verdict, "; ".join(why)))

    # 2. memory
    chosen = memory_figure(a.runs + b.runs)
    if chosen is None:
        claims.append(Claim("memory", "device memory about the same", f"{a.name} and {b.name} use about the "
                            "same memory", "no memory figure common to both sides", None, None, None, None,
                            CANNOT_TELL, "the records have no memory figure that both sides measured"))
    else:
        key, meaning = chosen

        def memory(run, key=key):
            return number(run.summary_value("memory", key))
        m_a, m_b = side_value(a, memory), side_value(b, memory)
        s = spread(groups, memory, relative=True)
        d = _relative(m_a, m_b)
        claims.append(Claim("memory", "device memory about the same",
                            f"{a.name} and {b.name} within {100 * MEMORY_SAME:g} % of each other",
                            f"`{key}`: {meaning}", m_a, m_b, _diff(m_a, m_b), d,
                            about_the_same(d, s.value),
                            "; ".join(filter(None, [f"tolerance {100 * MEMORY_SAME:g} % of A",
                                                    _spread_phrase(s, True, 3), smi_beside(a, b)]))))

    # 3. oscillation
    def osc(run):
        return oscillation(run, window)
    o_a, o_b = side_value(a, osc), side_value(b, osc)
    s = spread(groups, osc, relative=True)
    d = _relative(o_a, o_b)
    verdict = directional(d, s.value)
    why = [_spread_phrase(s, True, 3)]
    if o_a is None or o_b is None:
        why.insert(0, "fewer than 3 logged losses in a last epoch")
    claims.append(Claim("oscillation", "A100 loss oscillates more", f"{b.name}'s loss oscillates more than "
                        f"{a.name}'s", "step-to-step oscillation (std of L[i+1] − L[i], last epoch), loss units",
                        o_a, o_b, _diff(o_a, o_b), d, verdict, "; ".join(why)))

    # 4. parity of the final metrics
    def acc(run):
        return number(run.final_accuracy)

    def mcc(run):
        return number(run.final_mcc)
    acc_a, acc_b, mcc_a, mcc_b = side_value(a, acc), side_value(b, acc), side_value(a, mcc), side_value(b, mcc)
    s_acc, s_mcc = spread(groups, acc, relative=False), spread(groups, mcc, relative=False)
    d_acc, d_mcc = _diff(acc_a, acc_b), _diff(mcc_a, mcc_b)
    verdict = parity(d_acc, d_mcc, s_acc.value, s_mcc.value)
    if s_acc.value is None or s_mcc.value is None:
        why = ("no seed spread measured: only exactly equal metrics can read as the same"
               if verdict != HOLDS else "exactly equal final metrics")
    else:
        why = f"seed spread: accuracy {s_acc.value:.4f} ({s_acc.source}), MCC {s_mcc.value:.4f} ({s_mcc.source})"
    claims.append(Claim("parity", "(the tutorial reports accuracy per device)",
                        f"{a.name} and {b.name} reach the same final accuracy and MCC within seed spread",
                        "final accuracy / MCC", {"accuracy": acc_a, "mcc": mcc_a}, {"accuracy": acc_b, "mcc": mcc_b},
                        {"accuracy": d_acc, "mcc": d_mcc}, None, verdict, why))

    if not headline.comparable:
        for claim in claims:
            claim.verdict = CANNOT_TELL
            claim.why = "not comparable (see below); " + claim.why
    headline.claims = claims
    return headline


# -- rendering ------------------------------------------------------------------------------------

DECIMALS = {"time": 2, "memory": 1, "oscillation": 4, "parity": 4}
UNITS = {"time": " s", "memory": " MB", "oscillation": "", "parity": ""}
SHORT = {"time": "faster", "memory": "memory about the same", "oscillation": "oscillates more",
         "parity": "accuracy/MCC parity"}


def cell(claim: Claim, value, signed: bool = False) -> str:
    decimals, unit = DECIMALS[claim.key], UNITS[claim.key]
    sign = "+" if signed else ""
    if isinstance(value, dict):
        parts = [f"{name} " + ("n/a" if value[key] is None else f"{value[key]:{sign}.{decimals}f}")
                 for key, name in (("accuracy", "acc"), ("mcc", "MCC"))]
        return " / ".join(parts)
    return "n/a" if value is None else f"{value:{sign}.{decimals}f}{unit}"


def relative_cell(value) -> str:
    return "n/a" if value is None else f"{100 * value:+.1f} %"


def sides_sentence(headline: Headline) -> str:
    def one(which, side):
        runs = ", ".join(f"`{label}`" for label in side.labels)
        device = side.runs[0].device_key
        mean = f" (mean of {len(side.runs)} runs)" if len(side.runs) > 1 else ""
        return f"{which} = {side.name}: {runs} — {device}{mean}"
    return "; ".join([one("A", headline.side_a), one("B", headline.side_b)]) + "."


def blocks(headline: Headline) -> list:
    from report.document import Bullets, Heading, Paragraph, Table

    out = [Heading("The tutorial's claims, re-measured")]
    if headline.side_a is None:
        return out + [Paragraph("One run only: give two runs (or two groups of runs) to compare.")]
    roles = ("Side A stands for the tutorial's NPU (Ascend 910B), side B for its A100"
             if {headline.side_a.name, headline.side_b.name} - {"run A", "run B"}
             else "Both sides ran on the same kind of device, so they are named run A and run B: run A stands "
                  "for the tutorial's NPU, run B for its A100")
    out += [Paragraph(f"{roles}. {sides_sentence(headline)}")]
    if not headline.comparable:
        out += [Paragraph("**NOT comparable: every verdict is cannot tell.**"), Bullets(headline.reasons)]
    out += [
        Table(["claim (tutorial)", "tested here", "measured as", "A", "B", "B − A", "(B − A) / A", "verdict", "why"],
              [[c.tutorial, c.tested, c.measure, cell(c, c.a), cell(c, c.b), cell(c, c.difference, signed=True),
                relative_cell(c.relative), f"**{c.verdict}**" if c.verdict != CANNOT_TELL else c.verdict, c.why]
               for c in headline.claims]),
        Paragraph(f"Basis: {headline.basis}. Rules (docs/compare.md): without a measured spread every claim "
                  "reads cannot tell; a directional claim holds when the "
                  "relative difference beats the spread in the claimed direction, does not hold when it beats it "
                  "the other way, cannot tell otherwise (equal figures always read cannot tell); memory is "
                  f"about the same when |difference| + spread <= {100 * MEMORY_SAME:g} % of A; parity holds when "
                  "both final-metric differences are within the seed spread (exactly equal without one)."),
    ]
    if headline.left_out:
        out.append(Paragraph("Not in the headline (same device as the sides, not a side of its own): "
                             + ", ".join(f"`{label}`" for label in headline.left_out)
                             + ". Pass repeats with --spread to measure noise."))
    return out


def console(headline: Headline) -> str:
    from report.document import console_table

    if headline.side_a is None:
        return "headline: one run only, nothing to compare"
    rows = [[SHORT[c.key], cell(c, c.a), cell(c, c.b), cell(c, c.difference, signed=True),
             relative_cell(c.relative), c.verdict] for c in headline.claims]
    lines = [console_table(["claim", "A", "B", "B - A", "(B - A)/A", "verdict"], rows),
             sides_sentence(headline).replace("`", "")]
    if not headline.comparable:
        lines.append("NOT comparable, every verdict is cannot tell: " + "; ".join(headline.reasons).replace("`", ""))
    lines.append(f"basis: {headline.basis}")
    return "\n".join(lines)
