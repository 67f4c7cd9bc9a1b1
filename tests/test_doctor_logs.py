"""`make doctor LOG=<file>` (verify/logs.py): known signatures in console logs, plog directories and
stdin, file:line of the first match, grouping, unknown codes, exit codes, redaction, and the
make target. tests/test_doctor.py checks the section it adds to docs/troubleshooting.md.

The excerpts are written here in the formats of the public reports each signature cites (torch_npu's
`[ERROR] <time> (PID:..., Device:..., RankID:...) ERRxxxxx` lines, CANN's `EIxxxx: [PID: ...] <time>`
messages with their `Solution:` lines, plog's `[ERROR] HCCL(<pid>,python):<time> [file.cc:line]`),
with this kit's own PIDs, times and paths. The message texts are the reports' own: they are what the
signatures match.
"""

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
from verify.doctor import main as doctor_main

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "logs"
MIXED = FIXTURES / "console-mixed.log"
PLOG = FIXTURES / "plog"
SECRET = "sk-live-0123456789abcdef"


def doctor(*args: str, stdin: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    base = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="100")
    return subprocess.run([sys.executable, "-m", "verify.doctor", *args], cwd=ROOT, input=stdin,
                          capture_output=True, text=True, env={**base, **(env or {})}, check=False, timeout=120)


def scan_text(text: str, name: str = "console.log") -> logs.Report:
    return logs.scan([logs.Source(name, iter(text.splitlines(keepends=True)))])


def found(report: logs.Report) -> dict[str, tuple[str, int]]:
    return {hit.signature.id: (hit.where, hit.count) for hit in report.hits}


# ----------------------------------------------------------------------------- one excerpt per signature
# (signature, excerpt, line of the first match, matching lines). Line 1 of every excerpt is noise.
NOISE = "{'loss': 0.6931, 'grad_norm': 3.412, 'learning_rate': 1.9998e-05, 'epoch': 0.0}\n"
EXCERPTS = {
    "ei0006-console": ("hccl-socket-timeout", NOISE + """\
[rank1]: RuntimeError: InnerRunOpApi:torch_npu/csrc/framework/OpParamMaker.cpp:281 OPS function error: HcclAllreduce, error code is 6
[rank1]: [ERROR] 2024-10-21-10:04:05 (PID:31337, Device:1, RankID:1) ERR01100 OPS call acl api failed.
[rank1]: EI0006: [PID: 31337] 2024-10-21-10:04:05.123.456 Getting socket times out. Reason: Remote Rank did not send the data in time. Please check the reason for the rank being stuck
[rank1]:         Solution: 1. Check the rank service processes with other errors or no errors in the cluster.
""", 4, 1),
    "ei0006-plog": ("hccl-socket-timeout", NOISE + """\
[INFO] HCCL(12345,python3):2024-10-21-10:04:02.118.201 [hccl_communicator.cc:1203] [12345]Entry-HcclCommInitRootInfo:ranks[8], rank[3]
[ERROR] HCCL(12345,python3):2024-10-21-10:04:05.123.456 [hccl_socket_manager.cc:778] [12399][Wait][LinkEstablish]wait socket establish timeout, role[1] rank[3] timeout[120]
[ERROR] HCCL(12345,python3):2024-10-21-10:04:05.123.470 [hccl_socket_manager.cc:830] [12399][Wait][LinksEstablishCompleted] is failed. ret[9].
""", 3, 1),
    "ej0001": ("card-busy", NOISE + """\
RuntimeError: [ERROR] HCCL error in: torch_npu/csrc/distributed/ProcessGroupHCCL.cpp:64
[ERROR] 2024-10-21-10:04:05 (PID:4242, Device:0, RankID:0) ERR02200 DIST call hccl api failed.
EJ0001: 2024-10-21-10:04:05.167.645 Failed to initialize the HCCP process. Reason: Maybe the last training process is running.
        Solution: Wait for 10s after killing the last training process and try again.
""", 4, 1),
    "libhccl": ("cann-not-sourced", NOISE + """\
  File "/usr/local/lib/python3.10/site-packages/torch_npu/utils/__init__.py", line 1, in <module>
    from torch_npu import _C
ImportError: libhccl.so: cannot open shared object file: No such file or directory. Please check that the cann package is installed. Please run 'source set_env.sh' in the CANN installation path.
[ERROR] 2024-10-21-10:04:05 (PID:4242, Device:-1, RankID:-1) ERR00008 PTA resource not found
""", 4, 1),
    "libascendcl": ("cann-not-sourced", NOISE + """\
ImportError: libascendcl.so: cannot open shared object file: No such file or directory
""", 2, 1),
    "undefined-symbol": ("torch-npu-undefined-symbol", NOISE + """\
  File "/usr/local/lib/python3.10/site-packages/torch_npu/__init__.py", line 17, in <module>
    import torch_npu.npu
ImportError: /usr/local/lib/python3.10/site-packages/torch_npu/lib/libtorch_npu.so: undefined symbol: _ZN5torch10ValueErrorC1EPKcz
""", 4, 1),
    "eh9999-init-env": ("cann-python-deps", NOISE + """\
>>> print(x)
EH9999: Inner Error!
EH9999  [Init][Env]init env failed![FUNC:ReportInnerError][FILE:log_inner.cpp][LINE:145]
        TraceBack (most recent call last):
        build op model failed, result = 500001[FUNC:ReportInnerError][FILE:log_inner.cpp][LINE:145]
""", 4, 2),
    "no-module-decorator": ("cann-python-deps", NOISE + """\
[ERROR] TBE(4242,python):2024-10-21-10:04:05.123.456 [../../../../../../latest/python/site-packages/tbe/common/repository_manager/utils/repository_manager_log.py:30][log] ModuleNotFoundError: No module named 'decorator'
""", 2, 1),
    "set-precision-mode": ("cann-driver-mismatch", NOISE + """\
    torch_npu._C._npu_setDevice(device_id)
RuntimeError: SetPrecisionMode:build/CMakeFiles/torch_npu.dir/compiler_depend.ts:155 NPU function error: at_npu::native::AclSetCompileopt(aclCompileOpt::ACL_PRECISION_MODE, precision_mode), error code is 500001
[ERROR] 2024-10-21-10:04:05 (PID:4242, Device:0, RankID:-1) ERR00100 PTA call acl api failed
[Error]: The internal ACL of the system is incorrect.
        Rectify the fault based on the error information in the ascend log.
EH9999: Inner Error!
EH9999: [PID: 4242] 2024-10-21-10:04:05.965.356 [Init][PlatformInfo]init runtime platform info failed, SocVersion = Ascend910B3[FUNC:ReportInnerError][FILE:log_inner.cpp][LINE:145]
""", 3, 2),
    "dcmi-8005": ("dcmi-card-unavailable", NOISE + """\
DrvMngGetConsoleLogLevel failed. (g_conLogLevel=3)
dcmi module initialize failed. ret is -8005
""", 3, 1),
    "dcmi-8020": ("dcmi-card-unavailable", NOISE + """\
DrvMngGetConsoleLogLevel failed. (g_conLogLevel=3)
dcmi model initialized failed, because the device is used. ret is -8020
""", 3, 1),
    "ei0014": ("hccl-ranktable-topo", NOISE + """\
[rank0]: RuntimeError: create_config:build/CMakeFiles/torch_npu.dir/compiler_depend.ts:102 HCCL function error: hcclCommInitRootInfoConfig(numRanks, &rootInfo, rank, config, &(comm->hcclComm_)), error code is 4
[rank0]: [ERROR] 2024-10-21-10:04:05 (PID:4242, Device:0, RankID:0) ERR02200 DIST call hccl api failed.
[rank0]: [PID: 4242] 2024-10-21-10:04:05.123.456 Config_Error_Ranktable(EI0014): the rank table check failed.
""", 4, 1),
    "frameworks": ("two-frameworks", NOISE + """\
  File "/usr/local/lib/python3.10/site-packages/openmind/utils/import_utils.py", line 66, in get_framework
    raise RuntimeError(replace_invalid_characters(error_msg))
RuntimeError: Multiple frameworks detected, including: pt, ms.
""", 4, 1),
    "torch-not-compiled": ("transformers-too-new", NOISE + """\
  File "/usr/local/lib/python3.10/site-packages/torch/cuda/__init__.py", line 289, in _lazy_init
    raise AssertionError("Torch not compiled with CUDA enabled")
AssertionError: Torch not compiled with CUDA enabled
""", 3, 2),
    "e40021": ("op-not-supported", NOISE + """\
[ERROR] 2024-10-21-10:04:05 (PID:4242, Device:0, RankID:0) ERR00100 PTA call acl api failed.
[PID: 4242] 2024-10-21-10:04:05.945.983 Failure_to_Compile_Op(E40021): Failed to compile Op [trans_Cast_2,]. (oppath: [Compile /usr/local/Ascend/ascend-toolkit/8.0.RC3/opp/built-in/op_impl/ai_core/tbe/impl/dynamic/cast.py failed
""", 3, 1),
    "result-500002": ("op-not-supported", NOISE + """\
EZ9999: Inner Error!
        Compile op[trans_Cast_2,] failed, oppath[/usr/local/Ascend/ascend-toolkit/8.0.RC3/opp/built-in/op_impl/ai_core/tbe/impl/dynamic/cast.py]
        build op model failed, result = 500002[FUNC:ReportInnerError][FILE:log_inner.cpp][LINE:145]
RuntimeError: operator():build/CMakeFiles/torch_npu.dir/compiler_depend.ts:25 NPU function error: aclopCompileAndExecute, error code is 500002
""", 4, 2),
}


@pytest.mark.parametrize("case", sorted(EXCERPTS))
def test_each_excerpt_is_explained_by_its_signature_alone_at_the_right_line(case):
    signature, text, line, count = EXCERPTS[case]
    report = scan_text(text)
    assert found(report) == {signature: (f"console.log:{line}", count)}
    assert report.lines == text.count("\n")
    assert report.hits[0].line == logs.shown_line(text.splitlines()[line - 1])   # the line at file:line


def test_every_signature_has_an_excerpt_and_every_rule_without_conditions_matches_one():
    assert {signature for signature, *_ in EXCERPTS.values()} == set(logs.BY_ID)
    texts = "".join(text for _, text, _, _ in EXCERPTS.values())
    for signature in logs.SIGNATURES:
        for rule in signature.rules:
            if rule.needs is None:
                assert re.search(rule.pattern, texts), (signature.id, rule.pattern)


def test_the_signature_table_is_complete_and_names_real_checks_and_codes():
    ids = [s.id for s in logs.SIGNATURES]
    assert len(ids) == len(set(ids))
    checks = {entry.id for entry in CATALOGUE}
    for s in logs.SIGNATURES:
        assert s.title and s.meaning and s.fix and s.rules, s.id
        assert s.sources and all(url.startswith("https://github.com/") for url in s.sources), s.id
        assert s.check is None or s.check in checks, (s.id, s.check)
        for code in s.codes:   # written the way the scanner reads codes, or it could never be explained
            assert logs.codes_in(f"x {code}: y") == {code}, (s.id, code)


# ----------------------------------------------------------------------------- rules that need context
def test_500001_alone_is_not_the_missing_packages_but_is_listed_as_a_code():
    report = scan_text(NOISE + "RuntimeError: NPU function error: aclopCompile, error code is 500001\n")
    assert report.hits == []
    assert report.codes == {"error code is 500001": 1}


def test_500001_with_eh9999_in_the_same_file_counts_from_its_own_line():
    text = NOISE + ("RuntimeError: NPU function error: aclopCompile, error code is 500001\n"
                    "EH9999: Inner Error!\n"
                    "EH9999  [Init][Env]init env failed![FUNC:ReportInnerError]\n")
    assert found(scan_text(text)) == {"cann-python-deps": ("console.log:2", 2)}
    later = NOISE + ("EH9999  [Init][Env]init env failed![FUNC:ReportInnerError]\n"
                     "RuntimeError: NPU function error: aclopCompile, error code is 500001\n")
    report = scan_text(later)   # the first line of either kind is where it was first seen
    assert found(report) == {"cann-python-deps": ("console.log:2", 2)} and "init env failed" in report.hits[0].line


def test_a_condition_met_only_in_another_file_does_not_count():
    first = logs.Source("plog-1.log", iter(["RuntimeError: error code is 500001\n"]))
    second = logs.Source("plog-2.log", iter(["EH9999: Inner Error!\n"]))
    report = logs.scan([first, second])
    assert report.hits == []
    assert report.codes == {"error code is 500001": 1, "EH9999": 1}


def test_set_precision_mode_is_the_driver_mismatch_not_the_missing_packages():
    _, text, _, _ = EXCERPTS["set-precision-mode"]
    report = scan_text(text)
    assert [hit.signature.id for hit in report.hits] == ["cann-driver-mismatch"]
    assert report.unexplained == {}   # ERR00100, EH9999 and 500001 are all part of that signature


# ----------------------------------------------------------------------------- the command
def test_a_mixed_noisy_console_log_explains_each_signature_once_with_file_and_line():
    lines = MIXED.read_text().splitlines()
    assert "EI0006" in lines[18 - 1] and "EI0006" in lines[28 - 1] and "EJ0001" in lines[24 - 1]
    done = doctor("--log", str(MIXED.relative_to(ROOT)))
    assert done.returncode == 1, done.stderr
    out = done.stdout
    assert out.count("hccl-socket-timeout  ") == 1 and out.count("card-busy  ") == 1
    assert "found  tests/fixtures/logs/console-mixed.log:18 (2 lines)" in out
    assert "found  tests/fixtures/logs/console-mixed.log:24 (1 line)" in out
    assert "fix    `export HCCL_CONNECT_TIMEOUT=1200 HCCL_EXEC_TIMEOUT=1800`" in out
    assert "`npu-smi info` lists the process on the card" in out
    assert "https://github.com/hiyouga/LlamaFactory/issues/3839" in out
    other = out.split("  other  ", 1)[1]
    assert "EZ9999 (1 line)" in other and "error code is 6 (1 line)" in other
    assert "ERR02200" not in other and "ERR01100" not in other and "EI0006" not in other   # explained above
    assert out.rstrip().endswith("doctor --log: 2 known problems (hccl-socket-timeout, card-busy)")


def test_a_plog_directory_reads_its_log_files_and_groups_matches_across_them():
    done = doctor("--log", str(PLOG), "--json")
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["schema"] == "kit.doctor.log/1"
    assert report["sources"] == ["plog/plog-31336_20241021100402118.log", "plog/plog-31337_20241021100402120.log"]
    known = {hit["id"]: hit for hit in report["known"]}
    assert list(known) == ["hccl-socket-timeout", "card-busy"]
    timeout = known["hccl-socket-timeout"]
    assert timeout["where"] == "plog/plog-31336_20241021100402118.log:2"
    assert timeout["count"] == 2 and timeout["files"] == report["sources"]
    assert "wait socket establish timeout" in timeout["line"]
    busy = known["card-busy"]   # model.safetensors holds the same text: a checkpoint is never read
    assert (busy["where"], busy["count"]) == ("plog/plog-31337_20241021100402120.log:3", 1)
    assert report["lines"] == 8


def test_the_text_report_for_a_directory_names_it_and_its_file_count():
    done = doctor("--log", str(PLOG))
    assert done.stdout.splitlines()[0] == f"doctor --log: {PLOG} (2 files, 8 lines read)"
    assert "(2 lines in 2 files)" in done.stdout


def test_stdin_is_read_with_log_dash():
    done = doctor("--log", "-", stdin=EXCERPTS["dcmi-8005"][1])
    assert done.returncode == 1
    assert "found  <stdin>:3 (1 line)" in done.stdout
    assert done.stdout.startswith("doctor --log: <stdin> (3 lines read)")


def test_an_unknown_log_says_so_lists_its_codes_by_count_and_exits_0():
    text = NOISE + ("EZ9999: Inner Error!\n[ERROR] 2024-10-21-10:04:05 (PID:1, Device:0, RankID:0) ERR01100 OPS call acl api failed.\n"
                    "EZ9999  [Exec][Op]Execute op failed. op type = MatMul\n"
                    "RuntimeError: NPU function error: c10_npu::acl::AclrtSynchronizeStreamWithTimeout, error code is 507015\n")
    done = doctor("--log", "-", stdin=text)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("doctor --log: nothing known in <stdin> (5 lines read)")
    codes = " ".join(done.stdout.split())
    assert "error codes seen: EZ9999 (2 lines), ERR01100 (1 line), error code is 507015 (1 line)" in codes


def test_a_log_without_any_error_code_says_that_too():
    done = doctor("--log", "-", stdin=NOISE * 3)
    assert done.returncode == 0
    assert "nothing known in <stdin> (3 lines read)" in done.stdout and "no error codes either" in done.stdout


def test_a_missing_log_is_one_clear_message_with_its_own_exit_code(tmp_path):
    missing = tmp_path / "no" / "console.log"
    done = doctor("--log", str(missing))
    assert done.returncode == logs.EXIT_UNREADABLE == 4
    assert done.stdout == ""
    assert done.stderr.startswith(f"doctor: cannot read LOG {missing}: no such file or directory\n  fix: ")
    assert "Traceback" not in done.stderr


def test_a_directory_without_log_files_is_unreadable_too(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"\x00EI0006\x00")
    done = doctor("--log", str(tmp_path))
    assert done.returncode == 4
    assert f"cannot read LOG {tmp_path}: a directory without log files (*.log, *.txt, *.out, *.err)" in done.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file whatever its mode")
def test_an_unreadable_file_is_unreadable(tmp_path):
    log = tmp_path / "console.log"
    log.write_text("EI0006\n")
    log.chmod(0)
    done = doctor("--log", str(log))
    assert done.returncode == 4 and "Permission denied" in done.stderr


@pytest.mark.parametrize("extra", [["--only", "frameworks"], ["--markdown"]])
def test_log_with_options_for_the_checks_is_a_usage_error(extra, capsys):
    assert doctor_main(["--log", str(MIXED), *extra]) == 2
    assert "--log explains a log" in capsys.readouterr().err


def test_secrets_on_a_matched_line_are_redacted_and_the_rest_of_the_line_kept():
    text = NOISE + (f"+ SWANLAB_API_KEY={SECRET} python -m recipe.finetune --hub-token {SECRET}x: "
                    "ImportError: libhccl.so: cannot open shared object file\n")
    done = doctor("--log", "-", stdin=text)
    assert done.returncode == 1
    assert SECRET not in done.stdout
    shown = " ".join(done.stdout.split())
    assert "+ SWANLAB_API_KEY=*** python -m recipe.finetune --hub-token *** ImportError: libhccl.so" in shown


def test_a_secret_from_the_environment_is_redacted_wherever_it_sits(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_abcdefghijklmnop")
    report = scan_text("EJ0001: token hf_abcdefghijklmnop Failed to initialize the HCCP process.\n")
    assert report.hits[0].line == "EJ0001: token *** Failed to initialize the HCCP process."


def test_long_lines_and_colour_codes_are_cut_and_stripped_for_display():
    report = scan_text("\x1b[31mEI0006: " + "x" * 5000 + "\x1b[0m\n")
    line = report.hits[0].line
    assert line.startswith("EI0006: xxx") and line.endswith("…") and len(line) == logs.SHOWN_CHARS


# ----------------------------------------------------------------------------- big logs
def test_a_50000_line_plog_prints_one_block_per_signature_not_one_per_line():
    timeout = ("[ERROR] HCCL(12345,python3):2024-10-21-10:04:05.123.456 [hccl_socket_manager.cc:778] "
               "[12399][Wait][LinkEstablish]wait socket establish timeout, role[1] rank[3] timeout[120]\n")
    info = "[INFO] RUNTIME(12345,python3):2024-10-21-10:04:05.123.456 [stream.cc:646] 12399 Setup: stream_id=3 ok\n"
    lines = (timeout if i % 1000 == 999 else info for i in range(50_000))
    report = logs.scan([logs.Source("plog-12345_20241021100402118.log", lines)])
    assert report.lines == 50_000
    assert found(report) == {"hccl-socket-timeout": ("plog-12345_20241021100402118.log:1000", 50)}
    assert len(logs.render(report, width=100).splitlines()) < 25


def test_files_are_read_lazily_line_by_line():
    [source] = logs.sources(str(MIXED))
    assert iter(source.lines) is source.lines      # an iterator over the open file, not a list of it
    assert next(source.lines).startswith("+ torchrun")


def test_explaining_a_log_needs_nothing_but_the_standard_library():
    """An Ascend host has a bare python3 at best: no venv, no torch (-S: no site-packages)."""
    code = f"import sys; sys.path.insert(0, {str(ROOT)!r}); from verify import doctor; sys.exit(doctor.main(['--log', {str(PLOG)!r}]))"
    done = subprocess.run([sys.executable, "-S", "-c", code], cwd=ROOT, capture_output=True, text=True,
                          env={"PATH": os.environ["PATH"]}, check=False, timeout=60)
    assert done.returncode == 1, done.stderr
    assert "doctor --log: 2 known problems" in done.stdout


# ----------------------------------------------------------------------------- make (the docs: tests/test_doctor.py)
def test_make_doctor_log_passes_the_file_and_the_result(tmp_path):
    venv = tmp_path / "venv"   # a venv of our own: the .stamp rule must never rebuild a shared one
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    (venv / "bin" / "python").chmod(0o755)
    (venv / ".stamp").touch()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
    env["PYTHONPATH"] = str(ROOT)
    run = subprocess.run(["make", "-s", "--no-print-directory", "-o", f"{venv}/.stamp", "doctor",
                          f"VENV={venv}", f"LOG={MIXED.relative_to(ROOT)}"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode != 0 and "Error 1" in run.stderr     # make reports the doctor's exit code 1
    assert "doctor --log: 2 known problems (hccl-socket-timeout, card-busy)" in run.stdout

