"""DICOM export: MR series read back with SimpleITK (GDCM), DICOM-SEG read back with highdicom, and the round
trip through ``sarcomri ingest``."""

from __future__ import annotations

import warnings
from collections import defaultdict

import highdicom as hd
import numpy as np
import pandas as pd
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.uid import MRImageStorage

from sarcomri.synth.acquisition import Protocol
from sarcomri.synth.cohort import synthesise_cohort
from sarcomri.synth.dicom import rescale, write_dicom

SMALL = Protocol(fov_mm=240.0, size=40, slices=8)
SEQS = ["T2axi", "T2sag", "DWI_b0", "DWI_b1000", "ADC", "fsT1CEcor"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("dcm")
    cohort = synthesise_cohort(root / "cohort", "sarcoma", 2, seed=8, sequences=SEQS, protocol=SMALL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        report = write_dicom(cohort, root / "dicom")
    return cohort, report


def _series(folder):
    by_uid = defaultdict(list)
    for f in sorted(folder.rglob("*.dcm")):
        ds = pydicom.dcmread(f, stop_before_pixels=True)
        by_uid[ds.SeriesInstanceUID].append((f, ds))
    return by_uid


def test_files_are_mr_image_storage_with_the_pseudonym(exported):
    cohort, report = exported
    pid = cohort.patient_ids[0]
    for items in _series(report.root / pid).values():
        ds = items[0][1]
        assert ds.PatientID == pid
        if ds.Modality == "SEG":
            continue
        assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
        assert {d.SOPClassUID for _, d in items} == {MRImageStorage} and ds.Modality == "MR"
        assert len({d.SOPInstanceUID for _, d in items}) == len(items)
        assert ds.SeriesDescription in {"T2axi", "T2sag", "DWI", "ADC", "fsT1CEcor"}
    labels = pd.read_csv(report.root / "labels.csv")
    assert list(labels.patient_id) == cohort.patient_ids and "label" in labels and "center" in labels


def test_series_read_back_with_gdcm_match_geometry_and_intensities(exported):
    cohort, report = exported
    for pid in cohort.patient_ids:
        for uid, items in _series(report.root / pid).items():
            ds = items[0][1]
            if ds.Modality != "MR":
                continue
            folder = items[0][0].parent
            files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), uid)
            groups = defaultdict(list)
            for f in files:
                d = pydicom.dcmread(f, stop_before_pixels=True)
                groups[f"DWI_b{int(d.DiffusionBValue)}" if ds.SeriesDescription == "DWI" else d.SeriesDescription] \
                    .append(f)
            if ds.SeriesDescription == "DWI":
                assert set(groups) == {"DWI_b0", "DWI_b1000"}  # one series holds both b-values
            for seq, fs in groups.items():
                reader = sitk.ImageSeriesReader()
                reader.SetFileNames(fs)
                back, src = reader.Execute(), cohort.read_image(pid, seq)
                assert back.GetSize() == src.GetSize()
                np.testing.assert_allclose(back.GetOrigin(), src.GetOrigin(), atol=1e-3)
                np.testing.assert_allclose(back.GetSpacing(), src.GetSpacing(), atol=1e-4)
                np.testing.assert_allclose(back.GetDirection(), src.GetDirection(), atol=1e-5)
                slope = float(pydicom.dcmread(fs[0], stop_before_pixels=True).RescaleSlope)
                diff = np.abs(sitk.GetArrayFromImage(back) - sitk.GetArrayFromImage(src)).max()
                assert diff <= slope / 2 * 1.001 + 1e-4, seq


def test_segmentations_read_back_with_highdicom(exported):
    cohort, report = exported
    pid = cohort.patient_ids[1]
    series = _series(report.root / pid)
    segs = [(f, ds) for items in series.values() for f, ds in items if ds.Modality == "SEG"]
    images = [items for items in series.values() if items[0][1].Modality == "MR"]
    assert len(segs) == len(images) >= 4  # one SEG per image series (DWI: one for both b-values)
    for f, _ in segs:
        seg = hd.seg.segread(f)
        ref_uid = seg.ReferencedSeriesSequence[0].SeriesInstanceUID
        images = sorted(series[ref_uid], key=lambda item: int(item[1].InstanceNumber))
        name = images[0][1].SeriesDescription
        seq = "DWI_b0" if name == "DWI" else name
        n = cohort.read_mask(pid, seq).GetSize()[2]
        uids = [ds.SOPInstanceUID for _, ds in images[:n]]
        pixels = seg.get_pixels_by_source_instance(source_sop_instance_uids=uids, segment_numbers=[1])
        expected = sitk.GetArrayFromImage(cohort.read_mask(pid, seq))
        assert np.array_equal(pixels[..., 0] > 0, expected > 0), seq
        assert expected.any()


def test_uids_are_deterministic_from_the_seed(exported, tmp_path):
    cohort, report = exported
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        again = write_dicom(cohort, tmp_path / "again")
    uids = sorted(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID for f in report.root.rglob("*.dcm"))
    uids2 = sorted(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID for f in again.root.rglob("*.dcm"))
    assert uids == uids2
    cohort.meta["provenance"]["seed"] = 9
    try:
        other = write_dicom(cohort.subset(cohort.patient_ids[:1]), tmp_path / "other")
    finally:
        cohort.meta["provenance"]["seed"] = 8
    uids3 = {pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID for f in other.root.rglob("*.dcm")}
    assert not uids3 & set(uids)


def test_rescale_keeps_values_within_half_a_step():
    a = np.random.default_rng(0).uniform(0, 1234.5, (3, 5, 7)).astype(np.float32)
    stored, slope = rescale(a)
    assert stored.dtype == np.uint16 and np.abs(stored * slope - a).max() <= slope / 2 * 1.001
    adc = np.array([0.0, 812.0, 3999.0])
    assert rescale(adc, integer=True)[1] == 1.0


def test_round_trip_through_ingest(exported, tmp_path):
    from sarcomri.io.deid import Pseudonymizer
    from sarcomri.io.ingest import ingest
    from sarcomri.io.labels import read_labels

    cohort, report = exported
    identity = Pseudonymizer(mapping={p: p for p in cohort.patient_ids}, method="identity")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ingest(report.root, tmp_path / "back", labels=read_labels(report.root / "labels.csv"),
               pseudonymizer=identity, compute_adc=False)
    from sarcomri.cohort.manifest import Cohort

    back = Cohort.load(tmp_path / "back")
    assert set(back.patient_ids) == set(cohort.patient_ids)
    pd.testing.assert_series_equal(back.patients.set_index("patient_id")["label"].sort_index(),
                                   cohort.patients.set_index("patient_id")["label"].sort_index())
    src_pairs = set(zip(cohort.series.patient_id, cohort.series.sequence, strict=True))
    assert set(zip(back.series.patient_id, back.series.sequence, strict=True)) == src_pairs
    for pid, seq in src_pairs:
        a, b = cohort.read_image(pid, seq), back.read_image(pid, seq)
        np.testing.assert_allclose(b.GetOrigin(), a.GetOrigin(), atol=1e-3)
        np.testing.assert_allclose(b.GetDirection(), a.GetDirection(), atol=1e-5)
        step = rescale(sitk.GetArrayFromImage(a), seq == "ADC")[1]
        assert np.abs(sitk.GetArrayFromImage(a) - sitk.GetArrayFromImage(b)).max() <= step / 2 * 1.001 + 1e-4
        assert np.array_equal(sitk.GetArrayFromImage(back.read_mask(pid, seq)) > 0,
                              sitk.GetArrayFromImage(cohort.read_mask(pid, seq)) > 0), (pid, seq)
