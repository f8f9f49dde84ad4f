"""RTSTRUCT contours rasterised into a label mask on the grid of the image they were drawn on.

Each CLOSED_PLANAR contour is mapped from patient coordinates (mm) to continuous voxel indices of the
referenced image (the linear map of SimpleITK's ``TransformPhysicalPointToContinuousIndex``), must lie
on one slice of that image, and is filled on that slice: a voxel is inside when its centre is inside the
polygon (matplotlib's ``Path.contains_points``). Contours of one ROI on the same slice combine by
exclusive or (even-odd rule), so a contour drawn inside another is a hole. Each ROI gets label 1, 2, ...
in the order of StructureSetROISequence; overlapping ROIs are painted largest first
(:mod:`sarcomri.io.labelmap`).

On STS_001 of the soft-tissue sarcoma collection this reproduces the IBSI reference mask voxel for voxel.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk
from matplotlib.path import Path as PolygonPath

from sarcomri.errors import InputError
from sarcomri.io.labelmap import MAX_LABEL, paint_largest_first

SLICE_TOL = 0.1  # a contour's slice index may differ from an integer by this much (in slices)


def referenced_series_uid(ds: pydicom.Dataset) -> str | None:
    """The SeriesInstanceUID of the image series the contours were drawn on, when the header says so."""
    for frame in ds.get("ReferencedFrameOfReferenceSequence", []):
        for study in frame.get("RTReferencedStudySequence", []):
            for series in study.get("RTReferencedSeriesSequence", []):
                uid = series.get("SeriesInstanceUID")
                if uid:
                    return str(uid)
    return None


def referenced_sop_uids(ds: pydicom.Dataset) -> set[str]:
    """SOPInstanceUIDs of the images named by the contours (to find the series when no series UID is given)."""
    uids = set()
    for roi in ds.get("ROIContourSequence", []):
        for contour in roi.get("ContourSequence", []):
            for ref in contour.get("ContourImageSequence", []):
                uids.add(str(ref.ReferencedSOPInstanceUID))
    return uids


def physical_to_index(image: sitk.Image, points: np.ndarray) -> np.ndarray:
    """Continuous (x, y, z) voxel indices of patient-coordinate points (N x 3), vectorised."""
    direction = np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)
    matrix = direction @ np.diag(image.GetSpacing())
    return np.linalg.solve(matrix, (points - np.asarray(image.GetOrigin())).T).T


def fill_polygon(shape_yx: tuple[int, int], xy: np.ndarray) -> np.ndarray:
    """Boolean (y, x) mask of the voxel centres inside the polygon with vertices ``xy`` (continuous indices)."""
    out = np.zeros(shape_yx, dtype=bool)
    x0, y0 = np.maximum(np.floor(xy.min(axis=0)).astype(int), 0)
    x1 = min(int(np.ceil(xy[:, 0].max())), shape_yx[1] - 1)
    y1 = min(int(np.ceil(xy[:, 1].max())), shape_yx[0] - 1)
    if x1 < x0 or y1 < y0:
        return out
    yy, xx = np.mgrid[y0 : y1 + 1, x0 : x1 + 1]
    inside = PolygonPath(xy).contains_points(np.column_stack([xx.ravel(), yy.ravel()]))
    out[y0 : y1 + 1, x0 : x1 + 1] = inside.reshape(yy.shape)
    return out


def rtstruct_to_mask(ds: pydicom.Dataset, image: sitk.Image, path: str | Path) -> tuple[sitk.Image, list[dict]]:
    """The label mask of every ROI of an RTSTRUCT on ``image``'s grid, and one table row per ROI.

    Table rows hold ``label``, ``name`` (the ROIName), ``voxels`` and ``voxels_shown`` (after overlap).
    Raises :class:`InputError` naming ``path`` when a contour falls between slices or outside the image.
    """
    nx, ny, nz = image.GetSize()
    rois = list(ds.get("StructureSetROISequence", []))
    contours = {int(rc.ReferencedROINumber): rc for rc in ds.get("ROIContourSequence", [])}
    if len(rois) > MAX_LABEL:
        raise InputError(path, f"{len(rois)} ROIs: a label mask holds at most {MAX_LABEL}")
    masks: dict[int, np.ndarray] = {}
    names: dict[int, str] = {}
    for label, roi in enumerate(rois, start=1):
        volume = np.zeros((nz, ny, nx), dtype=bool)
        names[label] = str(roi.get("ROIName", f"ROI {roi.ROINumber}"))
        for contour in getattr(contours.get(int(roi.ROINumber)), "ContourSequence", []):
            if str(contour.get("ContourGeometricType", "CLOSED_PLANAR")).upper() != "CLOSED_PLANAR":
                continue  # points and open polylines enclose no voxels
            points = np.asarray(contour.ContourData, dtype=float).reshape(-1, 3)
            if len(points) < 3:
                continue
            index = physical_to_index(image, points)
            k = int(np.round(np.median(index[:, 2])))
            if np.max(np.abs(index[:, 2] - k)) > SLICE_TOL:
                raise InputError(path, f"a contour of ROI {names[label]!r} does not lie on a slice of its image "
                                 f"(slice index {index[:, 2].min():.2f} to {index[:, 2].max():.2f}): the "
                                 "structure set and the image are on different grids")
            if not 0 <= k < nz:
                raise InputError(path, f"a contour of ROI {names[label]!r} lies outside its image (slice {k} of "
                                 f"{nz}): the structure set and the image are on different grids")
            volume[k] ^= fill_polygon((ny, nx), index[:, :2])
        masks[label] = volume
    if not masks:
        raise InputError(path, "the structure set holds no ROI")
    labelmap, counts = paint_largest_first(masks)
    out = sitk.GetImageFromArray(labelmap)
    out.CopyInformation(image)
    table = [{"label": lab, "name": names[lab], "voxels": counts[lab][0], "voxels_shown": counts[lab][1]}
             for lab in masks]
    return out, table
