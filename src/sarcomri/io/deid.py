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

Source **paths** are identifying too: folders are often named after the patient (``Doe^Jane_MRN0042/``) or
the study date. Messages name a source file with :func:`redact_path` (and errors are rewritten with
:func:`redact_error`): relative to the source root as ``<source>/...``, every folder between the root and
the file shown as ``…`` (or as the patient's pseudonym where a folder is named by the source patient ID),
unless the user asks for ``--verbose``.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pydicom

from sarcomri.cohort.manifest import PATIENT_ID_RE
from sarcomri.errors import InputError, SarcomriError

KEY_ENV = "SARCOMRI_DEID_KEY"
PSEUDONYM_HEX = 10
#: THE list of header keywords whose values identify a patient (directly, or through the people and the place
#: of the study): they never appear in a cohort or in console output (ingestion scrubs their values from free
#: text), and a DICOM object sarcomri writes for a patient holds none of them (``predict``'s DICOM-SEG).
IDENTIFYING_KEYWORDS = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientBirthTime", "AccessionNumber", "OtherPatientIDs",
    "OtherPatientNames", "PatientBirthName", "PatientMotherBirthName", "PatientAddress",
    "PatientTelephoneNumbers", "MedicalRecordLocator", "IssuerOfPatientID", "ReferringPhysicianName",
    "InstitutionName",
)
#: Column names of a labels file that look like direct identifiers (compared without case, '_' or ' ').
_IDENTIFIER_COLUMNS = {
    "name", "patientname", "firstname", "lastname", "surname", "birthdate", "dateofbirth", "dob",
    "patientbirthdate", "accession", "accessionnumber", "mrn", "medicalrecordnumber", "address",
    "phone", "telephone", "email", "ssn", "nhsnumber",
}
_MIN_SCRUB_LEN = 3  # shorter values ('M', '1') would scrub ordinary words
SOURCE_ROOT = "<source>"  # how messages name the root of the source folder
HIDDEN = "\u2026"  # a folder name left out of a message ('…')
HIDDEN_HINT = "folder names are hidden as they may identify a patient; --verbose shows them"
_PATH_END = " \t\n'\",;()[]"  # characters that may end a path quoted in a message


@dataclass
class Pseudonymizer:
    """Turns source patient identifiers into pseudonyms, by keyed hash or by a user mapping."""

    key: bytes | None = None
    mapping: dict[str, str] | None = None
    method: str = "hmac-sha256"
    reproducible: bool = True
    source: str | None = None
    warnings: list[str] = field(default_factory=list)  # for ingestion's warn callback (never an identifier)
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
        """Pseudonyms from a CSV with columns ``original_id,pseudonym``; rows that map an ID to itself are
        accepted with a warning (those patients are not pseudonymised)."""
        mapping = read_mapping(path)
        warnings = []
        rows = [i for i, (orig, pseudo) in enumerate(mapping.items(), start=2) if orig == pseudo]
        if rows:
            shown = ", ".join(map(str, rows[:5])) + (f" and {len(rows) - 5} more" if len(rows) > 5 else "")
            one = len(rows) == 1
            warnings.append(f"{Path(path).name}: {'row' if one else 'rows'} {shown} {'maps' if one else 'map'} an "
                            f"original_id to itself: {'that patient keeps its' if one else 'those patients keep their'}"
                            " source ID, which is then not pseudonymised")
        return cls(mapping=mapping, method="mapping file", source=Path(path).name, warnings=warnings)

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


def redact_path(path: str | Path, root: str | Path, verbose: bool = False,
                pseudonyms: Mapping[str, str] | None = None) -> str:
    """How a message names a file of the source under ``root``: ``<source>/<path relative to root>``.

    Without ``verbose`` every folder between ``root`` and the file (patient, study and series folders, whose
    names often hold a patient's name, ID or a date) becomes ``…``, or the pseudonym where the folder is named
    by a source patient ID of ``pseudonyms`` (source ID -> pseudonym); words of hidden folder names are cut out
    of the file name too. ``root`` itself and paths outside it are returned as given (the user named them).
    """
    rel = _relative(Path(path), Path(root))
    if rel is None or not rel.parts:
        return str(path)
    if verbose:
        return "/".join((SOURCE_ROOT, *rel.parts))
    pseudonyms = pseudonyms or {}
    folders = [pseudonyms.get(part, HIDDEN) for part in rel.parts[:-1]]
    name = rel.name
    for part in rel.parts[:-1]:
        for word in sorted({w for w in re.split(r"[^0-9A-Za-z]+", part) if len(w) >= _MIN_SCRUB_LEN},
                           key=len, reverse=True):
            name = re.sub(re.escape(word), pseudonyms.get(part, HIDDEN), name, flags=re.I)
    name = re.sub(f"{HIDDEN}(?:[^0-9A-Za-z{HIDDEN}]*{HIDDEN})+", HIDDEN, name)  # '…^…_…' -> '…'
    return "/".join((SOURCE_ROOT, *folders, name))


def redact_text(text: str, root: str | Path, verbose: bool = False,
                pseudonyms: Mapping[str, str] | None = None) -> str:
    """``text`` with every path under ``root`` it quotes named by :func:`redact_path` (a quoted path ends
    where the longest existing path ends, so folder names with spaces are caught whole)."""
    prefixes = sorted({str(root).rstrip(os.sep), os.path.abspath(root)}, key=len, reverse=True)
    for prefix in prefixes:
        if not prefix:
            continue
        out, pos = [], 0
        for match in re.finditer(re.escape(prefix + os.sep), text):
            if match.start() < pos:
                continue
            end = _path_end(text, match.start())
            out += [text[pos:match.start()], redact_path(text[match.start():end], root, verbose, pseudonyms)]
            pos = end
        text = "".join(out) + text[pos:]
    return text


def redact_error(err: SarcomriError, root: str | Path, verbose: bool = False,
                 pseudonyms: Mapping[str, str] | None = None) -> SarcomriError:
    """``err`` with the source paths of its path and message named by :func:`redact_path`, and the names of the
    hidden folders cut out of its message; ``err`` itself when nothing changes."""
    if isinstance(err, InputError):
        path = None if err.path is None else redact_path(err.path, root, verbose, pseudonyms)
        problem = _cut_folder_names(redact_text(err.problem, root, verbose, pseudonyms), err.path, root, verbose)
        if path == err.path and problem == err.problem:
            return err
        hidden = not verbose and HIDDEN in f"{path}{problem}" and HIDDEN_HINT not in problem
        return InputError(path, problem + (f" ({HIDDEN_HINT})" if hidden else ""))
    text = redact_text(str(err), root, verbose, pseudonyms)
    if text == str(err):
        return err
    try:
        return type(err)(text)  # the same kind of error (OverwriteError, ...) with the redacted message
    except TypeError:
        return SarcomriError(text)


def _relative(path: Path, root: Path) -> Path | None:
    """``path`` relative to ``root`` (as given, absolute, or with links resolved), None when outside it."""
    for a, b in ((path, root), (Path(os.path.abspath(path)), Path(os.path.abspath(root))),
                 (path.resolve(), root.resolve())):
        try:
            return a.relative_to(b)
        except ValueError:
            continue
    return None


def _path_end(text: str, start: int) -> int:
    """Where the path quoted at ``text[start:]`` ends: the longest existing path, else the first delimiter."""
    ends = [i for i in range(start + 1, len(text)) if text[i] in _PATH_END] + [len(text)]
    return next((e for e in reversed(ends) if os.path.lexists(text[start:e])), ends[0])


def _cut_folder_names(text: str, path: str | None, root: str | Path, verbose: bool) -> str:
    """``text`` without the names of the folders between ``root`` and ``path`` where they appear as parts of
    a path (``Doe^Jane/T2.nii.gz``), unless ``verbose``."""
    rel = None if verbose or path is None else _relative(Path(path), Path(root))
    for part in sorted(rel.parts[:-1] if rel else (), key=len, reverse=True):
        text = re.sub(rf"(?<=[/\\]){re.escape(part)}|{re.escape(part)}(?=[/\\])", HIDDEN, text)
    return text
