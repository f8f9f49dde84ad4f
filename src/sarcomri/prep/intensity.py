"""Intensity normalisation of MR images, whose grey levels have no absolute scale (ADC maps excepted).

:func:`zscore` is the one z-score of every task: the classifiers' slices (here), the 2D segmenter's volumes and
slices (:func:`sarcomri.seg2d.data.normalise`) and the 3D segmenter's channels
(:func:`sarcomri.seg3d.data.zscore`) call it with their parameters.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

#: ``zscore``: each 2D input over its own crop; ``zscore_volume``: each series over the body of its whole volume
#: before slices are cut (:func:`zscore_body`), so a crop keeps its level relative to the rest of the body;
#: ``percentile``: clipped to the 0.5-99.5th percentiles of the crop and scaled to [0, 1]; ``none``: as read.
Normalisation = Literal["zscore", "zscore_volume", "percentile", "none"]


def zscore(
    arr: np.ndarray,
    mask: np.ndarray | None = None,
    eps: float = 1e-6,
    *,
    axes: int | tuple[int, ...] | None = None,
    dtype: type = np.float32,
    inside_only: bool = False,
    flat: Literal["floor", "zero"] = "floor",
) -> np.ndarray:
    """The one z-score of sarcomri: subtract the mean, divide by the standard deviation; float32 out.

    * Statistics are computed in ``dtype``: float32 for the classifiers' slices, float64 for segmentation
      (:mod:`sarcomri.seg2d.data`, :mod:`sarcomri.seg3d.data`).
    * Over the whole array by default, or over the voxels of ``mask`` when it is given and not empty (the other
      voxels are shifted and scaled alike). With ``inside_only`` only the voxels of ``mask`` (every voxel
      when None) are normalised and the others set to 0, an empty mask giving all zeros: nnU-Net's
      ``use_mask_for_norm``, where zero padding must not bias the statistics.
    * With ``axes``, separately for each index of the other axes: ``(1, 2, 3)`` per channel of a (C, Z, Y, X)
      array, ``(2, 3)`` per slice of each channel (no ``mask`` then).
    * ``flat`` says what a (nearly) constant array becomes: ``floor`` divides by ``max(std, eps)``, ``zero``
      gives 0 wherever ``std <= eps``.
    """
    a = np.asarray(arr, dtype=dtype)
    if axes is not None:
        if mask is not None or inside_only:
            raise ValueError("zscore: statistics per axes take no mask")
        return _scaled(a - a.mean(axis=axes, keepdims=True), a.std(axis=axes, keepdims=True), eps, flat)
    if inside_only:
        out = np.zeros(a.shape, np.float32)
        inside = np.ones(a.shape, bool) if mask is None else np.asarray(mask, bool)
        if inside.any():
            values = a[inside]
            out[inside] = _scaled(values - values.mean(), values.std(), eps, flat)
        return out
    ref = a[mask.astype(bool)] if mask is not None and np.any(mask) else a
    return _scaled(a - ref.mean(), ref.std(), eps, flat)


def _scaled(centred: np.ndarray, std: np.ndarray | np.floating, eps: float, flat: str) -> np.ndarray:
    """``centred / std`` as float32, where ``std <= eps`` handled as :func:`zscore`'s ``flat`` says."""
    if flat == "zero":
        ok = std > eps
        return (centred / np.where(ok, std, 1.0)).astype(np.float32) * ok
    if flat != "floor":
        raise ValueError(f"zscore: flat must be 'floor' or 'zero', got {flat!r}")
    scale = max(float(std), eps) if np.ndim(std) == 0 else np.maximum(std, eps)
    return (centred / scale).astype(np.float32)


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


def zscore_body(volume: np.ndarray, threshold: float) -> np.ndarray:
    """``volume`` z-scored over its body, the voxels above ``threshold``
    (:func:`sarcomri.prep.slices.body_threshold`): the air around the body does not count, every voxel is shifted
    and scaled alike."""
    return zscore(volume, np.asarray(volume) > threshold)


def normalise(arr: np.ndarray, method: Normalisation = "zscore", mask: np.ndarray | None = None) -> np.ndarray:
    """Apply one of the named normalisations to one 2D input (``none`` only casts to float32; ``zscore_volume``
    was applied to the whole series before the input was cut, so here it only casts too)."""
    if method == "zscore":
        return zscore(arr, mask)
    if method == "percentile":
        return percentile_clip(arr, mask=mask)
    if method in ("none", "zscore_volume"):
        return np.asarray(arr, dtype=np.float32)
    raise ValueError(f"unknown normalisation {method!r}; choose zscore, zscore_volume, percentile or none")
