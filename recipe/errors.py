"""The kit's ONE exit-code table, and the recipe's user-facing errors: one clear message, one
distinct exit code per kind of mistake.

Every command of the kit exits with a code of EXIT_CODES: the recipe (`python -m recipe.finetune`),
the reports (`python -m report.compare`, `report.stability`, `report.card`), the benchmark
(`python -m bench`), the doctor and the developers' device check. README.md, "Exit codes" lists the
same table (tests/test_readme.py fails when the two differ). The recipe's codes 2-7 and 130/143
never change: users script against them. A new kind of failure gets a new number, never one that
already means something else.
"""

EXIT_OK = 0
EXIT_FAILED = 1            # any other failure: a crash (Python's own 1), a failing rank, a failing doctor check, a stale card
EXIT_USAGE = 2             # argparse's own code for a bad command line
EXIT_CONFIG = 3
EXIT_DATA = 4
EXIT_MODEL = 5
EXIT_DEVICE = 6
EXIT_OUTPUT = 7
EXIT_BENCH_FAILED = 8      # bench: a configuration failed to train
EXIT_LOSSES_DIFFER = 9     # device check: exact's per-step losses differ from published's
EXIT_BAD_RECORD = 10       # report: a run record (or another kit record) is missing or malformed
EXIT_RECIPE_MISSING = 11   # report.stability: recipe.finetune cannot be found
EXIT_NO_RUN_FINISHED = 12  # report.stability: no seed finished
EXIT_SIGINT = 130          # 128 + the signal's number, as a shell reports it
EXIT_SIGTERM = 143

# code -> (kind, who exits with it): the first word of each README row's meaning is the kind
EXIT_CODES = {
    EXIT_OK: ("done", "every command"),
    EXIT_FAILED: ("failed", "recipe (a crash, a failing rank), verify.doctor, report.card --check"),
    EXIT_USAGE: ("usage", "every command"),
    EXIT_CONFIG: ("config", "recipe, bench, docker/run.sh"),
    EXIT_DATA: ("data", "recipe"),
    EXIT_MODEL: ("model", "recipe"),
    EXIT_DEVICE: ("device", "recipe, bench, docker/run.sh, device check"),
    EXIT_OUTPUT: ("output", "recipe, report.compare, report.stability"),
    EXIT_BENCH_FAILED: ("bench", "bench, device check"),
    EXIT_LOSSES_DIFFER: ("parity", "device check"),
    EXIT_BAD_RECORD: ("record", "report.compare, report.stability, report.card, device check --record"),
    EXIT_RECIPE_MISSING: ("recipe", "report.stability"),
    EXIT_NO_RUN_FINISHED: ("seeds", "report.stability"),
    EXIT_SIGINT: ("stopped", "recipe"),
    EXIT_SIGTERM: ("stopped", "recipe"),
}


class KitError(Exception):
    """An error the user can fix; printed as one line, never as a traceback."""

    exit_code = EXIT_FAILED   # subclasses give their own
    kind = "error"

    def __init__(self, message: str, fix: str | None = None):
        super().__init__(message)
        self.message = message
        self.fix = fix

    def render(self) -> str:
        text = f"{self.kind}: {self.message}"
        if self.fix:
            text += f"\n  fix: {self.fix}"
        return text


class ConfigError(KitError):
    """A profile, override or command-line setting is wrong."""

    exit_code = EXIT_CONFIG
    kind = "config error"


class DataError(KitError):
    """The data source is missing or malformed (names file and line)."""

    exit_code = EXIT_DATA
    kind = "data error"


class ModelError(KitError):
    """The model cannot be found or loaded."""

    exit_code = EXIT_MODEL
    kind = "model error"


class DeviceError(KitError):
    """The requested device or framework is not available."""

    exit_code = EXIT_DEVICE
    kind = "device error"


class OutputError(KitError):
    """The output directory cannot be used (e.g. holds a finished run)."""

    exit_code = EXIT_OUTPUT
    kind = "output error"


# A run stopped by SIGINT/SIGTERM saves a checkpoint and exits with the shell's 128 + signal
# number, so `docker stop`, schedulers and shells read it as "stopped by that signal".
INTERRUPTED_EXIT_CODES = {"SIGINT": EXIT_SIGINT, "SIGTERM": EXIT_SIGTERM}
