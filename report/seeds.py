"""Seed statistics: failed runs, mean ± std over seeds, and whether two devices differ.

- A run FAILED when it did not finish, or its final accuracy is at or under the majority-class
  baseline of its own validation data (manifest.data.majority_baseline), or its final MCC <= 0.
- mean ± std are over the finished runs, std is the sample standard deviation (ddof=1).
- Devices differ beyond seed noise when Welch's t-test (scipy.stats.ttest_ind, equal_var=False)
  on the per-seed final MCC of two device groups, each with >= 2 finished seeds, gives p < ALPHA.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from report.records import Run

ALPHA = 0.05
MIN_SEEDS_FOR_TEST = 2


def failure_reason(run: Run) -> str | None:
    """Why the run counts as failed, or None when it did not fail."""
    if not run.complete:
        return "did not finish (no complete summary.json)"
    acc, mcc, baseline = run.final_accuracy, run.final_mcc, run.majority_baseline
    if acc is None or mcc is None:
        return "no final accuracy/MCC in summary.json"
    if baseline is not None and acc <= baseline:
        return f"accuracy {acc:.4f} <= majority baseline {baseline:.4f}"
    if mcc <= 0:
        return f"MCC {mcc:.4f} <= 0"
    return None


def mean_std(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    mean = statistics.fmean(values)
    return mean, (statistics.stdev(values) if len(values) >= 2 else None)


@dataclass
class SeedSummary:
    runs: int
    finished: int
    failed: int
    accuracy_mean: float | None
    accuracy_std: float | None
    mcc_mean: float | None
    mcc_std: float | None


def summarize(runs: list[Run]) -> SeedSummary:
    finished = [r for r in runs if r.complete and r.final_accuracy is not None and r.final_mcc is not None]
    acc_mean, acc_std = mean_std([r.final_accuracy for r in finished])
    mcc_mean, mcc_std = mean_std([r.final_mcc for r in finished])
    return SeedSummary(
        runs=len(runs),
        finished=len(finished),
        failed=sum(failure_reason(r) is not None for r in runs),
        accuracy_mean=acc_mean, accuracy_std=acc_std, mcc_mean=mcc_mean, mcc_std=mcc_std,
    )


@dataclass
class DeviceTest:
    device_a: str
    device_b: str
    n_a: int
    n_b: int
    t: float | None
    p: float | None
    verdict: str


def welch_mcc(device_a: str, mcc_a: list[float], device_b: str, mcc_b: list[float]) -> DeviceTest:
    from scipy import stats  # heavy import, only needed when there is something to test

    if len(mcc_a) < MIN_SEEDS_FOR_TEST or len(mcc_b) < MIN_SEEDS_FOR_TEST:
        return DeviceTest(device_a, device_b, len(mcc_a), len(mcc_b), None, None,
                          f"not tested: needs >= {MIN_SEEDS_FOR_TEST} finished seeds per device")
    if statistics.pvariance(mcc_a) == 0 and statistics.pvariance(mcc_b) == 0:
        p = math.nan  # scipy would warn and return NaN: t is undefined without any variance
    else:
        result = stats.ttest_ind(mcc_a, mcc_b, equal_var=False)
        t, p = float(result.statistic), float(result.pvalue)
    if math.isnan(p):
        # Both groups constant: the test is undefined; equal constants do not differ at all.
        same = statistics.fmean(mcc_a) == statistics.fmean(mcc_b)
        return DeviceTest(device_a, device_b, len(mcc_a), len(mcc_b), None, None,
                          "same MCC on every seed" if same else "undefined (no seed variance)")
    verdict = (f"differ beyond seed noise (p < {ALPHA})" if p < ALPHA
               else f"within seed noise (p >= {ALPHA})")
    return DeviceTest(device_a, device_b, len(mcc_a), len(mcc_b), t, p, verdict)


def device_tests(runs: list[Run]) -> list[DeviceTest]:
    """Welch's t between every pair of devices, on finished runs only."""
    groups: dict[str, list[float]] = {}
    for run in runs:
        if run.complete and run.final_mcc is not None:
            groups.setdefault(run.device_key, []).append(run.final_mcc)
    names = sorted(groups)
    return [
        welch_mcc(a, groups[a], b, groups[b])
        for i, a in enumerate(names) for b in names[i + 1:]
    ]
