"""The slice stage beside a 3D model (``slices:`` of a 3D config, :class:`~sarcomri.seg3d.config.SlicesSettings`):
the 3D model finds the tumour, a pretrained 2D network at about the images' own in-plane resolution draws its edge.

Why two networks (docs/segmentation3d.md, soft-tissue sarcoma T1): the CPU's 3D model works on a coarse grid
(3.9 mm) and finds the tumour in almost every patient, but its mask often runs on along the limb beyond the
tumour's end; a 2D U-Net with an ImageNet encoder on the slices (about 1 mm) stops at the tumour's end, but misses
tumours darker than muscle on plain T1 altogether. So the 2D probability is used only where the 2D network agrees
with the 3D one about where the tumour is: when its mask covers at least ``gate`` of the 3D mask, the two
probabilities are averaged (:func:`gated_fusion`); otherwise the 3D result stands.

The 2D network is trained in each fold after the 3D model, on the same training patients, and saved as a 2D model
folder in the 3D model's folder (:data:`SLICES_DIR`); the settings the fusion needs are in its ``meta``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from sarcomri.cohort.manifest import Cohort
from sarcomri.seg3d.config import SlicesSettings
from sarcomri.seg3d.postprocess import keep_components

#: The slice stage's folder inside a 3D model folder.
SLICES_DIR = "slices"

#: The 2D mask that is compared with the 3D one: the 2D probability at or above this.
SLICE_MASK_THRESHOLD = 0.5


def data_settings(settings: SlicesSettings, sequences: Sequence[str]):
    """The 2D input preparation of the slice stage for ``sequences`` (the 3D model's, in its order)."""
    from sarcomri.seg2d.config import DataSettings2D

    return DataSettings2D(sequences=list(sequences), image_size=settings.image_size,
                          background_ratio=settings.background_ratio, augmentation="paper")


def epochs_for(settings: SlicesSettings, slices: int, transforms: int) -> int:
    """Passes over ``slices`` training slices (each seen under ``transforms`` augmentations) that make about
    ``settings.steps`` steps of ``settings.batch_size``; at least one."""
    return max(1, round(settings.steps * settings.batch_size / (transforms * slices)))


def train_slices(cohort: Cohort, group: Sequence[str], train_ids: Sequence[str], settings: SlicesSettings,
                 seed: int, folder: Path, meta: dict[str, Any], threads: int | None = None,
                 progress=None) -> None:
    """Train the slice stage on ``train_ids`` (resuming from a checkpoint in ``folder``) and save its 2D model
    folder there, with ``meta`` and the settings under ``meta["slices"]``. ``progress`` is called with
    ``{"event": "slices_start", "steps": ...}`` once, then after every step with ``{"event": "step", ...}``."""
    import torch

    from sarcomri.models.folder import save_model
    from sarcomri.seg2d import augment
    from sarcomri.seg2d.config import TrainSettings2D
    from sarcomri.seg2d.data import load_case, slice_data
    from sarcomri.seg2d.model import build_network
    from sarcomri.seg2d.train import CHECKPOINT, fit_segmenter, model_spec

    data_cfg = data_settings(settings, group)
    data = slice_data([load_case(cohort, p, data_cfg) for p in train_ids], settings.background_ratio, seed=seed)
    transforms = len(augment.transforms("paper"))
    epochs = epochs_for(settings, len(data), transforms)
    train = TrainSettings2D(epochs=epochs, batch_size=settings.batch_size, lr=settings.lr, seed=seed,
                            threads=threads)
    if progress:
        progress({"event": "slices_start", "steps": epochs * max(1, len(data) * transforms // settings.batch_size),
                  "slices": len(data)})
    torch.manual_seed(seed)  # the decoder's initialisation (the encoder's weights are ImageNet's)
    network = build_network(settings.network, len(group))
    result = fit_segmenter(network, data, train, arch=settings.network.arch, augmentation="paper",
                           checkpoint_dir=folder,
                           progress=(lambda e: progress({"event": "step", **e})) if progress else None)
    save_model(result.network, model_spec(settings.network, data_cfg), folder, history=result.history,
               meta={**meta, "seed": seed, "slices": settings.model_dump(mode="json")})
    (folder / CHECKPOINT).unlink(missing_ok=True)


def slices_probability(segmenters: Sequence, images: Sequence[sitk.Image], case_id: str = "case",
                       bf16: bool = False) -> sitk.Image:
    """The mean tumour probability of the 2D models ``segmenters`` (:class:`~sarcomri.seg2d.infer.Segmenter`) on
    the grid of ``images[0]``; with ``bf16`` the networks run under bfloat16 autocast on the CPU (the
    probabilities are float32)."""
    import torch

    from sarcomri.seg2d.infer import predict_images

    total = None
    for segmenter in segmenters:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            _, prob = predict_images(segmenter, images, case_id=case_id)
        total = prob if total is None else total + prob
    return total / len(segmenters)


def coverage(mask3d: np.ndarray, mask2d: np.ndarray) -> float:
    """The fraction of the 3D mask that the 2D mask covers (0 for an empty 3D mask)."""
    n = int(mask3d.sum())
    return float((mask3d & mask2d).sum()) / n if n else 0.0


def gated_fusion(prob3d: np.ndarray, prob2d: np.ndarray, threshold3d: float, keep: float,
                 settings: SlicesSettings) -> tuple[np.ndarray, float] | None:
    """The fused tumour probability and its threshold, or None when the gate stays closed (use the 3D result).

    The 3D mask is ``prob3d`` at ``threshold3d`` with the components ``keep`` says
    (:func:`~sarcomri.seg3d.postprocess.keep_components`), the 2D mask ``prob2d`` at
    :data:`SLICE_MASK_THRESHOLD`. When the 2D mask covers at least ``settings.gate`` of the 3D mask (and the 3D
    mask is not empty), the result is ``(1 - weight) * prob3d + weight * prob2d`` with ``settings.threshold``."""
    mask3d = keep_components(prob3d >= threshold3d, prob3d, keep)
    if not mask3d.any() or coverage(mask3d, prob2d >= SLICE_MASK_THRESHOLD) < settings.gate:
        return None
    w = settings.weight
    return ((1 - w) * prob3d + w * prob2d).astype(np.float32), settings.threshold
