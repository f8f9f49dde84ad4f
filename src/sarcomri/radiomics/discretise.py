"""Intensity discretisation as pyradiomics does it (fixed bin width or fixed bin count), with a check that
the number of bins makes sense for the intensity unit.

Fixed bin width ``W`` (pyradiomics ``binWidth``; IBSI "fixed bin size" with the lowest edge on a multiple
of ``W``): bin edges are equally spaced from zero, the leftmost edge is ``floor(min(X) / W) * W`` and bins
are half-open ``[lower, upper)``, so the discretised value is
``X_b = floor(X / W) - floor(min(X) / W) + 1`` (a maximum that lies exactly on an edge opens a new bin, as
in ``numpy.digitize``). Fixed bin count ``N`` (pyradiomics ``binCount``; IBSI "fixed bin number"): ``N``
equal bins between min(X) and max(X), the last one closed so that max(X) falls in bin ``N``.

Units matter for a fixed bin width: an apparent diffusion coefficient (ADC) map may be stored in mm²/s
(values near 0.001), in 10⁻³ mm²/s (near 1) or in 10⁻⁶ mm²/s (near 1000, the usual DICOM scaling). A bin
width means nothing without its unit, so :data:`ADC_UNIT_SCALE` converts ADC to 10⁻³ mm²/s (``scale``
argument of :func:`sarcomri.radiomics.firstorder.firstorder_features`), and :func:`check_bin_count` refuses
a bin width that gives an absurd number of bins and warns when it gives fewer than three.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from sarcomri.errors import InputError

#: Multiply ADC values stored in the key's unit by this to express them in 10^-3 mm^2/s.
ADC_UNIT_SCALE: dict[str, float] = {"mm2/s": 1000.0, "1e-3 mm2/s": 1.0, "1e-6 mm2/s": 0.001}
#: More bins than this is refused (a bin width far too small for the unit of the image).
MAX_BINS = 10_000
#: Fewer bins than this (with a non-constant ROI) gives a warning (a bin width far too large).
MIN_BINS = 3
#: pyradiomics' default fixed bin width.
DEFAULT_BIN_WIDTH = 25.0


class BinningWarning(UserWarning):
    """A discretisation setting that gives very few bins: entropy and uniformity carry little information."""


def _values(values: np.ndarray) -> np.ndarray:
    x = np.asarray(values, dtype=float).ravel()
    if x.size == 0:
        raise InputError(None, "no intensities to discretise (empty region of interest)")
    if not np.all(np.isfinite(x)):
        raise InputError(None, f"{int((~np.isfinite(x)).sum())} intensities in the region of interest are NaN "
                               "or infinite")
    return x


def n_bins_fixed_width(values: np.ndarray, bin_width: float) -> int:
    """Number of bins a fixed bin width gives on ``values`` (from the lowest edge to the maximum's bin)."""
    x = _values(values)
    if not (math.isfinite(bin_width) and bin_width > 0):
        raise InputError(None, f"bin width must be positive and finite, got {bin_width}")
    return int(np.floor(x.max() / bin_width) - np.floor(x.min() / bin_width)) + 1


def check_bin_count(n_bins: int, bin_width: float, values: np.ndarray, max_bins: int = MAX_BINS) -> None:
    """Refuse more than ``max_bins`` bins; warn (:class:`BinningWarning`) below :data:`MIN_BINS`.

    Both usually mean the bin width was chosen for another intensity unit (e.g. ADC in mm²/s given a bin
    width meant for 10⁻³ mm²/s, or MR arbitrary units given a width meant for ADC).
    """
    x = np.asarray(values, dtype=float)
    lo, hi = float(x.min()), float(x.max())
    hint = (f"bin width {bin_width:g} on intensities from {lo:g} to {hi:g} gives {n_bins} bins; is the bin "
            "width in the unit of the image? (ADC: see --scale / ADC_UNIT_SCALE; pyradiomics recommends "
            "roughly 16 to 128 bins)")
    if n_bins > max_bins:
        raise InputError(None, hint)
    if n_bins < MIN_BINS and hi > lo:
        warnings.warn(hint, BinningWarning, stacklevel=3)


def discretise_fixed_width(values: np.ndarray, bin_width: float,
                           max_bins: int = MAX_BINS) -> tuple[np.ndarray, int]:
    """Discretise with a fixed bin width: (bin numbers starting at 1, number of bins).

    ``X_b = floor(X / W) - floor(min(X) / W) + 1``; the number of bins counts empty bins in between.
    """
    x = _values(values)
    n_bins = n_bins_fixed_width(x, bin_width)
    check_bin_count(n_bins, bin_width, x, max_bins)
    low = np.floor(x.min() / bin_width) * bin_width
    edges = low + bin_width * np.arange(n_bins + 1)
    bins = np.digitize(x, edges)  # 1 for [edge0, edge1), ..., right edges open
    # guard against a rounding slip of one ulp at an edge: stay within [1, n_bins]
    return np.clip(bins, 1, n_bins).astype(np.int64), n_bins


def discretise_fixed_count(values: np.ndarray, bin_count: int) -> tuple[np.ndarray, int]:
    """Discretise into ``bin_count`` equal bins between min and max: (bin numbers 1..N, N)."""
    x = _values(values)
    if int(bin_count) != bin_count or bin_count < 1:
        raise InputError(None, f"bin count must be a positive integer, got {bin_count}")
    if bin_count > MAX_BINS:
        raise InputError(None, f"bin count {bin_count} exceeds {MAX_BINS}")
    n = int(bin_count)
    lo, hi = x.min(), x.max()
    if hi == lo:
        return np.ones(x.size, np.int64), n
    edges = np.linspace(lo, hi, n + 1)
    bins = np.digitize(x, edges[1:-1]) + 1  # interior edges only: max(X) lands in bin N
    return bins.astype(np.int64), n
