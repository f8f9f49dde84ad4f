"""The paper's augmentation: every training slice also rotated by +20, -20, +60 and -60 degrees (about its
centre) and flipped left-right, six images per slice, each seen once per epoch.

The images are made batch by batch (no 6x copy of the data set in memory): an epoch is the list of
(slice, transform) pairs (:func:`expand`), shuffled; :func:`apply` transforms a batch. Rotations resample
bilinearly with zeros outside the slice (0 is the mean of a z-scored image); masks are rotated the same way
and thresholded at 0.5. The identity and the flip are exact.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from sarcomri.errors import InputError

#: (rotation in degrees, counter-clockwise as displayed with row 0 at the top; horizontal flip) of each image
#: made from a slice.
PAPER_TRANSFORMS: tuple[tuple[float, bool], ...] = (
    (0.0, False), (20.0, False), (-20.0, False), (60.0, False), (-60.0, False), (0.0, True),
)
PRESETS: dict[str, tuple[tuple[float, bool], ...]] = {"paper": PAPER_TRANSFORMS, "none": ((0.0, False),)}


def transforms(name: str) -> tuple[tuple[float, bool], ...]:
    """The transforms of a named augmentation (``paper``: six; ``none``: the identity)."""
    if name not in PRESETS:
        raise InputError(None, f"unknown augmentation {name!r}; choose from {', '.join(PRESETS)}")
    return PRESETS[name]


def expand(n_slices: int, name: str = "paper") -> tuple[np.ndarray, np.ndarray]:
    """Every (slice, transform) pair of an epoch: two arrays of length ``n_slices x len(transforms)``."""
    k = len(transforms(name))
    return np.repeat(np.arange(n_slices), k), np.tile(np.arange(k), n_slices)


def apply(x: torch.Tensor, y: torch.Tensor | None, ops: np.ndarray | torch.Tensor,
          name: str = "paper") -> tuple[torch.Tensor, torch.Tensor | None]:
    """Transform a batch: ``x`` (B, C, H, W) images, ``y`` (B, H, W) masks or None, ``ops`` (B,) the index of
    each sample's transform in :func:`transforms`."""
    table = transforms(name)
    ops = torch.as_tensor(np.asarray(ops), dtype=torch.long)
    x = x.clone()
    y = y.clone() if y is not None else None
    flips = torch.tensor([table[i][1] for i in ops.tolist()], dtype=torch.bool)
    if flips.any():
        x[flips] = torch.flip(x[flips], dims=[-1])
        if y is not None:
            y[flips] = torch.flip(y[flips], dims=[-1])
    angles = torch.tensor([table[i][0] for i in ops.tolist()], dtype=torch.float32)
    rot = angles != 0
    if rot.any():
        a = angles[rot] * (math.pi / 180.0)
        cos, sin = torch.cos(a), torch.sin(a)
        zero = torch.zeros_like(a)
        # affine_grid maps output to input coordinates (x right, y down): input = R(a) output, so the image
        # turns by -a in the y-down frame, i.e. by +a counter-clockwise as displayed (row 0 at the top)
        theta = torch.stack([torch.stack([cos, -sin, zero], -1), torch.stack([sin, cos, zero], -1)], 1)
        grid = F.affine_grid(theta.to(x.dtype), list(x[rot].shape), align_corners=False)
        x[rot] = F.grid_sample(x[rot], grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        if y is not None:
            m = F.grid_sample(y[rot][:, None].float(), grid, mode="bilinear", padding_mode="zeros",
                              align_corners=False)[:, 0]
            y[rot] = (m >= 0.5).to(y.dtype)
    return x, y
