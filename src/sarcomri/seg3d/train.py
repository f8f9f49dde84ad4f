"""3D segmentation on the one fit loop (:mod:`sarcomri.train.fit`): epochs of a fixed number of patch batches, a
checkpoint after each, resumable.

Every random choice of an epoch (which cases, which patches, augmentation) is seeded from ``(seed, epoch)``
alone and the learning rate is a function of the global step (polynomial decay, nnU-Net's schedule), so a
run killed after epoch k and resumed from its checkpoint ends with exactly the weights of an uninterrupted
run. The final weights are kept (no validation-based choice of epoch: nnU-Net's practice, and the only
honest one when every patient outside the training fold is a test patient).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sarcomri.cohort.manifest import Cohort
from sarcomri.seg3d.cascade import prior_on_grid, training_case
from sarcomri.seg3d.config import DataSettings, Seg3DConfig, TrainSettings
from sarcomri.seg3d.data import Case, PatchSampler, prepare_case, read_channels
from sarcomri.seg3d.infer import predict_images
from sarcomri.seg3d.model import (
    bf16_safe,
    build_boundary_loss,
    build_loss,
    build_network,
    main_logits,
    resolve_device,
    supervised_loss,
)
from sarcomri.seg3d.plan import Plan
from sarcomri.train.fit import CHECKPOINT, EpochStats, FitResult, TrainTask
from sarcomri.train.fit import fit as fit_loop
from sarcomri.train.threads import torch_threads

__all__ = ["CHECKPOINT", "STREAM", "Seg3DTask", "fit", "poly_lr", "refine_training_cases"]

#: The 3D segmenter's stream of :func:`sarcomri.train.fit.epoch_seed`.
STREAM = 0x3D5E


def poly_lr(lr: float, step: int, total: int, power: float) -> float:
    """nnU-Net's polynomial decay: ``lr * (1 - step / total) ** power``."""
    return lr * (1 - step / total) ** power


def optimizer(network: torch.nn.Module, settings: TrainSettings) -> torch.optim.Optimizer:
    """The optimiser ``settings.optimizer`` names: AdamW, or nnU-Net's SGD (Nesterov momentum 0.99)."""
    if settings.optimizer == "sgd":
        return torch.optim.SGD(network.parameters(), lr=settings.lr, momentum=0.99, nesterov=True,
                               weight_decay=settings.weight_decay)
    return torch.optim.AdamW(network.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)


class Seg3DTask(TrainTask):
    """A 3D segmenter's part of the fit loop: ``iterations`` patch batches per epoch from a
    :class:`~sarcomri.seg3d.data.PatchSampler` reseeded with the epoch's seed (dropout and PyTorch's other
    draws get the seed + 1), the poly learning rate of the global step, Dice + cross-entropy (forward pass in
    bfloat16 with ``bf16``; plus the boundary term of ``boundary_weight``, ramped by epoch), gradients clipped
    at norm 12, and the plan kept in the checkpoint."""

    stream = STREAM
    clip_grad_norm = 12.0

    def __init__(self, sampler: PatchSampler, plan: Plan, settings: TrainSettings, device: torch.device, bf16: bool):
        self.sampler, self.plan, self.settings, self.device, self.bf16 = sampler, plan, settings, device, bf16
        self.loss_fn = build_loss()
        self.boundary_fn = build_boundary_loss() if settings.boundary_weight > 0 else None
        self.boundary_weight = 0.0

    def start_epoch(self, epoch: int, seed: int) -> range:
        self.sampler.reseed(seed)
        self.boundary_weight = self.settings.boundary_weight * (epoch + 1) / self.settings.epochs
        return range(self.settings.iterations)

    def lr(self, epoch: int, step: int, steps: int) -> float:
        s = self.settings
        return poly_lr(s.lr, epoch * steps + step, s.epochs * s.iterations, s.poly_power)

    def batch(self, key: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.sampler.batch()
        return x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)

    def loss(self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            logits = model(x)
        loss = supervised_loss(self.loss_fn, logits, y)
        if self.boundary_fn is not None:
            loss = loss + self.boundary_weight * self.boundary_fn(main_logits(logits, y).float(), y)
        return loss

    def end_epoch(self, model: torch.nn.Module, stats: EpochStats) -> dict[str, Any]:
        return {"epoch": stats.epoch, "train_loss": float(np.mean(stats.losses)), "lr_end": stats.lr,
                "seconds": 0.0, "train_seconds": stats.train_seconds, "step_seconds": stats.step_seconds}

    def state(self) -> dict[str, Any]:
        return {"plan": asdict(self.plan)}


def fit(
    cases: Sequence[Case],
    plan: Plan,
    settings: TrainSettings | None = None,
    data: DataSettings | None = None,
    checkpoint_dir: str | Path | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
    stop_after_epoch: int | None = None,
) -> FitResult:
    """Train the plan's network on ``cases`` (each with a label), on :func:`sarcomri.train.fit.fit`.

    With ``checkpoint_dir`` a checkpoint is written atomically after every epoch, and a run that finds one
    resumes after its last finished epoch. ``progress`` is called after every step with ``epoch``,
    ``iteration``, ``steps``, ``loss`` and ``lr``. ``stop_after_epoch`` ends the run early (to test resumption).
    ``settings.threads`` applies during the call.
    """
    settings = settings or TrainSettings()
    with torch_threads(settings.threads):
        torch.manual_seed(settings.seed)
        device = resolve_device(settings.device)
        bf16 = settings.precision == "bf16"
        if bf16 and device.type == "cpu" and not bf16_safe(plan):
            warnings.warn("bfloat16 training is unreliable on the CPU for this network (a level 2 voxels deep); "
                          "training in float32", stacklevel=2)
            bf16 = False
        network = build_network(plan).to(device)
        opt = optimizer(network, settings)
        task = Seg3DTask(PatchSampler(cases, plan, data), plan, settings, device, bf16)
        result = fit_loop(network, opt, task, epochs=settings.epochs, seed=settings.seed,
                          checkpoint_dir=checkpoint_dir, on_step=progress, stop_after_epoch=stop_after_epoch)
    result.network = network.cpu()
    return result


def refine_training_cases(cfg: Seg3DConfig, cohort: Cohort, train_ids: Sequence[str], group: tuple[str, ...],
                          coarse, plan: Plan) -> list[Case]:
    """The refining stage's training cases: each training patient on the fine plan with the coarse model's
    prediction on it (no mirroring: the patch perturbation stands in for the difference) as the prior, cropped
    around the prior and the reference mask (:func:`sarcomri.seg3d.cascade.training_case`)."""
    infer = cfg.infer.model_copy(update={"mirror": False, "largest_component": False})
    cases = []
    for pid in train_ids:
        images, mask = read_channels(cohort, pid, group)
        _, prob = predict_images([coarse], images, infer, case_id=pid)
        case = prepare_case(pid, images, mask, plan)
        prior = prior_on_grid(prob, case.grid, cfg.cascade.threshold)
        cases.append(training_case(case, prior, cfg.cascade.margin_mm, plan.target_spacing))
    return cases
