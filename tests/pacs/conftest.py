"""A real Orthanc PACS for the pull and push tests: Debian's ``orthanc`` with its DICOMweb plugin
(``orthanc-dicomweb``; ``.ci/run`` installs both) started on free ports in a temporary folder, loaded with a small
synthetic hospital: patients written as DICOM (with their SEG masks) carrying the identifying values a real
hospital's headers hold (names, birth dates, accession numbers, the institution). Tests that need it skip with the
reason only when Orthanc cannot start here."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import pydicom
import pytest
import requests

ORTHANC = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
CALLING_AET = "SARCOMRI"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


def start_orthanc(folder: Path) -> SimpleNamespace:
    """An Orthanc server with its DICOMweb plugin, storage under ``folder``; skips the test when it cannot run."""
    if not Path(ORTHANC).is_file():
        pytest.skip("no Orthanc server (Debian's orthanc package): `apt-get install orthanc orthanc-dicomweb` "
                    "(.ci/run does)")
    if not DICOMWEB_PLUGIN.is_file():
        pytest.skip(f"no Orthanc DICOMweb plugin at {DICOMWEB_PLUGIN}: `apt-get install orthanc-dicomweb`")
    folder.mkdir(parents=True, exist_ok=True)
    http, dicom = free_port(), free_port()
    config = {
        "Name": "sarcomri-test", "StorageDirectory": str(folder / "storage"), "IndexDirectory": str(folder / "index"),
        "HttpPort": http, "DicomPort": dicom, "DicomAet": "ORTHANC", "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False, "Plugins": [str(DICOMWEB_PLUGIN)],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"}, "DicomCheckCalledAet": False, "SaveJobs": False,
        "DicomModalities": {"sarcomri": {"AET": CALLING_AET, "Host": "127.0.0.1", "Port": free_port(),
                                         "AllowGet": True, "AllowMove": True, "AllowFind": True,
                                         "AllowStore": True, "AllowEcho": True}},
        "HttpCompressionEnabled": False,
    }
    import json

    (folder / "orthanc.json").write_text(json.dumps(config))
    log = (folder / "orthanc.log").open("w")
    process = subprocess.Popen([ORTHANC, str(folder / "orthanc.json")], stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{http}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            if requests.get(f"{base}/system", timeout=2).ok:
                return SimpleNamespace(process=process, base=base, dicomweb=f"dicomweb+{base}/dicom-web",
                                       dimse=f"dimse://ORTHANC@127.0.0.1:{dicom}", dicom_port=dicom, folder=folder)
        except requests.RequestException:
            time.sleep(0.2)
    process.kill()
    tail = (folder / "orthanc.log").read_text().strip().splitlines()[-3:]
    pytest.skip(f"Orthanc did not start: {' | '.join(tail)}")


def stop_orthanc(server: SimpleNamespace) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.process.kill()


def upload(server: SimpleNamespace, folder: Path) -> int:
    """POST every DICOM file under ``folder`` to Orthanc; returns how many it took."""
    n = 0
    for path in sorted(folder.rglob("*.dcm")):
        answer = requests.post(f"{server.base}/instances", data=path.read_bytes(), timeout=30)
        answer.raise_for_status()
        n += 1
    return n


@pytest.fixture(scope="module")
def orthanc(hospital):
    """A running Orthanc holding the synthetic hospital's studies (module-wide: tests must not change it)."""
    folder = Path(tempfile.mkdtemp(prefix="sarcomri-orthanc-"))
    server = start_orthanc(folder)
    try:
        server.instances = upload(server, hospital.dicom)
        yield server
    finally:
        stop_orthanc(server)
        shutil.rmtree(folder, ignore_errors=True)
