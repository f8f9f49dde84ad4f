"""Problems found in a cohort folder: one record per problem, and the report that gathers them.

A :class:`Problem` names the file (a table, or ``series.csv`` for an image or mask it lists), the row and
the field at fault, says what is wrong and how bad it is: an ``error`` makes the cohort unusable (a stage
refuses it), a ``warning`` is printed by ``sarcomri cohort validate`` but does not stop anything.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from sarcomri.errors import ValidationError

Severity = Literal["error", "warning"]
ERROR: Severity = "error"
WARNING: Severity = "warning"
MAX_LISTED = 5  # errors named in the message of CohortInvalid


@dataclass(frozen=True)
class Problem:
    """One problem of a cohort folder: where it is (file, row, field) and what it is."""

    file: str
    problem: str
    row: int | None = None
    field: str | None = None
    severity: Severity = ERROR

    def __str__(self) -> str:
        where = self.file
        if self.row is not None:
            where += f", row {self.row}"
        if self.field is not None:
            where += f", field '{self.field}'"
        return f"{where}: {self.problem}"

    def to_dict(self) -> dict[str, Any]:
        """The record as a JSON-ready dict (file, row, field, problem, severity)."""
        return asdict(self)


class CohortInvalid(ValidationError):
    """A cohort with errors: the message names the first few, ``problems`` holds every one."""

    def __init__(self, problems: list[Problem]):
        first = problems[0]
        text = first.problem
        if len(problems) > 1:
            rest = "; ".join(str(p) for p in problems[1:MAX_LISTED])
            more = "; ..." if len(problems) > MAX_LISTED else ""
            text += (f" [1 of {len(problems)} errors; also: {rest}{more} (`sarcomri cohort validate` lists them "
                     "all)]")
        super().__init__(first.file, text, row=first.row, field=first.field)
        self.problems = list(problems)


@dataclass
class ValidationReport:
    """Every problem found at one level of checking (``tables``, ``headers`` or ``content``)."""

    level: str
    root: Path | None = None
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        """The problems that make the cohort unusable."""
        return [p for p in self.problems if p.severity == ERROR]

    @property
    def warnings(self) -> list[Problem]:
        """The problems worth a look that do not stop a stage."""
        return [p for p in self.problems if p.severity == WARNING]

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings allowed)."""
        return not self.errors

    def raise_errors(self) -> None:
        """Raise :class:`CohortInvalid` (a :class:`ValidationError`) when there is any error."""
        if self.errors:
            raise CohortInvalid(self.errors)

    def to_dict(self) -> dict[str, Any]:
        """The report as a JSON-ready dict."""
        return {"cohort": None if self.root is None else str(self.root), "level": self.level,
                "errors": len(self.errors), "warnings": len(self.warnings),
                "problems": [p.to_dict() for p in self.problems]}
