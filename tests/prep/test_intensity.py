"""The one z-score: each task's parameters give exactly (to the bit) the formula that task used on its own."""

from __future__ import annotations

import numpy as np
import pytest

from sarcomri.prep.intensity import zscore
from sarcomri.seg2d.data import normalise as seg2d_normalise
from sarcomri.seg3d.data import zscore as seg3d_zscore


def _arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    rand = rng.normal(100, 30, (3, 7, 13, 11)).astype(np.float32)
    padded = rand.copy()
    padded[:, :, :3] = 0
    padded[1, 2] = 0
    flat = rand.copy()
    flat[1] = 7.3  # a constant channel
    flat[0, 3] = 2.0  # a constant slice
    return {"rand": rand, "padded": padded, "flat": flat, "zeros": np.zeros((2, 3, 4, 4), np.float32),
            "int16": rng.integers(0, 500, (2, 5, 9, 8)).astype(np.int16)}


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("name", list(_arrays()))
def test_each_task_gets_its_own_formula_bit_for_bit(name):
    arr = _arrays()[name]
    # classifier slices: float32 statistics, optionally over a mask, std floored at eps
    ref = np.asarray(arr, np.float32)
    for mask in (None, ref > np.median(ref), np.zeros(ref.shape, bool)):
        sel = ref[mask] if mask is not None and mask.any() else ref
        want = ((ref - sel.mean()) / max(float(sel.std()), 1e-6)).astype(np.float32)
        assert _same(zscore(arr, mask), want)
    # 2D segmenter: float64 statistics per channel or per slice, a constant image or slice becomes 0
    a = arr.astype(np.float64)
    for mode, axes in (("zscore", (1, 2, 3)), ("zscore_slice", (2, 3))):
        mean, std = a.mean(axis=axes, keepdims=True), a.std(axis=axes, keepdims=True)
        want = ((a - mean) / np.where(std > 1e-8, std, 1.0)).astype(np.float32) * (std > 1e-8)
        assert _same(seg2d_normalise(arr, mode), want)
    # 3D segmenter: float64 statistics per channel, over the voxels where any channel is non-zero (others 0)
    for nonzero in (False, True):
        want = np.zeros_like(arr, dtype=np.float32)
        inside = np.any(arr != 0, axis=0) if nonzero else np.ones(arr.shape[1:], bool)
        if inside.any():
            for c in range(arr.shape[0]):
                values = arr[c][inside].astype(np.float64)
                want[c][inside] = (values - values.mean()) / max(float(values.std()), 1e-8)
        assert _same(seg3d_zscore(arr, nonzero=nonzero), want)


def test_parameters_are_checked():
    with pytest.raises(ValueError, match="no mask"):
        zscore(np.ones((2, 3)), np.ones((2, 3), bool), axes=1)
    with pytest.raises(ValueError, match="flat"):
        zscore(np.arange(4.0), flat="clip")
