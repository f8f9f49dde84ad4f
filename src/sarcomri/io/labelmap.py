"""Several binary structures (RTSTRUCT ROIs, DICOM-SEG segments) as one label map.

Structures often overlap (a lesion inside the peripheral zone inside the prostate; GTV inside CTV). A
label map holds one label per voxel, so structures are painted from the largest to the smallest:
a smaller structure stays visible inside a larger one, and a voxel shared by two structures carries the
label of the smaller. Each structure's voxel count before and after painting goes in the label table,
so a structure hidden by overlap is visible in cohort.json rather than silently lost.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

MAX_LABEL = 255  # masks are stored as 8-bit unsigned integers


def paint_largest_first(masks: Mapping[int, np.ndarray]) -> tuple[np.ndarray, dict[int, tuple[int, int]]]:
    """One uint8 label map from ``{label: boolean array}``, and ``{label: (voxels, voxels shown)}``."""
    if not masks:
        raise ValueError("no structures to paint")
    labels = list(masks)
    if min(labels) < 1 or max(labels) > MAX_LABEL:
        raise ValueError(f"labels must lie in 1..{MAX_LABEL}, got {sorted(labels)}")
    shape = next(iter(masks.values())).shape
    out = np.zeros(shape, dtype=np.uint8)
    sizes = {label: int(np.count_nonzero(m)) for label, m in masks.items()}
    for label in sorted(labels, key=lambda lab: (-sizes[lab], lab)):
        out[np.asarray(masks[label], dtype=bool)] = label
    shown = np.bincount(out.ravel(), minlength=max(labels) + 1)
    return out, {label: (sizes[label], int(shown[label])) for label in labels}
