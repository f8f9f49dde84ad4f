"""How a trained classifier is rebuilt: the :class:`ModelSpec`, and the model folder (``weights.pt`` + ``model.json``).

``model.json``::

    {"format": "sarcomri-model", "schema": 1,
     "spec": {"name": "mobilenetv2_100", "in_channels": 3, "num_classes": 2, "input_size": [224, 224],
              "class_names": null},
     "weights": "weights.pt", "versions": {"torch": "...", "timm": "...", "sarcomri": "..."}}

``weights.pt`` is a plain ``state_dict`` (loadable with ``torch.load(weights_only=True)``). Both files are written
atomically, the weights first, so a folder whose ``model.json`` exists has complete weights.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch

from sarcomri.errors import InputError, SarcomriError
from sarcomri.io.atomic import atomic_path, write_json

MODEL_JSON = "model.json"
WEIGHTS = "weights.pt"
FORMAT = "sarcomri-model"
SCHEMA = 1


@dataclass(frozen=True)
class ModelSpec:
    """What is needed to rebuild a classifier: timm name, input channels, classes and input size (H, W).

    ``input_size`` is the side of the square slices, or ``(height, width)``; ``class_names`` optionally names the
    logits in order (for a binary task ``(negative, positive)``).
    """

    name: str
    in_channels: int = 3
    num_classes: int = 2
    input_size: int | tuple[int, int] = 224
    class_names: tuple[str, ...] | None = None

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError("ModelSpec.name must be a non-empty timm model name")
        for f in ("in_channels", "num_classes"):
            if int(getattr(self, f)) < 1:
                raise ValueError(f"ModelSpec.{f} must be positive, got {getattr(self, f)}")
            object.__setattr__(self, f, int(getattr(self, f)))
        size = self.input_size
        size = (int(size), int(size)) if isinstance(size, int | float) else tuple(int(s) for s in size)
        if len(size) != 2 or min(size) < 1:
            raise ValueError(f"ModelSpec.input_size must be a positive int or (height, width), got {self.input_size}")
        object.__setattr__(self, "input_size", size[0] if size[0] == size[1] else size)
        if self.class_names is not None:
            names = tuple(str(c) for c in self.class_names)
            if len(names) != self.num_classes:
                raise ValueError(f"ModelSpec.class_names has {len(names)} names for {self.num_classes} classes")
            object.__setattr__(self, "class_names", names)

    @property
    def input_hw(self) -> tuple[int, int]:
        """The input (height, width)."""
        s = self.input_size
        return (s, s) if isinstance(s, int) else s

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """One input without the batch axis: (channels, height, width)."""
        return (self.in_channels, *self.input_hw)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``input_size`` as [height, width])."""
        return {"name": self.name, "in_channels": self.in_channels, "num_classes": self.num_classes,
                "input_size": list(self.input_hw),
                "class_names": None if self.class_names is None else list(self.class_names)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSpec:
        """The inverse of :meth:`to_dict`; unknown keys are an error (a typo must not pass silently)."""
        if not isinstance(data, dict):
            raise ValueError(f"a model spec must be a mapping, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        extra = sorted(set(data) - known)
        if extra:
            raise ValueError(f"unknown model spec field(s) {extra}; expected some of {sorted(known)}")
        if "name" not in data:
            raise ValueError("the model spec has no 'name'")
        return cls(**data)


def _versions() -> dict[str, str]:
    import timm

    import sarcomri

    return {"torch": torch.__version__, "timm": timm.__version__,
            "sarcomri": getattr(sarcomri, "__version__", "unknown")}


def save_model(model: torch.nn.Module, spec: ModelSpec, folder: str | Path) -> Path:
    """Write ``weights.pt`` (the state_dict) and ``model.json`` (spec and versions) into ``folder`` atomically.

    Refuses a model whose head does not have ``spec.num_classes`` outputs. Returns the folder.
    """
    folder = Path(folder)
    head = getattr(model, "num_classes", None)
    if head is not None and int(head) != spec.num_classes:
        raise ValueError(f"the model has {head} outputs but the spec says {spec.num_classes} classes")
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    with atomic_path(folder / WEIGHTS, overwrite=True) as tmp:
        torch.save(state, tmp)
    write_json(folder / MODEL_JSON, {"format": FORMAT, "schema": SCHEMA, "spec": spec.to_dict(),
                                     "weights": WEIGHTS, "versions": _versions()}, overwrite=True)
    return folder


def read_spec(folder: str | Path) -> ModelSpec:
    """The :class:`ModelSpec` recorded in a model folder's ``model.json``."""
    path = Path(folder) / MODEL_JSON
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
    try:
        return ModelSpec.from_dict(meta["spec"])
    except (TypeError, ValueError, OverflowError) as err:
        raise InputError(path, f"invalid spec: {err}") from err


def load_model(folder: str | Path, map_location: str | torch.device = "cpu") -> torch.nn.Module:
    """Rebuild the classifier of a model folder and load its weights strictly; returned in eval mode."""
    from sarcomri.models.registry import _create, resolve_name
    from sarcomri.models.weights import check_archive

    folder = Path(folder)
    spec = read_spec(folder)
    weights = folder / WEIGHTS
    if not weights.is_file():
        raise InputError(weights, "the weights file of this model folder is missing")
    try:
        arch = resolve_name(spec.name)
    except SarcomriError as err:
        raise InputError(folder / MODEL_JSON, str(err)) from None
    model = _create(arch, spec.in_channels, spec.num_classes)
    check_archive(weights)  # torch.load alone reads a damaged tensor without noticing
    try:
        state = torch.load(weights, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises several types for corrupt or foreign files
        raise InputError(weights, f"cannot be read as a PyTorch state_dict ({err})") from err
    if not isinstance(state, dict):
        raise InputError(weights, f"holds a {type(state).__name__}, not a state_dict")
    not_tensors = [str(k) for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise InputError(weights, f"is not a state_dict: entries {_few(not_tensors)} are not tensors")
    expected = model.state_dict()
    problems = []
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    reshaped = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
                if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if missing:
        problems.append(f"missing {_few(missing)}")
    if unexpected:
        problems.append(f"unexpected {_few(unexpected)}")
    if reshaped:
        problems.append(f"shapes differ: {_few(reshaped)}")
    if problems:
        raise InputError(weights, f"does not match {spec.name} as described in model.json: {'; '.join(problems)}")
    model.load_state_dict(state, strict=True)
    return model.to(map_location).eval()


def _few(keys: list[str], n: int = 5) -> str:
    more = f" (+{len(keys) - n} more)" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more
