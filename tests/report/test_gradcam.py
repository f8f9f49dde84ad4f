"""Grad-CAM: the map has the input's size and lies in [0, 1]; it concentrates where the output comes from."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from sarcomri.report.gradcam import choose_cases, default_target_layer, gradcam, torch_threads


class RegionModel(nn.Module):
    """A toy classifier whose logits depend only on the top-left 8 x 8 region of a 32 x 32 image: features
    outside the region are zeroed before the last conv block (the Grad-CAM target)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU())
        self.block = nn.Sequential(nn.Conv2d(4, 6, 3, padding=1, bias=False), nn.ReLU())
        self.head = nn.Linear(6, 2)
        mask = torch.zeros(1, 1, 32, 32)
        mask[..., 2:10, 2:10] = 1
        self.register_buffer("region", mask)

    def forward(self, x):
        features = self.block(self.stem(x) * self.region)
        return self.head(features.mean(dim=(2, 3)))


def test_heat_concentrates_in_the_region_the_output_depends_on():
    torch.manual_seed(0)
    model = RegionModel()
    with torch.no_grad():
        model.head.weight.copy_(torch.tensor([[-1.0] * 6, [1.0] * 6]))  # class 1 = more activation
    images = torch.rand(3, 1, 32, 32)
    with torch_threads(1):
        cams = gradcam(model, images, target_layer=model.block, target=1)
    assert cams.shape == (3, 32, 32) and cams.dtype == np.float32
    assert cams.min() >= 0 and cams.max() <= 1
    inside = np.zeros((32, 32), bool)
    inside[1:11, 1:11] = True  # the region and the 3x3 kernel's reach
    for cam in cams:
        assert cam.max() == pytest.approx(1.0)
        assert cam[inside].sum() / cam.sum() > 0.95
        assert cam[~inside].mean() < 0.05
    # changing the image outside the region changes neither the output nor the map
    other = images.clone()
    other[..., 16:, 16:] = torch.rand(3, 1, 16, 16)
    with torch_threads(1):
        assert np.allclose(gradcam(model, other, target_layer=model.block, target=1), cams, atol=1e-5)


def test_timm_model_default_layer_size_and_range():
    from sarcomri.models.registry import build_classifier

    torch.manual_seed(1)
    model = build_classifier("mobilenetv2_050", in_channels=1, num_classes=2)
    model.train()
    assert default_target_layer(model) is model.get_submodule("blocks.6")  # the last feature block
    images = torch.randn(5, 1, 48, 40)
    with torch_threads(1):
        cams = gradcam(model, images, batch_size=2)
    assert cams.shape == (5, 48, 40)
    assert np.isfinite(cams).all() and cams.min() >= 0 and cams.max() <= 1
    assert model.training  # the caller's mode is restored


def test_default_layer_of_a_plain_network_is_its_last_conv():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Conv2d(2, 3, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(3, 2))
    assert default_target_layer(net) is net[2]


def test_choose_cases_takes_right_and_wrong_patients():
    import pandas as pd

    lik = pd.DataFrame({"patient_id": list("ABCDEFGH"), "label": [1, 1, 1, 0, 0, 0, 1, 0],
                        "likelihood": [0.9, 0.7, 0.2, 0.1, 0.3, 0.8, 0.45, 0.55]})
    chosen = choose_cases(lik, 0.5, n_correct=2, n_wrong=2)
    assert list(chosen["outcome"]) == ["TP", "TN", "FN", "FP"]
    assert list(chosen["patient_id"]) == ["A", "D", "C", "F"]  # the most confident of each kind


def test_gradcam_figure_writes_a_png(tmp_path):
    from sarcomri.report.figures import gradcam_figure, save_png

    rng = np.random.default_rng(0)
    path = save_png(gradcam_figure([rng.random((16, 16))] * 3, [rng.random((16, 16))] * 3, ["a", "b", "c"],
                                   columns=2), tmp_path / "cam.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
