"""Intensity normalisation of MR images, whose grey levels have no absolute scale (ADC maps excepted)."""

from __future__ import annotations

from typing import Literal

import numpy as np

Normalisation = Literal["zscore", "percentile", "none"]


def zscore(arr: np.ndarray, mask: np.ndarray | None = None, eps: float = 1e-6) -> np.ndarray:
    """Subtract the mean and divide by the standard deviation (of the voxels in ``mask`` when given)."""
    arr = np.asarray(arr, dtype=np.float32)
    ref = arr[mask.astype(bool)] if mask is not None and np.any(mask) else arr
    return ((arr - ref.mean()) / max(float(ref.std()), eps)).astype(np.float32)


def percentile_clip(
    arr: np.ndarray, low: float = 0.5, high: float = 99.5, mask: np.ndarray | None = None
) -> np.ndarray:
    """Clip to the ``low``-``high`` percentiles and rescale linearly to [0, 1]."""
    arr = np.asarray(arr, dtype=np.float32)
    ref = arr[mask.astype(bool)] if mask is not None and np.any(mask) else arr
    lo, hi = np.percentile(ref, [low, high])
    if hi <= lo:
        return np.zeros_like(arr)
    return ((np.clip(arr, lo, hi) - lo) / (hi - lo)).astype(np.float32)


def normalise(arr: np.ndarray, method: Normalisation = "zscore", mask: np.ndarray | None = None) -> np.ndarray:
    """Apply one of the named normalisations (``none`` only casts to float32)."""
    if method == "zscore":
        return zscore(arr, mask)
    if method == "percentile":
        return percentile_clip(arr, mask=mask)
    if method == "none":
        return np.asarray(arr, dtype=np.float32)
    raise ValueError(f"unknown normalisation {method!r}; choose zscore, percentile or none")
