"""Checks and small conversions on SimpleITK images shared by ingestion, synthesis and preparation."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from sarcomri.errors import InputError


def check_finite(image: sitk.Image, what: str) -> None:
    """Raise when an image holds NaN or infinite intensities."""
    arr = sitk.GetArrayViewFromImage(image)
    if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        n = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise InputError(what, f"{n} voxels are NaN or infinite")


def same_grid(a: sitk.Image, b: sitk.Image, tol: float = 1e-4) -> bool:
    """True when two images share size, spacing, origin and direction (within ``tol``)."""
    return (
        a.GetSize() == b.GetSize()
        and np.allclose(a.GetSpacing(), b.GetSpacing(), atol=tol)
        and np.allclose(a.GetOrigin(), b.GetOrigin(), atol=max(tol, 1e-3))
        and np.allclose(a.GetDirection(), b.GetDirection(), atol=tol)
    )


def check_same_grid(a: sitk.Image, b: sitk.Image, what_a: str, what_b: str) -> None:
    """Raise with both geometries when two images are not on the same voxel grid."""
    if not same_grid(a, b):
        raise InputError(
            what_a,
            f"{what_b} is on a different grid (size {b.GetSize()} vs {a.GetSize()}, spacing "
            f"{tuple(round(s, 4) for s in b.GetSpacing())} vs {tuple(round(s, 4) for s in a.GetSpacing())}, "
            f"origin {tuple(round(o, 2) for o in b.GetOrigin())} vs {tuple(round(o, 2) for o in a.GetOrigin())})",
        )
