"""DICOM-SEG objects read into a label mask on the grid of the image they segment.

highdicom reads the segmentation as a volume (``Segmentation.get_volume``, one channel per segment) and
``Volume.match_geometry`` places it on the referenced image's grid by permuting, flipping, padding and
cropping only, never resampling: a segmentation on another grid (other spacing, orientation or a
non-integer offset) is an error. The label of each segment is its SegmentNumber; overlapping segments are
painted largest first (:mod:`sarcomri.io.labelmap`). Fractional segments count where the value is at
least 0.5. Writing DICOM-SEG is not done here.
"""

from __future__ import annotations

from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import SimpleITK as sitk

from sarcomri.errors import InputError
from sarcomri.io.labelmap import MAX_LABEL, paint_largest_first

GRID_TOL = 1e-3  # relative tolerance on directions, spacing ratios and offsets (in voxels)


def referenced_series_uid(ds: pydicom.Dataset) -> str | None:
    """The SeriesInstanceUID of the segmented image series, when the header names it."""
    for ref in ds.get("ReferencedSeriesSequence", []):
        uid = ref.get("SeriesInstanceUID")
        if uid:
            return str(uid)
    return None


def referenced_sop_uids(ds: pydicom.Dataset) -> set[str]:
    """SOPInstanceUIDs of the source images named in the segmentation."""
    uids = set()
    for ref in ds.get("ReferencedSeriesSequence", []):
        for inst in ref.get("ReferencedInstanceSequence", []):
            uids.add(str(inst.ReferencedSOPInstanceUID))
    return uids


def image_geometry(image: sitk.Image) -> hd.VolumeGeometry:
    """The highdicom geometry of a SimpleITK image, axes in ``GetArrayFromImage`` order (z, y, x)."""
    direction = np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)
    spacing = np.asarray(image.GetSpacing(), dtype=float)
    affine = np.eye(4)
    for axis_out, axis_in in enumerate((2, 1, 0)):
        affine[:3, axis_out] = direction[:, axis_in] * spacing[axis_in]
    affine[:3, 3] = image.GetOrigin()
    return hd.VolumeGeometry(affine, tuple(image.GetSize()[::-1]), coordinate_system="PATIENT")


def seg_to_mask(path: str | Path, image: sitk.Image) -> tuple[sitk.Image, list[dict]]:
    """The label mask (label = SegmentNumber) of a DICOM-SEG file on ``image``'s grid, and one row per segment.

    Table rows hold ``label``, ``name`` (SegmentLabel), ``description``, ``property`` (the segmented
    property type's code meaning), ``voxels`` and ``voxels_shown`` (after overlap).
    """
    path = Path(path)
    try:
        seg = hd.seg.segread(path)
    except Exception as exc:  # noqa: BLE001 - highdicom raises many types on malformed objects
        raise InputError(path, f"not a readable DICOM-SEG object: {exc}") from None
    numbers = [int(s.SegmentNumber) for s in seg.SegmentSequence]
    if not numbers:
        raise InputError(path, "the segmentation holds no segment")
    if max(numbers) > MAX_LABEL:
        raise InputError(path, f"segment number {max(numbers)}: a label mask holds at most {MAX_LABEL}")
    try:
        volume = seg.get_volume(combine_segments=False, segment_numbers=numbers, rescale_fractional=True)
        target = image_geometry(image)
        _check_spacing(volume, target, path)
        matched = volume.match_geometry(target, tol=GRID_TOL)
    except InputError:
        raise
    except (RuntimeError, ValueError) as exc:
        raise InputError(path, f"the segmentation and its image are on different grids ({exc})") from None
    array = np.asarray(matched.array)
    if array.ndim == 3:
        array = array[..., np.newaxis]
    threshold = 0.5 if np.issubdtype(array.dtype, np.floating) else 1
    masks = {n: array[..., i] >= threshold for i, n in enumerate(numbers)}
    labelmap, counts = paint_largest_first(masks)
    out = sitk.GetImageFromArray(labelmap)
    out.CopyInformation(image)
    table = []
    for item in seg.SegmentSequence:
        n = int(item.SegmentNumber)
        prop = item.get("SegmentedPropertyTypeCodeSequence")
        table.append({
            "label": n,
            "name": str(item.get("SegmentLabel", "")),
            "description": str(item.get("SegmentDescription", "") or ""),
            "property": str(prop[0].CodeMeaning) if prop else "",
            "voxels": counts[n][0],
            "voxels_shown": counts[n][1],
        })
    return out, table


def _check_spacing(volume: hd.Volume, target: hd.VolumeGeometry, path: Path) -> None:
    """Refuse a segmentation whose voxel size differs from the image's (match_geometry would subsample)."""
    ours, theirs = sorted(volume.spacing), sorted(target.spacing)
    if volume.spatial_shape[0] == 1:  # one frame: its slice spacing is not defined
        ours, theirs = sorted(volume.spacing[1:]), sorted(target.spacing[1:])
    if not np.allclose(ours, theirs, rtol=GRID_TOL, atol=1e-4):
        raise InputError(path, f"the segmentation's voxel size {tuple(round(s, 4) for s in volume.spacing)} mm "
                         f"differs from its image's {tuple(round(s, 4) for s in target.spacing)} mm "
                         "(mask and image on different grids)")
