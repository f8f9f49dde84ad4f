"""The cohort folder's contract in names and numbers: schema version, file names, columns, the id rule, and
:class:`CohortTables`, what validation reads of a cohort (so that validation needs no import of the loader)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

SCHEMA_VERSION = 1
#: cohort.json key: the number of rows of patients.csv and series.csv, checked on reading.
ROWS_KEY = "rows"
PATIENT_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
#: A cohort's optional radiologists' reads (patient_id, reader, group, sequence, session, confidence); a study
#: run keeps its own under the same name (:mod:`sarcomri.runs`).
READERS_CSV = "readers.csv"
SERIES_COLUMNS = [
    "patient_id", "sequence", "image", "mask",
    "spacing_x", "spacing_y", "spacing_z", "size_x", "size_y", "size_z",
]


class CohortTables(Protocol):
    """What validation reads of a cohort: its two tables, cohort.json's content, and its folder (or None)."""

    patients: pd.DataFrame
    series: pd.DataFrame
    meta: dict[str, Any]
    root: Path | None
