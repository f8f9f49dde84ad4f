"""The classifier registry: names and aliases, channels and heads, random-weight warning, model folders."""

from __future__ import annotations

import json
import logging

import pytest
import timm
import torch

from sarcomri.errors import InputError
from sarcomri.models import ModelSpec, UnknownModelError, build_classifier, load_model, read_spec, registry, save_model
from sarcomri.models.registry import KNOWN_CLASSIFIERS, resolve_name


@pytest.mark.parametrize(("name", "arch"), [
    ("mobilenetv2_100", "mobilenetv2_100"), ("mobilenetv2", "mobilenetv2_100"), ("xception", "legacy_xception"),
    ("Xception", "legacy_xception"), ("xception41", "xception41"), ("efficientnet-lite0", "efficientnet_lite0"),
    ("resnet50.a1_in1k", "resnet50.a1_in1k"), ("convnext_atto", "convnext_atto"),
])
def test_resolve_name(name, arch):
    assert resolve_name(name) == arch


def test_every_listed_classifier_exists_in_timm():
    assert all(timm.is_model(n) for n in KNOWN_CLASSIFIERS)
    assert all(timm.is_model(a) for a in registry.ALIASES.values())


def test_unknown_name_lists_close_matches():
    with pytest.raises(UnknownModelError, match="mobilenetv2_100") as err:
        resolve_name("mobilenetv2_10")
    assert "mobilenetv2_10'" in str(err.value)
    with pytest.raises(UnknownModelError, match="no such architecture"):
        build_classifier("not_a_network_at_all")


@pytest.mark.parametrize(("in_channels", "num_classes"), [(1, 2), (3, 2), (5, 4)])
def test_channels_and_heads(in_channels, num_classes):
    model = build_classifier("mobilenetv2_050", in_channels=in_channels, num_classes=num_classes).eval()
    with torch.no_grad():
        out = model(torch.randn(2, in_channels, 64, 64))
    assert out.shape == (2, num_classes)
    assert model.conv_stem.in_channels == in_channels


def test_drop_rate_reaches_the_network():
    model = build_classifier("mobilenetv2_050", drop_rate=0.3)
    assert model.drop_rate == pytest.approx(0.3)


def test_random_weights_are_announced_and_no_download(monkeypatch, caplog):
    calls = []
    real = timm.create_model

    def spy(name, pretrained=False, **kw):
        calls.append(pretrained)
        return real(name, pretrained=False, **kw)

    monkeypatch.setattr(timm, "create_model", spy)
    with caplog.at_level(logging.WARNING, logger="sarcomri.models"):
        build_classifier("mobilenetv2_050")
    assert calls == [False]
    assert "random weights" in caplog.text


def test_download_only_when_allowed(monkeypatch, caplog):
    calls = []
    real = timm.create_model

    def spy(name, pretrained=False, **kw):
        calls.append((name, pretrained, kw["in_chans"], kw["num_classes"]))
        return real(name, pretrained=False, **kw)  # stands in for the hub: no network in tests

    monkeypatch.setattr(timm, "create_model", spy)
    with caplog.at_level(logging.INFO, logger="sarcomri.models"):
        build_classifier("mobilenetv2_050", in_channels=1, num_classes=3, allow_download=True)
    assert calls == [("mobilenetv2_050", True, 1, 3)]
    assert "random weights" not in caplog.text


def test_download_failure_is_one_clear_error(monkeypatch):
    def offline(name, pretrained=False, **kw):
        raise OSError("We couldn't connect to 'https://huggingface.co'")

    monkeypatch.setattr(timm, "create_model", offline)
    with pytest.raises(Exception, match="could not download pretrained weights"):
        build_classifier("mobilenetv2_050", allow_download=True)


def test_imagenet_without_offline_weights_needs_permission():
    with pytest.raises(Exception, match="allow_download=True"):
        build_classifier("resnet18", pretrained_weights="imagenet")


def test_spec_round_trip_and_validation():
    spec = ModelSpec("mobilenetv2_100", in_channels=1, num_classes=3, input_size=(128, 96),
                     class_names=("G1", "G2", "G3"))
    assert ModelSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    assert spec.input_shape == (1, 128, 96)
    square = ModelSpec("resnet18", input_size=128)
    assert square.to_dict()["input_size"] == [128, 128]
    assert ModelSpec.from_dict(square.to_dict()) == square
    with pytest.raises(ValueError, match="unknown model spec field"):
        ModelSpec.from_dict({"name": "resnet18", "num_clases": 2})
    with pytest.raises(ValueError, match="class_names"):
        ModelSpec("resnet18", num_classes=2, class_names=("a", "b", "c"))
    with pytest.raises(ValueError, match="positive"):
        ModelSpec("resnet18", in_channels=0)


def test_save_and_load_model_gives_the_same_network(tmp_path):
    spec = ModelSpec("mobilenetv2_050", in_channels=1, num_classes=3, input_size=32)
    torch.manual_seed(0)
    model = build_classifier(spec.name, spec.in_channels, spec.num_classes).eval()
    folder = save_model(model, spec, tmp_path / "fold0-rep0")
    assert sorted(p.name for p in folder.iterdir()) == ["model.json", "weights.pt"]  # no temporary leftovers
    meta = json.loads((folder / "model.json").read_text())
    assert meta["versions"]["torch"] == torch.__version__ and meta["versions"]["timm"] == timm.__version__
    assert read_spec(folder) == spec
    again = load_model(folder)
    assert not again.training
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), again(x))


def test_save_refuses_a_spec_that_disagrees_with_the_head(tmp_path):
    model = build_classifier("mobilenetv2_050", num_classes=3)
    with pytest.raises(ValueError, match="3 outputs"):
        save_model(model, ModelSpec("mobilenetv2_050", num_classes=2), tmp_path / "m")


def test_load_model_errors_name_the_file(tmp_path):
    with pytest.raises(InputError, match="model.json"):
        load_model(tmp_path)
    spec = ModelSpec("mobilenetv2_050", num_classes=2, input_size=32)
    folder = save_model(build_classifier(spec.name), spec, tmp_path / "m")
    # the spec claims another network than the weights hold
    meta = json.loads((folder / "model.json").read_text())
    meta["spec"]["num_classes"] = 5
    (folder / "model.json").write_text(json.dumps(meta))
    with pytest.raises(InputError, match=r"weights.pt.*shapes differ.*classifier"):
        load_model(folder)
    meta["spec"]["name"] = "resnet18"
    (folder / "model.json").write_text(json.dumps(meta))
    with pytest.raises(InputError, match="missing"):
        load_model(folder)
    (folder / "weights.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="cannot be read"):
        load_model(folder)
    (folder / "model.json").write_text("{")
    with pytest.raises(InputError, match="not valid JSON"):
        load_model(folder)
