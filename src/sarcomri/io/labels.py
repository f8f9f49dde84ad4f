"""The labels file of an ingestion: one row per source patient, its class label and clinical columns.

``patients.csv`` (any name) needs the columns ``patient_id`` (as in the source: the DICOM PatientID or
the NIfTI patient folder name) and ``label``; every other column (histology, site, centre, age, ...) is
kept untouched, as text, and written to the cohort's patients.csv beside the pseudonym. Columns that look
like direct identifiers (name, birth date, MRN, ...) are refused. The cohort's allowed labels are the
labels of the file in first-seen order, or the set given by the user, in which case a label outside it
is an error naming the row. Messages name rows, never patient identifiers.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from sarcomri.errors import InputError, ValidationError
from sarcomri.io.deid import check_clinical_columns

UNKNOWN = "unknown"


@dataclass
class Labels:
    """Labels and clinical columns by source patient id, the allowed labels and the positive one."""

    table: pd.DataFrame  # index: source patient id; columns: label, then clinical columns
    allowed: list[str]
    positive: str | None = None
    source: str | None = None

    def label_of(self, source_id: str) -> str | None:
        """The label of a source patient, or None when the file has no row for it."""
        if source_id not in self.table.index:
            return None
        return str(self.table.at[source_id, "label"])

    def clinical_of(self, source_id: str) -> dict[str, str]:
        """The clinical columns of a source patient (empty when the file has no row for it)."""
        if source_id not in self.table.index:
            return {}
        return {k: v for k, v in self.table.loc[source_id].items() if k != "label"}


def no_labels() -> Labels:
    """Every patient labelled ``unknown`` (a cohort for segmentation or for labelling later)."""
    return Labels(table=pd.DataFrame(columns=["label"]), allowed=[UNKNOWN])


def _read_text(path: Path) -> str:
    """The file as text (UTF-8, with or without a byte-order mark)."""
    try:
        return path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise InputError(path, "the labels file does not exist") from None
    except OSError as exc:
        raise InputError(path, f"cannot be read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise InputError(path, "not a readable CSV table (not UTF-8 text)") from None


def _check_complete_rows(text: str, path: Path) -> None:
    """Refuse a file whose last line has no line end, or a row with fewer fields than the header: both are
    what a file cut short looks like, and pandas would read them as empty or shortened values."""
    if text and not text.endswith(("\n", "\r")):
        raise InputError(path, "the last line has no line end: was the file cut short? (if it is complete, end it "
                               "with a newline)")
    try:
        rows = [r for r in csv.reader(io.StringIO(text)) if r]
    except csv.Error as exc:
        raise InputError(path, f"not a readable CSV table ({exc})") from None
    for i, row in enumerate(rows[1:], start=2):
        if len(row) < len(rows[0]):
            raise ValidationError(path, f"{len(row)} fields, the header has {len(rows[0])} (a row cut short?)", row=i)


def read_labels(path: str | Path, allowed: list[str] | None = None, positive: str | None = None) -> Labels:
    """Read and check a labels file; raise naming the file, row and field of the first problem."""
    path = Path(path)
    text = _read_text(path)
    _check_complete_rows(text, path)
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(path, f"not a readable CSV table ({exc})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    for col in ("patient_id", "label"):
        if col not in frame.columns:
            raise ValidationError(path, f"missing column '{col}' (a labels file needs patient_id,label)", field=col)
    check_clinical_columns([c for c in frame.columns if c not in ("patient_id", "label")], path)
    frame["patient_id"] = frame["patient_id"].str.strip()
    frame["label"] = frame["label"].str.strip()
    seen: set[str] = set()
    for i, (pid, label) in enumerate(zip(frame["patient_id"], frame["label"], strict=True), start=2):
        if not pid:
            raise ValidationError(path, "empty patient_id", row=i, field="patient_id")
        if pid in seen:
            raise ValidationError(path, "this patient_id appears on an earlier row too", row=i, field="patient_id")
        seen.add(pid)
        if not label:
            raise ValidationError(path, "empty label", row=i, field="label")
        if allowed is not None and label not in allowed:
            raise ValidationError(path, f"label {label!r} is not one of the allowed labels {allowed}",
                                  row=i, field="label")
    if frame.empty:
        raise InputError(path, "the labels file has no rows")
    labels = list(allowed) if allowed is not None else list(dict.fromkeys(frame["label"]))
    if positive is not None and positive not in labels:
        raise InputError(path, f"the positive label {positive!r} is not one of the labels {labels}")
    table = frame.set_index("patient_id")
    return Labels(table=table, allowed=labels, positive=positive, source=path.name)
