"""report/parity_standard.py: step parity judged by the published standards (MindFormers' migration
precision standard, msprobe's training guide), on run records written by hand in the shape of
docs/run-record.md: each threshold just inside and just outside, the "or" of absolute and relative,
a missing grad norm, the conditions of the standard, the baseline's side, and the inside-the-noise rule
with --spread. Real CPU runs: tests/test_report_parity.py (slow)."""

from __future__ import annotations

import copy
import json

import pytest
from test_report_parity import parity_record, run
from test_report_units import CONFIG

from report import compare, parity_standard
from report.parity_standard import (
    ALIGNED,
    CANNOT_TELL,
    FAIL,
    NOT_ALIGNED,
    PASS,
    PASS_IN_NOISE,
    either_below,
    sign_flips,
)
from report.records import load_run

STEPS = 30
CONFIG_DET = {**copy.deepcopy(CONFIG), "deterministic": True}


def losses(value=0.5, n=STEPS):
    return [value] * n


def shifted(base, delta, steps=None):
    """`base` with `delta` added at the given 1-based steps (all by default); delta may be a list per step."""
    out = list(base)
    for i, step in enumerate(steps or range(1, len(base) + 1)):
        out[step - 1] += delta[i] if isinstance(delta, list) else delta
    return out


def write(path, loss_values, grad_norms=None, config=CONFIG_DET, device=("cpu", "x86_64"), record=None):
    """A run record; `grad_norms` replaces metrics.jsonl's grad_norm per step (None: drop the key)."""
    run(path, losses=loss_values, config=config, device=device, record=record)
    if grad_norms is not None:
        lines = [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]
        for line in lines:
            if line["kind"] == "train":
                value = grad_norms[line["step"] - 1]
                if value is None:
                    del line["grad_norm"]
                else:
                    line["grad_norm"] = value
        (path / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def judge(tmp_path, base_losses, other_losses, base_grads=None, other_grads=None, repeats=(), **kw):
    a = load_run(write(tmp_path / "a", base_losses, base_grads, **kw))
    b = load_run(write(tmp_path / "b", other_losses, other_grads, **kw))
    candidates = [load_run(write(tmp_path / f"r{i}", r, **kw)) for i, r in enumerate(repeats)]
    return parity_standard.judge(a, b, candidates)


def rows(result):
    return {row.key: row for row in result.rows}


# -- the arithmetic -----------------------------------------------------------------------------------

def test_sign_flips_count_changes_between_nonzero_differences():
    assert sign_flips([0.1, -0.1, 0.1]) == 1.0
    assert sign_flips([0.1, 0.2, 0.3]) == 0.0
    assert sign_flips([0.0, 0.1, 0.0, -0.2, -0.1]) == 0.5     # zeros are skipped: +, −, −
    assert sign_flips([0.0, 0.3]) is None and sign_flips([]) is None


def test_either_below_is_strict_and_an_or():
    assert either_below(0.0049, 0.9, 0.005, 0.005) == PASS       # absolute alone is enough
    assert either_below(0.9, 0.0049, 0.005, 0.005) == PASS       # relative alone is enough
    assert either_below(0.005, 0.005, 0.005, 0.005) == FAIL      # "less than": the limit itself fails
    assert either_below(None, 0.004, 0.005, 0.005) == PASS
    assert either_below(None, None, 0.005, 0.005) == CANNOT_TELL


# -- identical runs -----------------------------------------------------------------------------------

def test_identical_runs_are_aligned_on_every_criterion(tmp_path):
    result = judge(tmp_path, losses(), losses())
    assert result.verdict == ALIGNED and result.why == "every criterion passes"
    assert [row.key for row in result.rows] == ["same_setup", "randomness_off", "finite_same_steps", "first_loss",
                                                "mean_loss", "msprobe_mean_rel", "grad_norm"]
    assert all(row.result == PASS for row in result.rows)
    assert rows(result)["mean_loss"].measured == {"abs": 0.0, "rel": 0.0}
    assert len(result.figures.steps) == STEPS and result.noise.pairs == 0


# -- first-step loss: abs < 0.005 or rel < 0.5 % --------------------------------------------------------

@pytest.mark.parametrize(("level", "delta", "expected"), [
    (0.5, 0.0049, PASS),   # abs just inside (rel 0.98 %: outside) -> the "or" passes
    (0.5, 0.0051, FAIL),   # abs just outside, rel 1.02 % outside
    (2.0, 0.0099, PASS),   # abs outside, rel 0.495 % just inside
    (2.0, 0.0101, FAIL),   # rel 0.505 % just outside, abs outside
    (2.0, -0.0101, FAIL),  # the sign does not matter
])
def test_first_step_threshold(tmp_path, level, delta, expected):
    result = judge(tmp_path, losses(level), shifted(losses(level), delta, [1]))
    row = rows(result)["first_loss"]
    assert row.result == expected
    assert row.measured["abs"] == pytest.approx(abs(delta)) and row.measured["rel"] == pytest.approx(abs(delta) / level)
    assert row.criterion == "first-step loss error (step 1)"
    assert result.verdict == (ALIGNED if expected == PASS else NOT_ALIGNED)


def test_the_first_step_is_the_first_step_both_logged(tmp_path):
    base = losses()
    other = shifted(base, 0.0051, [2])
    a = load_run(write(tmp_path / "a", base))
    b_path = write(tmp_path / "b", other)
    lines = [json.loads(line) for line in (b_path / "metrics.jsonl").read_text().splitlines()]
    (b_path / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines
                                                  if not (line["kind"] == "train" and line["step"] == 1)))
    row = rows(parity_standard.judge(a, load_run(b_path)))["first_loss"]
    assert row.criterion == "first-step loss error (step 2)" and row.result == FAIL


# -- mean loss error: abs < 0.01 or rel < 1 %; msprobe: rel <= 1 % -------------------------------------------

def mean_shift(level, mean_abs, flips=False):
    """Losses whose difference to a constant `level` is 0 at step 1 and +-d after it, with mean |d| = mean_abs."""
    d = mean_abs * STEPS / (STEPS - 1)
    deltas = [d * (-1) ** i if flips else d for i in range(STEPS - 1)]
    return shifted(losses(level), deltas, list(range(2, STEPS + 1)))


@pytest.mark.parametrize(("level", "mean_abs", "mindformers", "msprobe"), [
    (0.5, 0.0099, PASS, FAIL),   # abs just inside; rel 1.98 %: MindFormers' "or" passes, msprobe's 1 % fails
    (0.5, 0.0101, FAIL, FAIL),   # abs just outside, rel 2.02 %
    (2.0, 0.0101, PASS, PASS),   # abs outside, rel 0.505 % inside
    (1.0, 0.0099, PASS, PASS),   # rel 0.99 %: inside both
    (1.0, 0.0101, FAIL, FAIL),   # rel 1.01 %: just outside both
])
def test_mean_loss_thresholds(tmp_path, level, mean_abs, mindformers, msprobe):
    result = judge(tmp_path, losses(level), mean_shift(level, mean_abs))
    found = rows(result)
    assert found["mean_loss"].measured["abs"] == pytest.approx(mean_abs)
    assert found["mean_loss"].measured["rel"] == pytest.approx(mean_abs / level)
    assert found["msprobe_mean_rel"].measured == {"rel": pytest.approx(mean_abs / level)}
    assert (found["mean_loss"].result, found["msprobe_mean_rel"].result) == (mindformers, msprobe)
    assert found["first_loss"].result == PASS
    assert result.verdict == (ALIGNED if PASS == mindformers == msprobe else NOT_ALIGNED)
    if result.verdict == NOT_ALIGNED:
        assert result.why == "fails: " + "; ".join(
            name for name, r in (("mean loss error over the run", mindformers),
                                 ("mean relative loss error", msprobe)) if r == FAIL)


def test_msprobe_limit_itself_passes(tmp_path):
    """msprobe: not aligned when the mean relative error is GREATER than 1 %; exactly 1 % is not."""
    result = judge(tmp_path, losses(100.0), losses(101.0))   # |d| / L = 1 / 100, exactly the float 0.01
    row = rows(result)["msprobe_mean_rel"]
    assert row.measured["rel"] == 0.01 and row.result == PASS


def test_relative_errors_leave_out_steps_where_the_baseline_loss_is_zero(tmp_path):
    base = losses(1.0)
    base[4] = 0.0
    other = list(base)
    other[4] = 0.3                                    # abs 0.3 at a zero baseline: no relative error there
    found = rows(judge(tmp_path, base, other))
    assert found["mean_loss"].measured == {"abs": pytest.approx(0.3 / STEPS), "rel": 0.0}


# -- grad norm: mean relative error <= 10 %, cannot tell without it ------------------------------------------

@pytest.mark.parametrize(("other_norm", "expected"), [(10.999, PASS), (11.0, PASS), (11.001, FAIL), (8.999, FAIL)])
def test_grad_norm_threshold(tmp_path, other_norm, expected):
    """"does not exceed 10 %": 11 against 10 is exactly the float 0.1 and passes."""
    result = judge(tmp_path, losses(), losses(), [10.0] * STEPS, [other_norm] * STEPS)
    row = rows(result)["grad_norm"]
    assert row.measured == {"rel": pytest.approx(abs(other_norm - 10.0) / 10.0)} and row.result == expected
    assert result.verdict == (ALIGNED if expected == PASS else NOT_ALIGNED)


@pytest.mark.parametrize("which", ["base", "other"])
def test_a_missing_grad_norm_cannot_tell_that_row(tmp_path, which):
    grads = [1.0] * STEPS
    grads[6] = None                                   # step 7 has no grad_norm
    base_grads, other_grads = (grads, None) if which == "base" else (None, grads)
    result = judge(tmp_path, losses(), losses(), base_grads, other_grads)
    row = rows(result)["grad_norm"]
    assert row.result == CANNOT_TELL and row.measured == {"rel": None}
    assert row.why == "no grad_norm at 1 of 30 matched steps (first: step 7) in metrics.jsonl"
    assert all(r.result == PASS for r in result.rows if r.key != "grad_norm")
    assert result.verdict == CANNOT_TELL and result.why == "cannot tell: global grad-norm mean relative error"


def test_a_failing_loss_outweighs_a_missing_grad_norm(tmp_path):
    result = judge(tmp_path, losses(), mean_shift(0.5, 0.02), [None] * STEPS, None)
    assert rows(result)["grad_norm"].result == CANNOT_TELL and result.verdict == NOT_ALIGNED


# -- the conditions of the standard ---------------------------------------------------------------------

def test_a_loss_finite_in_one_run_only_fails(tmp_path):
    other = losses()
    other[11] = None                                   # step 12 diverged (recorded as null) in one run only
    result = judge(tmp_path, losses(), other)
    row = rows(result)["finite_same_steps"]
    assert row.result == FAIL and row.measured == {"value": [12]} and row.source is parity_standard.KIT
    assert result.verdict == NOT_ALIGNED and len(result.figures.steps) == STEPS - 1


def test_dropout_on_cannot_tell_even_with_equal_losses(tmp_path):
    result = judge(tmp_path, losses(), losses(), record=parity_record(dropout=0.1))
    found = rows(result)
    assert found["randomness_off"].result == FAIL and found["mean_loss"].result == PASS
    assert result.verdict == CANNOT_TELL
    assert result.why == ("a condition of the standard is not met: randomness off (dropout 0, deterministic "
                          "algorithms on) (fail)")


def test_not_the_same_computation_cannot_tell_and_has_no_loss_rows(tmp_path):
    a = load_run(write(tmp_path / "a", losses()))
    b = load_run(write(tmp_path / "b", losses(), record=parity_record(weights="v" * 64)))
    result = parity_standard.judge(a, b)
    assert [row.key for row in result.rows] == ["same_setup", "randomness_off"]
    assert rows(result)["same_setup"].measured == {"value": "initial weights differ (initial_weights_sha256)"}
    assert result.verdict == CANNOT_TELL


def test_the_gpu_is_the_baseline_against_an_npu(tmp_path):
    """The standards measure the migrated NPU run against the GPU benchmark: relative to the GPU's loss."""
    npu = load_run(write(tmp_path / "npu", [1.0101] * STEPS, device=("npu", "Ascend910B3")))
    gpu = load_run(write(tmp_path / "gpu", losses(1.0), device=("cuda", "NVIDIA A100-SXM4-80GB")))
    result = parity_standard.judge(npu, gpu)
    assert result.baseline is gpu and result.other is npu
    row = rows(result)["msprobe_mean_rel"]
    assert row.measured["rel"] == pytest.approx(0.0101) and row.result == FAIL   # 0.0101 / 1.0101 would pass
    assert parity_standard.judge(gpu, npu).baseline is gpu                      # whatever the order given


# -- the baseline's noise (--spread) and the inside-the-noise rule ------------------------------------------

NOISY_REPEAT = mean_shift(0.5, 0.03, flips=True)      # the baseline against itself: mean |d| 0.03, rel 6 %


def test_inside_the_noise_and_oscillating_passes(tmp_path):
    result = judge(tmp_path, losses(), mean_shift(0.5, 0.02, flips=True), repeats=[NOISY_REPEAT])
    found = rows(result)
    assert result.noise.runs == ["a", "r0"] and result.noise.pairs == 1
    assert found["mean_loss"].noise == {"abs": pytest.approx(0.03), "rel": pytest.approx(0.06)}
    assert found["mean_loss"].noise_result == FAIL                    # the baseline fails the standard itself
    assert found["mean_loss"].result == found["msprobe_mean_rel"].result == PASS_IN_NOISE
    assert found["mean_loss"].why == ("over the threshold but no larger than the baseline's own noise; signs flip "
                                      "at 100 % of steps")
    assert result.verdict == ALIGNED
    assert result.why == ("every criterion passes (inside the baseline noise: mean loss error over the run; "
                          "mean relative loss error)")


def test_inside_the_noise_but_one_sided_fails(tmp_path):
    result = judge(tmp_path, losses(), mean_shift(0.5, 0.02), repeats=[NOISY_REPEAT])
    row = rows(result)["mean_loss"]
    assert row.result == FAIL and row.why == "over the threshold and one-sided: signs flip at 0 % of steps, under 25 %"
    assert result.verdict == NOT_ALIGNED


@pytest.mark.parametrize(("signs", "expected", "why"), [
    ([1] * 22 + [-1, 1, -1, 1, -1, 1, -1], PASS_IN_NOISE, "flip at 25 % of steps"),        # 7 flips in 28 pairs
    ([1] * 23 + [-1, 1, -1, 1, -1, 1], FAIL, "one-sided: signs flip at 21 % of steps, under 25 %"),   # 6 in 28
])
def test_the_oscillation_threshold_is_a_quarter_of_the_steps(tmp_path, signs, expected, why):
    d = 0.02 * STEPS / (STEPS - 1)
    other = shifted(losses(), [s * d for s in signs], list(range(2, STEPS + 1)))
    row = rows(judge(tmp_path, losses(), other, repeats=[NOISY_REPEAT]))["mean_loss"]
    assert row.measured["abs"] == pytest.approx(0.02)          # inside the noise (0.03) either way
    assert row.result == expected and why in row.why


def test_outside_the_noise_fails_even_when_oscillating(tmp_path):
    result = judge(tmp_path, losses(), mean_shift(0.5, 0.031, flips=True), repeats=[NOISY_REPEAT])
    row = rows(result)["mean_loss"]
    assert row.result == FAIL and row.why == "over the threshold and larger than the baseline's own noise"


def test_the_first_step_inside_the_noise_needs_no_oscillation(tmp_path):
    repeat = shifted(losses(), 0.01, [1])             # the baseline's own first step moves by 0.01
    result = judge(tmp_path, losses(), shifted(losses(), 0.006, [1]), repeats=[repeat])
    row = rows(result)["first_loss"]
    assert row.result == PASS_IN_NOISE and row.noise == {"abs": pytest.approx(0.01), "rel": pytest.approx(0.02)}
    outside = judge(tmp_path / "out", losses(), shifted(losses(), 0.011, [1]), repeats=[repeat])
    assert rows(outside)["first_loss"].result == FAIL


def test_the_grad_norm_inside_the_noise(tmp_path):
    a = load_run(write(tmp_path / "a", losses(), [1.0] * STEPS))
    b = load_run(write(tmp_path / "b", losses(), [1.12, 0.88] * (STEPS // 2)))     # 12 %, oscillating
    r = load_run(write(tmp_path / "r", losses(), [1.15] * STEPS))                  # the baseline's own 15 %
    row = rows(parity_standard.judge(a, b, [r]))["grad_norm"]
    assert row.result == PASS_IN_NOISE and row.noise == {"rel": pytest.approx(0.15)} and row.noise_result == FAIL
    assert rows(parity_standard.judge(a, b))["grad_norm"].result == FAIL           # without the repeat


def test_noise_is_the_largest_over_every_pair_of_repeats(tmp_path):
    result = judge(tmp_path, losses(), losses(), repeats=[mean_shift(0.5, 0.01, flips=True),
                                                            mean_shift(0.5, 0.03, flips=True)])
    assert result.noise.runs == ["a", "r0", "r1"] and result.noise.pairs == 3
    # pairs: a-r0 0.01, a-r1 0.03, r0-r1 0.02 (d alternates in phase: |0.03 - 0.01| per step)
    assert result.noise.mean_abs == pytest.approx(0.03)


def test_only_repeats_of_the_baseline_count_as_noise(tmp_path):
    config = copy.deepcopy(CONFIG_DET)
    config["deterministic"] = False                                      # allowed: the standard turns it off
    a = load_run(write(tmp_path / "a", losses()))
    b = load_run(write(tmp_path / "b", losses()))
    repeat = load_run(write(tmp_path / "repeat", NOISY_REPEAT, config=config))
    seed = load_run(write(tmp_path / "seed", NOISY_REPEAT, record=parity_record(weights="v" * 64)))
    other_lr = copy.deepcopy(CONFIG_DET)
    other_lr["train"]["learning_rate"] = 3e-5
    lr = load_run(write(tmp_path / "lr", NOISY_REPEAT, config=other_lr))
    gpu = load_run(write(tmp_path / "gpu", NOISY_REPEAT, device=("cuda", "NVIDIA A100-SXM4-80GB")))
    noise = parity_standard.judge(a, b, [a, b, repeat, seed, lr, gpu]).noise
    assert noise.runs == ["a", "repeat"]
    assert noise.skipped == ["`seed`: initial weights differ (initial_weights_sha256)",
                             "`lr`: config differs (`train.learning_rate: 2e-05 → 3e-05`)",
                             "`gpu`: another device (cuda: NVIDIA A100-SXM4-80GB)"]


# -- the report and the JSON ------------------------------------------------------------------------------

def test_compare_reports_the_criteria_table_noise_and_json(tmp_path, capsys):
    a = write(tmp_path / "a", losses())
    b = write(tmp_path / "b", mean_shift(0.5, 0.02, flips=True))
    r1, r2 = write(tmp_path / "r1", NOISY_REPEAT), write(tmp_path / "r2", losses())
    out = tmp_path / "report"
    assert compare.main([str(a), str(b), "--out", str(out), "--spread", f"{r2},{r1}", "--format", "json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((out / "headline.json").read_text())
    data = printed["step_parity"]
    assert data["schema"] == "kit.step-parity-standard/1" and data["verdict"] == ALIGNED
    assert data["baseline"] == "a" and data["other"] == "b" and data["matched_steps"] == STEPS
    assert data["noise"]["runs"] == ["a", "r2", "r1"] and data["noise"]["pairs"] == 3
    row = next(r for r in data["rows"] if r["key"] == "mean_loss")
    assert row["threshold"] == {"abs": 0.01, "rel": 0.01, "comparison": "<", "combine": "or"}
    assert row["source"]["url"] == parity_standard.MINDFORMERS.url and row["result"] == PASS_IN_NOISE
    assert data["detail"]["first_beyond"] == 2 and data["detail"]["rtol"] == 1e-3
    text = (out / "report.md").read_text()
    assert "| criterion | measured | threshold | baseline noise | source | result |" in text
    assert ("| mean loss error over the run | abs 0.02 / rel 4 % | abs < 0.01 or rel < 1 % | abs 0.03 / rel 6 % "
            "(fail) | MindSpore MindFormers | pass (inside the baseline noise): over the threshold but no larger "
            "than the baseline's own noise; signs flip at 100 % of steps |") in text
    assert "**Step parity by the standard: aligned**" in text
    assert "Baseline noise from 3 runs of the baseline (`a`, `r2`, `r1`; 3 pairs" in text
    assert "Note: 30 steps compared; MindFormers recommends observing at least 1000" in text
    assert "| 30 | 0.02069 | 0.02 | 0.04138 | 2 |" in text            # the kit's per-step detail stays below


def test_compare_without_repeats_says_the_noise_is_not_measured(tmp_path, capsys):
    a, b = write(tmp_path / "a", losses()), write(tmp_path / "b", mean_shift(0.5, 0.02, flips=True))
    out = tmp_path / "report"
    assert compare.main([str(a), str(b), "--out", str(out), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)["step_parity"]
    assert data["verdict"] == NOT_ALIGNED and data["noise"]["pairs"] == 0
    assert all(row["noise"] is None for row in data["rows"])
    assert "Baseline noise: not measured" in (out / "report.md").read_text()


def test_json_step_parity_is_null_with_one_run(tmp_path, capsys):
    assert compare.main([str(write(tmp_path / "a", losses())), "--out", str(tmp_path / "r"),
                         "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["step_parity"] is None
