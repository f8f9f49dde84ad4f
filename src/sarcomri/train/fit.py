"""THE fit loop of every task (classifiers, 2D and 3D segmenters): epochs of optimiser steps, a checkpoint after
each epoch, bit-identical resumption, progress through callbacks.

What the loop owns:

* seeding: all randomness of epoch ``e`` of a run with seed ``s`` comes from :func:`epoch_seed` ``(s, e)``.
  PyTorch's global generator (dropout) is seeded with it plus the task's ``torch_seed_offset``, then the task
  seeds its own generators (sampling order, augmentation, patches) from it in :meth:`TrainTask.start_epoch`;
  nothing depends on how the run got to epoch ``e``;
* the step: the learning rate of the task's schedule, ``zero_grad``, ``backward``, optional gradient
  clipping, ``step``;
* ``checkpoint.pt`` (weights, optimiser, epoch, history and the task's own state), written atomically after
  every epoch: a run that finds one resumes after its last finished epoch and ends with exactly the weights of
  an uninterrupted run (on the same device and thread count);
* progress: ``on_step(event)`` after every step, ``on_epoch(epoch, row)`` after every epoch; it never prints.

What a task brings (:class:`TrainTask`): its steps and batches, its loss, its learning-rate schedule, its
history row (with validation), early stopping, and the state it keeps across epochs. The thread count is the
caller's, set with :func:`sarcomri.train.threads.torch_threads` around the call.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sarcomri.io.atomic import atomic_path

CHECKPOINT = "checkpoint.pt"

StepCallback = Callable[[dict[str, Any]], None]
EpochCallback = Callable[[int, dict[str, Any]], None]


def epoch_seed(seed: int, epoch: int, stream: int, bits: int = 32) -> int:
    """The seed of one epoch's randomness: a function of ``(seed, epoch)`` alone.

    ``stream`` keeps the tasks' random streams apart (each task has its own constant); ``bits`` below 32 folds
    the seed into ``[0, 2**bits)``.
    """
    return int(np.random.SeedSequence([seed, epoch, stream]).generate_state(1)[0]) % 2**bits


@dataclass
class FitResult:
    """What a training run gives back.

    ``history`` has one row per epoch; ``best_epoch`` and ``best_state`` are the epoch a task chose on
    validation data and its weights (-1 and None when the last weights are kept); ``resumed_from`` is the
    checkpoint's epoch when the run resumed; ``network`` is the trained network.
    """

    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = -1
    best_state: dict[str, torch.Tensor] | None = None
    resumed_from: int | None = None
    network: torch.nn.Module | None = None


@dataclass
class EpochStats:
    """What the loop measured in one epoch, for :meth:`TrainTask.end_epoch` to turn into the history row:
    the loss and the number of examples of every step, the last step's learning rate (None without a
    schedule), the seconds of the whole epoch's training and of the steps alone (forward, backward, update)."""

    epoch: int
    losses: list[float]
    sizes: list[int]
    lr: float | None
    train_seconds: float
    step_seconds: float


class TrainTask:
    """What differs between tasks, as hooks the loop calls in a fixed order. Per epoch: PyTorch seeded,
    :meth:`start_epoch`, :meth:`train_mode`; per step :meth:`lr`, :meth:`batch`, :meth:`loss`; then
    :meth:`end_epoch`, and :meth:`state` into the checkpoint. :meth:`should_stop` is asked before every epoch.

    Subclasses set the class attributes and override what they need: ``stream`` and ``seed_bits`` (their
    :func:`epoch_seed`), ``torch_seed_offset`` (PyTorch's generator gets the epoch seed plus it) and
    ``clip_grad_norm`` (None: no clipping).
    """

    stream: int = 0
    seed_bits: int = 32
    torch_seed_offset: int = 1
    clip_grad_norm: float | None = None

    def start_epoch(self, epoch: int, seed: int) -> Sequence[Any]:
        """Seed the task's own generators from ``seed``; the epoch's steps, one key per step for :meth:`batch`."""
        raise NotImplementedError

    def batch(self, key: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """The (inputs, targets) of one step, on the training device."""
        raise NotImplementedError

    def loss(self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The loss of one step, forward pass included."""
        raise NotImplementedError

    def train_mode(self, model: torch.nn.Module) -> None:
        """Put the model in training mode for an epoch (a task may keep frozen parts in evaluation mode)."""
        model.train()

    def lr(self, epoch: int, step: int, steps: int) -> float | None:
        """The learning rate of step ``step`` of ``steps`` in ``epoch``; None leaves the optimiser's."""
        return None

    def end_epoch(self, model: torch.nn.Module, stats: EpochStats) -> dict[str, Any]:
        """The epoch's history row (the loop fills in its ``seconds``): by default epoch and mean loss."""
        return {"epoch": stats.epoch, "train_loss": float(np.mean(stats.losses)), "seconds": 0.0}

    def should_stop(self) -> bool:
        """True ends the run before the next epoch (early stopping)."""
        return False

    def state(self) -> dict[str, Any]:
        """What the task keeps across epochs, saved in the checkpoint beside the loop's own entries."""
        return {}

    def load_state(self, state: dict[str, Any]) -> None:
        """Take back what :meth:`state` saved, from a checkpoint's contents."""


def fit(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    task: TrainTask,
    *,
    epochs: int,
    seed: int,
    checkpoint_dir: str | Path | None = None,
    map_location: str | torch.device = "cpu",
    on_step: StepCallback | None = None,
    on_epoch: EpochCallback | None = None,
    stop_after_epoch: int | None = None,
) -> FitResult:
    """Train ``model`` with ``optimizer`` for ``epochs`` epochs of ``task`` (see the module notes).

    With ``checkpoint_dir`` a checkpoint is written atomically after every epoch and a run that finds one
    resumes after its last finished epoch (the checkpoint is read onto ``map_location``). ``on_step`` gets
    ``epoch``, ``iteration``, ``steps`` (of the epoch), ``loss`` and, with a schedule, ``lr``; ``on_epoch`` gets
    the epoch and its history row. ``stop_after_epoch`` ends the run after that epoch (to test resumption).
    The model keeps the weights of the last epoch run; a task that chooses an epoch restores it itself.
    """
    ckpt = Path(checkpoint_dir) / CHECKPOINT if checkpoint_dir else None
    result, start = _resume(ckpt, model, optimizer, task, map_location)
    for epoch in range(start, epochs):
        if task.should_stop():
            break
        t0 = time.perf_counter()
        stats = _run_epoch(model, optimizer, task, epoch, epoch_seed(seed, epoch, task.stream, task.seed_bits),
                           on_step)
        row = task.end_epoch(model, stats)
        row["seconds"] = time.perf_counter() - t0
        result.history.append(row)
        if ckpt is not None:
            with atomic_path(ckpt, overwrite=True) as tmp:
                torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch,
                            "history": result.history, **task.state()}, tmp)
        if on_epoch is not None:
            on_epoch(epoch, row)
        if stop_after_epoch is not None and epoch >= stop_after_epoch:
            break
    return result


def _resume(ckpt: Path | None, model: torch.nn.Module, optimizer: torch.optim.Optimizer, task: TrainTask,
            map_location: str | torch.device) -> tuple[FitResult, int]:
    """The result so far and the first epoch to run: from the checkpoint when there is one."""
    if ckpt is None or not ckpt.is_file():
        return FitResult(), 0
    state = torch.load(ckpt, map_location=map_location, weights_only=False)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    task.load_state(state)
    return FitResult(history=state["history"], resumed_from=state["epoch"]), state["epoch"] + 1


def _run_epoch(model: torch.nn.Module, optimizer: torch.optim.Optimizer, task: TrainTask, epoch: int, seed: int,
               on_step: StepCallback | None) -> EpochStats:
    """Seed, then run every step of one epoch."""
    t0 = time.perf_counter()
    torch.manual_seed(seed + task.torch_seed_offset)
    steps = task.start_epoch(epoch, seed)
    task.train_mode(model)
    losses: list[float] = []
    sizes: list[int] = []
    lr, step_seconds = None, 0.0
    for it, key in enumerate(steps):
        lr = task.lr(epoch, it, len(steps))
        if lr is not None:
            for group in optimizer.param_groups:
                group["lr"] = lr
        x, y = task.batch(key)
        t_step = time.perf_counter()
        loss = task.loss(model, x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if task.clip_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), task.clip_grad_norm)
        optimizer.step()
        step_seconds += time.perf_counter() - t_step
        losses.append(float(loss.item()))
        sizes.append(int(x.shape[0]))
        if on_step is not None:
            event = {"epoch": epoch, "iteration": it, "steps": len(steps), "loss": losses[-1]}
            on_step(event if lr is None else {**event, "lr": lr})
    return EpochStats(epoch, losses, sizes, lr, time.perf_counter() - t0, step_seconds)
