"""2D segmentation on the one fit loop (:mod:`sarcomri.train.fit`): epochs over every (slice, augmentation) pair,
Adam on Dice + cross-entropy, a checkpoint after each epoch, resumable; optional freezing up to a level for
fine-tuning. Model folders are written and read by :mod:`sarcomri.models.folder` (spec: :class:`Seg2DSpec`).

Each epoch's order and dropout draws are seeded from ``(seed, epoch)`` alone, so a run killed after epoch k
and resumed from its checkpoint continues exactly as an uninterrupted run would (on the same device and
thread count). The final weights are kept (no validation-based choice of epoch: the study's test patients
are never looked at before the end).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from sarcomri.errors import InputError
from sarcomri.models.folder import load_model, read_info
from sarcomri.seg2d import augment
from sarcomri.seg2d.config import DataSettings2D, NetworkSettings, TrainSettings2D
from sarcomri.seg2d.data import SliceData
from sarcomri.seg2d.model import (
    DiceCELoss,
    Seg2DSpec,
    freeze,
    resolve_device,
    set_train_mode,
    trainable_parameters,
)
from sarcomri.train.fit import CHECKPOINT, EpochStats, FitResult, TrainTask, fit
from sarcomri.train.threads import torch_threads

__all__ = ["CHECKPOINT", "STREAM", "Seg2DTask", "batches", "fit_segmenter", "load_network", "model_spec"]

#: The 2D segmenter's stream of :func:`sarcomri.train.fit.epoch_seed` (its seeds are 31-bit).
STREAM = 0x2D5E9


def batches(order: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Consecutive batches of ``order``; a last batch of a single image joins the one before (BatchNorm
    cannot train on one image)."""
    out = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    if len(out) > 1 and len(out[-1]) == 1:
        last = out.pop()
        out[-1] = np.concatenate([out[-1], last])
    return out


class Seg2DTask(TrainTask):
    """A 2D segmenter's part of the fit loop: every (slice, transform) pair once per epoch in an order drawn
    by a numpy generator seeded with the epoch's seed (PyTorch's generator gets the same seed), frozen modules
    kept in evaluation mode, Dice + cross-entropy."""

    stream, seed_bits, torch_seed_offset = STREAM, 31, 0

    def __init__(self, data: SliceData, augmentation: str, batch_size: int, frozen: list[nn.Module],
                 device: torch.device):
        self.data, self.augmentation, self.batch_size = data, augmentation, batch_size
        self.frozen, self.device = frozen, device
        self.loss_fn = DiceCELoss()
        self.slice_idx, self.op_idx = augment.expand(len(data), augmentation)
        self.images = 0

    def start_epoch(self, epoch: int, seed: int) -> list[np.ndarray]:
        order = np.random.default_rng(seed).permutation(len(self.slice_idx))
        self.images = len(order)
        return batches(order, self.batch_size)

    def train_mode(self, model: nn.Module) -> None:
        set_train_mode(model, self.frozen)

    def batch(self, key: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        sl = self.slice_idx[key]
        x = torch.from_numpy(self.data.x[sl])
        y = torch.from_numpy(self.data.y[sl].astype(np.float32))
        x, y = augment.apply(x, y, self.op_idx[key], self.augmentation)
        return x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.loss_fn(model(x), y)

    def end_epoch(self, model: nn.Module, stats: EpochStats) -> dict[str, Any]:
        return {"epoch": stats.epoch, "train_loss": float(np.mean(stats.losses)), "images": self.images,
                "seconds": 0.0}


def fit_segmenter(
    network: nn.Module,
    data: SliceData,
    settings: TrainSettings2D,
    arch: str = "deeplabv3plus",
    level: str = "L0",
    augmentation: str = "paper",
    checkpoint_dir: str | Path | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
    stop_after_epoch: int | None = None,
) -> FitResult:
    """Train ``network`` (already built, possibly holding source weights) on ``data``, frozen up to ``level``.

    With ``checkpoint_dir`` a checkpoint is written atomically after every epoch and a run that finds one
    resumes after its last finished epoch. ``progress`` is called after every step with ``epoch``,
    ``iteration``, ``steps`` (per epoch) and ``loss``. ``stop_after_epoch`` ends early (to test resumption).
    ``settings.threads`` applies during the call.
    """
    with torch_threads(settings.threads):
        if len(data) * len(augment.transforms(augmentation)) < 2:
            raise InputError(None, "fewer than two training images: BatchNorm cannot train")
        torch.manual_seed(settings.seed)
        device = resolve_device(settings.device)
        frozen = freeze(network, arch, level)
        network.to(device)
        opt = torch.optim.Adam(trainable_parameters(network), lr=settings.lr, weight_decay=settings.weight_decay)
        task = Seg2DTask(data, augmentation, settings.batch_size, frozen, device)
        result = fit(network, opt, task, epochs=settings.epochs, seed=settings.seed, checkpoint_dir=checkpoint_dir,
                     map_location=device, on_step=progress, stop_after_epoch=stop_after_epoch)
    network.eval()
    result.network = network.cpu()
    return result


def model_spec(network: NetworkSettings, data: DataSettings2D, **extra: Any) -> Seg2DSpec:
    """What rebuilding and feeding a saved network needs: its settings and its input preparation."""
    return Seg2DSpec(network, data, extra)


def load_network(folder: str | Path) -> tuple[nn.Module, Seg2DSpec, dict[str, Any]]:
    """A saved 2D network (evaluation mode, CPU), its spec and its metadata."""
    info = read_info(folder)
    if info.task != "seg2d":
        raise InputError(folder, f"not a 2D segmentation model (a {info.task} model)")
    return load_model(folder), info.spec, info.meta
