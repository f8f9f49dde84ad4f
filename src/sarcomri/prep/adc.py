"""The apparent diffusion coefficient (ADC) from diffusion-weighted images at several b-values.

Model: mono-exponential decay ``S(b) = S0 exp(-b ADC)``. Per voxel, ``ln S`` is fitted against ``b`` by
ordinary least squares over every b-value given (all acquired b-values; scanner-computed b images are
never used); ADC is minus the slope. With centred b-values the slope is ``sum((b - mean b) ln S) /
sum((b - mean b)^2)``, computed for all voxels at once.

Unit: 10^-6 mm^2/s (``ADC_UNIT``), the integer scale Siemens and GE use for their ADC maps, so a computed
map and a scanner map are directly comparable (1000 = 1.0 x 10^-3 mm^2/s). Stored as float32.

Noise floor (background): a voxel is not fitted and its ADC is 0 (the scanners' background value) when
its signal at the lowest b-value is at most ``noise_fraction`` (default 0.1) times the 99th percentile of
the lowest-b image, or when its signal is not positive at some b-value (the logarithm is undefined).
On ProstateX-0000 this background agrees with the scanner's zero region with Dice 0.89. Fitted values
below 0 (signal rising with b: noise) are set to 0.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import SimpleITK as sitk

from sarcomri.errors import InputError
from sarcomri.io.images import same_grid

ADC_UNIT = "1e-6 mm2/s"
ADC_SCALE = 1e6  # ADC in mm^2/s times this gives ADC_UNIT
NOISE_FRACTION = 0.1
NOISE_PERCENTILE = 99.0


def noise_floor(lowest_b: np.ndarray, noise_fraction: float = NOISE_FRACTION) -> float:
    """The signal level at or below which a voxel counts as background (see the module docstring)."""
    return float(noise_fraction * np.percentile(lowest_b, NOISE_PERCENTILE))


def fit_adc(signals: np.ndarray, b_values, noise_fraction: float = NOISE_FRACTION) -> np.ndarray:
    """ADC in 10^-6 mm^2/s from ``signals`` (one array per b-value stacked on axis 0) at ``b_values`` (s/mm^2).

    Returns a float32 array of the shape of one signal array; background voxels are 0.
    """
    b = np.asarray(b_values, dtype=float)
    signals = np.asarray(signals, dtype=np.float32)  # float32 halves memory; log precision is ample
    if signals.shape[0] != b.size:
        raise ValueError(f"{signals.shape[0]} signal arrays for {b.size} b-values")
    if np.unique(b).size < 2:
        raise ValueError("ADC needs at least two different b-values")
    lowest = signals[int(np.argmin(b))]
    fitted = (lowest > noise_floor(lowest, noise_fraction)) & np.all(signals > 0, axis=0)
    log_s = np.log(np.where(fitted, signals, np.float32(1.0)))
    centred = (b - b.mean()).astype(np.float32)
    slope = np.tensordot(centred, log_s, axes=(0, 0)) / np.float32(np.sum(centred**2))
    adc = np.where(fitted, -slope * ADC_SCALE, 0.0)
    return np.clip(adc, 0.0, None).astype(np.float32)


def adc_map(volumes: Mapping[float, sitk.Image], noise_fraction: float = NOISE_FRACTION) -> sitk.Image:
    """The ADC image (10^-6 mm^2/s) from DWI volumes keyed by b-value, all on one grid."""
    if len(volumes) < 2:
        raise InputError(None, f"ADC needs DWI at two or more b-values, got {sorted(volumes)}")
    b_values = sorted(volumes)
    reference = volumes[b_values[0]]
    for b in b_values[1:]:
        if not same_grid(reference, volumes[b]):
            raise InputError(None, f"DWI at b={b:g} is not on the grid of b={b_values[0]:g}: cannot fit ADC voxelwise")
    signals = np.stack([sitk.GetArrayViewFromImage(volumes[b]) for b in b_values])
    out = sitk.GetImageFromArray(fit_adc(signals, b_values, noise_fraction))
    out.CopyInformation(reference)
    return out
