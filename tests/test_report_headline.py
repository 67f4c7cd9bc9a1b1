"""The headline (report/headline.py): the tutorial's three claims plus parity, with verdicts whose
rule is stated in the module docstring and docs/compare.md. Records written by hand in the
record's shape (test_report_units.write_run); the verdicts are known by construction."""

from __future__ import annotations

import copy
import json
import re

import pytest
from test_report_units import CONFIG, write_run

from report import comparability, compare, headline
from report.headline import CANNOT_TELL, DOES_NOT_HOLD, HOLDS
from report.records import load_runs

CPU = ("cpu", "x86_64")


def cpu_memory(rss: float) -> dict:
    return {"peak_allocated_mb": None, "peak_reserved_mb": None, "device_used_mb_peak": None,
            "device_total_mb": None, "host_rss_mb_peak": rss, "source": "none", "device_source": "none"}


def cpu_run(path, seconds=(10.0, 10.0, 10.0), rss=500.0, **kw):
    return write_run(path, device=CPU, epoch_seconds=seconds, memory=cpu_memory(rss), **kw)


def build(paths, spread=()):
    runs = load_runs(paths)
    flags = comparability.check_all(runs)
    groups = [headline.Group(f"g{i}", load_runs(g)) for i, g in enumerate(spread)]
    return headline.build(runs, flags, 5, groups)


def rows(head) -> dict:
    return {c.key: c for c in head.claims}


# -- the rule, at its boundaries ------------------------------------------------------------------------

def test_directional_rule_needs_the_difference_to_beat_the_spread():
    assert headline.directional(0.0, 0.0) == CANNOT_TELL  # equal figures never decide anything
    assert headline.directional(0.5, None) == CANNOT_TELL  # no spread measured: one run each decides nothing
    assert headline.directional(-0.5, None) == CANNOT_TELL
    assert headline.directional(0.05, 0.0) == HOLDS  # repeats that did not vary at all: the values decide
    assert headline.directional(-0.05, 0.0) == DOES_NOT_HOLD
    assert headline.directional(0.05, 0.05) == CANNOT_TELL  # exactly the spread is still noise
    assert headline.directional(0.0501, 0.05) == HOLDS
    assert headline.directional(-0.0501, 0.05) == DOES_NOT_HOLD
    assert headline.directional(None, 0.0) == CANNOT_TELL


def test_about_the_same_and_parity_rules():
    assert headline.about_the_same(0.05, 0.0) == HOLDS
    assert headline.about_the_same(0.0, None) == CANNOT_TELL  # no spread measured
    assert headline.about_the_same(0.05, 0.05) == HOLDS  # 0.10 <= 0.10
    assert headline.about_the_same(0.08, 0.05) == CANNOT_TELL  # the noise reaches over the tolerance
    assert headline.about_the_same(-0.5, 0.05) == DOES_NOT_HOLD
    assert headline.parity(0.0, 0.0, None, None) == HOLDS  # exactly equal
    assert headline.parity(0.001, 0.0, None, None) == CANNOT_TELL  # no seed spread: cannot call it
    assert headline.parity(0.01, 0.02, 0.01, 0.03) == HOLDS
    assert headline.parity(0.01, 0.04, 0.01, 0.03) == DOES_NOT_HOLD


def test_any_two_runs_of_a_spread_group_read_cannot_tell():
    # Spread relative to the group's smallest value: |B − A| / A of any pair is within it.
    values = [10.0, 13.7, 11.2]
    group = [type("R", (), {"v": v})() for v in values]
    s = headline.spread([headline.Group("g", group)], lambda r: r.v, relative=True).value
    for a in values:
        for b in values:
            assert headline.directional((b - a) / a, s) == CANNOT_TELL


# -- verdicts on records ------------------------------------------------------------------------------

def test_one_run_each_reads_cannot_tell_on_time_memory_and_oscillation_whatever_the_difference(tmp_path):
    # README's old example: +1.2 % on one run each read "faster: holds". Without a spread, no claim holds.
    head = build([cpu_run(tmp_path / "a", seconds=(10.0, 10.0, 10.0), rss=500.0),
                  cpu_run(tmp_path / "b", seconds=(20.0, 20.0, 20.0), rss=501.0,
                          losses=[0.7 + (0.2 if i % 2 else -0.2) for i in range(30)])])
    r = rows(head)
    assert (head.side_a.name, head.side_b.name) == ("run A", "run B")
    assert r["time"].relative == pytest.approx(1.0) and r["time"].verdict == CANNOT_TELL
    assert r["memory"].verdict == CANNOT_TELL and r["memory"].measure.startswith("`host_rss_mb_peak`")
    assert r["oscillation"].b > r["oscillation"].a and r["oscillation"].verdict == CANNOT_TELL
    assert all("one run each: no spread measured" in r[k].why for k in ("time", "memory", "oscillation"))
    assert "one run each" in head.basis and "read cannot tell" in head.basis


def test_identical_runs_with_a_spread_read_cannot_tell_on_time_and_hold_on_memory_and_parity(tmp_path):
    twins = [cpu_run(tmp_path / f"twin{i}") for i in range(2)]
    head = build([cpu_run(tmp_path / "a"), cpu_run(tmp_path / "b")], spread=[twins])
    r = rows(head)
    assert r["time"].verdict == CANNOT_TELL and r["time"].difference == 0.0
    assert r["oscillation"].verdict == CANNOT_TELL
    assert r["memory"].verdict == HOLDS and r["memory"].measure.startswith("`host_rss_mb_peak`")
    assert r["parity"].verdict == HOLDS


def test_a_slowed_run_reads_faster_holds_for_the_other_beyond_the_spread(tmp_path):
    fast = cpu_run(tmp_path / "fast", seconds=(10.0, 10.0, 10.0))
    slow = cpu_run(tmp_path / "slow", seconds=(13.0, 13.0, 13.0))  # +30 %
    repeats = [cpu_run(tmp_path / f"rep{i}", seconds=(s, s, s)) for i, s in enumerate((10.0, 10.5, 10.2))]
    head = build([fast, slow], spread=[repeats])
    time = rows(head)["time"]
    assert time.verdict == HOLDS
    assert time.a == 30.0 and time.b == 39.0 and time.difference == 9.0 and time.relative == pytest.approx(0.3)
    assert "spread 5.0 % from g0 (3 runs)" in time.why  # (31.5 - 30) / 30
    # the other way round the claim (A faster) does not hold, and the why says who is faster
    reverse = rows(build([slow, fast], spread=[repeats]))["time"]
    assert reverse.verdict == DOES_NOT_HOLD and reverse.why.startswith("run B is the faster one")
    # a spread wider than the difference makes it noise
    noisy = [cpu_run(tmp_path / f"noisy{i}", seconds=(s, s, s)) for i, s in enumerate((10.0, 14.0))]
    assert rows(build([fast, slow], spread=[noisy]))["time"].verdict == CANNOT_TELL


def test_repeated_runs_in_runs_give_the_spread_and_side_means(tmp_path):
    npu = [write_run(tmp_path / f"npu{i}", seed=i, epoch_seconds=(s, s, s), mcc=m)
           for i, (s, m) in enumerate(((100.0, 0.57), (101.0, 0.58)))]
    gpu = [write_run(tmp_path / f"gpu{i}", seed=i, device=("cuda", "NVIDIA A100-SXM4-80GB"),
                     epoch_seconds=(s, s, s), mcc=m) for i, (s, m) in enumerate(((110.0, 0.575), (112.0, 0.565)))]
    head = build([*gpu, *npu])  # given A100 first: the NPU is still side A
    assert (head.side_a.name, head.side_b.name) == ("NPU", "A100")
    r = rows(head)
    assert r["time"].a == pytest.approx(301.5) and r["time"].b == pytest.approx(333.0)
    assert r["time"].verdict == HOLDS  # +10.4 % against a spread of 2/110 = 1.8 %
    assert r["parity"].verdict == HOLDS  # MCC 0.575 vs 0.570 within the seed range 0.01
    assert "seed spread: accuracy 0.0000" in r["parity"].why


def test_a_not_comparable_pair_reads_cannot_tell_with_the_reason(tmp_path):
    other = copy.deepcopy(CONFIG)
    other["train"]["learning_rate"] = 3e-5
    head = build([cpu_run(tmp_path / "a"), cpu_run(tmp_path / "b", seconds=(30.0, 30.0, 30.0), config=other)])
    assert not head.comparable
    assert head.reasons == ["`b` NOT comparable: config differs (`train.learning_rate: 2e-05 → 3e-05`)"]
    assert {c.verdict for c in head.claims} == {CANNOT_TELL}
    assert all(c.why.startswith("not comparable") for c in head.claims)


def test_memory_about_the_same_uses_one_figure_for_both_sides(tmp_path):
    twins = [[cpu_run(tmp_path / f"twin{i}", rss=500.0) for i in range(2)]]   # a measured spread of 0
    head = build([cpu_run(tmp_path / "a", rss=500.0), cpu_run(tmp_path / "b", rss=540.0)], spread=twins)
    memory = rows(head)["memory"]
    assert (memory.a, memory.b, memory.relative, memory.verdict) == (500.0, 540.0, pytest.approx(0.08), HOLDS)
    assert "no device memory" in memory.measure
    far = rows(build([cpu_run(tmp_path / "c", rss=500.0), cpu_run(tmp_path / "d", rss=800.0)], spread=twins))["memory"]
    assert far.verdict == DOES_NOT_HOLD
    # a device run beside a CPU run: no common figure, no verdict
    mixed = rows(build([write_run(tmp_path / "e"), cpu_run(tmp_path / "f")]))["memory"]
    assert mixed.verdict == CANNOT_TELL and mixed.a is None


def test_oscillation_claim_reads_the_noisier_curve(tmp_path):
    calm = [0.7 - 0.01 * i for i in range(30)]
    wild = [0.7 - 0.01 * i + (0.05 if i % 2 else -0.05) for i in range(30)]
    twins = [[cpu_run(tmp_path / f"twin{i}", losses=calm) for i in range(2)]]
    r = rows(build([cpu_run(tmp_path / "a", losses=calm), cpu_run(tmp_path / "b", losses=wild)], spread=twins))
    assert r["oscillation"].verdict == HOLDS and r["oscillation"].b > r["oscillation"].a
    r = rows(build([cpu_run(tmp_path / "c", losses=wild), cpu_run(tmp_path / "d", losses=calm)], spread=twins))
    assert r["oscillation"].verdict == DOES_NOT_HOLD


def test_a_suspect_epoch_is_named_in_the_headline_and_the_time_section(tmp_path):
    slow = cpu_run(tmp_path / "loaded", seconds=(2.5, 2.5, 130.0))
    out = tmp_path / "report"
    assert compare.main([str(cpu_run(tmp_path / "ok", seconds=(2.5, 2.5, 2.6))), str(slow), "--out", str(out)]) == 0
    text = (out / "report.md").read_text()
    assert "`loaded` epoch 3 took 130.0 s, over 3× its median 2.5 s: suspect (machine load?)" in text
    assert "**suspect epoch**: `loaded` epoch 3 took 130.00 s" in text
    assert "`ok` epoch" not in text  # 2.6 s is not 3x 2.5 s


# -- the report and the JSON -------------------------------------------------------------------------

def test_headline_comes_first_and_json_carries_the_same_rows(tmp_path, capsys):
    a = cpu_run(tmp_path / "a", seconds=(10.0, 10.0, 10.0))
    b = cpu_run(tmp_path / "b", seconds=(12.0, 12.0, 12.0))
    twins = tmp_path / "twins"
    for i in range(2):
        cpu_run(twins / f"seed-{i}", seconds=(10.0, 10.0, 10.0))
    out = tmp_path / "report"
    assert compare.main([str(a), str(b), "--out", str(out), "--format", "json", "--spread", str(twins)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((out / "headline.json").read_text())
    assert [r["key"] for r in printed["rows"]] == ["time", "memory", "oscillation", "parity"]
    time = printed["rows"][0]
    summary_a = json.loads((a / "summary.json").read_text())
    summary_b = json.loads((b / "summary.json").read_text())
    assert (time["a"], time["b"]) == (summary_a["train_seconds"], summary_b["train_seconds"])
    assert time["verdict"] == "holds" and printed["side_a"] == {"name": "run A", "runs": ["a"]}
    text = (out / "report.md").read_text()
    first_screen = text.split("## Runs")[0]
    for claim in ("NPU slightly faster than A100 over 3 epochs", "device memory about the same",
                  "A100 loss oscillates more", "same final accuracy and MCC"):
        assert claim in first_screen
    assert "| NPU slightly faster than A100 over 3 epochs | run A faster than run B over 3 epochs | train_seconds, s " \
           "| 30.00 s | 36.00 s | +6.00 s | +20.0 % | **holds** |" in first_screen
    assert "claims, re-measured" in (out / "report.html").read_text().split("<h2>Runs</h2>")[0]


def test_console_prints_the_headline_before_the_run_table(tmp_path, capsys):
    out = tmp_path / "report"
    assert compare.main([str(cpu_run(tmp_path / "a")), str(cpu_run(tmp_path / "b")), "--out", str(out)]) == 0
    console = capsys.readouterr().out
    assert console.index("verdict") < console.index("samples/s")
    table = {re.split(r"\s{2,}", line.strip())[0]: re.split(r"\s{2,}", line.strip())[1:]
             for line in console.split("\n\n")[0].splitlines()}
    assert table["faster"] == ["30.00 s", "30.00 s", "+0.00 s", "+0.0 %", "cannot tell"]
    assert table["accuracy/MCC parity"][-1] == "holds"
    assert "A = run A: a — cpu: x86_64; B = run B: b — cpu: x86_64." in console


def test_a_stability_directory_is_expanded_and_its_logs_skipped(tmp_path, capsys):
    stab = tmp_path / "stability-smoke"
    for seed, s in ((42, 10.0), (43, 11.0)):
        cpu_run(stab / f"seed-{seed}", seed=seed, seconds=(s, s, s))
        (stab / f"seed-{seed}.log").write_text("log\n")
    out = tmp_path / "report"
    paths = sorted(str(p) for p in stab.glob("seed-*"))  # what the shell makes of seed-*
    assert compare.main([*paths, "--out", str(out), "--spread", str(stab), "--format", "json"]) == 0
    captured = capsys.readouterr()
    assert "seed-42.log: a file, not a run directory; skipped" in captured.err
    printed = json.loads(captured.out)
    assert printed["rows"][0]["verdict"] == "cannot tell"  # the two seeds ARE the spread
    assert "--spread" in printed["basis"] and "2 runs" in printed["basis"]
