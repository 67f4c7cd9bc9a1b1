"""bench/: the speed-up and kit-overhead arithmetic on hand-made timings, the plain counterparts (their
settings, their pairing in every round, and trained: the kit run's TrainingArguments and batches), the
FLOPs/MFU model, the workload, and a short end-to-end run on the CPU that must emit every column."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from conftest import REPO, recipe_env

from bench import run as bench_run
from bench import timing, workload


# ---------------------------------------------------------------- arithmetic on hand-made timings
def _timings() -> list[timing.RoundTiming]:
    # samples/s = steps * batch / seconds, chosen to be round numbers
    return [
        timing.RoundTiming("tutorial", 0, steps=10, seconds=4.0, batch_size=4),    # 10 samples/s
        timing.RoundTiming("published", 0, steps=99, seconds=40.0, batch_size=4),  # 9.9
        timing.RoundTiming("fast", 0, steps=25, seconds=8.0, batch_size=32),       # 100
        timing.RoundTiming("tutorial", 1, steps=30, seconds=10.0, batch_size=4),   # 12
        timing.RoundTiming("published", 1, steps=57, seconds=20.0, batch_size=4),  # 11.4
        timing.RoundTiming("fast", 1, steps=65, seconds=16.0, batch_size=32),      # 130
        timing.RoundTiming("tutorial", 2, steps=20, seconds=10.0, batch_size=4),   # 8
        timing.RoundTiming("published", 2, steps=20, seconds=10.0, batch_size=4),  # 8
        timing.RoundTiming("fast", 2, steps=45, seconds=16.0, batch_size=32),      # 90
    ]


def test_speedups_are_medians_of_paired_round_ratios():
    timings = _timings()
    assert timings[0].samples_per_second == pytest.approx(10.0)
    assert timing.median_samples_per_second(timings, "fast") == pytest.approx(100.0)
    assert timing.paired_ratios(timings, "published") == pytest.approx([0.99, 0.95, 1.0])
    assert timing.speedup(timings, "published") == pytest.approx(0.99)
    # fast: 100/10, 130/12, 90/8 -> median 130/12; NOT the ratio of medians (100/10)
    assert timing.paired_ratios(timings, "fast") == pytest.approx([10.0, 130 / 12, 11.25])
    assert timing.speedup(timings, "fast") == pytest.approx(130 / 12)
    assert timing.speedup(timings, "tutorial") == pytest.approx(1.0)


def test_overhead_projection_and_padding_arithmetic():
    assert timing.overhead_percent(0.99) == pytest.approx(1.0101, abs=1e-4)   # 1/0.99 - 1
    assert timing.overhead_percent(1.0) == 0.0
    assert timing.overhead_percent(1.25) == pytest.approx(-20.0)              # faster than the baseline
    assert timing.projected_seconds(77.0) == pytest.approx(3 * 8551 / 77.0)   # ~333 s: the H200 figure
    assert timing.padding_fraction(11, 512) == pytest.approx(1 - 11 / 512)
    assert timing.padding_fraction(0, 0) is None


def _aa_timings(aa_seconds: list[float]) -> list[timing.RoundTiming]:
    """tutorial and published-plain at 10 samples/s every round, tutorial-aa at 40 samples over `aa_seconds`,
    published at 9.9."""
    rows = []
    for r, seconds in enumerate(aa_seconds):
        rows += [timing.RoundTiming("tutorial", r, steps=10, seconds=4.0, batch_size=4),
                 timing.RoundTiming("tutorial-aa", r, steps=10, seconds=seconds, batch_size=4),
                 timing.RoundTiming("published", r, steps=99, seconds=40.0, batch_size=4),
                 timing.RoundTiming("published-plain", r, steps=10, seconds=4.0, batch_size=4)]
    return rows


def test_the_aa_noise_floor_is_the_largest_per_round_difference_of_the_same_script():
    timings = _aa_timings([4.0, 4.4, 3.8])    # +0 %, +10 %, -5 % time per sample
    assert timing.noise_floor_percent(timings) == pytest.approx(10.0)
    assert timing.resolvable(1.01, timing.noise_floor_percent(timings)) is False
    assert timing.resolvable(-12.0, 10.0) is True and timing.resolvable(5.0, None) is None
    assert timing.noise_floor_percent(_timings()) is None     # no A/A pair run


def _rendered(aa_seconds: list[float]) -> tuple[dict, str]:
    timings = _aa_timings(aa_seconds)
    results = [bench_run.RunResult(t, "fp32", "adamw_torch", False, "max_length",
                                   {"peak_allocated_mb": None, "peak_reserved_mb": None}, (11, 512),
                                   {"learning_rate": 2e-5} if t.round == 0 else None)   # the same arguments
               for t in timings]
    configs = bench_run.configurations([], ["published"])[:4]   # without exact and fast
    size = {"nonembedding_parameters": 1000, "layers": 2, "hidden_size": 64}
    rows = bench_run.summarize(results, configs, [11] * 8, size, "x86_64", None)
    floor = bench_run.noise_floor(results)
    overheads = bench_run.kit_overheads(results, configs, floor)
    result = {"configs": rows, "noise_floor": floor, "kit_overheads": overheads, "kit_overhead": overheads["published"],
              "machine": {"device": {"type": "cpu", "name": "x86_64"}, "torch_threads": 1, "host": {"cpu_count": 2},
                          "load_average": {"start": [1.0], "end": [1.0]}},
              "settings": {"model_shape": "tiny", "rounds": 3, "warmup_steps": 1, "min_steps": 1, "seconds": 0}}
    return result, bench_run.render_table(result)


def test_an_overhead_inside_the_noise_floor_is_not_resolvable_here_never_within():
    result, table = _rendered([4.0, 4.4, 3.8])           # floor 10 %; published +1.01 %
    assert result["kit_overhead"]["verdict"] == "not resolvable here"
    assert result["kit_overhead"]["resolvable"] is False and result["kit_overhead"]["noise_floor_percent"] == 10.0
    line = next(line for line in table.splitlines() if line.startswith("kit overhead"))
    assert "not resolvable here" in line and "within" not in line.split("(")[0] and "+1.01 %" in line
    marks = {line.split()[0]: re.search(r"\d+\.\d\dx~?", line).group()
             for line in table.splitlines() if line.startswith(("tutorial", "published"))}
    assert marks == {"tutorial": "1.00x", "tutorial-aa": "1.00x~", "published": "0.99x~",   # the baseline: no mark
                     "published-plain": "1.00x~"}


def test_an_overhead_outside_the_noise_floor_gets_its_verdict():
    result, table = _rendered([4.0, 4.02, 3.99])          # floor 0.5 %; published +1.01 %: within the 3 % limit
    assert result["kit_overhead"]["verdict"] == "within" and result["kit_overhead"]["resolvable"] is True
    assert "limit 3 %: within" in table and "0.99x~" not in table


# ---------------------------------------------------------------- kit overhead per profile, against NAME-plain
def _overhead_timings() -> list[timing.RoundTiming]:
    """3 rounds; samples/s per (config, round) chosen so every ratio is known by hand."""
    sps = {  # 4 samples per step, 10 steps: seconds = 40 / samples per second
        "tutorial": (10, 10, 10), "tutorial-aa": (10, 9.9, 10.1),                  # floor: |1/0.99 - 1| = 1.01 %
        "published": (9.0, 11.0, 8.55), "published-plain": (10.0, 11.0, 9.0),       # ratios .9, 1, .95
        "exact": (40.0, 44.0, 48.0), "exact-plain": (40.0, 40.0, 40.0),             # ratios 1, 1.1, 1.2
        "fast": (99.5, 100.0, 100.0), "fast-plain": (100.0, 100.0, 100.0),          # ratios .995, 1, 1
    }
    return [timing.RoundTiming(name, r, steps=10, seconds=40 / values[r], batch_size=4)
            for name, values in sps.items() for r in range(3)]


ARGS = {"per_device_train_batch_size": 4, "learning_rate": 2e-5, "optim": "adamw_torch"}


def _overhead_result(differ: dict | None = None) -> tuple[dict, str]:
    configs = bench_run.configurations([], list(bench_run.DEFAULT_OVERHEAD))
    arguments = {c.name: dict(ARGS) for c in configs}
    arguments.update(differ or {})
    results = [bench_run.RunResult(t, "fp32", "adamw_torch", False, "max_length",
                                   {"peak_allocated_mb": None, "peak_reserved_mb": None}, (11, 512),
                                   arguments[t.config] if t.round == 0 else None)
               for t in _overhead_timings()]
    size = {"nonembedding_parameters": 1000, "layers": 2, "hidden_size": 64}
    rows = bench_run.summarize(results, configs, [11] * 8, size, "x86_64", None)
    floor = bench_run.noise_floor(results)
    overheads = bench_run.kit_overheads(results, configs, floor)
    result = {"configs": rows, "noise_floor": floor, "kit_overheads": overheads, "kit_overhead": overheads.get("published"),
              "machine": {"device": {"type": "cpu", "name": "x86_64"}, "torch_threads": 1, "host": {"cpu_count": 2},
                          "load_average": {"start": [1.0], "end": [1.0]}},
              "settings": {"model_shape": "tiny", "rounds": 3, "warmup_steps": 1, "min_steps": 1, "seconds": 0}}
    return result, bench_run.render_table(result)


def test_each_profiles_overhead_is_the_median_of_its_per_round_ratios_to_its_plain_counterpart():
    result, table = _overhead_result()
    overheads = result["kit_overheads"]
    assert list(overheads) == ["published", "exact", "fast"]
    assert result["noise_floor"]["percent"] == pytest.approx(1.01, abs=0.005)
    published, exact, fast = overheads["published"], overheads["exact"], overheads["fast"]
    # published: ratios 0.9, 1.0, 0.95 -> median 0.95 -> 1/0.95 - 1 = +5.26 %; not the tutorial's ratios (.9, 1.1,
    # .855: +11.11 %), nor the ratio of the medians (9.0 / 10.0: +11.11 %)
    assert published["plain"] == "published-plain" and published["percent"] == pytest.approx(5.26)
    assert published["per_round_percent"] == pytest.approx([11.11, 0.0, 5.26])
    assert (published["verdict"], published["resolvable"], published["within_limit"]) == ("OVER", True, False)
    # exact: ratios 1.0, 1.1, 1.2 -> median 1.1 -> -9.09 %: the kit path faster, resolvable
    assert exact["percent"] == pytest.approx(-9.09) and exact["per_round_percent"] == pytest.approx([0.0, -9.09, -16.67])
    assert exact["verdict"] == "within" and exact["resolvable"] is True
    # fast: ratios 0.995, 1, 1 -> median 1.0 -> 0 %, inside the 1.01 % floor
    assert fast["percent"] == 0.0 and fast["verdict"] == "not resolvable here" and fast["resolvable"] is False
    assert all(o["training_arguments_differ"] == [] and o["noise_floor_percent"] == result["noise_floor"]["percent"]
               for o in overheads.values())
    assert result["kit_overhead"] is published   # kit.bench/1's key: published's, as the device check reads it
    lines = [line for line in table.splitlines() if line.startswith("kit overhead")]
    assert lines == [
        ("kit overhead (published vs published-plain, wall time per sample): +5.26 % (per round [11.11, 0.0, 5.26]); "
         "limit 3 %: OVER"),
        ("kit overhead (exact vs exact-plain, wall time per sample): -9.09 % (per round [0.0, -9.09, -16.67]); "
         "limit 3 %: within"),
        ("kit overhead (fast vs fast-plain, wall time per sample): +0.00 %, inside the A/A noise floor of +-1.01 %: "
         "not resolvable here (limit 3 %; per round [0.5, 0.0, 0.0])")]
    rows = {row["name"]: row for row in result["configs"]}
    assert rows["exact-plain"]["kind"] == "plain script" and rows["exact-plain"]["partner"] == "exact"
    assert rows["exact-plain"]["speedup_vs_tutorial"] == 4.0   # the plain rows are ordinary rows of the table too


def test_an_overhead_between_runs_with_other_training_arguments_is_not_comparable():
    result, table = _overhead_result({"exact-plain": {**ARGS, "optim": "adamw_torch_fused", "seed": 1}})
    exact = result["kit_overheads"]["exact"]
    assert exact["training_arguments_differ"] == ["optim", "seed"] and exact["verdict"] == "not comparable"
    assert result["kit_overheads"]["published"]["verdict"] == "OVER"          # the others untouched
    assert "NOT COMPARABLE, the two runs' TrainingArguments differ in optim, seed" in table
    assert bench_run.differing_fields({"a": 1}, None) == ["(not recorded)"]
    assert bench_run.differing_fields({"a": 1, "b": 2}, {"a": 1}) == ["b"]


def test_plain_counterparts_follow_their_kit_configuration_and_overhead_takes_kit_names(tmp_path):
    names = lambda configs: [(c.name, c.kind, c.partner) for c in configs]
    args = bench_run.parse_args(["--workdir", str(tmp_path)])
    assert args.overhead == ["published", "exact", "fast"]
    assert names(bench_run.configurations(args.variant, args.overhead)) == [
        ("tutorial", "raw script", None), ("tutorial-aa", "raw script", "tutorial"),
        ("published", "kit", None), ("published-plain", "plain script", "published"),
        ("exact", "kit", None), ("exact-plain", "plain script", "exact"),
        ("fast", "kit", None), ("fast-plain", "plain script", "fast")]
    args = bench_run.parse_args(["--overhead", "fast-grouped", "--variant", "fast-grouped=fast:train.group_by_length=true"])
    configs = bench_run.configurations(args.variant, args.overhead)
    plain = configs[-1]
    assert (plain.name, plain.profile, plain.sets, plain.plain) == (
        "fast-grouped-plain", "fast", ["train.group_by_length=true"], True)
    assert [c.name for c in configs if c.plain] == ["fast-grouped-plain"]
    assert bench_run.parse_args(["--overhead", "none"]).overhead == []
    for bad in (["--overhead", "tutorial"], ["--overhead", "slow"]):
        with pytest.raises(SystemExit):
            bench_run.parse_args(bad)
    assert bench_run.Config("exact-plain", "exact", plain=True).math_changes() == []   # exact's math: in the parity phase


def test_each_round_keeps_the_pairs_side_by_side_and_alternates_who_goes_first():
    configs = bench_run.configurations([], list(bench_run.DEFAULT_OVERHEAD))
    orders = [[c.name for c in bench_run.round_order(configs, r)] for r in range(4)]
    assert orders[0] == ["tutorial", "tutorial-aa", "published", "published-plain", "exact", "exact-plain", "fast",
                         "fast-plain"]
    assert orders[1] == ["published-plain", "published", "exact-plain", "exact", "fast-plain", "fast", "tutorial-aa",
                         "tutorial"]
    assert orders[2][:2] == ["exact", "exact-plain"] and orders[3][:2] == ["fast-plain", "fast"]
    for order in orders:
        assert sorted(order) == sorted(c.name for c in configs)
        for config in configs:
            if config.partner:
                assert abs(order.index(config.name) - order.index(config.partner)) == 1
    assert [c.name for c in bench_run.round_order(configs[:3], 1)] == ["published", "tutorial-aa", "tutorial"]


def test_the_plain_settings_are_the_kits_resolution_of_the_profile(tmp_path):
    """The fast profile on the CPU: fused AdamW and bf16 resolved away as the kit does, the bench's overrides
    in, eval batch and logging kept; TrainingArguments accept them as they are."""
    from transformers import TrainingArguments

    device = bench_run.facade.Device(type="cpu", name="cpu")
    argv = bench_run.kit_argv(bench_run.Config("fast", "fast"), tmp_path / "o", device, tmp_path / "d", tmp_path / "m",
                              bench_run.train_overrides(5), no_swanlab=True)
    settings, tokenize = bench_run.plain_settings(argv, device)
    assert tokenize == {"max_length": 512, "padding": "dynamic", "truncation": True}
    assert (settings["optim"], settings["bf16"], settings["fp16"], settings["use_cpu"]) == ("adamw_torch", False, False,
                                                                                          True)
    assert (settings["per_device_train_batch_size"], settings["gradient_accumulation_steps"]) == (32, 1)
    assert (settings["logging_steps"], settings["logging_nan_inf_filter"], settings["per_device_eval_batch_size"]) == (
        50, False, 256)
    assert settings["max_steps"] == 5 + bench_run.MAX_TIMED_STEPS and settings["eval_strategy"] == "no"
    assert "output_dir" not in settings and settings["report_to"] == "none"
    TrainingArguments(output_dir=str(tmp_path / "x"), **settings)


def test_cpu_seconds_give_a_second_rate():
    t = timing.RoundTiming("tutorial", 0, steps=10, seconds=4.0, batch_size=4, cpu_seconds=8.0)
    assert t.samples_per_cpu_second == pytest.approx(5.0)
    assert t.as_record()["samples_per_cpu_second"] == 5.0 and t.as_record()["samples_per_second"] == 10.0
    assert timing.RoundTiming("x", 0, 1, 1.0, 1).samples_per_cpu_second is None


def test_flops_and_mfu_against_a_hand_computation():
    # bert-base: 85.6 M weights outside the embeddings, 12 layers of 768, sequences of ~11 tokens
    per_token = timing.train_flops_per_token(85_646_594, 12, 768, 11.0)
    assert per_token == pytest.approx(6 * 85_646_594 + 12 * 12 * 768 * 11.0)
    # 100 000 real tokens/s on an H100 SXM in bf16 (989 TFLOPS)
    assert timing.peak_tflops("NVIDIA H100 80GB HBM3", "bf16") == 989.0
    assert timing.peak_tflops("NVIDIA H100 PCIe", "bf16") == 756.0           # PCIe before the SXM default
    assert timing.peak_tflops("NVIDIA A100-SXM4-80GB", "fp32") == 19.5
    assert timing.peak_tflops("x86_64", "fp32") is None
    mfu = timing.model_flops_utilisation(100_000, per_token, 989.0)
    assert mfu == pytest.approx(100_000 * per_token / 989e12)
    assert timing.model_flops_utilisation(100_000, per_token, None) is None


def test_variant_parsing():
    variant = bench_run.parse_variant("fast-grouped=fast:train.group_by_length=true,train.logging_steps=10")
    assert (variant.name, variant.profile, variant.kind) == ("fast-grouped", "fast", "kit")
    assert variant.sets == ["train.group_by_length=true", "train.logging_steps=10"]
    assert bench_run.parse_variant("again=published").sets == []
    with pytest.raises(Exception, match="NAME=PROFILE"):
        bench_run.parse_variant("fast")


def test_rounds_rotate_the_order_so_no_configuration_always_goes_first():
    orders = [bench_run.rotated(["tutorial", "published", "fast"], r) for r in range(4)]
    assert orders == [["tutorial", "published", "fast"], ["published", "fast", "tutorial"],
                      ["fast", "tutorial", "published"], ["tutorial", "published", "fast"]]


def test_kit_argv_quotes_strings_so_yaml_does_not_read_no_as_false(tmp_path):
    from recipe import config as kit_config

    argv = bench_run.kit_argv(bench_run.Config("fast", "fast", ["train.logging_steps=10"]), tmp_path / "out",
                              bench_run.facade.Device(type="cpu", name="cpu"), tmp_path / "d", tmp_path / "m",
                              bench_run.train_overrides(5), no_swanlab=True)
    sets = [argv[i + 1] for i, a in enumerate(argv) if a == "--set"]
    resolved = kit_config.apply_overrides(kit_config.load_profile("fast"), sets)["train"]
    assert resolved["save_strategy"] == "no" and resolved["eval_strategy"] == "no"
    assert resolved["max_steps"] == 5 + bench_run.MAX_TIMED_STEPS and resolved["logging_steps"] == 10
    assert argv[-1] == "--no-swanlab" and argv[argv.index("--api") + 1] == "transformers"


# ---------------------------------------------------------------- the workload
def test_generated_data_has_cola_like_lengths(tmp_path):
    root = workload.write_data(tmp_path / "data", train_rows=2000)
    sentences = workload.train_sentences(root)
    assert len(sentences) == 2000
    model_dir = workload.write_model(tmp_path / "model", "tiny", sentences)
    lengths = workload.token_lengths(model_dir, sentences)
    mean = sum(lengths) / len(lengths)
    assert 9 <= mean <= 13, mean                  # CoLA: ~11 tokens with [CLS]/[SEP]
    assert max(lengths) <= 47 and min(lengths) >= 5
    assert 1 - mean / workload.MAX_LENGTH > 0.97   # padded to 512: the tutorial's ~98 % padding


def test_model_size_of_the_bert_base_shape(tmp_path):
    from transformers import BertConfig

    BertConfig(vocab_size=28996, num_labels=2).save_pretrained(tmp_path)   # bert-base-cased's shape
    size = workload.model_size(tmp_path)
    assert size["parameters"] == 108_311_810
    # embeddings: words 28996*768 + positions 512*768 + types 2*768 + LayerNorm 2*768
    assert size["nonembedding_parameters"] == 108_311_810 - (28996 + 512 + 2 + 2) * 768
    assert (size["layers"], size["hidden_size"]) == (12, 768)


# ---------------------------------------------------------------- the plain counterpart, trained
class _Capture(bench_run.timing.TrainerCallback):
    """The Trainer's arguments and the first training batch the model is fed."""

    def __init__(self):
        self.args, self.batch = None, None

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.args = args

        def first_batch(module, positional, inputs):
            if module.training and self.batch is None:
                self.batch = {k: v.clone() for k, v in inputs.items() if hasattr(v, "clone")}
        model.register_forward_pre_hook(first_batch, with_kwargs=True)


@pytest.mark.slow
@pytest.mark.parametrize("profile", ["published", "exact", "fast"])
def test_the_plain_counterpart_gets_the_kit_runs_training_arguments_and_batches(profile, tmp_path):
    """Both train for real (2 steps): the TrainingArguments field by field and the first batch tensor by
    tensor (padding mode, truncation, collator, columns, sample order) must be the kit run's."""
    import torch

    device = bench_run.facade.Device(type="cpu", name="cpu")
    data = workload.write_data(tmp_path / "data", train_rows=64)
    model = workload.write_model(tmp_path / "model", "tiny", workload.train_sentences(data))
    overrides = {"max_steps": 2, "eval_strategy": "no", "save_strategy": "no"}
    kit, plain = bench_run.Config(profile, profile), None
    captured = {}
    for config in (kit, bench_run.plain_counterpart(kit), bench_run.Config("tutorial", None)):
        captured[config.name] = _Capture()
        padding = bench_run.train(config, device, data, model, tmp_path / config.name, overrides,
                                  [captured[config.name]], no_swanlab=True)
        if config.plain:
            plain = padding
    assert plain == {"published": "max_length"}.get(profile, "dynamic")
    mine, theirs = (bench_run.comparable_arguments(captured[n].args) for n in (profile, f"{profile}-plain"))
    assert len(mine) > 50 and mine == theirs
    first, second = captured[profile].batch, captured[f"{profile}-plain"].batch
    assert sorted(first) == sorted(second) and {"input_ids", "attention_mask", "labels"} <= set(first)
    assert [k for k in first if not torch.equal(first[k], second[k])] == []
    # the comparison sees a difference where there is one: the raw tutorial script is not the fast profile
    tutorial = bench_run.comparable_arguments(captured["tutorial"].args)
    differ = bench_run.differing_fields(mine, tutorial)
    assert {"published": {"save_total_limit"}}.get(profile, {"logging_steps", "per_device_eval_batch_size"}) <= \
        set(differ), differ


# ---------------------------------------------------------------- end to end, short, on the CPU
COLUMNS = {"samples_per_second", "real_tokens_per_second", "padding_fraction", "projected_3_epoch_seconds",
           "peak_allocated_mb", "speedup_vs_tutorial", "mfu", "peak_tflops_assumed", "precision", "optim",
           "batch_size", "padding", "rounds"}


@pytest.mark.slow
def test_bench_runs_end_to_end_and_emits_every_column(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--device", "cpu", "--threads", "1", "--rounds", "1", "--warmup-steps", "1",
         "--min-steps", "2", "--seconds", "0", "--train-rows", "64", "--parity-steps", "3",
         "--workdir", str(tmp_path / "work"),
         "--json", str(out)],
        check=False, cwd=REPO, env=recipe_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["schema"] == "kit.bench/1"
    rows = {row["name"]: row for row in result["configs"]}
    assert list(rows) == ["tutorial", "tutorial-aa", "published", "published-plain", "exact", "exact-plain", "fast",
                          "fast-plain"]
    for row in rows.values():
        assert COLUMNS <= set(row), COLUMNS - set(row)
        assert row["samples_per_second"] > 0 and row["rounds"][0]["steps"] >= 2
        assert row["peak_allocated_mb"] is None and row["mfu"] is None   # CPU: no allocator stats, no peak
    assert rows["tutorial"]["speedup_vs_tutorial"] == 1.0
    # pad to 512 vs per-batch padding, measured on each run's own batches
    real = result["workload"]["real_tokens_per_sample"]
    assert rows["tutorial"]["padding_fraction"] == pytest.approx(1 - real / 512, abs=1e-3)
    assert rows["published"]["padding_fraction"] == rows["tutorial"]["padding_fraction"]
    assert rows["fast"]["padding_fraction"] < 0.7 and rows["fast"]["padding"] == "dynamic"
    # the fast profile resolved for the CPU: fp32 and unfused AdamW, batch 32
    assert (rows["fast"]["precision"], rows["fast"]["optim"], rows["fast"]["batch_size"]) == (
        "fp32", "adamw_torch", 32)
    assert rows["fast"]["projected_3_epoch_seconds"] == pytest.approx(
        3 * 8551 / rows["fast"]["samples_per_second"], abs=0.051)   # rounded to 0.1 s
    overhead = result["kit_overhead"]
    assert overhead == result["kit_overheads"]["published"]
    for name in ("published", "exact", "fast"):
        entry, kit, plain = result["kit_overheads"][name], rows[name], rows[f"{name}-plain"]
        assert entry["plain"] == f"{name}-plain" and entry["training_arguments_differ"] == []
        ratio = kit["rounds"][0]["samples_per_second"] / plain["rounds"][0]["samples_per_second"]
        assert entry["per_round_percent"] == pytest.approx([timing.overhead_percent(ratio)], abs=0.01)
        assert entry["percent"] == pytest.approx(timing.overhead_percent(ratio), abs=0.01)
        assert f"kit overhead ({name} vs {name}-plain, wall time per sample)" in proc.stdout
        assert (plain["kind"], plain["precision"], plain["optim"], plain["batch_size"], plain["padding"]) == (
            "plain script", kit["precision"], kit["optim"], kit["batch_size"], kit["padding"])
    assert rows["published-plain"]["padding_fraction"] == rows["published"]["padding_fraction"]
    assert rows["exact-plain"]["loss_vs_tutorial"]["agree"] and rows["published-plain"]["loss_vs_tutorial"]["agree"]
    assert result["machine"]["load_average"]["start"] and result["machine"]["torch_threads"] == 1
    for header in ("samples/s", "real tok/s", "pad %", "3-ep CoLA", "peak MiB", "speed-up", "MFU", "kit overhead",
                   "A/A noise floor", "losses vs tutorial"):
        assert header in proc.stdout
    # exact: the tutorial's batch and fp32 without its padding, and the tutorial's per-step losses (dropout off)
    assert (rows["exact"]["batch_size"], rows["exact"]["precision"], rows["exact"]["padding"]) == (4, "fp32", "dynamic")
    assert rows["exact"]["loss_vs_tutorial"]["agree"] and rows["published"]["loss_vs_tutorial"]["agree"]
    assert len(rows["exact"]["loss_vs_tutorial"]["losses"]) == result["parity"]["steps"] == 3
    assert rows["fast"]["loss_vs_tutorial"] == {"compared": False, "reason": "other math: global batch: 4 -> 32"}
    floor = result["noise_floor"]
    assert floor["percent"] == max(abs(p) for p in floor["per_round_percent"])
    assert floor["per_round_percent"] == pytest.approx(
        [timing.overhead_percent(r) for r in rows["tutorial-aa"]["speedup_per_round"]], abs=0.05)
    assert overhead["verdict"] in ("not resolvable here", "within", "OVER")
    assert result["settings"]["overhead"] == ["published", "exact", "fast"]
