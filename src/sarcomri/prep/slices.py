"""Choosing and cutting 2D slices: tumour slices, the central tumour slice, square crops (around the tumour or
around the body), resizing.

Arrays are in SimpleITK/NumPy order (z, y, x): axis 0 is the acquisition's slice axis, whatever the plane, so
a sagittal series yields sagittal slices.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def tumour_slice_indices(mask: np.ndarray) -> np.ndarray:
    """Indices along axis 0 of the slices that contain tumour."""
    return np.flatnonzero(np.asarray(mask).reshape(mask.shape[0], -1).any(axis=1))


def central_tumour_slice(mask: np.ndarray) -> int:
    """The tumour slice nearest the tumour's centre of mass along the slice axis.

    Ties (a centre exactly between two slices) go to the slice with the larger tumour area, then the lower
    index. Raises ``ValueError`` for an empty mask.
    """
    idx = tumour_slice_indices(mask)
    if idx.size == 0:
        raise ValueError("the mask is empty: there is no tumour slice")
    areas = np.asarray(mask, dtype=bool).reshape(mask.shape[0], -1).sum(axis=1)
    centre = float(np.average(np.arange(mask.shape[0]), weights=areas))
    dist = np.abs(idx - centre)
    best = idx[np.isclose(dist, dist.min())]
    return int(best[np.argmax(areas[best])])


def square_box(mask2d: np.ndarray, margin: float = 0.25, min_side: int = 16) -> tuple[int, int, int, int]:
    """A square box (y0, y1, x0, x1) around the tumour with ``margin`` x its longer side added on each side.

    The box may extend past the image; :func:`crop` pads. An empty mask gives the largest centred square.
    """
    h, w = mask2d.shape
    ys, xs = np.nonzero(mask2d)
    if ys.size == 0:
        side = min(h, w)
        cy, cx = h / 2, w / 2
    else:
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        side = max(y1 - y0, x1 - x0)
        side = max(int(np.ceil(side * (1 + 2 * margin))), min_side)
        cy, cx = (y0 + y1) / 2, (x0 + x1) / 2
    top, left = int(np.floor(cy - side / 2)), int(np.floor(cx - side / 2))
    return top, top + side, left, left + side


#: The body is what lies above ``low + BODY_FRACTION * (high - low)``, with ``low`` and ``high`` the volume's
#: 1st and 99th intensity percentiles (so a few bright or dark voxels do not move it).
BODY_FRACTION, BODY_PERCENTILES = 0.1, (1.0, 99.0)


def body_threshold(volume: np.ndarray) -> float:
    """The intensity above which a voxel of ``volume`` counts as body rather than background (see
    :data:`BODY_FRACTION`); from the whole volume, so every slice of a series is cut by the same rule."""
    finite = np.asarray(volume, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return 0.0
    low, high = np.percentile(finite, BODY_PERCENTILES)
    return float(low + BODY_FRACTION * (high - low))


def body_box(image2d: np.ndarray, threshold: float) -> tuple[int, int, int, int]:
    """The square box (y0, y1, x0, x1) around the body of one slice: the bounding box of the voxels above
    ``threshold`` after a 3 x 3 binary opening (isolated noise voxels do not count), widened about its centre
    to a square (:func:`crop` pads where it leaves the image). A slice with no body gives the whole slice,
    made square."""
    body = ndimage.binary_opening(np.asarray(image2d) > threshold, structure=np.ones((3, 3), bool))
    h, w = body.shape
    ys, xs = np.nonzero(body)
    if ys.size == 0:
        y0, y1, x0, x1 = 0, h, 0, w
    else:
        y0, y1, x0, x1 = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
    side = max(y1 - y0, x1 - x0)
    top, left = y0 - (side - (y1 - y0)) // 2, x0 - (side - (x1 - x0)) // 2
    return top, top + side, left, left + side


def crop(arr2d: np.ndarray, box: tuple[int, int, int, int], mode: str = "constant") -> np.ndarray:
    """Cut ``box`` out of a 2D (or channels-first 3D) array, padding where the box leaves the image."""
    y0, y1, x0, x1 = box
    h, w = arr2d.shape[-2:]
    pad = [(max(0, -y0), max(0, y1 - h)), (max(0, -x0), max(0, x1 - w))]
    if arr2d.ndim == 3:
        pad = [(0, 0), *pad]
    padded = np.pad(arr2d, pad, mode=mode) if any(p for pair in pad for p in pair) else arr2d
    oy, ox = pad[-2][0], pad[-1][0]
    return padded[..., y0 + oy : y1 + oy, x0 + ox : x1 + ox]


def resize2d(arr: np.ndarray, size: int | tuple[int, int], order: int = 1) -> np.ndarray:
    """Resample the last two axes to ``size`` (linear by default; ``order=0`` for masks)."""
    size = (size, size) if isinstance(size, int) else tuple(size)
    h, w = arr.shape[-2:]
    factors = (1.0,) * (arr.ndim - 2) + (size[0] / h, size[1] / w)
    out = ndimage.zoom(arr, factors, order=order, mode="nearest", grid_mode=True)
    if out.shape[-2:] != size:  # float rounding of the zoom factors
        out = out[..., : size[0], : size[1]]
        out = np.pad(out, [(0, 0)] * (out.ndim - 2) + [(0, size[0] - out.shape[-2]), (0, size[1] - out.shape[-1])],
                     mode="edge")
    return out
