"""The classification result as a DICOM SR (TID 1500 via highdicom): written over the classified series and the
mask's DICOM-SEG, read back by highdicom's parser value for value; no identifier of the source in it; class names
coded in SNOMED CT where they have a code. And `sarcomri predict` on DICOM input writes it beside result.json."""

from __future__ import annotations

import pydicom
import pytest
import SimpleITK as sitk

from sarcomri.io.dicomsr import SCHEME, class_code, prediction_sr, read_prediction_sr

RESULT = {
    "study": "tiny", "sarcomri_version": "9.9.9", "model_ids": {"T2axi": "models/T2axi@abc123"},
    "sequences": [{"sequence": "T2axi", "likelihood": 0.8125, "vote": 1},
                  {"sequence": "ADC", "likelihood": None, "vote": 0}],
    "summed_score": 1, "threshold": 0.5, "decision": "sarcoma",
}
TUMOUR = {"volume_ml": 12.3, "long_axis_mm": 41.5, "short_axis_mm": 22.0, "through_plane_mm": 30.0}


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    """A synthetic patient's T2axi series (with identifying values in its headers) and a DICOM-SEG of its mask."""
    import numpy as np

    from sarcomri.cohort.manifest import Cohort, CohortWriter
    from sarcomri.io.dicomseg import load_series, write_dicom_seg
    from sarcomri.synth.dicom import write_dicom

    root = tmp_path_factory.mktemp("sr")
    img = sitk.GetImageFromArray(np.random.default_rng(0).normal(100, 10, (5, 24, 24)).astype(np.float32))
    img.SetSpacing((1.0, 1.0, 4.0))
    m = np.zeros((5, 24, 24), np.uint8)
    m[1:4, 6:14, 8:16] = 1
    mask = sitk.GetImageFromArray(m)
    mask.CopyInformation(img)
    with CohortWriter(root / "cohort", labels=["sarcoma"]) as w:
        w.add_patient("PX001", "sarcoma")
        w.add_series("PX001", "T2axi", img, mask)
    write_dicom(Cohort.load(root / "cohort"), root / "dicom")
    folder = next((root / "dicom" / "PX001").glob("*T2axi"))
    for path in folder.glob("*.dcm"):
        ds = pydicom.dcmread(path)
        ds.PatientName, ds.AccessionNumber, ds.PatientID = "Pseudo^Only", "", "Pabc123"
        ds.save_as(path)
    source = load_series(folder)
    seg_path = write_dicom_seg(m, source, root / "mask.seg.dcm")
    return source.datasets, pydicom.dcmread(seg_path)


def test_the_sr_reads_back_value_for_value(series):
    datasets, seg = series
    sr = prediction_sr(RESULT, datasets, seg, TUMOUR)
    back = read_prediction_sr(pydicom.dcmread(_saved(sr)))
    assert back["sequences"] == [{"sequence": "T2axi", "likelihood": 0.8125, "vote": 1},
                                 {"sequence": "ADC", "likelihood": None, "vote": 0}]
    assert (back["summed_score"], back["threshold"], back["decision"]) == (1, 0.5, "Sarcoma")
    assert back["tumour"] == pytest.approx(TUMOUR) and back["segment"] == str(seg.SOPInstanceUID)
    assert (back["study"], back["version"]) == ("tiny", "9.9.9")
    assert sr.StudyInstanceUID == datasets[0].StudyInstanceUID and sr.PatientID == "Pabc123"
    assert sr.Modality == "SR" and sr.CompletionFlag == "COMPLETE"
    referenced = {str(i.ReferencedSOPInstanceUID) for e in sr.CurrentRequestedProcedureEvidenceSequence
                  for s in e.ReferencedSeriesSequence for i in s.ReferencedSOPSequence}
    assert {str(d.SOPInstanceUID) for d in datasets} | {str(seg.SOPInstanceUID)} == referenced


def test_without_a_segmentation_the_sr_has_no_tumour_group(series):
    datasets, _ = series
    back = read_prediction_sr(pydicom.dcmread(_saved(prediction_sr(RESULT, datasets))))
    assert back["tumour"] is None and back["segment"] is None and back["decision"] == "Sarcoma"


def test_class_names_are_coded():
    assert (class_code("sarcoma").value, class_code("sarcoma").scheme_designator) == ("1187396000", "SCT")
    assert class_code("leiomyoma").value == "1162890002" and class_code("carcinosarcoma").scheme_designator == "SCT"
    other = class_code("grade 3")
    assert other.scheme_designator == SCHEME and other.meaning == "grade 3"


def _saved(ds) -> str:
    import tempfile

    path = tempfile.mktemp(suffix=".dcm")
    ds.save_as(path)
    return path


def test_a_multiframe_source_gets_no_seg(tmp_path):
    """Enhanced MR input: predict keeps the mask in NIfTI only (no DICOM-SEG of a multi-frame series yet) instead
    of failing after the prediction."""
    import importlib.util
    from pathlib import Path

    import numpy as np

    import sarcomri.predict as predict_lib
    from sarcomri.predict import source_series

    spec = importlib.util.spec_from_file_location("multiframe_tests", Path(__file__).with_name("test_multiframe.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    src = tmp_path / "emri"
    module.emri_copy(src)
    sequence = next(q for q in ("T1axi", "T1sag", "T1cor", "T1") if source_series(src, q))
    paths = source_series(src, sequence)
    assert len(paths) > 1 and len(set(paths)) == 1  # one file, a path per frame
    ds = pydicom.dcmread(paths[0], stop_before_pixels=True)
    mask = sitk.GetImageFromArray(np.ones((int(ds.NumberOfFrames), int(ds.Rows), int(ds.Columns)), np.uint8))
    assert predict_lib.write_seg_for(mask, predict_lib.source_files(src), sequence, "Pabc", tmp_path / "m.dcm") is None
    assert not (tmp_path / "m.dcm").exists()


def test_the_summary_secondary_capture_holds_the_figure_in_the_study(series, tmp_path):
    """The summary image (the tumour's largest slice outlined, the likelihoods, votes and decision) as a DICOM
    secondary capture in the source's study: the pixels written are the figure's, the text says what the image is."""
    import numpy as np

    from sarcomri.io.dicomsc import write_summary_sc
    from sarcomri.predict_scoring import View
    from sarcomri.report.summary_figure import SIZE, summary_figure, summary_lines

    datasets, _ = series
    result = {**RESULT, "positive_label": "sarcoma",
              "sequences": [{**RESULT["sequences"][0], "tumour": TUMOUR}, RESULT["sequences"][1]]}
    lines = summary_lines(result)
    assert "   T2axi: 0.81 (+1)" in lines and "   ADC: not scored (0)" in lines and "decision: sarcoma" in lines
    assert "tumour: 12.3 mL, 42 x 22 x 30 mm" in lines and "not a diagnosis." in lines
    volume = np.zeros((5, 24, 24))
    volume[:, 4:20, 4:20] = 100
    mask = np.zeros((5, 24, 24), np.uint8)
    mask[2, 8:14, 8:14] = 1
    rgb = summary_figure(result, View("T2axi", volume, mask, (1.0, 1.0, 4.0)))
    assert rgb.shape == (SIZE[1], SIZE[0], 3) and rgb.dtype == np.uint8
    red = (rgb[..., 0] > 200) & (rgb[..., 1] < 100) & (rgb[..., 2] < 100)
    assert red[:, : SIZE[0] // 2].sum() > 50  # the outline, on the image half
    sc = pydicom.dcmread(write_summary_sc(rgb, datasets[0], tmp_path / "summary.sc.dcm"))
    assert np.array_equal(sc.pixel_array, rgb) and sc.PhotometricInterpretation == "RGB"
    assert sc.StudyInstanceUID == datasets[0].StudyInstanceUID and sc.PatientID == "Pabc123"
    assert sc.BurnedInAnnotation == "YES" and sc.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7"
