"""Which studies a pull asks for: StudyInstanceUIDs, accession numbers, a study-date range, or the patients of a
pseudonym list (the PACS cannot be asked for a pseudonym: every MR study in the date range is listed and kept when
its PatientID hashes, under the user's key, to a listed pseudonym)."""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sarcomri.errors import InputError
from sarcomri.pacs.model import StudyRef

_DATE = re.compile(r"^(\d{8})?-?(\d{8})?$")


@dataclass(frozen=True)
class StudyQuery:
    """The studies to pull: any of ``study_uids``, ``accessions`` and ``pseudonyms`` (each a list), within
    ``dates`` (a DICOM date range ``YYYYMMDD-YYYYMMDD``, either end open) and of ``modality``."""

    study_uids: tuple[str, ...] = ()
    accessions: tuple[str, ...] = ()
    pseudonyms: tuple[str, ...] = ()
    dates: str = ""
    modality: str = "MR"

    def __post_init__(self):
        if not (self.study_uids or self.accessions or self.pseudonyms or self.dates):
            raise InputError(None, "say which studies to pull: --study UID, --accession NUMBER, --patients FILE "
                             "(pseudonyms) or --dates FROM-TO")
        if self.dates:
            check_dates(self.dates)

    def searches(self) -> list[tuple[str, dict[str, str]]]:
        """(what, filters) of each search to send: one per UID and accession number, or one over the dates."""
        base = {"StudyDate": self.dates} if self.dates else {}
        out = [(f"--study #{k + 1}", {**base, "StudyInstanceUID": uid}) for k, uid in enumerate(self.study_uids)]
        out += [(f"--accession #{k + 1}", {**base, "AccessionNumber": acc}) for k, acc in enumerate(self.accessions)]
        if self.pseudonyms or (self.dates and not out):
            out.append(("--dates" if self.dates else "every study", {**base, "ModalitiesInStudy": self.modality}))
        return out

    def keep(self, study: StudyRef, pseudonym_of: Callable[[str], str]) -> bool:
        """Whether a study found by a pseudonym or date search is one asked for."""
        return not self.pseudonyms or pseudonym_of(study.patient_id) in set(self.pseudonyms)


def check_dates(text: str) -> str:
    """``text`` when it is a DICOM date range (``20240101-20241231``, ``20240101-``, ``-20241231`` or one day)."""
    match = _DATE.match(text)
    if not match or not (match.group(1) or match.group(2)):
        raise InputError(None, f"--dates {text!r}: give YYYYMMDD-YYYYMMDD (either end may be left open)")
    for day in filter(None, match.groups()):
        try:
            _dt.datetime.strptime(day, "%Y%m%d")
        except ValueError:
            raise InputError(None, f"--dates {text!r}: {day} is not a date") from None
    if match.group(1) and match.group(2) and match.group(1) > match.group(2):
        raise InputError(None, f"--dates {text!r}: the range ends before it starts")
    return text


def read_pseudonyms(path: str | Path) -> list[str]:
    """The pseudonyms a ``--patients`` file lists: one per line, or a CSV column ``pseudonym`` (``patient_id``
    also taken); each must look like a pseudonym (:data:`~sarcomri.cohort.manifest.PATIENT_ID_RE`)."""
    import csv

    from sarcomri.cohort.manifest import PATIENT_ID_RE

    path = Path(path)
    try:
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(path, f"cannot read the pseudonym list ({type(err).__name__})") from None
    if lines and "," in lines[0]:
        rows = list(csv.DictReader(lines))
        column = next((c for c in ("pseudonym", "patient_id") if c in (rows[0] if rows else {})), None)
        if column is None:
            raise InputError(path, "a CSV pseudonym list needs a 'pseudonym' (or 'patient_id') column")
        lines = [str(r[column]).strip() for r in rows if str(r[column] or "").strip()]
    elif lines and lines[0].lower() in ("pseudonym", "patient_id"):
        lines = lines[1:]
    if not lines:
        raise InputError(path, "lists no pseudonym")
    bad = [k + 1 for k, p in enumerate(lines) if not PATIENT_ID_RE.match(p)]
    if bad:
        raise InputError(path, f"entry {bad[0]} is not a pseudonym (letters, digits, '-', '_', '.')")
    return list(dict.fromkeys(lines))
