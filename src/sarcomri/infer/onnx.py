"""Fast CPU inference of the classifiers with ONNX Runtime: export a network once, then predict probabilities.

:func:`export_onnx` writes a PyTorch classifier as an ONNX graph with a dynamic batch axis (input ``input``,
float32 (N, C, H, W); output ``logits`` (N, classes)), checked with ``onnx.checker`` and written atomically.
:class:`OnnxClassifier` runs it and returns softmax probabilities like ``sarcomri.train.fit.predict_proba``:
for a binary model ``p_positive = predict_proba(x)[:, 1]``. On a small CPU ONNX Runtime is several times faster
than eager PyTorch (``benchmarks/infer.py``). Model folders are exported in bulk, one trace per architecture, by
:mod:`sarcomri.infer.export`; :mod:`sarcomri.infer.pool` keeps their sessions.

The export uses PyTorch's TorchScript-based exporter (``dynamo=False``): the newer torch.export-based one needs
the ``onnxscript`` package, which is not a dependency. PyTorch marks the old exporter deprecated; its warning is
silenced here. The graph keeps its BatchNormalization nodes and has one initializer per ``state_dict`` entry,
named after it (the exporter's merging of initializers with equal values, which made the graph depend on the
weights, is turned off): what lets :mod:`sarcomri.infer.export` put another member's weights into one trace.
ONNX Runtime folds the batch norms into the convolutions when it loads the graph (as fast as a graph folded at
export). The trace runs on one PyTorch thread: it computes a real forward pass, and on a small CPU busy with
other work OpenMP threads waiting on each other made it 5x slower (0.38 vs 1.9 s, EfficientNet-Lite0 at 64 px).

Every file written here starts with its ``doc_string`` (:data:`DIGEST_PREFIX` + the SHA-256 of the rest of
the file, which is the deterministic serialisation of the graph without its doc_string): a file cut short
keeps it, and the check at load hashes the bytes as read instead of parsing and re-serialising the graph.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sarcomri.errors import InputError
from sarcomri.io.atomic import atomic_path

DEFAULT_OPSET = 17
INPUT_NAME = "input"
OUTPUT_NAME = "logits"
SPEC_KEY = "sarcomri.model_spec"
#: :func:`onnx_bytes` writes ``doc_string`` = this + the SHA-256 of everything else in the file. The
#: doc_string comes first in the file, so a file cut short keeps it.
DIGEST_PREFIX = "sarcomri sha256:"
_DOC_TAG = 0x32  # protobuf key of ModelProto.doc_string: field 6, length-delimited


def trace_onnx(model, input_shape: Sequence[int], opset: int = DEFAULT_OPSET, warned: list[str] | None = None):
    """The ONNX graph (an ``onnx.ModelProto``, in memory) of ``model`` traced in eval mode with a dynamic batch
    axis; initializers named after the ``state_dict``. ``input_shape`` is one input's (C, H, W), or (N, C, H, W)
    whose N is ignored. The model's training mode is restored afterwards. The tracer's warnings (a tensor's value
    turned into a Python number or truth value, which the trace then holds as a constant) are not shown; their
    messages are appended to ``warned`` when given."""
    import onnx
    import torch

    from sarcomri.train.threads import torch_threads

    shape = tuple(int(s) for s in input_shape)
    if len(shape) == 4:
        shape = shape[1:]
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"input_shape must be (C, H, W) or (N, C, H, W), got {tuple(input_shape)}")
    dummy = torch.zeros((2, *shape), dtype=torch.float32)  # batch 2: nothing gets specialised to a batch of 1
    was_training = model.training
    model.eval()
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings(record=True) as caught, torch.no_grad(), torch_threads(1):
            warnings.simplefilter("always", torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            warnings.filterwarnings("ignore", message=".*constant folding be turned off")  # about training mode
            torch.onnx.export(
                model, (dummy,), buffer, dynamo=False, opset_version=int(opset), do_constant_folding=True,
                training=torch.onnx.TrainingMode.PRESERVE,  # eval mode, batch norms not folded: named initializers
                keep_initializers_as_inputs=True,  # else equal tensors are merged (module notes); undone below
                input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            )
    finally:
        model.train(was_training)
    for w in caught:
        if not issubclass(w.category, torch.jit.TracerWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)  # shown as before
        elif warned is not None:
            warned.append(str(w.message))
    graph = onnx.load_from_string(buffer.getvalue())
    weights = {i.name for i in graph.graph.initializer}
    inputs = [v for v in graph.graph.input if v.name not in weights]  # constants again, for ONNX Runtime to fold
    del graph.graph.input[:]
    graph.graph.input.extend(inputs)
    return graph


def onnx_bytes(graph, metadata: dict[str, Any] | None = None) -> bytes:
    """The file content of ``graph`` (an ``onnx.ModelProto``, changed in place) with ``metadata`` entries added to
    its metadata_props as JSON text, and its doc_string set to the digest of the rest, which it precedes."""
    for key, value in (metadata or {}).items():
        entry = graph.metadata_props.add()
        entry.key, entry.value = str(key), json.dumps(value)
    import onnx

    graph.ClearField("doc_string")
    rest = graph.SerializeToString(deterministic=True)
    graph.doc_string = DIGEST_PREFIX + hashlib.sha256(rest).hexdigest()
    # a message holding only the doc_string serialises to its field (tag, length, text); protobuf merges the two
    return onnx.ModelProto(doc_string=graph.doc_string).SerializeToString() + rest


def write_onnx(content: bytes, path: str | Path) -> Path:
    """Write ONNX file ``content`` to ``path`` atomically (an existing file is replaced); returns the path."""
    with atomic_path(path, overwrite=True) as tmp:
        tmp.write_bytes(content)
    return Path(path)


def export_onnx(model, path: str | Path, input_shape: Sequence[int], opset: int = DEFAULT_OPSET,
                metadata: dict[str, Any] | None = None) -> Path:
    """Export ``model`` (evaluated in eval mode) to ``path`` with a dynamic batch axis; returns the path.

    ``input_shape`` is one input's (C, H, W), or (N, C, H, W) whose N is ignored. ``metadata`` entries are stored
    in the graph's metadata_props as JSON text (read back by :attr:`OnnxClassifier.metadata`).
    """
    import onnx

    graph = trace_onnx(model, input_shape, opset)
    content = onnx_bytes(graph, metadata)
    onnx.checker.check_model(graph)
    return write_onnx(content, path)


def onnx_digest(model) -> str:
    """SHA-256 (hex) of an ONNX ModelProto without its ``doc_string``, deterministically serialised."""
    import onnx

    clone = onnx.ModelProto()
    clone.CopyFrom(model)
    clone.ClearField("doc_string")
    return hashlib.sha256(clone.SerializeToString(deterministic=True)).hexdigest()


def check_onnx_file(path: str | Path) -> None:
    """Raise :class:`InputError` when an ONNX file no longer matches the digest :func:`onnx_bytes` stored in it."""
    path = Path(path)
    try:
        content = path.read_bytes()
    except OSError as err:
        raise InputError(path, f"cannot be read ({err})") from None
    check_onnx_bytes(content, path)


def check_onnx_bytes(content: bytes, path: str | Path) -> None:
    """Raise :class:`InputError` naming ``path`` when ONNX file ``content`` no longer matches its stored digest.

    Protobuf has no checksum: ONNX Runtime runs a graph with a changed byte in its weights, or a file cut short
    after the graph (its metadata lost), as if nothing happened. A file whose doc_string is (or, damaged, looks
    like) the digest must match it; files from other exporters or older sarcomri versions have no digest and
    are checked by ONNX Runtime only. A file as :func:`onnx_bytes` writes it is checked by hashing its bytes;
    any other (older files, whose doc_string is not first) by parsing and re-serialising the graph.
    """
    if _leading_digest_matches(content):
        return
    import onnx

    path = Path(path)
    try:
        model = onnx.load_from_string(content)
    except Exception as err:  # noqa: BLE001 - protobuf's DecodeError and onnx's own errors for damaged files
        raise InputError(path, f"not a readable ONNX model ({err})") from None
    try:  # protobuf decodes strings when they are read (UnicodeDecodeError, or bytes back) or written
        doc = model.doc_string
        if isinstance(doc, str):
            if not (doc.startswith("sarcomri") or len(doc) == len(DIGEST_PREFIX) + 64):
                return
            intact = doc == DIGEST_PREFIX + onnx_digest(model)
        else:
            intact = False
    except UnicodeDecodeError:
        intact = False
    if not intact:
        raise InputError(path, "corrupt: its content does not match the checksum stored at export (a damaged "
                               "copy? export it again)")


def _leading_digest_matches(content: bytes) -> bool:
    """True when ``content`` starts with a digest doc_string and the rest of it hashes to that digest."""
    want = len(DIGEST_PREFIX) + 64
    if len(content) < 2 + want or content[0] != _DOC_TAG or content[1] != want:  # one-byte varint: want < 128
        return False
    doc = content[2 : 2 + want]
    if not doc.startswith(DIGEST_PREFIX.encode()):
        return False
    return hashlib.sha256(memoryview(content)[2 + want :]).hexdigest().encode() == doc[len(DIGEST_PREFIX) :]


def default_threads() -> int:
    """The CPU cores this process may use (its affinity mask), which on a small shared machine is all of them."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, numerically stable; a single logit column is a sigmoid head, returned as [1 - p, p]."""
    logits = np.asarray(logits, dtype=np.float64)
    if logits.shape[1] == 1:
        p = 1.0 / (1.0 + np.exp(-logits[:, 0]))
        return np.stack([1.0 - p, p], axis=1).astype(np.float32)
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (z / z.sum(axis=1, keepdims=True)).astype(np.float32)


#: Pixels per image of a chunk, per intra-op thread, that ONNX Runtime runs fastest on this project's CPU
#: (2 MB of L2 cache per core): MobileNetV2 at 224 px ran 6.0 ms per image in chunks of 1-2 on one thread
#: against 7.2 in batches of 16 and 10.3 in batches of 64 without the memory arena (what the session pool uses);
#: EfficientNet-Lite0 at 48-64 px was fastest in chunks of 16-64 (``benchmarks/infer.py --chunks``). Beyond the
#: caches, a larger batch only adds memory traffic.
CHUNK_PIXELS_PER_THREAD = 100_000
#: The largest chunk, whatever the image size (memory).
MAX_CHUNK = 64


def chunk_size(pixels: int, threads: int) -> int:
    """Images per ONNX Runtime call for images of ``pixels`` pixels on ``threads`` threads: about
    :data:`CHUNK_PIXELS_PER_THREAD` per thread, between 1 and :data:`MAX_CHUNK`."""
    return int(min(MAX_CHUNK, max(1, round(CHUNK_PIXELS_PER_THREAD * max(1, threads) / max(1, pixels)))))


class OnnxClassifier:
    """An exported classifier run by ONNX Runtime on the CPU.

    ``threads`` sets ONNX Runtime's intra-op threads (default: the cores this process may use) with one
    inter-op thread and sequential execution. Idle threads sleep instead of spinning (``spin=False``): on a
    small CPU shared with other processes, spinning threads halved throughput in ``benchmarks/infer.py``
    (MobileNetV2 at 224 px, 2 threads on 2 busy cores: 75 vs 140 images/s); on a machine of its own, spinning
    (``spin=True``, ONNX Runtime's default) may shave latency.
    ``batch_size``: the images per ONNX Runtime call; by default :func:`chunk_size` of the images' size and
    the threads (a batch is cut into such chunks: both memory and speed depend on it).
    ``arena``: ONNX Runtime's memory arena keeps the largest run's activations allocated for the next run: 25%
    faster for MobileNetV2 at 224 px in batches of 16, but each kept session then holds them (hundreds of MB for
    a batch of 224 px slices); without it (what :mod:`sarcomri.infer.pool` keeps) EfficientNet-Lite0 at 64 px ran
    as fast with 10-15 MB less per session.
    ONNX Runtime reads the file itself (a session made from a path held 13 MB less memory than one made from the
    file's bytes, EfficientNet-Lite0); :func:`check_onnx_file` then checks its digest, unless ``checked`` says that
    the caller wrote the file itself just now from content :func:`onnx_bytes` digested
    (:mod:`sarcomri.infer.export`). Graph optimisation is ``ORT_ENABLE_ALL``: its blocked (NCHWc) layout made
    EfficientNet-Lite0 at 64 px 6x faster than ``ORT_ENABLE_EXTENDED`` on this CPU.
    """

    def __init__(self, path: str | Path, threads: int | None = None, batch_size: int | None = None, spin: bool = False,
                 checked: bool = False, arena: bool = True):
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(self.path, "ONNX model file not found")
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads or default_threads())
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.enable_cpu_mem_arena = bool(arena)
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=options,
                                                providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own exception types for invalid graphs
            raise InputError(self.path, f"cannot be loaded by ONNX Runtime ({err})") from err
        if not checked:
            check_onnx_file(self.path)
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise InputError(self.path, f"a classifier graph has one input; this one has {len(inputs)}")
        self.input_name = inputs[0].name
        dims = inputs[0].shape
        self.input_shape: tuple[int | None, ...] = tuple(d if isinstance(d, int) else None for d in dims[1:])
        classes = self.session.get_outputs()[0].shape[-1]
        self.num_classes: int | None = classes if isinstance(classes, int) else None
        self.batch_size = None if batch_size is None else max(1, int(batch_size))
        self.threads = options.intra_op_num_threads
        meta = self.session.get_modelmeta().custom_metadata_map
        self.metadata: dict[str, Any] = {k: _json_or_text(v) for k, v in meta.items()}

    @property
    def spec(self):
        """The :class:`~sarcomri.models.spec.ModelSpec` stored at export, or None."""
        from sarcomri.models.spec import ModelSpec

        data = self.metadata.get(SPEC_KEY)
        return ModelSpec.from_dict(data) if isinstance(data, dict) else None

    def _check(self, batch: np.ndarray) -> np.ndarray:
        batch = np.asarray(batch)
        if batch.ndim != 4:
            raise ValueError(f"expected a batch (N, C, H, W), got an array of shape {batch.shape}")
        for axis, (want, have) in enumerate(zip(self.input_shape, batch.shape[1:], strict=True)):
            if want is not None and want != have:
                what = ("channels", "height", "width")[axis]
                raise ValueError(f"{self.path.name} expects {want} {what} per image (input {self.input_shape}), "
                                 f"got a batch of shape {batch.shape}")
        return np.ascontiguousarray(batch, dtype=np.float32)

    def predict_logits(self, batch: np.ndarray) -> np.ndarray:
        """Raw network outputs (N, classes) for a float batch (N, C, H, W)."""
        batch = self._check(batch)
        step = self.batch_size or chunk_size(batch.shape[2] * batch.shape[3], self.threads)
        out = [self.session.run(None, {self.input_name: batch[i : i + step]})[0]
               for i in range(0, len(batch), step)]
        return np.concatenate(out) if out else np.zeros((0, self.num_classes or 0), np.float32)

    def predict_proba(self, batch: np.ndarray) -> np.ndarray:
        """Softmax probabilities (N, classes); for a binary model column 1 is ``p_positive``."""
        logits = self.predict_logits(batch)
        if not len(logits):
            return np.zeros((0, max(2, logits.shape[1])), np.float32)
        return softmax(logits)


def _json_or_text(value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value
