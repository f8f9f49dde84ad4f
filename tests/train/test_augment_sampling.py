"""Batched augmentation and epoch sampling."""

import math

import numpy as np
import pytest
import torch

from sarcomri.data.augment import Augmentation, augment_batch, get_preset, random_affine_matrices
from sarcomri.data.sampling import class_weights, epoch_indices


def test_identity_preset_returns_input_unchanged():
    x = torch.randn(4, 3, 16, 16)
    out, _ = augment_batch(x, get_preset("none"), torch.Generator().manual_seed(0))
    assert out is x
    with pytest.raises(ValueError, match="unknown augmentation preset"):
        get_preset("heavy")


def test_rotation_matrices_stay_within_range():
    aug = Augmentation(rotation_deg=4.5)
    m = random_affine_matrices(2000, aug, torch.Generator().manual_seed(1))
    angles = torch.atan2(m[:, 1, 0], m[:, 0, 0]).abs()
    assert angles.max() <= math.radians(4.5) + 1e-6 and angles.max() > math.radians(4.0)
    z = random_affine_matrices(2000, Augmentation(zoom=0.05), torch.Generator().manual_seed(1))
    scale = 1 / z[:, 0, 0]
    assert scale.min() >= 0.95 - 1e-6 and scale.max() <= 1.05 + 1e-6


def test_horizontal_flip_is_exact_and_masks_follow_images():
    x = torch.arange(2 * 1 * 4 * 6, dtype=torch.float32).reshape(2, 1, 4, 6)
    gen = torch.Generator().manual_seed(3)
    out, masks = augment_batch(x, Augmentation(hflip=True), gen, masks=(x[:, 0] > 20).to(torch.uint8))
    for i in range(2):
        assert torch.allclose(out[i], x[i], atol=1e-4) or torch.allclose(out[i], x[i].flip(-1), atol=1e-4)
        assert torch.equal(masks[i].bool(), out[i, 0] > 20)


def test_augmentation_is_reproducible_per_seed_and_fills_with_background():
    x = torch.rand(3, 2, 20, 20) + 5.0
    aug = get_preset("sarcoma")
    a, _ = augment_batch(x, aug, torch.Generator().manual_seed(7))
    b, _ = augment_batch(x, aug, torch.Generator().manual_seed(7))
    c, _ = augment_batch(x, aug, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.min() >= 5.0 * 0.8 - 1e-4  # filled with the image minimum, scaled by at most -20% brightness


def test_balanced_sampling_equalises_classes_and_oversampling_adds_only_rare():
    labels = np.array([1] * 10 + [0] * 90)
    g = torch.Generator().manual_seed(0)
    idx = epoch_indices(labels, g, "balanced", n_draws=20000)
    assert abs(labels[idx.numpy()].mean() - 0.5) < 0.02
    idx = epoch_indices(labels, g, "oversample", oversample_factor=3.0)
    drawn = labels[idx.numpy()]
    assert len(idx) == 120 and drawn.sum() == 30 and (drawn == 0).sum() == 90
    perm = epoch_indices(labels, g, "shuffle")
    assert sorted(perm.tolist()) == list(range(100))
    assert len(epoch_indices(labels, g, "shuffle", n_draws=30).unique()) == 30


def test_class_weights_are_inverse_frequency():
    w = class_weights(np.array([0] * 75 + [1] * 25), 2)
    assert torch.allclose(w, torch.tensor([100 / 150, 100 / 50]))
    assert class_weights(np.array([0, 0]), 3).tolist()[1:] == [0.0, 0.0]
