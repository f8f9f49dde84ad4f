"""Bulk ONNX export of model folders (one trace per architecture) and the kept sessions: the graphs equal a
direct trace and PyTorch; a cached model.onnx is reused only while its weights and spec are the same (a copy is
re-stamped, not exported; changed weights, even of the same size and mtime, a changed spec, a damaged or an
older file are exported again); a network whose trace depends on its weights is traced member by member."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from sarcomri.infer import export, pool
from sarcomri.infer.onnx import SPEC_KEY, OnnxClassifier, check_onnx_bytes, export_onnx, trace_onnx
from sarcomri.models import ModelSpec, build_classifier, save_model
from sarcomri.models.folder import load_model

SPEC = ModelSpec("mobilenetv2_050", in_channels=3, num_classes=2, input_size=32)
X = np.random.default_rng(0).normal(size=(5, 3, 32, 32)).astype(np.float32)


@pytest.fixture(autouse=True)
def fresh_process_state():
    """Each test starts as a new process would: no kept session, traced architecture or hashed file."""
    for state in (pool._SESSIONS, export._TEMPLATES, export._DIGESTS):
        state.clear()
    yield
    for state in (pool._SESSIONS, export._TEMPLATES, export._DIGESTS):
        state.clear()


def _network(seed: int, spec: ModelSpec = SPEC) -> torch.nn.Module:
    """A classifier with seeded weights and batch norm statistics (fresh ones are all equal)."""
    torch.manual_seed(seed)
    net = build_classifier(spec.name, in_channels=spec.in_channels, num_classes=spec.num_classes)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
    return net.eval()


def _folder(root: Path, seed: int, spec: ModelSpec = SPEC) -> Path:
    folder = save_model(_network(seed, spec), spec, root / f"fold{seed}-rep0")
    (folder / "DONE").write_text("{}\n")
    return folder


def _torch_proba(folder: Path) -> np.ndarray:
    with torch.no_grad():
        return torch.softmax(load_model(folder)(torch.from_numpy(X)), dim=1).numpy()


def _sessions(folders: list[Path]) -> tuple[list[OnnxClassifier], list[str]]:
    said: list[str] = []
    return pool.ensemble_classifiers(folders, log=said.append), said


def _graph_bytes(path: Path) -> bytes:
    """The graph of an ONNX file without its metadata and digest."""
    import onnx

    graph = onnx.load(str(path))
    graph.ClearField("doc_string")
    graph.ClearField("metadata_props")
    return graph.SerializeToString(deterministic=True)


def test_bulk_export_equals_a_direct_trace_and_pytorch(tmp_path):
    folders = [_folder(tmp_path, seed) for seed in range(3)]
    sessions, said = _sessions(folders)
    assert said == [f"exported 3 model(s) of {tmp_path.name} to ONNX (once; one trace per architecture)"]
    assert export._TEMPLATES[(SPEC, 17)].exact  # one trace for the three, checked against a second
    for folder, clf in zip(folders, sessions, strict=True):
        direct = tmp_path / f"{folder.name}.onnx"
        export_onnx(load_model(folder), direct, SPEC.input_shape)
        assert _graph_bytes(folder / "model.onnx") == _graph_bytes(direct)
        assert np.abs(clf.predict_proba(X) - _torch_proba(folder)).max() < 1e-5
        assert clf.spec == SPEC and clf.metadata[export.SOURCE_KEY]["weights_sha256"]


def test_unchanged_folders_reuse_the_file_and_the_session(tmp_path):
    folders = [_folder(tmp_path, seed) for seed in range(2)]
    first, _ = _sessions(folders)
    stamps = [os.stat(f / "model.onnx").st_mtime_ns for f in folders]
    again, said = _sessions(folders)
    assert said == [] and all(a is b for a, b in zip(first, again, strict=True))
    pool.clear()  # a new process: the files are loaded (and checked), not exported
    reloaded, said = _sessions(folders)
    assert said == [] and [os.stat(f / "model.onnx").st_mtime_ns for f in folders] == stamps
    assert all(a is not b for a, b in zip(first, reloaded, strict=True))


def test_changed_weights_are_exported_again(tmp_path):
    folder = _folder(tmp_path, 0)
    before = _sessions([folder])[0][0].predict_proba(X)
    save_model(_network(7), SPEC, folder)  # retrained: new weights.pt
    (clf,), said = _sessions([folder])
    assert said == [f"exported 1 model(s) of {tmp_path.name} to ONNX (once; one trace per architecture)"]
    assert np.abs(clf.predict_proba(X) - _torch_proba(folder)).max() < 1e-5
    assert np.abs(clf.predict_proba(X) - before).max() > 1e-3


def test_weights_changed_in_place_with_size_and_mtime_kept_are_exported_again(tmp_path):
    """Only (size, mtime, ctime, inode) all equal skip the hash; a same-size edit with its mtime put back is seen."""
    folder = _folder(tmp_path, 0)
    _sessions([folder])
    weights = folder / "weights.pt"
    st = weights.stat()
    other = save_model(_network(7), SPEC, tmp_path / "other") / "weights.pt"
    assert other.stat().st_size == st.st_size
    with open(weights, "r+b") as f:  # same inode, same size
        f.write(other.read_bytes())
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns))
    pool.clear()
    export._DIGESTS.clear()
    (clf,), said = _sessions([folder])
    assert said and np.abs(clf.predict_proba(X) - _torch_proba(folder)).max() < 1e-5


def test_a_copied_run_is_restamped_not_exported(tmp_path):
    folder = _folder(tmp_path / "a", 0)
    _sessions([folder])
    copy = tmp_path / "b" / folder.name
    shutil.copytree(folder, copy)  # new inodes and times, same content
    (clf,), said = _sessions([copy])
    assert said == []
    recorded = clf.metadata[export.SOURCE_KEY]["weights_stat"]
    assert recorded == export.stat_record(copy / "weights.pt")  # the next process need not hash it
    assert np.abs(clf.predict_proba(X) - _torch_proba(folder)).max() < 1e-5


def test_a_read_only_copy_is_used_as_it_is(tmp_path, monkeypatch):
    folder = _folder(tmp_path / "a", 0)
    _sessions([folder])
    copy = tmp_path / "b" / folder.name
    shutil.copytree(folder, copy)
    before = (copy / "model.onnx").read_bytes()

    def read_only(content, path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(export, "write_onnx", read_only)
    (clf,), said = _sessions([copy])
    assert said == [] and (copy / "model.onnx").read_bytes() == before
    assert np.abs(clf.predict_proba(X) - _torch_proba(folder)).max() < 1e-5


def test_a_changed_spec_a_damaged_or_an_older_file_is_exported_again(tmp_path):
    import json

    folder = _folder(tmp_path, 0)
    _sessions([folder])
    meta = json.loads((folder / "model.json").read_text())
    meta["spec"]["class_names"] = ["leiomyoma", "sarcoma"]
    (folder / "model.json").write_text(json.dumps(meta))
    (clf,), said = _sessions([folder])
    assert said and clf.spec.class_names == ("leiomyoma", "sarcoma")
    assert _sessions([folder])[1] == []  # and kept from then on
    raw = bytearray((folder / "model.onnx").read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    (folder / "model.onnx").write_bytes(bytes(raw))
    (clf,), said = _sessions([folder])
    assert "damaged" in said[0] and said[1].startswith("exported 1 model(s) of")
    export_onnx(load_model(folder), folder / "model.onnx", SPEC.input_shape,
                metadata={SPEC_KEY: clf.spec.to_dict()})  # an earlier version's file: no source record
    (clf,), said = _sessions([folder])
    assert said and export.SOURCE_KEY in clf.metadata


def test_a_graph_without_weights_is_used_as_it_is(tmp_path):
    folder = tmp_path / "fold0-rep0"
    folder.mkdir()
    export_onnx(_network(0), folder / "model.onnx", SPEC.input_shape)
    (clf,), said = _sessions([folder])
    assert said == [] and clf.predict_proba(X).shape == (5, 2)


class WeightDependent(torch.nn.Module):
    """A network whose trace bakes in a weight's value (``.item()``): its graph is not the template's."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.scale = torch.nn.Parameter(torch.ones(()))
        self.head = torch.nn.Linear(4, 2)

    def forward(self, x):
        return self.head(self.conv(x).mean(dim=(2, 3)) * float(self.scale.item()))


def test_a_network_traced_differently_per_weights_is_traced_per_member(tmp_path, monkeypatch):
    import sarcomri.models.folder as folder_lib
    from sarcomri.models.spec import ModelKind

    monkeypatch.setattr(folder_lib, "kind", lambda task: ModelKind(task, ModelSpec.from_dict,
                                                                    lambda spec: WeightDependent()))
    folders = []
    for seed, scale in ((0, 1.0), (1, 2.0), (2, -3.0)):
        torch.manual_seed(seed)
        net = WeightDependent()
        net.scale.data.fill_(scale)
        folder = tmp_path / f"m{seed}"
        folder.mkdir()
        torch.save(net.state_dict(), folder / "weights.pt")
        (folder / "model.json").write_text(
            '{"format": "sarcomri-model", "schema": 2, "task": "classification", "weights": "weights.pt", '
            '"spec": {"name": "weight_dependent", "in_channels": 3, "num_classes": 2, "input_size": 8}}')
        folders.append((folder, net))
    paths = export.export_folders([f for f, _ in folders])
    assert not export._TEMPLATES[(ModelSpec("weight_dependent", 3, 2, 8), 17)].exact
    x = np.random.default_rng(1).normal(size=(2, 3, 8, 8)).astype(np.float32)
    for path, (_, net) in zip(paths, folders, strict=True):
        with torch.no_grad():
            want = net.eval()(torch.from_numpy(x)).numpy()
        assert np.abs(OnnxClassifier(path).predict_logits(x) - want).max() < 1e-5


def test_kept_sessions_follow_their_file(tmp_path):
    path = export_onnx(_network(0), tmp_path / "m.onnx", SPEC.input_shape)
    a = pool.classifier(path)
    assert pool.classifier(path) is a and pool.kept() == 1
    export_onnx(_network(1), path, SPEC.input_shape)
    b = pool.classifier(path)
    assert b is not a and pool.kept() == 1
    assert np.abs(b.predict_logits(X) - a.predict_logits(X)).max() > 1e-3
    pool.clear()
    assert pool.kept() == 0


def test_both_file_layouts_are_checked(tmp_path):
    """Files written here start with their digest (checked by hashing the bytes); one re-saved by onnx (digest
    in the middle) is checked by re-serialising; a changed byte is refused either way."""
    import onnx

    from sarcomri.errors import InputError

    path = export_onnx(_network(0), tmp_path / "m.onnx", SPEC.input_shape)
    resaved = tmp_path / "resaved.onnx"
    onnx.save(onnx.load(str(path)), str(resaved))
    for p in (path, resaved):
        raw = p.read_bytes()
        check_onnx_bytes(raw, p)
        damaged = bytearray(raw)
        damaged[-100] ^= 0x01
        with pytest.raises(InputError, match="corrupt"):
            check_onnx_bytes(bytes(damaged), p)
    assert path.read_bytes()[:1] == b"\x32" and resaved.read_bytes()[:1] != b"\x32"


def test_the_trace_names_every_initializer_after_the_state_dict():
    net = _network(0)
    graph = trace_onnx(net, SPEC.input_shape)
    state = net.state_dict()
    names = [i.name for i in graph.graph.initializer]
    assert names and all(n in state for n in names)
    assert not {i.name for i in graph.graph.input} & set(names)  # constants, not inputs


def test_an_ensemble_runs_side_by_side_on_one_thread_per_member(tmp_path, monkeypatch):
    """Members on one intra-op thread each run two at a time on 2 cores (each pair meets at a barrier), in
    order, with the probabilities each gives alone; members on several threads each run one after another."""
    import threading

    monkeypatch.setattr(pool, "default_threads", lambda: 2)
    folders = [_folder(tmp_path, seed) for seed in range(4)]
    single = pool.ensemble_classifiers(folders, threads=pool.ensemble_threads(len(folders)))
    assert [m.threads for m in single] == [1, 1, 1, 1]
    assert pool.ensemble_threads(1) is None
    pair = threading.Barrier(2, timeout=20)  # broken (a failure) unless two members run at once
    for m in single:
        monkeypatch.setattr(m, "predict_proba", lambda b, run=m.predict_proba: pair.wait() * 0 + run(b))
    got = pool.ensemble_proba(single, X)
    for folder, proba in zip(folders, got, strict=True):
        np.testing.assert_allclose(proba, _torch_proba(folder), atol=1e-5)
    seen: set[str] = set()
    several = pool.ensemble_classifiers(folders, threads=2)
    for m in several:
        monkeypatch.setattr(m, "predict_proba",
                            lambda b, run=m.predict_proba: seen.add(threading.current_thread().name) or run(b))
    again = pool.ensemble_proba(several, X)
    assert seen == {threading.current_thread().name}
    for a, b in zip(got, again, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)
