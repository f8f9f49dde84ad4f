"""NIfTI ingestion: the sts-t1 layout (real IBSI data) and the SRC/<patient>/<sequence>.nii.gz layout."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from sarcomri.cohort.manifest import Cohort
from sarcomri.errors import InputError
from sarcomri.io.deid import Pseudonymizer
from sarcomri.io.ingest import ingest
from sarcomri.io.labels import read_labels


def _image(array, spacing=(0.5, 0.5, 3.0), origin=(1.0, 2.0, 3.0)):
    img = sitk.GetImageFromArray(np.asarray(array))
    img.SetSpacing(spacing)
    img.SetOrigin(origin)
    return img


def test_sts_t1_layout_with_labels_and_mapping(shared_data, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    chosen = ("STS_001", "STS_002", "STS_004")
    for name in chosen:
        (src / name).symlink_to(shared_data / "sts-t1" / name, target_is_directory=True)
    mapping = tmp_path / "map.csv"
    mapping.write_text("original_id,pseudonym\nSTS_001,sts-a\nSTS_002,sts-b\nSTS_004,sts-c\n")
    labels_csv = tmp_path / "labels.csv"
    labels_csv.write_text("patient_id,label,site\nSTS_001,sarcoma,thigh\nSTS_002,sarcoma,arm\nSTS_004,sarcoma,\n")
    report = ingest(src, tmp_path / "out", sequence="T1", labels=read_labels(labels_csv),
                    pseudonymizer=Pseudonymizer.from_mapping(mapping))
    cohort = Cohort.load(tmp_path / "out")
    assert report.source_type == "nifti" and report.masks == 3
    assert cohort.patient_ids == ["sts-a", "sts-b", "sts-c"] and cohort.sequences == ["T1"]
    assert cohort.patients["site"].tolist()[:2] == ["thigh", "arm"]
    for name, pid in zip(chosen, cohort.patient_ids, strict=True):
        for ours, ref in ((cohort.read_image(pid, "T1"), sitk.ReadImage(str(src / name / "image.nii.gz"))),
                          (cohort.read_mask(pid, "T1"), sitk.ReadImage(str(src / name / "mask.nii.gz")))):
            assert ours.GetSize() == ref.GetSize() and ours.GetSpacing() == ref.GetSpacing()
            assert ours.GetOrigin() == ref.GetOrigin() and ours.GetDirection() == ref.GetDirection()
            assert np.array_equal(sitk.GetArrayFromImage(ours), sitk.GetArrayFromImage(ref))
    assert cohort.meta["provenance"]["pseudonyms"] == {"method": "mapping file", "reproducible": True,
                                                       "mapping_file": "map.csv"}


def test_sequence_layout_masks_and_adc(tmp_path):
    src = tmp_path / "src" / "case7"
    src.mkdir(parents=True)
    t2 = _image(np.arange(60, dtype=np.float32).reshape(3, 4, 5))
    sitk.WriteImage(t2, str(src / "T2axi.nii.gz"))
    mask = np.zeros((3, 4, 5), np.uint8)
    mask[1, 1:3, 1:4] = 1
    mask[2, 0, 0] = 2
    m = _image(mask)
    sitk.WriteImage(m, str(src / "T2axi_mask.nii.gz"))
    for b in (0, 600):
        sitk.WriteImage(_image(np.full((3, 4, 5), 800 * np.exp(-b * 1.5e-3), np.float32)), str(src / f"DWI_b{b}.nii"))
    (src / "notes.txt").write_text("skipped")
    report = ingest(tmp_path / "src", tmp_path / "out", pseudonymizer=Pseudonymizer.from_key("k"))
    cohort = Cohort.load(tmp_path / "out")
    pid = Pseudonymizer.from_key("k")("case7")
    assert cohort.patient_ids == [pid]
    assert set(cohort.sequences) == {"T2axi", "DWI_b0", "DWI_b600", "ADC"}
    assert np.array_equal(sitk.GetArrayFromImage(cohort.read_mask(pid, "T2axi")), mask)
    np.testing.assert_allclose(sitk.GetArrayFromImage(cohort.read_image(pid, "ADC")), 1500.0, rtol=1e-5)
    assert cohort.meta["mask_labels"][0]["labels"] == [{"label": 1, "name": ""}, {"label": 2, "name": ""}]
    assert "1 file(s) outside the layout" in report.notes[0]


def test_image_nii_needs_a_sequence_name(tmp_path):
    (tmp_path / "src" / "p1").mkdir(parents=True)
    sitk.WriteImage(_image(np.zeros((2, 2, 2), np.float32)), str(tmp_path / "src" / "p1" / "image.nii.gz"))
    with pytest.raises(InputError, match="needs --sequence"):
        ingest(tmp_path / "src", tmp_path / "out", pseudonymizer=Pseudonymizer.from_key("k"))
    assert not (tmp_path / "out").exists()
