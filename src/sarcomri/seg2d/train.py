"""The 2D fit loop: epochs over every (slice, augmentation) pair, Adam on Dice + cross-entropy, a checkpoint
after each epoch, resumable; optional freezing up to a level for fine-tuning.

Each epoch's order and dropout draws are seeded from ``(seed, epoch)`` alone, so a run killed after epoch k
and resumed from its checkpoint continues exactly as an uninterrupted run would (on the same device and
thread count). The final weights are kept (no validation-based choice of epoch: the study's test patients
are never looked at before the end).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from sarcomri.errors import InputError
from sarcomri.io.atomic import atomic_path, write_csv
from sarcomri.seg2d import augment
from sarcomri.seg2d.config import DataSettings2D, NetworkSettings, TrainSettings2D
from sarcomri.seg2d.data import SliceData
from sarcomri.seg2d.model import (
    DiceCELoss,
    build_network,
    count_parameters,
    freeze,
    resolve_device,
    set_train_mode,
    trainable_parameters,
)
from sarcomri.seg3d.train import CHECKPOINT, WEIGHTS, FitResult  # the same run-folder conventions as 3D


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one epoch's randomness, independent of how the run got there."""
    return int(np.random.SeedSequence([seed, epoch, 0x2D5E9]).generate_state(1)[0] % 2**31)


def batches(order: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Consecutive batches of ``order``; a last batch of a single image joins the one before (BatchNorm
    cannot train on one image)."""
    out = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    if len(out) > 1 and len(out[-1]) == 1:
        last = out.pop()
        out[-1] = np.concatenate([out[-1], last])
    return out


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
    """
    if settings.threads:
        torch.set_num_threads(settings.threads)
    n_images = len(data) * len(augment.transforms(augmentation))
    if n_images < 2:
        raise InputError(None, "fewer than two training images: BatchNorm cannot train")
    torch.manual_seed(settings.seed)
    device = resolve_device(settings.device)
    frozen = freeze(network, arch, level)
    network.to(device)
    opt = torch.optim.Adam(trainable_parameters(network), lr=settings.lr, weight_decay=settings.weight_decay)
    loss_fn = DiceCELoss()
    result, start = FitResult(), 0
    ckpt = Path(checkpoint_dir) / CHECKPOINT if checkpoint_dir else None
    if ckpt is not None and ckpt.is_file():
        state = torch.load(ckpt, map_location=device, weights_only=False)
        network.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        result.history, result.resumed_from = state["history"], state["epoch"]
        start = state["epoch"] + 1
    slice_idx, op_idx = augment.expand(len(data), augmentation)
    for epoch in range(start, settings.epochs):
        t0 = time.perf_counter()
        seed = epoch_seed(settings.seed, epoch)
        rng = np.random.default_rng(seed)
        torch.manual_seed(seed)
        order = rng.permutation(len(slice_idx))
        plan = batches(order, settings.batch_size)
        set_train_mode(network, frozen)
        losses = []
        for it, b in enumerate(plan):
            sl = slice_idx[b]
            x = torch.from_numpy(data.x[sl])
            y = torch.from_numpy(data.y[sl].astype(np.float32))
            x, y = augment.apply(x, y, op_idx[b], augmentation)
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            loss = loss_fn(network(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(float(loss.item()))
            if progress is not None:
                progress({"epoch": epoch, "iteration": it, "steps": len(plan), "loss": losses[-1]})
        result.history.append({"epoch": epoch, "train_loss": float(np.mean(losses)), "images": int(len(order)),
                               "seconds": time.perf_counter() - t0})
        if ckpt is not None:
            with atomic_path(ckpt, overwrite=True) as tmp:
                torch.save({"model": network.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch,
                            "history": result.history}, tmp)
        if stop_after_epoch is not None and epoch >= stop_after_epoch:
            break
    network.eval()
    result.network = network.cpu()
    return result


def model_spec(network: NetworkSettings, data: DataSettings2D, **extra: Any) -> dict[str, Any]:
    """What rebuilding and feeding a saved network needs: its settings and its input preparation."""
    return {"network": network.model_dump(mode="json"), "data": data.model_dump(mode="json"), **extra}


def save_model(folder: str | Path, network: nn.Module, spec: dict[str, Any], history: list[dict] | None = None,
               meta: dict[str, Any] | None = None) -> Path:
    """Write a model folder: ``model.pt`` (weights, spec, metadata) and ``history.csv``, atomically."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if history:
        write_csv(folder / "history.csv", pd.DataFrame(history), overwrite=True)
    info = {"parameters": count_parameters(network),
            "trainable_parameters": count_parameters(network, trainable_only=True), **(meta or {})}
    with atomic_path(folder / WEIGHTS, overwrite=True) as tmp:
        torch.save({"model": network.state_dict(), "spec": spec, "meta": info}, tmp)
    return folder / WEIGHTS


def load_network(folder: str | Path) -> tuple[nn.Module, dict[str, Any], dict[str, Any]]:
    """A saved network (evaluation mode, CPU), its spec and its metadata."""
    path = Path(folder) / WEIGHTS if Path(folder).is_dir() else Path(folder)
    if not path.is_file():
        raise InputError(path, "not a 2D segmentation model (no model.pt)")
    state = torch.load(path, map_location="cpu", weights_only=False)
    spec = state["spec"]
    settings = NetworkSettings(**{**spec["network"], "encoder_weights": None})
    net = build_network(settings, len(spec["data"]["sequences"]))
    net.load_state_dict(state["model"])
    net.eval()
    return net, spec, state.get("meta", {})


def is_model_folder(folder: str | Path) -> bool:
    """True when ``folder`` holds a finished model (``model.pt``)."""
    return (Path(folder) / WEIGHTS).is_file()
