"""The one fit loop: the thread context, per-epoch seeds, resumption of any task, progress callbacks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from sarcomri.train.fit import CHECKPOINT, EpochStats, TrainTask, epoch_seed, fit
from sarcomri.train.threads import torch_threads


def test_thread_context_restores_the_previous_count_even_on_error():
    before = torch.get_num_threads()
    other = 1 if before != 1 else 2
    with torch_threads(other):
        assert torch.get_num_threads() == other
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError, match="boom"), torch_threads(other):
        assert torch.get_num_threads() == other
        raise RuntimeError("boom")
    assert torch.get_num_threads() == before
    for unchanged in (None, 0):  # no setting: the count is left as it is
        with torch_threads(unchanged):
            assert torch.get_num_threads() == before
    with torch_threads(other), torch_threads(None):  # nested: the inner block keeps the outer count
        assert torch.get_num_threads() == other
    assert torch.get_num_threads() == before


def test_epoch_seeds_of_the_three_tasks_are_pinned():
    """The seeds every task drew before the loops were one: changing them changes every trained model."""
    from sarcomri.seg2d.train import STREAM as SEG2D
    from sarcomri.seg3d.train import STREAM as SEG3D
    from sarcomri.train.classifier import STREAM as CLASSIFIER

    assert [epoch_seed(7, e, CLASSIFIER) for e in range(3)] == [312640686, 3337634414, 362662056]
    assert [epoch_seed(7, e, SEG2D, bits=31) for e in range(3)] == [850026725, 98170215, 896198301]
    assert [epoch_seed(7, e, SEG3D) for e in range(3)] == [1069885097, 1976516712, 4144039076]


class _Regression(TrainTask):
    """y = x @ w with noise, batches in an order drawn from the epoch's seed; dropout in the model."""

    stream = 0x7E57

    def __init__(self, early_stop_after: int | None = None):
        rng = np.random.default_rng(0)
        self.x = torch.from_numpy(rng.normal(size=(40, 4)).astype(np.float32))
        self.y = self.x @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.1
        self.early_stop_after, self.epochs_seen = early_stop_after, 0

    def start_epoch(self, epoch, seed):
        order = np.random.default_rng(seed).permutation(len(self.x))
        return [order[i:i + 8] for i in range(0, len(order), 8)]

    def batch(self, key):
        return self.x[key], self.y[key]

    def loss(self, model, x, y):
        return nn.functional.mse_loss(model(x)[:, 0], y)

    def lr(self, epoch, step, steps):
        return 0.05 / (1 + epoch * steps + step)

    def end_epoch(self, model, stats: EpochStats):
        self.epochs_seen += 1
        return {**super().end_epoch(model, stats), "lr_end": stats.lr, "examples": sum(stats.sizes)}

    def should_stop(self):
        return self.early_stop_after is not None and self.epochs_seen >= self.early_stop_after

    def state(self):
        return {"epochs_seen": self.epochs_seen}

    def load_state(self, state):
        self.epochs_seen = state["epochs_seen"]


def _model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 1))


def _train(model, task, folder=None, **kw):
    return fit(model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), task, epochs=4, seed=3,
               checkpoint_dir=folder, **kw)


def test_a_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(tmp_path):
    steps, epochs = [], []
    straight = _model(0)
    res = _train(straight, _Regression(), tmp_path / "a", on_step=steps.append,
                 on_epoch=lambda e, row: epochs.append((e, row["epoch"])))
    assert [h["epoch"] for h in res.history] == [0, 1, 2, 3] and epochs == [(e, e) for e in range(4)]
    assert len(steps) == 4 * 5 and steps[0] == {"epoch": 0, "iteration": 0, "steps": 5, "loss": steps[0]["loss"],
                                                "lr": 0.05}
    assert res.history[-1]["lr_end"] == pytest.approx(0.05 / 20) and res.history[0]["examples"] == 40
    assert res.history[-1]["train_loss"] < res.history[0]["train_loss"]

    _train(_model(0), _Regression(), tmp_path / "b", stop_after_epoch=1)
    assert (tmp_path / "b" / CHECKPOINT).is_file()
    task = _Regression()
    resumed = _model(42)  # a fresh process starts from other weights
    again = _train(resumed, task, tmp_path / "b")
    assert again.resumed_from == 1 and task.epochs_seen == 4  # the task's state came back from the checkpoint
    assert [h["train_loss"] for h in again.history] == [h["train_loss"] for h in res.history]
    for (key, a), b in zip(straight.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), key


def test_the_task_stops_the_run_early():
    res = _train(_model(0), _Regression(early_stop_after=2))
    assert len(res.history) == 2 and res.resumed_from is None
