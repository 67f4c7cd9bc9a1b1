"""One exception type per kind of bad input; their exit codes come from the kit's one table
(recipe/errors.py, listed in README.md, "Exit codes")."""

from recipe.errors import EXIT_BAD_RECORD, EXIT_OUTPUT, EXIT_RECIPE_MISSING


class ReportError(Exception):
    exit_code = EXIT_BAD_RECORD


class BadRunRecord(ReportError):
    """A run directory is missing a file, or a file does not follow docs/run-record.md."""

    exit_code = EXIT_BAD_RECORD


class BadOutput(ReportError):
    """The output directory cannot be written, or holds runs that would be read as new: the recipe's
    output error, with its code."""

    exit_code = EXIT_OUTPUT


class RecipeMissing(ReportError):
    """report.stability cannot find recipe.finetune to train the seeds."""

    exit_code = EXIT_RECIPE_MISSING
