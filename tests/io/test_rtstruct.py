"""Polygon filling of RTSTRUCT contours: voxel centres inside, holes by exclusive or."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from sarcomri.errors import InputError
from sarcomri.io.labelmap import paint_largest_first
from sarcomri.io.rtstruct import fill_polygon, physical_to_index, rtstruct_to_mask


def test_square_covers_the_voxel_centres_inside():
    # a square from 1.5 to 5.5 in x and 2.5 to 4.5 in y holds centres x = 2..5, y = 3..4
    out = fill_polygon((8, 8), np.array([[1.5, 2.5], [5.5, 2.5], [5.5, 4.5], [1.5, 4.5]]))
    expected = np.zeros((8, 8), bool)
    expected[3:5, 2:6] = True
    assert np.array_equal(out, expected)


def test_polygon_partly_outside_is_clipped():
    out = fill_polygon((4, 4), np.array([[-3.0, -3.0], [2.5, -3.0], [2.5, 1.5], [-3.0, 1.5]]))
    assert out.sum() == 3 * 2 and out[:2, :3].all()


def test_physical_to_index_matches_simpleitk():
    image = sitk.Image(10, 12, 5, sitk.sitkUInt8)
    image.SetSpacing((0.7, 0.8, 3.0))
    image.SetOrigin((-4.0, 5.0, 11.0))
    image.SetDirection((0.0, 1.0, 0.0, 0.0, 0.0, -1.0, -1.0, 0.0, 0.0))
    pts = np.array([[1.0, 2.0, 3.0], [-7.5, 4.0, 0.25]])
    expected = [image.TransformPhysicalPointToContinuousIndex(p.tolist()) for p in pts]
    np.testing.assert_allclose(physical_to_index(image, pts), expected, atol=1e-9)


def _structure_set(contours_by_roi):
    ds = pydicom.Dataset()
    ds.StructureSetROISequence, ds.ROIContourSequence = [], []
    for number, (name, contours) in enumerate(contours_by_roi.items(), start=1):
        roi = pydicom.Dataset()
        roi.ROINumber, roi.ROIName = number, name
        ds.StructureSetROISequence.append(roi)
        rc = pydicom.Dataset()
        rc.ReferencedROINumber = number
        rc.ContourSequence = []
        for pts in contours:
            c = pydicom.Dataset()
            c.ContourGeometricType = "CLOSED_PLANAR"
            c.ContourData = [float(v) for v in np.asarray(pts).ravel()]
            rc.ContourSequence.append(c)
        ds.ROIContourSequence.append(rc)
    return ds


def _square(x0, x1, y0, y1, z):
    return [[x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y1, z]]


def test_hole_and_two_rois():
    image = sitk.Image(10, 10, 3, sitk.sitkInt16)  # unit spacing, origin 0
    ds = _structure_set({
        "GTV": [_square(0.5, 7.5, 0.5, 7.5, 1.0), _square(2.5, 4.5, 2.5, 4.5, 1.0)],  # ring: 7x7 minus 2x2
        "boost": [_square(2.5, 3.5, 2.5, 3.5, 1.0)],
    })
    mask, table = rtstruct_to_mask(ds, image, "rs.dcm")
    arr = sitk.GetArrayFromImage(mask)
    assert (arr[1] == 1).sum() == 49 - 4 and (arr[1] == 2).sum() == 1 and arr[0].sum() == 0
    assert [(r["label"], r["name"], r["voxels"]) for r in table] == [(1, "GTV", 45), (2, "boost", 1)]


def test_contour_between_slices_is_a_grid_error():
    image = sitk.Image(10, 10, 3, sitk.sitkInt16)
    with pytest.raises(InputError, match="different grids"):
        rtstruct_to_mask(_structure_set({"GTV": [_square(1, 5, 1, 5, 1.5)]}), image, "rs.dcm")
    with pytest.raises(InputError, match="outside its image"):
        rtstruct_to_mask(_structure_set({"GTV": [_square(1, 5, 1, 5, 7.0)]}), image, "rs.dcm")


def test_overlapping_structures_painted_largest_first():
    big = np.zeros((3, 3), bool)
    big[:, :] = True
    small = np.zeros((3, 3), bool)
    small[1, 1] = True
    labels, counts = paint_largest_first({1: small, 2: big})
    assert labels[1, 1] == 1 and (labels == 2).sum() == 8
    assert counts == {1: (1, 1), 2: (9, 8)}
