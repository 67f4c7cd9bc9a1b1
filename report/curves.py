"""Loss smoothing and the loss-oscillation measures, defined once here (DEFINITIONS) and quoted
verbatim in the report so that "oscillates more" is a number with a stated meaning."""

from __future__ import annotations

import math

DEFAULT_WINDOW = 25  # the most points a window is chosen to span (auto_window's cap)
POINTS_PER_WINDOW = 10  # auto: a window spans about a tenth of the logged points

DEFINITIONS = [
    "L_i = training loss at the i-th logged step, in step order (NaN/inf losses are skipped).",
    ("Smoothed loss S_i: centred moving average over a window of W logged steps (W odd), "
    "S_i = mean(L_j for |j - i| <= (W-1)/2), the window shrinking at both ends of the run."),
    "Last epoch: the logged steps whose fractional epoch e satisfies e > ceil(max e) - 1.",
    ("Step-to-step oscillation: population standard deviation (ddof=0) of L_{i+1} - L_i over "
    "consecutive logged steps that both lie in the last epoch."),
    "Residual oscillation: population standard deviation (ddof=0) of L_i - S_i over the last epoch.",
    ("Both are in loss units; bigger means the curve jumps around more at the end of training. "
    "n/a: fewer than 3 points."),
]
MIN_POINTS = 3  # fewer points than this make a standard deviation meaningless


def odd_window(window: int) -> int:
    """A centred window needs an odd width; an even request is widened by one."""
    if window < 1:
        raise ValueError(f"smoothing window must be >= 1, got {window}")
    return window if window % 2 == 1 else window + 1


def auto_window(points: int, cap: int = DEFAULT_WINDOW) -> int:
    """The smoothing window chosen from the number of logged points: the largest odd number
    <= points / POINTS_PER_WINDOW, at least 1 (no smoothing) and at most `cap` (odd). A fixed 25 flattened
    the 16-point curve of the `fast` profile into one line; a tenth keeps the trend visible."""
    window = max(1, min(points // POINTS_PER_WINDOW, cap))
    return window if window % 2 == 1 else window - 1


def centred_moving_average(values: list[float | None], window: int) -> list[float | None]:
    window = odd_window(window)
    half = window // 2
    out: list[float | None] = []
    for i, value in enumerate(values):
        if value is None:
            out.append(None)
            continue
        neighbours = [v for v in values[max(0, i - half): i + half + 1] if v is not None]
        out.append(sum(neighbours) / len(neighbours))
    return out


def _pop_std(values: list[float]) -> float | None:
    if len(values) < MIN_POINTS:
        return None
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def last_epoch_mask(epochs: list[float | None]) -> list[bool]:
    known = [e for e in epochs if e is not None]
    if not known:
        return [True] * len(epochs)
    start = math.ceil(max(known)) - 1
    return [e is not None and e > start for e in epochs]


def oscillation(train_steps: list[dict], window: int = DEFAULT_WINDOW) -> dict:
    """Both oscillation measures over the last epoch, plus how many points they used."""
    losses = [row.get("loss") for row in train_steps]
    in_last = last_epoch_mask([row.get("epoch") for row in train_steps])
    smoothed = centred_moving_average(losses, window)
    diffs = [
        losses[i + 1] - losses[i]
        for i in range(len(losses) - 1)
        if in_last[i] and in_last[i + 1] and losses[i] is not None and losses[i + 1] is not None
    ]
    residuals = [
        loss - smooth
        for loss, smooth, last in zip(losses, smoothed, in_last)
        if last and loss is not None
    ]
    return {
        "step_diff_std": _pop_std(diffs),
        "residual_std": _pop_std(residuals),
        "points": len(residuals),
        "window": odd_window(window),
    }
