"""What a PACS holds, as the pull sees it, and the interface both protocols implement (:class:`Pacs`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import pydicom

#: The query keywords a pull may filter studies on (QIDO-RS parameters and C-FIND keys alike).
STUDY_FILTERS = ("StudyInstanceUID", "AccessionNumber", "StudyDate", "ModalitiesInStudy", "PatientID")

Sink = Callable[[pydicom.Dataset], None]
#: The patient and study attributes a result pushed back into its study copies from the PACS (re-identification).
STUDY_ATTRIBUTES = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "IssuerOfPatientID",
                    "OtherPatientIDs", "AccessionNumber", "StudyDate", "StudyTime", "StudyID",
                    "ReferringPhysicianName", "StudyDescription")


def check_filters(filters: dict[str, str]) -> None:
    """Refuse a study search on a keyword outside :data:`STUDY_FILTERS`."""
    unknown = set(filters) - set(STUDY_FILTERS)
    if unknown:
        raise ValueError(f"not a study filter: {sorted(unknown)}")


def _text(ds: pydicom.Dataset, keyword: str) -> str:
    return str(ds.get(keyword, "") or "").strip()


def _number(ds: pydicom.Dataset, keyword: str) -> int | None:
    value = ds.get(keyword)
    return int(value) if value not in (None, "") else None


@dataclass(frozen=True)
class StudyRef:
    """A study found on a PACS (identifiers kept in memory only, to pseudonymise and to ask for the study)."""

    study_uid: str
    patient_id: str
    study_date: str = ""

    @classmethod
    def of(cls, ds: pydicom.Dataset) -> StudyRef:
        """The study a search result (a QIDO-RS item or a C-FIND identifier) describes."""
        return cls(_text(ds, "StudyInstanceUID"), _text(ds, "PatientID"), _text(ds, "StudyDate"))


@dataclass(frozen=True)
class SeriesRef:
    """A series of a study: its number and modality, and how many instances the PACS says it holds (None when
    it does not say)."""

    series_uid: str
    number: int | None
    modality: str
    instances: int | None

    @classmethod
    def of(cls, ds: pydicom.Dataset) -> SeriesRef:
        """The series a search result (a QIDO-RS item or a C-FIND identifier) describes."""
        return cls(_text(ds, "SeriesInstanceUID"), _number(ds, "SeriesNumber"), _text(ds, "Modality"),
                   _number(ds, "NumberOfSeriesRelatedInstances"))


class Pacs(Protocol):
    """A PACS the pull talks to. Every method raises :class:`~sarcomri.pacs.retry.TransientError` for what
    another try may cure and :class:`~sarcomri.pacs.retry.PacsError` for what it cannot."""

    where: str  # the address, for messages

    def find_studies(self, filters: dict[str, str]) -> list[StudyRef]:
        """The studies matching ``filters`` (keywords of :data:`STUDY_FILTERS`, DICOM matching rules)."""
        ...

    def find_series(self, study_uid: str) -> list[SeriesRef]:
        """The series of a study."""
        ...

    def find_instances(self, study_uid: str, series_uid: str) -> list[str]:
        """The SOPInstanceUIDs of a series."""
        ...

    def retrieve(self, study_uid: str, series_uid: str, sop_uids: list[str] | None, sink: Sink) -> None:
        """Send each instance of the series (only ``sop_uids`` when given) to ``sink`` as it arrives."""
        ...

    def study_attributes(self, study_uid: str) -> pydicom.Dataset | None:
        """The study's patient and study attributes (:data:`STUDY_ATTRIBUTES`), None when the PACS has no such
        study."""
        ...

    def store(self, datasets: list[pydicom.Dataset]) -> None:
        """Store ``datasets`` on the PACS (STOW-RS or C-STORE)."""
        ...
