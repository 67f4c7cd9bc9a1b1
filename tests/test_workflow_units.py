"""The pieces the NPU-vs-A100 workflow rests on (tests/test_workflow.py rehearses the whole):
numbers hashed by value, runs compared by what they used, timings that time training, no host
sync per step, memory the two devices can be compared on, the CPU binding recorded, CANN's log
folder in a run directory."""

from __future__ import annotations

import json
import re
import time
from types import SimpleNamespace

import pytest
import torch
from test_report_units import CONFIG, write_run

from recipe import callbacks, config, distributed, facade, finetune, monitor, rundir, threads
from recipe.tools import smi
from report import comparability, headline
from report.records import load_runs

# -- 2. numbers by value ------------------------------------------------------------------------


def test_a_whole_float_hashes_and_compares_as_the_integer_it_equals():
    three, three_float = {"train": {"num_train_epochs": 3}}, {"train": {"num_train_epochs": 3.0}}
    assert config.config_sha256(three) == config.config_sha256(three_float)
    assert config.differences(three, three_float) == []
    assert config.config_sha256(three) != config.config_sha256({"train": {"num_train_epochs": 2.5}})
    assert config.differences(three, {"train": {"num_train_epochs": 2.5}}) == [("train.num_train_epochs", 3, 2.5)]
    assert config.canonical({"a": [1.0, True, 0.5]}) == {"a": [1, True, 0.5]}   # a bool stays a bool


def test_epochs_from_the_command_line_is_the_profiles_number():
    args = finetune.parse_args(["--profile", "smoke", "--output", "x", "--epochs", "3"])
    resolved = finetune.resolve_config(args)
    assert resolved["train"]["num_train_epochs"] == 3 and type(resolved["train"]["num_train_epochs"]) is int
    fractional = finetune.resolve_config(finetune.parse_args(["--output", "x", "--epochs", "1.5"]))
    assert fractional["train"]["num_train_epochs"] == 1.5


@pytest.mark.parametrize("a, b", [
    ({"x": 1}, {"x": 1.0}), ({"x": {}}, {}), ({"x": None}, {}), ({"x": [1, 2]}, {"x": [2, 1]}),
    ({"x": {"y": 1}}, {"x": {"y": "1"}}), ({}, {}), ({"x": True}, {"x": 1}),
])
def test_configs_differ_by_hash_exactly_when_a_key_is_named(a, b):
    """A "differs" verdict always names the key: no hash difference without a named difference."""
    assert (config.config_sha256(a) != config.config_sha256(b)) == bool(config.differences(a, b))


def test_resume_accepts_a_run_hashed_before_numbers_were_canonical(tmp_path):
    old_hash = "0" * 64   # what an older kit hashed {"num_train_epochs": 3.0} to: not today's hash
    (tmp_path / "manifest.json").write_text(json.dumps({"config": {"train": {"num_train_epochs": 3.0}},
                                                        "config_sha256": old_hash}))
    rundir.check_resume_config(tmp_path, {"train": {"num_train_epochs": 3}})   # no error
    with pytest.raises(Exception, match=r"train.num_train_epochs \(3 -> 2\) differ"):
        rundir.check_resume_config(tmp_path, {"train": {"num_train_epochs": 2}})


# -- 1. compared by what was used, not where it lay ---------------------------------------------

def fetched_run(path, model_path, data_path, identity="bert-base-cased", files="f" * 64, **kw):
    cfg = json.loads(json.dumps(CONFIG))
    cfg.update(model=str(model_path), data=str(data_path))
    return write_run(path, config=cfg, manifest_extra={
        "identity": {"model": identity, "data": "glue-cola"},
        "model_fingerprint": {"source": str(model_path), "hub_id": None, "sha256": files}}, **kw)


def test_the_same_model_and_data_at_other_paths_are_comparable(tmp_path):
    a = fetched_run(tmp_path / "npu", "/cache/models/openmind/bert-base-cased", "/cache/data/openmind/glue-cola")
    b = fetched_run(tmp_path / "a100", "/cache/models/transformers/bert-base-cased",
                    "/cache/data/transformers/glue-cola")
    result = comparability.check_all(load_runs([a, b]))["a100"]
    assert result.comparable and result.reasons == []


def test_another_model_is_not_comparable_and_other_bytes_of_the_same_one_are_noted(tmp_path):
    a = fetched_run(tmp_path / "a", "/m/a", "/d/a")
    other = fetched_run(tmp_path / "b", "/m/b", "/d/b", identity="roberta-base")
    runs = load_runs([a, other])
    assert comparability.check_all(runs)["b"].reasons == ["model differs (bert-base-cased → roberta-base)"]
    copy = fetched_run(tmp_path / "c", "/m/c", "/d/c", files="e" * 64)   # the other hub's copy
    result = comparability.check_all(load_runs([a, copy]))["c"]
    assert result.comparable
    assert result.notes == [("same model (bert-base-cased) from other files: fingerprint ffffffffffff → "
                             "eeeeeeeeeeee (another hub's copy?); its initial weights may differ")]


def test_older_records_name_the_model_by_the_fetched_hub_id_or_else_by_its_files(tmp_path):
    def run(fingerprint, model="/x/bert-base-cased"):
        cfg = {**CONFIG, "model": model}
        return SimpleNamespace(manifest={"config": cfg, "model_fingerprint": fingerprint})
    assert comparability.model_identity(run({"hub_id": "PyTorch-NPU/bert_base_cased"})) == "bert-base-cased"
    assert comparability.model_identity(run({}, model="google-bert/bert-base-cased")) == "bert-base-cased"
    assert comparability.model_identity(run({"sha256": "ab" * 32})) == "files sha256 abababababab"
    assert comparability.model_identity(run({})) == "/x/bert-base-cased"


# -- 4. timings that time training --------------------------------------------------------------

def test_a_trace_run_reads_cannot_tell_on_time_even_with_a_spread(tmp_path):
    twins = [write_run(tmp_path / f"t{i}", epoch_seconds=(10.0, 10.0, 10.0)) for i in range(2)]
    fast = write_run(tmp_path / "fast", epoch_seconds=(10.0, 10.0, 10.0))
    traced = write_run(tmp_path / "traced", epoch_seconds=(30.0, 30.0, 30.0))
    summary = json.loads((traced / "summary.json").read_text())
    summary["timing"] = finetune.timing_record(SimpleNamespace(checkpoints_timed=True), {}, traced=True)
    (traced / "summary.json").write_text(json.dumps(summary))
    runs = load_runs([fast, traced])
    head = headline.build(runs, comparability.check_all(runs), 5, [headline.Group("g", load_runs(twins))])
    time_row = next(c for c in head.claims if c.key == "time")
    assert time_row.verdict == headline.CANNOT_TELL
    assert time_row.why.startswith("`traced`'s time is not comparable: a --trace run")
    # the same pair without the trace mark: the rule decides (A faster by 200 % against a spread of 0)
    summary["timing"]["comparable"] = True
    (traced / "summary.json").write_text(json.dumps(summary))
    runs = load_runs([fast, traced])
    head = headline.build(runs, comparability.check_all(runs), 5, [headline.Group("g", load_runs(twins))])
    assert next(c for c in head.claims if c.key == "time").verdict == headline.HOLDS


@pytest.mark.slow
def test_checkpoint_writes_and_what_follows_training_stay_out_of_train_seconds(tmp_path, monkeypatch, capsys):
    """Each checkpoint write and the tracking finish made slow on purpose: the training figures
    must not move, the pauses are timed apart, and the screen shows the record's epoch seconds."""
    import transformers

    from recipe import tracking
    save, finish = transformers.Trainer._save_checkpoint, tracking.finish

    def slow_save(self, *args, **kwargs):
        time.sleep(0.6)
        return save(self, *args, **kwargs)

    def slow_finish(callback):
        time.sleep(1.0)
        return finish(callback)

    monkeypatch.setattr(transformers.Trainer, "_save_checkpoint", slow_save)
    monkeypatch.setattr(tracking, "finish", slow_finish)
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.setenv(name, "1")
    out = tmp_path / "run"
    # 480 rows / batch 16 = 30 steps in one epoch; a checkpoint at steps 10, 20 and 30
    assert finetune.main(["--profile", "smoke", "--device", "cpu", "--no-swanlab", "--epochs", "1",
                          "--set", "smoke_data.train=480", "--set", "smoke_data.validation=64",
                          "--set", "train.save_steps=10", "--output", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    saves = [line for line in lines if line["kind"] == "checkpoint"]
    assert [line["step"] for line in saves] == [10, 20, 30] and all(line["seconds"] >= 0.6 for line in saves)
    assert summary["checkpoint_seconds"] == pytest.approx(sum(line["seconds"] for line in saves), abs=2e-3)
    # training time: the loop minus evaluation minus the checkpoint writes (>= 1.8 s of them)
    assert summary["train_seconds"] < summary["wall_seconds"] - 1.8
    assert summary["samples_per_second"] == pytest.approx(480 / summary["train_seconds"], rel=1e-3)
    # the loop's clock stopped at on_train_end, before the 1 s tracking finish
    assert summary["timing"]["after_training_seconds"]["tracking_finish"] >= 1.0
    assert summary["wall_seconds"] < lines[-1]["elapsed_s"] + 0.5
    # the epoch leaves out the two mid-epoch writes, and the screen shows the record's figure
    epoch = summary["epoch_seconds"][0]
    assert epoch <= summary["train_seconds"] + 0.05
    shown = re.search(r"^\s+1/1\s+(\S+\s+){4}(\S+)", capsys.readouterr().out, re.MULTILINE)
    assert shown and float(shown.group(2)) == round(epoch, 1)


# -- 5. no host sync per step -------------------------------------------------------------------

class WatchedMask(torch.Tensor):
    """An attention mask that counts every time a value of it is read on the host."""
    reads = 0

    def __int__(self):
        WatchedMask.reads += 1
        return int(self.as_subclass(torch.Tensor))

    def item(self):
        WatchedMask.reads += 1
        return self.as_subclass(torch.Tensor).item()


def test_token_counting_reads_the_device_once_at_the_end_not_per_batch():
    net = torch.nn.Linear(2, 2)
    counter = callbacks.TokenCounter(net)
    WatchedMask.reads = 0
    masks = [torch.tensor([[1, 1, 0], [1, 0, 0]]), torch.tensor([[1, 1, 1], [1, 1, 0]])]
    for mask in masks:
        counter._count(net, (), {"attention_mask": mask.as_subclass(WatchedMask)})
    assert WatchedMask.reads == 0   # no per-batch host read
    assert counter.total_tokens == 12 and counter.real_tokens == 8
    assert WatchedMask.reads == 1   # one read, when asked
    net.eval()
    counter._count(net, (), {"attention_mask": masks[0].as_subclass(WatchedMask)})
    assert counter.real_tokens == 8   # evaluation batches are not counted


def test_the_stop_flag_is_asked_of_the_other_ranks_only_at_log_eval_or_save_steps(monkeypatch):
    asked = []
    monkeypatch.setattr(distributed, "max_over_ranks", lambda value, device: asked.append(value) or 0)
    stop = callbacks.StopOnSignal()
    state, args = SimpleNamespace(global_step=7), SimpleNamespace(device="cpu")

    def step(**flags):
        control = SimpleNamespace(**{**dict.fromkeys(("should_log", "should_evaluate", "should_save",
                                                      "should_training_stop"), False), **flags})
        stop.on_step_end(args, state, control)

    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    step()
    assert asked == []   # an ordinary step of a multi-process run: no collective
    for flag in ("should_log", "should_evaluate", "should_save", "should_training_stop"):
        step(**{flag: True})
    assert len(asked) == 4
    monkeypatch.setattr(distributed, "world_size", lambda: 1)
    step()
    assert len(asked) == 5   # alone, every step (a local flag)


# -- 6. memory the devices can be compared on ---------------------------------------------------

def device_memory(reserved, allocated, used, baseline):
    return {"peak_allocated_mb": allocated, "peak_reserved_mb": reserved, "device_used_mb_peak": used,
            "device_baseline_mb": baseline, "device_used_mb_over_baseline": used - baseline,
            "device_total_mb": 65536.0, "host_rss_mb_peak": 3000.0, "source": "torch", "device_source": "smi"}


def test_the_memory_claim_uses_the_frameworks_peak_and_shows_the_smi_figure_beside_it(tmp_path):
    # npu-smi counts the card's ~2.9 GB idle reservation; nvidia-smi nearly nothing. The allocators agree.
    npu = write_run(tmp_path / "npu", device=("npu", "Ascend910B3"),
                    memory=device_memory(reserved=3100.0, allocated=2500.0, used=6900.0, baseline=2900.0))
    gpu = write_run(tmp_path / "gpu", device=("cuda", "NVIDIA A100-SXM4-80GB"),
                    memory=device_memory(reserved=3150.0, allocated=2520.0, used=4100.0, baseline=3.0))
    twins = [write_run(tmp_path / f"t{i}", device=("npu", "Ascend910B3"),
                       memory=device_memory(3100.0, 2500.0, 6900.0, 2900.0)) for i in range(2)]
    runs = load_runs([npu, gpu])
    head = headline.build(runs, comparability.check_all(runs), 5, [headline.Group("g", load_runs(twins))])
    memory = next(c for c in head.claims if c.key == "memory")
    assert memory.measure.startswith("`peak_reserved_mb`")
    assert (memory.a, memory.b, memory.verdict) == (3100.0, 3150.0, headline.HOLDS)   # +1.6 %
    assert ("device-wide beside it (smi, above the idle baseline measured before the run; not judged): "
            "NPU 4000 MB, A100 4097 MB") in memory.why


def test_the_monitor_records_the_peak_above_the_idle_baseline(monkeypatch):
    readings = iter([{"used_mb": 3500.0, "total_mb": 65536.0, "tool": "npu-smi"},
                     {"used_mb": 7100.0, "total_mb": 65536.0, "tool": "npu-smi"}])
    monkeypatch.setattr(facade, "device_memory_sample", lambda device: next(readings))
    npu = facade.Device(type="npu", name="Ascend910B3", count=1)
    sampler = monitor.DeviceMonitor(npu, baseline_mb=2900.0)
    sampler.sample()
    sampler.sample()
    assert sampler.as_record() == {"device_used_mb_peak": 7100.0, "device_total_mb": 65536.0,
                                   "device_source": "npu-smi", "device_baseline_mb": 2900.0,
                                   "device_used_mb_over_baseline": 4200.0}
    assert monitor.DeviceMonitor(npu).as_record()["device_used_mb_over_baseline"] is None


def test_one_npu_smi_call_per_tick_feeds_memory_and_energy(tmp_path, monkeypatch):
    """npu-smi printing the recorded 910B4 table (88.4 W, 3397 MB HBM), then the busy 910B3 one."""
    from fakes import NPU_SMI_DIR, fake_tool
    tool = fake_tool(tmp_path / "bin", "npu-smi", (NPU_SMI_DIR / "healthy_910b4.txt").read_text())
    monkeypatch.setenv("PATH", str(tool.parent))
    calls = []
    run = facade._run
    monkeypatch.setattr(facade, "_run", lambda cmd: calls.append(cmd) or run(cmd))
    npu = facade.Device(type="npu", name="910B4", index=0)
    meter = facade.energy_meter(npu, interval_s=3600)   # checks once that npu-smi shows power
    calls.clear()
    watch = monitor.DeviceMonitor(npu, meter)
    watch.sample()
    (tool.parent / ".npu-smi.out").write_text((NPU_SMI_DIR / "warning_busy_910b3.txt").read_text())
    watch.sample()
    assert calls == [["npu-smi", "info"]] * 2 and watch.reads == 2   # not four: the meter asked no one
    assert meter.powers == [88.4, 291.5]
    assert watch.as_record()["device_used_mb_peak"] == max(
        row["hbm_used_mb"] for text in ("healthy_910b4.txt", "warning_busy_910b3.txt")
        for row in smi.parse_npu_smi_info((NPU_SMI_DIR / text).read_text())[:1])


# -- 7. the CPU binding -------------------------------------------------------------------------

def test_the_binding_the_entry_point_exported_is_what_the_manifest_records():
    text = "taskset -c 4,5,6,7 (local rank 1 of 2, 4 of 8 cores)"   # docker/entrypoint.sh's format
    assert threads.cpu_binding({"KIT_CPU_BINDING": text}) == text
    assert threads.cpu_binding({}) is None and threads.cpu_binding({"KIT_CPU_BINDING": ""}) is None


# -- 8. CANN's log folder in the run directory --------------------------------------------------

def plog(run_dir):
    folder = run_dir / "ascend-log" / "debug" / "plog"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "plog-4242_20261204.log").write_text("[INFO] ASCENDCL(4242,python):2026-12-04 init\n")


def test_a_directory_holding_only_canns_logs_is_a_new_run_and_keeps_them(tmp_path):
    run = tmp_path / "published-npu"
    plog(run)   # what CANN wrote when the container imported torch_npu
    assert not rundir.holds_anything(run)
    claim = rundir.claim(run, resume=False, overwrite=False, config={})
    claim.rollback()   # a failed start leaves the logs as they were
    assert (run / "ascend-log" / "debug" / "plog" / "plog-4242_20261204.log").is_file()


def test_overwrite_of_a_run_with_canns_logs_keeps_the_logs(tmp_path):
    run = write_run(tmp_path / "published-npu")
    plog(run)
    assert rundir.is_kit_run(run) and rundir.holds_anything(run)
    claim = rundir.claim(run, resume=False, overwrite=True, config={})
    claim.commit(overwrite=True)
    claim.release()
    assert not (run / "summary.json").exists()
    assert (run / "ascend-log" / "debug" / "plog" / "plog-4242_20261204.log").is_file()
    stranger = tmp_path / "stranger"
    plog(stranger)
    (stranger / "notes.txt").write_text("mine")
    with pytest.raises(Exception, match="holds no run of this kit"):
        rundir.claim(stranger, resume=False, overwrite=True, config={})


def test_the_kits_tiny_bert_is_one_model_whatever_weights_its_seed_drew(tmp_path):
    def tiny(name, files, seed):
        cfg = {**json.loads(json.dumps(CONFIG)), "model": "tiny-bert"}
        return write_run(tmp_path / name, config=cfg, seed=seed, manifest_extra={
            "identity": {"model": "tiny-bert", "data": None},
            "model_fingerprint": {"source": f"/runs/{name}/tiny-model", "hub_id": None, "sha256": files}})
    runs = load_runs([tiny("seed-42", "a" * 64, 42), tiny("seed-7", "b" * 64, 7)])
    assert comparability.check_all(runs)["seed-7"] == comparability.Comparability(True, [], [])
    assert finetune.model_identity("tiny-bert") == "tiny-bert"
    assert finetune.model_identity("/somewhere/my-own-bert") is None
