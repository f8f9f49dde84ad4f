"""Acceptance on real DICOM: ProstateX-0000 (Siemens mpMRI), STS_001 (T1 + RTSTRUCT), QIN-PROSTATE-001 (ADC + SEG).

The three studies are ingested together once, through the command line with ``--compute-adc``; the tests
then check naming, b-value splitting, geometry, masks against the IBSI reference NIfTI and against the
SEG frames read independently with pydicom, ADC agreement with the scanner, and de-identification.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from sarcomri.cli.main import app
from sarcomri.cohort.manifest import Cohort
from sarcomri.io.dicom import walk_files

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ingested(shared_data, tmp_path_factory):
    """(cohort, stdout, stderr, source folder) of one CLI ingestion of the three real DICOM studies."""
    root = tmp_path_factory.mktemp("dicom_ingest")
    src = root / "src"
    src.mkdir()
    for name in ("prostatex-0000", "sts-001-t1", "qin-prostate-001"):
        (src / name).symlink_to(shared_data / "dicom" / name, target_is_directory=True)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        app(["ingest", str(src), "--out", str(root / "cohort"), "--compute-adc", "--deid-key", "test-key"],
            standalone_mode=False)
    return Cohort.load(root / "cohort"), out.getvalue(), err.getvalue(), src


def _patient_with(cohort: Cohort, sequence: str) -> str:
    hits = cohort.series.loc[cohort.series["sequence"] == sequence, "patient_id"].tolist()
    assert len(hits) == 1, f"{sequence}: {hits}"
    return hits[0]


def test_prostatex_sequences_planes_and_b_values(ingested):
    cohort, stdout, _, _ = ingested
    pid = _patient_with(cohort, "T2sag")
    names = set(cohort.series.loc[cohort.series["patient_id"] == pid, "sequence"])
    assert names == {"T2axi", "T2sag", "T2cor", "DWI_b50", "DWI_b400", "DWI_b800", "ADC", "ADC_computed", "DWI_b1000"}
    # the plane suffix agrees with the written image's slice normal (x: sag, y: cor, z: axi)
    for seq, axis in (("T2sag", 0), ("T2cor", 1), ("T2axi", 2)):
        normal = np.array(cohort.read_image(pid, seq).GetDirection()).reshape(3, 3)[:, 2]
        assert int(np.argmax(np.abs(normal))) == axis, seq
    # diffusion signal decays with b inside the prostate region: mean over the brightest b50 voxels
    b50 = sitk.GetArrayFromImage(cohort.read_image(pid, "DWI_b50")).astype(float)
    body = b50 > np.percentile(b50, 90)
    means = [sitk.GetArrayFromImage(cohort.read_image(pid, f"DWI_b{b}"))[body].mean() for b in (50, 400, 800)]
    assert means[0] > means[1] > means[2]
    aside = [u for u in cohort.meta["unmapped_series"] if u["patient_id"] == pid]
    assert [(u["series_number"], u["files"]) for u in aside] == [(9, 16)]
    assert "localizer" in aside[0]["reason"]
    assert "1 series kept aside" in stdout and pid in stdout  # the CLI lists it
    computed = cohort.meta["computed_series"]
    assert [(c["patient_id"], c["sequence"]) for c in computed] == [(pid, "DWI_b1000")]
    assert cohort.meta["units"] == {"ADC": "1e-6 mm2/s", "ADC_computed": "1e-6 mm2/s"}


def test_computed_adc_agrees_with_scanner(ingested):
    cohort, _, _, _ = ingested
    pid = _patient_with(cohort, "ADC_computed")
    scanner = sitk.GetArrayFromImage(cohort.read_image(pid, "ADC")).astype(float)
    ours = sitk.GetArrayFromImage(cohort.read_image(pid, "ADC_computed")).astype(float)
    b50_image = cohort.read_image(pid, "DWI_b50")
    b50 = sitk.GetArrayFromImage(b50_image).astype(float)
    otsu = sitk.OtsuThresholdImageFilter()
    otsu.Execute(sitk.Cast(b50_image, sitk.sitkFloat32))
    figures = {}
    # body 1: b50 signal above its Otsu threshold; body 2: above the fit's noise floor (0.1 x p99 of b50);
    # both restricted to voxels the scanner fitted (ADC > 0), where a relative difference is defined
    for name, body in (("b50 > Otsu", b50 > otsu.GetThreshold()),
                       ("b50 > 0.1 x p99", b50 > 0.1 * np.percentile(b50, 99))):
        sel = body & (scanner > 0)
        rel = np.abs(ours[sel] - scanner[sel]) / scanner[sel]
        figures[name] = (float(np.median(rel)), int(sel.sum()))
    print("median |ADC_computed - ADC_scanner| / ADC_scanner:",
          ", ".join(f"{k}: {v[0]:.4f} over {v[1]} voxels" for k, v in figures.items()))
    assert all(v[0] < 0.10 and v[1] > 1000 for v in figures.values())


def test_sts_t1_and_rtstruct_match_the_ibsi_nifti(ingested, shared_data):
    cohort, _, _, _ = ingested
    pid = _patient_with(cohort, "T1axi")
    ref_img = sitk.ReadImage(str(shared_data / "sts-t1" / "STS_001" / "image.nii.gz"))
    ref_mask = sitk.ReadImage(str(shared_data / "sts-t1" / "STS_001" / "mask.nii.gz"))
    image, mask = cohort.read_image(pid, "T1axi"), cohort.read_mask(pid, "T1axi")
    for ours in (image, mask):
        assert ours.GetSize() == ref_img.GetSize()
        np.testing.assert_allclose(ours.GetOrigin(), ref_img.GetOrigin(), atol=1e-4)
        np.testing.assert_allclose(ours.GetSpacing(), ref_img.GetSpacing(), atol=1e-5)
        np.testing.assert_allclose(ours.GetDirection(), ref_img.GetDirection(), atol=1e-6)
    assert np.array_equal(sitk.GetArrayFromImage(image).astype(np.float32), sitk.GetArrayFromImage(ref_img))
    a, b = sitk.GetArrayFromImage(mask) > 0, sitk.GetArrayFromImage(ref_mask) > 0
    dice = 2 * np.logical_and(a, b).sum() / (a.sum() + b.sum())
    assert dice == 1.0 and np.array_equal(a, b) and a.sum() == 117145
    (entry,) = [m for m in cohort.meta["mask_labels"] if m["patient_id"] == pid]
    assert entry["source"] == "RTSTRUCT" and [r["name"] for r in entry["labels"]] == ["GTV_Mass_MR_T1"]


def test_qin_seg_gives_four_labels_on_the_adc_grid(ingested, shared_data):
    cohort, _, _, _ = ingested
    (pid,) = [m["patient_id"] for m in cohort.meta["mask_labels"] if m["source"] == "DICOM-SEG"]
    image, mask = cohort.read_image(pid, "ADC"), cohort.read_mask(pid, "ADC")
    assert mask.GetSize() == image.GetSize() == (256, 256, 20)
    labels = sitk.GetArrayFromImage(mask)
    assert sorted(np.unique(labels).tolist()) == [0, 1, 2, 3, 4]
    # reference: the SEG frames read with pydicom alone, each placed on the ADC slice it names
    folder = shared_data / "dicom" / "qin-prostate-001"
    adc_slices = [pydicom.dcmread(p, stop_before_pixels=True) for p in sorted((folder / "ADC").iterdir())]
    normal = np.cross(*np.reshape(np.array(adc_slices[0].ImageOrientationPatient, float), (2, 3)))
    adc_slices.sort(key=lambda d: float(np.dot(normal, np.array(d.ImagePositionPatient, float))))
    z_of = {d.SOPInstanceUID: k for k, d in enumerate(adc_slices)}
    seg = pydicom.dcmread(folder / "seg" / "1-1.dcm")
    frames = seg.pixel_array
    expected = {n: np.zeros(labels.shape, bool) for n in (1, 2, 3, 4)}
    for frame, group in zip(frames, seg.PerFrameFunctionalGroupsSequence, strict=True):
        n = int(group.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        uid = group.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        expected[n][z_of[uid]] |= frame.astype(bool)
    (entry,) = [m for m in cohort.meta["mask_labels"] if m["patient_id"] == pid]
    table = {r["label"]: r for r in entry["labels"]}
    assert {r["name"] for r in table.values()} == {"Normal", "Peripheral zone of the prostate", "Lesion", "Prostate"}
    for n, ref in expected.items():
        shown = labels == n
        assert shown.sum() > 0, f"segment {n} is empty"
        assert not np.any(shown & ~ref), f"segment {n} painted outside its frames"
        assert table[n]["voxels"] == ref.sum() and table[n]["voxels_shown"] == shown.sum()
    # the smallest segments are never hidden by larger ones
    assert table[3]["voxels_shown"] == table[3]["voxels"] and table[1]["voxels_shown"] == table[1]["voxels"]


def test_nothing_identifying_is_written_or_printed(ingested):
    cohort, stdout, stderr, src = ingested
    identifiers = set()
    for path in walk_files(src):
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except pydicom.errors.InvalidDicomError:
            continue
        for keyword in ("PatientName", "PatientID", "PatientBirthDate", "AccessionNumber"):
            value = str(ds.get(keyword, "") or "").strip()
            if value:
                identifiers.add(value)
    assert {"ProstateX-0000", "STS_001", "PCAMPMRI-00001", "2037145102504919"} <= identifiers
    texts = {"stdout": stdout, "stderr": stderr}
    for path in cohort.root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            texts[str(path)] = (gzip.decompress(data) if path.suffix == ".gz" else data).decode("latin-1")
    assert len(texts) > 10
    for where, text in texts.items():
        for value in identifiers:
            assert value.lower() not in text.lower(), f"{value!r} found in {where}"
    provenance = json.dumps(cohort.meta["provenance"])
    assert "test-key" not in provenance and str(src) not in provenance
    assert set(cohort.patient_ids) == {p for p in cohort.patient_ids if p.startswith("P") and len(p) == 11}


def test_each_volume_records_its_source_series(ingested):
    """cohort.json names each volume's DICOM series by number and scrubbed description (the patient page lists
    them; the test above proves no identifier is among them)."""
    cohort = ingested[0]
    sources = cohort.meta["series_sources"]
    assert sorted((r["patient_id"], r["sequence"]) for r in sources) == sorted(
        zip(cohort.series["patient_id"], cohort.series["sequence"], strict=True))
    dicom = [r for r in sources if r["source"].startswith("series ")]
    assert dicom and all(" (" in r["source"] for r in dicom)
    assert any(r["source"].startswith("fit over b = ") for r in sources)  # the fitted ADC map
