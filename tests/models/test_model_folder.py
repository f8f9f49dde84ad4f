"""The one model-folder format: classifiers, 2D and 3D segmenters round-trip through one save/load pair, and
the segmentation folders written before it (a single ``model.pt``) still load."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest
import torch

from sarcomri.errors import InputError
from sarcomri.models import ModelSpec, build_classifier, load_model, read_info, read_spec, save_model
from sarcomri.models.folder import LEGACY_WEIGHTS, is_model_folder, read_weights, task_of
from sarcomri.seg2d.config import DataSettings2D, NetworkSettings
from sarcomri.seg2d.infer import Segmenter, is_2d_model
from sarcomri.seg2d.model import Seg2DSpec
from sarcomri.seg2d.model import build_network as build_2d
from sarcomri.seg2d.train import load_network, model_spec
from sarcomri.seg3d.infer import Model, find_models
from sarcomri.seg3d.model import build_network as build_3d
from sarcomri.seg3d.plan import Plan

NET_2D = NetworkSettings(arch="unet", encoder="tu-mobilenetv2_035", encoder_depth=3, decoder_channels=8)
DATA_2D = DataSettings2D(sequences=["T2", "ADC"], image_size=32, augmentation="none")
PLAN = Plan(sequences=["T1"], target_spacing=[3.0, 1.2, 1.2], median_shape=[12, 32, 32], patch_size=[8, 16, 16],
            strides=[[1, 1, 1], [2, 2, 2], [2, 2, 2]], kernels=[[3, 3, 3]] * 3, filters=[4, 8, 16], batch_size=2)


def _classifier():
    spec = ModelSpec("mobilenetv2_050", in_channels=1, num_classes=2, input_size=32)
    torch.manual_seed(0)
    return build_classifier(spec.name, 1, 2).eval(), spec, torch.randn(2, 1, 32, 32)


def _seg2d():
    torch.manual_seed(0)
    return build_2d(NET_2D, 2).eval(), model_spec(NET_2D, DATA_2D, kind="target", level=None), torch.randn(2, 2, 32, 32)


def _seg3d():
    torch.manual_seed(0)
    return build_3d(PLAN).eval(), PLAN, torch.randn(1, 1, 8, 16, 16)


@pytest.mark.parametrize(("make", "task"), [(_classifier, "classification"), (_seg2d, "seg2d"), (_seg3d, "seg3d")])
def test_every_task_round_trips_through_the_one_save_and_load(tmp_path, make, task):
    model, spec, x = make()
    folder = save_model(model, spec, tmp_path / "m", meta={"seed": 3}, history=[{"epoch": 0, "train_loss": 1.0}])
    files = {"model.json", "weights.pt", "history.csv"} | ({"plan.json"} if task == "seg3d" else set())
    assert {p.name for p in folder.iterdir()} == files  # no temporary left behind
    meta = json.loads((folder / "model.json").read_text())
    assert meta["task"] == task and meta["schema"] == 2 and meta["meta"] == {"seed": 3}
    assert meta["parameters"] == sum(p.numel() for p in model.parameters())
    assert torch.load(folder / "weights.pt", weights_only=True).keys() == model.state_dict().keys()
    assert is_model_folder(folder) and task_of(folder) == task and read_spec(folder) == spec
    assert is_2d_model(folder) == (task == "seg2d")
    again = load_model(folder)
    assert not again.training
    with torch.no_grad():
        assert torch.equal(model(x), again(x))


def test_the_tasks_own_readers_use_the_one_format(tmp_path):
    net, spec, _ = _seg2d()
    save_model(net, spec, tmp_path / "2d", meta={"train": ["source/P1"]})
    seg = Segmenter.load(tmp_path / "2d")
    assert seg.data == DATA_2D and seg.spec.extra == {"kind": "target", "level": None} and seg.meta["train"]
    assert load_network(tmp_path / "2d")[1] == spec
    net3, plan, _ = _seg3d()
    save_model(net3, plan, tmp_path / "runs" / "fold0", meta={"fold": 0})
    save_model(net, spec, tmp_path / "runs" / "other-2d")  # not a 3D model: not part of the ensemble
    (model,) = find_models(tmp_path / "runs")
    assert model.plan == PLAN and model.meta == {"fold": 0} and Plan.load(tmp_path / "runs" / "fold0") == PLAN
    with pytest.raises(InputError, match="not a 3D segmentation model"):
        Model.load(tmp_path / "2d")
    with pytest.raises(InputError, match="not a 2D segmentation model"):
        load_network(tmp_path / "runs" / "fold0")


def test_segmentation_folders_of_before_the_one_format_still_load(tmp_path):
    """Before: one model.pt per folder, {"model": state_dict, "spec": ... (2D) or "plan": ... (3D), "meta": ...}."""
    net2, spec2, x2 = _seg2d()
    net3, plan3, x3 = _seg3d()
    for name, state in (("2d", {"model": net2.state_dict(), "spec": spec2.to_dict(), "meta": {"seed": 1}}),
                        ("3d", {"model": net3.state_dict(), "plan": asdict(plan3), "meta": {"fold": 2}})):
        (tmp_path / name).mkdir()
        torch.save(state, tmp_path / name / LEGACY_WEIGHTS)
    assert [task_of(tmp_path / d) for d in ("2d", "3d")] == ["seg2d", "seg3d"]
    assert is_2d_model(tmp_path / "2d") and not is_2d_model(tmp_path / "3d")
    assert read_info(tmp_path / "2d").legacy and isinstance(read_spec(tmp_path / "2d"), Seg2DSpec)
    assert read_weights(tmp_path / "3d").keys() == net3.state_dict().keys()
    with torch.no_grad():
        assert torch.equal(load_model(tmp_path / "2d")(x2), net2(x2))
        assert torch.equal(Segmenter.load(tmp_path / "2d").network(x2), net2(x2))
        model = Model.load(tmp_path / "3d")
        assert model.plan == plan3 and model.meta == {"fold": 2} and torch.equal(model.network(x3), net3(x3))


def test_a_spec_names_its_task_and_a_folder_must_be_finished(tmp_path):
    net, _, _ = _classifier()
    with pytest.raises(TypeError, match="not a model spec"):
        save_model(net, {"name": "mobilenetv2_050"}, tmp_path / "m")
    (tmp_path / "half").mkdir()
    torch.save(net.state_dict(), tmp_path / "half" / "weights.pt")  # killed before model.json was written
    assert not is_model_folder(tmp_path / "half") and task_of(tmp_path / "half") is None
    with pytest.raises(InputError, match="no model.json"):
        load_model(tmp_path / "half")
    folder = save_model(net, ModelSpec("mobilenetv2_050", 1, 2, 32), tmp_path / "m")
    meta = json.loads((folder / "model.json").read_text())
    for bad, message in (({"task": "seg9d"}, "unknown task"), ({"schema": 3}, "newer"),
                         ({"weights": "../w.pt"}, "must name a file")):
        (folder / "model.json").write_text(json.dumps({**meta, **bad}))
        with pytest.raises(InputError, match=message):
            load_model(folder)
    schema1 = {k: v for k, v in meta.items() if k in ("format", "spec", "weights", "versions")}
    (folder / "model.json").write_text(json.dumps({**schema1, "schema": 1}))  # a classifier of before
    assert task_of(folder) == "classification" and load_model(folder) is not None


def test_no_import_circle_between_the_registry_the_spec_and_the_folder():
    """spec imports nothing of sarcomri; the registry imports the spec only; the folder finds the registry (and
    the segmenters' kinds) by name when it reads a folder of that task."""
    import ast
    import importlib

    def imports(module: str) -> set[str]:
        tree = ast.parse(open(importlib.import_module(module).__file__, encoding="utf-8").read())
        return {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module} | {
            a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}

    assert not {m for m in imports("sarcomri.models.spec") if m.startswith("sarcomri")}
    assert {m for m in imports("sarcomri.models.registry") if m.startswith("sarcomri.models")} == {
        "sarcomri.models.spec", "sarcomri.models.weights"}
    assert "sarcomri.models.registry" not in imports("sarcomri.models.folder")
