"""First-order radiomics: the IBSI intensity-based statistical features and pyradiomics' first-order set.

Definitions follow the IBSI reference manual (Zwanenburg et al., Radiology 2020), section "intensity-based
statistical features", computed on the intensities ``X`` of the ``N`` voxels inside the region of
interest (ROI), with these project choices made explicit:

* moments are population moments (divide by ``N``): ``variance``, ``standard_deviation`` (pyradiomics'
  StandardDeviation), ``skewness`` = m3 / m2^1.5;
* kurtosis comes under two names so nobody confuses them: ``kurtosis_excess`` = m4 / m2² - 3 (IBSI
  "(excess) intensity kurtosis", 0 for a normal distribution) and ``kurtosis_pearson`` = m4 / m2²
  (pyradiomics' "Kurtosis", 3 for a normal distribution);
* percentiles use ``numpy.percentile`` with linear interpolation (as pyradiomics does);
* ``robust_mean_absolute_deviation`` is the mean absolute deviation from their mean of the voxels with
  P10 <= X <= P90; ``median_absolute_deviation`` is IBSI's: the *mean* of |X - median| (not the median);
* ``coefficient_of_variation`` = standard deviation / mean; ``quartile_coefficient_of_dispersion`` =
  (P75 - P25) / (P75 + P25);
* ``energy`` = sum((X + c)²), ``root_mean_square`` = sqrt(energy / N) and ``total_energy`` = voxel volume
  (mm³) x energy, with ``c`` = ``voxel_array_shift`` (pyradiomics' voxelArrayShift, default 0; IBSI energy
  and RMS are the values with c = 0);
* ``entropy`` (log2) and ``uniformity`` are computed on the discretised intensities
  (:mod:`sarcomri.radiomics.discretise`, pyradiomics' rule), over occupied bins only (pyradiomics adds a
  machine epsilon inside the logarithm; the difference is below 1e-15).

Undefined values are NaN, never an invented number: skewness and both kurtoses of a constant ROI,
robust mean absolute deviation when no voxel lies within [P10, P90] (two voxels), coefficient of
variation with mean 0, quartile coefficient of dispersion with P75 + P25 = 0 (pyradiomics
reports 0 for skewness and kurtosis of a constant ROI).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sarcomri.errors import InputError
from sarcomri.radiomics.discretise import DEFAULT_BIN_WIDTH, MAX_BINS, discretise_fixed_count, discretise_fixed_width

#: IBSI identifiers of the intensity-based statistical features computed here.
IBSI_CODES: dict[str, str] = {
    "mean": "Q4LE", "variance": "ECT3", "skewness": "KE2A", "kurtosis_excess": "IPH6", "median": "Y12H",
    "minimum": "1GSF", "percentile_10": "QG58", "percentile_90": "8DWT", "maximum": "84IY",
    "interquartile_range": "SALO", "range": "2OJQ", "mean_absolute_deviation": "4FUA",
    "robust_mean_absolute_deviation": "1128", "median_absolute_deviation": "N72L",
    "coefficient_of_variation": "7TET", "quartile_coefficient_of_dispersion": "9S40", "energy": "N8CA",
    "root_mean_square": "5ZWQ",
    # computed on discretised intensities, as in the IBSI intensity-histogram family
    "entropy": "TLU2", "uniformity": "BJ5W",
}
#: pyradiomics' first-order feature names (``original_firstorder_<name>``) for the features that have one.
PYRADIOMICS_NAMES: dict[str, str] = {
    "energy": "Energy", "total_energy": "TotalEnergy", "entropy": "Entropy", "minimum": "Minimum",
    "percentile_10": "10Percentile", "percentile_90": "90Percentile", "maximum": "Maximum", "mean": "Mean",
    "median": "Median", "interquartile_range": "InterquartileRange", "range": "Range",
    "mean_absolute_deviation": "MeanAbsoluteDeviation",
    "robust_mean_absolute_deviation": "RobustMeanAbsoluteDeviation", "root_mean_square": "RootMeanSquared",
    "standard_deviation": "StandardDeviation", "skewness": "Skewness", "kurtosis_pearson": "Kurtosis",
    "variance": "Variance", "uniformity": "Uniformity",
}


def _div(num: float, den: float) -> float:
    return float(num / den) if den != 0 else float("nan")


def intensity_statistics(values: np.ndarray) -> dict[str, float]:
    """IBSI intensity-based statistical features (plus both kurtoses and the standard deviation) of the
    ROI intensities ``values`` (any shape; flattened). Energy and RMS here are unshifted (IBSI)."""
    x = np.asarray(values, dtype=float).ravel()
    if x.size == 0:
        raise InputError(None, "the region of interest is empty")
    if not np.all(np.isfinite(x)):
        raise InputError(None, f"{int((~np.isfinite(x)).sum())} intensities in the region of interest are "
                               "NaN or infinite")
    mean = x.mean()
    dev = x - mean
    m2, m3, m4 = (dev**2).mean(), (dev**3).mean(), (dev**4).mean()
    p10, p25, median, p75, p90 = np.percentile(x, [10, 25, 50, 75, 90])
    robust = x[(x >= p10) & (x <= p90)]  # empty only for tiny ROIs (e.g. two distinct voxels)
    nan = float("nan")
    kurt = _div(m4, m2**2)
    energy = float(np.sum(x**2))
    return {
        "mean": float(mean),
        "variance": float(m2),
        "standard_deviation": float(np.sqrt(m2)),
        "skewness": _div(m3, m2**1.5),
        "kurtosis_excess": kurt - 3.0,
        "kurtosis_pearson": kurt,
        "median": float(median),
        "minimum": float(x.min()),
        "percentile_10": float(p10),
        "percentile_90": float(p90),
        "maximum": float(x.max()),
        "interquartile_range": float(p75 - p25),
        "range": float(x.max() - x.min()),
        "mean_absolute_deviation": float(np.abs(dev).mean()),
        "robust_mean_absolute_deviation": float(np.abs(robust - robust.mean()).mean()) if robust.size else nan,
        "median_absolute_deviation": float(np.abs(x - median).mean()),
        "coefficient_of_variation": _div(np.sqrt(m2), mean),
        "quartile_coefficient_of_dispersion": _div(p75 - p25, p75 + p25),
        "energy": energy,
        "root_mean_square": float(np.sqrt(energy / x.size)),
    }


def entropy_uniformity(bins: np.ndarray) -> tuple[float, float]:
    """Entropy (bits) and uniformity of discretised intensities (bin numbers)."""
    _, counts = np.unique(np.asarray(bins).ravel(), return_counts=True)
    p = counts / counts.sum()
    return float(-np.sum(p * np.log2(p))), float(np.sum(p**2))


def roi_values(image: np.ndarray, mask: np.ndarray, label: int | None = None) -> np.ndarray:
    """Intensities of ``image`` inside ``mask`` (voxels equal to ``label``, or non-zero when None)."""
    img, m = np.asarray(image), np.asarray(mask)
    if img.shape != m.shape:
        raise InputError(None, f"image shape {img.shape} differs from mask shape {m.shape}")
    roi = m != 0 if label is None else m == label
    if not roi.any():
        what = "non-zero voxels" if label is None else f"voxels with label {label}"
        raise InputError(None, f"the mask has no {what}: the region of interest is empty")
    return img[roi].astype(float)


def discretise(values: np.ndarray, bin_width: float | None = None,
               bin_count: int | None = None, max_bins: int = MAX_BINS) -> tuple[np.ndarray, int]:
    """Discretise ROI intensities with either a fixed bin width or a fixed bin count (not both).

    With neither, pyradiomics' default bin width (25, in the unit of the image) is used.
    """
    if bin_width is not None and bin_count is not None:
        raise InputError(None, "give either a bin width or a bin count, not both")
    if bin_count is not None:
        return discretise_fixed_count(values, bin_count)
    return discretise_fixed_width(values, DEFAULT_BIN_WIDTH if bin_width is None else bin_width, max_bins)


def firstorder_features(
    image: np.ndarray,
    mask: np.ndarray,
    spacing_zyx: Sequence[float],
    bin_width: float | None = None,
    bin_count: int | None = None,
    voxel_array_shift: float = 0.0,
    scale: float = 1.0,
    label: int | None = None,
    max_bins: int = MAX_BINS,
) -> dict[str, float]:
    """First-order features of ``image`` inside ``mask`` (see the module docstring for definitions).

    ``spacing_zyx`` (mm) gives the voxel volume for ``total_energy`` and ``volume_mm3``. ``scale``
    multiplies the intensities first (e.g. ``ADC_UNIT_SCALE['mm2/s']`` = 1000 to express an ADC map stored
    in mm²/s in 10⁻³ mm²/s); ``bin_width`` is in the scaled unit. ``bin_width``/``bin_count`` and
    ``voxel_array_shift`` mean what pyradiomics' binWidth/binCount/voxelArrayShift mean.

    Returns the keys of :func:`intensity_statistics` (energy and RMS shifted by ``voxel_array_shift``) plus
    ``total_energy``, ``entropy``, ``uniformity``, ``n_voxels``, ``volume_mm3`` and ``n_bins``.
    """
    sp = np.asarray(spacing_zyx, dtype=float).ravel()
    if sp.size != np.ndim(image) or not np.all(np.isfinite(sp)) or np.any(sp <= 0):
        raise InputError(None, f"spacing must hold {np.ndim(image)} positive values (array order), got "
                               f"{tuple(sp.tolist())}")
    if not (np.isfinite(scale) and scale != 0):
        raise InputError(None, f"intensity scale must be finite and non-zero, got {scale}")
    x = roi_values(image, mask, label) * scale
    feats = intensity_statistics(x)
    if voxel_array_shift:
        shifted = x + voxel_array_shift
        feats["energy"] = float(np.sum(shifted**2))
        feats["root_mean_square"] = float(np.sqrt(feats["energy"] / x.size))
    voxel_mm3 = float(np.prod(sp))
    bins, n_bins = discretise(x, bin_width, bin_count, max_bins)
    entropy, uniformity = entropy_uniformity(bins)
    feats.update(total_energy=voxel_mm3 * feats["energy"], entropy=entropy, uniformity=uniformity,
                 n_voxels=float(x.size), volume_mm3=voxel_mm3 * x.size, n_bins=float(n_bins))
    return feats
