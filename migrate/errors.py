"""The small, named set of errors a user can cause, each with an exit code and a recovery hint.

Exit codes (documented in the README):
  0 ok · 1 check found violations, files behind head, or others' files (verify) · 2 usage,
  I/O or bad input · 3 lock held · 4 ledger or version problem · 5 a down that would
  overwrite another writer's values, or an interrupted run that cannot be finished ·
  6 a step failed on valid data (a bug in migrate)
"""

from __future__ import annotations


class MigrateError(Exception):
    """Base class: ``str(err)`` is the one line shown to the user."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint


class UsageError(MigrateError):
    exit_code = 2


class RepoError(MigrateError):
    """A path that is missing, unreadable, not a data repo, or leaves the repo."""

    exit_code = 2


class BadInputError(MigrateError):
    """Lines that cannot be migrated; carries the ``file:line: reason`` lines."""

    exit_code = 2

    def __init__(self, message: str, problems: list[str], hint: str | None = None):
        super().__init__(message, hint)
        self.problems = problems


class LockHeld(MigrateError):
    exit_code = 3


class LedgerError(MigrateError):
    """Unreadable ledger, unknown step id, ledger written by a newer tool."""

    exit_code = 4


class DataChanged(MigrateError):
    """Files are not what a run needs them to be: ``down`` cannot revert a file without
    overwriting another writer's values, or an interrupted run's staged copies are gone."""

    exit_code = 5


class Unfinished(MigrateError):
    """A dry run while a killed run waits to be finished: what comes after finishing it
    cannot be shown from the files as they are."""

    exit_code = 5


class StepBug(MigrateError):
    """A step's code raised, or wrote what its own model refuses: a bug in migrate, not a
    problem in the data. ``tracebacks`` are shown with ``--debug``."""

    exit_code = 6

    def __init__(self, message: str, tracebacks: list[str]):
        super().__init__(
            message,
            hint="this is a bug in migrate: run again with --debug and report what it prints",
        )
        self.tracebacks = tracebacks
