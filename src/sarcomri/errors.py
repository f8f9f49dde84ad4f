"""Errors that end a command with one clear message naming the file and the problem."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def few(items: Sequence[str], n: int = 5) -> str:
    """The first ``n`` of ``items`` for a message, comma-separated, with how many more there are."""
    return ", ".join(items[:n]) + (f" (+{len(items) - n} more)" if len(items) > n else "")


class SarcomriError(Exception):
    """A user-facing error: bad input, an invalid cohort, a missing file.

    The CLI prints ``str(error)`` on one line and exits with code 1 (2 is for usage errors); no traceback.
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


def yaml_problem(exc: Exception) -> str:
    """A YAML parser error on one line: what is wrong and where (line, column), without the quoted source line
    PyYAML adds below its message."""
    problem = getattr(exc, "problem", None)
    if not problem:
        return " ".join(str(exc).split())
    context = getattr(exc, "context", None)
    mark = getattr(exc, "problem_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    return f"{context + ': ' if context else ''}{problem}{where}"
