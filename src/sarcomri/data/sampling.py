"""Which training examples an epoch visits: shuffled, class-balanced, or a fixed number drawn at random.

Rare classes (carcinosarcoma is about 5% of uterine malignancies) can be handled by class weights in the
loss, by balanced sampling (each class drawn equally often), or by oversampling the rare class. These
act on the training fold only; validation and test sets are never resampled.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

Sampling = Literal["shuffle", "balanced", "oversample"]


def epoch_indices(
    labels: np.ndarray,
    generator: torch.Generator,
    sampling: Sampling = "shuffle",
    n_draws: int | None = None,
    oversample_factor: float = 2.0,
) -> torch.Tensor:
    """Indices of the examples to visit in one epoch.

    ``shuffle``: a permutation (or ``n_draws`` drawn without replacement, with replacement when more than
    the pool). ``balanced``: ``n_draws`` (default: the pool size) drawn with replacement so that every class
    is equally likely. ``oversample``: the rare class's examples repeated ``oversample_factor`` times, then
    shuffled.
    """
    labels = np.asarray(labels)
    n = len(labels)
    if n == 0:
        raise ValueError("no training examples")
    if sampling == "shuffle":
        if n_draws is None or n_draws == n:
            return torch.randperm(n, generator=generator)
        if n_draws < n:
            return torch.randperm(n, generator=generator)[:n_draws]
        return torch.randint(0, n, (n_draws,), generator=generator)
    if sampling == "balanced":
        classes, counts = np.unique(labels, return_counts=True)
        per_class = {c: 1.0 / (len(classes) * k) for c, k in zip(classes, counts, strict=True)}
        weights = torch.tensor([per_class[v] for v in labels], dtype=torch.double)
        return torch.multinomial(weights, n_draws or n, replacement=True, generator=generator)
    if sampling == "oversample":
        classes, counts = np.unique(labels, return_counts=True)
        rare = classes[np.argmin(counts)]
        extra_n = int(round((oversample_factor - 1) * counts.min()))
        rare_idx = np.flatnonzero(labels == rare)
        extra = rare_idx[torch.randint(0, len(rare_idx), (extra_n,), generator=generator).numpy()]
        pool = torch.as_tensor(np.concatenate([np.arange(n), extra]))
        order = pool[torch.randperm(len(pool), generator=generator)]
        return order if n_draws is None else order[:n_draws]
    raise ValueError(f"unknown sampling {sampling!r}; choose shuffle, balanced or oversample")


def class_weights(labels: np.ndarray, num_classes: int) -> torch.Tensor:
    """Inverse-frequency class weights for the loss (a class absent from ``labels`` gets weight 0)."""
    counts = np.bincount(np.asarray(labels, dtype=int), minlength=num_classes).astype(float)
    w = np.where(counts > 0, counts.sum() / (num_classes * np.maximum(counts, 1)), 0.0)
    return torch.tensor(w, dtype=torch.float32)
