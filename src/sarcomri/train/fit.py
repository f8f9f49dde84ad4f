"""The fit loop for 2D classifiers: one epoch at a time, a checkpoint after each, resumable.

Randomness of an epoch (sampling order, augmentation, dropout) is seeded from ``(seed, epoch)`` alone, so a
training killed after epoch k and resumed from its checkpoint produces exactly the weights of an
uninterrupted run.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score

from sarcomri.data.augment import augment_batch, get_preset
from sarcomri.data.sampling import class_weights, epoch_indices
from sarcomri.data.sliceset import SliceSet
from sarcomri.io.atomic import atomic_path
from sarcomri.train.config import TrainConfig

CHECKPOINT = "checkpoint.pt"


@dataclass
class FitResult:
    """History per epoch, the chosen epoch and its weights."""

    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = -1
    best_state: dict[str, torch.Tensor] | None = None
    resumed_from: int | None = None


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one epoch's randomness, independent of how the run got there."""
    return int(np.random.SeedSequence([seed, epoch, 0x5A4C]).generate_state(1)[0])


def _optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer in ("adam", "amsgrad"):
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, amsgrad=cfg.optimizer == "amsgrad")
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
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


def fit(
    model: torch.nn.Module,
    train: SliceSet,
    val: SliceSet | None,
    cfg: TrainConfig,
    checkpoint_dir: str | Path | None = None,
    num_classes: int = 2,
    progress: Any = None,
    stop_after_epoch: int | None = None,
) -> FitResult:
    """Train ``model`` on ``train``, choosing the epoch on ``val`` (the last epoch when ``val`` is None).

    With ``checkpoint_dir`` a checkpoint is written atomically after every epoch and a run that finds one
    resumes after its last finished epoch. ``progress`` is an optional callable ``(epoch, logs)``.
    ``stop_after_epoch`` ends the run early (for testing resumption).
    """
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    aug = get_preset(cfg.augmentation)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = _optimizer(model, cfg)
    weight = class_weights(train.labels, num_classes) if cfg.class_weighting else None
    result = FitResult()
    best_value = math.inf if cfg.monitor == "val_loss" else -math.inf
    since_best, start = 0, 0
    ckpt = Path(checkpoint_dir) / CHECKPOINT if checkpoint_dir else None
    if ckpt is not None and ckpt.is_file():
        state = torch.load(ckpt, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        result = FitResult(state["history"], state["best_epoch"], state["best_state"], resumed_from=state["epoch"])
        best_value, since_best, start = state["best_value"], state["since_best"], state["epoch"] + 1
    images, labels = torch.from_numpy(train.images), torch.from_numpy(train.labels)
    for epoch in range(start, cfg.epochs):
        if cfg.patience and since_best >= cfg.patience:
            break
        t0 = time.perf_counter()
        gen = torch.Generator().manual_seed(epoch_seed(cfg.seed, epoch))
        torch.manual_seed(epoch_seed(cfg.seed, epoch) + 1)  # dropout
        order = epoch_indices(train.labels, gen, cfg.sampling, cfg.slices_per_epoch)
        model.train()
        total, seen, step_seconds = 0.0, 0, 0.0
        for i in range(0, len(order), cfg.batch_size):
            idx = order[i : i + cfg.batch_size]
            if len(idx) < 2 and len(order) > 1:  # BatchNorm cannot train on a single example
                continue
            x, _ = augment_batch(images[idx], aug, gen)
            if cfg.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            t_step = time.perf_counter()
            loss = F.cross_entropy(model(x), labels[idx], weight=weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step_seconds += time.perf_counter() - t_step
            total += loss.item() * len(idx)
            seen += len(idx)
        logs = {"epoch": epoch, "train_loss": total / max(seen, 1), "seconds": 0.0,
                "train_seconds": time.perf_counter() - t0, "step_seconds": step_seconds}
        if val is not None and len(val):
            logs.update(_evaluate(model, val, cfg, weight))
            value = logs[cfg.monitor]
        else:
            value = -epoch if cfg.monitor == "val_loss" else epoch  # no validation: keep the last epoch
        if _is_better(value, best_value, cfg.monitor):
            best_value, since_best = value, 0
            result.best_epoch, result.best_state = epoch, copy.deepcopy(model.state_dict())
        else:
            since_best += 1
        logs["seconds"] = time.perf_counter() - t0
        result.history.append(logs)
        if ckpt is not None:
            with atomic_path(ckpt, overwrite=True) as tmp:
                torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch,
                            "history": result.history, "best_epoch": result.best_epoch,
                            "best_state": result.best_state, "best_value": best_value,
                            "since_best": since_best}, tmp)
        if progress is not None:
            progress(epoch, logs)
        if stop_after_epoch is not None and epoch >= stop_after_epoch:
            break
    if result.best_state is not None:
        model.load_state_dict(result.best_state)
    return result
