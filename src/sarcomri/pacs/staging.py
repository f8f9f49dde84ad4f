"""The staging folder of a pull: each instance de-identified the moment it arrives, written whole or not at all,
and kept until the cohort is written, so that a pull stopped midway continues where it stopped.

Layout (``<cohort>.pull/`` beside the cohort, readable by its owner only), every name a keyed hash (the
de-identification key), none a UID::

    <root>/dicom/S<hash of StudyInstanceUID>/<hash of SeriesInstanceUID>/<hash of SOPInstanceUID>.dcm
    <root>/records/S<hash>.json      # {"pseudonym", "complete", counts} once every series of the study is in

What an instance keeps (:func:`deidentify`): PatientID and PatientName become the patient's pseudonym (the same
keyed hash as folder ingestion, :class:`~sarcomri.io.deid.Pseudonymizer`); every other value of
:data:`~sarcomri.io.deid.IDENTIFYING_KEYWORDS` and of :data:`STAFF_AND_PLACE` is removed; identifying values are
scrubbed from all remaining text (descriptions, segment and ROI names, in nested sequences too); private
elements are removed except the blocks of :data:`KEPT_PRIVATE_CREATORS` (the vendors' b-values). UIDs and dates
stay: they link a mask to its image and order a patient's studies, and they never reach the cohort (folder
ingestion copies neither).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
from pathlib import Path

import pydicom
from pydicom.dataset import FileMetaDataset

from sarcomri.io.atomic import atomic_path, write_json
from sarcomri.io.deid import IDENTIFYING_KEYWORDS, identifiers_of, scrub
from sarcomri.io.dicomseg import TYPE2_COPIED

#: People and places of a study, removed from staged instances beyond the patient's own identifiers.
STAFF_AND_PLACE = (
    "InstitutionAddress", "InstitutionalDepartmentName", "StationName", "PerformingPhysicianName",
    "OperatorsName", "NameOfPhysiciansReadingStudy", "PhysiciansOfRecord", "RequestingPhysician",
    "ReferringPhysicianAddress", "ReferringPhysicianTelephoneNumbers", "PatientComments", "StudyID",
    "RequestAttributesSequence", "DeviceSerialNumber", "PatientInsurancePlanCodeSequence", "MilitaryRank",
    "BranchOfService", "PatientReligiousPreference", "CountryOfResidence", "RegionOfResidence",
    "AdditionalPatientHistory", "ScheduledPerformingPhysicianName", "PerformedProcedureStepID",
)
#: Private blocks kept (where the vendors put the b-value, :mod:`sarcomri.io.bvalues`).
KEPT_PRIVATE_CREATORS = ("SIEMENS MR HEADER", "GEMS_PARM_01", "Philips Imaging DD 001")
_TEXT_VRS = {"LO", "SH", "LT", "ST", "UT", "PN", "UC"}


def keyed(key: bytes, kind: str, uid: str, n: int = 20) -> str:
    """A name for ``uid`` that does not reveal it: the first ``n`` hex digits of HMAC-SHA256(key, kind:uid)."""
    return hmac.new(key, f"{kind}:{uid}".encode(), hashlib.sha256).hexdigest()[:n]


def deidentify(ds: pydicom.Dataset, pseudonym: str) -> pydicom.Dataset:
    """``ds`` (changed in place and returned) with its patient renamed ``pseudonym`` and every identifying value
    removed or scrubbed (see the module's notes)."""
    found = identifiers_of(ds)
    for keyword in (*IDENTIFYING_KEYWORDS, *STAFF_AND_PLACE):
        if keyword in ds:
            del ds[keyword]
    for keyword in TYPE2_COPIED:  # Type 2 attributes stay, empty (DICOM PS3.15's action Z)
        if keyword not in ds:
            setattr(ds, keyword, "")
    ds.PatientID = pseudonym
    ds.PatientName = pseudonym
    _clean(ds, found)
    return ds


def _clean(ds: pydicom.Dataset, found: set[str]) -> None:
    """Remove private elements outside the kept blocks, and scrub ``found`` from text, recursively."""
    kept_blocks = set()
    for elem in ds:
        if elem.tag.is_private_creator and str(elem.value).strip() in KEPT_PRIVATE_CREATORS:
            kept_blocks.add((elem.tag.group, elem.tag.element))
    for elem in list(ds):
        tag = elem.tag
        if tag.is_private:
            block = (tag.group, tag.element >> 8) if not tag.is_private_creator else (tag.group, tag.element)
            if block not in kept_blocks:
                del ds[tag]
            continue
        if elem.VR == "SQ":
            for item in elem.value:
                _clean(item, found)
        elif elem.VR in _TEXT_VRS and elem.value not in (None, ""):
            if elem.VM > 1:
                elem.value = [scrub(str(v), found) for v in elem.value]
            else:
                elem.value = scrub(str(elem.value), found)


class Staging:
    """The staging folder ``root`` of a pull, its names keyed by ``key``."""

    def __init__(self, root: str | Path, key: bytes):
        self.root = Path(root)
        self.key = key

    def create(self) -> None:
        """Make the folder, readable by its owner only."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)

    @property
    def dicom(self) -> Path:
        """The folder of the staged instances (what folder ingestion reads)."""
        return self.root / "dicom"

    def study_dir(self, study_uid: str) -> Path:
        return self.dicom / f"S{keyed(self.key, 'study', study_uid, 16)}"

    def _record(self, study_uid: str) -> Path:
        return self.root / "records" / f"{self.study_dir(study_uid).name}.json"

    def instance_path(self, study_uid: str, series_uid: str, sop_uid: str) -> Path:
        return (self.study_dir(study_uid) / keyed(self.key, "series", series_uid, 16)
                / f"{keyed(self.key, 'sop', sop_uid)}.dcm")

    def has(self, study_uid: str, series_uid: str, sop_uid: str) -> bool:
        return self.instance_path(study_uid, series_uid, sop_uid).is_file()

    def write(self, ds: pydicom.Dataset, pseudonym: str) -> Path:
        """De-identify ``ds`` and write it whole (to a temporary name, then renamed); returns its path."""
        study, series, sop = (str(ds.get(k, "")) for k in ("StudyInstanceUID", "SeriesInstanceUID",
                                                            "SOPInstanceUID"))
        if not (study and series and sop):
            raise ValueError("an instance without its study, series or SOP instance UID")
        path = self.instance_path(study, series, sop)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        deidentify(ds, pseudonym)
        if not getattr(ds, "file_meta", None):
            ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        if "TransferSyntaxUID" not in ds.file_meta:
            ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
        with atomic_path(path, overwrite=True) as tmp:
            ds.save_as(tmp, enforce_file_format=True)
        return path

    def completed(self, study_uid: str) -> dict | None:
        """The record of a study staged whole (pseudonym, series and instance counts), else None."""
        record = self._record(study_uid)
        if not record.is_file() or not self.study_dir(study_uid).is_dir():
            return None
        data = _read_record(record)
        return data if data.get("complete") is True else None

    def mark_complete(self, study_uid: str, pseudonym: str, series: int, instances: int) -> None:
        write_json(self._record(study_uid), {"pseudonym": pseudonym, "complete": True, "series": series,
                                             "instances": instances}, overwrite=True)

    def keep_only(self, study_uids: list[str]) -> int:
        """Remove the staged studies not among ``study_uids`` (an earlier pull's, with another query); returns
        how many were removed."""
        wanted = {self.study_dir(uid).name for uid in study_uids}
        removed = 0
        for folder in (self.dicom.iterdir() if self.dicom.is_dir() else []):
            if folder.is_dir() and folder.name not in wanted:
                shutil.rmtree(folder)
                (self.root / "records" / f"{folder.name}.json").unlink(missing_ok=True)
                removed += 1
        return removed

    def pseudonyms(self) -> list[str]:
        """The pseudonyms of the complete studies staged."""
        out = set()
        for record in (self.root / "records").glob("S*.json"):
            data = _read_record(record)
            if data.get("complete") and (self.dicom / record.stem).is_dir():
                out.add(data["pseudonym"])
        return sorted(out)


#: A study record's fields and their types (:meth:`Staging.mark_complete`).
_RECORD_FIELDS = {"pseudonym": str, "complete": bool, "series": int, "instances": int}


def _read_record(path: Path) -> dict:
    """A study record's content; {} for one that cannot be read or lacks a field (damaged on disk): its study then
    counts as not staged whole, so the pull fetches what it lacks (staged instances are kept) and writes the
    record again."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    ok = isinstance(data, dict) and all(type(data.get(k)) is t for k, t in _RECORD_FIELDS.items())
    return data if ok else {}
