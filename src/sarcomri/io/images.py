"""Checks and small conversions on SimpleITK images shared by ingestion, synthesis and preparation."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import SimpleITK as sitk

from sarcomri.errors import InputError

if TYPE_CHECKING:
    from sarcomri.io.niftifile import Grid


def check_finite(image: sitk.Image, what: str) -> None:
    """Raise when an image holds NaN or infinite intensities."""
    arr = sitk.GetArrayViewFromImage(image)
    if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        n = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise InputError(what, f"{n} voxels are NaN or infinite")


def _geometry(x: sitk.Image | Grid) -> tuple[tuple, tuple, tuple, tuple]:
    if isinstance(x, sitk.Image):
        return x.GetSize(), x.GetSpacing(), x.GetOrigin(), x.GetDirection()
    return tuple(x.size), tuple(x.spacing), tuple(x.origin), tuple(x.direction)


def grid_differences(a: sitk.Image | Grid, b: sitk.Image | Grid, tol: float = 1e-4) -> list[str]:
    """What differs between the voxel grids of two images (or header :class:`Grid` s), as ``"origin (b) vs (a)"``
    phrases; empty when they share size, spacing, origin and direction within ``tol`` (origin: at least 1e-3 mm).
    """
    size_a, spacing_a, origin_a, dir_a = _geometry(a)
    size_b, spacing_b, origin_b, dir_b = _geometry(b)
    out = []
    if size_a != size_b:
        out.append(f"size {size_b} vs {size_a}")
    for what, va, vb, atol, digits in (("spacing", spacing_a, spacing_b, tol, 4),
                                       ("origin", origin_a, origin_b, max(tol, 1e-3), 2),
                                       ("direction", dir_a, dir_b, tol, 3)):
        if len(va) != len(vb) or not np.allclose(va, vb, atol=atol):
            out.append(f"{what} {tuple(round(v, digits) for v in vb)} vs {tuple(round(v, digits) for v in va)}")
    return out


def same_grid(a: sitk.Image | Grid, b: sitk.Image | Grid, tol: float = 1e-4) -> bool:
    """True when two images (or header grids) share size, spacing, origin and direction (within ``tol``)."""
    return not grid_differences(a, b, tol)


def check_same_grid(a: sitk.Image, b: sitk.Image, what_a: str, what_b: str) -> None:
    """Raise with both geometries when two images are not on the same voxel grid."""
    if not same_grid(a, b):
        raise InputError(
            what_a,
            f"{what_b} is on a different grid (size {b.GetSize()} vs {a.GetSize()}, spacing "
            f"{tuple(round(s, 4) for s in b.GetSpacing())} vs {tuple(round(s, 4) for s in a.GetSpacing())}, "
            f"origin {tuple(round(o, 2) for o in b.GetOrigin())} vs {tuple(round(o, 2) for o in a.GetOrigin())})",
        )
