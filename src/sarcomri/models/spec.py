"""How a trained model is described: :class:`ModelKind` (for every task: how its spec is read and its network
rebuilt) and :class:`ModelSpec`, the spec of a classifier (the ``spec`` of its ``model.json``)::

    {"name": "mobilenetv2_100", "in_channels": 3, "num_classes": 2, "input_size": [224, 224], "class_names": null}

The model folder itself (``weights.pt`` + ``model.json``, every task) is written and read by
:mod:`sarcomri.models.folder`. This module imports nothing of sarcomri (no import circle with the registry).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class ModelKind:
    """How a task's models are described and rebuilt: ``spec_from_dict`` reads its spec from ``model.json``,
    ``build`` makes the untrained network of a spec (no pretrained weights: the folder's replace them),
    ``check`` (optional) refuses a network that disagrees with its spec before saving, ``sidecar`` (optional)
    writes extra readable files of the spec into the folder (:mod:`sarcomri.models.folder`)."""

    task: str
    spec_from_dict: Callable[[dict[str, Any]], Any]
    build: Callable[[Any], torch.nn.Module]
    check: Callable[[torch.nn.Module, Any], None] | None = None
    sidecar: Callable[[Any, Path], object] | None = None


@dataclass(frozen=True)
class ModelSpec:
    """What is needed to rebuild a classifier: timm name, input channels, classes and input size (H, W).

    ``input_size`` is the side of the square slices, or ``(height, width)``; ``class_names`` optionally names the
    logits in order (for a binary task ``(negative, positive)``).
    """

    task: ClassVar[str] = "classification"

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
