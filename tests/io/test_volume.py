"""DICOM volume reading: geometry from headers, slice sorting, and refusal of series that are not one grid."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from sarcomri.errors import InputError
from sarcomri.io.dicom import read_header
from sarcomri.io.volume import read_volume


def _read(paths):
    return read_volume([read_header(p) for p in paths], "test series")


def test_geometry_and_slice_order_from_headers(tmp_path, make_series):
    # sagittal slices (normal = -x) written in reverse file order
    iop = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)
    paths = make_series(tmp_path, 5, iop=iop, origin=(12.0, -3.0, 7.0), slice_spacing=3.0, pixel_spacing=(0.9, 0.6),
                        values=lambda k, b: np.full((8, 6), 100 + k))
    image, uids = _read([paths[i] for i in (3, 0, 4, 2, 1)])
    assert image.GetSize() == (6, 8, 5)
    assert np.allclose(image.GetSpacing(), (0.6, 0.9, 3.0))  # PixelSpacing is (row, column) spacing
    # slices sorted along the normal (-x): the first is the one written first (at the origin), whatever the file order
    assert np.allclose(image.GetOrigin(), (12.0, -3.0, 7.0))
    assert np.allclose(image.TransformIndexToPhysicalPoint((2, 1, 4)), (12.0 - 4 * 3.0, -3.0 + 2 * 0.6, 7.0 - 0.9))
    assert np.allclose(np.array(image.GetDirection()).reshape(3, 3),
                       np.column_stack([iop[:3], iop[3:], np.cross(iop[:3], iop[3:])]))
    arr = sitk.GetArrayFromImage(image)
    assert arr[:, 0, 0].tolist() == [100, 101, 102, 103, 104]
    assert len(uids) == 5 and not image.GetMetaDataKeys()


def test_single_slice_is_a_volume(tmp_path, make_series):
    image, _ = _read(make_series(tmp_path, 1))
    assert image.GetDimension() == 3 and image.GetSize()[2] == 1


def _damage(tmp_path, make_series, **kwargs):
    good = make_series(tmp_path / "a", 4, series_uid="1.2.3.4")
    odd = make_series(tmp_path / "b", 1, series_uid="1.2.3.4", series_number=1, **kwargs)
    return good + odd


@pytest.mark.parametrize("kwargs, problem", [
    ({"iop": (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)}, "ImageOrientationPatient differs"),
    ({"pixel_spacing": (0.5, 0.5)}, "PixelSpacing"),
    ({"rows": 10}, "image size"),
    ({"origin": (-10.0, -20.0, 30.0 + 2 * 2.5)}, "same position"),
    ({"origin": (-10.0, -20.0, 30.0 + 6 * 2.5)}, "non-uniform slice spacing"),
    ({"origin": (-5.0, -20.0, 30.0 + 4 * 2.5)}, "not stacked along the slice normal"),
])
def test_mixed_geometry_is_refused(tmp_path, make_series, kwargs, problem):
    paths = _damage(tmp_path, make_series, **kwargs)
    with pytest.raises(InputError, match=problem) as err:
        _read(paths)
    assert str(tmp_path) in str(err.value)  # the message names a file


def test_missing_slice_is_refused(tmp_path, make_series):
    paths = make_series(tmp_path, 6)
    paths[3].unlink()
    with pytest.raises(InputError, match="non-uniform slice spacing"):
        _read(paths[:3] + paths[4:])
