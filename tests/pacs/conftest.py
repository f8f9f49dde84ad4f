"""A real Orthanc PACS for the pull and push tests: Debian's ``orthanc`` with its DICOMweb plugin
(``orthanc-dicomweb``; ``.ci/run`` installs both) started on free ports in a temporary folder, loaded with a small
synthetic hospital: patients written as DICOM (with their SEG masks) carrying the identifying values a real
hospital's headers hold (names, birth dates, accession numbers, the institution). Tests that need it skip with the
reason only when Orthanc cannot start here."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pydicom
import pytest


@pytest.fixture(scope="session")
def hospital(tmp_path_factory):
    """A synthetic hospital's DICOM: 4 patients (T2axi with its SEG, DWI b0/b1000), each study with a patient
    name, birth date, accession number, study date and institution; ``identifiers`` lists every identifying
    value written, ``patients`` each patient's (PatientID, accession, study date, StudyInstanceUID, label)."""
    from sarcomri.cohort.manifest import Cohort
    from sarcomri.synth.acquisition import Protocol
    from sarcomri.synth.cohort import synthesise_cohort
    from sarcomri.synth.dicom import write_dicom

    root = tmp_path_factory.mktemp("hospital")
    cohort = synthesise_cohort(root / "synthetic", task="sarcoma", n_patients=4, seed=11,
                               sequences=["T2axi", "DWI_b0", "DWI_b1000"], protocol=Protocol(size=40, slices=6))
    write_dicom(Cohort.load(cohort.root), root / "dicom")
    identifiers, patients = set(), []
    labels = cohort.labels_binary()
    for k, pid in enumerate(cohort.patient_ids):
        mrn, accession, day = f"MRN{73100 + k}", f"ACC{9100 + k}", f"202301{10 + k:02d}"
        name = f"Doe{k}^Jane^Q"
        identifiers |= {mrn, accession, f"Doe{k}", "19600101", "Saint Example Hospital", "Who^Doctor", pid}
        study_uid = ""
        for path in sorted((root / "dicom" / pid).rglob("*.dcm")):
            ds = pydicom.dcmread(path)
            ds.PatientID, ds.PatientName, ds.PatientBirthDate = mrn, name, "19600101"
            ds.AccessionNumber, ds.StudyDate, ds.InstitutionName = accession, day, "Saint Example Hospital"
            ds.ReferringPhysicianName = "Who^Doctor"
            ds.SeriesDescription = f"{ds.get('SeriesDescription', '')} {mrn}".strip()  # an MRN in free text
            ds.save_as(path)
            study_uid = str(ds.StudyInstanceUID)
        patients.append(SimpleNamespace(mrn=mrn, accession=accession, date=day, study_uid=study_uid,
                                        label="sarcoma" if labels[pid] else "leiomyoma", synthetic_id=pid))
    (root / "labels.csv").write_text("patient_id,label\n" + "".join(f"{p.mrn},{p.label}\n" for p in patients))
    return SimpleNamespace(dicom=root / "dicom", labels=root / "labels.csv", patients=patients,
                           identifiers=identifiers, root=root)


def start_orthanc(folder: Path):
    """A running Orthanc (:func:`sarcomri.pacs.orthanc.start_orthanc`); the test skips when it cannot run here."""
    from sarcomri.pacs.orthanc import OrthancUnavailable
    from sarcomri.pacs.orthanc import start_orthanc as start

    try:
        return start(folder)
    except OrthancUnavailable as err:
        pytest.skip(str(err))


@pytest.fixture(scope="module")
def orthanc(hospital):
    """A running Orthanc holding the synthetic hospital's studies (module-wide: tests must not change it)."""
    folder = Path(tempfile.mkdtemp(prefix="sarcomri-orthanc-"))
    server = start_orthanc(folder)
    try:
        server.instances = server.upload(hospital.dicom)
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
