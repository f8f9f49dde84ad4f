"""The size of a tumour mask as a radiologist reports it: volume and three diameters, and its largest slice.

Definitions (all in mm, from the mask's voxels and spacing; a voxel counts whole):

* **volume**: voxels x voxel volume, in mL;
* **long axis**: the longest in-plane diameter over all slices, edge to edge: the largest distance between
  corners of the tumour's pixels in one slice (the maximum Feret diameter of the pixelated region), as a
  radiologist draws the longest line across the tumour on the slice where it is longest;
* **short axis**: on that slice, the tumour's extent perpendicular to the long axis (its caliper width in that
  direction);
* **through-plane extent**: the slices the tumour spans, edge to edge (first to last slice x slice spacing).

The largest slice is the one with the most tumour pixels (the central one of those tied).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.spatial import ConvexHull, QhullError

from sarcomri.errors import InputError


@dataclass(frozen=True)
class TumourSize:
    """Volume, the three diameters (mm) and the slice of the largest cross-section (index into the mask)."""

    volume_ml: float
    long_axis_mm: float
    short_axis_mm: float
    through_plane_mm: float
    largest_slice: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, rounded to 0.1 (mm, mL)."""
        return {k: (v if isinstance(v, int) else round(float(v), 1)) for k, v in asdict(self).items()}


def _corners(mask2d: np.ndarray, spacing_xy: tuple[float, float]) -> np.ndarray:
    """The corners (x, y in mm) of the region's convex hull. Only the first and last tumour pixel of each row can
    hold a hull corner (every pixel between them lies in the hull of those two squares), so only their corners are
    candidates: the same hull as from every pixel's corners, from two pixels per row."""
    mask2d = np.asarray(mask2d, bool)
    ys = np.flatnonzero(mask2d.any(axis=1))
    rows = mask2d[ys]
    first = rows.argmax(axis=1)
    last = rows.shape[1] - 1 - rows[:, ::-1].argmax(axis=1)
    xs, ys = np.concatenate([first, last]), np.concatenate([ys, ys])
    offsets = np.array([[0, 0], [1, 0], [0, 1], [1, 1]], float)
    pts = (np.stack([xs, ys], axis=1)[:, None, :] + offsets[None]).reshape(-1, 2)
    pts = np.unique(pts, axis=0) * np.asarray(spacing_xy, float)
    if len(pts) > 3:
        try:
            pts = pts[ConvexHull(pts).vertices]
        except QhullError:  # collinear corners: a line of pixels cannot be; keep them all
            pass
    return pts


def _feret(points: np.ndarray) -> tuple[float, np.ndarray]:
    """The largest distance between ``points`` and its unit direction."""
    diff = points[:, None, :] - points[None, :, :]
    dist = np.hypot(diff[..., 0], diff[..., 1])
    i, j = np.unravel_index(np.argmax(dist), dist.shape)
    longest = float(dist[i, j])
    return longest, diff[i, j] / longest


def tumour_size(mask: np.ndarray, spacing: tuple[float, float, float]) -> TumourSize:
    """The size of the tumour in ``mask`` ((z, y, x), nonzero = tumour) with voxel ``spacing`` (x, y, z) in mm, as
    SimpleITK gives them; see the module notes."""
    mask = np.asarray(mask) > 0
    if mask.ndim != 3:
        raise InputError(None, f"a tumour mask is 3D (z, y, x), not of shape {mask.shape}")
    sx, sy, sz = (float(s) for s in spacing)
    if min(sx, sy, sz) <= 0:
        raise InputError(None, f"voxel spacing must be positive, not {spacing}")
    areas = mask.sum(axis=(1, 2))
    if not areas.any():
        raise InputError(None, "the tumour mask is empty")
    slices = np.flatnonzero(areas)
    best = slices[areas[slices] == areas.max()]
    largest = int(best[len(best) // 2])
    long_axis, direction, long_slice = 0.0, np.array([1.0, 0.0]), largest
    for z in slices:
        length, unit = _feret(_corners(mask[z], (sx, sy)))
        if length > long_axis:
            long_axis, direction, long_slice = length, unit, int(z)
    across = _corners(mask[long_slice], (sx, sy)) @ np.array([-direction[1], direction[0]])
    return TumourSize(volume_ml=float(mask.sum()) * sx * sy * sz / 1000.0, long_axis_mm=long_axis,
                      short_axis_mm=float(across.max() - across.min()),
                      through_plane_mm=float(slices[-1] - slices[0] + 1) * sz, largest_slice=largest)
