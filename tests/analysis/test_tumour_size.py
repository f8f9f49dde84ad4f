"""Tumour size from a mask: volume and the three diameters of ellipsoids of known axes (in-plane rotated too,
anisotropic voxels), exact on a box, and clear errors for empty or malformed masks."""

import math

import numpy as np
import pytest

from sarcomri.analysis.tumour_size import tumour_size
from sarcomri.errors import InputError


def _ellipsoid(a: float, b: float, c: float, spacing, shape=(60, 160, 160), angle: float = 0.0) -> np.ndarray:
    """Voxels whose centres lie in the ellipsoid of semi-axes a (in-plane, rotated by ``angle``), b, c (mm)."""
    sx, sy, sz = spacing
    z, y, x = np.meshgrid(*((np.arange(n) - (n - 1) / 2) for n in shape), indexing="ij")
    x, y, z = x * sx, y * sy, z * sz
    u = x * math.cos(angle) + y * math.sin(angle)
    v = -x * math.sin(angle) + y * math.cos(angle)
    return ((u / a) ** 2 + (v / b) ** 2 + (z / c) ** 2 <= 1).astype(np.uint8)


@pytest.mark.parametrize("angle", [0.0, math.radians(30)])
def test_an_ellipsoid_has_its_axes_and_volume(angle):
    spacing = (0.5, 0.5, 1.5)
    size = tumour_size(_ellipsoid(20, 12, 15, spacing, angle=angle), spacing)
    assert size.volume_ml == pytest.approx(4 / 3 * math.pi * 20 * 12 * 15 / 1000, rel=0.03)
    assert size.long_axis_mm == pytest.approx(40, abs=1.0)  # edge to edge: up to a pixel diagonal more
    assert size.short_axis_mm == pytest.approx(24, abs=1.0)
    assert size.through_plane_mm == pytest.approx(30, abs=1.5)  # whole slices
    assert size.largest_slice == 29 or size.largest_slice == 30  # the centre


def test_a_box_is_measured_exactly_edge_to_edge():
    mask = np.zeros((10, 20, 30), np.uint8)
    mask[2:6, 5:9, 10:22] = 1  # 4 slices, 4 rows, 12 columns
    size = tumour_size(mask, (0.8, 0.5, 3.0))
    assert size.volume_ml == pytest.approx(4 * 4 * 12 * 0.8 * 0.5 * 3.0 / 1000)
    assert size.long_axis_mm == pytest.approx(math.hypot(12 * 0.8, 4 * 0.5))  # the box's diagonal
    assert size.through_plane_mm == pytest.approx(12.0)
    assert size.largest_slice == 4  # of 2..5, all equal: the central one of the tie (index 2 of [2, 3, 4, 5])
    d = size.to_dict()
    assert d["largest_slice"] == 4 and d["through_plane_mm"] == 12.0


def test_empty_or_malformed_masks_are_refused():
    with pytest.raises(InputError, match="empty"):
        tumour_size(np.zeros((3, 4, 4)), (1, 1, 1))
    with pytest.raises(InputError, match="3D"):
        tumour_size(np.ones((4, 4)), (1, 1, 1))
    with pytest.raises(InputError, match="positive"):
        tumour_size(np.ones((2, 4, 4)), (1, 0, 1))


def test_the_hull_from_each_rows_end_pixels_is_the_hull_of_every_pixel():
    """_corners takes only the first and last tumour pixel of each row: on scattered, holed and concave masks the
    hull (and so every diameter) is the one from every pixel's corners."""
    import numpy as np
    from scipy.spatial import ConvexHull

    from sarcomri.analysis.tumour_size import _corners

    rng = np.random.default_rng(7)
    for _ in range(200):
        mask = rng.random((30, 30)) < rng.uniform(0.02, 0.7)
        if mask.sum() < 3:
            continue
        spacing = (rng.uniform(0.3, 2.0), rng.uniform(0.3, 2.0))
        ys, xs = np.nonzero(mask)
        every = (np.stack([xs, ys], 1)[:, None] + np.array([[0, 0], [1, 0], [0, 1], [1, 1]])[None]).reshape(-1, 2)
        every = np.unique(every, axis=0) * np.asarray(spacing)
        want = {tuple(np.round(p, 9)) for p in every[ConvexHull(every).vertices]}
        got = {tuple(np.round(p, 9)) for p in _corners(mask, spacing)}
        assert got == want
