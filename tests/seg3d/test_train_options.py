"""Training options of the 3D segmenter: nnU-Net's SGD, and the boundary-aware loss term with its ramp."""

from __future__ import annotations

import pytest
import torch

from sarcomri.cohort.manifest import Cohort
from sarcomri.seg3d.config import DataSettings, TrainSettings
from sarcomri.seg3d.data import PatchSampler, load_cases
from sarcomri.seg3d.model import build_boundary_loss, build_loss, build_network, supervised_loss
from sarcomri.seg3d.train import CHECKPOINT, Seg3DTask, fit, optimizer


def test_the_optimiser_the_settings_name(tiny_plan):
    net = build_network(tiny_plan)
    sgd = optimizer(net, TrainSettings(optimizer="sgd", lr=0.01, weight_decay=3e-5))
    assert isinstance(sgd, torch.optim.SGD)
    group = sgd.param_groups[0]
    assert (group["lr"], group["momentum"], group["nesterov"], group["weight_decay"]) == (0.01, 0.99, True, 3e-5)
    assert isinstance(optimizer(net, TrainSettings()), torch.optim.AdamW)


def _blob(shape=(1, 1, 8, 16, 16), box=(slice(2, 6), slice(5, 11), slice(5, 11))) -> torch.Tensor:
    y = torch.zeros(shape, dtype=torch.long)
    y[(0, 0, *box)] = 1
    return y


def _logits(mask: torch.Tensor) -> torch.Tensor:
    """Confident two-class logits that predict ``mask``."""
    fg = mask.float() * 8 - 4
    return torch.cat([-fg, fg], dim=1)


def test_boundary_loss_weighs_errors_far_from_the_tumour_most():
    y = _blob()
    near, far = y.clone(), y.clone()
    near[0, 0, 2:6, 11, 5:11] = 1  # one more voxel layer on the tumour's side: 24 false positives at its edge
    far[0, 0, 2:6, 14, 0:6] = 1  # 24 false positives in an island 3 voxels away
    hd, dice = build_boundary_loss(), build_loss()
    assert int((near != y).sum()) == int((far != y).sum()) == 24
    assert hd(_logits(far), y) > 3 * hd(_logits(near), y)
    assert hd(_logits(y), y) < hd(_logits(near), y)
    # Dice + cross-entropy hardly tells the two apart: that is what the boundary term adds
    assert dice(_logits(far), y) == pytest.approx(float(dice(_logits(near), y)), rel=0.05)


def test_the_boundary_term_is_ramped_by_epoch_and_added_to_the_main_head(blob_cohort, tiny_plan):
    tiny_plan.deep_supervision = 1
    cases = load_cases(Cohort.load(blob_cohort), ["S00", "S01"], tiny_plan)
    settings = TrainSettings(epochs=4, iterations=1, boundary_weight=2.0, device="cpu")
    task = Seg3DTask(PatchSampler(cases, tiny_plan), tiny_plan, settings, torch.device("cpu"), bf16=False)
    plain = Seg3DTask(PatchSampler(cases, tiny_plan), tiny_plan, settings.model_copy(update={"boundary_weight": 0}),
                      torch.device("cpu"), bf16=False)
    assert plain.boundary_fn is None
    torch.manual_seed(0)
    net = build_network(tiny_plan)
    x, y = torch.randn(2, 1, *tiny_plan.patch_size), (torch.rand(2, 1, *tiny_plan.patch_size) > 0.8).long()
    out = net(x)
    base = supervised_loss(build_loss(), out, y)
    boundary = build_boundary_loss()(out[:, 0], y)
    for epoch, weight in ((0, 0.5), (1, 1.0), (3, 2.0)):
        task.start_epoch(epoch, seed=epoch)
        plain.start_epoch(epoch, seed=epoch)
        assert task.boundary_weight == pytest.approx(weight)
        assert task.loss(net, x, y).item() == pytest.approx((base + weight * boundary).item(), rel=1e-5)
        assert plain.loss(net, x, y).item() == pytest.approx(base.item(), rel=1e-6)


@pytest.mark.parametrize("update", [{"optimizer": "sgd", "lr": 0.01}, {"boundary_weight": 1.0}])
def test_training_with_the_options_resumes_to_the_same_weights(blob_cohort, tiny_plan, tmp_path, update):
    cases = load_cases(Cohort.load(blob_cohort), ["S00", "S01", "S02"], tiny_plan)
    settings = TrainSettings(epochs=3, iterations=2, seed=5, threads=1, device="cpu", **update)
    straight = fit(cases, tiny_plan, settings, DataSettings(), checkpoint_dir=tmp_path / "a")
    fit(cases, tiny_plan, settings, DataSettings(), checkpoint_dir=tmp_path / "b", stop_after_epoch=0)
    assert (tmp_path / "b" / CHECKPOINT).is_file()
    resumed = fit(cases, tiny_plan, settings, DataSettings(), checkpoint_dir=tmp_path / "b")
    sa, sb = straight.network.state_dict(), resumed.network.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert all(h["train_loss"] == h["train_loss"] for h in straight.history)  # no NaN
