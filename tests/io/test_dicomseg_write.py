"""Writing DICOM-SEG (sarcomri.io.dicomseg.write_dicom_seg) and reading it back through our own reading and
ingestion: the same mask comes back, and the SEG names nobody the source does not already name."""

from __future__ import annotations

import shutil

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from sarcomri.cohort.manifest import Cohort, CohortWriter
from sarcomri.errors import InputError
from sarcomri.io.deid import IDENTIFYING_KEYWORDS, Pseudonymizer, identifiers_of
from sarcomri.io.dicomseg import load_series, seg_to_mask, write_dicom_seg
from sarcomri.io.images import same_grid
from sarcomri.io.ingest import ingest


def _blob(shape=(10, 24, 20), spacing=(1.1, 0.9, 3.0)) -> tuple[sitk.Image, sitk.Image]:
    rng = np.random.default_rng(4)
    z, y, x = np.indices(shape)
    mask = (((z - 5) / 3) ** 2 + ((y - 11) / 6) ** 2 + ((x - 9) / 5) ** 2 <= 1).astype(np.uint8)
    image = sitk.GetImageFromArray((rng.normal(300, 20, shape) + 200 * mask).astype(np.float32))
    image.SetSpacing(spacing)
    image.SetOrigin((-12.0, 30.5, 7.0))
    m = sitk.GetImageFromArray(mask)
    m.CopyInformation(image)
    return image, m


@pytest.fixture(scope="module")
def synthetic_dicom(tmp_path_factory):
    """One patient's T1 written by sarcomri.synth.dicom.write_dicom (with its own SEG), and the source mask."""
    from sarcomri.synth.dicom import write_dicom

    root = tmp_path_factory.mktemp("segw")
    image, mask = _blob()
    with CohortWriter(root / "cohort", labels=["sarcoma"]) as w:
        w.add_patient("SYN001", "sarcoma")
        w.add_series("SYN001", "T1axi", image, mask)
    write_dicom(Cohort.load(root / "cohort"), root / "dicom")
    return root / "dicom" / "SYN001" / "01_T1axi", mask


def test_round_trip_through_seg_to_mask(synthetic_dicom, tmp_path):
    folder, mask = synthetic_dicom
    source = load_series(folder)
    assert same_grid(source.image, mask) and len(source.datasets) == mask.GetSize()[2]
    on_series = sitk.Image(mask)
    on_series.CopyInformation(source.image)
    out = write_dicom_seg(on_series, folder, tmp_path / "seg.dcm")
    back, table = seg_to_mask(out, source.image)
    assert np.array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(mask))
    assert table[0]["label"] == 1 and table[0]["name"] == "tumour" and table[0]["property"] == "Neoplasm"
    ds = pydicom.dcmread(out)
    assert ds.Modality == "SEG" and ds.SegmentationType == "BINARY"
    assert ds.ReferencedSeriesSequence[0].SeriesInstanceUID == source.series_uid
    assert ds.StudyInstanceUID == source.datasets[0].StudyInstanceUID
    assert ds.FrameOfReferenceUID == source.datasets[0].FrameOfReferenceUID
    assert int(ds.NumberOfFrames) == len(source.datasets)  # empty slices keep their frames
    # an array in slice order, and the headers given in any order, give the same object content
    shuffled = list(reversed(source.datasets))
    out2 = write_dicom_seg(sitk.GetArrayFromImage(mask), shuffled, tmp_path / "seg2.dcm")
    back2, _ = seg_to_mask(out2, source.image)
    assert np.array_equal(sitk.GetArrayFromImage(back2), sitk.GetArrayFromImage(mask))


def test_several_labels_and_an_empty_mask(synthetic_dicom, tmp_path):
    folder, mask = synthetic_dicom
    source = load_series(folder)
    labels = sitk.GetArrayFromImage(mask).astype(np.uint8)
    labels[:, :, :4][labels[:, :, :4] == 1] = 2
    labels[0, 0, 0] = 2
    out = write_dicom_seg(labels, source, tmp_path / "two.dcm", segments={1: "tumour", 2: "oedema"})
    back, table = seg_to_mask(out, source.image)
    assert np.array_equal(sitk.GetArrayFromImage(back), labels)
    assert [(r["label"], r["name"]) for r in table] == [(1, "tumour"), (2, "oedema")]
    empty = np.zeros_like(labels)
    back, table = seg_to_mask(write_dicom_seg(empty, source, tmp_path / "empty.dcm"), source.image)
    assert sitk.GetArrayFromImage(back).sum() == 0 and table[0]["voxels"] == 0
    with pytest.raises(InputError, match="no segment names"):
        write_dicom_seg(labels, source, tmp_path / "x.dcm", segments={1: "tumour"})
    # without segments every non-zero voxel is the tumour
    back, _ = seg_to_mask(write_dicom_seg(labels, source, tmp_path / "any.dcm"), source.image)
    assert np.array_equal(sitk.GetArrayFromImage(back), (labels > 0).astype(np.uint8))
    with pytest.raises(InputError, match="1..n"):
        write_dicom_seg(labels, source, tmp_path / "x.dcm", segments={1: "a", 3: "b"})
    assert not (tmp_path / "x.dcm").exists()


def test_a_mask_on_another_grid_is_refused(synthetic_dicom, tmp_path):
    folder, mask = synthetic_dicom
    source = load_series(folder)
    shifted = sitk.Image(mask)
    shifted.SetOrigin(tuple(np.asarray(mask.GetOrigin()) + (0.0, 0.0, 1.5)))
    with pytest.raises(InputError, match="not on the grid"):
        write_dicom_seg(shifted, source, tmp_path / "x.dcm")
    flipped = sitk.Flip(mask, (True, False, False))
    with pytest.raises(InputError, match="not on the grid"):
        write_dicom_seg(flipped, source, tmp_path / "x.dcm")
    with pytest.raises(InputError, match="shape"):
        write_dicom_seg(np.zeros((3, 4, 5), np.uint8), source, tmp_path / "x.dcm")


def test_oblique_series_and_no_new_identifiers(make_series, tmp_path):
    c, s = np.cos(0.4), np.sin(0.4)
    iop = (c, s, 0.0, 0.0, 0.0, -1.0)  # an oblique coronal-ish plane
    make_series(tmp_path / "src", n_slices=5, rows=9, columns=7, iop=iop, description="T1cor")
    source = load_series(tmp_path / "src")
    arr = np.zeros((5, 9, 7), np.uint8)
    arr[1:4, 2:6, 3:5] = 1
    mask = sitk.GetImageFromArray(arr)
    mask.CopyInformation(source.image)
    out = write_dicom_seg(mask, source, tmp_path / "seg.dcm")
    back, _ = seg_to_mask(out, source.image)
    assert np.array_equal(sitk.GetArrayFromImage(back), arr)
    seg = pydicom.dcmread(out)
    src = pydicom.dcmread(source.datasets[0].filename, stop_before_pixels=True)
    assert identifiers_of(seg) <= identifiers_of(src)
    for keyword in IDENTIFYING_KEYWORDS:  # nothing identifying that the source did not hold
        if keyword in seg and str(seg.get(keyword) or ""):
            assert str(seg.get(keyword)) == str(src.get(keyword)), keyword


def test_ingestion_reads_our_seg_as_the_mask(synthetic_dicom, tmp_path):
    folder, mask = synthetic_dicom
    study = tmp_path / "study" / "SYN001"
    shutil.copytree(folder, study / "01_T1axi")
    source = load_series(study / "01_T1axi")
    labels = sitk.GetArrayFromImage(mask)
    write_dicom_seg(labels, source, study / "02_SEG" / "pred.dcm")
    report = ingest(tmp_path / "study", tmp_path / "cohort", pseudonymizer=Pseudonymizer.from_key("test-key"))
    assert report.masks == 1
    cohort = Cohort.load(tmp_path / "cohort")
    (pid,) = cohort.patient_ids
    (sequence,) = cohort.sequences
    got = cohort.read_mask(pid, sequence)
    assert same_grid(got, mask)
    assert np.array_equal(sitk.GetArrayFromImage(got), labels)


def test_real_sts_001(shared_data, tmp_path):
    folder = shared_data / "dicom" / "sts-001-t1" / "image"
    nifti = shared_data / "sts-t1" / "STS_001" / "mask.nii.gz"
    if not folder.is_dir() or not nifti.is_file():
        pytest.skip(f"{folder} or {nifti} not found")
    source = load_series(folder)
    mask = sitk.ReadImage(str(nifti))
    assert same_grid(source.image, mask)
    mask.CopyInformation(source.image)
    out = write_dicom_seg(mask, source, tmp_path / "sts001_seg.dcm")
    back, table = seg_to_mask(out, source.image)
    assert np.array_equal(sitk.GetArrayFromImage(back) > 0, sitk.GetArrayFromImage(mask) > 0)
    assert table[0]["voxels"] == int((sitk.GetArrayFromImage(mask) > 0).sum())
