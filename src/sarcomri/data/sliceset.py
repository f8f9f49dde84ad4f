"""An in-memory set of prepared 2D slices with their patient, slice index and label.

Preparing slices (reading NIfTI, cropping, resizing) is done once per sequence and cached; every fold of
every repeat then selects its patients from the same :class:`SliceSet`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sarcomri.io.atomic import atomic_path


@dataclass
class SliceSet:
    """Slices (N, C, H, W) float32 with per-slice ``patient_ids``, ``slice_index``, ``labels``, masks, and
    ``central`` (True on each patient's central tumour slice)."""

    images: np.ndarray
    labels: np.ndarray
    patient_ids: np.ndarray
    slice_index: np.ndarray
    masks: np.ndarray | None = None
    central: np.ndarray | None = None

    def __post_init__(self):
        if self.central is None:
            self.central = np.zeros(len(self.labels), dtype=bool)

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, patient_ids: Iterable[str]) -> SliceSet:
        """The slices of the given patients (order kept)."""
        keep = np.isin(self.patient_ids, np.asarray(list(patient_ids), dtype=object))
        return SliceSet(
            self.images[keep], self.labels[keep], self.patient_ids[keep], self.slice_index[keep],
            None if self.masks is None else self.masks[keep], self.central[keep],
        )

    def index_frame(self) -> pd.DataFrame:
        """One row per slice: patient_id, slice_index, label, central."""
        return pd.DataFrame({"patient_id": self.patient_ids, "slice_index": self.slice_index, "label": self.labels,
                             "central": self.central})

    def save(self, path: str | Path) -> Path:
        """Write to an ``.npz`` file atomically."""
        with atomic_path(path, suffix=".npz", overwrite=True) as tmp:
            np.savez(tmp, images=self.images, labels=self.labels, patient_ids=self.patient_ids.astype(str),
                     slice_index=self.slice_index, central=self.central,
                     masks=self.masks if self.masks is not None else np.zeros((0,), np.uint8))
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> SliceSet:
        """Read a set written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as z:
            masks = z["masks"]
            return cls(z["images"], z["labels"], z["patient_ids"].astype(object), z["slice_index"],
                       masks if masks.size else None, z["central"])

    @classmethod
    def concatenate(cls, parts: list[SliceSet]) -> SliceSet:
        """Join several sets (e.g. one per patient)."""
        parts = [p for p in parts if len(p)]
        if not parts:
            raise ValueError("no slices to join")
        masks = None if any(p.masks is None for p in parts) else np.concatenate([p.masks for p in parts])
        return cls(
            np.concatenate([p.images for p in parts]), np.concatenate([p.labels for p in parts]),
            np.concatenate([p.patient_ids for p in parts]), np.concatenate([p.slice_index for p in parts]), masks,
            np.concatenate([p.central for p in parts]),
        )
