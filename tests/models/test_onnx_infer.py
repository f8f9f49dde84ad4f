"""ONNX export and ONNX Runtime inference agree with PyTorch; dynamic batch; metadata; clear input errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sarcomri.errors import InputError
from sarcomri.infer.export import export_saved_model
from sarcomri.infer.onnx import MAX_CHUNK, OnnxClassifier, chunk_size, export_onnx, softmax
from sarcomri.models import ModelSpec, build_classifier, save_model


def _torch_proba(model, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return torch.softmax(model.eval()(torch.from_numpy(x)), dim=1).numpy()


@pytest.mark.parametrize(("name", "size", "in_channels", "num_classes"), [
    ("mobilenetv2_100", 96, 3, 2), ("efficientnet_lite0", 96, 1, 2), ("resnet18", 96, 3, 3),
])
def test_onnx_runtime_matches_pytorch(tmp_path, name, size, in_channels, num_classes):
    torch.manual_seed(0)
    model = build_classifier(name, in_channels=in_channels, num_classes=num_classes).eval()
    # random-init BatchNorm statistics are the identity; give them realistic ones so the check means something
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
    path = export_onnx(model, tmp_path / f"{name}.onnx", (in_channels, size, size))
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{name}.onnx"]  # written atomically, nothing left over
    clf = OnnxClassifier(path, threads=1)
    rng = np.random.default_rng(1)
    for n in (1, 3):  # the batch axis is dynamic
        x = rng.normal(size=(n, in_channels, size, size)).astype(np.float32)
        p_onnx, p_torch = clf.predict_proba(x), _torch_proba(model, x)
        assert p_onnx.shape == (n, num_classes)
        assert np.abs(p_onnx - p_torch).max() < 1e-4
        assert np.allclose(p_onnx.sum(axis=1), 1.0, atol=1e-6)


def test_export_restores_training_mode_and_chunks_batches(tmp_path):
    model = build_classifier("mobilenetv2_050", in_channels=1).train()
    path = export_onnx(model, tmp_path / "m.onnx", (4, 1, 32, 32))
    assert model.training
    x = np.random.default_rng(2).normal(size=(7, 1, 32, 32)).astype(np.float32)
    whole = OnnxClassifier(path, batch_size=64).predict_proba(x)
    chunked = OnnxClassifier(path, batch_size=3).predict_proba(x)
    assert np.abs(whole - chunked).max() < 1e-6
    assert np.abs(whole - _torch_proba(model, x)).max() < 1e-4
    assert OnnxClassifier(path).predict_proba(x[:0]).shape == (0, 2)


def test_session_threads_sleep_when_idle_unless_asked(tmp_path):
    path = export_onnx(build_classifier("mobilenetv2_050"), tmp_path / "m.onnx", (3, 32, 32))
    for spin, flag in ((False, "0"), (True, "1")):
        clf = OnnxClassifier(path, threads=2, spin=spin)
        options = clf.session.get_session_options()
        assert options.intra_op_num_threads == 2
        assert options.get_session_config_entry("session.intra_op.allow_spinning") == flag


def test_saved_model_folder_exports_with_its_spec(tmp_path):
    spec = ModelSpec("mobilenetv2_050", in_channels=3, num_classes=2, input_size=32,
                     class_names=("leiomyoma", "sarcoma"))
    folder = save_model(build_classifier(spec.name), spec, tmp_path / "fold0-rep0")
    path = export_saved_model(folder)
    assert path == folder / "model.onnx"
    clf = OnnxClassifier(path)
    assert clf.spec == spec and clf.input_shape == (3, 32, 32) and clf.num_classes == 2


def test_input_errors_are_clear(tmp_path):
    path = export_onnx(build_classifier("mobilenetv2_050", in_channels=1), tmp_path / "m.onnx", (1, 32, 32))
    clf = OnnxClassifier(path)
    with pytest.raises(ValueError, match="expects 1 channels"):
        clf.predict_proba(np.zeros((2, 3, 32, 32), np.float32))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        clf.predict_proba(np.zeros((1, 32, 32), np.float32))
    with pytest.raises(InputError, match="not found"):
        OnnxClassifier(tmp_path / "absent.onnx")
    (tmp_path / "bad.onnx").write_bytes(b"garbage")
    with pytest.raises(InputError, match="ONNX Runtime"):
        OnnxClassifier(tmp_path / "bad.onnx")


def test_failed_export_leaves_nothing(tmp_path):
    with pytest.raises(ValueError):
        export_onnx(build_classifier("mobilenetv2_050"), tmp_path / "m.onnx", (32, 32))

    class Broken(torch.nn.Module):
        def forward(self, x):
            raise RuntimeError("cannot trace")

    with pytest.raises(RuntimeError):
        export_onnx(Broken(), tmp_path / "m.onnx", (3, 8, 8))
    assert list(tmp_path.iterdir()) == []


def test_softmax_reference_values():
    p = softmax(np.array([[0.0, 0.0], [0.0, np.log(3.0)], [1000.0, 0.0]]))
    assert np.allclose(p, [[0.5, 0.5], [0.25, 0.75], [1.0, 0.0]])
    assert np.allclose(softmax(np.array([[0.0], [np.log(3.0)]])), [[0.5, 0.5], [0.25, 0.75]])  # sigmoid head


def test_batches_are_cut_into_chunks_of_about_100k_pixels_per_thread():
    assert chunk_size(224 * 224, 1) == 2 and chunk_size(224 * 224, 2) == 4  # MobileNetV2's paper size
    assert chunk_size(64 * 64, 1) == 24 and chunk_size(48 * 48, 2) == MAX_CHUNK  # the demo's slices
    assert chunk_size(512 * 512, 1) == 1 and chunk_size(1, 0) == MAX_CHUNK


def test_the_default_chunks_give_the_same_outputs(tmp_path):
    model = build_classifier("mobilenetv2_050", in_channels=1).eval()
    path = export_onnx(model, tmp_path / "m.onnx", (4, 1, 96, 96))
    x = np.random.default_rng(3).normal(size=(40, 1, 96, 96)).astype(np.float32)
    clf = OnnxClassifier(path, threads=1)
    assert clf.batch_size is None and chunk_size(96 * 96, 1) == 11  # 40 images: chunks of 11, 11, 11 and 7
    assert np.abs(clf.predict_logits(x) - OnnxClassifier(path, threads=1, batch_size=40).predict_logits(x)).max() < 1e-5
