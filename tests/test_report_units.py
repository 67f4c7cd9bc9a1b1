"""report/: comparability, oscillation, failed runs, Welch's t, record loading and the card,
on run records written by hand in the shape of docs/run-record.md (no training here)."""

from __future__ import annotations

import copy
import json
import math
import statistics
from pathlib import Path

import pytest
from scipy import stats

from recipe.errors import EXIT_BAD_RECORD
from report import card, comparability, compare, curves, seeds
from report.document import Paragraph, Table, to_html, to_markdown
from report.records import load_run, load_runs

CONFIG = {
    "profile": "published", "description": "tutorial", "model": "bert-base-cased", "data": "glue-cola",
    "num_labels": 2, "tokenize": {"max_length": 512, "padding": "max_length", "truncation": True},
    "train": {"per_device_train_batch_size": 4, "learning_rate": 2e-5, "num_train_epochs": 3, "seed": 42},
    "tracking": {"project": "cola-repro-kit"},
}


def write_run(path: Path, *, device=("npu", "Ascend910B3"), seed=42, config=None, data_sha="d" * 64,
              mcc=0.57, accuracy=0.83, losses=None, memory=None, summary=True, baseline=0.6913,
              epoch_seconds=(600.0, 601.5, 599.25), extra_metrics=(), manifest_extra=None,
              summary_extra=None) -> Path:
    """A complete run record as the recipe writes it (3 epochs, one logged loss per step)."""
    path.mkdir(parents=True)
    config = copy.deepcopy(config or CONFIG)
    config["train"]["seed"] = seed
    manifest = {
        "schema": "kit.manifest/1", "run_id": f"{path.name}-{seed}", "started_at": "2026-11-27T19:30:00+00:00",
        "command": ["python", "-m", "recipe.finetune"], "host": {"hostname": f"host-{device[0]}"},
        "git_sha": "abc", "versions": {"python": "3.10.14", "torch": "2.1.0", "torch_npu": "2.1.0.post8"
                                       if device[0] == "npu" else None, "transformers": "4.45.2"},
        "device": {"type": device[0], "name": device[1], "count": 1, "driver": "24.1.rc3", "cuda": None,
                   "cann": "8.0.RC3" if device[0] == "npu" else None},
        "api": "openmind" if device[0] == "npu" else "transformers", "profile": config["profile"],
        "config": config, "config_sha256": "c" * 64,
        "data": {"source": "glue-cola", "sha256": data_sha, "majority_baseline": baseline},
        "world_size": 1, "effective_batch": config["train"]["per_device_train_batch_size"],
        **(manifest_extra or {}),
    }
    (path / "manifest.json").write_text(json.dumps(manifest))
    losses = losses if losses is not None else [0.7 - 0.01 * i + (0.02 if i % 2 else -0.02) for i in range(30)]
    lines = [{"kind": "train", "step": i + 1, "epoch": round(3 * (i + 1) / len(losses), 4), "loss": loss,
              "lr": 2e-5, "grad_norm": 1.0, "elapsed_s": float(i)} for i, loss in enumerate(losses)]
    lines += [{"kind": "eval", "step": len(losses) * e // 3, "epoch": float(e), "accuracy": accuracy - 0.01 * (3 - e),
               "mcc": mcc - 0.02 * (3 - e), "eval_loss": 0.5, "elapsed_s": 10.0 * e} for e in (1, 2, 3)]
    lines += list(extra_metrics)
    (path / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    if summary:
        (path / "summary.json").write_text(json.dumps({
            "schema": "kit.summary/1", "status": "complete", "train_seconds": sum(epoch_seconds),
            "eval_seconds": 12.5, "wall_seconds": sum(epoch_seconds) + 12.5, "epoch_seconds": list(epoch_seconds),
            "train_samples": 25653, "samples_per_second": 14.25, "real_tokens_per_second": 162.4,
            "padding_fraction": 0.9789,
            "memory": memory or {"peak_allocated_mb": 1650.0, "peak_reserved_mb": 2048.0,
                                 "device_used_mb_peak": 5321.0, "device_total_mb": 65536.0,
                                 "source": "torch.npu", "device_source": "npu-smi"},
            "final": {"accuracy": accuracy, "mcc": mcc, "eval_loss": 0.5, "epoch": 3.0},
            "evals": 3, "thresholds": {"accuracy": 0.8}, "verdict": "pass", "resumed_from": None,
            **(summary_extra or {}),
        }))
    return path


# -- comparability ---------------------------------------------------------------------------------

def test_runs_differing_only_by_seed_and_tracking_are_comparable(tmp_path):
    other = copy.deepcopy(CONFIG)
    other["tracking"] = {"project": "elsewhere"}
    runs = load_runs([write_run(tmp_path / "a", seed=1), write_run(tmp_path / "b", seed=2, config=other)])
    flags = comparability.check_all(runs)
    assert all(f.comparable for f in flags.values())


def test_a_changed_hyperparameter_is_flagged_with_the_key(tmp_path):
    other = copy.deepcopy(CONFIG)
    other["train"]["learning_rate"] = 3e-5
    runs = load_runs([write_run(tmp_path / "a"), write_run(tmp_path / "b", config=other)])
    flag = comparability.check_all(runs)["b"]
    assert not flag.comparable
    assert flag.reasons == ["config differs (`train.learning_rate: 2e-05 → 3e-05`)"]


def test_different_data_hash_is_flagged(tmp_path):
    runs = load_runs([write_run(tmp_path / "a"), write_run(tmp_path / "b", data_sha="e" * 64)])
    assert comparability.check_all(runs)["b"].reasons == ["data sha256 differs (dddddddddddd → eeeeeeeeeeee)"]


def test_smoke_data_seed_is_not_ignored(tmp_path):
    # Only train.seed is ignored: a different generated data set is a different experiment.
    base = {**copy.deepcopy(CONFIG), "smoke_data": {"seed": 0}}
    other = {**copy.deepcopy(CONFIG), "smoke_data": {"seed": 1}}
    assert comparability.comparable_config_sha256(base) != comparability.comparable_config_sha256(other)


# -- loss smoothing and oscillation -------------------------------------------------------------------

def test_centred_moving_average_shrinks_at_the_edges_and_widens_even_windows():
    assert curves.centred_moving_average([1.0, 2.0, 3.0, 4.0, 5.0], 3) == [1.5, 2.0, 3.0, 4.0, 4.5]
    assert curves.centred_moving_average([1.0, 2.0, 3.0], 2) == [1.5, 2.0, 2.5]  # 2 -> 3
    assert curves.centred_moving_average([1.0, None, 3.0], 3) == [1.0, None, 3.0]


def test_oscillation_uses_the_last_epoch_only():
    # Epochs 1-2 wild, epoch 3 a straight line: both measures must see only the line.
    losses = [5.0, 0.0] * 10 + [1.0 - 0.01 * i for i in range(10)]
    steps = [{"step": i + 1, "epoch": 3 * (i + 1) / 30, "loss": v} for i, v in enumerate(losses)]
    result = curves.oscillation(steps, window=3)
    assert result["points"] == 10
    assert result["step_diff_std"] == pytest.approx(0.0, abs=1e-12)
    # Interior residuals of a straight line around a centred mean are 0; the first point's
    # window reaches back into epoch 2 (loss 0.0), so only it has a residual.
    first = losses[20] - (losses[19] + losses[20] + losses[21]) / 3
    expected = [first] + [0.0] * 8 + [losses[29] - (losses[28] + losses[29]) / 2]
    mean = sum(expected) / len(expected)
    assert result["residual_std"] == pytest.approx(math.sqrt(sum((e - mean) ** 2 for e in expected) / 10))


def test_a_zigzag_oscillates_more_than_a_smooth_curve():
    smooth = [{"step": i, "epoch": i / 10, "loss": 1.0 - 0.01 * i} for i in range(1, 31)]
    zigzag = [{"step": i, "epoch": i / 10, "loss": 1.0 - 0.01 * i + (0.1 if i % 2 else 0)} for i in range(1, 31)]
    calm, wild = curves.oscillation(smooth, 5), curves.oscillation(zigzag, 5)
    assert wild["step_diff_std"] == pytest.approx(statistics.pstdev([0.09, -0.11] * 4 + [0.09]), rel=1e-9)
    assert wild["step_diff_std"] > calm["step_diff_std"] and wild["residual_std"] > calm["residual_std"]


def test_too_few_points_give_no_oscillation():
    steps = [{"step": 1, "epoch": 1.0, "loss": 0.5}, {"step": 2, "epoch": 2.0, "loss": 0.4}]
    assert curves.oscillation(steps)["step_diff_std"] is None


# -- failed runs, seed statistics, Welch's t ------------------------------------------------------

def test_failed_run_rules(tmp_path):
    at_baseline = load_run(write_run(tmp_path / "a", accuracy=0.6913, mcc=0.1))
    zero_mcc = load_run(write_run(tmp_path / "b", accuracy=0.75, mcc=0.0))
    unfinished = load_run(write_run(tmp_path / "c", summary=False))
    good = load_run(write_run(tmp_path / "d", accuracy=0.83, mcc=0.57))
    assert "majority baseline" in seeds.failure_reason(at_baseline)
    assert "MCC" in seeds.failure_reason(zero_mcc)
    assert "did not finish" in seeds.failure_reason(unfinished)
    assert seeds.failure_reason(good) is None
    summary = seeds.summarize([at_baseline, zero_mcc, unfinished, good])
    assert (summary.runs, summary.finished, summary.failed) == (4, 3, 3)
    assert summary.mcc_mean == pytest.approx((0.1 + 0.0 + 0.57) / 3)
    assert summary.mcc_std == pytest.approx(statistics.stdev([0.1, 0.0, 0.57]))


def test_welch_says_when_devices_differ_beyond_seed_noise():
    far = seeds.welch_mcc("npu", [0.57, 0.58, 0.56], "cuda", [0.40, 0.41, 0.39])
    near = seeds.welch_mcc("npu", [0.57, 0.55, 0.59], "cuda", [0.56, 0.58, 0.54])
    assert far.p == pytest.approx(stats.ttest_ind([0.57, 0.58, 0.56], [0.40, 0.41, 0.39], equal_var=False).pvalue)
    assert far.verdict.startswith("differ") and near.verdict.startswith("within")
    assert seeds.welch_mcc("npu", [0.57], "cuda", [0.5, 0.6]).verdict.startswith("not tested")
    assert seeds.welch_mcc("npu", [0.5, 0.5], "cuda", [0.5, 0.5]).verdict == "same MCC on every seed"


# -- loading records -------------------------------------------------------------------------------

def test_broken_records_name_the_file_and_line(tmp_path):
    run = write_run(tmp_path / "a")
    with (run / "metrics.jsonl").open("a") as handle:
        handle.write("{not json\n")
    code = compare.main([str(run), "--out", str(tmp_path / "out")])
    assert code == EXIT_BAD_RECORD
    (run / "metrics.jsonl").write_text("")
    (run / "summary.json").write_text(json.dumps({"schema": "kit.summary/2"}))
    with pytest.raises(Exception, match=r"summary.json: schema is 'kit.summary/2'"):
        load_run(run)


def test_missing_run_directory_exits_with_a_clear_message(tmp_path, capsys):
    assert compare.main([str(tmp_path / "nope"), "--out", str(tmp_path / "out")]) == EXIT_BAD_RECORD
    err = capsys.readouterr().err
    assert "nope: not a directory" in err and "python -m recipe.finetune --output DIR" in err


def test_the_run_charts_train_and_eval_lines_as_recorded_and_skips_other_kinds(tmp_path):
    # No de-duplication of steps: --resume truncates metrics.jsonl to the checkpoint's step, so a
    # record the recipe wrote never logs a step twice (tests/test_run_record.py).
    others = [{"kind": "epoch", "step": 30, "epoch": 3.0, "seconds": 5.0},
              {"kind": "checkpoint", "step": 30, "seconds": 0.2, "elapsed_s": 31.0},
              {"kind": "from-a-newer-kit", "what": "anything"}]
    run = load_run(write_run(tmp_path / "a", extra_metrics=others))
    assert [line["step"] for line in run.train_steps] == list(range(1, 31))
    assert [line["step"] for line in run.evals] == [10, 20, 30] and run.problems == []


def test_non_numeric_summary_values_become_na_with_a_warning(tmp_path):
    path = write_run(tmp_path / "a")
    summary = json.loads((path / "summary.json").read_text())
    summary["real_tokens_per_second"] = "***"
    (path / "summary.json").write_text(json.dumps(summary))
    run = load_run(path)
    assert run.summary_value("real_tokens_per_second") is None
    assert "real_tokens_per_second is `'***'`, not a number" in run.problems[0]


# -- the report with two devices and several seeds ------------------------------------------------

@pytest.fixture
def two_device_report(tmp_path):
    npu = [write_run(tmp_path / f"npu/seed-{s}", seed=s, mcc=m) for s, m in ((1, 0.57), (2, 0.58), (3, 0.56))]
    cuda = [write_run(tmp_path / f"a100/seed-{s}", device=("cuda", "NVIDIA A100-SXM4-80GB"), seed=s, mcc=m,
                      memory={"peak_allocated_mb": 1700.5, "peak_reserved_mb": None, "device_used_mb_peak": None,
                              "device_total_mb": None, "source": "torch.cuda", "device_source": "none"})
            for s, m in ((1, 0.40), (2, 0.41), (3, 0.39))]
    out = tmp_path / "report"
    assert compare.main([*map(str, npu + cuda), "--out", str(out)]) == 0
    return out


def test_report_tests_devices_with_welch_and_shows_missing_memory_as_na(two_device_report):
    text = (two_device_report / "report.md").read_text()
    assert "Welch's t-test" in text
    assert "| cuda: NVIDIA A100-SXM4-80GB | npu: Ascend910B3 | 3 | 3 |" in text
    assert "differ beyond seed noise (p < 0.05)" in text
    # labels are disambiguated by their parent directory
    # an older record: no idle baseline, so neither it nor the peak above it (n/a, never 0)
    assert "| npu/seed-1 | 1650.0 | 2048.0 | 5321.0 | n/a | n/a | 65536.0 | n/a | torch.npu | npu-smi |" in text
    assert "| a100/seed-1 | 1700.5 | n/a | n/a | n/a | n/a | n/a | n/a | torch.cuda | none |" in text


def test_html_embeds_the_same_charts_as_the_markdown(two_device_report):
    html = (two_device_report / "report.html").read_text()
    for name in ("time", "memory", "loss", "eval", "throughput"):
        assert f'src="{name}.png"' in html and (two_device_report / f"{name}.png").stat().st_size > 5000


def test_markdown_tables_escape_pipes():
    assert "| a\\|b |" in to_markdown([Table(["x"], [["a|b"]])])


def test_html_shows_record_values_literally_and_warnings_in_bold():
    page = to_html([Paragraph("**NOT comparable**: `tokenize: <absent> → ***`")], "t")
    assert '<span class="warn">NOT comparable</span>: <code>tokenize: &lt;absent&gt; → ***</code>' in page


# -- the published-results card ------------------------------------------------------------------

def test_committed_card_is_generated_from_published_json():
    assert card.main(["--check"]) == 0, "results/published.md is stale: run `make card`"


def test_card_reads_references_from_published_json():
    published = json.loads(card.PUBLISHED.read_text())
    text = card.render_card(published, {"runs": []})
    hf = published["references"]["hf_run_glue_bert_base_cased_cola"]
    assert f"| {hf['mcc_fp32']:.4f} |" in text and f"| {hf['mcc_fp16']:.4f} |" in text
    for claim in published["references"]["tutorial_claims"]:
        assert f"- {claim}" in text


def test_record_appends_finished_runs_once(tmp_path):
    runs = load_runs([write_run(tmp_path / "a"), write_run(tmp_path / "b", summary=False)])
    measured, card_path = tmp_path / "measured.json", tmp_path / "published.md"
    assert card.record_runs(runs, measured=measured, card_path=card_path) == 1  # the unfinished run is skipped
    assert card.record_runs(runs, measured=measured, card_path=card_path) == 0  # same run_id: not twice
    entries = json.loads(measured.read_text())["runs"]
    assert [e["run_id"] for e in entries] == ["a-42"]
    assert entries[0]["train_seconds"] == 1800.75 and entries[0]["mcc"] == 0.57
    assert "| npu: Ascend910B3 | openmind | 2.1.0 / 2.1.0.post8 / 4.45.2 / n/a | published | 42 | 1800.8 |" \
        in card_path.read_text()


def test_a_run_killed_before_its_first_log_is_shown_flagged_with_na(tmp_path):
    good = write_run(tmp_path / "good")
    killed = tmp_path / "killed"
    killed.mkdir()
    (killed / "manifest.json").write_text((good / "manifest.json").read_text())
    (killed / "metrics.jsonl").write_text("")
    out = tmp_path / "report"
    assert compare.main([str(good), str(killed), "--out", str(out)]) == 0
    text = (out / "report.md").read_text()
    assert "`killed` — run incomplete (no summary.json with status complete)" in text
    assert "| killed | n/a | n/a | n/a | n/a | n/a | n/a | n/a |" in text  # the memory row
    assert "| killed | 0 | n/a | n/a | n/a | 0 |" in text  # the loss row: no steps, no oscillation
