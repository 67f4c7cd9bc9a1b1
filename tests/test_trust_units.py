"""Trust the run (docs/run-record.md), the parts that need no training: what --overwrite may delete, the
run-directory lock, resume's config check, setting types, secrets, thresholds for what ran, the
model fingerprint, threads and the one reader of the record."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from recipe import compat, config, hub, model, record, rundir, threads
from recipe.errors import ConfigError, OutputError
from recipe.tools import fetch

REPO = Path(__file__).resolve().parent.parent


def snapshot(root: Path) -> dict | None:
    """Every path under root with its mode and bytes: two snapshots are equal only when nothing changed."""
    if not root.exists():
        return None
    found = {".": ("dir", stat.S_IMODE(root.stat().st_mode))}
    for path in sorted(root.rglob("*")):
        mode = stat.S_IMODE(path.lstat().st_mode)
        found[str(path.relative_to(root))] = ("dir", mode) if path.is_dir() else ("file", mode, path.read_bytes())
    return found


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def user_folder(root: Path) -> Path:
    """The issue's folder: a user's labels and model, in directories named like the kit's."""
    write(root / "data" / "precious_labels.csv", "sentence,label\nIt works .,1\n")
    write(root / "model" / "my_finetuned.bin", os.urandom(2048))
    write(root / "notes.txt", "mine\n")
    return root


def kit_run(root: Path, config_: dict | None = None) -> Path:
    """A run directory as the kit leaves it, plus user files beside and inside its folders."""
    cfg = config_ or {"profile": "smoke"}
    write(root / record.MANIFEST, json.dumps({"schema": record.MANIFEST_SCHEMA, "config": cfg,
                                              "config_sha256": config.config_sha256(cfg),
                                              "started_at": "2026-01-01T00:00:00+00:00", "command": ["x"]}))
    write(root / record.METRICS, '{"kind": "train", "step": 1, "loss": 0.7}\n')
    write(root / record.SUMMARY, json.dumps({"schema": record.SUMMARY_SCHEMA, "status": "complete"}))
    write(root / "checkpoints" / "checkpoint-5" / "trainer_state.json", "{}")
    write(root / "model" / "model.safetensors", b"weights")
    write(root / "tiny-model" / "config.json", "{}")
    write(root / "swanlog" / "run.log", "log")
    write(root / "data" / "smoke-data" / "raw" / "in_domain_train.tsv", "a\t1\t\tA .\n")
    # the user's files, beside the run and inside the folders the kit shares with them
    write(root / "notes.txt", "mine\n")
    write(root / "data" / "precious_labels.csv", "sentence,label\n")
    write(root / "checkpoints" / "README.md", "my notes about checkpoints\n")
    return root


# --------------------------------------------------------------------------- --overwrite
def test_overwrite_refuses_a_folder_that_holds_no_kit_run(tmp_path):
    folder = user_folder(tmp_path / "mine")
    before = snapshot(folder)
    with pytest.raises(OutputError, match="--overwrite refused: .*mine is not empty and holds no run of this kit"):
        rundir.claim(folder, resume=False, overwrite=True, config={})
    assert snapshot(folder) == before


@pytest.mark.parametrize("where", ["/", "home", "repo"])
def test_root_home_and_the_repository_are_never_run_directories(where, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(user_folder(tmp_path / "home")))
    target = {"/": Path("/"), "home": Path("~"), "repo": REPO}[where]
    before = snapshot(tmp_path / "home")
    with pytest.raises(OutputError, match="can never be a run directory") as err:
        rundir.claim(target, resume=False, overwrite=True, config={})
    assert len(err.value.message.splitlines()) == 1 and err.value.fix
    assert snapshot(tmp_path / "home") == before
    assert not (REPO / rundir.LOCK).exists() and not (REPO / rundir.STAGING).exists()


def test_overwrite_deletes_only_the_kit_paths(tmp_path):
    run = kit_run(tmp_path / "run")
    user = {p: (run / p).read_bytes() for p in ("notes.txt", "data/precious_labels.csv", "checkpoints/README.md")}
    claim = rundir.claim(run, resume=False, overwrite=True, config={})
    write(claim.staging / "data" / "smoke-data" / "raw" / "in_domain_train.tsv", "new\n")
    claim.commit(overwrite=True)
    claim.release()
    assert {p: (run / p).read_bytes() for p in user} == user, "a user file was touched"
    left = sorted(str(p.relative_to(run)) for p in run.rglob("*"))
    assert left == ["checkpoints", "checkpoints/README.md", "data", "data/precious_labels.csv", "data/smoke-data",
                    "data/smoke-data/raw", "data/smoke-data/raw/in_domain_train.tsv", "notes.txt"]
    assert (run / "data/smoke-data/raw/in_domain_train.tsv").read_text() == "new\n"


def test_failure_before_training_leaves_the_directory_as_found(tmp_path):
    run = kit_run(tmp_path / "run")
    before = snapshot(run)
    claim = rundir.claim(run, resume=False, overwrite=True, config={})
    write(claim.staging / "tiny-model" / "config.json", "half")
    claim.rollback()
    assert snapshot(run) == before
    fresh = tmp_path / "new"
    rundir.claim(fresh, resume=False, overwrite=False, config={}).rollback()
    assert not fresh.exists()


# --------------------------------------------------------------------------- the lock
def test_a_second_run_is_refused_naming_the_holder(tmp_path):
    run = tmp_path / "run"
    claim = rundir.claim(run, resume=False, overwrite=False, config={})
    before = snapshot(run)
    with pytest.raises(OutputError, match=rf"is in use by pid {os.getpid()} "):
        rundir.claim(run, resume=False, overwrite=False, config={})
    assert snapshot(run) == before
    claim.release()
    rundir.claim(run, resume=False, overwrite=False, config={}).release()


HOLD = """
import sys, time
from pathlib import Path
from recipe import rundir
held = rundir.claim(Path(sys.argv[1]), False, False, {})
print("locked", flush=True)
time.sleep(120)
"""


@pytest.mark.slow   # a fresh interpreter importing transformers (recipe.rundir) holds the lock: 4-6 s
def test_the_kernel_drops_the_lock_of_a_killed_run(tmp_path):
    run = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(run)],
                              cwd=REPO, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(OutputError, match=f"pid {holder.pid}"):
            rundir.claim(run, resume=False, overwrite=False, config={})
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    rundir.claim(run, resume=False, overwrite=False, config={}).release()   # no stale lock


# --------------------------------------------------------------------------- resume
def test_resume_with_another_config_is_refused_naming_the_keys(tmp_path):
    original = config.load_profile("smoke")
    run = kit_run(tmp_path / "run", original)
    (run / record.SUMMARY).unlink()
    before = snapshot(run)
    changed = config.apply_overrides(original, ["train.learning_rate=0.5", "train.seed=7"])
    with pytest.raises(ConfigError, match=r"train.learning_rate \(0.002 -> 0.5\), train.seed \(42 -> 7\) differ"):
        rundir.claim(run, resume=True, overwrite=False, config=changed)
    assert snapshot(run) == before
    rundir.claim(run, resume=True, overwrite=False, config=original).rollback()


def test_a_resume_keeps_the_original_start_and_appends_to_the_history(tmp_path):
    run = record.RunRecord(tmp_path / "run")
    run.start({"run_id": "a", "started_at": "t0", "command": ["first"]}, resume_step=None)
    run.start({"run_id": "b", "started_at": "t1", "command": ["second", "--resume"]}, resume_step=10,
              resumed_from=str(tmp_path / "run" / "checkpoints" / "checkpoint-10"))
    run.start({"run_id": "c", "started_at": "t2", "command": ["third", "--resume"]}, resume_step=20,
              resumed_from=str(tmp_path / "run" / "checkpoints" / "checkpoint-20"))
    manifest = record.load_manifest(tmp_path / "run")
    assert (manifest["run_id"], manifest["started_at"], manifest["command"]) == ("a", "t0", ["first"])
    assert manifest["resumes"] == [{"at": "t1", "command": ["second", "--resume"], "checkpoint": "checkpoint-10"},
                                   {"at": "t2", "command": ["third", "--resume"], "checkpoint": "checkpoint-20"}]


def test_only_rank_zero_reads_the_run_directory(tmp_path, monkeypatch):
    from recipe import finetune
    monkeypatch.setattr(rundir, "claim", lambda *a, **k: pytest.fail("a non-zero rank claimed the directory"))
    monkeypatch.setattr(rundir, "last_checkpoint", lambda *a: pytest.fail("a non-zero rank chose a checkpoint"))
    assert finetune.prepare_output(kit_run(tmp_path / "run"), True, False, {}, main=False) == (None, None)


SHARE = """
import os, sys
import torch.distributed as dist
from recipe import distributed
dist.init_process_group("gloo")
print(distributed.share_from_main(f"checkpoint-{10 * (dist.get_rank() + 1)}"), flush=True)
dist.destroy_process_group()
"""


@pytest.mark.slow   # torchrun starts two processes with torch and gloo: ~7-10 s on 2 cores
def test_every_rank_resumes_from_rank_zeros_checkpoint(tmp_path):
    script = write(tmp_path / "share.py", SHARE)
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(script)], check=False, cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["checkpoint-10", "checkpoint-10"]


# --------------------------------------------------------------------------- settings
@pytest.mark.parametrize("override, message", [
    ("train.learning_rate=abc", "train.learning_rate='abc' is not a number"),
    ("train.per_device_train_batch_size=1.5", "train.per_device_train_batch_size=1.5 is not a whole number"),
    ("train.fp16=maybe", "train.fp16='maybe' is not true or false"),
    ("train.save_strategy=no", "train.save_strategy=False is not one of 'no'"),   # YAML: unquoted no is false
])
def test_every_training_setting_has_its_type_checked(override, message):
    from transformers import TrainingArguments
    settings = config.apply_overrides(config.load_profile("smoke"), [override])["train"]
    with pytest.raises(ConfigError) as err:
        config.check_types(TrainingArguments, settings, "train")
    assert message in err.value.message


@pytest.mark.parametrize("override, message", [
    ("tokenize.max_length=abc", "tokenize.max_length='abc' is not a whole number"),
    ("smoke_data.train=many", "smoke_data.train='many' is not a whole number"),
    ("train.num_train_epochs=0", "train.num_train_epochs=0: a run must train"),
    ("threads=0", "threads=0 must be 1 or more"),
])
def test_kit_settings_have_their_types_and_ranges_checked(override, message):
    with pytest.raises(ConfigError) as err:
        config.apply_overrides(config.load_profile("smoke"), [override])
    assert message in err.value.message


@pytest.mark.parametrize("key", ["train.hub_token", "train.push_to_hub_token", "tracking.api_key", "tracking.key",
                                 "train.password", "tracking.client_secret"])
def test_secret_settings_are_refused_on_the_command_line(key):
    with pytest.raises(ConfigError, match="secrets are not settings") as err:
        config.apply_overrides(config.load_profile("smoke"), [f"{key}=hf_abcdef123456"])
    assert "use the environment" in err.value.fix


@pytest.mark.parametrize("key", ["tokenize.max_length", "tokenize.truncation", "train.max_grad_norm"])
def test_settings_that_merely_look_alike_are_not_secrets(key):
    assert not any(record.SECRET_NAME.search(part) for part in key.split("."))


def test_record_files_are_readable_by_the_host_user(tmp_path):
    run = record.RunRecord(tmp_path)
    run.start({"run_id": "x", "started_at": "t", "command": []}, resume_step=None)
    run.finish({"final": {}})
    run.interrupted({"step": 1})
    for name in (record.MANIFEST, record.METRICS, record.SUMMARY, record.INTERRUPTED):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name


def test_a_missing_model_directory_is_named_as_missing(tmp_path):
    with pytest.raises(Exception, match=f"the directory {tmp_path / 'nope'} does not exist"):
        model.resolve_model_source(str(tmp_path / "nope"), "transformers")
    (tmp_path / "empty").mkdir()
    with pytest.raises(Exception, match="no config.json in that directory"):
        model.resolve_model_source(str(tmp_path / "empty"), "transformers")


# --------------------------------------------------------------------------- verdict
def test_published_thresholds_judge_only_the_model_and_data_they_were_set_for(tmp_path):
    published = record.choose_thresholds("published", "bert-base-cased", "glue-cola", None)
    assert published["limits"] == {"accuracy": 0.8, "mcc": 0.5}
    other = record.choose_thresholds("published", "roberta-base", "glue-cola", None)
    assert other["limits"] == {} and "set for bert-base-cased on glue-cola, this run is roberta-base" in other["reason"]
    assert record.verdict({"accuracy": 0.2}, other) == ("n/a", other["reason"])
    assert record.choose_thresholds("smoke", "bert-base-cased", "smoke", None)["limits"] == {}
    user = record.choose_thresholds("published", "roberta-base", "glue-cola", {"accuracy": 0.7})
    assert user["source"] == "--threshold"
    assert record.verdict({"accuracy": 0.7}, user) == ("pass", None)
    assert record.verdict({"accuracy": 0.69}, user)[0] == "fail"


def test_the_tutorials_model_is_recognised_by_hub_id_and_fetched_directory(tmp_path):
    assert hub.logical_name("google-bert/bert-base-cased") == "bert-base-cased"
    assert hub.logical_name("AI_Connect/glue") == "glue-cola"
    fetched = write(tmp_path / "bert" / hub.FETCHED_MARKER, "PyTorch-NPU/bert_base_cased\n").parent
    assert hub.logical_name(str(fetched)) == "bert-base-cased"
    assert hub.logical_name(str(tmp_path)) is None and hub.logical_name("my/bert") is None


def test_threshold_flag_parses_and_refuses_nonsense():
    assert config.parse_thresholds(["accuracy=0.7", "mcc=0.4"]) == {"accuracy": 0.7, "mcc": 0.4}
    for bad in ("accuracy", "loss=0.1", "accuracy=high", "mcc=2"):
        with pytest.raises(ConfigError, match="--threshold"):
            config.parse_thresholds([bad])


def test_model_fingerprint_hashes_config_and_weights(tmp_path):
    directory = model.write_tiny_bert(tmp_path / "m", ["a b c ."], None, 16, 2)
    first = model.fingerprint(str(directory))
    assert set(first["files"]) == {"config.json", "model.safetensors"}
    import hashlib
    assert first["files"]["config.json"] == hashlib.sha256((directory / "config.json").read_bytes()).hexdigest()
    (directory / "model.safetensors").write_bytes((directory / "model.safetensors").read_bytes()[:-1] + b"\0")
    assert model.fingerprint(str(directory))["sha256"] != first["sha256"]
    assert model.fingerprint(str(directory / "vocab.txt"))["files"] == {}   # not a dir, not in a hub cache


def test_fetch_and_the_recipe_load_the_same_pinned_revision(monkeypatch):
    pinned = hub.HUB_REVISIONS["bert-base-cased"]["transformers"]
    assert pinned and len(pinned) == 40
    seen = {}
    import types
    monkeypatch.setitem(sys.modules, "huggingface_hub", types.SimpleNamespace(
        snapshot_download=lambda repo_id, **kw: seen.setdefault("fetch", kw["revision"])))
    fetch.snapshot("transformers", "google-bert/bert-base-cased", Path("/nonexistent"))

    class Auto:
        @staticmethod
        def from_pretrained(source, **kw):
            seen["recipe"] = kw.get("revision")
    model.load_tokenizer(types.SimpleNamespace(AutoTokenizer=Auto), "google-bert/bert-base-cased")
    assert seen == {"fetch": pinned, "recipe": pinned}


# --------------------------------------------------------------------------- threads
def test_threads_follow_setting_then_environment_then_usable_cores(tmp_path):
    quota = write(tmp_path / "cpu.max", "100000 100000\n")
    assert threads.choose(3, environ={"OMP_NUM_THREADS": "2"}) == (3, "the threads setting")
    assert threads.choose(None, environ={"OMP_NUM_THREADS": "2"}) == (2, "OMP_NUM_THREADS")
    count, why = threads.choose(None, environ={}, cpu_max=quota, physical=64)
    assert count == 1 and "cgroup quota" in why
    cores = len(os.sched_getaffinity(0))
    assert threads.choose(None, environ={}, cpu_max=tmp_path / "none", physical=64)[0] == cores
    assert threads.choose(None, ranks_on_host=cores * 2, environ={}, cpu_max=tmp_path / "none", physical=64)[0] == 1
    count, why = threads.choose(None, environ={}, cpu_max=tmp_path / "none", physical=1)   # hyper-threads
    assert count == 1 and "capped at torch's default" in why


def test_threads_are_applied_on_cpu_and_recorded():
    import torch
    before = torch.get_num_threads()
    try:
        found = threads.apply("cpu", 1, environ={"OMP_NUM_THREADS": "7"})
        assert torch.get_num_threads() == 1
        assert found == {"intra_op": 1, "inter_op": torch.get_num_interop_threads(),
                         "env": {**dict.fromkeys(threads.ENV_VARS), "OMP_NUM_THREADS": "7"},
                         "source": "the threads setting"}
    finally:
        torch.set_num_threads(before)


# --------------------------------------------------------------------------- one reader
def test_verify_and_report_read_the_record_through_recipe_record(tmp_path, monkeypatch):
    from report.errors import BadRunRecord
    from report.records import load_run
    from verify.runrecord import RunRecord, completeness_problems
    write(tmp_path / record.MANIFEST, json.dumps({"schema": record.MANIFEST_SCHEMA}))
    write(tmp_path / record.SUMMARY, "[1, 2]")   # JSON, but not the record's shape
    write(tmp_path / record.METRICS, "")
    problems = completeness_problems(RunRecord.load(tmp_path))
    assert f"{tmp_path / record.SUMMARY}: expected a JSON object, found list" in problems
    with pytest.raises(BadRunRecord, match="expected a JSON object, found list"):
        load_run(tmp_path)
    calls = []
    real = record.load_record
    monkeypatch.setattr(record, "load_record", lambda *a: calls.append(a) or real(*a))
    monkeypatch.setattr("report.records.load_record", record.load_record)
    monkeypatch.setattr("verify.runrecord.load_record", record.load_record)
    RunRecord.load(tmp_path)
    with pytest.raises(BadRunRecord):
        load_run(tmp_path)
    assert calls == [(tmp_path,), (tmp_path,)]   # one load_record each, and no parser of their own:
    for module in ("report/records.py", "verify/runrecord.py"):
        source = (REPO / module).read_text()
        assert not any(word in source for word in ("import json", "json.load", "read_text", "open(")), module


@pytest.mark.slow   # a fresh interpreter importing torch and transformers: ~7-10 s on 2 cores
def test_the_torch_cpu_set_device_shim_is_applied_once_at_import():
    # torch 2.1 (the images) has no torch.cpu.set_device; importing the recipe adds it (recipe/compat.py)
    code = ("import torch\nif hasattr(torch.cpu, 'set_device'): del torch.cpu.set_device\n"
            "import recipe.finetune\ntorch.cpu.set_device('cpu')\nprint('ok')")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                          check=False, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.stdout.strip() == "ok", proc.stderr[-2000:]


def test_resume_with_overwrite_starts_afresh_instead_of_resuming_a_deleted_checkpoint(tmp_path):
    from recipe import finetune
    claim, found = finetune.prepare_output(kit_run(tmp_path / "run"), True, True, {})
    try:
        assert found is None
        assert claim.final(claim.staging / "tiny-model") == tmp_path / "run" / "tiny-model"
        assert claim.final(tmp_path / "elsewhere") == tmp_path / "elsewhere"
    finally:
        claim.rollback()


def test_a_value_the_trainer_refuses_is_a_config_error(tmp_path):
    from transformers import TrainingArguments
    with pytest.raises(ConfigError, match="TrainingArguments refused the train settings: .*sometimes"):
        compat.training_arguments(TrainingArguments, {"output_dir": str(tmp_path), "use_cpu": True,
                                                      "save_strategy": "sometimes"})
