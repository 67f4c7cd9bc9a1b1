"""Per-step loss parity: do two runs compute the same numbers, step by step?

`StepLosses` is a Trainer callback that keeps every training step's loss on the device (a forward
hook: no host sync inside the loop, one at the end), so any run can be compared step by step
whatever its logging interval. `compare` checks two such series against a stated fp32 tolerance.

Dropout must be off in both runs (a dropout-free model config): dropout draws its random masks over
the tensor's shape, so a batch padded to 512 and the same batch padded to its longest sentence get
different masks and are not step-identical even when the math is the same.
"""

from __future__ import annotations

import math

from transformers import TrainerCallback

# fp32 agreement of two runs of the same math that differ in kernel shapes (dynamic padding), kernel
# fusion (fused AdamW, torch.compile) or reduction order: |a - b| <= ATOL + RTOL * |b| at every step.
# Measured here (docs/performance.md): differences of ~1e-7 relative; a real change of the math
# (another learning rate, batch or sample order) moves the loss by >= 1e-3 within a few steps.
RTOL = 1e-4
ATOL = 1e-5


class StepLosses(TrainerCallback):
    """Every training forward's loss, detached, in step order (gradient accumulation 1)."""

    def __init__(self):
        self._losses = []
        self._handle = None

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        def keep(module, inputs, output):
            loss = getattr(output, "loss", None)
            if module.training and loss is not None:
                self._losses.append(loss.detach())
        self._handle = model.register_forward_hook(keep)

    def on_train_end(self, args, state, control, **kwargs):
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def values(self) -> list[float]:
        return [float(loss) for loss in self._losses]


def compare(losses: list[float], reference: list[float], rtol: float = RTOL, atol: float = ATOL) -> dict:
    """Step-by-step agreement of `losses` with `reference` (the same number of steps is required)."""
    if not losses or len(losses) != len(reference):
        return {"steps": min(len(losses), len(reference)), "agree": False, "max_abs_diff": None,
                "max_rel_diff": None, "first_step_over": None, "rtol": rtol, "atol": atol,
                "reason": f"step counts differ or are zero: {len(losses)} vs {len(reference)}"}
    diffs = [abs(a - b) for a, b in zip(losses, reference)]
    over = [i for i, (a, b) in enumerate(zip(losses, reference))
            if not math.isfinite(a) or not math.isfinite(b) or abs(a - b) > atol + rtol * abs(b)]
    return {"steps": len(losses), "agree": not over,
            "max_abs_diff": max(diffs), "max_rel_diff": max(d / max(abs(b), 1e-12) for d, b in zip(diffs, reference)),
            "first_step_over": over[0] + 1 if over else None, "rtol": rtol, "atol": atol, "reason": None}


def interval_means(losses: list[float], every: int) -> list[float]:
    """What logging every `every` steps reports: the mean of each full interval's per-step losses."""
    return [sum(losses[i:i + every]) / every for i in range(0, len(losses) - every + 1, every)]


def describe(result: dict) -> str:
    if result["max_abs_diff"] is None:
        return f"n/a ({result['reason']})"
    verdict = "agree" if result["agree"] else f"DIFFER from step {result['first_step_over']}"
    return (f"{verdict}: max |d loss| {result['max_abs_diff']:.2e} (rel {result['max_rel_diff']:.1e}) over "
            f"{result['steps']} steps, tolerance {result['atol']:g} + {result['rtol']:g}|loss|")
