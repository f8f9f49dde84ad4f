"""De-identification at ingestion: no patient-identifying value leaves this stage.

Patients are renamed by a **pseudonym** before anything is written or printed:

* a keyed hash: ``P`` + the first 10 hex digits of HMAC-SHA256(key, PatientID). The same key gives the
  same pseudonyms on every run (so a cohort can be extended later); the key comes from ``--deid-key`` or
  the environment variable ``SARCOMRI_DEID_KEY``. Without a key a random one is drawn and the
  pseudonyms cannot be reproduced (the caller warns).
* or a user mapping CSV with columns ``original_id,pseudonym``.

Header values that identify a patient (PatientName, PatientID, PatientBirthDate, AccessionNumber,
OtherPatientIDs, ...) are collected per study so that any free text taken from a header and shown or
stored (series descriptions, ROI and segment names) can be scrubbed of them with :func:`scrub`.
Dates, UIDs and institution names are never copied into a cohort.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pydicom

from sarcomri.cohort.manifest import PATIENT_ID_RE
from sarcomri.errors import InputError

KEY_ENV = "SARCOMRI_DEID_KEY"
PSEUDONYM_HEX = 10
#: Header keywords whose values identify a patient; they never appear in a cohort or in console output.
IDENTIFYING_KEYWORDS = (
    "PatientName", "PatientID", "PatientBirthDate", "AccessionNumber", "OtherPatientIDs",
    "OtherPatientNames", "PatientBirthName", "PatientMotherBirthName", "PatientAddress",
    "PatientTelephoneNumbers", "MedicalRecordLocator", "IssuerOfPatientID",
)
#: Column names of a labels file that look like direct identifiers (compared without case, '_' or ' ').
_IDENTIFIER_COLUMNS = {
    "name", "patientname", "firstname", "lastname", "surname", "birthdate", "dateofbirth", "dob",
    "patientbirthdate", "accession", "accessionnumber", "mrn", "medicalrecordnumber", "address",
    "phone", "telephone", "email", "ssn", "nhsnumber",
}
_MIN_SCRUB_LEN = 3  # shorter values ('M', '1') would scrub ordinary words


@dataclass
class Pseudonymizer:
    """Turns source patient identifiers into pseudonyms, by keyed hash or by a user mapping."""

    key: bytes | None = None
    mapping: dict[str, str] | None = None
    method: str = "hmac-sha256"
    reproducible: bool = True
    source: str | None = None
    _seen: dict[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_key(cls, key: str | None) -> Pseudonymizer:
        """Keyed-hash pseudonyms with ``key``, else ``$SARCOMRI_DEID_KEY``, else a random key."""
        key = key or os.environ.get(KEY_ENV) or None
        if key is None:
            return cls(key=secrets.token_bytes(32), method="hmac-sha256 (random key)", reproducible=False)
        return cls(key=key.encode("utf-8"))

    @classmethod
    def from_mapping(cls, path: str | Path) -> Pseudonymizer:
        """Pseudonyms from a CSV with columns ``original_id,pseudonym``."""
        return cls(mapping=read_mapping(path), method="mapping file", source=Path(path).name)

    def __call__(self, original_id: str, where: str | None = None) -> str:
        """The pseudonym of ``original_id``; raises when a mapping lacks it or two ids collide.

        ``where`` says where the patient was found (a file path) for the error message, which never
        repeats the identifier itself.
        """
        original_id = str(original_id).strip()
        if self.mapping is not None:
            if original_id not in self.mapping:
                found = f" (the patient of {where})" if where else ""
                raise InputError(self.source, f"a patient of the source{found} has no row in the pseudonym "
                                 "mapping; add its PatientID or folder name as original_id")
            pseudonym = self.mapping[original_id]
        else:
            assert self.key is not None
            digest = hmac.new(self.key, original_id.encode("utf-8"), hashlib.sha256).hexdigest()
            pseudonym = "P" + digest[:PSEUDONYM_HEX]
        other = self._seen.setdefault(pseudonym, original_id)
        if other != original_id:
            raise InputError(self.source, f"two patients share the pseudonym {pseudonym}")
        return pseudonym

    def provenance(self) -> dict[str, object]:
        """What cohort.json records about the pseudonyms (never the key)."""
        return {"method": self.method, "reproducible": self.reproducible,
                **({"mapping_file": self.source} if self.source else {})}


def read_mapping(path: str | Path) -> dict[str, str]:
    """Read and check a pseudonym mapping CSV (``original_id,pseudonym``; both unique)."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
            header = rows[0].keys() if rows else []
    except OSError as exc:
        raise InputError(path, f"cannot read the pseudonym mapping: {exc.strerror}") from None
    if not rows or "original_id" not in header or "pseudonym" not in header:
        raise InputError(path, "a pseudonym mapping needs the columns original_id,pseudonym and one row per patient")
    mapping: dict[str, str] = {}
    used: set[str] = set()
    for i, row in enumerate(rows, start=2):
        orig, pseudo = (row.get("original_id") or "").strip(), (row.get("pseudonym") or "").strip()
        if not orig:
            raise InputError(path, f"row {i}: empty original_id")
        if not PATIENT_ID_RE.match(pseudo):
            raise InputError(path, f"row {i}: pseudonym {pseudo!r} must be 1-64 letters, digits, '_', '.', '-'")
        if orig in mapping:
            raise InputError(path, f"row {i}: original_id appears twice")
        if pseudo in used:
            raise InputError(path, f"row {i}: pseudonym {pseudo!r} appears twice")
        mapping[orig] = pseudo
        used.add(pseudo)
    return mapping


def identifiers_of(ds: pydicom.Dataset) -> set[str]:
    """The identifying values of a header (names also split into their components), as strings."""
    found: set[str] = set()
    for keyword in IDENTIFYING_KEYWORDS:
        value = ds.get(keyword)
        if value is None or value == "":
            continue
        values = value if isinstance(value, list | tuple | pydicom.multival.MultiValue) else [value]
        for v in values:
            text = str(v).strip()
            if not text:
                continue
            found.add(text)
            if "^" in text:  # person names: Family^Given^Middle
                found.update(part.strip() for part in text.split("^") if part.strip())
    return {v for v in found if len(v) >= _MIN_SCRUB_LEN}


def scrub(text: str | None, identifiers: Iterable[str]) -> str:
    """``text`` with every identifying value replaced by ``[removed]`` (case-insensitive)."""
    if not text:
        return ""
    out = str(text)
    for value in sorted(set(identifiers), key=len, reverse=True):
        if len(value) >= _MIN_SCRUB_LEN:
            out = re.sub(re.escape(value), "[removed]", out, flags=re.I)
    return out


def check_clinical_columns(columns: Iterable[str], path: str | Path) -> None:
    """Refuse a labels file whose extra columns look like direct identifiers (name, birth date, MRN...)."""
    for col in columns:
        norm = re.sub(r"[\s_\-]", "", str(col)).lower()
        if norm in _IDENTIFIER_COLUMNS:
            raise InputError(path, f"column {col!r} looks like a direct patient identifier; remove it before "
                             "ingestion (patients.csv of a cohort must not identify anyone)")
