"""Classifier model folders to ONNX (``<folder>/model.onnx``), one PyTorch trace per architecture, each file
keyed by what it was made from.

Tracing is the slow part of an export (0.2-0.4 s for EfficientNet-Lite0 at 64 px on this CPU, on one thread; 2 s
on two threads of a busy machine), and the members of a sequence's ensemble share their architecture (one
:class:`~sarcomri.models.spec.ModelSpec`) and differ only in their weights. So a spec is traced once per process
and each member's graph is that trace with the member's ``state_dict`` put in place of the initializers (the
trace names them after the ``state_dict``: :func:`sarcomri.infer.onnx.trace_onnx`). That this is exact is
checked once per spec and process: the template is traced with the first member's weights each shifted by one,
and the first member's network is traced too; the second trace must be, byte for byte, the template with the
first member's weights put in, and the tracer must not have warned (it warns when a tensor's value becomes a
Python number or truth value, which a trace holds as a constant or a branch taken). When either fails, every
member is traced.

A ``model.onnx`` records what it was made from (:data:`SOURCE_KEY`, beside the spec under ``SPEC_KEY``): the
export format, the SHA-256 of ``weights.pt``, and that file's size, mtime, ctime and inode when it was hashed.
It is reused only while the spec and the weights' content are those it was made from (the project rule: nothing
reused when its inputs changed). The weights are hashed again only when their (size, mtime, ctime, inode)
differ from the record (git's index uses the same test: a file saved again, copied or moved is hashed); when
the content is unchanged (a copied run) the record is rewritten so that the next process need not hash it.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sarcomri.errors import InputError, few
from sarcomri.fingerprint import file_digest
from sarcomri.infer.onnx import DEFAULT_OPSET, SPEC_KEY, check_onnx_bytes, onnx_bytes, trace_onnx, write_onnx

#: The metadata entry of a ``model.onnx`` saying what it was made from (see the module docstring).
SOURCE_KEY = "sarcomri.source"
#: Bumped when the exported graph changes for the same weights (2: batch norms kept for ONNX Runtime to fold).
EXPORT_FORMAT = 2
ONNX_NAME = "model.onnx"
WEIGHTS_NAME = "weights.pt"

#: SHA-256 of weights files this process has hashed: absolute path -> (stat record, digest).
_DIGESTS: dict[str, tuple[list[int], str]] = {}
#: Traced architectures of this process: (spec, opset) -> :class:`Template`.
_TEMPLATES: dict[tuple[Any, int], Template] = {}
#: One export at a time per process (a template's network is loaded with each member's weights in turn).
_EXPORTING = threading.Lock()


def stat_record(path: Path) -> list[int]:
    """A file's (size, mtime_ns, ctime_ns, inode): what changes when it is saved again, copied or moved."""
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def weights_source(weights: Path) -> dict[str, Any]:
    """The :data:`SOURCE_KEY` record of a weights file now: format, SHA-256 (hashed once per file state and
    process) and stat record. The stat is taken before hashing, so a file changed meanwhile is hashed again."""
    stat = stat_record(weights)
    key = os.path.abspath(weights)
    seen = _DIGESTS.get(key)
    if seen is None or seen[0] != stat:
        seen = _DIGESTS[key] = (stat, file_digest(weights))
    return {"format": EXPORT_FORMAT, "weights_sha256": seen[1], "weights_stat": stat}


def source_status(metadata: dict[str, Any], spec: Any, weights: Path) -> str:
    """Whether an ONNX file with ``metadata`` is the export of a folder with ``spec`` and ``weights`` now:
    ``current``; ``restamp`` (same content, the weights file's stat record changed: a copy); or ``stale``."""
    recorded = metadata.get(SOURCE_KEY)
    if not isinstance(recorded, dict) or recorded.get("format") != EXPORT_FORMAT \
            or metadata.get(SPEC_KEY) != json.loads(json.dumps(spec.to_dict())):
        return "stale"
    if recorded.get("weights_stat") == stat_record(weights):
        return "current"
    return "restamp" if recorded.get("weights_sha256") == weights_source(weights)["weights_sha256"] else "stale"


def restamp(path: Path, weights: Path) -> bool:
    """Rewrite ``path`` (same weights content, another stat record: a copy) with the weights file's stat record
    now, so that the next process need not hash them; False when it cannot be written (a read-only copy: it is
    used as it is). Raises :class:`InputError` when the file is damaged (then it is exported again)."""
    import onnx

    try:
        content = path.read_bytes()
    except OSError as err:
        raise InputError(path, f"cannot be read ({err})") from None
    check_onnx_bytes(content, path)
    graph = onnx.load_from_string(content)
    kept = [e for e in graph.metadata_props if e.key != SOURCE_KEY]
    del graph.metadata_props[:]
    graph.metadata_props.extend(kept)
    try:
        write_onnx(onnx_bytes(graph, {SOURCE_KEY: weights_source(weights)}), path)
    except OSError:
        return False
    return True


@dataclass
class Template:
    """One traced architecture: the graph without its weights, and how to put a member's weights in.

    ``skeleton`` is the ``onnx.ModelProto`` without initializers; ``initializers`` their names in order;
    ``expected`` the network's ``state_dict`` names with shapes and dtypes (what a member's weights must match,
    as a strict ``load_state_dict``); ``exact`` whether filling the skeleton reproduces a trace (else every
    member is traced with ``network``)."""

    skeleton: Any
    initializers: list[str]
    expected: dict[str, tuple[tuple[int, ...], Any]]
    network: Any
    exact: bool = False

    def fill(self, state: dict[str, Any]):
        """The graph with ``state``'s tensors as initializers (cast to the network's dtypes, as loading does)."""
        import onnx
        from onnx import numpy_helper

        graph = onnx.ModelProto()
        graph.CopyFrom(self.skeleton)
        graph.graph.initializer.extend(
            numpy_helper.from_array(state[name].detach().cpu().to(self.expected[name][1]).contiguous().numpy(), name)
            for name in self.initializers)
        return graph

    def check(self, state: dict[str, Any], weights: Path, name: str) -> None:
        """Raise :class:`InputError` unless ``state`` has the network's entries and shapes (a strict load)."""
        missing = [k for k in self.expected if k not in state]
        unexpected = [k for k in state if k not in self.expected]
        reshaped = [f"{k} {tuple(state[k].shape)} vs {v[0]}" for k, v in self.expected.items()
                    if k in state and tuple(state[k].shape) != v[0]]
        problems = [f"{what} {few(keys)}" for what, keys in
                    (("missing", missing), ("unexpected", unexpected), ("shapes differ:", reshaped)) if keys]
        if problems:
            raise InputError(weights, f"does not match {name} as described in model.json: {'; '.join(problems)}")

    def graph(self, state: dict[str, Any], spec: Any, opset: int):
        """The member's graph: the filled skeleton when exact, else a trace of the network with ``state``."""
        import onnx

        if self.exact:
            return self.fill(state)
        self.network.load_state_dict(state, strict=True)
        graph = trace_onnx(self.network, spec.input_shape, opset)
        onnx.checker.check_model(graph)
        return graph


def template(spec: Any, opset: int, state: dict[str, Any], weights: Path) -> tuple[Template, Any]:
    """The traced architecture of ``spec`` (once per process) and the graph of the member whose ``state`` it is
    checked with (a direct trace, checked by ``onnx.checker``)."""
    import onnx

    from sarcomri.models.folder import kind

    key = (spec, int(opset))
    known = _TEMPLATES.get(key)
    if known is not None:
        known.check(state, weights, spec.name)
        return known, known.graph(state, spec, opset)
    network = kind("classification").build(spec)
    expected = {k: (tuple(v.shape), v.dtype) for k, v in network.state_dict().items()}
    made = Template(None, [], expected, network)
    made.check(state, weights, spec.name)
    warned: list[str] = []
    network.load_state_dict({k: v + 1 if v.is_floating_point() else v for k, v in state.items()}, strict=True)
    shifted = trace_onnx(network, spec.input_shape, opset, warned)  # every weight differs from the member's
    network.load_state_dict(state, strict=True)
    direct = trace_onnx(network, spec.input_shape, opset, warned)
    onnx.checker.check_model(direct)
    made.initializers = [i.name for i in shifted.graph.initializer]
    shifted.graph.ClearField("initializer")
    made.skeleton = shifted
    if not warned and all(n in expected for n in made.initializers):
        filled = made.fill(state).SerializeToString(deterministic=True)
        made.exact = filled == direct.SerializeToString(deterministic=True)
    _TEMPLATES[key] = made
    return made, direct


def export_folders(folders: list[Path], opset: int = DEFAULT_OPSET, paths: list[Path] | None = None,
                   log: Callable[[str], None] | None = None) -> list[Path]:
    """Export classifier model folders to ONNX (``paths``, by default ``<folder>/model.onnx``), tracing each
    architecture once; returns the paths. Each file records its spec and :data:`SOURCE_KEY`."""
    from sarcomri.models.folder import read_info, read_weights
    from sarcomri.models.spec import ModelSpec
    from sarcomri.train.threads import torch_threads

    paths = [Path(f) / ONNX_NAME for f in folders] if paths is None else [Path(p) for p in paths]
    # one thread writes the files while the next member is read and filled (a write holds no lock of Python's);
    # the build and the trace compute on tensors: one PyTorch thread, see trace_onnx
    with _EXPORTING, ThreadPoolExecutor(1, thread_name_prefix="onnx-writer") as writer, torch_threads(1):
        written = []
        for folder, dest in zip(folders, paths, strict=True):
            info = read_info(folder)
            if not isinstance(info.spec, ModelSpec):
                raise InputError(folder, "only classifier model folders are exported to ONNX")
            source = weights_source(info.weights)
            state = read_weights(info)
            _, graph = template(info.spec, opset, state, info.weights)
            content = onnx_bytes(graph, {SPEC_KEY: info.spec.to_dict(), SOURCE_KEY: source})
            written.append(writer.submit(write_onnx, content, dest))
        for job in written:
            job.result()
    if log is not None and folders:
        where = ", ".join(sorted({Path(f).parent.name for f in folders}))
        log(f"exported {len(folders)} model(s) of {where} to ONNX (once; one trace per architecture)")
    return paths


def export_saved_model(folder: str | Path, path: str | Path | None = None, opset: int = DEFAULT_OPSET) -> Path:
    """Export a trained model folder (``weights.pt`` + ``model.json``) to ONNX, ``<folder>/model.onnx`` by default.

    The model's :class:`~sarcomri.models.spec.ModelSpec` and what the graph was made from (the weights' SHA-256,
    :data:`SOURCE_KEY`) travel in the graph's metadata.
    """
    dest = Path(folder) / ONNX_NAME if path is None else Path(path)
    export_folders([Path(folder)], opset=opset, paths=[dest])
    return dest
