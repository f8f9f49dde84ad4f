"""NIfTI readers on damaged files: :func:`sarcomri.io.niftifile.read_image` / ``read_grid`` and the ingestion
reader :func:`sarcomri.io.nifti.read_nifti_image` raise a user error or give back the intact image."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from hypothesis import given, settings
from hypothesis import strategies as st

from sarcomri.io.nifti import read_nifti_image
from sarcomri.io.niftifile import read_grid, read_image

#: examples per property; SARCOMRI_FAULT_EXAMPLES=2000 for a deeper search
FAST = settings(max_examples=int(os.environ.get("SARCOMRI_FAULT_EXAMPLES", "40")), deadline=None)


def _image(dtype) -> sitk.Image:
    rng = np.random.default_rng(4)
    img = sitk.GetImageFromArray(rng.normal(50, 20, (3, 5, 4)).astype(dtype))
    img.SetSpacing((0.9, 1.1, 4.0))
    img.SetOrigin((1.0, -2.0, 3.5))
    return img


@pytest.fixture(scope="module", params=["img.nii.gz", "img.nii"])
def intact(request, tmp_path_factory) -> tuple[str, bytes]:
    """An intact small float32 NIfTI file, compressed and not: (name, bytes)."""
    path = tmp_path_factory.mktemp("nifti") / request.param
    sitk.WriteImage(_image(np.float32), str(path), useCompression=request.param.endswith(".gz"))
    return request.param, path.read_bytes()


def _key(img: sitk.Image) -> tuple:
    """Everything a reader returns that matters: voxels, type and grid."""
    return (sitk.GetArrayFromImage(img).tobytes(), img.GetPixelIDValue(), img.GetSize(), img.GetSpacing(),
            img.GetOrigin(), img.GetDirection())


def _check(faults, scratch, name: str, damaged: bytes, intact_bytes: bytes, exact: bool) -> None:
    """Every reader raises a SarcomriError or returns the intact answer (``exact``) or at least no crash."""
    path = Path(scratch()) / name
    want = {}
    path.write_bytes(intact_bytes)
    for reader in (read_image, read_nifti_image):
        want[reader] = _key(reader(path))
    want[read_grid] = read_grid(path)
    path.write_bytes(damaged)
    for reader in (read_image, read_nifti_image, read_grid):
        got = faults.outcome(lambda r=reader: r(path))
        if got.error is not None:
            assert str(path) in str(got.error)
        elif exact:
            value = got.value if reader is read_grid else _key(got.value)
            assert value == want[reader], f"{reader.__name__} returned different data for a damaged file"


@FAST
@given(data=st.data())
def test_truncated_files(intact, faults, scratch, data):
    name, raw = intact
    _check(faults, scratch, name, data.draw(faults.truncations(raw)), raw, exact=True)


@FAST
@given(data=st.data())
def test_random_bytes(intact, faults, scratch, data):
    name, raw = intact
    _check(faults, scratch, name, data.draw(faults.garbage()), raw, exact=True)


@FAST
@given(data=st.data())
def test_flipped_bytes_in_a_gzip_file_never_pass_unnoticed(intact, faults, scratch, data):
    """gzip's CRC-32 and length guard the whole stream: a changed byte is an error or changes nothing (the
    gzip header's time stamp). Only read_grid, which by design reads the header alone, may miss it."""
    name, raw = intact
    damaged = data.draw(faults.flips(raw))
    if not name.endswith(".gz"):
        _check(faults, scratch, name, damaged, raw, exact=False)  # plain .nii has no checksum: no crash only
        return
    path = Path(scratch()) / name
    path.write_bytes(raw)
    want = {r: _key(r(path)) for r in (read_image, read_nifti_image)}
    path.write_bytes(damaged)
    for reader in (read_image, read_nifti_image):
        got = faults.outcome(lambda r=reader: r(path))
        assert got.error is not None or _key(got.value) == want[reader]
    faults.outcome(lambda: read_grid(path))
