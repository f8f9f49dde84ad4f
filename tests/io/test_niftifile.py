"""Strict NIfTI reading: a truncated or corrupt file is an InputError naming it, never a partly-zero volume;
and the commands that read masks (`stats seg`, `segment evaluate`) end with exit code 1 and that message."""

from __future__ import annotations

import gzip
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from sarcomri.cli.main import main
from sarcomri.errors import InputError
from sarcomri.io.niftifile import check_nifti_file, read_grid, read_image


def _image(dtype=np.float32, shape=(5, 9, 11), seed: int = 0) -> sitk.Image:
    """Noise (compresses badly, so a cut lands in the voxel data) on an oblique, anisotropic grid."""
    rng = np.random.default_rng(seed)
    arr = (rng.normal(100, 30, shape) if np.issubdtype(dtype, np.floating) else rng.integers(0, 200, shape))
    img = sitk.GetImageFromArray(arr.astype(dtype))
    img.SetSpacing((0.7, 0.8, 3.5))
    img.SetOrigin((-12.5, 40.0, 7.25))
    c, s = np.cos(0.3), np.sin(0.3)
    img.SetDirection((c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0))
    return img


def _write(path: Path, img: sitk.Image | None = None) -> Path:
    sitk.WriteImage(_image() if img is None else img, str(path), useCompression=path.name.endswith(".gz"))
    return path


def _same(a: sitk.Image, b: sitk.Image) -> None:
    assert np.array_equal(sitk.GetArrayFromImage(a), sitk.GetArrayFromImage(b))
    assert a.GetSpacing() == pytest.approx(b.GetSpacing(), abs=1e-6)
    assert a.GetOrigin() == pytest.approx(b.GetOrigin(), abs=1e-5)
    assert a.GetDirection() == pytest.approx(b.GetDirection(), abs=1e-6)


def _refused(path: Path, match: str = "") -> InputError:
    """read_image, read_grid and check_nifti_file all raise an InputError naming ``path``."""
    for reader in (read_image, read_grid, check_nifti_file):
        with pytest.raises(InputError, match=match) as err:
            reader(path)
        assert err.value.path == str(path) and str(path) in str(err.value)
    return err.value


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.float32, np.float64])
@pytest.mark.parametrize("name", ["img.nii.gz", "img.nii"])
def test_intact_files_read_back_equal(tmp_path, dtype, name):
    img = _image(dtype)
    path = _write(tmp_path / name, img)
    _same(read_image(path), img)
    _same(read_image(str(path)), sitk.ReadImage(str(path)))


@pytest.mark.parametrize("name", ["img.nii.gz", "img.nii"])
def test_read_grid_matches_simpleitk(tmp_path, name):
    path = _write(tmp_path / name)
    grid, img = read_grid(path), sitk.ReadImage(str(path))
    assert grid.size == img.GetSize() and grid.components == img.GetNumberOfComponentsPerPixel()
    assert grid.spacing == img.GetSpacing() and grid.origin == img.GetOrigin()
    assert grid.direction == img.GetDirection()
    assert grid.pixel_type == img.GetPixelIDTypeAsString()


@pytest.mark.parametrize("cut", ["1/3", "2/3", "all but the last byte", "all but the last 8 bytes"])
def test_truncated_nii_gz(tmp_path, cut):
    path = _write(tmp_path / "img.nii.gz")
    data = path.read_bytes()
    keep = {"1/3": len(data) // 3, "2/3": 2 * len(data) // 3, "all but the last byte": len(data) - 1,
            "all but the last 8 bytes": len(data) - 8}[cut]
    path.write_bytes(data[:keep])
    assert sitk.GetArrayFromImage(sitk.ReadImage(str(path))).shape == (5, 9, 11)  # what ITK alone would accept
    _refused(path, "truncated|corrupt")


def test_corrupt_bytes_in_the_middle_and_a_wrong_crc(tmp_path):
    path = _write(tmp_path / "img.nii.gz")
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle: middle + 16] = bytes(b ^ 0x5A for b in data[middle: middle + 16])
    path.write_bytes(bytes(data))
    _refused(path, "corrupt|truncated")
    data = bytearray(_write(tmp_path / "crc.nii.gz").read_bytes())
    data[-8] ^= 0xFF  # the stored CRC-32 of intact data
    (tmp_path / "crc.nii.gz").write_bytes(bytes(data))
    _refused(tmp_path / "crc.nii.gz", "corrupt")


def test_truncated_nii(tmp_path):
    path = _write(tmp_path / "img.nii")
    path.write_bytes(path.read_bytes()[: 2 * path.stat().st_size // 3])
    err = _refused(path, "truncated")
    assert "the header needs" in err.problem


def test_empty_missing_and_not_nifti_files(tmp_path):
    (tmp_path / "empty.nii.gz").write_bytes(b"")
    _refused(tmp_path / "empty.nii.gz", "empty")
    _refused(tmp_path / "missing.nii.gz", "missing")
    (tmp_path / "text.nii").write_text("patient_id,label\nP1,sarcoma\n" * 30)
    _refused(tmp_path / "text.nii", "not a NIfTI")
    with gzip.open(tmp_path / "text.nii.gz", "wb") as fh:
        fh.write(b"hello, not an image" * 40)
    _refused(tmp_path / "text.nii.gz", "not a NIfTI")
    (tmp_path / "short.nii").write_bytes(struct.pack("<i", 348) + b"\0" * 100)  # a header cut short
    _refused(tmp_path / "short.nii", "not a NIfTI")


@pytest.mark.parametrize("field, offset, fmt, value, problem", [
    ("datatype", 70, "<h", 999, "data type"),
    ("bitpix", 72, "<h", 12, "data type"),
    ("dim[0]", 40, "<h", 0, "dim"),
    ("dim[0]", 40, "<h", 9, "dim"),
    ("dim[2]", 44, "<h", 0, "dimensions"),
    ("dim[3]", 46, "<h", -4, "dimensions"),
])
def test_corrupt_header_fields(tmp_path, field, offset, fmt, value, problem):
    path = _write(tmp_path / "img.nii")
    data = bytearray(path.read_bytes())
    struct.pack_into(fmt, data, offset, value)
    path.write_bytes(bytes(data))
    _refused(path, problem)
    gz = tmp_path / "img.nii.gz"
    gz.write_bytes(gzip.compress(bytes(data)))
    _refused(gz, problem)


def test_header_claiming_more_voxels_than_the_file_holds(tmp_path):
    path = _write(tmp_path / "img.nii")
    data = bytearray(path.read_bytes())
    struct.pack_into("<h", data, 46, 6)  # dim[3]: 5 slices -> 6
    (tmp_path / "more.nii.gz").write_bytes(gzip.compress(bytes(data)))
    _refused(tmp_path / "more.nii.gz", "truncated")


# ---------------------------------------------------------------- the commands, exit code 1


def _cli(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    """Run the console-script entry point; return its exit code and what it printed on stderr."""
    monkeypatch.setattr(sys, "argv", ["sarcomri", *args])
    with pytest.raises(SystemExit) as done:
        main()
    return done.value.code, capsys.readouterr().err


def _mask(shape=(6, 16, 16)) -> sitk.Image:
    m = np.zeros(shape, np.uint8)
    m[2:5, 4:11, 3:9] = 1
    img = sitk.GetImageFromArray(m)
    img.SetSpacing((1.5, 1.5, 5.0))
    return img


def test_stats_seg_on_a_truncated_mask_exits_1_naming_the_file(tmp_path, monkeypatch, capsys):
    pred, ref = _write(tmp_path / "pred.nii.gz", _mask()), _write(tmp_path / "ref.nii.gz", _mask())
    monkeypatch.setattr(sys, "argv", ["sarcomri", "stats", "seg", "--pred", str(pred), "--ref", str(ref), "--json"])
    with pytest.raises(SystemExit) as done:
        main()
    assert done.value.code in (0, None) and '"dice": 1.0' in capsys.readouterr().out
    data = pred.read_bytes()
    pred.write_bytes(data[: 2 * len(data) // 3])
    code, err = _cli(monkeypatch, capsys, "stats", "seg", "--pred", str(pred), "--ref", str(ref))
    assert code == 1
    assert "pred.nii.gz" in err and "truncated" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_segment_evaluate_on_a_truncated_prediction_exits_1_naming_the_file(tiny_cohort, tmp_path, monkeypatch,
                                                                             capsys):
    from sarcomri.cohort.manifest import Cohort

    cohort = Cohort.load(tiny_cohort)
    preds = tmp_path / "pred"
    preds.mkdir()
    for pid in cohort.patient_ids[:2]:
        sitk.WriteImage(cohort.read_mask(pid, "T2axi"), str(preds / f"{pid}.nii.gz"))
    victim = preds / f"{cohort.patient_ids[1]}.nii.gz"
    data = victim.read_bytes()
    victim.write_bytes(data[: 2 * len(data) // 3])
    code, err = _cli(monkeypatch, capsys, "segment", "evaluate", str(preds), str(tiny_cohort), "--sequence",
                     "T2axi")
    assert code == 1 and str(victim) in err.replace("\n", "") and "truncated" in err


def test_cohort_reader_refuses_a_truncated_image(tiny_cohort):
    from sarcomri.cohort.manifest import Cohort

    cohort = Cohort.load(tiny_cohort)
    path = cohort.path(cohort.series_row("P003", "T2axi")["image"])
    path.write_bytes(path.read_bytes()[:-8])
    with pytest.raises(InputError, match="truncated") as err:
        cohort.read_image("P003", "T2axi")
    assert err.value.path == str(path)
    assert cohort.read_mask("P003", "T2axi") is not None  # the mask is intact


def test_export_nnunet_and_radiomics_on_truncated_files_exit_1(tiny_cohort, tmp_path, monkeypatch, capsys):
    from sarcomri.cohort.manifest import Cohort

    cohort = Cohort.load(tiny_cohort)
    mask = cohort.path(cohort.series_row("P005", "T2axi")["mask"])
    image = cohort.path(cohort.series_row("P005", "T2axi")["image"])
    intact = mask.read_bytes()
    mask.write_bytes(intact[: len(intact) // 3])
    code, err = _cli(monkeypatch, capsys, "export", "nnunet", str(tiny_cohort), "--out", str(tmp_path / "raw"),
                     "--id", "501", "--name", "Tiny", "--sequences", "T2axi")
    assert code == 1 and "masks/P005/T2axi.nii.gz" in err.replace("\n", "") and "truncated" in err
    assert not list((tmp_path / "raw").glob("Dataset501_Tiny*"))
    code, err = _cli(monkeypatch, capsys, "radiomics", "firstorder", "--image", str(image), "--mask", str(mask))
    assert code == 1 and str(mask) in err.replace("\n", "") and "truncated" in err
