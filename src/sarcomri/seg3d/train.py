"""The 3D fit loop: epochs of a fixed number of patch batches, a checkpoint after each, resumable.

Every random choice of an epoch (which cases, which patches, augmentation) is seeded from ``(seed, epoch)``
alone and the learning rate is a function of the global step (polynomial decay, nnU-Net's schedule), so a
run killed after epoch k and resumed from its checkpoint ends with exactly the weights of an uninterrupted
run. The final weights are kept (no validation-based choice of epoch: nnU-Net's practice, and the only
honest one when every patient outside the training fold is a test patient).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sarcomri.io.atomic import atomic_path, write_csv
from sarcomri.seg3d.config import DataSettings, TrainSettings
from sarcomri.seg3d.data import Case, PatchSampler
from sarcomri.seg3d.model import (
    bf16_safe,
    build_loss,
    build_network,
    count_parameters,
    resolve_device,
    supervised_loss,
)
from sarcomri.seg3d.plan import Plan

CHECKPOINT = "checkpoint.pt"
WEIGHTS = "model.pt"


@dataclass
class FitResult:
    """Loss and timing per epoch, where the run resumed from, and the trained network."""

    history: list[dict[str, float]] = field(default_factory=list)
    resumed_from: int | None = None
    network: torch.nn.Module | None = None


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one epoch's randomness, independent of how the run got there."""
    return int(np.random.SeedSequence([seed, epoch, 0x3D5E]).generate_state(1)[0])


def poly_lr(lr: float, step: int, total: int, power: float) -> float:
    """nnU-Net's polynomial decay: ``lr * (1 - step / total) ** power``."""
    return lr * (1 - step / total) ** power


def fit(
    cases: Sequence[Case],
    plan: Plan,
    settings: TrainSettings | None = None,
    data: DataSettings | None = None,
    checkpoint_dir: str | Path | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
    stop_after_epoch: int | None = None,
) -> FitResult:
    """Train the plan's network on ``cases`` (each with a label).

    With ``checkpoint_dir`` a checkpoint is written atomically after every epoch, and a run that finds one
    resumes after its last finished epoch. ``progress`` is called after every step with ``epoch``,
    ``iteration``, ``loss`` and ``lr``. ``stop_after_epoch`` ends the run early (to test resumption).
    """
    settings = settings or TrainSettings()
    if settings.threads:
        torch.set_num_threads(settings.threads)
    torch.manual_seed(settings.seed)
    device = resolve_device(settings.device)
    bf16 = settings.precision == "bf16"
    if bf16 and device.type == "cpu" and not bf16_safe(plan):
        warnings.warn("bfloat16 training is unreliable on the CPU for this network (a level 2 voxels deep); "
                      "training in float32", stacklevel=2)
        bf16 = False
    network = build_network(plan).to(device)
    opt = torch.optim.AdamW(network.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    loss_fn = build_loss()
    sampler = PatchSampler(cases, plan, data)
    total = settings.epochs * settings.iterations
    result, start = FitResult(), 0
    ckpt = Path(checkpoint_dir) / CHECKPOINT if checkpoint_dir else None
    if ckpt is not None and ckpt.is_file():
        state = torch.load(ckpt, map_location="cpu", weights_only=False)
        network.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        result.history, result.resumed_from = state["history"], state["epoch"]
        start = state["epoch"] + 1
    for epoch in range(start, settings.epochs):
        t0 = time.perf_counter()
        seed = epoch_seed(settings.seed, epoch)
        sampler.reseed(seed)
        torch.manual_seed(seed + 1)
        network.train()
        losses, step_seconds = [], 0.0
        for it in range(settings.iterations):
            lr = poly_lr(settings.lr, epoch * settings.iterations + it, total, settings.poly_power)
            for group in opt.param_groups:
                group["lr"] = lr
            x, y = sampler.batch()
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            t_step = time.perf_counter()
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                logits = network(x)
            loss = supervised_loss(loss_fn, logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(network.parameters(), 12.0)
            opt.step()
            step_seconds += time.perf_counter() - t_step
            losses.append(float(loss.item()))
            if progress is not None:
                progress({"epoch": epoch, "iteration": it, "loss": losses[-1], "lr": lr})
        result.history.append({"epoch": epoch, "train_loss": float(np.mean(losses)), "lr_end": lr,
                               "seconds": time.perf_counter() - t0, "step_seconds": step_seconds})
        if ckpt is not None:
            with atomic_path(ckpt, overwrite=True) as tmp:
                torch.save({"model": network.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch,
                            "history": result.history, "plan": asdict(plan)}, tmp)
        if stop_after_epoch is not None and epoch >= stop_after_epoch:
            break
    result.network = network.cpu()
    return result


def save_model(folder: str | Path, network: torch.nn.Module, plan: Plan, history: list[dict] | None = None,
               meta: dict[str, Any] | None = None) -> Path:
    """Write a model folder: ``model.pt`` (weights, plan, metadata), ``plan.json`` and ``history.csv``."""
    import pandas as pd

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    plan.save(folder)
    if history:
        write_csv(folder / "history.csv", pd.DataFrame(history), overwrite=True)
    info = {"parameters": count_parameters(network), **(meta or {})}
    with atomic_path(folder / WEIGHTS, overwrite=True) as tmp:
        torch.save({"model": network.state_dict(), "plan": asdict(plan), "meta": info}, tmp)
    return folder / WEIGHTS


def is_model_folder(folder: str | Path) -> bool:
    """True when ``folder`` holds a finished model (``model.pt``)."""
    return (Path(folder) / WEIGHTS).is_file()
