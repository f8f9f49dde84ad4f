"""The shared real DICOM (a Siemens prostate study with DWI in the Siemens private tag and the scanner's ADC, the
STS_001 T1 series with its RTSTRUCT, a GE ADC map with a four-segment DICOM-SEG) pulled from Orthanc over
DICOMweb: the cohort equals the folder ingestion of the same files under the same key, masks included."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from sarcomri.cohort.manifest import Cohort
from sarcomri.io.deid import Pseudonymizer
from sarcomri.io.ingest import ingest
from sarcomri.pacs.address import parse_address
from sarcomri.pacs.pull import pull_cohort
from sarcomri.pacs.query import StudyQuery
from sarcomri.pacs.retry import Backoff

from .conftest import start_orthanc
from .test_pull import assert_same_cohort

pytestmark = pytest.mark.shared


@pytest.fixture(scope="module")
def real_pacs(shared_data):
    folder = Path(tempfile.mkdtemp(prefix="sarcomri-orthanc-real-"))
    server = start_orthanc(folder)
    try:
        server.instances = server.upload(shared_data / "dicom")
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


def test_real_studies_pulled_equal_their_folder_ingestion(real_pacs, shared_data, tmp_path):
    key = "real-key"
    folder = ingest(shared_data / "dicom", tmp_path / "folder", pseudonymizer=Pseudonymizer.from_key(key))
    pulled, report = pull_cohort(parse_address(real_pacs.dicomweb), StudyQuery(dates="19000101-"),
                                 tmp_path / "pulled", pseudonymizer=Pseudonymizer.from_key(key), progress=False,
                                 backoff=Backoff(attempts=2, first=0.01))
    assert pulled.studies == 3 and pulled.instances == real_pacs.instances
    assert (report.patients, report.volumes, report.masks) == (folder.patients, folder.volumes, folder.masks)
    assert_same_cohort(Cohort.load(tmp_path / "pulled"), Cohort.load(tmp_path / "folder"))
