"""Batched random augmentation of 2D images (N, C, H, W), run inside the training step.

One affine warp per image (rotation, shear, zoom, flips) through ``affine_grid``/``grid_sample`` plus a
brightness factor, all drawn from an explicit ``torch.Generator`` so that an epoch's augmentation depends
only on its seed. Presets follow the papers:

* ``carcinosarcoma`` (Keras-style, light): horizontal flip, rotation +-4.5 degrees, shear 0.05 (radians of
  shear angle; Keras' ``shear_range`` is an angle), zoom 0.95 to 1.05.
* ``sarcoma`` (heavy): horizontal and vertical flips, rotation +-20 degrees, zoom 0.9 to 1.1, brightness
  0.8 to 1.2 (the study drew a fixed number of random slices per epoch from this augmented pool; see
  ``TrainConfig.slices_per_epoch``).
* ``none``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Augmentation:
    """Ranges of the random transforms; zero ranges switch a transform off."""

    hflip: bool = False
    vflip: bool = False
    rotation_deg: float = 0.0
    shear: float = 0.0
    zoom: float = 0.0
    brightness: float = 0.0

    @property
    def is_identity(self) -> bool:
        return not (self.hflip or self.vflip or self.rotation_deg or self.shear or self.zoom or self.brightness)


PRESETS: dict[str, Augmentation] = {
    "none": Augmentation(),
    "carcinosarcoma": Augmentation(hflip=True, rotation_deg=4.5, shear=0.05, zoom=0.05),
    "sarcoma": Augmentation(hflip=True, vflip=True, rotation_deg=20.0, zoom=0.1, brightness=0.2),
}


def get_preset(name: str) -> Augmentation:
    """The augmentation preset called ``name`` (see the module docstring)."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown augmentation preset {name!r}; choose one of {sorted(PRESETS)}") from None


def random_affine_matrices(n: int, aug: Augmentation, generator: torch.Generator) -> torch.Tensor:
    """(n, 2, 3) matrices for ``affine_grid`` (output-to-input sampling in normalised coordinates)."""

    def uniform(half_range: float) -> torch.Tensor:
        return (torch.rand(n, generator=generator) * 2 - 1) * half_range

    theta = uniform(math.radians(aug.rotation_deg))
    shear = uniform(aug.shear)
    scale = 1 + uniform(aug.zoom)
    sx = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0) if aug.hflip else torch.ones(n)
    sy = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0) if aug.vflip else torch.ones(n)
    cos, sin = torch.cos(theta), torch.sin(theta)
    rot = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
    shr = torch.stack([torch.stack([torch.ones(n), torch.tan(shear)], -1),
                       torch.stack([torch.zeros(n), torch.ones(n)], -1)], -2)
    flip = torch.diag_embed(torch.stack([sx, sy], -1))
    lin = rot @ shr @ flip / scale[:, None, None]
    return torch.cat([lin, torch.zeros(n, 2, 1)], dim=2)


def augment_batch(
    images: torch.Tensor, aug: Augmentation, generator: torch.Generator, masks: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Warp a batch (and its masks with nearest neighbour) by random transforms from ``aug``.

    Intensities outside the image are filled with each image's minimum (the background of an MR slice).
    """
    if aug.is_identity:
        return images, masks
    n = images.shape[0]
    mats = random_affine_matrices(n, aug, generator).to(images.device, images.dtype)
    grid = F.affine_grid(mats, list(images.shape), align_corners=False)
    floor = images.amin(dim=(1, 2, 3), keepdim=True)
    out = F.grid_sample(images - floor, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + floor
    if aug.brightness:
        factor = 1 + (torch.rand(n, generator=generator) * 2 - 1) * aug.brightness
        out = out * factor.to(out.device, out.dtype)[:, None, None, None]
    if masks is not None:
        m = masks.float().unsqueeze(1) if masks.ndim == 3 else masks.float()
        m = F.grid_sample(m, grid, mode="nearest", padding_mode="zeros", align_corners=False)
        masks = m.squeeze(1).to(masks.dtype) if masks.ndim == 3 else m.to(masks.dtype)
    return out, masks
