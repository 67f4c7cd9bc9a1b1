"""Training: the run (started by the suite, or --run-dir) is complete, learned, evaluated every epoch
and meets the thresholds of its profile in verify/published.json."""

from __future__ import annotations

import pytest

from verify.runrecord import completeness_problems, eval_problems, loss_problems, threshold_problems

pytestmark = pytest.mark.slow


def test_record_complete(run_record):
    problems = completeness_problems(run_record)
    assert not problems, "run record incomplete:\n  " + "\n  ".join(problems)


def test_loss_finite_and_decreasing(run_record):
    problems = loss_problems(run_record)
    assert not problems, "; ".join(problems)


def test_eval_every_epoch(run_record):
    problems = eval_problems(run_record)
    assert not problems, "; ".join(problems)


def test_thresholds(run_record, limits, verify_report):
    final = run_record.final
    shown = ", ".join(f"{metric} {final.get(metric, float('nan')):.4f} (>= {minimum})"
                      for metric, minimum in limits.items())
    verify_report["final"] = f"{run_record.profile} {run_record.directory}: {shown}"
    problems = threshold_problems(run_record, limits)
    assert not problems, "; ".join(problems)
