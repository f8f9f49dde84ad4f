"""Read one DICOM volume (a set of single-frame slices) with checked geometry.

Slices are sorted by their ImagePositionPatient projected on the slice normal (the cross product of
the row and column cosines of ImageOrientationPatient), then read by SimpleITK's ImageSeriesReader,
which applies RescaleSlope/Intercept and builds origin, spacing and direction from the headers.

Before reading, the slices must form one regular grid; otherwise :class:`InputError` names the first
offending file:

* same ImageOrientationPatient (within 1e-4), PixelSpacing (within 1e-4 mm), Rows and Columns;
* no two slices at the same position (a series holding several volumes that were not split);
* uniform slice spacing: every gap within max(0.01 mm, 1 %) of the median gap (a missing slice fails);
* slices stacked along the normal: the in-plane shift between neighbours under 10 % of a pixel.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import SimpleITK as sitk

from sarcomri.errors import InputError
from sarcomri.io.dicom import Instance

ORIENTATION_TOL = 1e-4
PIXEL_SPACING_TOL = 1e-4
SLICE_GAP_ATOL_MM = 0.01
SLICE_GAP_RTOL = 0.01
SAME_POSITION_MM = 1e-3
IN_PLANE_SHIFT_PIXELS = 0.1


def slice_normal(iop: Sequence[float]) -> np.ndarray:
    """The unit normal of slices with ImageOrientationPatient ``iop`` (row x column cosines)."""
    iop = np.asarray(iop, dtype=float)
    normal = np.cross(iop[:3], iop[3:])
    return normal / np.linalg.norm(normal)


def sort_slices(instances: Sequence[Instance], what: str) -> tuple[list[Instance], float]:
    """Slices sorted along their normal, and the slice spacing in mm; raise when they are not one grid."""
    if not instances:
        raise InputError(None, f"{what}: no slices")
    first = instances[0]
    assert first.iop is not None and first.pixel_spacing is not None and first.ipp is not None
    for inst in instances[1:]:
        if inst.iop is None or not np.allclose(inst.iop, first.iop, atol=ORIENTATION_TOL):
            raise InputError(inst.path, f"ImageOrientationPatient differs from the other slices of {what} "
                             "(mixed orientations in one series)")
        if inst.pixel_spacing is None or not np.allclose(inst.pixel_spacing, first.pixel_spacing,
                                                         atol=PIXEL_SPACING_TOL):
            raise InputError(inst.path, f"PixelSpacing {inst.pixel_spacing} differs from {first.pixel_spacing} "
                             f"in the other slices of {what}")
        if (inst.rows, inst.columns) != (first.rows, first.columns):
            raise InputError(inst.path, f"image size {inst.rows}x{inst.columns} differs from "
                             f"{first.rows}x{first.columns} in the other slices of {what}")
    normal = slice_normal(first.iop)
    ipp = np.array([inst.ipp for inst in instances], dtype=float)
    depth = ipp @ normal
    order = np.argsort(depth, kind="stable")
    ordered = [instances[i] for i in order]
    if len(ordered) == 1:
        return ordered, 0.0
    gaps = np.diff(depth[order])
    dup = np.flatnonzero(gaps < SAME_POSITION_MM)
    if dup.size:
        raise InputError(ordered[dup[0] + 1].path, f"two slices of {what} lie at the same position: the series "
                         "holds several volumes (b-values, echoes, time points) that could not be split")
    median = float(np.median(gaps))
    bad = np.flatnonzero(np.abs(gaps - median) > max(SLICE_GAP_ATOL_MM, SLICE_GAP_RTOL * median))
    if bad.size:
        k = bad[0]
        raise InputError(ordered[k + 1].path, f"non-uniform slice spacing in {what}: {gaps[k]:.3f} mm before "
                         f"this slice, {median:.3f} mm elsewhere (a missing or extra slice?)")
    steps = np.diff(ipp[order], axis=0)
    shift = np.linalg.norm(steps - np.outer(gaps, normal), axis=1)
    limit = IN_PLANE_SHIFT_PIXELS * min(first.pixel_spacing)
    if np.any(shift > limit):
        k = int(np.argmax(shift > limit))
        raise InputError(ordered[k + 1].path, f"slices of {what} are not stacked along the slice normal "
                         f"(in-plane shift {shift[k]:.2f} mm): mixed positions or a tilted stack")
    return ordered, median


def read_volume(instances: Sequence[Instance], what: str) -> tuple[sitk.Image, list[str]]:
    """The 3D image of ``instances`` (one volume) and the SOPInstanceUIDs of its slices in z order."""
    ordered, gap = sort_slices(instances, what)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames([str(inst.path) for inst in ordered])
    try:
        image = reader.Execute()
    except RuntimeError as exc:
        raise InputError(ordered[0].path, f"SimpleITK cannot read the pixels of {what}: "
                         f"{str(exc).strip().splitlines()[-1]}") from None
    if image.GetDimension() == 2:  # a single slice: make it a one-slice volume
        image = sitk.JoinSeries(image)
    if image.GetSize()[2] != len(ordered):
        raise InputError(ordered[0].path, f"{what}: read {image.GetSize()[2]} slices from {len(ordered)} files")
    if len(ordered) > 1 and not np.isclose(image.GetSpacing()[2], gap, rtol=1e-3, atol=1e-3):
        raise InputError(ordered[0].path, f"{what}: SimpleITK spacing {image.GetSpacing()[2]:.4f} mm disagrees with "
                         f"the slice positions ({gap:.4f} mm)")
    return clean_image(image), [inst.sop_uid for inst in ordered]


def clean_image(image: sitk.Image) -> sitk.Image:
    """A copy of ``image`` without its metadata dictionary (which may carry header values)."""
    out = sitk.Image(image)
    for key in out.GetMetaDataKeys():
        out.EraseMetaData(key)
    return out
