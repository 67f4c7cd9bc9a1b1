"""The report's PNG charts (matplotlib, Agg backend: no display needed, same output everywhere).

Every value drawn comes from the run records; a value the record does not have is written
as "n/a" on the chart instead of being drawn as zero.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator

from report.curves import centred_moving_average, odd_window
from report.headline import number, suspect_epochs
from report.records import Run

DPI = 110
COLORS = plt.rcParams["axes.prop_cycle"].by_key()["color"]
# Two identical runs draw the same curve: a different dash per run keeps the one below visible.
LINE_STYLES = ["-", (0, (5, 3)), (0, (1, 2)), (0, (6, 2, 1, 2))]


def _color(i: int) -> str:
    return COLORS[i % len(COLORS)]


def _name(run: Run) -> str:
    return run.chart_label or run.label


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def _zero_based(ax, values: list) -> None:
    """Bars start at 0; with nothing to draw, say so instead of showing an empty negative axis."""
    if all(v is None for v in values):
        ax.set_ylim(0, 1)
        ax.set_yticks([])
        ax.text(0.5, 0.5, "no values in these run records", transform=ax.transAxes, ha="center",
                color="grey")
    else:
        ax.set_ylim(bottom=0)


def _bars(ax, labels: list[str], values: list, title: str, unit: str, fmt: str = "{:.1f}") -> None:
    """One bar per run; missing values are labelled n/a instead of drawn as zero."""
    drawn = [v if v is not None else 0 for v in values]
    bars = ax.bar(range(len(labels)), drawn, color=[_color(i) for i in range(len(labels))])
    for bar, value in zip(bars, values):
        text = "n/a" if value is None else fmt.format(value)
        ax.annotate(text, (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center", va="bottom", fontsize=8, xytext=(0, 2), textcoords="offset points")
    ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right", fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.set_ylabel(unit)
    ax.margins(y=0.15)
    _zero_based(ax, values)


def time_chart(runs: list[Run], path: Path) -> Path:
    fig, (total_ax, epoch_ax) = plt.subplots(1, 2, figsize=(11, 4))
    labels = [_name(r) for r in runs]
    _bars(total_ax, labels, [r.summary_value("train_seconds") for r in runs], "Total training time", "s")
    n_epochs = max((len(r.summary_value("epoch_seconds") or []) for r in runs), default=0)
    width = 0.8 / max(len(runs), 1)
    for i, run in enumerate(runs):
        seconds = run.summary_value("epoch_seconds") or []
        xs = [e + (i - (len(runs) - 1) / 2) * width for e in range(len(seconds))]
        epoch_ax.bar(xs, seconds, width=width, color=_color(i), label=_name(run))
        for epoch, value, _median in suspect_epochs(run):
            epoch_ax.annotate("suspect:\n> 3× median", (xs[epoch - 1], value), ha="center", va="bottom",
                              fontsize=7, color="#a00", xytext=(0, 2), textcoords="offset points")
        if not seconds:
            epoch_ax.annotate(f"{_name(run)}: n/a", (0.02, 0.95 - 0.06 * i), xycoords="axes fraction",
                              fontsize=8)
    epoch_ax.set_xticks(range(n_epochs), [f"epoch {e + 1}" for e in range(n_epochs)])
    epoch_ax.set_title("Training time per epoch", fontsize=10)
    epoch_ax.set_ylabel("s")
    if n_epochs:
        epoch_ax.legend(fontsize=8)
    return _save(fig, path)


MEMORY_SERIES = [
    ("peak_allocated_mb", "allocator: peak allocated"),
    ("peak_reserved_mb", "allocator: peak reserved"),
    ("device_used_mb_peak", "device-level: peak used (smi)"),
    ("host_rss_mb_peak", "host: process peak RSS (where no device memory)"),
]


def _memory(run: Run, key: str):
    """Host RSS is drawn only for runs without device memory (a CPU run), where it is all there is."""
    if key == "host_rss_mb_peak" and any(number(run.summary_value("memory", k)) is not None
                                         for k, _ in MEMORY_SERIES[:3]):
        return None
    return number(run.summary_value("memory", key))


def memory_chart(runs: list[Run], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(max(7, 2.2 * len(runs) + 3), 4.2))
    width = 0.8 / len(MEMORY_SERIES)
    for s, (key, name) in enumerate(MEMORY_SERIES):
        values = [_memory(r, key) for r in runs]
        xs = [i + (s - 1.5) * width for i in range(len(runs))]
        bars = ax.bar(xs, [v or 0 for v in values], width=width, label=name, color=_color(s),
                      hatch="//" if key == "host_rss_mb_peak" else None)
        for bar, value in zip(bars, values):
            ax.annotate("n/a" if value is None else f"{value:.0f}",
                        (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center", va="bottom", fontsize=7, xytext=(0, 2), textcoords="offset points")
    ax.set_xticks(range(len(runs)), [_name(r) for r in runs], rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("MB")
    ax.set_title("Peak memory: allocator (torch), device-level (nvidia-smi / npu-smi), host RSS where no device",
                 fontsize=10)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2)
    ax.margins(y=0.15)
    _zero_based(ax, [_memory(r, k) for r in runs for k, _ in MEMORY_SERIES])
    return _save(fig, path)


def loss_chart(runs: list[Run], path: Path, window: int) -> Path:
    """Raw loss (faint) and, when the window is wider than 1, its centred moving average (bold); each run
    in its own colour AND dash, so identical runs stay visible one over the other."""
    window = odd_window(window)
    fig, ax = plt.subplots(figsize=(11, 4.5))
    for i, run in enumerate(runs):
        steps = [row["step"] for row in run.train_steps]
        losses = [row.get("loss") for row in run.train_steps]
        style = LINE_STYLES[i % len(LINE_STYLES)]
        raw = [(s, v) for s, v in zip(steps, losses) if v is not None]
        if raw:
            ax.plot(*zip(*raw), color=_color(i), linestyle=style, alpha=0.4 if window > 1 else 1.0,
                    linewidth=0.8 if window > 1 else 1.6, label=f"{_name(run)}: raw ({len(raw)} points)")
        smooth = [(s, v) for s, v in zip(steps, centred_moving_average(losses, window)) if v is not None]
        if smooth and window > 1:
            ax.plot(*zip(*smooth), color=_color(i), linestyle=style, linewidth=1.8,
                    label=f"{_name(run)}: smoothed, W = {window} points")
    ax.set_xlabel("training step")
    ax.set_ylabel("training loss")
    ax.set_title(f"Loss per step: raw and centred moving average over W = {window} logged steps" if window > 1
                 else "Loss per step, raw: too few logged points to smooth (W = 1)", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def eval_chart(runs: list[Run], path: Path) -> Path:
    fig, (acc_ax, mcc_ax) = plt.subplots(1, 2, figsize=(11, 4))
    for i, run in enumerate(runs):
        epochs = [row.get("epoch") for row in run.evals]
        for ax, key in ((acc_ax, "accuracy"), (mcc_ax, "mcc")):
            points = [(e, row.get(key)) for e, row in zip(epochs, run.evals)
                      if e is not None and row.get(key) is not None]
            if points:
                ax.plot(*zip(*points), marker="o", color=_color(i), linestyle=LINE_STYLES[i % len(LINE_STYLES)],
                        label=_name(run))
    baselines = {r.majority_baseline for r in runs if r.majority_baseline is not None}
    for baseline in sorted(baselines):
        acc_ax.axhline(baseline, color="grey", linestyle="--", linewidth=1)
        acc_ax.annotate(f"majority baseline {baseline:.4f}", (0.01, baseline), xycoords=("axes fraction", "data"),
                        fontsize=7, color="grey", va="bottom")
    mcc_ax.axhline(0, color="grey", linestyle="--", linewidth=1)
    for ax, name in ((acc_ax, "Eval accuracy per epoch"), (mcc_ax, "Eval MCC per epoch")):
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # an epoch is a whole number
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _save(fig, path)


def throughput_chart(runs: list[Run], path: Path) -> Path:
    fig, (samples_ax, tokens_ax) = plt.subplots(1, 2, figsize=(11, 4))
    labels = [_name(r) for r in runs]
    _bars(samples_ax, labels, [r.summary_value("samples_per_second") for r in runs],
          "Training throughput: samples/s", "samples/s")
    _bars(tokens_ax, labels, [r.summary_value("real_tokens_per_second") for r in runs],
          "Training throughput: real (non-pad) tokens/s", "tokens/s")
    return _save(fig, path)


def parity_chart(result, a: Run, b: Run, path: Path) -> Path:
    """Loss difference B − A per matched step with the tolerance band, or why there is none."""
    fig, ax = plt.subplots(figsize=(11, 4))
    if result.aligned:
        ax.fill_between(result.steps, [-t for t in result.tolerances], result.tolerances, color="grey", alpha=0.25,
                        step="mid", label="tolerance band")
        ax.plot(result.steps, result.differences, color=_color(0), linewidth=1.0, marker=".", markersize=3,
                label=f"L({_name(b)}) − L({_name(a)})")
        if result.first_beyond is not None:
            ax.axvline(result.first_beyond, color="#a00", linestyle="--", linewidth=1,
                       label=f"first step beyond tolerance: {result.first_beyond}")
        ax.legend(fontsize=8)
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("loss difference")
    else:
        ax.set_axis_off()
        ax.text(0.5, 0.5, "not the same computation step by step:\n" + "\n".join(r.replace("`", "") for r in result.reasons),
                ha="center", va="center", fontsize=9, wrap=True)
    ax.set_title("Step-by-step parity: loss difference per matched optimizer step", fontsize=10)
    return _save(fig, path)


def energy_chart(runs: list[Run], path: Path) -> Path:
    from report.parity import energy

    fig, (wh_ax, power_ax) = plt.subplots(1, 2, figsize=(11, 4))
    labels = [_name(r) for r in runs]
    records = [energy(r) for r in runs]
    totals = [None if e["train_wh"] is None else e["train_wh"] + (e["eval_wh"] or 0.0) for e in records]
    _bars(wh_ax, labels, totals, "Energy, train + eval", "Wh", "{:.3f}")
    _bars(power_ax, labels, [e["mean_power_w"] for e in records], "Mean power while training", "W")
    reasons = [f"{label}: {e['reason']}" for label, e in zip(labels, records) if e["train_wh"] is None and e["reason"]]
    if reasons:
        fig.text(0.01, 0.01, "n/a — " + "; ".join(reasons)[:200], fontsize=7, color="grey")
    return _save(fig, path)


def draw_all(runs: list[Run], out_dir: Path, window: int) -> dict[str, Path]:
    """All charts, keyed by the name the report refers to them with."""
    return {
        "time": time_chart(runs, out_dir / "time.png"),
        "memory": memory_chart(runs, out_dir / "memory.png"),
        "loss": loss_chart(runs, out_dir / "loss.png", window),
        "eval": eval_chart(runs, out_dir / "eval.png"),
        "throughput": throughput_chart(runs, out_dir / "throughput.png"),
        "energy": energy_chart(runs, out_dir / "energy.png"),
    }
