"""ONNX Runtime sessions of classifier files, loaded once per process and kept: batch prediction, repeated
``predict_patient`` calls and a reader workstation pay a model's session creation and digest check once.

A session is kept per ONNX file and reused while the file's (size, mtime, ctime, inode) stay what they were when
it was loaded; a file written again (a new export) gets a new session. At most :data:`MAX_SESSIONS` sessions are
kept, the least recently used dropped first. Kept sessions run without ONNX Runtime's memory arena (see
:class:`~sarcomri.infer.onnx.OnnxClassifier`): a kept session holds its weights, not its largest batch's
activations. :func:`ensemble_classifiers` gives the sessions of a sequence's model folders, exporting first
(:mod:`sarcomri.infer.export`) those whose ``model.onnx`` is missing, damaged, or not made from their present
weights and spec.

An ensemble's sessions are loaded side by side, and :func:`ensemble_proba` runs its members side by side, each
on one intra-op thread (ONNX Runtime releases Python's lock while it loads and computes).

Measured (``benchmarks/predict.py``, 3 sequences x 24 EfficientNet-Lite0 at 64 px, 69 slices): one ONNX graph
per sequence holding its 24 members (one session, one run) was no faster to run than 24 sessions and took twice
as long to load (1.6 vs 0.8 s). On the 2 idle cores (load 1.3), 24 members run two at a time on one thread each
took 0.11 / 0.23 / 0.77 s for batches of 11 / 23 / 69 slices against 0.15 / 0.26 / 0.93 s one after another on
two threads each (1.39x / 1.14x / 1.21x), and 24 sessions loaded two at a time took 0.63 against 1.09 s.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from sarcomri.errors import InputError
from sarcomri.infer.export import ONNX_NAME, WEIGHTS_NAME, export_folders, restamp, source_status, stat_record
from sarcomri.infer.onnx import DEFAULT_OPSET, OnnxClassifier, default_threads

#: Sessions kept at most (EfficientNet-Lite0 at 64 px: about 25 MB of memory each once run).
MAX_SESSIONS = 128

_SESSIONS: OrderedDict[tuple[str, int | None], tuple[list[int], OnnxClassifier]] = OrderedDict()
_LOCK = threading.Lock()


def classifier(path: str | Path, threads: int | None = None, checked: bool = False) -> OnnxClassifier:
    """The kept session of the ONNX file ``path`` with ``threads`` intra-op threads, loaded (and checked) when
    new or when the file changed since; ``checked``: the caller has just written the file (see
    :class:`OnnxClassifier`)."""
    path = Path(path)
    key = (os.path.abspath(path), threads)
    try:
        stat = stat_record(path)
    except OSError:
        stat = None
    with _LOCK:
        kept = _SESSIONS.get(key)
        if kept is not None and stat is not None and kept[0] == stat:
            _SESSIONS.move_to_end(key)
            return kept[1]
    clf = OnnxClassifier(path, threads=threads, checked=checked, arena=False)
    if stat is not None:
        with _LOCK:
            _SESSIONS[key] = (stat, clf)
            _SESSIONS.move_to_end(key)
            while len(_SESSIONS) > MAX_SESSIONS:
                _SESSIONS.popitem(last=False)
    return clf


def clear() -> None:
    """Drop every kept session (their memory is freed once no caller holds them)."""
    with _LOCK:
        _SESSIONS.clear()


def kept() -> int:
    """How many sessions are kept."""
    with _LOCK:
        return len(_SESSIONS)


def ensemble_classifiers(folders: list[Path], log: Callable[[str], None] | None = None,
                         threads: int | None = None, opset: int = DEFAULT_OPSET) -> list[OnnxClassifier]:
    """Sessions of the model folders' ``model.onnx``, in order; those missing, damaged or out of date with
    their weights and spec are exported first, together (one trace per architecture). A folder without
    ``weights.pt`` (a graph exported elsewhere) has its ``model.onnx`` used as it is. Sessions not kept yet
    are loaded side by side on the process's cores."""
    with ThreadPoolExecutor(min(len(folders), default_threads()) or 1, thread_name_prefix="onnx-load") as load:
        out = dict(enumerate(load.map(lambda folder: cached_classifier(Path(folder), threads, log), folders)))
    stale = [i for i, clf in out.items() if clf is None]
    if stale:
        paths = export_folders([Path(folders[i]) for i in stale], opset=opset, log=log)
        for i, path in zip(stale, paths, strict=True):
            out[i] = classifier(path, threads, checked=True)
    return [out[i] for i in range(len(folders))]


def ensemble_threads(members: int) -> int | None:
    """Intra-op threads per session for an ensemble of ``members`` run by :func:`ensemble_proba`: one when there
    are at least as many members as cores (they then run side by side), else ONNX Runtime's default (None)."""
    return 1 if members >= default_threads() else None


def ensemble_proba(models: list[OnnxClassifier], batch: np.ndarray) -> list[np.ndarray]:
    """Each model's softmax probabilities for ``batch``, in order. Models on one intra-op thread run side by side,
    one per core; others one after another (each already uses the cores)."""
    single = [m for m in models if m.threads == 1]
    workers = min(len(single), default_threads())
    if workers < 2 or len(single) < len(models):
        return [m.predict_proba(batch) for m in models]
    with ThreadPoolExecutor(workers, thread_name_prefix="onnx-run") as run:
        return list(run.map(lambda m: m.predict_proba(batch), models))


def cached_classifier(folder: Path, threads: int | None = None,
                      log: Callable[[str], None] | None = None) -> OnnxClassifier | None:
    """The session of ``folder``'s ``model.onnx`` when it may be used (made from the folder's present weights
    and spec, or the folder has no weights); None when it must be exported (missing, damaged, out of date)."""
    from sarcomri.models.folder import read_spec

    path, weights = folder / ONNX_NAME, folder / WEIGHTS_NAME
    if not weights.is_file() and path.is_file():
        return classifier(path, threads)
    if not path.is_file():
        return None
    try:
        clf = classifier(path, threads)
    except InputError as err:
        _say(log, f"{_name(folder)}: the cached model.onnx is damaged ({err.problem}); exporting it again")
        return None
    status = source_status(clf.metadata, read_spec(folder), weights)
    if status == "restamp":  # a copy: same weights content
        try:
            return classifier(path, threads, checked=True) if restamp(path, weights) else clf
        except InputError:
            return None
    return clf if status == "current" else None


def _name(folder: Path) -> str:
    return f"{Path(folder).parent.name}/{Path(folder).name}"


def _say(log: Callable[[str], None] | None, line: str) -> None:
    if log is not None:
        log(line)
