"""DICOM readers on damaged files: :func:`sarcomri.io.dicom.read_header` and
:func:`sarcomri.io.volume.read_volume` raise a user error naming the file, or give back the intact answer.

DICOM has no checksum: a flipped byte in a header value or a pixel may read as another valid value, so the
flip property only forbids other exceptions; a file cut short, or replaced by random bytes, must never read."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, MRImageStorage, generate_uid

from sarcomri.io.dicom import read_header
from sarcomri.io.volume import read_volume

#: examples per property; SARCOMRI_FAULT_EXAMPLES=2000 for a deeper search
FAST = settings(max_examples=int(os.environ.get("SARCOMRI_FAULT_EXAMPLES", "40")), deadline=None)
SYNTAXES = {"explicit": ExplicitVRLittleEndian, "implicit": ImplicitVRLittleEndian}


def _slice(path: Path, k: int, syntax, series_uid: str) -> Path:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = MRImageStorage, generate_uid()
    meta.TransferSyntaxUID = syntax
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = MRImageStorage, meta.MediaStorageSOPInstanceUID, "MR"
    ds.PatientID, ds.StudyInstanceUID, ds.SeriesInstanceUID = "SRC-1", "1.2.3", series_uid
    ds.SeriesNumber, ds.InstanceNumber, ds.SeriesDescription = 3, k + 1, "T2axi"
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.ImagePositionPatient = ["-5", "-6", f"{10 + 2.5 * k}"]
    ds.PixelSpacing, ds.SliceThickness = ["0.8", "0.7"], "2.5"
    ds.Rows, ds.Columns = 6, 5
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.RescaleSlope, ds.RescaleIntercept = "1", "0"
    ds.PixelData = (np.arange(30, dtype=np.uint16).reshape(6, 5) * (k + 1)).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


class Blobs(list):
    """The bytes of the slices of a series, shown briefly in Hypothesis' reports."""

    def __repr__(self) -> str:
        return f"<{len(self)} DICOM files>"


@pytest.fixture(scope="module", params=sorted(SYNTAXES))
def series(request, tmp_path_factory) -> Blobs:
    """Two intact slices of one series (explicit and implicit VR little endian): their bytes."""
    folder = tmp_path_factory.mktemp("dicom")
    uid = generate_uid()
    return Blobs(_slice(folder / f"{k}.dcm", k, SYNTAXES[request.param], uid).read_bytes() for k in range(2))


def _read(paths: list[Path]):
    """Headers, then the volume: what ingestion does with a series."""
    headers = [read_header(p) for p in paths]
    if any(h is None for h in headers):
        return headers, None
    image, uids = read_volume(headers, "series 3 ('T2axi')")
    return [_strip(h) for h in headers], (sitk.GetArrayFromImage(image).tobytes(), image.GetSpacing(),
                                          image.GetOrigin(), image.GetDirection(), uids)


def _strip(header):
    """A header without its path (copies live in another folder)."""
    return None if header is None else header.__class__(**{**header.__dict__, "path": Path(header.path.name)})


def _write(folder: Path, blobs: list[bytes]) -> list[Path]:
    paths = []
    for k, blob in enumerate(blobs):
        (folder / f"{k}.dcm").write_bytes(blob)
        paths.append(folder / f"{k}.dcm")
    return paths


def _check(faults, scratch, series: list[bytes], damaged: bytes, exact: bool) -> None:
    folder = Path(scratch())
    want = _read(_write(folder, series))
    paths = _write(folder, [series[0], damaged])
    got = faults.outcome(lambda: _read(paths))
    if got.error is not None:
        assert str(folder) in str(got.error), got.error
    elif exact:
        assert got.value == want, "a damaged DICOM file read as different data"


@FAST
@given(data=st.data())
def test_truncated_slice(series, faults, scratch, data):
    """Cut anywhere after the 'DICM' marker (a shorter file is not DICOM and is skipped by ingestion)."""
    damaged = data.draw(st.integers(132, len(series[1]) - 1).map(lambda n: series[1][:n]))
    _check(faults, scratch, series, damaged, exact=True)


@FAST
@given(data=st.data())
def test_random_bytes_after_the_marker(series, faults, scratch, data):
    damaged = series[1][:132] + data.draw(faults.garbage())
    _check(faults, scratch, series, damaged, exact=True)


@FAST
@given(data=st.data())
def test_flipped_bytes_never_crash(series, faults, scratch, data):
    _check(faults, scratch, series, data.draw(faults.flips(series[1], start=128)), exact=False)
