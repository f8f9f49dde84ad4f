"""The fit loop learns, keeps the best epoch, and resumes a killed run to identical weights."""

import numpy as np
import pytest
import torch
from torch import nn

from sarcomri.data.sliceset import SliceSet
from sarcomri.train.classifier import fit_classifier, predict_proba
from sarcomri.train.config import TrainConfig


def _tiny_net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Dropout(0.2),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2),
    )


def _data(n=80, seed=0):
    """Positives carry a bright square: learnable in a few epochs."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(np.int64)
    x = rng.normal(0, 1, (n, 3, 16, 16)).astype(np.float32)
    x[y == 1, :, 4:10, 4:10] += 1.5
    pids = np.array([f"P{i // 2:03d}" for i in range(n)], dtype=object)
    return SliceSet(x, y, pids, np.zeros(n, np.int64))


def test_fit_learns_and_keeps_best_epoch():
    train, val = _data(120, 0), _data(60, 1)
    cfg = TrainConfig(epochs=8, batch_size=16, lr=3e-3, augmentation="carcinosarcoma", seed=1, channels_last=False)
    model = _tiny_net()
    res = fit_classifier(model, train, val, cfg)
    losses = [h["val_loss"] for h in res.history]
    assert res.best_epoch == int(np.argmin(losses))
    p = predict_proba(model, val.images, channels_last=False)[:, 1]
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(val.labels, p) > 0.9


def test_resumed_run_equals_uninterrupted_run(tmp_path):
    train, val = _data(64, 2), _data(32, 3)
    cfg = TrainConfig(epochs=4, batch_size=16, lr=1e-3, augmentation="sarcoma", sampling="balanced", seed=5)
    ref = _tiny_net(1)
    r_full = fit_classifier(ref, train, val, cfg, checkpoint_dir=tmp_path / "a")
    killed = _tiny_net(1)
    fit_classifier(killed, train, val, cfg, checkpoint_dir=tmp_path / "b", stop_after_epoch=1)
    resumed = _tiny_net(99)  # a fresh process would start from other random weights
    r_res = fit_classifier(resumed, train, val, cfg, checkpoint_dir=tmp_path / "b")
    assert r_res.resumed_from == 1
    assert [h["train_loss"] for h in r_res.history] == pytest.approx([h["train_loss"] for h in r_full.history])
    for (k, a), b in zip(ref.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), k


def test_early_stopping_stops_after_patience():
    train, val = _data(32, 4), _data(16, 5)
    cfg = TrainConfig(epochs=50, batch_size=16, lr=0.0, patience=2, seed=0, channels_last=False)
    res = fit_classifier(_tiny_net(), train, val, cfg)
    assert len(res.history) <= 4 and res.best_epoch == 0
