"""One exception type per kind of bad input, each with its own exit code."""

# argparse already uses 2 for a bad command line.
EXIT_BAD_RECORD = 3
EXIT_BAD_OUTPUT = 4
EXIT_RECIPE_MISSING = 5
EXIT_NO_RUN_FINISHED = 6  # stability: every seed crashed, so there is nothing to summarise


class ReportError(Exception):
    exit_code = EXIT_BAD_RECORD


class BadRunRecord(ReportError):
    """A run directory is missing a file, or a file does not follow docs/run-record.md."""

    exit_code = EXIT_BAD_RECORD


class BadOutput(ReportError):
    """The output directory cannot be written."""

    exit_code = EXIT_BAD_OUTPUT


class RecipeMissing(ReportError):
    exit_code = EXIT_RECIPE_MISSING
