"""IBSI intensity-histogram features: statistics of the discretised intensities (bin numbers 1..Ng).

The statistics mirror :func:`sarcomri.radiomics.firstorder.intensity_statistics` on the bin numbers, plus
the histogram-specific features (IBSI reference manual, "intensity histogram features"):

* ``mode``: the most frequent bin; when several bins tie, the one closest to the mean bin number, and of
  two equally close the lower one (IBSI's rule);
* ``entropy`` (log2) and ``uniformity`` over the occupied bins;
* histogram gradient ``H'(i)`` over all ``Ng`` bins (empty ones included): ``H(2) - H(1)`` at the first
  bin, ``(H(i+1) - H(i-1)) / 2`` inside and ``H(Ng) - H(Ng-1)`` at the last (0 for a single bin);
  ``max_gradient``/``min_gradient`` and the bin numbers where they occur (the lowest such bin on ties).

Keys are prefixed ``histogram_`` so they can sit beside the intensity statistics in one table.
"""

from __future__ import annotations

import numpy as np

from sarcomri.errors import InputError
from sarcomri.radiomics.firstorder import entropy_uniformity, intensity_statistics

_STATS = ("mean", "variance", "skewness", "kurtosis_excess", "median", "minimum", "percentile_10",
          "percentile_90", "maximum", "interquartile_range", "range", "mean_absolute_deviation",
          "robust_mean_absolute_deviation", "median_absolute_deviation", "coefficient_of_variation",
          "quartile_coefficient_of_dispersion")


def histogram_gradient(counts: np.ndarray) -> np.ndarray:
    """IBSI histogram gradient of bin counts H(1..Ng) (one-sided at both ends)."""
    h = np.asarray(counts, dtype=float)
    if h.size == 1:
        return np.zeros(1)
    return np.gradient(h)  # central differences inside, first-order one-sided differences at the ends


def histogram_features(bins: np.ndarray, n_bins: int | None = None) -> dict[str, float]:
    """Intensity-histogram features of discretised intensities ``bins`` (integers from 1).

    ``n_bins`` (Ng) is the number of bins of the discretisation, including empty bins above the
    highest occupied one; by default the highest occupied bin number.
    """
    b = np.asarray(bins).ravel()
    if b.size == 0:
        raise InputError(None, "the region of interest is empty")
    if not np.issubdtype(b.dtype, np.integer) or b.min() < 1:
        raise InputError(None, "discretised intensities must be integer bin numbers starting at 1")
    ng = int(b.max()) if n_bins is None else int(n_bins)
    if ng < b.max():
        raise InputError(None, f"n_bins {ng} is smaller than the highest bin number {int(b.max())}")
    stats = intensity_statistics(b)
    out = {f"histogram_{k}": stats[k] for k in _STATS}
    counts = np.bincount(b, minlength=ng + 1)[1:]
    levels = np.arange(1, ng + 1)
    candidates = levels[counts == counts.max()]
    out["histogram_mode"] = float(candidates[np.argmin(np.abs(candidates - stats["mean"]))])  # lowest on ties
    out["histogram_entropy"], out["histogram_uniformity"] = entropy_uniformity(b)
    grad = histogram_gradient(counts)
    out["histogram_max_gradient"] = float(grad.max())
    out["histogram_max_gradient_intensity"] = float(levels[np.argmax(grad)])
    out["histogram_min_gradient"] = float(grad.min())
    out["histogram_min_gradient_intensity"] = float(levels[np.argmin(grad)])
    return out
