"""User-facing errors: one clear message, one distinct exit code per kind of mistake."""


class KitError(Exception):
    """An error the user can fix; printed as one line, never as a traceback."""

    exit_code = 1
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

    exit_code = 3
    kind = "config error"


class DataError(KitError):
    """The data source is missing or malformed (names file and line)."""

    exit_code = 4
    kind = "data error"


class ModelError(KitError):
    """The model cannot be found or loaded."""

    exit_code = 5
    kind = "model error"


class DeviceError(KitError):
    """The requested device or framework is not available."""

    exit_code = 6
    kind = "device error"


class OutputError(KitError):
    """The output directory cannot be used (e.g. holds a finished run)."""

    exit_code = 7
    kind = "output error"



# A run stopped by SIGINT/SIGTERM saves a checkpoint and exits with the shell's 128 + signal
# number, so `docker stop`, schedulers and shells read it as "stopped by that signal".
INTERRUPTED_EXIT_CODES = {"SIGINT": 130, "SIGTERM": 143}
