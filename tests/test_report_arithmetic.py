"""report/ arithmetic on hand-made records, in the quick (not slow) suite: every derived figure is
computed against the right run (the first one given), so a reference mix-up fails here, not only in
the slow end-to-end file (tests/test_report_real_runs.py)."""

from __future__ import annotations

import math

import pytest
from test_report_units import write_run

from recipe.config import flatten
from report import comparability, compare, curves, seeds


def table_rows(markdown: str, first_header: str) -> dict[str, dict[str, str]]:
    """{run label: {header: cell}} of the markdown table whose header row starts with `first_header`."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    headers = [h.strip() for h in lines[start].strip("|").split("|")]
    rows = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = dict(zip(headers, cells))
    return rows


def test_training_time_is_relative_to_the_first_run_given(tmp_path):
    runs = [write_run(tmp_path / "first", epoch_seconds=(600.0, 600.0, 600.0)),        # 1800 s: the reference
            write_run(tmp_path / "faster", epoch_seconds=(400.0, 400.0, 400.0)),       # 1200 s
            write_run(tmp_path / "slower", epoch_seconds=(900.0, 900.0, 900.0),        # 2700 s
                      losses=[0.7 - 0.01 * i for i in range(29)] + [None]),   # the last step logged no loss
            write_run(tmp_path / "killed", summary=False)]                              # no summary.json
    assert compare.main([*map(str, runs), "--out", str(tmp_path / "report")]) == 0
    rows = table_rows((tmp_path / "report" / "report.md").read_text(), "run | train_seconds")
    assert {label: row["train_seconds vs first"] for label, row in rows.items()} == {
        "first": "+0.0 %", "faster": "-33.3 %", "slower": "+50.0 %", "killed": "n/a"}
    assert (rows["faster"]["eval_seconds"], rows["faster"]["wall_seconds"]) == ("12.50", "1212.50")
    assert [rows[label]["train_seconds"] for label in ("first", "faster", "slower")] == ["1800.00", "1200.00",
                                                                                        "2700.00"]
    assert rows["slower"]["epoch_seconds[3]"] == "900.00"
    losses = table_rows((tmp_path / "report" / "report.md").read_text(), "run | logged steps")
    assert losses["first"]["last logged loss"] == "0.4300"    # 0.7 - 0.01 * 29 + 0.02 (odd steps zigzag up)
    assert losses["slower"]["last logged loss"] == "0.4200"   # the last step with a loss: 0.7 - 0.01 * 28


# --- report/curves.py: the smoothing and oscillation arithmetic behind loss.png and the compare table
def test_odd_window_widens_an_even_request_and_refuses_a_window_under_one():
    assert [curves.odd_window(w) for w in (1, 2, 3, 24, 25)] == [1, 3, 3, 25, 25]
    with pytest.raises(ValueError, match=r"^smoothing window must be >= 1, got 0$"):
        curves.odd_window(0)


def test_auto_window_is_the_largest_odd_tenth_of_the_points_within_the_cap():
    assert [curves.auto_window(n) for n in (0, 9, 29, 30, 40, 50, 112)] == [1, 1, 1, 3, 3, 5, 11]
    assert curves.auto_window(6414) == 25
    assert curves.auto_window(1000, cap=24) == 23      # an even cap gives the odd number below it
    assert curves.auto_window(1000, cap=1) == 1


def test_centred_moving_average_shrinks_at_the_ends_and_skips_gaps():
    assert curves.centred_moving_average([1.0, 2.0, 3.0, 10.0], 3) == [1.5, 2.0, 5.0, 6.5]
    assert curves.centred_moving_average([0.0, 0.0, 0.0, 0.0, 10.0], 5) == pytest.approx([0.0, 0.0, 2.0, 2.5, 10 / 3])
    assert curves.centred_moving_average([1.0, None, 3.0], 3) == [1.0, None, 3.0]   # W=3 around a gap: itself only
    assert curves.centred_moving_average([1.0, None, 3.0], 5) == [2.0, None, 2.0]
    assert curves.centred_moving_average([4.0, 8.0], 2) == [6.0, 6.0]                # an even window widens to 3


def test_population_std_needs_three_points():
    assert curves._pop_std([1.0, 2.0]) is None
    assert curves._pop_std([1.0, 2.0, 3.0]) == pytest.approx(math.sqrt(2 / 3))


def test_last_epoch_mask_marks_the_steps_after_the_last_whole_epoch():
    assert curves.last_epoch_mask([0.5, 1.0, 1.5, 2.0]) == [False, False, True, True]
    assert curves.last_epoch_mask([None, 0.5, 0.9]) == [False, True, True]
    assert curves.last_epoch_mask([None, None]) == [True, True]     # no epochs logged: the whole run


def test_oscillation_reports_the_window_it_used():
    rows = [{"loss": loss, "epoch": 1 + i / 10} for i, loss in enumerate([0.9, 0.5, 0.8, 0.4, 0.7, 0.3])]
    result = curves.oscillation(rows, 4)
    assert result["window"] == 5 and result["points"] == 5          # epoch 1.0 ends the first epoch
    assert result["step_diff_std"] == pytest.approx(curves._pop_std([0.3, -0.4, 0.3, -0.4]))


# --- report/seeds.py: which seeds failed, mean ± std, and Welch's t between devices
def seed_run(device="cpu", complete=True, accuracy=0.8, mcc=0.5, baseline=0.69):
    from types import SimpleNamespace
    return SimpleNamespace(device_key=device, complete=complete, final_accuracy=accuracy, final_mcc=mcc,
                           majority_baseline=baseline)


def test_failure_reason_says_what_is_missing():
    assert seeds.failure_reason(seed_run(complete=False)) == "did not finish (no complete summary.json)"
    assert seeds.failure_reason(seed_run(accuracy=None)) == "no final accuracy/MCC in summary.json"
    assert seeds.failure_reason(seed_run(mcc=None)) == "no final accuracy/MCC in summary.json"
    assert seeds.failure_reason(seed_run()) is None


def test_mean_and_sample_std_over_the_finished_seeds_only():
    assert seeds.mean_std([0.5]) == (0.5, None)
    mean, std = seeds.mean_std([0.4, 0.6])
    assert mean == pytest.approx(0.5) and std == pytest.approx(math.sqrt(0.02))
    summary = seeds.summarize([seed_run(accuracy=0.8, mcc=0.5), seed_run(accuracy=0.9, mcc=0.7),
                               seed_run(complete=False, accuracy=0.1, mcc=0.1),    # a crash that logged numbers
                               seed_run(accuracy=None, mcc=0.9)])                  # no final accuracy
    assert (summary.runs, summary.finished, summary.failed) == (4, 2, 2)
    assert summary.accuracy_mean == pytest.approx(0.85) and summary.accuracy_std == pytest.approx(math.sqrt(0.005))
    assert summary.mcc_mean == pytest.approx(0.6) and summary.mcc_std == pytest.approx(math.sqrt(0.02))


@pytest.mark.filterwarnings("ignore:Precision loss occurred:RuntimeWarning")   # scipy, on the constant group
def test_welch_names_both_devices_and_tells_constant_groups_apart():
    from scipy import stats
    few = seeds.welch_mcc("npu", [0.5], "cuda", [0.5, 0.6])
    assert (few.device_a, few.device_b, few.n_a, few.n_b, few.t, few.p) == ("npu", "cuda", 1, 2, None, None)
    assert few.verdict == "not tested: needs >= 2 finished seeds per device"
    same = seeds.welch_mcc("npu", [0.5, 0.5], "cuda", [0.5, 0.5])
    assert (same.device_a, same.device_b, same.n_a, same.n_b, same.verdict) == (
        "npu", "cuda", 2, 2, "same MCC on every seed")
    assert seeds.welch_mcc("npu", [0.5, 0.5], "cuda", [0.6, 0.6]).verdict == "undefined (no seed variance)"
    one_constant = seeds.welch_mcc("npu", [0.5, 0.5], "cuda", [0.4, 0.6])   # one group varies: a real test
    assert one_constant.t == pytest.approx(0.0) and one_constant.p == pytest.approx(1.0)
    assert one_constant.verdict == "within seed noise (p >= 0.05)"
    a, b = [0.60, 0.61, 0.62, 0.63, 0.64, 0.65], [0.30, 0.70]     # unequal variances: Welch differs from Student
    welch = stats.ttest_ind(a, b, equal_var=False)
    result = seeds.welch_mcc("npu", a, "cuda", b)
    assert result.t == pytest.approx(welch.statistic) and result.p == pytest.approx(welch.pvalue)
    assert result.p != pytest.approx(stats.ttest_ind(a, b).pvalue)
    far = seeds.welch_mcc("npu", [0.60, 0.61, 0.62], "cuda", [0.30, 0.31, 0.32])
    assert far.p < 0.05 and far.verdict == "differ beyond seed noise (p < 0.05)"


def test_device_tests_pair_every_device_once_on_finished_runs():
    runs = [seed_run("a", mcc=0.5), seed_run("a", mcc=0.6), seed_run("b", mcc=0.4), seed_run("b", mcc=0.5),
            seed_run("c", mcc=0.1), seed_run("c", complete=False, mcc=0.9)]
    tests = seeds.device_tests(runs)
    assert [(t.device_a, t.device_b) for t in tests] == [("a", "b"), ("a", "c"), ("b", "c")]
    assert [(t.n_a, t.n_b) for t in tests] == [(2, 2), (2, 1), (2, 1)]   # c's unfinished run left out


# --- report/comparability.py: which runs may be compared, in the words the report prints
def comparable_run(label="a", complete=True, **manifest):
    from types import SimpleNamespace
    base = {"config": {"profile": "smoke", "train": {"learning_rate": 2e-05, "seed": 42}},
            "data": {"sha256": "a" * 64}, "effective_batch": 16, "effective": {"precision": "fp32"}}
    base.update(manifest)
    return SimpleNamespace(label=label, complete=complete, manifest=base)


def test_precision_requested_effective_and_shown():
    run = comparable_run(config={"precision": "bf16", "train": {}}, effective={"precision": "fp32"})
    assert comparability.requested_precision(run) == "bf16" and comparability.effective_precision(run) == "fp32"
    assert comparability.precision_shown(run) == "bf16 → fp32"
    assert comparability.requested_precision(comparable_run(config={"train": {"bf16": True}})) == "bf16"
    assert comparability.requested_precision(comparable_run(config={"train": {"fp16": True}})) == "fp16"
    assert comparability.requested_precision(comparable_run(config={})) == "fp32"
    assert comparability.precision_shown(comparable_run()) == "fp32"
    assert comparability.precision_shown(comparable_run(effective=None)) == "fp32 (requested; effective not recorded)"


def test_notes_say_threads_binding_and_a_changed_request():
    ref = comparable_run(threads={"intra_op": 2, "inter_op": 1})
    run = comparable_run("b", threads={"intra_op": 1, "inter_op": 1}, cpu_binding={"cores": "0-1"},
                         config={"precision": "bf16", "train": {"learning_rate": 2e-05, "seed": 42}})
    assert comparability.threads(ref) == (2, 1) and comparability.threads(comparable_run(threads="2")) is None
    assert comparability.cpu_binding(comparable_run(cpu_binding={})) is None
    assert comparability.notes_for(ref, run) == [
        ("not bit-comparable: CPU threads (intra_op, inter_op) 2, 1 → 1, 1 (float sums reduce in another order; "
        "timings differ too)"),
        'CPU binding differs: none → `{"cores": "0-1"}`: binding cores changes timings',
        "precision requested → effective: bf16 → fp32 (compared by what ran, fp32)"]
    assert comparability.notes_for(comparable_run(), comparable_run("b", threads={"intra_op": 1})) == []


def test_comparable_runs_may_differ_in_seed_tracking_description_and_requested_precision():
    ref = comparable_run()
    run = comparable_run("b", config={"profile": "smoke", "description": "x", "tracking": {"project": "p"},
                                      "precision": "bf16", "train": {"learning_rate": 2e-05, "seed": 7, "bf16": True}})
    assert comparability.check_against(ref, run) == comparability.Comparability(True, [], [
        "precision requested → effective: bf16 → fp32 (compared by what ran, fp32)"])


def test_every_reason_a_run_is_not_comparable_in_words():
    ref = comparable_run()
    train = {"learning_rate": 0, "seed": 42, "a": 1, "b": 2, "c": 3, "d": 4}
    run = comparable_run("b", complete=False, config={"profile": "smoke", "train": train},
                         data={"sha256": "b" * 64}, effective_batch=32, effective={"precision": "bf16"})
    result = comparability.check_against(ref, run)
    assert not result.comparable
    assert result.reasons == [
        "effective precision differs (fp32 vs fp32 → bf16)",
        ("config differs (`train.a: <absent> → 1`; `train.b: <absent> → 2`; `train.c: <absent> → 3`; "
        "`train.d: <absent> → 4`; … 1 more)"),
        "data sha256 differs (aaaaaaaaaaaa → bbbbbbbbbbbb)",
        "effective batch differs (16 → 32)",
        "run incomplete (no summary.json with status complete)"]
    # without both effective precisions, the requested one is part of the config
    old = comparable_run("c", effective=None, config={"precision": "bf16", "train": {"learning_rate": 2e-05}})
    assert comparability.check_against(comparable_run(effective=None), old).reasons == [
        "config differs (`precision: <absent> → bf16`; `profile: smoke → <absent>`)"]


def test_check_all_flags_an_incomplete_reference_and_keeps_its_notes():
    ref = comparable_run(complete=False, cpu_binding={"cores": "0"})
    result = comparability.check_all([ref, comparable_run("b")])
    assert result["a"] == comparability.Comparability(
        False, ["run incomplete (no summary.json with status complete)"],
        ['CPU binding `{"cores": "0"}`: binding cores changes timings'])
    assert result["b"].comparable


def test_comparable_config_drops_ignored_keys_and_whole_sections_without_touching_the_input():
    config = {"train": {"seed": 1, "learning_rate": 2}, "tracking": {"project": "p"}, "model": "m"}
    assert comparability.comparable_config(config) == {"train": {"learning_rate": 2}}   # the model by identity
    assert config["train"]["seed"] == 1 and "tracking" in config
    assert comparability.comparable_config({"model": "m"}, ("train.seed", "x.y.z")) == {"model": "m"}
    assert flatten({"a": {"b": 1, "c": {"d": 2}}, "e": 3}) == {"a.b": 1, "a.c.d": 2, "e": 3}
    assert comparability.comparable_config_sha256(config) == comparability.comparable_config_sha256(
        {**config, "train": {"seed": 99, "learning_rate": 2}})


def test_comparability_edges_one_effective_precision_exactly_four_differences_and_absent_values():
    # only one run records what ran: the requests are compared, not a missing effective precision
    assert comparability.check_against(comparable_run(effective=None), comparable_run("b")).comparable
    # both record fp32: a different *request* is no difference, a real one is listed alone
    ref = comparable_run(config={"precision": "fp32", "train": {"learning_rate": 2e-05}})
    run = comparable_run("b", config={"precision": "bf16", "train": {"learning_rate": 3e-05}})
    assert comparability.check_against(ref, run).reasons == ["config differs (`train.learning_rate: 2e-05 → 3e-05`)"]
    run = comparable_run("b", config={"precision": "bf16", "train": {"learning_rate": 2e-05}})
    assert comparability.check_against(ref, run).comparable
    four = comparable_run("b", config={"train": {"learning_rate": 2e-05, "seed": 42, "a": 1, "b": 2, "c": 3, "d": 4},
                                       "profile": "smoke"})
    assert comparability.check_against(comparable_run(), four).reasons == [
        ("config differs (`train.a: <absent> → 1`; `train.b: <absent> → 2`; `train.c: <absent> → 3`; "
        "`train.d: <absent> → 4`)")]
    assert comparability.check_all([comparable_run(), four])["a"].reasons == []
    assert comparability.config_differences({"k": None}, {}) == ["`k: None → <absent>`"]
    assert comparability.config_differences({}, {"k": None}) == ["`k: <absent> → None`"]
    assert comparability.config_differences({"lr": 1}, {"lr": 2}, ignored=("lr",)) == []
    assert flatten({"a": {"X": 1}}) == {"a.X": 1}   # only the trailing dot goes
    assert flatten({"a": {}}) == {"a": {}}   # an empty section is not an absent one


def test_notes_quote_both_thread_counts_and_the_binding_in_key_order():
    ref = comparable_run(threads={"intra_op": 2, "inter_op": 1})
    run = comparable_run("b", threads={"intra_op": 3, "inter_op": 4}, cpu_binding={"cores": "0-1", "affinity": "x"})
    assert comparability.notes_for(ref, run) == [
        ("not bit-comparable: CPU threads (intra_op, inter_op) 2, 1 → 3, 4 (float sums reduce in another order; "
        "timings differ too)"),
        'CPU binding differs: none → `{"affinity": "x", "cores": "0-1"}`: binding cores changes timings']
    same = comparable_run("c", cpu_binding={"cores": "0-1", "affinity": "x"})
    assert comparability.notes_for(same, run)[-1] == \
        'CPU binding `{"affinity": "x", "cores": "0-1"}`: binding cores changes timings'


def test_the_time_section_in_words_with_a_suspect_epoch(tmp_path):
    from report.document import to_markdown
    from report.records import load_runs
    steady, busy = load_runs([write_run(tmp_path / "steady", epoch_seconds=(10.0, 10.0, 10.0)),
                              write_run(tmp_path / "busy", epoch_seconds=(10.0, 40.0, 10.0))])   # 4x its median
    text = to_markdown(compare.time_blocks([steady, busy], "time.png"))
    assert text.startswith("## Training time\n")
    assert ("Seconds from summary.json. `train_seconds vs first` is (train_seconds − first run's) / first run's "
            "× 100 (negative: faster than the first run).") in text
    assert "| epoch_seconds[1] | epoch_seconds[2] | epoch_seconds[3] |" in text
    assert ("- **suspect epoch**: `busy` epoch 2 took 40.00 s, over 3× the run's median epoch (10.00 s): the machine "
            "was probably busy with something else; rerun before reading its time as the device's") in text
    assert "![training time, total and per epoch](time.png)" in text
    assert "suspect" not in to_markdown(compare.time_blocks([steady], "time.png"))
    (no_epochs,) = load_runs([write_run(tmp_path / "none", epoch_seconds=())])
    assert "epoch_seconds[" not in to_markdown(compare.time_blocks([no_epochs], "time.png"))
