"""The doctor as a command: table and JSON on this machine, exit codes, the catalogue's shape and
the troubleshooting section generated from it and from the log signatures (docs/troubleshooting.md,
README.md). `--log` itself: tests/test_doctor_logs.py."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from verify import logs
from verify.catalogue import CATALOGUE
from verify.checks import CHECKS, Result
from verify.doctor import main, render_markdown, render_table

ROOT = Path(__file__).resolve().parent.parent

try:
    from tests import fakes
except ImportError:
    import fakes


def doctor(*args, env=None):
    return subprocess.run([sys.executable, "-m", "verify.doctor", *args], cwd=ROOT, capture_output=True,
                          text=True, env=env, check=False, timeout=300)


def test_catalogue_and_checks_match_one_to_one():
    ids = [entry.id for entry in CATALOGUE]
    assert len(ids) == len(set(ids))
    assert set(ids) == set(CHECKS)
    for entry in CATALOGUE:
        assert entry.title and entry.symptom and entry.detect and entry.fix, entry.id


def test_this_machine_table_has_no_failures_and_accelerators_not_applicable():
    done = doctor()
    assert done.returncode == 0, done.stdout + done.stderr
    rows = {line.split()[0]: line.split()[1] for line in done.stdout.splitlines()[2:] if line[:1].strip()
            and not line.startswith("doctor:")}
    assert list(rows) == [entry.id for entry in CATALOGUE]  # one row per check, catalogue order
    assert rows["frameworks"] == "ok"
    for accelerator_check in ("accelerator", "npu-smi", "driver-libs", "cuda-driver", "torch-npu-exit"):
        assert rows[accelerator_check] == "n/a"
    assert "0 fail" in done.stdout.splitlines()[-1]


def test_json_output_and_nonzero_exit_on_failure(tmp_path):
    site = tmp_path / "site"
    fakes.fake_mindspore(site)  # + the venv's torch: openMind's "Multiple frameworks detected"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), str(ROOT)]))
    done = doctor("--json", "--only", "frameworks,accelerator", env=env)
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert report["ok"] is False
    assert [r["id"] for r in report["results"]] == ["frameworks", "accelerator"]
    frameworks = report["results"][0]
    assert frameworks["status"] == "fail"
    assert "Multiple frameworks detected, including: pt, ms." in frameworks["evidence"]
    assert frameworks["fix"].startswith("one framework per environment")


def test_unknown_check_is_a_usage_error(capsys):
    assert main(["--only", "no-such-check"]) == 2
    assert "unknown check(s) no-such-check" in capsys.readouterr().err


def test_table_wraps_long_evidence_and_shows_fix_only_when_needed():
    results = [Result("frameworks", "ok", "pt=2.1.0"),
               Result("cann-env", "fail", "ASCEND_HOME_PATH and ASCEND_OPP_PATH unset: set_env.sh was not sourced "
                                          "and this sentence is long enough to wrap onto a second line")]
    text = render_table(results, width=100)
    lines = text.splitlines()
    assert lines[0].split() == ["check", "status", "evidence", "fix"]
    assert lines[2].split()[:2] == ["frameworks", "ok"] and "source" not in lines[2]
    assert lines[3].split()[:2] == ["cann-env", "FAIL"] and "`source" in text
    assert all(len(line) <= 100 for line in lines)
    assert lines[-1] == "doctor: 1 ok, 0 warn, 1 fail, 0 n/a — FAILED"


def test_troubleshooting_doc_is_generated_from_the_catalogue():
    doc = (ROOT / "docs" / "troubleshooting.md").read_text()
    assert doc == render_markdown(), "docs/troubleshooting.md drifted: run `make catalogue`"
    for entry in CATALOGUE:
        assert f"`{entry.id}`" in doc and entry.fix in doc
    assert "## Error logs: `make doctor LOG=<file>`" in doc
    for signature in logs.SIGNATURES:   # `make doctor LOG=...`'s signatures, each with its public reports
        assert f"### `{signature.id}`: {signature.title}" in doc and signature.fix in doc
        assert all(f"<{url}>" in doc for url in signature.sources), signature.id


def test_readme_troubleshooting_section_matches_when_present():
    """README.md either links docs/troubleshooting.md or carries the generated section verbatim."""
    readme = ROOT / "README.md"
    if not readme.is_file():
        pytest.skip("no README.md yet; docs/troubleshooting.md is checked above")
    text = readme.read_text()
    heading = re.search(r"^## Troubleshooting\s*$", text, re.MULTILINE)
    assert heading or "docs/troubleshooting.md" in text, "README.md has no troubleshooting section or link"
    if heading and "docs/troubleshooting.md" not in text[heading.start():heading.start() + 2000]:
        assert render_markdown().strip() in text, "README's troubleshooting section drifted: paste `make catalogue`'s output"
