"""Bad input ends with one message naming the file and the problem, exit code 1, and no cohort on disk."""

from __future__ import annotations

import shutil
import sys

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from sarcomri.cli.main import main
from sarcomri.errors import InputError, SarcomriError, ValidationError
from sarcomri.io.deid import Pseudonymizer
from sarcomri.io.ingest import ingest
from sarcomri.io.labels import read_labels


def _fails(tmp_path, src, problem, **kwargs):
    """Ingest ``src`` expecting a SarcomriError matching ``problem``; check that nothing was left on disk."""
    out = tmp_path / "cohort"
    kwargs.setdefault("pseudonymizer", Pseudonymizer.from_key("k"))
    with pytest.raises(SarcomriError, match=problem) as err:
        ingest(src, out, **kwargs)
    assert not out.exists()
    assert not list(tmp_path.glob(".cohort*")), "a partial cohort was left behind"
    return err.value


def test_empty_folder(tmp_path):
    (tmp_path / "src").mkdir()
    _fails(tmp_path, tmp_path / "src", "no DICOM or NIfTI files found")
    (tmp_path / "src" / "notes.txt").write_text("hello")
    _fails(tmp_path, tmp_path / "src", r"no DICOM or NIfTI files found \(only 1 other files\)")


def test_corrupt_dicom(tmp_path, make_series):
    paths = make_series(tmp_path / "src", 3)
    data = bytearray(paths[1].read_bytes())
    data[132:200] = b"\xff" * 68  # garbage where the file meta group should be
    paths[1].write_bytes(bytes(data))
    err = _fails(tmp_path, tmp_path / "src", "corrupt DICOM file")
    assert err.path == f"<source>/{paths[1].name}"  # named relative to the source root


def test_truncated_dicom(tmp_path, make_series):
    paths = make_series(tmp_path / "src", 3, rows=64, columns=64)
    paths[2].write_bytes(paths[2].read_bytes()[:-3000])
    err = _fails(tmp_path, tmp_path / "src", "truncated")
    assert err.path == f"<source>/{paths[2].name}"


def test_truncated_real_file(tmp_path, shared_data):
    src = tmp_path / "src"
    shutil.copytree(shared_data / "dicom" / "sts-001-t1" / "image", src)
    victim = sorted(src.iterdir())[10]
    victim.chmod(0o644)
    victim.write_bytes(victim.read_bytes()[:30000])
    err = _fails(tmp_path, src, "truncated")
    assert err.path == f"<source>/{victim.name}"


def test_missing_pixel_data(tmp_path, make_series):
    paths = make_series(tmp_path / "src", 3)
    ds = pydicom.dcmread(paths[0])
    del ds.PixelData
    ds.save_as(paths[0])
    err = _fails(tmp_path, tmp_path / "src", "missing pixel data")
    assert err.path == f"<source>/{paths[0].name}"


@pytest.mark.parametrize("kwargs, problem", [
    ({"iop": (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)}, "mixed orientations"),
    ({"pixel_spacing": (0.5, 0.5)}, "PixelSpacing"),
    ({"rows": 10}, "image size"),
    ({"origin": (-10.0, -20.0, 30.0 + 7 * 2.5)}, "non-uniform slice spacing"),
])
def test_mixed_geometry_in_one_series(tmp_path, make_series, kwargs, problem):
    make_series(tmp_path / "src" / "a", 4, series_uid="1.2.3.4")
    make_series(tmp_path / "src" / "b", 1, series_uid="1.2.3.4", **kwargs)
    err = _fails(tmp_path, tmp_path / "src", problem)
    assert "series 1 ('T2axi')" in str(err)


def test_rtstruct_on_another_grid(tmp_path, shared_data):
    """The real STS_001 image shifted by half a slice: its RTSTRUCT contours fall between slices."""
    src = tmp_path / "src"
    shutil.copytree(shared_data / "dicom" / "sts-001-t1", src)
    for path in (src / "image").iterdir():
        path.chmod(0o644)
        ds = pydicom.dcmread(path)
        ds.ImagePositionPatient = [ds.ImagePositionPatient[0], ds.ImagePositionPatient[1],
                                   float(ds.ImagePositionPatient[2]) + 1.6]
        ds.save_as(path)
    err = _fails(tmp_path, src, "different grids")
    assert err.path == "<source>/\u2026/RS.dcm"  # the folder name hidden


def test_seg_on_another_grid(tmp_path, shared_data):
    """The real QIN ADC with a coarser pixel spacing: its DICOM-SEG no longer fits the image grid."""
    src = tmp_path / "src"
    shutil.copytree(shared_data / "dicom" / "qin-prostate-001", src)
    for path in (src / "ADC").iterdir():
        path.chmod(0o644)
        ds = pydicom.dcmread(path)
        ds.PixelSpacing = [1.4062, 1.4062]
        ds.save_as(path)
    err = _fails(tmp_path, src, "different grids")
    assert err.path.endswith("1-1.dcm")


def _nifti(path, array, spacing=(1.0, 1.0, 1.0)):
    path.parent.mkdir(parents=True, exist_ok=True)
    img = sitk.GetImageFromArray(np.asarray(array))
    img.SetSpacing(spacing)
    sitk.WriteImage(img, str(path))


def test_nifti_mask_on_another_grid(tmp_path):
    _nifti(tmp_path / "src" / "p1" / "T2axi.nii.gz", np.ones((3, 4, 5), np.float32))
    _nifti(tmp_path / "src" / "p1" / "T2axi_mask.nii.gz", np.ones((3, 4, 5), np.uint8), spacing=(1.0, 1.0, 2.0))
    err = _fails(tmp_path, tmp_path / "src", "different grid")
    assert "T2axi_mask.nii.gz" in str(err)


def test_nan_intensities(tmp_path):
    arr = np.ones((3, 4, 5), np.float32)
    arr[1, 2, 3] = np.nan
    _nifti(tmp_path / "src" / "p1" / "T2axi.nii.gz", arr)
    err = _fails(tmp_path, tmp_path / "src", "1 voxels are NaN or infinite")
    assert err.path.endswith("T2axi.nii.gz")


def test_label_outside_the_allowed_set(tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text("patient_id,label\nA,sarcoma\nB,leiomyoma\nC,carcinosarcoma\n")
    with pytest.raises(ValidationError, match=r"labels.csv, row 4, field 'label': label 'carcinosarcoma' is not one"):
        read_labels(labels, allowed=["leiomyoma", "sarcoma"])
    with pytest.raises(InputError, match="positive label 'malignant'"):
        read_labels(labels, positive="malignant")


def test_patient_without_a_label_row(tmp_path, make_series):
    make_series(tmp_path / "src" / "a", patient_id="SRC-A")
    labels = tmp_path / "labels.csv"
    labels.write_text("patient_id,label\nSRC-B,sarcoma\n")
    err = _fails(tmp_path, tmp_path / "src", "no row for the patient of <source>/\u2026/im1-0-000.dcm",
                 labels=read_labels(labels))
    assert "SRC-A" not in str(err)


def test_dicom_and_nifti_mixed(tmp_path, make_series):
    make_series(tmp_path / "src" / "a")
    _nifti(tmp_path / "src" / "p1" / "T2axi.nii.gz", np.ones((2, 2, 2), np.float32))
    _fails(tmp_path, tmp_path / "src", "both DICOM")


def test_cli_prints_one_line_and_exits_1(tmp_path, make_series, monkeypatch, capsys):
    paths = make_series(tmp_path / "src", 3, rows=64, columns=64)
    paths[0].write_bytes(paths[0].read_bytes()[:-100])
    monkeypatch.setattr(sys, "argv", ["sarcomri", "ingest", str(tmp_path / "src"), "--out", str(tmp_path / "c"),
                                      "--deid-key", "k"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "truncated" in err and paths[0].name in err
    assert "Traceback" not in err and not (tmp_path / "c").exists()
