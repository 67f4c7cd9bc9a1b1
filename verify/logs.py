"""Explain an error log: `make doctor LOG=<file>` (`python -m verify.doctor --log PATH`).

PATH is a console log, a directory of logs (CANN's plog directory, e.g.
~/ascend/log/debug/plog/ with plog-<pid>_<time>.log files, or runs/<RUN_NAME>/ascend-log/), or `-`
for stdin. Every line is read once, streaming; each known signature found prints once — the first
place it was seen (file:line), how many lines matched, what it means and the fix — and the error
codes no signature explains are listed, so an unknown log still says what it contains.
Matched lines are redacted (recipe.record.redact) before they are printed.

Exit codes: 0 nothing known found, 1 something explained, 4 the log cannot be read (as
recipe/errors.py's DataError: an input file that is missing or unreadable).

Each signature is written from a public report of the error (its `sources`);
docs/troubleshooting.md carries this table, generated (`make catalogue`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import textwrap
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from recipe.record import redact
from verify.catalogue import NPU_DOCKER_FLAGS, SET_ENV

EXIT_NOTHING_KNOWN = 0
EXIT_EXPLAINED = 1
EXIT_UNREADABLE = 4
# In a directory, the files that can be logs (a run directory also holds checkpoints: never read those).
LOG_SUFFIXES = (".log", ".txt", ".out", ".err")
SHOWN_CHARS = 240   # a matched line longer than this is cut (plog lines can be kilobytes)
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# CANN's error codes (EI0006, EH9999, E40021, EZ3003 ...), torch_npu's (ERR00100) and ACL return codes.
CODE = re.compile(r"(?<!\w)(E[0-9A-Z]\d{4}|ERR\d{5})\b|error code is (\d+)")


@dataclass(frozen=True)
class Rule:
    """A line counts when `pattern` matches it and `unless` does not; a rule with `needs` counts only
    when `needs` also matches some line of the same file (errors print over several lines)."""

    pattern: str
    needs: str | None = None
    unless: str | None = None

    def describe(self) -> str:
        text = f"`{self.pattern}`"
        if self.needs:
            text += f" with `{self.needs}` in the same file"
        if self.unless:
            text += f", not on a line with `{self.unless}`"
        return text


@dataclass(frozen=True)
class Signature:
    id: str
    title: str
    rules: tuple[Rule, ...]
    codes: tuple[str, ...]       # the error codes it explains (as CODE reads them)
    meaning: str
    fix: str
    sources: tuple[str, ...]     # public reports of this error
    check: str | None = None     # the doctor check that tests the same cause on the machine


SIGNATURES: tuple[Signature, ...] = (
    Signature(
        "hccl-socket-timeout", "HCCL ranks did not connect in time (EI0006)",
        (Rule(r"EI0006\b"), Rule(r"Getting socket times out"), Rule(r"wait socket establish timeout")),
        ("EI0006", "ERR01100"),
        "the ranks of a multi-card run must all reach HCCL's connection set-up within HCCL_CONNECT_TIMEOUT "
        "(120 s by default); one rank was late — still loading or tokenizing while the others waited — or "
        "died first, and the others timed out waiting for it",
        "`export HCCL_CONNECT_TIMEOUT=1200 HCCL_EXEC_TIMEOUT=1800` (`make run-npu` passes these by default; "
        "raise them with `make run-npu HCCL_CONNECT_TIMEOUT=1800`), and read the earliest error of all ranks: "
        "the rank that failed or started last is the cause",
        ("https://github.com/vllm-project/vllm-ascend/issues/486",
         "https://github.com/vllm-project/vllm-ascend/issues/1955"),
        check="hccl-timeouts",
    ),
    Signature(
        "card-busy", "A previous run still holds the card (EJ0001)",
        (Rule(r"EJ0001\b"), Rule(r"Failed to initialize the HCCP process"),
         Rule(r"Maybe the last training process is running")),
        ("EJ0001", "ERR02200"),
        "the card's HCCP process could not start because a process of an earlier run (crashed, killed "
        "half-way, or someone else's job) still holds the card",
        "`npu-smi info` lists the process on the card (Process id column): end it with `kill <pid>` "
        "(`kill -9 <pid>` if it ignores that; a container: `docker ps`, then `docker stop <name>`), wait "
        "~10 s for the card to be released, then start again",
        ("https://github.com/hiyouga/LlamaFactory/issues/3839",
         "https://github.com/verl-project/verl/pull/332"),
        check="npu-smi",
    ),
    Signature(
        "cann-not-sourced", "CANN's libraries not found: set_env.sh not sourced (libhccl.so, libascendcl.so)",
        (Rule(r"lib(hccl|ascendcl)\.so: cannot open shared object file"),
         Rule(r"Please run 'source set_env\.sh'")),
        ("ERR00008",),
        "torch_npu loads CANN's libraries (libhccl.so, libascendcl.so) from LD_LIBRARY_PATH, which CANN's "
        "set_env.sh sets; it was not sourced in this shell or container (a non-login `docker run ... python` "
        "skips /etc/profile), or CANN is not installed",
        f"`{SET_ENV}` before Python starts (the kit's images source it in their entry point; a job script "
        "must do it itself)",
        ("https://github.com/vllm-project/vllm-ascend/issues/262",
         "https://github.com/LinZhekai/X-Oscar/issues/4"),
        check="cann-env",
    ),
    Signature(
        "torch-npu-undefined-symbol", "torch_npu built for another torch or CANN (undefined symbol)",
        (Rule(r"torch_npu/\S*\.so[^:]*: undefined symbol"),),
        (),
        "`import torch_npu` loads a library compiled against another torch (or CANN) than the one installed: "
        "torch and torch_npu are versioned as a pair",
        "install the pair the version table names (docker/versions.toml [[compat]], docs/versions.md): "
        "`pip install torch==2.1.0 torch_npu==2.1.0.post8` for CANN 8.0.RC3, or use the kit's NPU image",
        ("https://github.com/Ascend/pytorch/issues/35",
         "https://github.com/vllm-project/vllm-ascend/issues/117"),
        check="torch-npu-abi",
    ),
    Signature(
        "cann-python-deps", "Python packages CANN's op compiler needs are missing (EH9999 init env failed, 500001)",
        (Rule(r"init env failed"),
         Rule(r"build op model failed, result = 500001"),
         Rule(r"error code is 500001", needs=r"EH9999\b|init env failed",
              unless=r"SetPrecisionMode|ACL_PRECISION_MODE"),
         Rule(r"No module named '(decorator|sympy|cffi|google\.protobuf|attr|yaml|pathlib2|scipy|psutil|absl)'")),
        ("EH9999", "error code is 500001"),
        "at the first NPU operation CANN starts its op compiler, a Python program that imports decorator, "
        "sympy, cffi, protobuf, attrs, pyyaml, pathlib2, scipy, psutil and absl-py from the same Python; "
        "one is missing, so the environment init fails",
        "`pip install decorator sympy cffi protobuf attrs pyyaml pathlib2 scipy psutil absl-py` into the Python "
        "that runs torch_npu (the kit's NPU image has them)",
        ("https://github.com/Ascend/pytorch/issues/7",),
        check="cann-python-deps",
    ),
    Signature(
        "cann-driver-mismatch", "CANN in the image does not match the driver (SetPrecisionMode, ERR00100)",
        (Rule(r"SetPrecisionMode"), Rule(r"ACL_PRECISION_MODE"),
         Rule(r"init runtime platform info failed")),
        ("ERR00100", "EH9999", "error code is 500001"),
        "torch_npu's first call into CANN (setting the precision mode while the card is opened) failed: the "
        "CANN toolkit and kernels in this image or environment do not go with the host's driver and "
        "firmware, or are not the CANN the docs and the version table expect",
        "compare the host's driver (`npu-smi info`, /usr/local/Ascend/driver/version.info) and the CANN "
        "version with the version table (CANN 8.0.RC3 goes with HDK 24.1.RC3: docs/versions.md); "
        "use the kit's NPU image on an HDK 24.1.RC3 host",
        ("https://github.com/vllm-project/vllm-ascend/issues/2244",
         "https://github.com/vllm-project/vllm-ascend/issues/692"),
        check="versions-table",
    ),
    Signature(
        "dcmi-card-unavailable", "npu-smi cannot open the card (dcmi ret -8005 / -8020)",
        (Rule(r"dcmi mod\w+ initiali[sz]ed? failed.*ret is -80(05|20)"),),
        (),
        "the driver's management library (dcmi) cannot open the card from here: another container holds "
        "it, or this container lacks the device files and driver pieces",
        "on the host, `npu-smi info` shows which process holds the card: stop that container (`docker ps`, "
        "`docker stop <name>`) or pick a free card; give this container the card and the driver: "
        f"`docker run {NPU_DOCKER_FLAGS} ...` (`make run-npu DEVICES=<n>` does)",
        ("https://github.com/vllm-project/vllm-ascend/issues/2698",
         "https://github.com/Ascend/cann-container-image/issues/46"),
        check="npu-smi",
    ),
    Signature(
        "hccl-ranktable-topo", "HCCL rejected the rank table or topology (EI0014)",
        (Rule(r"EI0014\b"), Rule(r"Config_Error_Ranktable")),
        ("EI0014", "ERR02200"),
        "HCCL checks the cluster description when it creates the communicator: inside a container that "
        "mounts only driver/lib64, the driver's topology files (/usr/local/Ascend/driver/topo) are missing; "
        "a stale rank table (/etc/hccl_rootinfo.json, RANK_TABLE_FILE) from other hardware is refused the "
        "same way",
        "mount the whole driver read-only, `-v /usr/local/Ascend/driver:/usr/local/Ascend/driver:ro`, instead "
        "of only driver/lib64 and version.info (the mounts `make run-npu` uses today); unset RANK_TABLE_FILE "
        "and move a stale /etc/hccl_rootinfo.json aside",
        ("https://github.com/gpustack/runtime/pull/29",
         "https://github.com/gpustack/runtime/pull/27"),
        check="driver-libs",
    ),
    Signature(
        "two-frameworks", "torch and mindspore installed together (Multiple frameworks detected)",
        (Rule(r"Multiple frameworks detected"),),
        (),
        "`import openmind` counts the installed frameworks (torch -> pt, mindspore -> ms) and refuses to "
        "choose; no setting selects one",
        "one framework per environment: `pip uninstall -y mindspore mindformers` (the kit's images are "
        "PyTorch)",
        ("https://github.com/SwanHubX/SwanLab-Docs/blob/main/zh/examples/openMind.md",),
        check="frameworks",
    ),
    Signature(
        "transformers-too-new", "transformers newer than 4.49 with torch_npu 2.1 (Torch not compiled with CUDA enabled)",
        (Rule(r"Torch not compiled with CUDA enabled"),),
        (),
        "on an NPU host this means transformers > 4.49, which takes CUDA code paths with torch_npu 2.1/2.2; "
        "the kit pins transformers 4.45.2 (openmind 0.9.1 allows <= 4.45.2). Elsewhere: the run asked for "
        "CUDA on a torch without it (`--device cuda` on a CPU build)",
        "`pip install transformers==4.45.2` (the version table's pin), or run in the kit's image",
        ("https://github.com/huggingface/transformers/issues/37992",
         "https://github.com/huggingface/transformers/issues/37778"),
        check="image-lock",
    ),
    Signature(
        "op-not-supported", "An operator this CANN cannot compile or run (E40021, 500002)",
        (Rule(r"E40021\b"), Rule(r"Failure_to_Compile_Op"), Rule(r"error code is 500002"),
         Rule(r"build op model failed, result = 500002")),
        ("E40021", "error code is 500002", "ERR00100"),
        "CANN could not build the kernel of one operator (named in the line) for this chip: the op, its dtype "
        "or shape is not supported by this CANN's kernels — usually a CANN that is not the one torch_npu was "
        "built for, or a missing kernels package",
        "check CANN ↔ torch_npu against the version table (docs/versions.md, docker/versions.toml); "
        "for that op alone, its fallback: compute it on the CPU (`.cpu()` "
        "before, `.npu()` after), or try the other compile mode, `torch.npu.set_compile_mode(jit_compile=False)` "
        "(prebuilt binary kernels) or `True`",
        ("https://github.com/vllm-project/vllm-omni/issues/890",),
        check="versions-table",
    ),
)

BY_ID = {signature.id: signature for signature in SIGNATURES}


class LogUnreadable(Exception):
    """The LOG path is missing, unreadable, or a directory without log files."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


# ----------------------------------------------------------------------------- reading
@dataclass
class Source:
    name: str          # shown as name:line
    lines: Iterable[str]


def sources(path: str, stdin: TextIO | None = None) -> list[Source]:
    """The files behind LOG: `-` is stdin, a file is itself, a directory is every log file in it
    (recursively, sorted). Raises LogUnreadable with the reason a user can act on."""
    if path == "-":
        return [Source("<stdin>", stdin if stdin is not None else sys.stdin)]
    target = Path(path)
    if not target.exists():
        raise LogUnreadable(path, "no such file or directory")
    if target.is_dir():
        files = sorted(p for p in target.rglob("*") if p.is_file() and p.suffix in LOG_SUFFIXES)
        if not files:
            raise LogUnreadable(path, f"a directory without log files ({', '.join('*' + s for s in LOG_SUFFIXES)})")
        return [Source(_shown(file, target.parent), _read(file)) for file in files]
    _check_readable(target)
    return [Source(_shown(target, None), _read(target))]


def _shown(file: Path, base: Path | None) -> str:
    if base is None:
        return str(file)
    try:
        return str(file.relative_to(base))
    except ValueError:
        return str(file)


def _check_readable(file: Path) -> None:
    try:
        with open(file, "rb") as handle:
            handle.read(1)
    except OSError as error:
        raise LogUnreadable(str(file), error.strerror or str(error)) from error


def _read(file: Path) -> Iterator[str]:
    """Lines of one file, read lazily: a 50 000-line plog never sits in memory whole."""
    _check_readable(file)
    with open(file, encoding="utf-8", errors="replace") as handle:
        yield from handle


# ----------------------------------------------------------------------------- scanning
@dataclass
class Hit:
    signature: Signature
    where: str            # file:line of the first match
    line: str             # that line, redacted and cut
    count: int = 0        # matching lines, all files
    files: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        s = self.signature
        return {"id": s.id, "title": s.title, "where": self.where, "line": self.line, "count": self.count,
                "files": self.files, "meaning": s.meaning, "fix": s.fix, "check": s.check,
                "sources": list(s.sources)}


@dataclass
class Report:
    names: list[str]
    lines: int
    hits: list[Hit]
    codes: dict[str, int]          # every code seen -> lines it was on

    @property
    def unexplained(self) -> dict[str, int]:
        explained = {code for hit in self.hits for code in hit.signature.codes}
        return {code: n for code, n in self.codes.items() if code not in explained}

    def as_dict(self) -> dict:
        return {"schema": "kit.doctor.log/1", "sources": self.names, "lines": self.lines,
                "known": [hit.as_dict() for hit in self.hits], "codes": self.codes,
                "unexplained_codes": self.unexplained}


_RULES = [(signature, rule, re.compile(rule.pattern), re.compile(rule.unless) if rule.unless else None)
          for signature in SIGNATURES for rule in signature.rules]
_NEEDS = sorted({rule.needs for signature in SIGNATURES for rule in signature.rules if rule.needs})
_NEEDS_RE = {needs: re.compile(needs) for needs in _NEEDS}
# Patterns start with a literal where they can (`EI0006\b`, not `\bEI0006\b`): the regex engine then
# skips ahead to it, which keeps a 50 000-line plog around a second.


def codes_in(line: str) -> set[str]:
    return {m[1] or f"error code is {m[2]}" for m in CODE.finditer(line)}


def redact_line(text: str) -> str:
    """recipe.record.redact word by word, the words as an argv: `KEY=value` words with a secret-looking
    KEY, the word after `--api-key` and the environment's secret values go; the rest of the line stays."""
    parts = re.split(r"(\s+)", text)   # words at even places, the whitespace between them at odd ones
    parts[0::2] = redact(parts[0::2])
    return "".join(parts)


def shown_line(line: str) -> str:
    text = redact_line(ANSI.sub("", line).strip())
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS - 1] + "…"


def scan(all_sources: Iterable[Source]) -> Report:
    hits: dict[str, Hit] = {}
    codes: dict[str, int] = {}
    names, total = [], 0
    for source in all_sources:
        names.append(source.name)
        # per signature: [lineno, raw line, count] for the lines that count unconditionally, and the same
        # per `needs` pattern for the lines that count only when that pattern shows up in this file
        plain: dict[str, list] = {}
        pending: dict[tuple[str, str], list] = {}
        needs_seen: set[str] = set()
        for lineno, raw in enumerate(source.lines, 1):
            total += 1
            for code in codes_in(raw):
                codes[code] = codes.get(code, 0) + 1
            needs_seen.update(n for n, regex in _NEEDS_RE.items() if regex.search(raw))
            matched: dict[str, str | None] = {}   # signature -> None (counts) or the `needs` it waits for
            for signature, rule, regex, unless in _RULES:
                if matched.get(signature.id, "") is None:
                    continue   # this line already counts for it: one line is one match
                if (rule.needs is None or signature.id not in matched) and regex.search(raw) \
                        and not (unless and unless.search(raw)):
                    matched[signature.id] = rule.needs
            for sid, needs in matched.items():
                slot, key = (plain, sid) if needs is None else (pending, (sid, needs))
                entry = slot.setdefault(key, [lineno, raw, 0])
                entry[2] += 1
        found = {sid: entry for sid, entry in plain.items()}
        for (sid, needs), entry in pending.items():
            if needs not in needs_seen:
                continue
            if sid in found:
                first = min(found[sid], entry, key=lambda e: e[0])
                found[sid] = [first[0], first[1], found[sid][2] + entry[2]]
            else:
                found[sid] = list(entry)
        for sid, (lineno, raw, count) in sorted(found.items(), key=lambda item: item[1][0]):
            hit = hits.get(sid)
            if hit is None:
                hit = hits[sid] = Hit(BY_ID[sid], f"{source.name}:{lineno}", shown_line(raw))
            hit.count += count
            hit.files.append(source.name)
    return Report(names, total, list(hits.values()), codes)


# ----------------------------------------------------------------------------- output
LABEL = 7


def _block(label: str, text: str, width: int) -> list[str]:
    lines = textwrap.wrap(text, width - LABEL - 2, break_long_words=True, break_on_hyphens=False) or [""]
    return [f"  {label if i == 0 else '':<{LABEL}}{line}" for i, line in enumerate(lines)]


def _times(n: int, what: str = "line") -> str:
    return f"{n} {what}" + ("" if n == 1 else "s")


def _code_list(codes: dict[str, int]) -> str:
    return ", ".join(f"{code} ({_times(n)})" for code, n in sorted(codes.items(), key=lambda kv: (-kv[1], kv[0])))


def render(report: Report, label: str | None = None, width: int | None = None) -> str:
    """The report for a person; `label` is what LOG named (a directory shows its file count)."""
    width = width or min(120, max(80, shutil.get_terminal_size((100, 40)).columns))
    what = label or report.names[0]
    files = "" if report.names == [what] else f"{_times(len(report.names), 'file')}, "
    read = f"{files}{_times(report.lines)} read"
    out: list[str] = []
    if not report.hits:
        out.append(f"doctor --log: nothing known in {what} ({read})")
        if report.codes:
            out += _block("codes", f"error codes seen: {_code_list(report.codes)} — look them up in CANN's "
                          "error-code reference; docs/troubleshooting.md lists the ones the kit knows", width)
        else:
            out.append("  no error codes either (E…/EH9999/ERR…/'error code is N')")
        return "\n".join(out)
    out.append(f"doctor --log: {what} ({read})")
    for hit in report.hits:
        s = hit.signature
        spread = _times(hit.count) + (f" in {_times(len(hit.files), 'file')}" if len(hit.files) > 1 else "")
        out += ["", f"{s.id}  {s.title}"]
        out += _block("found", f"{hit.where} ({spread})", width)
        out += _block("", hit.line, width)
        out += _block("means", s.meaning, width)
        out += _block("fix", s.fix, width)
        if s.check:
            out += _block("check", f"`make doctor` on that machine runs the check `{s.check}`", width)
        out += _block("seen", " ".join(s.sources), width)
    out.append("")
    if report.unexplained:
        out += _block("other", f"error codes not explained above: {_code_list(report.unexplained)}", width)
    out.append(f"doctor --log: {_times(len(report.hits), 'known problem')} "
               f"({', '.join(hit.signature.id for hit in report.hits)})")
    return "\n".join(out)


def explain(path: str, as_json: bool = False, stdin: TextIO | None = None,
            out: TextIO | None = None, err: TextIO | None = None) -> int:
    """The `--log` command: print the report; the exit code says what was found."""
    out, err = out or sys.stdout, err or sys.stderr
    if path == "-" and stdin is None and hasattr(sys.stdin, "reconfigure"):
        sys.stdin.reconfigure(errors="replace")   # a log is not always UTF-8 (GBK plogs)
    try:
        report = scan(sources(path, stdin))
    except LogUnreadable as error:
        print(f"doctor: cannot read LOG {error.path}: {error.reason}\n"
              "  fix: give a console log, a plog directory (e.g. runs/<RUN_NAME>/ascend-log, ~/ascend/log) "
              "or - for stdin: make doctor LOG=<file>", file=err)
        return EXIT_UNREADABLE
    text = json.dumps(report.as_dict(), indent=2) if as_json else render(report, "<stdin>" if path == "-" else path)
    try:
        print(text, file=out)
        out.flush()
    except BrokenPipeError:   # `| head` stopped reading: the exit code still says what was found
        if out is sys.stdout:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return EXIT_EXPLAINED if report.hits else EXIT_NOTHING_KNOWN


# ----------------------------------------------------------------------------- the catalogue
def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown() -> list[str]:
    """The log signatures as a section of docs/troubleshooting.md."""
    out = ["", "## Error logs: `make doctor LOG=<file>`", "",
           "`make doctor LOG=<file>` (`python -m verify.doctor --log PATH`, `--json` for machines) reads a console",
           "log, a directory of logs (a plog directory such as `runs/<RUN_NAME>/ascend-log/` or",
           "`~/ascend/log/debug/plog/`: every `*.log`, `*.txt`, `*.out`, `*.err` under it) or `LOG=-` for stdin,",
           "streaming, and prints each known signature once: where it was first seen (file:line), how many",
           "lines matched, what it means and the fix. Error codes no signature explains are listed. Matched",
           "lines are printed with secrets redacted. Exit code: 0 nothing known found, 1 something explained,",
           f"{EXIT_UNREADABLE} the log cannot be read (missing, unreadable, a directory without log files).",
           "",
           "It needs only Python's standard library: on an Ascend host without the kit's venv, `python3 -m",
           "verify.doctor --log runs/<RUN_NAME>/ascend-log` in the kit's checkout does it (Python >= 3.10). With no",
           "Python on the host, run it in the NPU image (`make build-npu` tags it), which needs no card for this:",
           "`docker run --rm -i <npu image> python -m verify.doctor --log - < console.log`, or `make shell-npu",
           "RUN_NAME=<run>` and `python -m verify.doctor --log /runs/<run>/ascend-log`.",
           "",
           "| signature | problem | fix |",
           "|---|---|---|"]
    for s in SIGNATURES:
        out.append(f"| `{s.id}` | {_cell(s.title)} | {_cell(s.fix)} |")
    for s in SIGNATURES:
        out += ["", f"### `{s.id}`: {s.title}", "",
                "- **Lines that match:** " + "; ".join(rule.describe() for rule in s.rules),
                f"- **What it means:** {s.meaning}",
                f"- **Fix:** {s.fix}"]
        if s.check:
            out.append(f"- **Doctor check:** `{s.check}`")
        out.append("- **Reported in:** " + ", ".join(f"<{url}>" for url in s.sources))
    return out
