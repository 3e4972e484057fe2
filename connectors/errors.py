"""Expected failures: what went wrong, how to fix it, and the exit code the CLI ends with.

Any part of the pipeline (connector, model runner, flow) raises a subclass of ``RoiError`` for a failure the
user can do something about (a missing setting, a busy warehouse, a refused UTM). The CLI prints it as one
line, ``error: <cause> Fix: <fix>``, and exits with ``exit_code``; the traceback only shows with ``--debug``.
Anything that is not a ``RoiError`` (nor one of the few foreign exceptions the CLI translates) is a bug and is
reported as such.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_STEP_FAILED = 1  # a pipeline step failed (extract, build or publish)
EXIT_USAGE = 2  # wrong usage: unknown option, bad value (Typer/Click's own code for usage errors)
EXIT_CONFIG = 3  # configuration or an input file missing or invalid; nothing to read yet
EXIT_TESTS_FAILED = 4  # data tests failed: models built, publishing skipped
EXIT_BUSY = 5  # the warehouse is busy: another run holds its write lock
EXIT_UTM_REFUSED = 6  # `roi utm build` refused a value that is not in the tagging plan


class RoiError(Exception):
    """An expected failure. ``cause`` says what happened (naming the record, file or setting), ``fix`` what to
    do about it; both end up on one line."""

    exit_code: int = EXIT_STEP_FAILED

    def __init__(self, cause: str, fix: str | None = None) -> None:
        self.cause = cause.strip()
        self.fix = fix.strip() if fix else None
        super().__init__(self.message)

    @property
    def message(self) -> str:
        if not self.fix:
            return self.cause
        return f"{self.cause.rstrip('.')}. Fix: {self.fix}"


class UsageError(RoiError):
    """A command-line value the command cannot use (a malformed date, a negative limit, a folder)."""

    exit_code = EXIT_USAGE


class StepFailedError(RoiError):
    """A pipeline step failed for a reason outside our code (the API refused, a quota ran out)."""

    exit_code = EXIT_STEP_FAILED


class NotBuiltYetError(RoiError, LookupError):
    """What a command reads does not exist yet (no warehouse, no mart, a model the marts do not have)."""

    exit_code = EXIT_CONFIG
