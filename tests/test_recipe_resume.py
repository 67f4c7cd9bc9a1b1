"""--resume continues from the LAST complete checkpoint, tested through the recipe's CLI entry point
(recipe.finetune.main, in this process so a mutation tool sees which code it covers)."""

from __future__ import annotations

import json
import shutil

import pytest
from fakes.failing_recipe import FailAtStep

from recipe import finetune
from recipe.record import MANIFEST_SCHEMA, load_summary, read_metrics

pytestmark = pytest.mark.slow

# 64 generated rows / batch 16 = 4 steps per epoch, 12 in all; a checkpoint every 2 steps, the last 2 kept.
# checkpoint-8 and checkpoint-10 on disk: "the last" is 10 by number, 8 by string order.
SMALL = ["--profile", "smoke", "--device", "cpu", "--no-swanlab", "--epochs", "3",
         "--set", "smoke_data.train=64", "--set", "smoke_data.validation=16", "--set", "train.save_steps=2"]


@pytest.fixture
def offline(monkeypatch):
    for name, value in (("HF_HUB_OFFLINE", "1"), ("HF_DATASETS_OFFLINE", "1"), ("TOKENIZERS_PARALLELISM", "false")):
        monkeypatch.setenv(name, value)
    return monkeypatch


def test_resume_takes_the_last_complete_checkpoint_and_skips_a_partial_one(tmp_path, offline, capfd):
    out = tmp_path / "run"
    with pytest.raises(RuntimeError, match="fails at step 11 on purpose"):   # in epoch 3, after checkpoint-8 and -10
        finetune.main([*SMALL, "--output", str(out)], extra_callbacks=(FailAtStep(0, 11),))
    checkpoints = out / "checkpoints"
    assert {c.name for c in checkpoints.iterdir()} == {"checkpoint-8", "checkpoint-10"}
    assert load_summary(out) is None
    # an older complete one (as with save_total_limit 3): the last of three, not the second
    shutil.copytree(checkpoints / "checkpoint-8", checkpoints / "checkpoint-4")
    # a save cut by the kill: weights written, trainer_state.json (written last) missing
    partial = checkpoints / "checkpoint-12"
    partial.mkdir()
    (partial / "model.safetensors").write_bytes(b"truncated")
    metrics = out / "metrics.jsonl"   # a line damaged by hand: dropped with a warning, the lines after it kept
    kept = metrics.read_text().splitlines()
    metrics.write_text("\n".join([kept[0], "{damaged", *kept[1:]]) + "\n")
    capfd.readouterr()

    assert finetune.main([*SMALL, "--output", str(out), "--resume"]) == 0
    assert f"warning: {metrics}:2: not valid JSON (Expecting property name enclosed in double quotes); dropped " \
        "from the record by --resume" in capfd.readouterr().err
    summary = load_summary(out)
    assert summary["resumed_from"] == "checkpoint-10"
    lines = read_metrics(out)
    steps = [line["step"] for line in lines if line["kind"] == "train"]
    assert steps == sorted(set(steps)) and steps[-1] == 10   # logged every 5 steps
    assert [line["epoch"] for line in lines if line["kind"] == "eval"] == [1.0, 2.0, 3.0]


def test_resume_without_a_complete_checkpoint_starts_from_scratch(tmp_path, offline, capfd):
    out = tmp_path / "run"
    (out / "checkpoints" / "checkpoint-2").mkdir(parents=True)   # cut by a kill: no trainer_state.json
    (out / "manifest.json").write_text('{"schema": "kit.manifest/1"}')   # the unfinished run's manifest
    assert finetune.main([*SMALL, "--epochs", "1", "--output", str(out), "--resume"]) == 0
    assert "no checkpoint under" in capfd.readouterr().err
    assert load_summary(out)["resumed_from"] is None


@pytest.mark.parametrize("files, message", [
    ({"manifest.json": "{}", "summary.json": '{"status": "complete"}'},
     "already holds a finished run\n  fix: choose another --output, or pass --overwrite to replace it"),
    ({"manifest.json": "{}"}, "holds an unfinished run\n  fix: pass --resume to continue it or --overwrite"),
])
def test_a_previous_run_is_never_mixed_with_a_new_one(tmp_path, offline, capfd, files, message):
    out = tmp_path / "run"
    out.mkdir()
    for name, text in files.items():
        (out / name).write_text(text)
    assert finetune.main([*SMALL, "--output", str(out)]) == 7   # OutputError
    assert message in capfd.readouterr().err
    assert {p.name: p.read_text() for p in out.iterdir()} == files   # untouched


def test_overwrite_removes_every_part_of_the_previous_run_and_nothing_else(tmp_path, offline):
    out = tmp_path / "run"
    old_parts = ["checkpoints/checkpoint-3/trainer_state.json", "model/old.bin", "swanlog/old.log",
                 "data/smoke-data/train.jsonl", "tiny-model/old.json"]
    users = {"notes.txt": "the user's own file", "checkpoints/old-notes.txt": "mine",
             "data/old.txt": "mine too"}   # beside and inside the kit's folders: never the kit's to delete
    for part in old_parts:
        (out / part).parent.mkdir(parents=True, exist_ok=True)
        (out / part).write_text("old")
    for part, text in users.items():
        (out / part).write_text(text)
    (out / "manifest.json").write_text(json.dumps({"schema": MANIFEST_SCHEMA, "run_id": "old"}))
    (out / "metrics.jsonl").write_text('{"kind": "train", "step": 999, "loss": 9.9}\n')
    (out / "summary.json").write_text('{"status": "complete", "run_id": "old"}')
    assert finetune.main([*SMALL, "--epochs", "1", "--output", str(out), "--overwrite"]) == 0
    assert not any((out / part).exists() for part in old_parts)
    assert {part: (out / part).read_text() for part in users} == users
    assert load_summary(out)["resumed_from"] is None
    assert max(line["step"] for line in read_metrics(out)) == 4


def test_overwrite_of_a_run_that_left_only_its_manifest(tmp_path, offline):
    out = tmp_path / "run"
    out.mkdir()
    manifest = json.dumps({"schema": MANIFEST_SCHEMA, "run_id": "old"})
    (out / "manifest.json").write_text(manifest)   # killed before anything else was written
    # the bad --data stops the new run before training: nothing is deleted, nothing is written
    assert finetune.main([*SMALL, "--output", str(out), "--overwrite", "--data", str(tmp_path / "nope")]) == 4
    assert [p.name for p in out.iterdir()] == ["manifest.json"]
    assert (out / "manifest.json").read_text() == manifest


def test_overwrite_refuses_a_manifest_this_kit_did_not_write(tmp_path, offline):
    out = tmp_path / "run"
    out.mkdir()
    (out / "manifest.json").write_text('{"run_id": "not ours"}')
    assert finetune.main([*SMALL, "--output", str(out), "--overwrite"]) == 7
    assert [p.name for p in out.iterdir()] == ["manifest.json"]


def test_prepare_output_claims_by_default_and_says_when_a_resume_has_nothing_to_resume(tmp_path, capsys):
    claims = []
    try:
        claim, found = finetune.prepare_output(tmp_path / "fresh", False, False, {})   # main is the default
        claims.append(claim)
        assert claim is not None and found is None
        assert capsys.readouterr().err == ""                                          # a fresh run: no note
        claim, found = finetune.prepare_output(tmp_path / "resumed", True, False, {})
        claims.append(claim)
        assert found is None
        assert capsys.readouterr().err == (f"note: no checkpoint under {tmp_path / 'resumed' / 'checkpoints'}; "
                                           "starting from scratch\n")
        assert finetune.prepare_output(tmp_path / "rank1", True, False, {}, main=False) == (None, None)
    finally:
        for claim in claims:
            claim.rollback()
            claim.release()
