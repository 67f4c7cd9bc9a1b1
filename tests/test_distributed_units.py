"""The pieces of multi-card runs that need no training: global batch planning, the settings that
put the Trainer on its backend, merging per-rank reports, the test hook, and the end-of-run
agreement between two real gloo processes."""

from __future__ import annotations

import inspect
import socket
import subprocess
import sys
import textwrap

import pytest
from conftest import REPO, recipe_env
from transformers import TrainingArguments

from recipe import distributed, facade
from recipe.errors import ConfigError, KitError


# --------------------------------------------------------------------------- global batch
def test_one_process_keeps_the_profile_exactly():
    profile = {"per_device_train_batch_size": 4, "learning_rate": 2e-5}
    settings, batch = distributed.plan_batch(profile, world=1)
    assert settings == {**profile, "gradient_accumulation_steps": 1}
    assert batch == {"global": 4, "per_device": 4, "world_size": 1, "gradient_accumulation_steps": 1,
                     "adjusted": None}


def test_two_processes_halve_the_per_device_batch_and_say_so():
    settings, batch = distributed.plan_batch({"per_device_train_batch_size": 16}, world=2)
    assert settings["per_device_train_batch_size"] == 8 and settings["gradient_accumulation_steps"] == 1
    assert batch["global"] == 16 and batch["world_size"] == 2
    assert batch["adjusted"].startswith(
        "per_device_train_batch_size 16 -> 8 to keep the global batch 16 on 2")


def test_accumulation_of_the_profile_shrinks_before_the_per_device_batch():
    # 4 per device x 4 accumulation = 16; on 2 cards the tried per-device size 4 is kept
    profile = {"per_device_train_batch_size": 4, "gradient_accumulation_steps": 4}
    settings, batch = distributed.plan_batch(profile, world=2)
    assert (settings["per_device_train_batch_size"], settings["gradient_accumulation_steps"]) == (4, 2)
    assert batch["adjusted"].startswith("gradient_accumulation_steps 4 -> 2")


def test_an_explicit_global_batch_larger_than_the_cards_hold_uses_accumulation():
    profile = {"per_device_train_batch_size": 32, "global_batch_size": 256}
    settings, batch = distributed.plan_batch(profile, world=2)
    assert "global_batch_size" not in settings       # the kit's setting never reaches TrainingArguments
    assert (settings["per_device_train_batch_size"], settings["gradient_accumulation_steps"]) == (32, 4)
    assert batch["global"] == 256


@pytest.mark.parametrize("per_device, accumulation, global_batch, world", [
    (16, 1, None, 1), (16, 1, None, 2), (16, 1, None, 8), (4, 1, None, 4), (32, 1, 96, 8), (6, 1, 30, 3),
    (8, 2, None, 4), (1, 1, 12, 4), (32, 1, 32, 16),
])
def test_per_device_times_world_times_accumulation_is_always_the_global_batch(per_device, accumulation,
                                                                               global_batch, world):
    train = {"per_device_train_batch_size": per_device, "gradient_accumulation_steps": accumulation}
    if global_batch is not None:
        train["global_batch_size"] = global_batch
    settings, batch = distributed.plan_batch(train, world)
    expected = global_batch or per_device * accumulation
    per_rank, steps = settings["per_device_train_batch_size"], settings["gradient_accumulation_steps"]
    assert per_rank * world * steps == expected
    assert per_rank <= per_device                   # never more memory per card than the profile tried
    assert batch["global"] == expected and batch["per_device"] == settings["per_device_train_batch_size"]


def test_a_global_batch_the_world_cannot_split_is_a_config_error_with_the_fix():
    with pytest.raises(ConfigError) as caught:
        distributed.plan_batch({"per_device_train_batch_size": 4}, world=8)   # the tutorial's bs 4, 8 cards
    err = caught.value
    assert err.exit_code == 3
    assert ("per_device_train_batch_size 4 x gradient_accumulation_steps 1) = 4 cannot be split evenly "
            "over 8") in err.message
    assert "NPROC x NNODES in [1, 2, 4]" in err.fix and "--set train.global_batch_size=8" in err.fix


@pytest.mark.parametrize("value", [0, -4, "sixteen", 2.5, True])
def test_a_global_batch_that_is_not_a_positive_whole_number_is_refused(value):
    with pytest.raises(ConfigError, match=r"train.global_batch_size=.* must be a whole number >= 1"):
        distributed.plan_batch({"per_device_train_batch_size": 4, "global_batch_size": value}, world=1)


# --------------------------------------------------------------------------- Trainer settings
@pytest.mark.parametrize("device_type, backend", [("npu", "hccl"), ("cuda", "nccl"), ("cpu", "gloo")])
def test_torchrun_settings_name_the_backend_of_the_device(device_type, backend):
    settings = facade.device_training_settings(facade.Device(type=device_type, name="x"), world_size=8)
    assert settings == {"use_cpu": device_type == "cpu", "ddp_backend": backend,
                        "ddp_find_unused_parameters": False}
    accepted = inspect.signature(TrainingArguments.__init__).parameters
    assert set(settings) <= set(accepted)
    choices = TrainingArguments.__dataclass_fields__["ddp_backend"].metadata["choices"]
    assert backend in choices


def test_a_single_process_gets_no_backend():
    settings = facade.device_training_settings(facade.Device(type="cuda", name="x"), world_size=1)
    assert settings == {"use_cpu": False}


def test_manifest_record_names_hccl_timeouts_only_on_ascend(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "16")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "8")
    monkeypatch.setenv("HCCL_CONNECT_TIMEOUT", "1200")
    monkeypatch.delenv("HCCL_EXEC_TIMEOUT", raising=False)
    assert distributed.manifest_record("hccl", 1800) == {
        "backend": "hccl", "world_size": 16, "nodes": 2, "ddp_timeout_s": 1800,
        "HCCL_CONNECT_TIMEOUT": "1200", "HCCL_EXEC_TIMEOUT": None}
    assert "HCCL_CONNECT_TIMEOUT" not in distributed.manifest_record("nccl", 1800)
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "1")
    assert distributed.manifest_record("gloo", 1800) == {"backend": None, "world_size": 1, "nodes": 1,
                                                          "ddp_timeout_s": None}


def test_other_ranks_get_a_private_scratch_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("RANK", "0")
    assert distributed.scratch_dir(tmp_path) == tmp_path
    monkeypatch.setenv("RANK", "3")
    scratch = distributed.scratch_dir(tmp_path)
    assert scratch.is_dir() and tmp_path not in scratch.parents and scratch.name.startswith("kit-rank3-")


# --------------------------------------------------------------------------- per-rank reports
def test_memory_is_the_largest_over_the_ranks_with_every_rank_listed():
    reports = [
        {"rank": 0, "host": "a", "device": "npu:0", "peak_allocated_mb": 900.0, "peak_reserved_mb": 1200.0,
         "source": "torch.npu", "device_used_mb_peak": 3000, "device_total_mb": 65536,
         "device_source": "npu-smi",
         "host_rss_mb_peak": 2100.0},
        {"rank": 1, "host": "a", "device": "npu:1", "peak_allocated_mb": 950.5, "peak_reserved_mb": 1100.0,
         "source": "torch.npu", "device_used_mb_peak": None, "device_total_mb": 65536,
         "device_source": "npu-smi",
         "host_rss_mb_peak": 2000.0},
    ]
    memory = distributed.merge_memory(reports)
    assert memory["peak_allocated_mb"] == 950.5 and memory["peak_reserved_mb"] == 1200.0
    assert memory["device_used_mb_peak"] == 3000 and memory["host_rss_mb_peak"] == 2100.0
    assert memory["source"] == "torch.npu" and memory["device_source"] == "npu-smi"
    assert [r["device"] for r in memory["per_rank"]] == ["npu:0", "npu:1"]
    assert memory["per_rank"][1]["peak_allocated_mb"] == 950.5


def test_host_rss_is_this_process_in_mib():
    assert 20 < distributed.host_rss_peak_mb() < 64 * 1024


# --------------------------------------------------------------------------- agreement, 2 real processes
AGREEMENT = textwrap.dedent("""
    import os, sys
    from datetime import timedelta
    import torch.distributed as dist
    from recipe import distributed
    from recipe.errors import KitError
    dist.init_process_group("gloo", timeout=timedelta(seconds=60))   # a hang fails the test, not CI
    if distributed.rank() == 1 and os.environ["RANK1_DIES"] == "1":
        os._exit(17)                              # dies like a killed rank: no goodbye
    try:
        reports = distributed.gather_from_all_ranks({"rank": distributed.rank()})
    except KitError as err:
        print("RAISED", err.render())
        distributed.leave(err.exit_code)   # as recipe.finetune.main ends: no teardown to hang or abort
    print("GATHERED", [r["rank"] for r in reports])
    distributed.leave(0)
    print("NOT REACHED")
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _two_ranks(rank1_dies: bool) -> list[subprocess.CompletedProcess]:
    port = str(_free_port())
    procs = [subprocess.Popen([sys.executable, "-c", AGREEMENT], cwd=REPO, text=True, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE,
                              env=recipe_env(RANK=str(r), LOCAL_RANK=str(r), WORLD_SIZE="2",
                                             MASTER_ADDR="127.0.0.1", MASTER_PORT=port,
                                             RANK1_DIES="1" if rank1_dies else "0"))
             for r in (0, 1)]
    return [subprocess.CompletedProcess(p.args, p.wait(timeout=120), *p.communicate()) for p in procs]


@pytest.mark.slow   # two processes with torch and a gloo group: ~7 s on 2 cores
def test_every_rank_reaching_the_end_gathers_all_reports_in_rank_order():
    rank0, rank1 = _two_ranks(rank1_dies=False)
    assert rank0.returncode == 0 and rank1.returncode == 0, rank0.stderr[-2000:] + rank1.stderr[-2000:]
    assert "GATHERED [0, 1]" in rank0.stdout and "GATHERED [0, 1]" in rank1.stdout   # flushed by leave()
    assert "NOT REACHED" not in rank0.stdout + rank1.stdout


@pytest.mark.slow   # two processes with torch and a gloo group: ~7 s on 2 cores
def test_a_dead_rank_makes_rank_0_refuse_to_finish():
    rank0, rank1 = _two_ranks(rank1_dies=True)
    assert rank1.returncode == 17
    # the KitError's code: leave() skips the teardown, where gloo used to abort on the broken pair
    assert rank0.returncode == 1, rank0.stdout + rank0.stderr[-2000:]
    assert "RAISED error: rank 0: not every rank finished the run, so no summary is written" in rank0.stdout


WATCHDOG = textwrap.dedent("""
    import sys, time
    from recipe import distributed
    with distributed.end_of_run_watchdog(1):
        time.sleep(float(sys.argv[1]))          # the end of the run: quick, or stuck
    time.sleep(1.5)                             # after it: the watchdog is off
    print("ended normally")
""")


@pytest.mark.parametrize("stuck", [True, False])
def test_a_stuck_end_of_run_exits_with_every_stack_instead_of_hanging(stuck):
    done = subprocess.run([sys.executable, "-c", WATCHDOG, "30" if stuck else "0.1"], cwd=REPO, env=recipe_env(),
                          capture_output=True, text=True, timeout=20, check=False)
    if stuck:   # well before the 30 s sleep ends
        assert done.returncode == 1 and "ended normally" not in done.stdout
        assert "Timeout (0:00:01)!" in done.stderr and 'File "<string>", line 5' in done.stderr
    else:
        assert done.returncode == 0 and done.stdout.strip() == "ended normally", done.stderr


# --------------------------------------------------------------------------- exact texts and edge cases
def test_a_bad_batch_setting_names_the_key_and_a_fix():
    with pytest.raises(ConfigError) as err:
        distributed.plan_batch({"per_device_train_batch_size": 0}, 1)
    assert err.value.render() == ("config error: train.per_device_train_batch_size=0 must be a whole number >= 1\n"
                                  "  fix: e.g. --set train.per_device_train_batch_size=16")
    train, batch = distributed.plan_batch({"per_device_train_batch_size": 4.0}, 1)   # YAML's 4.0 is 4
    assert train["per_device_train_batch_size"] == 4 and type(train["per_device_train_batch_size"]) is int
    train, batch = distributed.plan_batch({}, 1)                                      # the Trainer's default
    assert (batch["global"], batch["per_device"], batch["gradient_accumulation_steps"]) == (8, 8, 1)


def test_the_per_device_batch_never_grows_past_the_profiles():
    train, batch = distributed.plan_batch({"per_device_train_batch_size": 3, "global_batch_size": 4}, 1)
    assert (train["per_device_train_batch_size"], train["gradient_accumulation_steps"]) == (2, 2)
    assert type(train["gradient_accumulation_steps"]) is int
    assert batch["adjusted"] == ("per_device_train_batch_size 3 -> 2, gradient_accumulation_steps 1 -> 2 to keep the "
                                 "global batch 4 on 1 process(es): 2 per device x 1 x 2 accumulation")


def test_an_explicit_global_batch_that_does_not_split_names_the_setting():
    with pytest.raises(ConfigError) as err:
        distributed.plan_batch({"per_device_train_batch_size": 8, "global_batch_size": 6}, 4)
    assert err.value.message == "train.global_batch_size = 6 cannot be split evenly over 4 processes (WORLD_SIZE)"
    assert err.value.fix == ("run on a process count that divides 6 (NPROC x NNODES in [1, 2, 3, 6]), or choose a "
                             "global batch that 4 divides: --set train.global_batch_size=8")


def test_a_rank_outside_the_trainers_world_stops_with_the_fix(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    distributed.check_world(2)
    with pytest.raises(KitError) as err:
        distributed.check_world(1)
    assert err.value.message == ("torchrun started 2 processes but the Trainer runs with world size 1: it did not "
                                 "join the process group")
    assert err.value.fix == ("every rank must see the same device type: check --device and the *_VISIBLE_DEVICES "
                             "variables; `make doctor` explains more")


def test_merged_memory_keeps_rank_zeros_sources_and_each_ranks_identity():
    reports = [{"rank": 0, "host": "n0", "device": "npu:0", "source": "torch.npu", "device_total_mb": 65536,
                "device_source": "npu-smi", "peak_allocated_mb": 10.0},
               {"rank": 1, "host": "n1", "device": "npu:1", "source": "other", "device_total_mb": 1,
                "device_source": "other", "peak_allocated_mb": 12.0}]
    memory = distributed.merge_memory(reports)
    assert (memory["source"], memory["device_total_mb"], memory["device_source"]) == ("torch.npu", 65536, "npu-smi")
    assert memory["peak_allocated_mb"] == 12.0 and memory["peak_reserved_mb"] is None
    assert [(r["rank"], r["host"], r["device"]) for r in memory["per_rank"]] == [(0, "n0", "npu:0"), (1, "n1", "npu:1")]


def test_the_watchdog_works_where_stderr_is_no_file(monkeypatch):
    import io
    monkeypatch.setattr(sys, "stderr", io.StringIO())     # pytest's capsys, a notebook
    with distributed.end_of_run_watchdog(60):
        pass
    assert distributed._stream_with_fd() is sys.__stderr__
