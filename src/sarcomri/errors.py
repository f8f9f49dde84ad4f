"""Errors that end a command with one clear message naming the file and the problem."""

from __future__ import annotations

from pathlib import Path


class SarcomriError(Exception):
    """A user-facing error: bad input, an invalid cohort, a missing file.

    The CLI prints ``str(error)`` and exits non-zero; no traceback is shown.
    """


class InputError(SarcomriError):
    """A file given to sarcomri cannot be used (corrupt, inconsistent, missing data)."""

    def __init__(self, path: str | Path | None, problem: str):
        self.path = None if path is None else str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)


class ValidationError(SarcomriError):
    """A cohort table breaks its contract; names the file, the row and the field."""

    def __init__(self, file: str | Path, problem: str, row: int | None = None, field: str | None = None):
        self.file = str(file)
        self.row = row
        self.field = field
        self.problem = problem
        where = self.file
        if row is not None:
            where += f", row {row}"
        if field is not None:
            where += f", field '{field}'"
        super().__init__(f"{where}: {problem}")
