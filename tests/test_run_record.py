"""The run record's writer and readers (recipe/record.py) without training: what a finished,
resumed or redacted record reads back as. Each test here kills mutants `make mutation` found alive."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from conftest import REPO

from recipe import record

SECRET = "sk-verysecret123"


def test_a_finished_record_reads_back_complete_stamped_and_redacted(tmp_path, monkeypatch):
    monkeypatch.setenv("SWANLAB_API_KEY", SECRET)
    run = record.RunRecord(tmp_path / "run")
    run.start({"run_id": "r1", "command": ["python", "--swanlab-api-key", SECRET]}, resume_step=None)
    run.append_metrics({"kind": "train", "step": 1, "loss": 0.7})
    run.finish({"train_seconds": 1.5, "note": f"key {SECRET}"})

    manifest = record.load_manifest(tmp_path / "run")
    assert manifest == {"schema": "kit.manifest/1", "run_id": "r1", "command": ["python", "--swanlab-api-key", "***"]}
    summary = record.load_summary(tmp_path / "run")
    assert summary["schema"] == "kit.summary/1" and summary["status"] == "complete"
    assert summary["train_seconds"] == 1.5 and summary["note"] == "key ***"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", summary["finished_at"])
    assert SECRET not in (tmp_path / "run" / "summary.json").read_text()
    assert record.load_manifest(tmp_path / "nothing-here") is None


def test_start_keeps_the_metrics_up_to_the_resumed_checkpoint_and_drops_the_summary(tmp_path):
    run = record.RunRecord(tmp_path)
    run.start({"run_id": "r1", "started_at": "t0", "command": ["first"]}, resume_step=None)
    for step in (5, 10, 15):
        run.append_metrics({"kind": "train", "step": step, "loss": 0.5})
    run.finish({})
    run.start({"run_id": "r1b", "started_at": "t1", "command": ["again"]}, resume_step=10,
              resumed_from="checkpoints/checkpoint-10")
    assert [line["step"] for line in record.read_metrics(tmp_path)] == [5, 10]
    assert record.load_summary(tmp_path) is None and not (tmp_path / "summary.json").exists()
    manifest = record.load_manifest(tmp_path)   # the original start is kept, the resume appended
    assert (manifest["run_id"], manifest["started_at"], manifest["command"]) == ("r1", "t0", ["first"])
    assert manifest["resumes"] == [{"at": "t1", "command": ["again"], "checkpoint": "checkpoint-10"}]
    run.start({"run_id": "r2"}, resume_step=None)   # a fresh start keeps nothing
    assert record.read_metrics(tmp_path) == []


def test_a_record_that_is_not_the_main_rank_writes_nothing(tmp_path):
    run = record.RunRecord(tmp_path / "run", enabled=False)
    run.start({"run_id": "r1"}, resume_step=None)
    run.append_metrics({"kind": "train", "step": 1})
    run.finish({})
    assert not (tmp_path / "run").exists()


def test_now_is_utc_to_the_second():
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", record.now_iso())


def test_the_value_after_a_secret_flag_is_redacted_wherever_the_flag_is():
    assert record.redact(["python", "-m", "x", "--swanlab-api-key", "VALUE"]) == [
        "python", "-m", "x", "--swanlab-api-key", "***"]
    assert record.redact(["--swanlab-api-key", "VALUE", "--seed", "42"]) == ["--swanlab-api-key", "***", "--seed", "42"]
    # `--flag=value` is redacted in place; the next argument is not a secret
    assert record.redact(["--api-key=abc", "--seed", "42"]) == ["--api-key=***", "--seed", "42"]
    assert record.redact(["--seed", "42"]) == ["--seed", "42"]   # not every flag is a secret


def test_git_sha_is_the_checkouts_head_or_the_one_baked_into_the_image(tmp_path, monkeypatch):
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    assert record.git_sha(REPO) == head
    monkeypatch.setenv("KIT_GIT_SHA", "f" * 40)
    assert record.git_sha(tmp_path) == "f" * 40   # not a git checkout: the image's build-time sha
    monkeypatch.delenv("KIT_GIT_SHA")
    assert record.git_sha(tmp_path) is None


def test_published_thresholds_per_profile_and_none_for_a_custom_one(tmp_path):
    published = tmp_path / "published.json"
    published.write_text(json.dumps({"thresholds": {"smoke": {"accuracy": 0.85}}}))
    assert record.published_thresholds("smoke", published) == {"accuracy": 0.85}
    assert record.published_thresholds("my-yaml", published) is None
    assert record.published_thresholds("smoke", tmp_path / "missing.json") is None


def test_json_files_are_indented_in_insertion_order_and_paths_become_strings(tmp_path):
    target = tmp_path / "summary.json"
    record.write_json_atomic(target, {"status": "complete", "a_path": tmp_path / "x"})
    assert target.read_text() == f'{{\n  "status": "complete",\n  "a_path": "{tmp_path / "x"}"\n}}\n'


def test_key_value_strings_are_redacted_by_the_key_only(monkeypatch):
    assert record.redact("tracking.api_key=abc=def") == "tracking.api_key=***"
    assert record.redact("export hub_token=abc") == "export hub_token=***"
    assert record.redact("learning_rate=1e-3") == "learning_rate=1e-3"
    assert record.redact("see the api_key section") == "see the api_key section"   # no "=": nothing to hide


def test_a_secret_assignment_anywhere_in_a_text_is_redacted_not_only_the_first():
    assert record.redact("python -m x --seed=1 --api-key=abc --epochs=2") == (
        "python -m x --seed=1 --api-key=*** --epochs=2")
    assert record.redact("HF_ENDPOINT=https://hf-mirror.com HF_TOKEN=hf_abc") == (
        "HF_ENDPOINT=https://hf-mirror.com HF_TOKEN=***")
    assert record.redact("a=1 b=2") == "a=1 b=2"


def test_environment_secrets_of_six_characters_or_more_are_redacted_everywhere(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "abcdef")          # 6 characters: a secret
    monkeypatch.setenv("OTHER_TOKEN", "abcde")        # 5: too short to search for (it would blank out words)
    monkeypatch.setenv("KIT_DATA_DIR", "/opt/kit/data")   # not a secret name: left alone
    assert record.redact("x abcdef y abcde /opt/kit/data") == "x *** y abcde /opt/kit/data"


def test_the_temporary_file_is_hidden_beside_the_target_so_the_rename_is_atomic(tmp_path, monkeypatch):
    renames = []
    real_replace = record.os.replace

    def spy(src, dst):
        renames.append((Path(src), Path(dst)))
        real_replace(src, dst)
    monkeypatch.setattr(record.os, "replace", spy)
    target = tmp_path / "summary.json"
    record.write_json_atomic(target, {"status": "complete"})
    (src, dst), = renames
    assert dst == target and src.parent == target.parent and src.name.startswith(".summary.json.")


def test_a_record_directory_is_created_with_its_parents(tmp_path):
    record.RunRecord(tmp_path / "runs" / "npu" / "seed-1").start({"run_id": "r"}, resume_step=None)
    assert record.load_manifest(tmp_path / "runs" / "npu" / "seed-1")["run_id"] == "r"


def test_metrics_lines_number_every_line_and_go_on_after_a_bad_one(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"step": 1}\n\nnot json\n[1]\n{"step": 2}\n')
    lines = list(record.metrics_lines(tmp_path / "metrics.jsonl"))
    assert [(number, row, problem and problem.split(" (")[0]) for number, row, problem in lines] == [
        (1, {"step": 1}, None), (3, None, "not valid JSON"), (4, None, "not a JSON object"), (5, {"step": 2}, None)]


def test_a_summary_that_is_not_complete_does_not_count(tmp_path):
    (tmp_path / "summary.json").write_text('{"status": "running"}')
    assert record.load_summary(tmp_path) is None


def test_a_published_file_without_thresholds_has_none(tmp_path):
    published = tmp_path / "published.json"
    published.write_text('{"references": {}}')
    assert record.published_thresholds("smoke", published) is None


# --------------------------------------------------------------------------- thresholds and verdict, word for word
def published_file(tmp_path: Path) -> Path:
    path = tmp_path / "published.json"
    path.write_text(json.dumps({"thresholds": {"p": {"accuracy": 0.8, "mcc": 0.5}, "open": {"accuracy": 0.5}},
                                "applies_to": {"p": {"model": "bert-base-cased", "data": "glue-cola"}}}))
    return path


def test_choose_thresholds_user_published_or_none_with_the_reason(tmp_path):
    path = published_file(tmp_path)
    assert record.choose_thresholds("p", "m", "d", {"mcc": 0.3}, path) == {
        "limits": {"mcc": 0.3}, "source": "--threshold", "reason": None}
    assert record.choose_thresholds("p", "bert-base-cased", "glue-cola", None, path) == {
        "limits": {"accuracy": 0.8, "mcc": 0.5}, "source": "published.json: p", "reason": None}
    assert record.choose_thresholds("open", "any", "thing", None, path) == {   # no applies_to: for every run
        "limits": {"accuracy": 0.5}, "source": "published.json: open", "reason": None}
    assert record.choose_thresholds("p", "roberta-base", "glue-cola", None, path) == {
        "limits": {}, "source": None,
        "reason": "the p thresholds were set for bert-base-cased on glue-cola, this run is roberta-base on "
                  "glue-cola; pass --threshold METRIC=VALUE to judge it"}
    assert record.choose_thresholds("p", "bert-base-cased", "smoke", None, path)["limits"] == {}
    assert record.choose_thresholds("mine", "m", "d", None, path) == {
        "limits": {}, "source": None,
        "reason": "profile 'mine' has no published thresholds; pass --threshold METRIC=VALUE"}


def test_verdict_in_words():
    limits = {"limits": {"accuracy": 0.8, "mcc": 0.5}, "reason": None}
    assert record.verdict({"accuracy": 0.8, "mcc": 0.5}, limits) == ("pass", None)
    assert record.verdict({"accuracy": 0.79, "mcc": 0.4}, limits) == (
        "fail", "final accuracy 0.7900 is below the threshold 0.8; final mcc 0.4000 is below the threshold 0.5")
    assert record.verdict({"accuracy": 0.9}, limits) == ("fail", "final mcc missing from summary.json")
    assert record.verdict({}, limits) == ("n/a", "no evaluation ran")
    assert record.verdict({"accuracy": 0.9}, {"limits": {}, "reason": "why not"}) == ("n/a", "why not")
    assert record.verdict({"accuracy": 0.9}, {"limits": {}}) == ("n/a", "no thresholds")


def test_read_json_says_what_is_wrong_and_which_kind(tmp_path):
    cases = {"missing": None, "json": "{nope", "shape": "[1, 2]", "schema": '{"schema": "other/1"}'}
    expected = {"missing": "missing", "json": "not valid JSON (line 1, column 2: Expecting property name enclosed "
                                             "in double quotes)",
                "shape": "expected a JSON object, found list", "schema": "schema is 'other/1', expected 'kit.x/1'"}
    for kind, text in cases.items():
        path = tmp_path / f"{kind}.json"
        if text is not None:
            path.write_text(text)
        try:
            record.read_json(path, "kit.x/1")
        except record.RecordProblem as problem:
            assert (problem.kind, problem.why, problem.path, str(problem)) == (
                kind, expected[kind], path, f"{path}: {expected[kind]}")
        else:
            raise AssertionError(f"{kind}: no problem raised")
    good = tmp_path / "good.json"
    good.write_text('{"schema": "kit.x/1", "a": 1}')
    assert record.read_json(good, "kit.x/1") == {"schema": "kit.x/1", "a": 1}
    assert record.read_json(good) == {"schema": "kit.x/1", "a": 1}


def test_an_interruption_is_written_redacted_and_read_back_only_with_its_schema(tmp_path, monkeypatch):
    run = record.RunRecord(tmp_path / "run")
    run.start({"run_id": "r"}, None)
    monkeypatch.setenv("SWANLAB_API_KEY", "sk-secret-123")
    run.interrupted({"signal": "SIGTERM", "step": 7, "resume_command": "x --key sk-secret-123"})
    back = record.load_interrupted(tmp_path / "run")
    assert back["schema"] == record.INTERRUPTED_SCHEMA and back["signal"] == "SIGTERM" and back["step"] == 7
    assert back["resume_command"] == "x --key ***" and re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$", back["at"])
    (tmp_path / "run" / record.INTERRUPTED).write_text('{"schema": "other/1"}')
    assert record.load_interrupted(tmp_path / "run") is None
    run.start({"run_id": "r"}, None)              # a new start clears it
    assert not (tmp_path / "run" / record.INTERRUPTED).exists()
    record.RunRecord(tmp_path / "rank1", enabled=False).interrupted({"signal": "SIGTERM"})
    assert not (tmp_path / "rank1").exists()


def test_a_resume_keeps_the_original_start_and_appends_itself(tmp_path):
    run = record.RunRecord(tmp_path / "run")
    run.start({"run_id": "first", "started_at": "t0", "command": ["a"]}, None)
    run.start({"run_id": "second", "started_at": "t1", "command": ["b"]}, 10, "/x/checkpoints/checkpoint-10")
    run.start({"run_id": "third", "started_at": "t2", "command": ["c"]}, None, "/x/checkpoints/checkpoint-20")
    manifest = record.load_manifest(tmp_path / "run")
    assert (manifest["run_id"], manifest["started_at"], manifest["command"]) == ("first", "t0", ["a"])
    assert manifest["resumes"] == [{"at": "t1", "command": ["b"], "checkpoint": "checkpoint-10"},
                                   {"at": "t2", "command": ["c"], "checkpoint": "checkpoint-20"}]
    run.start({"run_id": "fresh", "started_at": "t3", "command": ["d"]}, None)   # not a resume: a new manifest
    assert "resumes" not in record.load_manifest(tmp_path / "run")


def test_the_edges_of_thresholds_redaction_and_resume_records(tmp_path):
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps({"thresholds": {"p": {"accuracy": 0.8}}}))        # no applies_to at all
    assert record.choose_thresholds("p", "any", "thing", None, bare)["limits"] == {"accuracy": 0.8}
    assert record.redact("hub_token=a b c") == "hub_token=***"                   # the whole rest of the text
    run = record.RunRecord(tmp_path / "run")
    run.start({"run_id": "first", "started_at": "t0"}, None)
    run.start({"run_id": "again", "started_at": "t1"}, 4, None)                  # a resume step, no checkpoint path
    assert record.load_manifest(tmp_path / "run")["resumes"] == [{"at": "t1", "command": None, "checkpoint": None}]


# --------------------------------------------------------------------------- one reader, one policy for a bad line
def written_record(directory: Path, lines: list[dict]) -> Path:
    """A finished record as RunRecord writes it, with these metrics lines."""
    run = record.RunRecord(directory)
    run.start({"run_id": "r"}, resume_step=None)
    for line in lines:
        run.append_metrics(line)
    run.finish({"final": {"accuracy": 0.9}})
    return directory


def test_a_bad_line_is_one_problem_named_file_line_and_the_lines_after_it_are_kept(tmp_path):
    run = written_record(tmp_path / "run", [{"kind": "train", "step": s, "loss": 0.5} for s in (1, 2, 3)])
    metrics = run / record.METRICS
    good = metrics.read_text().splitlines()
    metrics.write_text("\n".join([good[0], '{"kind": "tr', "[1]", '{"kind": "eval", "step": "2"}', *good[1:]]) + "\n")
    loaded = record.load_record(run)
    assert [str(problem) for problem in loaded.problems] == [
        f"{metrics}:2: not valid JSON (Unterminated string starting at)",
        f"{metrics}:3: not a JSON object", f"{metrics}:4: eval line has no integer 'step'"]
    assert [(p.kind, p.line, p.path) for p in loaded.problems] == [("json", 2, metrics), ("shape", 3, metrics),
                                                                    ("step", 4, metrics)]
    assert [line["step"] for line in loaded.train] == [1, 2, 3] and loaded.evals == []
    assert record.read_metrics(run) == loaded.lines   # the recipe's reader: the same lines


def test_report_and_verify_say_the_same_file_line_text_for_a_bad_line(tmp_path):
    from report.errors import EXIT_BAD_RECORD, BadRunRecord
    from report.records import load_run
    from verify.runrecord import RunRecord, completeness_problems
    run = written_record(tmp_path / "run", [{"kind": "train", "step": s, "loss": 0.5} for s in (1, 2)])
    with (run / record.METRICS).open("a") as handle:
        handle.write("{not json\n")
    (problem,) = record.load_record(run).problems
    assert str(problem).startswith(f"{run / record.METRICS}:3: not valid JSON")
    assert str(problem) in completeness_problems(RunRecord.load(run))   # verify: a failure, the rest judged
    assert [line["step"] for line in RunRecord.load(run).train] == [1, 2]
    with pytest.raises(BadRunRecord) as refused:                       # report: refuses the record
        load_run(run)
    assert str(refused.value) == f"{problem}." and refused.value.exit_code == EXIT_BAD_RECORD


def test_unknown_kinds_are_read_but_ignored_and_checkpoint_lines_are_their_own_kind(tmp_path):
    from report.records import load_run
    from verify.runrecord import RunRecord
    lines = [{"kind": "train", "step": 1, "loss": 0.7}, {"kind": "checkpoint", "step": 1, "seconds": 0.03,
                                                          "elapsed_s": 0.5},
             {"kind": "from-a-newer-kit", "no": "step"}, {"no": "kind"}, {"kind": "epoch", "step": 1, "seconds": 0.4},
             {"kind": "eval", "step": 1, "accuracy": 0.9}]
    run = written_record(tmp_path / "run", lines)
    loaded = record.load_record(run)
    assert loaded.problems == [] and loaded.lines == lines
    assert (loaded.train, loaded.evals, loaded.epochs, loaded.checkpoints) == ([lines[0]], [lines[5]], [lines[4]],
                                                                              [lines[1]])
    verified = RunRecord.load(run)
    assert (verified.train, verified.evals) == ([lines[0]], [lines[5]])
    assert not any("metrics" in problem for problem in verified.problems)
    reported = load_run(run)
    assert (reported.train_steps, reported.evals) == ([lines[0]], [lines[5]])


def test_a_step_must_be_an_integer_on_every_known_kind_only(tmp_path):
    (tmp_path / record.METRICS).write_text("".join(json.dumps(line) + "\n" for line in [
        {"kind": "checkpoint", "seconds": 1.0}, {"kind": "epoch", "step": True}, {"kind": "train", "step": 1.0},
        {"kind": "other", "step": "x"}]))
    lines, problems = record.load_metrics(tmp_path / record.METRICS)
    assert lines == [{"kind": "other", "step": "x"}]
    assert [problem.why for problem in problems] == [
        "checkpoint line has no integer 'step'", "epoch line has no integer 'step'", "train line has no integer 'step'"]


def test_missing_unreadable_and_undecodable_files_are_problems_not_crashes(tmp_path):
    assert [(p.kind, str(p)) for p in record.load_record(tmp_path).problems] == [
        ("missing", f"{tmp_path / name}: missing") for name in (record.MANIFEST, record.SUMMARY, record.METRICS)]
    (tmp_path / record.MANIFEST).write_bytes(b'{"schema": "\xff"}')
    (tmp_path / record.SUMMARY).mkdir()
    (tmp_path / record.METRICS).write_bytes(b'{"kind": "train", "step": 1, "loss": "\xff"}\n{"kind": "eval", "step": 1}\n')
    loaded = record.load_record(tmp_path)
    assert [(p.kind, p.line) for p in loaded.problems] == [("json", None), ("unreadable", None), ("json", 1)]
    assert loaded.problems[0].why.startswith("not valid UTF-8") and loaded.problems[2].why.startswith("not valid UTF-8")
    assert loaded.problems[1].why.startswith("cannot be read")
    assert (loaded.manifest, loaded.summary, loaded.lines) == (None, None, [{"kind": "eval", "step": 1}])


def test_a_file_of_another_schema_is_a_problem_and_stays_readable(tmp_path):
    (tmp_path / record.MANIFEST).write_text('{"schema": "kit.manifest/0", "profile": "smoke"}')
    (tmp_path / record.SUMMARY).write_text('{"status": "complete"}')
    (tmp_path / record.METRICS).write_text("")
    loaded = record.load_record(tmp_path)
    assert [str(p) for p in loaded.problems] == [
        f"{tmp_path / record.MANIFEST}: schema is 'kit.manifest/0', expected 'kit.manifest/1'",
        f"{tmp_path / record.SUMMARY}: schema is None, expected 'kit.summary/1'"]
    assert loaded.manifest["profile"] == "smoke" and loaded.summary == {"status": "complete"}


def test_a_resume_rewrites_the_stream_from_its_good_lines_and_never_repeats_a_step(tmp_path):
    run = record.RunRecord(tmp_path)
    run.start({"run_id": "r"}, resume_step=None)
    for step in range(1, 8):   # killed at step 7; the newest checkpoint is step 5
        run.append_metrics({"kind": "train", "step": step, "loss": 0.5})
    metrics = tmp_path / record.METRICS
    lines = metrics.read_text().splitlines()
    metrics.write_text("\n".join([*lines[:2], "garbage", *lines[2:]]) + "\n")
    dropped = run.start({"run_id": "r"}, resume_step=5, resumed_from="checkpoints/checkpoint-5")
    assert [str(problem) for problem in dropped] == [f"{metrics}:3: not valid JSON (Expecting value)"]
    for step in range(6, 9):   # the Trainer continues after the checkpoint's step
        run.append_metrics({"kind": "train", "step": step, "loss": 0.4})
    loaded = record.load_record(tmp_path)
    assert [line["step"] for line in loaded.train] == list(range(1, 9))   # no step twice: nothing to de-duplicate
    assert [p for p in loaded.problems if p.path == metrics] == []
    assert record.RunRecord(tmp_path / "fresh").start({"run_id": "f"}, resume_step=None) == []
