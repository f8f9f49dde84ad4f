"""Ingestion of small DICOM studies written with pydicom: naming, b-value splitting, ADC naming, aside list."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from sarcomri.cohort.manifest import Cohort
from sarcomri.io.deid import Pseudonymizer
from sarcomri.io.ingest import ingest

SAG = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)
COR = (1.0, 0.0, 0.0, 0.0, 0.0, -1.0)
ADC_TRUE = 1.2e-3  # mm^2/s


def _dwi_values(k, b):
    return np.full((8, 6), np.round(10000.0 * np.exp(-b * ADC_TRUE)))


def _dicomdir(path):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.1.3.10"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.FileSetID = "TEST"
    ds.save_as(path, enforce_file_format=True)


def _run(src, out, **kwargs):
    kwargs.setdefault("pseudonymizer", Pseudonymizer.from_key("k"))
    report = ingest(src, out, **kwargs)
    return report, Cohort.load(out)


def test_canonical_descriptions_name_themselves(tmp_path, make_series):
    src = tmp_path / "src"
    make_series(src / "a", description="T2axi", series_number=1, suffix="")  # file names without .dcm
    make_series(src / "b", description="T2sag", series_number=2, iop=SAG)
    make_series(src / "c", description="fsT1CEaxi", series_number=3)
    make_series(src / "d", description="fsT1CEcor", series_number=4, iop=COR)
    make_series(src / "e", description="DWI", series_number=5, b_values=[0, 800], values=_dwi_values)
    (src / "README.txt").write_text("not a DICOM file")
    _dicomdir(src / "DICOMDIR")
    report, cohort = _run(src, tmp_path / "out")
    assert set(cohort.sequences) == {"T2axi", "T2sag", "fsT1CEaxi", "fsT1CEcor", "DWI_b0", "DWI_b800", "ADC"}
    assert report.notes == ["2 file(s) that are not DICOM images or masks were skipped (other files, DICOMDIR)"]
    # no scanner ADC: the fitted map is named ADC and equals the true ADC inside the body
    pid = cohort.patient_ids[0]
    adc = sitk.GetArrayFromImage(cohort.read_image(pid, "ADC"))
    np.testing.assert_allclose(adc, ADC_TRUE * 1e6, rtol=1e-3)  # 16-bit rounding of the signal
    assert cohort.meta["adc"]["maps"] == [{"patient_id": pid, "sequence": "ADC", "source": "computed",
                                           "fit": "fit over b = [0.0, 800.0]"}]
    assert cohort.patients["label"].tolist() == ["unknown"] and cohort.meta["labels"] == ["unknown"]


@pytest.mark.parametrize("vendor", ["standard", "siemens", "ge", "philips"])
def test_diffusion_split_by_vendor_b_value_tag(tmp_path, make_series, vendor):
    src = tmp_path / "src"
    make_series(src / "dwi", description="ep2d_diff_tra", b_values=[50, 400, 800], b_tag=vendor, values=_dwi_values)
    make_series(src / "adc", description="ep2d_diff_tra_ADC", series_number=2,
                values=lambda k, b: np.full((8, 6), 1200))
    _, cohort = _run(src, tmp_path / "out", compute_adc=False)
    assert set(cohort.sequences) == {"DWI_b50", "DWI_b400", "DWI_b800", "ADC"}
    pid = cohort.patient_ids[0]
    for b in (50, 400, 800):
        arr = sitk.GetArrayFromImage(cohort.read_image(pid, f"DWI_b{b}"))
        assert arr.shape == (4, 8, 6) and np.all(arr == np.round(10000 * np.exp(-b * ADC_TRUE)))


def test_scanner_adc_kept_and_computed_beside_it(tmp_path, make_series):
    src = tmp_path / "src"
    make_series(src / "dwi", description="DWI", b_values=[0, 1000], values=_dwi_values)
    make_series(src / "adc", description="ADC", series_number=2, values=lambda k, b: np.full((8, 6), 1200))
    _, default = _run(src, tmp_path / "default")
    assert "ADC_computed" not in default.sequences
    _, both = _run(src, tmp_path / "both", compute_adc=True)
    assert {"ADC", "ADC_computed"} <= set(both.sequences)
    assert {m["sequence"]: m["source"] for m in both.meta["adc"]["maps"]} == {"ADC": "scanner",
                                                                              "ADC_computed": "computed"}


def test_series_kept_aside_with_reasons(tmp_path, make_series):
    src = tmp_path / "src"
    make_series(src / "a", description="T2 tra first", series_number=1)
    make_series(src / "b", description="t2_tse_tra repeat", series_number=2)
    make_series(src / "c", description="localizer", series_number=3, iop=SAG)
    make_series(src / "d", description="FLAIR Doe", series_number=4)  # part of the patient's name
    make_series(src / "e", description="DWI no b", series_number=5)
    make_series(src / "f", description="ep2d_diff_tra_CALC_BVAL", series_number=6, b_values=[1400])
    make_series(src / "g", description="ep2d_diff_tra", series_number=7, b_values=[50, 1400])
    report, cohort = _run(src, tmp_path / "out", compute_adc=False)
    assert set(cohort.sequences) == {"T2axi", "DWI_b50", "DWI_b1400"}
    reasons = {u["series_number"]: u["reason"] for u in report.unmapped}
    assert set(reasons) == {2, 3, 4, 5, 6}
    assert "already given by series 1" in reasons[2]
    assert "localizer" in reasons[3] and "no rule" in reasons[4] and "without a b-value" in reasons[5]
    assert "DWI_b1400 is already given by series 7" in reasons[6]  # acquired wins over computed
    descriptions = {u["series_number"]: u["description"] for u in cohort.meta["unmapped_series"]}
    assert descriptions[4] == "FLAIR [removed]"
    assert cohort.meta["computed_series"] == []


def test_patients_split_and_labelled(tmp_path, make_series):
    src = tmp_path / "src"
    make_series(src / "p1", patient_id="SRC-A", patient_name="A^A", accession="ACC-A")
    make_series(src / "p2", patient_id="SRC-B", patient_name="B^B", accession="ACC-B")
    labels_csv = tmp_path / "labels.csv"
    labels_csv.write_text("patient_id,label,histology,age\nSRC-A,sarcoma,LMS,054\nSRC-B,leiomyoma,,61\n"
                          "SRC-C,sarcoma,ESS,40\n")
    from sarcomri.io.labels import read_labels

    labels = read_labels(labels_csv, positive="sarcoma")
    report, cohort = _run(src, tmp_path / "out", labels=labels)
    pseudo = Pseudonymizer.from_key("k")
    a, b = pseudo("SRC-A"), pseudo("SRC-B")
    assert cohort.meta["labels"] == ["sarcoma", "leiomyoma"] and cohort.positive_label == "sarcoma"
    assert cohort.labels_binary().to_dict() == {a: 1, b: 0}
    text = (tmp_path / "out" / "patients.csv").read_text()
    assert f"{a},sarcoma,LMS,054" in text  # clinical columns kept as written
    assert "1 row(s) of the labels file match no patient" in report.notes[0]


def test_directional_diffusion_images_give_way_to_the_trace(tmp_path, make_series):
    src = tmp_path / "src"
    paths = make_series(src / "dwi", description="ep2d_diff_tra", b_values=[0, 800, 800, 800], values=_dwi_values)
    for i, path in enumerate(paths):  # b=0 and one of the three b=800 blocks are trace images
        ds = pydicom.dcmread(path)
        ds.ImageType = ["DERIVED", "PRIMARY", "DIFFUSION", "TRACEW" if i < 4 or i >= 12 else "NONE"]
        ds.save_as(path)
    report, cohort = _run(src, tmp_path / "out", compute_adc=False)
    assert set(cohort.sequences) == {"DWI_b0", "DWI_b800"}
    assert [(u["files"], "directional" in u["reason"]) for u in report.unmapped] == [(8, True)]
