"""Mutation testing of the kit's core (dev/mutation.md): run mutmut one module at a time, score each
module, and hold every score at or above its recorded value (dev/mutation_scores.json).

    python dev/mutation_score.py run [MODULE ...]   mutmut on these modules (default: all in SCOPE)
    python dev/mutation_score.py survivors [MODULE ...]   re-judge only the last survivors (new tests)
    python dev/mutation_score.py report             per-module table from the last runs (mutants/)
    python dev/mutation_score.py check              exit 1 when a module scores below its record
    python dev/mutation_score.py record             write the current scores as the new record

mutmut (pinned in requirements/mutation.txt, configured in pyproject.toml [tool.mutmut]) runs, for each
mutant, only the tests that called the mutated function when the whole selection ran once.
"""

from __future__ import annotations

import fnmatch
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MUTANTS = REPO / "mutants"
RECORD = REPO / "dev" / "mutation_scores.json"

# module -> the functions whose mutants count ("*": all). Functions left out only format text or
# drive the whole training run (covered by the slow end-to-end tests, too slow to rerun per mutant).
SCOPE: dict[str, list[str]] = {
    "recipe.record": ["*"],                       # run-record writing, secrets redaction, thresholds
    "verify.checks": ["x_versions_table", "x_base_version", "x_version_tuple", "x__visible_problem",
                      "x_cuda_driver", "x_run_all"],   # the doctor's checks that compare versions and counts
    "recipe.finetune": ["x_prepare_output"],      # resume: which checkpoint, refusing to mix runs
    "recipe.data": ["*"],                         # data loading and validation
    "recipe.metrics": ["*"],                      # accuracy / MCC
    "report.compare": ["x__relative", "x__signed", "x__last_loss", "x_time_blocks"],   # compare's arithmetic
    "recipe.distributed": ["x__positive_int", "x_plan_batch", "x_check_world", "x_merge_memory"],  # batch plan
    "verify.runrecord": ["*"],                    # verify's reading of a run record and its verdicts
    "recipe.tools.smi": ["x__cells", "x_parse_npu_smi_info", "x__chip", "x__process_row", "x_parse_nvidia_smi_csv",
                   "x__mib", "x_cann_version", "x_driver_version"],   # npu-smi / nvidia-smi / CANN parsers
    "verify.probes": ["x_diagnose", "x_failure_text", "x_first_line", "x_key_line"],   # the doctor's parsers
    "report.seeds": ["*"],                        # failed-run rule, mean/std, Welch's t
    "report.curves": ["*"],                       # oscillation
    "report.comparability": ["*"],
    "recipe.tools.versions": ["x_normalize", "x_load_table", "x_compat_rows", "x_parse_lock", "x_image_pins",
                        "x_no_deps_packages"],    # the version table the doctor and the locks read
}

NEEDS_SLOW_TESTS = {"recipe.finetune"}
DETECTED = {"killed", "timeout", "segfault", "caught by type check"}
STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 34: "skipped", 36: "timeout",
          37: "caught by type check", 24: "timeout", -24: "timeout", 152: "timeout", 255: "timeout",
          -11: "segfault", -9: "segfault", None: "not checked"}


def function_of(mutant: str) -> str:
    """'recipe.record.x_redact__mutmut_3' -> 'x_redact'."""
    return mutant.rsplit("__mutmut_", 1)[0].rsplit(".", 1)[-1]


def in_scope(module: str, mutant: str) -> bool:
    return any(fnmatch.fnmatchcase(function_of(mutant), pattern) for pattern in SCOPE[module])


def results(module: str) -> dict[str, str]:
    """{mutant name: status} of a module's mutants in scope, from mutmut's .meta file."""
    meta = MUTANTS / (module.replace(".", "/") + ".py.meta")
    if not meta.is_file():
        return {}
    codes = json.loads(meta.read_text())["exit_code_by_key"]
    return {name: STATUS.get(code, "suspicious") for name, code in codes.items() if in_scope(module, name)}


def score(module: str) -> dict | None:
    found = results(module)
    checked = {name: status for name, status in found.items() if status not in ("not checked", "skipped")}
    if not checked:
        return None
    killed = sum(status in DETECTED for status in checked.values())
    return {"mutants": len(checked), "killed": killed, "score": round(100.0 * killed / len(checked), 1),
            "unchecked": len(found) - len(checked),
            "survivors": sorted(name for name, status in checked.items() if status not in DETECTED)}


def patterns(module: str) -> list[str]:
    return [f"{module}.{pattern}" if pattern == "*" else f"{module}.{pattern}__mutmut_*" for pattern in SCOPE[module]]


def run(modules: list[str]) -> int:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false",
               HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    env.pop("KIT_MUTATION_SKIP_SLOW", None)
    children = os.environ.get("MUTATION_CHILDREN", "2")
    mutmut = str(Path(sys.executable).with_name("mutmut"))
    if not (MUTANTS / "mutmut-stats.json").is_file():
        # the first run maps tests to functions: with the slow tests, or resume would have none
        modules = sorted(modules, key=lambda m: m not in NEEDS_SLOW_TESTS)
    for module in modules:
        started = time.monotonic()
        print(f"== {module}", flush=True)
        # only resume needs a training run per mutant; everywhere else the slow tests skip
        module_env = env if module in NEEDS_SLOW_TESTS else dict(env, KIT_MUTATION_SKIP_SLOW="1")
        MUTANTS.mkdir(exist_ok=True)
        with (MUTANTS / f"{module}.log").open("w") as log:   # mutmut's progress, for `tail -f`
            done = subprocess.run([mutmut, "run", "--max-children", children, *patterns(module)], cwd=REPO,
                                  env=module_env, stdout=log, stderr=subprocess.STDOUT, check=False)
        if done.returncode != 0:
            print(f"mutmut failed on {module} (exit {done.returncode}); see {MUTANTS / (module + '.log')}",
                  file=sys.stderr)
            return done.returncode
        result = score(module)
        print(f"   {result and result['score']} % of {result and result['mutants']} mutants killed "
              f"in {time.monotonic() - started:.0f} s", flush=True)
    return 0


def rerun_survivors(modules: list[str]) -> int:
    """Re-judge only the last run's survivors (after adding tests): one mutmut call for all of them."""
    names = [name for module in modules for name in (score(module) or {}).get("survivors", [])]
    if not names:
        print("no survivors to re-judge")
        return 0
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false",
               HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    if not NEEDS_SLOW_TESTS & set(modules):
        env["KIT_MUTATION_SKIP_SLOW"] = "1"
    mutmut = str(Path(sys.executable).with_name("mutmut"))
    with (MUTANTS / "survivors.log").open("w") as log:
        done = subprocess.run([mutmut, "run", "--max-children", os.environ.get("MUTATION_CHILDREN", "2"), *names],
                              cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, check=False)
    print(table())
    return done.returncode


def table() -> str:
    recorded = json.loads(RECORD.read_text()) if RECORD.is_file() else {}
    lines = ["| module | functions in scope | mutants judged | killed | score | not yet judged | recorded |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for module, functions in SCOPE.items():
        result = score(module)
        scope = "all" if functions == ["*"] else ", ".join(p.removeprefix("x_") for p in functions)
        if result is None:
            lines.append(f"| `{module}` | {scope} | not run | | | {len(results(module)) or ''} "
                         f"| {recorded.get(module, 'n/a')} |")
            continue
        lines.append(f"| `{module}` | {scope} | {result['mutants']} | {result['killed']} | {result['score']} % "
                     f"| {result['unchecked'] or ''} | {recorded.get(module, 'n/a')} |")
    return "\n".join(lines)


def check() -> int:
    """The ratchet: every module that was run must score at least its recorded value."""
    if not RECORD.is_file():
        print(f"no recorded scores yet ({RECORD}): `make mutation-record` after a full run", file=sys.stderr)
        return 1
    recorded = json.loads(RECORD.read_text())
    failures = []
    for module, minimum in recorded.items():
        result = score(module)
        if result is None:
            continue
        if result["unchecked"]:
            failures.append(f"{module}: {result['unchecked']} mutants not checked yet (run it to the end)")
        elif result["score"] < minimum:
            failures.append(f"{module}: {result['score']} % < recorded {minimum} %; survivors: "
                            + ", ".join(result["survivors"]))
    for failure in failures:
        print(f"mutation score: {failure}", file=sys.stderr)
    return 1 if failures else 0


def record() -> int:
    recorded = json.loads(RECORD.read_text()) if RECORD.is_file() else {}
    for module in SCOPE:
        result = score(module)
        if result is not None and not result["unchecked"]:
            recorded[module] = result["score"]
    RECORD.write_text(json.dumps(recorded, indent=2, sort_keys=True) + "\n")
    print(f"recorded {RECORD}")
    return 0


def main(argv: list[str]) -> int:
    command, *modules = argv or ["report"]
    unknown = [m for m in modules if m not in SCOPE]
    if unknown:
        print(f"unknown module(s) {unknown}; in scope: {', '.join(SCOPE)}", file=sys.stderr)
        return 2
    if command == "run":
        return run(modules or list(SCOPE))
    if command == "survivors":
        return rerun_survivors(modules or list(SCOPE))
    if command == "report":
        print(table())
        for module in SCOPE:
            result = score(module)
            if result and result["survivors"]:
                print(f"\n{module} survivors (`mutmut show NAME`):\n  " + "\n  ".join(result["survivors"]))
        return 0
    if command == "check":
        return check()
    if command == "record":
        return record()
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
