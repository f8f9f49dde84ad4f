"""A patient's results back to the PACS (``sarcomri predict ... --push dicomweb+http://HOST/dicom-web``): the
tumour mask as DICOM-SEG (``mask.seg.dcm``), the classification as a DICOM SR (``report.sr.dcm``) and, when
predict made it, the summary as a secondary capture (``summary.sc.dcm``), stored with STOW-RS or C-STORE. They
reference the source study's UIDs, so a PACS files them in the study.

As written, they name the patient by the pseudonym only. **Re-identification** (``--reidentify``, off by
default) happens only here, inside the hospital's network, only in memory, and only through the pseudonym key the
user holds: the PACS is asked for the study the results reference; its PatientID must hash, under the key, to
the results' pseudonym (otherwise the key is wrong or the study belongs to someone else, and nothing is sent);
then the patient and study attributes of :data:`~sarcomri.pacs.model.STUDY_ATTRIBUTES` are copied from the PACS's
own record into the objects sent. The files in the result folder are never changed.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pydicom

from sarcomri.errors import InputError
from sarcomri.io.deid import Pseudonymizer
from sarcomri.pacs.model import STUDY_ATTRIBUTES, Pacs
from sarcomri.pacs.retry import Backoff, PacsError, with_retries

#: The objects of a result folder that are pushed, in order.
RESULT_OBJECTS = ("mask.seg.dcm", "report.sr.dcm", "summary.sc.dcm")


@dataclass
class PushReport:
    """What was sent: the files, and whether they carried the patient's identity."""

    objects: list[str]
    reidentified: bool


def result_objects(folder: str | Path) -> list[tuple[str, pydicom.Dataset]]:
    """The DICOM objects of a ``sarcomri predict`` result folder; an error when it has none (a NIfTI input)."""
    folder = Path(folder)
    found = [(name, pydicom.dcmread(folder / name)) for name in RESULT_OBJECTS if (folder / name).is_file()]
    if not found:
        raise InputError(folder, "no DICOM result to push (mask.seg.dcm, report.sr.dcm): predict writes them for "
                         "DICOM input")
    studies = {str(ds.StudyInstanceUID) for _, ds in found}
    patients = {str(ds.PatientID) for _, ds in found}
    if len(studies) != 1 or len(patients) != 1:
        raise InputError(folder, "the result's DICOM objects name more than one study or patient")
    return found


def reidentified(datasets: list[pydicom.Dataset], pacs: Pacs, pseudonymizer: Pseudonymizer, backoff: Backoff,
                 sleep: Callable[[float], None] = time.sleep) -> list[pydicom.Dataset]:
    """Copies of ``datasets`` carrying the patient and study attributes of the PACS's record of their study,
    after checking that the record's PatientID hashes to their pseudonym under ``pseudonymizer``."""
    study_uid, pseudonym = str(datasets[0].StudyInstanceUID), str(datasets[0].PatientID)
    record = with_retries(lambda: pacs.study_attributes(study_uid), "the search of the results' study", pacs.where,
                          backoff, sleep)
    if record is None:
        raise PacsError(f"{pacs.where}: the PACS has no study the results reference; nothing was sent")
    patient_id = str(record.get("PatientID", "") or "").strip()
    if not patient_id or pseudonymizer(patient_id) != pseudonym:
        raise PacsError(f"{pacs.where}: the study the results reference belongs to a patient whose pseudonym under "
                        f"this key is not {pseudonym} (another key, or another patient); nothing was sent")
    out = []
    for ds in datasets:
        ds = copy.deepcopy(ds)
        for keyword in STUDY_ATTRIBUTES:
            if keyword in record and record[keyword].value not in (None, ""):
                setattr(ds, keyword, record[keyword].value)
            elif keyword in ds and keyword not in ("PatientID", "PatientName"):
                del ds[keyword]
        out.append(ds)
    return out


def push_result(folder: str | Path, pacs: Pacs, pseudonymizer: Pseudonymizer | None = None,
                backoff: Backoff = Backoff(), sleep: Callable[[float], None] = time.sleep) -> PushReport:
    """Store the result folder's DICOM objects on ``pacs``; re-identified first when ``pseudonymizer`` (the
    user's key) is given (see the module's notes)."""
    found = result_objects(folder)
    datasets = [ds for _, ds in found]
    if pseudonymizer is not None:
        if not pseudonymizer.reproducible:
            raise InputError(None, "re-identification needs the de-identification key the pseudonym was made with "
                             "(--deid-key or $SARCOMRI_DEID_KEY)")
        datasets = reidentified(datasets, pacs, pseudonymizer, backoff, sleep)
    with_retries(lambda: pacs.store(datasets), "storing the results", pacs.where, backoff, sleep)
    return PushReport([name for name, _ in found], pseudonymizer is not None)
