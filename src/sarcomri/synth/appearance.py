"""Per-sequence signal models: from the painted phantom to an MR-like image on a sequence's own grid.

Each contrast family gives every tissue a relative signal (urine on T2 = 1). The tumour's signal comes from
the patient's latent variables: on T2-weighted images and the b = 0 diffusion image it is the myometrium's
times ``t2_ratio``; after contrast the myometrium's times ``enhancement``; on the ADC map it is ``adc``;
texture of amplitude ``heterogeneity`` modulates it, and the necrotic core is fluid-like (bright on T2, high
ADC, no enhancement). The b = 1000 image is ``S0 exp(-b ADC)``, so tumours are bright on DWI and dark on the
ADC map. The acquisition then adds, in this order: partial-volume blur (a Gaussian slice profile with FWHM =
slice thickness along the slice normal, FWHM = pixel in-plane), resampling onto the sequence's grid
(SimpleITK, linear), a smooth multiplicative bias field, the scanner's gain and Rician noise. The ADC map is
computed from the noisy DWI volumes with :func:`sarcomri.prep.adc.fit_adc`, in 10^-6 mm^2/s as scanners
store it.

The soft-tissue sarcoma task (``reference`` = muscle) sets the tumour relative to skeletal muscle instead of
the myometrium, and also on T1 (``t1_ratio``): myxoid tumours dark on T1 and fluid-bright on fat-suppressed
T2, leiomyosarcoma and UPS close to muscle on T1 and strongly enhancing (:data:`sarcomri.synth.tasks.STS_HISTOLOGIES`).
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from sarcomri.prep.adc import fit_adc
from sarcomri.synth.acquisition import Grid
from sarcomri.synth.anatomy import NECROSIS, TUMOUR, Phantom

# air fat muscle marrow cortex urine myometrium endometrium cervix bowel | tumour, necrosis set below
SIGNAL = {
    "T2": [0.0, 0.75, 0.22, 0.55, 0.03, 1.00, 0.50, 0.85, 0.20, 0.35],
    "fsT2": [0.0, 0.08, 0.22, 0.15, 0.03, 1.00, 0.52, 0.88, 0.22, 0.35],
    "T1": [0.0, 1.00, 0.40, 0.85, 0.03, 0.12, 0.42, 0.42, 0.40, 0.38],
    "fsT1": [0.0, 0.08, 0.42, 0.20, 0.03, 0.13, 0.45, 0.45, 0.42, 0.40],
    "fsT1CE": [0.0, 0.10, 0.55, 0.35, 0.03, 0.15, 0.90, 0.60, 0.75, 0.70],
    "dynamic": [0.0, 0.10, 0.45, 0.30, 0.03, 0.12, 0.80, 0.50, 0.65, 0.60],
    "DWI_b0": [0.0, 0.05, 0.25, 0.12, 0.02, 1.00, 0.50, 0.80, 0.30, 0.30],
    "ADC": [0.0, 0.20, 1.45, 0.45, 0.30, 3.00, 1.65, 1.40, 1.50, 1.30],  # 10^-3 mm^2/s
}
NECROSIS_SIGNAL = {"T2": 0.95, "fsT2": 0.95, "T1": 0.25, "fsT1": 0.28, "fsT1CE": 0.12, "dynamic": 0.12,
                   "DWI_b0": 0.85, "ADC": 2.40}
#: How strongly the texture modulates each contrast (ADC drops where the T2 signal rises: cellularity).
TEXTURE_GAIN = {"T2": 1.0, "fsT2": 1.0, "T1": 0.5, "fsT1": 0.5, "fsT1CE": 1.2, "dynamic": 1.2, "DWI_b0": 1.0,
                "ADC": -0.5}
MUSCLE, MYOMETRIUM = 2, 6
B_HIGH = 1000.0
MAX_HETEROGENEITY = 0.8


def tumour_signal(family: str, latents: dict[str, float], reference: int = MYOMETRIUM) -> float:
    """The mean signal of viable tumour on ``family`` (relative units; ADC in 10^-3 mm^2/s): the ``reference``
    tissue's signal times the patient's ratio (``t2_ratio``, ``enhancement``, and ``t1_ratio`` when the patient
    has one; else a fixed T1 signal)."""
    myo = SIGNAL[family][reference]
    if family in ("T2", "fsT2", "DWI_b0"):
        return myo * latents["t2_ratio"]
    if family in ("fsT1CE", "dynamic"):
        return myo * max(latents["enhancement"], 0.05)
    if family == "ADC":
        return max(latents["adc"], 0.3)
    if "t1_ratio" in latents:
        return myo * latents["t1_ratio"]
    return 0.42 if family == "T1" else 0.45


def signal_field(phantom: Phantom, family: str, latents: dict[str, float], box, reference: int = MYOMETRIUM
                 ) -> np.ndarray:
    """Relative signal of ``family`` on the lattice crop ``box`` (before any blur)."""
    lut = np.array(SIGNAL[family] + [0.0, NECROSIS_SIGNAL[family]], dtype=np.float32)
    field = lut[phantom.labels[box]]
    inter = tuple(slice(max(a.start, b.start), min(a.stop, b.stop)) for a, b in zip(box, phantom.box, strict=True))
    if any(s.stop <= s.start for s in inter):
        return field
    in_field = tuple(slice(s.start - b.start, s.stop - b.start) for s, b in zip(inter, box, strict=True))
    in_tum = tuple(slice(s.start - b.start, s.stop - b.start) for s, b in zip(inter, phantom.box, strict=True))
    lab = phantom.labels[inter]
    h = min(float(latents["heterogeneity"]), MAX_HETEROGENEITY)
    mod = np.clip(1.0 + TEXTURE_GAIN[family] * h * phantom.texture[in_tum], 0.15, 3.0)
    sub = field[in_field]
    tum = lab == TUMOUR
    sub[tum] = (tumour_signal(family, latents, reference) * mod)[tum]
    return field


def _sigmas(grid: Grid, spacing: float) -> tuple[float, float, float]:
    """Gaussian sigmas (lattice voxels, numpy z, y, x order) of the slice profile and in-plane PSF."""
    fwhm = 2.0 * np.sqrt(2.0 * np.log(2.0))
    normal_axis = int(np.argmax(np.abs(grid.direction[:, 2])))  # world axis of the slice normal
    sig = np.full(3, grid.spacing[0] / fwhm / spacing)
    sig[normal_axis] = grid.thickness / fwhm / spacing
    return float(sig[2]), float(sig[1]), float(sig[0])


def _crop(phantom: Phantom, grid: Grid, sigmas) -> tuple[slice, slice, slice]:
    pad = 3.0 * max(sigmas) * phantom.lattice.spacing + 2 * phantom.lattice.spacing
    c = grid.corners()
    return phantom.lattice.index_box(c.min(axis=0) - pad, c.max(axis=0) + pad)


def _to_grid(phantom: Phantom, array: np.ndarray, box, grid: Grid, sigmas) -> np.ndarray:
    blurred = ndimage.gaussian_filter(array, sigmas, mode="nearest", truncate=3.0)
    out = sitk.Resample(phantom.lattice.image(blurred, box), grid.reference(), sitk.Transform(), sitk.sitkLinear,
                        0.0, sitk.sitkFloat32)
    return sitk.GetArrayFromImage(out)


def clean_image(phantom: Phantom, family: str, latents: dict[str, float], grid: Grid, reference: int = MYOMETRIUM
                ) -> np.ndarray:
    """Noise-free signal of ``family`` on ``grid`` (numpy order: slice, row, column); the tumour's signal is
    relative to the ``reference`` tissue (:func:`tumour_signal`)."""
    sig = _sigmas(grid, phantom.lattice.spacing)
    box = _crop(phantom, grid, sig)
    return _to_grid(phantom, signal_field(phantom, family, latents, box, reference), box, grid, sig)


def tumour_mask(phantom: Phantom, grid: Grid) -> np.ndarray:
    """The tumour (viable and necrotic) on ``grid``: voxels at least half filled after the slice profile."""
    sig = _sigmas(grid, phantom.lattice.spacing)
    box = _crop(phantom, grid, sig)
    lab = phantom.labels[box]
    inside = ((lab == TUMOUR) | (lab == NECROSIS)).astype(np.float32)
    return (_to_grid(phantom, inside, box, grid, sig) >= 0.5).astype(np.uint8)


def bias_field(grid: Grid, strength: float, rng: np.random.Generator) -> np.ndarray:
    """A smooth multiplicative field exp(quadratic polynomial of position), spread about ``strength``."""
    x, y, z = (c / 150.0 for c in grid.world())
    terms = (x, y, z, x * x, y * y, z * z, x * y, y * z)
    coef = rng.normal(0.0, strength / 2.0, len(terms))
    log_b = sum(c * t for c, t in zip(coef, terms, strict=True))
    return np.exp(log_b - float(np.mean(log_b))).astype(np.float32)


def rician(signal: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Magnitude of the signal plus complex Gaussian noise of standard deviation ``sigma`` per channel."""
    re = signal + rng.normal(0.0, sigma, signal.shape).astype(np.float32)
    im = rng.normal(0.0, sigma, signal.shape).astype(np.float32)
    return np.sqrt(re * re + im * im).astype(np.float32)


def acquire(clean: np.ndarray, grid: Grid, gain: float, noise: float, bias: float, rng: np.random.Generator
            ) -> np.ndarray:
    """Bias field, scanner gain and Rician noise (``noise`` relative to urine on T2 = 1) on a clean image."""
    field = bias_field(grid, bias, rng)
    return rician(clean * field * gain, noise * gain, rng)


def diffusion(phantom: Phantom, latents: dict[str, float], grid: Grid, gain: float, noise: float, bias: float,
              rng: np.random.Generator) -> dict[str, np.ndarray]:
    """DWI at b = 0 and b = 1000 s/mm^2 (one acquisition, shared bias field) and the scanner's ADC map."""
    s0 = clean_image(phantom, "DWI_b0", latents, grid)
    adc = clean_image(phantom, "ADC", latents, grid)  # 10^-3 mm^2/s
    s1000 = s0 * np.exp(-B_HIGH * adc * 1e-3)
    field = bias_field(grid, bias, rng) * gain
    dwi0 = rician(s0 * field, noise * gain, rng)
    dwi1000 = rician(s1000 * field, noise * gain, rng)
    return {"DWI_b0": dwi0, "DWI_b1000": dwi1000, "ADC": fit_adc(np.stack([dwi0, dwi1000]), [0.0, B_HIGH])}
