"""The round trip with a real Orthanc: `sarcomri predict` pulls a patient's study from the PACS (DICOMweb, and
DIMSE C-GET), predicts, and pushes the DICOM-SEG and the DICOM SR back (STOW-RS, C-STORE); read back from Orthanc,
the SR's values equal result.json and the SEG equals the mask. Re-identified only on request, with the key that
made the pseudonym, from the PACS's own record; a wrong key sends nothing.

The classification run is the tiny ONNX run of tests/test_predict.py; the segmentation model is stood in for by
the patient's own T2axi mask (the 3D models are tested in tests/seg3d), so the SEG pushed is that mask's."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
import requests
import SimpleITK as sitk
from typer.testing import CliRunner

import sarcomri.predict as predict_lib
from sarcomri.cli.main import app
from sarcomri.io.deid import Pseudonymizer
from sarcomri.io.dicomseg import load_series, seg_to_mask
from sarcomri.io.dicomsr import read_prediction_sr
from sarcomri.pacs.address import parse_address
from sarcomri.pacs.dicomweb import DicomWebPacs

from .conftest import start_orthanc

KEY = "hospital-key"


def _tiny_run(root: Path, cohort: Path) -> Path:
    spec = importlib.util.spec_from_file_location("tiny_predict", Path(__file__).parents[1] / "test_predict.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_run(root, cohort, sequences=("T2axi",))


@pytest.fixture
def pacs(hospital, tmp_path):
    """A fresh Orthanc per test (the pushes change it) holding the hospital's studies."""
    server = start_orthanc(tmp_path / "orthanc-data")
    try:
        server.instances = server.upload(hospital.dicom)
        yield server
    finally:
        server.stop()


@pytest.fixture
def stand_in_segmentation(monkeypatch):
    monkeypatch.setattr(predict_lib, "segment_patient", lambda run, cohort, pid: ("T2axi",
                                                                                   cohort.read_mask(pid, "T2axi")))


def _predict(source: str, uid: str, run: Path, out: Path, push: str, *extra: str):
    return CliRunner().invoke(app, ["predict", source, "--study", uid, "--model", str(run), "--segmentation-model",
                                    str(run), "--deid-key", KEY, "-o", str(out), "--no-gradcam", "--push", push,
                                    "--retries", "2", *extra, "--json"])


def _objects_in(server, study_uid: str, modality: str) -> list[pydicom.Dataset]:
    """The instances of ``modality`` in the study, as Orthanc gives them back over WADO-RS."""
    web = DicomWebPacs(parse_address(server.dicomweb))
    found = []
    for series in web.find_series(study_uid):
        if series.modality == modality:
            web.retrieve(study_uid, series.series_uid, None, found.append)
    return found


@pytest.mark.parametrize("protocol", ["dicomweb", "dimse"])
def test_pull_predict_push_and_read_back(pacs, hospital, tmp_path, stand_in_segmentation, protocol):
    patient = hospital.patients[0]
    address = pacs.dicomweb if protocol == "dicomweb" else pacs.dimse
    run = _tiny_run(tmp_path, hospital.root / "synthetic")
    res = _predict(address, patient.study_uid, run, tmp_path / "out", address, "--reidentify", "--summary-image")
    assert res.exit_code == 0, res.output + repr(res.exception)
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    summaries = _objects_in(pacs, patient.study_uid, "OT")
    assert len(summaries) == 1 and summaries[0].PatientID == patient.mrn
    assert np.array_equal(summaries[0].pixel_array, pydicom.dcmread(tmp_path / "out" / "summary.sc.dcm").pixel_array)
    assert result["patient_id"] == Pseudonymizer.from_key(KEY)(patient.mrn)
    assert set(result["outputs"]) >= {"dicom_seg", "dicom_sr", "dicom_summary", "mask"}
    srs, segs = _objects_in(pacs, patient.study_uid, "SR"), _objects_in(pacs, patient.study_uid, "SEG")
    mine = [s for s in segs if s.SOPInstanceUID == pydicom.dcmread(tmp_path / "out" / "mask.seg.dcm").SOPInstanceUID]
    assert len(srs) == 1 and len(mine) == 1
    sr, seg = srs[0], mine[0]
    for ds in (sr, seg):  # re-identified from the PACS's record: filed in the patient's own study
        assert (ds.PatientID, str(ds.PatientName), ds.AccessionNumber) == (patient.mrn, "Doe0^Jane^Q",
                                                                           patient.accession)
    back = read_prediction_sr(sr)
    assert [(s["sequence"], s["vote"]) for s in back["sequences"]] == [(s["sequence"], s["vote"])
                                                                        for s in result["sequences"]]
    assert back["sequences"][0]["likelihood"] == pytest.approx(result["sequences"][0]["likelihood"], rel=1e-12)
    assert (back["summed_score"], back["threshold"], back["decision"].lower()) == (
        result["summed_score"], result["threshold"], result["decision"])
    assert back["segment"] == str(seg.SOPInstanceUID) and back["tumour"]["volume_ml"] > 0
    path = tmp_path / "seg.dcm"
    seg.save_as(path)
    t2 = next((hospital.dicom / patient.synthetic_id).glob("*T2axi"))
    got, _ = seg_to_mask(path, load_series(t2).image)
    want = sitk.ReadImage(str(tmp_path / "out" / "mask.nii.gz"))
    assert np.array_equal(sitk.GetArrayFromImage(got) > 0, sitk.GetArrayFromImage(want) > 0)
    for name in ("mask.seg.dcm", "report.sr.dcm"):  # the result folder keeps the pseudonym
        assert pydicom.dcmread(tmp_path / "out" / name).PatientID == result["patient_id"]


def test_without_reidentification_the_push_is_pseudonymous(pacs, hospital, tmp_path, stand_in_segmentation):
    patient = hospital.patients[1]
    run = _tiny_run(tmp_path, hospital.root / "synthetic")
    res = _predict(pacs.dicomweb, patient.study_uid, run, tmp_path / "out", pacs.dicomweb)
    assert res.exit_code == 0, res.output + repr(res.exception)
    pseudonym = Pseudonymizer.from_key(KEY)(patient.mrn)
    stored = requests.post(f"{pacs.base}/tools/find", json={"Level": "Instance", "Query": {
        "PatientID": pseudonym}, "Expand": True}, timeout=30).json()
    assert len(stored) == 2 and all(i["MainDicomTags"]["SOPInstanceUID"] for i in stored)
    names = {requests.get(f"{pacs.base}/instances/{i['ID']}/simplified-tags", timeout=30).json()["PatientName"]
             for i in stored}
    assert names == {pseudonym}


def test_a_wrong_key_sends_nothing(pacs, hospital, tmp_path, stand_in_segmentation):
    from sarcomri.pacs.push import push_result
    from sarcomri.pacs.retry import Backoff, PacsError

    patient = hospital.patients[2]
    run = _tiny_run(tmp_path, hospital.root / "synthetic")
    res = _predict(pacs.dicomweb, patient.study_uid, run, tmp_path / "out", pacs.dicomweb, "--reidentify")
    assert res.exit_code == 0, res.output + repr(res.exception)
    count = requests.get(f"{pacs.base}/statistics", timeout=30).json()["CountInstances"]
    assert count == pacs.instances + 2
    with pytest.raises(PacsError, match="nothing was sent"):
        push_result(tmp_path / "out", DicomWebPacs(parse_address(pacs.dicomweb)), Pseudonymizer.from_key("another"),
                    Backoff(attempts=1))
    assert requests.get(f"{pacs.base}/statistics", timeout=30).json()["CountInstances"] == count
