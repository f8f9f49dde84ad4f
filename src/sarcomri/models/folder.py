"""THE trained-model folder of every task (classifier, 2D and 3D segmenter): one writer, one reader.

A folder holds ``weights.pt``, a plain ``state_dict`` (loadable with ``torch.load(weights_only=True)``, checked
against its zip CRC-32s before loading), and ``model.json``::

    {"format": "sarcomri-model", "schema": 2, "task": "classification",
     "spec": {...},                 the task's spec: what rebuilds the untrained network
     "weights": "weights.pt", "versions": {"torch": "...", "timm": "...", "sarcomri": "..."},
     "parameters": 2236682, "trainable_parameters": 2236682,
     "meta": {...}}                 what training recorded (fold, seed, training patients, config, ...)

and, when the trainer gives it, ``history.csv`` (one row per epoch). A 3D model also gets its ``plan.json`` (the
spec, readable on its own). Every file is written atomically, ``model.json`` last: a folder with a
``model.json`` is finished.

Each task declares a :class:`~sarcomri.models.spec.ModelKind` (how its spec is read and its network built) and
its spec class names the task (``task`` class attribute) and writes itself as a dict (``to_dict``). :data:`KINDS`
says where each kind lives; it is imported when a folder of that task is read, so reading a classifier never
imports MONAI, and no task module imports this one to declare itself.

Folders of earlier versions load too: ``model.json`` of schema 1 (classifiers, no ``task``), and the
segmentation folders whose single ``model.pt`` held the weights, the spec (2D) or plan (3D) and the metadata.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from sarcomri.errors import InputError, SarcomriError, few
from sarcomri.io.atomic import atomic_path, write_csv, write_json
from sarcomri.models.spec import ModelKind
from sarcomri.models.weights import check_archive

MODEL_JSON = "model.json"
WEIGHTS = "weights.pt"
HISTORY = "history.csv"
#: The single file of a segmentation model folder written before the one format (weights, spec, metadata).
LEGACY_WEIGHTS = "model.pt"
FORMAT = "sarcomri-model"
SCHEMA = 2

#: Where each task's :class:`ModelKind` is defined ("module:attribute"), imported on first use.
KINDS = {
    "classification": "sarcomri.models.registry:CLASSIFIER",
    "seg2d": "sarcomri.seg2d.model:SEG2D",
    "seg3d": "sarcomri.seg3d.model:SEG3D",
}


@dataclass
class ModelInfo:
    """What a model folder says about its model, without building it."""

    folder: Path
    task: str
    spec: Any
    weights: Path
    meta: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, Any] = field(default_factory=dict)
    legacy: bool = False


def kind(task: str) -> ModelKind:
    """The :class:`ModelKind` of ``task`` (imported on first use)."""
    if task not in KINDS:
        raise SarcomriError(f"unknown model task {task!r}; known: {', '.join(KINDS)}")
    module, _, name = KINDS[task].partition(":")
    return getattr(importlib.import_module(module), name)


def _versions() -> dict[str, str]:
    import timm

    import sarcomri

    return {"torch": torch.__version__, "timm": timm.__version__,
            "sarcomri": getattr(sarcomri, "__version__", "unknown")}


def save_model(model: torch.nn.Module, spec: Any, folder: str | Path, meta: dict[str, Any] | None = None,
               history: list[dict[str, Any]] | None = None) -> Path:
    """Write a model folder (see the module notes) for ``model`` described by ``spec`` (a spec class of a task:
    :class:`~sarcomri.models.spec.ModelSpec`, :class:`~sarcomri.seg2d.model.Seg2DSpec` or
    :class:`~sarcomri.seg3d.plan.Plan`); ``meta`` must be JSON-ready. Returns the folder."""
    folder = Path(folder)
    task = getattr(spec, "task", None)
    how = kind(task) if isinstance(task, str) else None
    if how is None:
        raise TypeError(f"{type(spec).__name__} is not a model spec (it names no task)")
    if how.check is not None:
        how.check(model, spec)
    folder.mkdir(parents=True, exist_ok=True)
    if how.sidecar is not None:
        how.sidecar(spec, folder)
    if history:
        write_csv(folder / HISTORY, pd.DataFrame(history), overwrite=True)
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    with atomic_path(folder / WEIGHTS, overwrite=True) as tmp:
        torch.save(state, tmp)
    params = list(model.parameters())
    write_json(folder / MODEL_JSON, {
        "format": FORMAT, "schema": SCHEMA, "task": task, "spec": spec.to_dict(), "weights": WEIGHTS,
        "versions": _versions(), "parameters": sum(p.numel() for p in params),
        "trainable_parameters": sum(p.numel() for p in params if p.requires_grad), "meta": meta or {},
    }, overwrite=True)
    return folder


def is_model_folder(folder: str | Path) -> bool:
    """True when ``folder`` holds a finished model (a ``model.json``, or an earlier version's ``model.pt``)."""
    return (Path(folder) / MODEL_JSON).is_file() or (Path(folder) / LEGACY_WEIGHTS).is_file()


def read_info(folder: str | Path) -> ModelInfo:
    """The task, spec, metadata and weights file of a model folder (raises :class:`InputError` naming the file)."""
    folder = Path(folder)
    path = folder / MODEL_JSON
    if not path.is_file() and (folder / LEGACY_WEIGHTS).is_file():
        return _read_legacy(folder)
    if not path.is_file():
        raise InputError(path, "no model.json here: not a sarcomri model folder (or it was not finished)")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(path, f"not valid JSON ({err})") from err
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or "spec" not in meta:
        raise InputError(path, f"not a sarcomri model description (expected format '{FORMAT}' and a 'spec')")
    schema = meta.get("schema", 0)
    if not isinstance(schema, int) or isinstance(schema, bool):
        raise InputError(path, f"schema must be a whole number, got {schema!r}")
    if schema > SCHEMA:
        raise InputError(path, f"schema {schema} is newer than this sarcomri reads ({SCHEMA}); upgrade")
    task = meta.get("task", "classification")  # schema 1 had classifiers only
    if task not in KINDS:
        raise InputError(path, f"unknown task {task!r}; known: {', '.join(KINDS)}")
    try:
        spec = kind(task).spec_from_dict(meta["spec"])
    except (TypeError, ValueError, OverflowError) as err:
        raise InputError(path, f"invalid spec: {err}") from err
    weights = meta.get("weights", WEIGHTS)
    if not isinstance(weights, str) or Path(weights).name != weights:
        raise InputError(path, f"'weights' must name a file in the folder, got {weights!r}")
    return ModelInfo(folder, task, spec, folder / weights, dict(meta.get("meta") or {}),
                     dict(meta.get("versions") or {}))


def _read_legacy(folder: Path) -> ModelInfo:
    """A segmentation folder of before the one format: ``model.pt`` = {"model", "spec" (2D) or "plan" (3D), "meta"}."""
    path = folder / LEGACY_WEIGHTS
    state = _load(path, weights_only=False)
    if not isinstance(state, dict) or "model" not in state or not ({"spec", "plan"} & set(state)):
        raise InputError(path, "not a sarcomri segmentation model (expected the weights with a spec or a plan)")
    task = "seg3d" if "plan" in state else "seg2d"
    try:
        spec = kind(task).spec_from_dict(state["plan" if task == "seg3d" else "spec"])
    except (TypeError, ValueError, KeyError) as err:
        raise InputError(path, f"invalid {'plan' if task == 'seg3d' else 'spec'}: {err}") from err
    return ModelInfo(folder, task, spec, path, dict(state.get("meta") or {}), legacy=True)


def read_spec(folder: str | Path) -> Any:
    """The spec recorded in a model folder (a :class:`~sarcomri.models.spec.ModelSpec` for a classifier)."""
    return read_info(folder).spec


def task_of(folder: str | Path) -> str | None:
    """The task of the model in ``folder`` (``classification``, ``seg2d``, ``seg3d``), None when it holds none."""
    if not is_model_folder(folder):
        return None
    try:
        return read_info(folder).task
    except InputError:
        return None


def _load(path: Path, weights_only: bool = True) -> Any:
    if not path.is_file():
        raise InputError(path, "the weights file of this model folder is missing")
    check_archive(path)  # torch.load alone reads a damaged tensor without noticing
    try:
        return torch.load(path, map_location="cpu", weights_only=weights_only)
    except Exception as err:  # torch raises several types for corrupt or foreign files
        raise InputError(path, f"cannot be read as a PyTorch state_dict ({err})") from err


def read_weights(info: ModelInfo | str | Path) -> dict[str, torch.Tensor]:
    """The state_dict of a model folder (or of its :class:`ModelInfo`), on the CPU."""
    info = info if isinstance(info, ModelInfo) else read_info(info)
    state = _load(info.weights, weights_only=not info.legacy)  # a legacy model.pt also pickles its metadata
    if info.legacy:
        state = state["model"] if isinstance(state, dict) and "model" in state else state
    if not isinstance(state, dict):
        raise InputError(info.weights, f"holds a {type(state).__name__}, not a state_dict")
    not_tensors = [str(k) for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise InputError(info.weights, f"is not a state_dict: entries {few(not_tensors)} are not tensors")
    return state


def load_model(folder: str | Path, map_location: str | torch.device = "cpu") -> torch.nn.Module:
    """Rebuild the network of a model folder, load its weights strictly; returned in evaluation mode."""
    info = read_info(folder)
    try:
        model = kind(info.task).build(info.spec)
    except SarcomriError as err:
        if isinstance(err, InputError) and err.path is not None:
            raise
        raise InputError(info.folder / MODEL_JSON, str(err)) from None
    state = read_weights(info)
    expected = model.state_dict()
    problems = []
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    reshaped = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
                if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if missing:
        problems.append(f"missing {few(missing)}")
    if unexpected:
        problems.append(f"unexpected {few(unexpected)}")
    if reshaped:
        problems.append(f"shapes differ: {few(reshaped)}")
    if problems:
        what = getattr(info.spec, "name", f"the {info.task} network")
        raise InputError(info.weights, f"does not match {what} as described in model.json: {'; '.join(problems)}")
    model.load_state_dict(state, strict=True)
    return model.to(map_location).eval()
