"""Model readers on damaged files: a model folder (``weights.pt`` + ``model.json``, :func:`load_model`,
:func:`read_spec`), a state_dict file (:func:`read_state_dict`) and an ONNX graph (:class:`OnnxClassifier`)
raise a user error naming the file, or give back exactly the intact model."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sarcomri.infer.onnx import SPEC_KEY, OnnxClassifier, export_onnx
from sarcomri.models import ModelSpec, build_classifier, save_model
from sarcomri.models.folder import load_model, read_spec
from sarcomri.models.weights import read_state_dict

#: examples per property; SARCOMRI_FAULT_EXAMPLES=2000 for a deeper search
FAST = settings(max_examples=int(os.environ.get("SARCOMRI_FAULT_EXAMPLES", "25")), deadline=None)
SPEC = ModelSpec("test_efficientnet", in_channels=1, num_classes=2, input_size=16, class_names=("a", "b"))
X = np.random.default_rng(0).normal(size=(2, 1, 16, 16)).astype(np.float32)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """A saved model folder of timm's smallest test network (100k parameters)."""
    torch.manual_seed(0)
    model = build_classifier(SPEC.name, in_channels=1, num_classes=2)
    return save_model(model, SPEC, tmp_path_factory.mktemp("models") / "m")


@pytest.fixture(scope="module")
def want(folder) -> np.ndarray:
    """The intact model's outputs for :data:`X`."""
    return _predict(load_model(folder))


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory) -> Path:
    """A tiny exported classifier with its spec in the metadata."""
    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten(), torch.nn.Linear(3, 2))
    return export_onnx(net, tmp_path_factory.mktemp("onnx") / "m.onnx", (1, 16, 16),
                       metadata={SPEC_KEY: SPEC.to_dict(), "note": "fault test"})


def _predict(model) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(X)).numpy()


def _copy(folder: Path, scratch) -> Path:
    out = Path(scratch()) / "m"
    shutil.copytree(folder, out)
    return out


def _same_model_or_refused(faults, folder: Path, want: np.ndarray, damaged: Path) -> None:
    got = faults.outcome(lambda: load_model(folder))
    if got.error is not None:
        assert str(damaged) in str(got.error), got.error
    else:
        assert np.array_equal(_predict(got.value), want), f"{damaged.name} was damaged, yet the model changed"


@FAST
@given(data=st.data(), name=st.sampled_from(["weights.pt", "model.json"]))
def test_truncated_model_folder(folder, want, faults, scratch, data, name):
    out = _copy(folder, scratch)
    (out / name).write_bytes(data.draw(faults.truncations((out / name).read_bytes())))
    _same_model_or_refused(faults, out, want, out / name)


@FAST
@given(data=st.data())
def test_flipped_bytes_in_the_weights(folder, want, faults, scratch, data):
    """weights.pt is a zip archive: its CRC-32s catch a changed byte in the tensors."""
    out = _copy(folder, scratch)
    (out / "weights.pt").write_bytes(data.draw(faults.flips((out / "weights.pt").read_bytes())))
    _same_model_or_refused(faults, out, want, out / "weights.pt")


@FAST
@given(data=st.data(), name=st.sampled_from(["weights.pt", "model.json"]))
def test_random_bytes_in_a_model_folder(folder, faults, scratch, data, name):
    out = _copy(folder, scratch)
    (out / name).write_bytes(data.draw(faults.garbage()))
    got = faults.outcome(lambda: load_model(out))
    assert got.error is not None and str(out / name) in str(got.error)


@FAST
@given(data=st.data())
def test_flipped_bytes_in_model_json_never_crash(folder, faults, scratch, data):
    """JSON has no checksum: a flipped digit may describe another valid network; no other exception."""
    out = _copy(folder, scratch)
    (out / "model.json").write_bytes(data.draw(faults.flips((out / "model.json").read_bytes())))
    faults.outcome(lambda: read_spec(out))
    faults.outcome(lambda: load_model(out))


@pytest.mark.parametrize("name", ["weights.pt", "model.json"])
def test_a_missing_file(folder, faults, scratch, name):
    out = _copy(folder, scratch)
    (out / name).unlink()
    got = faults.outcome(lambda: load_model(out))
    assert got.error is not None and name in str(got.error)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # torch.load on random bytes, before it refuses them
@FAST
@given(data=st.data())
def test_damaged_state_dict_file(folder, faults, scratch, data):
    raw = (folder / "weights.pt").read_bytes()
    want = read_state_dict(folder / "weights.pt")
    path = Path(scratch()) / "pretrained.pt"
    path.write_bytes(data.draw(st.one_of(faults.truncations(raw), faults.flips(raw), faults.garbage())))
    got = faults.outcome(lambda: read_state_dict(path))
    if got.error is not None:
        assert str(path) in str(got.error)
    else:
        assert got.value.keys() == want.keys() and all(torch.equal(got.value[k], want[k]) for k in want)


def _onnx_key(clf: OnnxClassifier) -> tuple:
    return clf.predict_proba(X).tobytes(), clf.metadata, clf.input_shape, clf.num_classes


@FAST
@given(data=st.data())
def test_truncated_or_random_onnx_file(onnx_file, faults, scratch, data):
    raw = onnx_file.read_bytes()
    want = _onnx_key(OnnxClassifier(onnx_file, threads=1))
    path = Path(scratch()) / "m.onnx"
    path.write_bytes(data.draw(st.one_of(faults.truncations(raw), faults.garbage())))
    got = faults.outcome(lambda: OnnxClassifier(path, threads=1))
    if got.error is not None:
        assert str(path) in str(got.error)
    else:
        assert _onnx_key(got.value) == want, "a damaged ONNX file loaded as a different model"


@FAST
@given(data=st.data())
def test_flipped_bytes_in_an_onnx_file(onnx_file, faults, scratch, data):
    raw = onnx_file.read_bytes()
    want = _onnx_key(OnnxClassifier(onnx_file, threads=1))
    path = Path(scratch()) / "m.onnx"
    path.write_bytes(data.draw(faults.flips(raw)))
    got = faults.outcome(lambda: OnnxClassifier(path, threads=1))
    if got.error is not None:
        assert str(path) in str(got.error)
    else:
        assert _onnx_key(got.value) == want, "a damaged ONNX file loaded as a different model"


def test_files_without_a_checksum_still_load(onnx_file, folder, want, scratch):
    """ONNX files of other exporters (or older sarcomri) carry no digest; legacy (non-zip) checkpoints no CRC."""
    import onnx

    model = onnx.load(str(onnx_file))
    assert model.doc_string.startswith("sarcomri sha256:")
    model.ClearField("doc_string")
    plain = Path(scratch()) / "plain.onnx"
    onnx.save(model, str(plain))
    assert _onnx_key(OnnxClassifier(plain, threads=1)) == _onnx_key(OnnxClassifier(onnx_file, threads=1))
    out = _copy(folder, scratch)
    state = torch.load(out / "weights.pt", weights_only=True)
    torch.save(state, out / "weights.pt", _use_new_zipfile_serialization=False)
    assert np.array_equal(_predict(load_model(out)), want)
