"""The previous stage's mask as an input channel (a cascade's refining stage): its augmentation in training.

nnU-Net trains the full-resolution stage of its cascade on the low-resolution stage's segmentation and perturbs
that input so the network learns to correct it rather than copy it (``ApplyRandomBinaryOperatorTransform``: a
random dilation, erosion, opening or closing; ``RemoveRandomConnectedComponentFromOneHotEncodingTransform``: a
small connected component dropped). :class:`RandPriorPerturbd` does both on a patch's ``prior`` array, with
MONAI's random state so that a seeded pipeline stays reproducible.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import numpy as np
from monai.transforms import MapTransform, RandomizableTransform
from scipy import ndimage

#: The binary operators drawn from (nnU-Net's set).
OPERATORS = ("dilation", "erosion", "opening", "closing")


def ball(radius: int) -> np.ndarray:
    """A 3D ball structuring element of ``radius`` voxels."""
    r = int(radius)
    zz, yy, xx = np.mgrid[-r:r + 1, -r:r + 1, -r:r + 1]
    return (zz**2 + yy**2 + xx**2) <= r * r


def binary_operator(mask: np.ndarray, operator: str, radius: int) -> np.ndarray:
    """``mask`` (z, y, x, boolean) after one binary ``operator`` with a ball of ``radius`` voxels."""
    fn = {"dilation": ndimage.binary_dilation, "erosion": ndimage.binary_erosion,
          "opening": ndimage.binary_opening, "closing": ndimage.binary_closing}[operator]
    return fn(mask, structure=ball(radius))


def drop_component(mask: np.ndarray, rng: np.random.RandomState, max_fraction: float = 0.15) -> np.ndarray:
    """``mask`` without one of its connected components drawn at random among those covering at most
    ``max_fraction`` of the array (unchanged when none is that small)."""
    labels, n = ndimage.label(mask)
    if n == 0:
        return mask
    sizes = np.bincount(labels.ravel())[1:]
    small = np.flatnonzero(sizes <= max_fraction * mask.size) + 1
    if small.size == 0:
        return mask
    return mask & (labels != rng.choice(small))


class RandPriorPerturbd(RandomizableTransform, MapTransform):
    """With ``prob``: one binary operator of :data:`OPERATORS` with a ball of 1 to ``max_radius`` voxels on each
    key's (1, z, y, x) mask; independently with ``drop_prob``: one small connected component removed."""

    def __init__(self, keys, prob: float = 0.4, max_radius: int = 4, drop_prob: float = 0.2):
        MapTransform.__init__(self, keys)
        RandomizableTransform.__init__(self, prob)
        self.max_radius, self.drop_prob = int(max_radius), float(drop_prob)
        self._op, self._radius, self._drop = OPERATORS[0], 1, False

    def randomize(self, data=None) -> None:
        super().randomize(None)
        self._op = OPERATORS[self.R.randint(len(OPERATORS))]
        self._radius = int(self.R.randint(1, self.max_radius + 1))
        self._drop = bool(self.R.rand() < self.drop_prob)

    def __call__(self, data: Mapping[Hashable, np.ndarray]) -> dict:
        self.randomize()
        out = dict(data)
        if not (self._do_transform or self._drop):
            return out
        for k in self.key_iterator(out):
            arr = np.asarray(out[k].as_tensor() if hasattr(out[k], "as_tensor") else out[k])
            mask = arr[0] > 0
            if self._do_transform:
                mask = binary_operator(mask, self._op, self._radius)
            if self._drop:
                mask = drop_component(mask, self.R)
            out[k] = mask[None].astype(np.uint8)
        return out
