"""A two-stage cascade (nnU-Net's ``3d_cascade_fullres`` at a CPU budget): a coarse model finds the tumour, a
refining model on a finer grid redraws it inside a box around the coarse mask. This module holds the box, the
prior channel and the refining stage's settings; its training cases are made by
:func:`sarcomri.seg3d.train.refine_training_cases`, its inference is part of
:func:`sarcomri.seg3d.infer.predict_images` (:func:`~sarcomri.seg3d.infer.refine_probability`).

The refining model takes the sequences plus the coarse mask as one more channel (``Plan.prior``). It is trained
on the coarse model's predictions on its own training patients (not on the reference mask: the input must look
like what the coarse stage gives at inference), perturbed in every patch (:mod:`sarcomri.seg3d.prior`), and on
the box around the coarse mask and the reference mask widened by the margin. At inference the coarse stage's
mask (the mean of the coarse models, thresholded) gives the box and the prior channel; the refining models'
mean probability inside the box is the result, 0 outside it. A patient whose coarse mask is empty keeps the
coarse probability (no box to refine).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import SimpleITK as sitk

from sarcomri.seg3d.config import CascadeSettings
from sarcomri.seg3d.data import Case

#: The refining stage's folder inside a (coarse) model folder.
REFINE_DIR = "refine"

Box = tuple[slice, slice, slice]


def roi_box(mask: np.ndarray, spacing_zyx: Sequence[float], margin_mm: float) -> Box | None:
    """The bounding box of a (z, y, x) mask widened by ``margin_mm`` on every side (clipped to the array), or
    None for an empty mask."""
    idx = np.argwhere(mask)
    if idx.size == 0:
        return None
    pad = np.ceil(margin_mm / np.asarray(spacing_zyx, float)).astype(int)
    lo = np.maximum(idx.min(0) - pad, 0)
    hi = np.minimum(idx.max(0) + 1 + pad, mask.shape)
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))  # type: ignore[return-value]


def prior_on_grid(probability: sitk.Image, grid: sitk.Image, threshold: float) -> np.ndarray:
    """The coarse stage's mask (1, z, y, x) uint8 on ``grid``: its probability resampled linearly, thresholded."""
    prob = sitk.Resample(probability, grid, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)
    return (sitk.GetArrayFromImage(prob) >= threshold).astype(np.uint8)[None]


def crop(case: Case, box: Box) -> Case:
    """The case's arrays (image, label, prior) inside ``box``; the grids are kept (whole-image geometry)."""
    full = (slice(None), *box)
    return replace(case, image=case.image[full],
                   label=None if case.label is None else case.label[full],
                   prior=None if case.prior is None else case.prior[full])


def training_case(case: Case, prior: np.ndarray, margin_mm: float, spacing_zyx: Sequence[float]) -> Case:
    """A refining stage's training case: the fine-grid case with its prior, cropped to the box around the prior
    and the reference mask widened by ``margin_mm`` (the whole case when both are empty)."""
    with_prior = replace(case, prior=prior)
    region = prior[0] > 0
    if case.label is not None:
        region = region | (case.label[0] > 0)
    box = roi_box(region, spacing_zyx, margin_mm)
    return with_prior if box is None else crop(with_prior, box)


@dataclass
class RefineSettings:
    """What inference needs from the cascade settings a refining model was trained with."""

    margin_mm: float
    threshold: float
    mirror: bool | None

    @classmethod
    def from_meta(cls, meta: dict) -> RefineSettings:
        c = CascadeSettings(**(meta.get("cascade") or {}))
        return cls(c.margin_mm, c.threshold, c.mirror)
