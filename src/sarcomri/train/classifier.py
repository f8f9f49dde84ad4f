"""Classification on the one fit loop: epochs over a :class:`~sarcomri.data.sliceset.SliceSet`, cross-entropy,
the epoch chosen on validation loss (or AUC), early stopping.

Each epoch visits the slices in an order drawn by ``cfg.sampling`` (shuffled, class-balanced or oversampled,
optionally a fixed number per epoch) and augments every batch with the ``cfg.augmentation`` preset; both
draw from one ``torch.Generator`` seeded with the epoch's seed, dropout from PyTorch's global generator
seeded with the epoch's seed + 1 (:mod:`sarcomri.train.fit`).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score

from sarcomri.data.augment import augment_batch, get_preset
from sarcomri.data.sampling import class_weights, epoch_indices
from sarcomri.data.sliceset import SliceSet
from sarcomri.train.config import TrainConfig
from sarcomri.train.fit import EpochStats, FitResult, TrainTask, fit
from sarcomri.train.threads import torch_threads

#: The classifier's stream of :func:`sarcomri.train.fit.epoch_seed`.
STREAM = 0x5A4C


def _optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """The optimiser ``cfg`` names over the model's trainable parameters."""
    params = [p for p in model.parameters() if p.requires_grad]
    adam = {"lr": cfg.lr, "weight_decay": cfg.weight_decay, "betas": tuple(cfg.betas), "eps": cfg.eps}
    if cfg.optimizer in ("adam", "amsgrad"):
        return torch.optim.Adam(params, amsgrad=cfg.optimizer == "amsgrad", **adam)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, **adam)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}")


@torch.no_grad()
def predict_proba(model: torch.nn.Module, images: np.ndarray, batch_size: int = 64,
                  channels_last: bool = True) -> np.ndarray:
    """Softmax probabilities (N, classes) of a classifier in eval mode."""
    model.eval()
    out = []
    for i in range(0, len(images), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(images[i : i + batch_size]))
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        out.append(torch.softmax(model(x).float(), dim=1).numpy())
    return np.concatenate(out) if out else np.zeros((0, 2), np.float32)


def _evaluate(model: torch.nn.Module, data: SliceSet, cfg: TrainConfig, weight: torch.Tensor | None) -> dict:
    probs = predict_proba(model, data.images, cfg.batch_size * 2, cfg.channels_last)
    y = torch.from_numpy(data.labels)
    loss = F.nll_loss(torch.log(torch.from_numpy(probs).clamp_min(1e-7)), y, weight=weight).item()
    auc = float("nan")
    if probs.shape[1] == 2 and len(np.unique(data.labels)) == 2:
        auc = float(roc_auc_score(data.labels, probs[:, 1]))
    return {"val_loss": loss, "val_auc": auc}


def _is_better(value: float, best: float, monitor: str) -> bool:
    if math.isnan(value):
        return False
    return value < best if monitor == "val_loss" else value > best


class ClassifierTask(TrainTask):
    """A classifier's part of the fit loop: sampled and augmented slice batches, weighted cross-entropy, the
    history row with validation loss and AUC, and the best epoch so far (kept in the checkpoint)."""

    stream = STREAM

    def __init__(self, train: SliceSet, val: SliceSet | None, cfg: TrainConfig, num_classes: int = 2):
        self.cfg, self.val = cfg, val if val is not None and len(val) else None
        self.aug = get_preset(cfg.augmentation)
        self.weight = class_weights(train.labels, num_classes) if cfg.class_weighting else None
        self.train_labels = train.labels
        self.images, self.labels = torch.from_numpy(train.images), torch.from_numpy(train.labels)
        self.generator = torch.Generator()
        self.best_value = math.inf if cfg.monitor == "val_loss" else -math.inf
        self.since_best, self.best_epoch = 0, -1
        self.best_state: dict[str, torch.Tensor] | None = None

    def start_epoch(self, epoch: int, seed: int) -> list[torch.Tensor]:
        """The epoch's batches of slice indices; a batch of one slice is dropped (BatchNorm cannot train on a
        single example) unless it is the whole epoch."""
        self.generator = torch.Generator().manual_seed(seed)
        order = epoch_indices(self.train_labels, self.generator, self.cfg.sampling, self.cfg.slices_per_epoch)
        size = self.cfg.batch_size
        parts = [order[i : i + size] for i in range(0, len(order), size)]
        return [idx for idx in parts if len(idx) >= 2 or len(order) <= 1]

    def batch(self, key: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, _ = augment_batch(self.images[key], self.aug, self.generator)
        if self.cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, self.labels[key]

    def loss(self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(model(x), y, weight=self.weight)

    def end_epoch(self, model: torch.nn.Module, stats: EpochStats) -> dict[str, Any]:
        """Mean training loss (over slices), validation loss and AUC, and the best epoch so far (with ``select:
        last``, the epoch just run)."""
        total, seen = 0.0, 0
        for loss, n in zip(stats.losses, stats.sizes, strict=True):
            total += loss * n
            seen += n
        row = {"epoch": stats.epoch, "train_loss": total / max(seen, 1), "seconds": 0.0,
               "train_seconds": stats.train_seconds, "step_seconds": stats.step_seconds}
        monitor = self.cfg.monitor
        if self.val is not None:
            row.update(_evaluate(model, self.val, self.cfg, self.weight))
            value = row[monitor]
        else:
            value = -stats.epoch if monitor == "val_loss" else stats.epoch  # no validation: keep the last epoch
        if self.cfg.select == "last":  # a fixed number of epochs: the model keeps the last epoch's weights
            self.best_epoch, self.best_state, self.since_best = stats.epoch, None, 0
            return row
        if _is_better(value, self.best_value, monitor):
            self.best_value, self.since_best = value, 0
            self.best_epoch, self.best_state = stats.epoch, copy.deepcopy(model.state_dict())
        else:
            self.since_best += 1
        return row

    def should_stop(self) -> bool:
        return bool(self.cfg.patience and self.since_best >= self.cfg.patience)

    def state(self) -> dict[str, Any]:
        return {"best_epoch": self.best_epoch, "best_state": self.best_state, "best_value": self.best_value,
                "since_best": self.since_best}

    def load_state(self, state: dict[str, Any]) -> None:
        self.best_epoch, self.best_state = state["best_epoch"], state["best_state"]
        self.best_value, self.since_best = state["best_value"], state["since_best"]


def fit_classifier(
    model: torch.nn.Module,
    train: SliceSet,
    val: SliceSet | None,
    cfg: TrainConfig,
    checkpoint_dir: str | Path | None = None,
    num_classes: int = 2,
    progress: Callable[[int, dict[str, Any]], None] | None = None,
    stop_after_epoch: int | None = None,
) -> FitResult:
    """Train ``model`` on ``train``, choosing the epoch on ``val`` (the last epoch when ``val`` is None or empty);
    the model ends with the chosen epoch's weights.

    With ``checkpoint_dir`` a checkpoint is written atomically after every epoch and a run that finds one
    resumes after its last finished epoch. ``progress`` is an optional callable ``(epoch, history row)``.
    ``stop_after_epoch`` ends the run early (for testing resumption). ``cfg.threads`` applies during the call.
    """
    with torch_threads(cfg.threads):
        task = ClassifierTask(train, val, cfg, num_classes)
        if cfg.channels_last:
            model = model.to(memory_format=torch.channels_last)
        result = fit(model, _optimizer(model, cfg), task, epochs=cfg.epochs, seed=cfg.seed,
                     checkpoint_dir=checkpoint_dir, on_epoch=progress, stop_after_epoch=stop_after_epoch)
        result.best_epoch, result.best_state, result.network = task.best_epoch, task.best_state, model
        if result.best_state is not None:
            model.load_state_dict(result.best_state)
    return result
