"""Step parity judged by Ascend's published precision standards, not by a tolerance of the kit's own
(docs/parity.md "Judged by the published standard"; docs/compare.md "Step-by-step parity").

Sources (the words are quoted, translated, in docs/parity.md):
- MindSpore MindFormers, "大模型迁移精度标准" (large-model migration precision standard), in the
  precision-optimization guide:
  https://www.mindspore.cn/mindformers/docs/en/master/advanced_development/precision_optimization.html
  (Chinese: https://www.mindspore.cn/mindformers/docs/zh-CN/r1.6.0/_sources/advanced_development/precision_optimization.md.txt;
  its source: https://gitee.com/mindspore/docs/blob/master/docs/mindformers/docs/source_en/advanced_development/precision_optimization.md).
  Conditions: the same weights, all hyperparameters the same, all randomness off (determinism on for
  the comparison); the baseline repeated at least twice with determinism off to see its own fluctuation,
  and "if the fluctuations of the third-party [baseline] training no longer meet this standard, ... the
  standard should be relaxed in accordance with the fluctuations of the original model".
  Loss: first loss absolute error < 0.005 OR relative error < 0.5 %; average absolute error < 0.01 OR
  average relative error < 1 %. Monitoring: global-norm average relative error does not exceed 10 %.
- Ascend msprobe, "大模型训练精度定位指南" (large-model training precision-debugging guide) §1.3,
  https://gitcode.com/Ascend/msprobe/blob/master/docs/zh/best_practices/train_debug_guide.md :
  a first-step or long-run loss difference whose average (relative) error against the baseline is
  greater than 1 % is "not aligned".

Definitions used here (the baseline is the A100 side when the other side is the NPU, as in the
standards; otherwise side A). Over the optimizer steps both runs logged with a finite loss, in step
order, d_i = L_other,i − L_base,i:
- first-step error: |d| and |d| / |L_base| at the first such step;
- mean absolute error: mean |d_i|; mean relative error: mean |d_i| / |L_base,i| (steps with L_base,i = 0 left out);
- grad-norm mean relative error: mean |g_other,i − g_base,i| / |g_base,i| over the same steps, from
  metrics.jsonl `grad_norm` (the Trainer's pre-clipping global norm); "cannot tell" when a matched step
  lacks it in either run.
Inside the baseline's noise (applied only when repeats of the baseline are given, --spread): a row that
fails its threshold passes when its figure is no larger than the same figure measured between the
baseline's own repeats (the largest over every pair of repeats; "or" rows: either figure) AND, for
the rows over the whole run, the signed differences oscillate around 0: among the steps whose
difference is not exactly 0, the sign flips between consecutive ones at least OSCILLATION_MIN_FLIPS of
the time (the standards give no number: a one-sided bias flips 0 %, independent noise about 50 %).
The first-step row has one difference, so only the first condition applies to it.
Verdict: "cannot tell" when a condition of the standard is not met (not the same computation, or
randomness on) or there is no step to compare; else "not aligned" when any row fails; else "cannot
tell" when any row cannot tell (a missing grad norm); else "aligned".
"""

from __future__ import annotations

import itertools
import statistics
from dataclasses import asdict, dataclass, field

from report.headline import number
from report.parity import PARITY_IGNORED, alignment_reasons, dropout_used
from report.records import Run

PASS, FAIL, CANNOT_TELL = "pass", "fail", "cannot tell"
PASS_IN_NOISE = "pass (inside the baseline noise)"
ALIGNED, NOT_ALIGNED = "aligned", "not aligned"


@dataclass(frozen=True)
class Source:
    name: str
    url: str


MINDFORMERS = Source("MindSpore MindFormers, 大模型迁移精度标准 (large-model migration precision standard)",
                     "https://www.mindspore.cn/mindformers/docs/en/master/advanced_development/"
                     "precision_optimization.html")
MSPROBE = Source("Ascend msprobe, 大模型训练精度定位指南 §1.3 (training precision-debugging guide)",
                 "https://gitcode.com/Ascend/msprobe/blob/master/docs/zh/best_practices/train_debug_guide.md")
KIT = Source("this kit (docs/parity.md)", "docs/parity.md")

FIRST_ABS, FIRST_REL = 0.005, 0.005       # MindFormers: first loss, absolute < 0.005 or relative < 0.5 %
MEAN_ABS, MEAN_REL = 0.01, 0.01           # MindFormers: average absolute < 0.01 or average relative < 1 %
MSPROBE_MEAN_REL = 0.01                   # msprobe: not aligned when the average relative error is > 1 %
GRAD_NORM_MEAN_REL = 0.10                 # MindFormers: global-norm average relative error does not exceed 10 %
OSCILLATION_MIN_FLIPS = 0.25              # the kit's reading of "fluctuates around 0" (see the module docstring)
RECOMMENDED_STEPS = 1000                  # MindFormers: observe >= 1000 steps (default 5000 or 12 h)
# A repeat of the baseline may differ from it only in determinism (the standard repeats it with determinism off).
REPEAT_IGNORED = (*PARITY_IGNORED, "deterministic")


# -- the figures between two runs ---------------------------------------------------------------------

@dataclass
class Figures:
    steps: list[int] = field(default_factory=list)        # both logged a finite loss, ascending
    first_step: int | None = None
    first_abs: float | None = None
    first_rel: float | None = None
    mean_abs: float | None = None
    mean_rel: float | None = None
    loss_flips: float | None = None                       # share of sign flips between nonzero differences
    one_sided: list[int] = field(default_factory=list)    # logged by both, the loss finite in one only
    grad_missing: list[int] = field(default_factory=list) # matched steps without a finite grad_norm in a run
    grad_rel: float | None = None
    grad_flips: float | None = None


def sign_flips(differences: list[float]) -> float | None:
    """Share of consecutive nonzero differences whose sign differs; None with fewer than 2 nonzero."""
    signs = [d > 0 for d in differences if d != 0]
    if len(signs) < 2:
        return None
    return sum(x != y for x, y in itertools.pairwise(signs)) / (len(signs) - 1)


def _mean_relative(diffs: list[float], references: list[float]) -> float | None:
    relative = [abs(d) / abs(r) for d, r in zip(diffs, references) if r != 0]
    return statistics.fmean(relative) if relative else None


def figures(base: Run, other: Run) -> Figures:
    rows_b = {row["step"]: row for row in base.train_steps}
    rows_o = {row["step"]: row for row in other.train_steps}
    both = sorted(set(rows_b) & set(rows_o))
    out = Figures()
    out.one_sided = [s for s in both if (rows_b[s].get("loss") is None) != (rows_o[s].get("loss") is None)]
    out.steps = [s for s in both if rows_b[s].get("loss") is not None and rows_o[s].get("loss") is not None]
    if not out.steps:
        return out
    lb = [rows_b[s]["loss"] for s in out.steps]
    diffs = [rows_o[s]["loss"] - x for s, x in zip(out.steps, lb)]
    out.first_step, out.first_abs = out.steps[0], abs(diffs[0])
    out.first_rel = abs(diffs[0]) / abs(lb[0]) if lb[0] != 0 else None
    out.mean_abs = statistics.fmean(abs(d) for d in diffs)
    out.mean_rel = _mean_relative(diffs, lb)
    out.loss_flips = sign_flips(diffs)
    gb = [number(rows_b[s].get("grad_norm")) for s in out.steps]
    go = [number(rows_o[s].get("grad_norm")) for s in out.steps]
    out.grad_missing = [s for s, x, y in zip(out.steps, gb, go) if x is None or y is None]
    if not out.grad_missing:
        grad_diffs = [y - x for x, y in zip(gb, go)]
        out.grad_rel = _mean_relative(grad_diffs, gb)
        out.grad_flips = sign_flips(grad_diffs)
    return out


# -- the baseline's own noise -------------------------------------------------------------------------

@dataclass
class Noise:
    """The same figures between repeats of the baseline (the largest over every pair of repeats)."""
    runs: list[str] = field(default_factory=list)         # the baseline and its repeats used
    pairs: int = 0
    first_abs: float | None = None
    first_rel: float | None = None
    mean_abs: float | None = None
    mean_rel: float | None = None
    grad_rel: float | None = None
    skipped: list[str] = field(default_factory=list)      # "`label`: why it is not a repeat"
    deterministic: list = field(default_factory=list)     # parity.deterministic of each repeat used

    @property
    def measured(self) -> bool:
        return self.pairs > 0


def _name(run: Run) -> str:
    """A run's label; --spread runs are loaded one by one and have none, so their directory name."""
    return run.label or run.path.name


def repeat_reasons(base: Run, run: Run) -> list[str]:
    """Why `run` is not a repeat of the baseline (same device, same computation up to determinism)."""
    reasons = [] if run.device_key == base.device_key else [f"another device ({run.device_key})"]
    return reasons + alignment_reasons(base, run, REPEAT_IGNORED)


def _largest(values):
    known = [v for v in values if v is not None]
    return max(known) if len(known) == len(values) and known else None


def baseline_noise(base: Run, other: Run, candidates: list[Run]) -> Noise:
    noise = Noise()
    pool, seen = [base], {base.path.resolve(), other.path.resolve()}
    for run in candidates:
        key = run.path.resolve()
        if key in seen:
            continue
        seen.add(key)
        reasons = repeat_reasons(base, run)
        if reasons:
            noise.skipped.append(f"`{_name(run)}`: " + "; ".join(reasons))
        else:
            pool.append(run)
    if len(pool) < 2:
        return noise
    noise.runs = [_name(r) for r in pool]
    noise.deterministic = [(r.summary_value("parity") or {}).get("deterministic") for r in pool]
    pairs = [figures(pool[i], pool[j]) for i in range(len(pool)) for j in range(i + 1, len(pool))]
    noise.pairs = len(pairs)
    for key in ("first_abs", "first_rel", "mean_abs", "mean_rel", "grad_rel"):
        setattr(noise, key, _largest([getattr(f, key) for f in pairs]))
    return noise


# -- the criteria ------------------------------------------------------------------------------------

@dataclass
class Criterion:
    key: str
    criterion: str
    measured: dict            # {"abs": x, "rel": y} / {"rel": y} / {"value": ...}; None = n/a
    threshold: dict           # the numbers and how they combine
    threshold_text: str
    source: Source
    result: str               # pass / pass (inside the baseline noise) / fail / cannot tell
    why: str
    noise: dict | None = None  # the same figures between the baseline's repeats, when measured
    noise_result: str | None = None  # the baseline's repeats against the fixed threshold

    def as_json(self) -> dict:
        data = asdict(self)
        data["source"] = {"name": self.source.name, "url": self.source.url}
        return data


def either_below(abs_value, rel_value, abs_limit: float, rel_limit: float) -> str:
    """'less than' either limit (the standard's "or"); cannot tell when neither figure exists."""
    if abs_value is None and rel_value is None:
        return CANNOT_TELL
    ok = (abs_value is not None and abs_value < abs_limit) or (rel_value is not None and rel_value < rel_limit)
    return PASS if ok else FAIL


def at_most(value, limit: float) -> str:
    if value is None:
        return CANNOT_TELL
    return PASS if value <= limit else FAIL


def inside(value_pairs) -> bool:
    """Any (figure, noise figure) pair with figure <= noise figure (the "or" of two figures)."""
    return any(v is not None and n is not None and v <= n for v, n in value_pairs)


def _pct(value) -> str:
    return "n/a" if value is None else f"{100 * value:.3g} %"


def _num(value) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _flip_text(flips) -> str:
    return "n/a (fewer than 2 nonzero differences)" if flips is None else f"{100 * flips:.0f} %"


def _relax(result: str, inside_noise: bool, flips, noise: Noise, needs_flips: bool) -> tuple[str, str]:
    """The inside-the-noise rule for a row that failed its threshold."""
    if result != FAIL or not noise.measured:
        return result, ""
    oscillates = flips is not None and flips >= OSCILLATION_MIN_FLIPS
    if inside_noise and (oscillates or not needs_flips):
        extra = f"; signs flip at {_flip_text(flips)} of steps" if needs_flips else ""
        return PASS_IN_NOISE, f"over the threshold but no larger than the baseline's own noise{extra}"
    why = "over the threshold and " + ("larger than the baseline's own noise" if not inside_noise else
                                       f"one-sided: signs flip at {_flip_text(flips)} of steps, under "
                                       f"{100 * OSCILLATION_MIN_FLIPS:.0f} %")
    return FAIL, why


def criteria_rows(f: Figures, noise: Noise, setup_reasons: list[str], randomness: dict) -> list[Criterion]:
    rows = [Criterion("same_setup", "same weights, data, sample order and hyperparameters",
                      {"value": "equal" if not setup_reasons else "; ".join(setup_reasons)},
                      {"equal": True}, "identical (config with the seed, data sha256, order and weight hashes)",
                      MINDFORMERS, PASS if not setup_reasons else FAIL,
                      "" if not setup_reasons else "not the same computation: the loss criteria do not apply")]
    known = randomness["dropout"] + randomness["deterministic"]
    off = all(d == 0 for d in randomness["dropout"]) and all(x is True for x in randomness["deterministic"])
    rows.append(Criterion("randomness_off", "randomness off (dropout 0, deterministic algorithms on)",
                          {"value": randomness}, {"dropout": 0, "deterministic": True},
                          "dropout 0 and deterministic in both runs", MINDFORMERS,
                          CANNOT_TELL if any(v is None for v in known) else PASS if off else FAIL,
                          "" if off else "the standard compares runs with all randomness off"))
    if setup_reasons:
        return rows
    n = noise if noise.measured else None
    rows.append(Criterion("finite_same_steps", "loss finite at the same steps", {"value": f.one_sided},
                          {"one_sided_steps": 0}, "no step where only one run's loss is finite", KIT,
                          PASS if not f.one_sided else FAIL,
                          "" if not f.one_sided else "steps with a non-finite loss in one run only: "
                          + ", ".join(map(str, f.one_sided[:10])) + (" …" if len(f.one_sided) > 10 else "")))

    result = either_below(f.first_abs, f.first_rel, FIRST_ABS, FIRST_REL)
    result, why = _relax(result, inside([(f.first_abs, noise.first_abs), (f.first_rel, noise.first_rel)]),
                         None, noise, needs_flips=False)
    rows.append(Criterion(
        "first_loss", f"first-step loss error (step {f.first_step})", {"abs": f.first_abs, "rel": f.first_rel},
        {"abs": FIRST_ABS, "rel": FIRST_REL, "comparison": "<", "combine": "or"},
        f"abs < {FIRST_ABS:g} or rel < {_pct(FIRST_REL)}", MINDFORMERS, result, why,
        n and {"abs": n.first_abs, "rel": n.first_rel},
        n and either_below(n.first_abs, n.first_rel, FIRST_ABS, FIRST_REL)))

    result = either_below(f.mean_abs, f.mean_rel, MEAN_ABS, MEAN_REL)
    result, why = _relax(result, inside([(f.mean_abs, noise.mean_abs), (f.mean_rel, noise.mean_rel)]),
                         f.loss_flips, noise, needs_flips=True)
    rows.append(Criterion(
        "mean_loss", "mean loss error over the run", {"abs": f.mean_abs, "rel": f.mean_rel},
        {"abs": MEAN_ABS, "rel": MEAN_REL, "comparison": "<", "combine": "or"},
        f"abs < {MEAN_ABS:g} or rel < {_pct(MEAN_REL)}", MINDFORMERS, result, why,
        n and {"abs": n.mean_abs, "rel": n.mean_rel}, n and either_below(n.mean_abs, n.mean_rel, MEAN_ABS, MEAN_REL)))

    result = at_most(f.mean_rel, MSPROBE_MEAN_REL)
    result, why = _relax(result, inside([(f.mean_rel, noise.mean_rel)]), f.loss_flips, noise, needs_flips=True)
    rows.append(Criterion(
        "msprobe_mean_rel", "mean relative loss error", {"rel": f.mean_rel},
        {"rel": MSPROBE_MEAN_REL, "comparison": "<="}, f"rel ≤ {_pct(MSPROBE_MEAN_REL)} (not aligned above)",
        MSPROBE, result, why, n and {"rel": n.mean_rel}, n and at_most(n.mean_rel, MSPROBE_MEAN_REL)))

    if f.grad_missing:
        result, why = CANNOT_TELL, (f"no grad_norm at {len(f.grad_missing)} of {len(f.steps)} matched steps "
                                    f"(first: step {f.grad_missing[0]}) in metrics.jsonl")
    else:
        result = at_most(f.grad_rel, GRAD_NORM_MEAN_REL)
        result, why = _relax(result, inside([(f.grad_rel, noise.grad_rel)]), f.grad_flips, noise, needs_flips=True)
    rows.append(Criterion(
        "grad_norm", "global grad-norm mean relative error", {"rel": f.grad_rel},
        {"rel": GRAD_NORM_MEAN_REL, "comparison": "<="}, f"rel ≤ {_pct(GRAD_NORM_MEAN_REL)}", MINDFORMERS,
        result, why, n and {"rel": n.grad_rel}, n and at_most(n.grad_rel, GRAD_NORM_MEAN_REL)))
    return rows


# -- the verdict -------------------------------------------------------------------------------------

@dataclass
class Standard:
    baseline: Run
    other: Run
    baseline_why: str
    figures: Figures
    noise: Noise
    rows: list[Criterion]
    verdict: str
    why: str

    def as_json(self, detail=None) -> dict:
        return {
            "schema": "kit.step-parity-standard/1",
            "baseline": self.baseline.label, "other": self.other.label, "baseline_why": self.baseline_why,
            "matched_steps": len(self.figures.steps), "recommended_steps": RECOMMENDED_STEPS,
            "verdict": self.verdict, "why": self.why,
            "rows": [row.as_json() for row in self.rows],
            "noise": {"runs": self.noise.runs, "pairs": self.noise.pairs, "skipped": self.noise.skipped,
                      "deterministic": self.noise.deterministic,
                      "min_sign_flips": OSCILLATION_MIN_FLIPS},
            "detail": detail,
        }


def pick_baseline(a: Run, b: Run) -> tuple[Run, Run, str]:
    """The standards measure the migrated (NPU) run against the benchmark (GPU) run."""
    types = ((a.device.get("type") or "").lower(), (b.device.get("type") or "").lower())
    if types == ("npu", "cuda"):
        return b, a, "the A100/GPU side: the standards' benchmark (标杆) is the GPU run the NPU is migrated from"
    return a, b, "side A (the first run), as the rest of the report"


def verdict(rows: list[Criterion], f: Figures) -> tuple[str, str]:
    by_key = {row.key: row for row in rows}
    conditions = [by_key["same_setup"], by_key["randomness_off"]]
    unmet = [row for row in conditions if row.result != PASS]
    if unmet:
        return CANNOT_TELL, "a condition of the standard is not met: " + "; ".join(
            f"{row.criterion} ({row.result})" for row in unmet)
    if not f.steps:
        return CANNOT_TELL, "no optimizer step with a finite loss in both runs"
    failed = [row.criterion for row in rows if row.result == FAIL]
    if failed:
        return NOT_ALIGNED, "fails: " + "; ".join(failed)
    unknown = [row.criterion for row in rows if row.result == CANNOT_TELL]
    if unknown:
        return CANNOT_TELL, "cannot tell: " + "; ".join(unknown)
    relaxed = [row.criterion for row in rows if row.result == PASS_IN_NOISE]
    return ALIGNED, ("every criterion passes" + (" (inside the baseline noise: " + "; ".join(relaxed) + ")"
                                                 if relaxed else ""))


def judge(a: Run, b: Run, candidates: list[Run] = ()) -> Standard:
    """Side A and side B's first runs; `candidates`: runs that may repeat the baseline (its side, --spread)."""
    base, other, why_base = pick_baseline(a, b)
    setup = alignment_reasons(base, other)
    f = figures(base, other) if not setup else Figures()
    noise = baseline_noise(base, other, list(candidates)) if not setup else Noise()
    record = [(r.summary_value("parity") or {}) for r in (base, other)]
    randomness = {"dropout": [dropout_used(base), dropout_used(other)],
                  "deterministic": [p.get("deterministic") for p in record]}
    rows = criteria_rows(f, noise, setup, randomness)
    result, why = verdict(rows, f)
    return Standard(base, other, why_base, f, noise, rows, result, why)


def for_pair(head, spread=()) -> Standard | None:
    """The compare report's pair (the first run of each headline side); repeats of the baseline may come
    from its side and from the --spread groups."""
    if head.side_a is None:
        return None
    candidates = head.side_a.runs + head.side_b.runs + [r for group in spread for r in group.runs]
    return judge(head.side_a.runs[0], head.side_b.runs[0], candidates)


def with_json(data: dict, steps, standard: Standard | None) -> dict:
    """headline.json plus `step_parity`: these criteria rows and the kit's per-step detail (null without a pair)."""
    detail = None if steps is None or not steps.aligned else {
        "max_abs": steps.max_abs, "mean_abs": steps.mean_abs, "max_relative": steps.max_relative,
        "first_beyond": steps.first_beyond, "rtol": steps.rtol, "atol": steps.atol, "correlation": steps.correlation}
    return {**data, "step_parity": None if standard is None else standard.as_json(detail)}


# -- the report blocks -------------------------------------------------------------------------------

def _measured_cell(row: Criterion) -> str:
    m = row.measured
    if m is None:
        return "n/a"
    if "value" in m:
        value = m["value"]
        if row.key == "randomness_off":
            return "dropout {} / {}, deterministic {} / {}".format(*value["dropout"], *value["deterministic"])
        if row.key == "finite_same_steps":
            return "none" if not value else f"{len(value)} step(s)"
        return str(value)
    return " / ".join(f"{k} {_pct(v) if k == 'rel' else _num(v)}" for k, v in m.items())


def _noise_cell(row: Criterion) -> str:
    if row.noise is None:
        return "—"
    return " / ".join(f"{k} {_pct(v) if k == 'rel' else _num(v)}" for k, v in row.noise.items()) \
        + f" ({row.noise_result})"


def _result_cell(row: Criterion) -> str:
    shown = f"**{row.result}**" if row.result == FAIL else row.result
    return shown + (f": {row.why}" if row.why else "")


def blocks(standard: Standard) -> list:
    from report.document import Bullets, Paragraph, Table

    s = standard
    out = [Paragraph(f"Judged by Ascend's published standards: baseline `{s.baseline.label}` ({s.baseline_why}), "
                     f"compared `{s.other.label}`. Relative errors are relative to the baseline's value. Sources: "
                     f"MindFormers migration precision standard, {MINDFORMERS.url} ; msprobe training "
                     f"precision guide, {MSPROBE.url} ; definitions in docs/parity.md."),
           Table(["criterion", "measured", "threshold", "baseline noise", "source", "result"],
                 [[row.criterion, _measured_cell(row), row.threshold_text, _noise_cell(row),
                   row.source.name.split(",")[0], _result_cell(row)] for row in s.rows]),
           Paragraph(f"**Step parity by the standard: {s.verdict}** — {s.why}.")]
    n = s.noise
    if n.measured:
        det = sorted({str(x) for x in n.deterministic})
        out.append(Paragraph(
            f"Baseline noise from {len(n.runs)} runs of the baseline ({', '.join(f'`{r}`' for r in n.runs)}; "
            f"{n.pairs} pairs, the largest figure over the pairs; deterministic: {', '.join(det)}). A row over "
            f"its threshold passes inside the noise when its figure is no larger than the noise's and, over the "
            f"run, the signs of the differences flip at ≥ {100 * OSCILLATION_MIN_FLIPS:.0f} % of steps "
            "(the standard repeats the baseline with determinism off)."))
    else:
        out.append(Paragraph("Baseline noise: not measured — give repeats of the baseline (the same parity run "
                             "again, e.g. with `--set deterministic=false`) with `--spread run1,run2`; without "
                             "them no inside-the-noise allowance applies."))
    if n.skipped:
        out += [Paragraph("Not used as repeats of the baseline:"), Bullets(n.skipped)]
    if s.figures.steps and len(s.figures.steps) < RECOMMENDED_STEPS:
        out.append(Paragraph(f"Note: {len(s.figures.steps)} steps compared; MindFormers recommends observing at "
                             f"least {RECOMMENDED_STEPS} (by default 5000 steps or 12 hours)."))
    return out
