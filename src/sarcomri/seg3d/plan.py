"""The planner: from a dataset fingerprint to a training plan, following nnU-Net v2's rules at a CPU budget.

* **Target spacing** (nnU-Net ``determine_fullres_target_spacing``): the median spacing per axis; when the
  coarsest axis is more than ``anisotropy_threshold`` times coarser than the others *and* has that many
  times fewer voxels, its target is the 10th percentile of its spacings (never finer than the other axes).
* **Low-resolution grid** (nnU-Net ``3d_lowres``): when the largest patch the voxel budget allows covers less
  than ``min_coverage`` of the median resampled image, the finest axes are coarsened by 3% steps (toward the
  coarsest, then all together) until it does, up to ``max_spacing_factor``.
* **Topology** (nnU-Net / DynUNet): at each level an axis is downsampled (stride 2) only when it keeps at
  least ``min_feature_size`` voxels and its spacing is at most twice the finest; its kernel is 3 when its
  spacing is at most twice the finest, else 1 (in-plane convolutions first on anisotropic grids).
* **Patch size**: the median resampled shape, shrunk along the axis with the largest patch-to-median ratio
  (the physically largest on ties) by that axis' total stride until the voxel budget is met, and a multiple
  of the total stride per axis.

Arrays are in (z, y, x) order throughout (SimpleITK's ``GetSpacing()`` reversed).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from sarcomri.io.atomic import write_json
from sarcomri.seg3d.config import PlanSettings

PLAN_FILE = "plan.json"


@dataclass
class Fingerprint:
    """What the planner needs to know about a training set: geometry per case and foreground intensities.

    ``spacings`` and ``shapes`` are (cases, 3) in (z, y, x); ``intensity`` holds, per channel, the mean, std,
    median and 0.5/99.5 percentiles of foreground voxels (nnU-Net's ``foreground_intensity_properties``).
    """

    cases: list[str]
    spacings: np.ndarray
    shapes: np.ndarray
    intensity: list[dict[str, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.spacings = np.asarray(self.spacings, float).reshape(-1, 3)
        self.shapes = np.asarray(self.shapes, int).reshape(-1, 3)


@dataclass
class Plan:
    """A 3D segmentation plan: the grid, the patch, the network and the batch, saved as ``plan.json``.

    ``deep_supervision`` is the number of extra output heads at coarser decoder levels (0: none). ``prior``:
    the network takes one more input channel after the sequences, the previous stage's tumour mask (the
    refining stage of a cascade, :mod:`sarcomri.seg3d.cascade`). The plan is the spec of a 3D model folder
    (:mod:`sarcomri.models.folder`).
    """

    task: ClassVar[str] = "seg3d"

    sequences: list[str]
    target_spacing: list[float]
    median_shape: list[int]
    patch_size: list[int]
    strides: list[list[int]]
    kernels: list[list[int]]
    filters: list[int]
    batch_size: int
    normalisation: str = "zscore"
    num_classes: int = 2
    fullres_spacing: list[float] = field(default_factory=list)
    spacing_factor: float = 1.0
    intensity: list[dict[str, float]] = field(default_factory=list)
    n_cases: int = 0
    deep_supervision: int = 0
    prior: bool = False

    @property
    def in_channels(self) -> int:
        return len(self.sequences) + int(self.prior)

    def divisor(self) -> list[int]:
        """The total stride per axis: the patch (and padded inputs) must be a multiple of it."""
        return np.prod(np.asarray(self.strides), axis=0).astype(int).tolist()

    def to_dict(self) -> dict[str, Any]:
        """The plan as a JSON-ready dict (the contents of ``plan.json``)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plan:
        """The inverse of :meth:`to_dict`."""
        return cls(**data)

    def save(self, folder: str | Path) -> Path:
        """Write ``plan.json`` atomically into ``folder``."""
        return write_json(Path(folder) / PLAN_FILE, asdict(self), overwrite=True)

    @classmethod
    def load(cls, folder_or_file: str | Path) -> Plan:
        path = Path(folder_or_file)
        if path.is_dir():
            path = path / PLAN_FILE
        return cls(**json.loads(path.read_text()))


def fingerprint_from_arrays(cases: list[str], spacings_zyx, shapes_zyx, images: list[list[np.ndarray]] | None = None,
                            masks: list[np.ndarray] | None = None, sample: int = 10_000, seed: int = 0) -> Fingerprint:
    """A fingerprint from per-case geometry and, optionally, images (per case, per channel) and their masks.

    Intensity statistics pool up to ``sample`` foreground voxels per case (drawn with ``seed``), as nnU-Net.
    """
    intensity: list[dict[str, float]] = []
    if images is not None and masks is not None:
        rng = np.random.default_rng(seed)
        n_ch = len(images[0])
        pooled: list[list[np.ndarray]] = [[] for _ in range(n_ch)]
        for chans, mask in zip(images, masks, strict=True):
            fg = np.flatnonzero(np.asarray(mask).ravel() > 0)
            if fg.size > sample:
                fg = rng.choice(fg, sample, replace=False)
            for c, img in enumerate(chans):
                pooled[c].append(np.asarray(img).ravel()[fg])
        for values in (np.concatenate(p) if p else np.zeros(0) for p in pooled):
            if values.size == 0:
                intensity.append({})
                continue
            p005, med, p995 = np.percentile(values, [0.5, 50, 99.5])
            intensity.append({"mean": float(values.mean()), "std": float(values.std()), "median": float(med),
                              "p00_5": float(p005), "p99_5": float(p995)})
    return Fingerprint(list(cases), spacings_zyx, shapes_zyx, intensity)


def fullres_spacing(fp: Fingerprint, anisotropy_threshold: float = 3.0) -> np.ndarray:
    """nnU-Net's full-resolution target spacing (z, y, x): the median, with the anisotropic-axis rule."""
    target = np.percentile(fp.spacings, 50, axis=0)
    target_size = np.percentile(fp.shapes * fp.spacings / target, 50, axis=0)
    worst = int(np.argmax(target))
    others = [a for a in range(3) if a != worst]
    aniso_spacing = target[worst] > anisotropy_threshold * min(target[others])
    aniso_voxels = target_size[worst] * anisotropy_threshold < min(target_size[others])
    if aniso_spacing and aniso_voxels:
        t = float(np.percentile(fp.spacings[:, worst], 10))
        if t < max(target[others]):
            t = max(max(target[others]), t) + 1e-5
        target[worst] = t
    return target


def median_shape(fp: Fingerprint, spacing) -> np.ndarray:
    """The median image shape (voxels, z y x) after resampling every case to ``spacing``."""
    return np.round(np.percentile(fp.shapes * fp.spacings / np.asarray(spacing, float), 50, axis=0)).astype(int)


def topology(patch, spacing, min_feature_size: int = 8, max_depth: int = 6) -> tuple[list[list[int]], list[list[int]]]:
    """DynUNet strides and kernels (one per level, the first stride being 1) for a patch on a spacing.

    At least three levels (DynUNet's minimum): where the patch is too small to downsample, the extra levels
    have stride 1."""
    size, sp = np.asarray(patch, int).copy(), np.asarray(spacing, float).copy()

    def kernel(s: np.ndarray) -> list[int]:
        return [3 if s[a] <= 2 * s.min() else 1 for a in range(3)]

    strides, kernels = [[1, 1, 1]], [kernel(sp)]
    while len(strides) < max_depth:
        step = [2 if size[a] // 2 >= min_feature_size and sp[a] <= 2 * sp.min() else 1 for a in range(3)]
        if max(step) == 1:
            break
        strides.append(step)
        size, sp = size // np.asarray(step), sp * np.asarray(step)
        kernels.append(kernel(sp))
    while len(strides) < 3:  # DynUNet needs three levels: pad a tiny topology with stride-1 levels
        strides.append([1, 1, 1])
        kernels.append(kernel(sp))
    return strides, kernels


def _round_up(patch: np.ndarray, div: np.ndarray) -> np.ndarray:
    return (np.ceil(patch / div) * div).astype(int)


def patch_size(shape, spacing, settings: PlanSettings) -> tuple[np.ndarray, list[list[int]], list[list[int]]]:
    """The largest patch within ``settings.max_patch_voxels`` (see the module docstring) and its topology."""
    shape, spacing = np.maximum(np.asarray(shape, int), 1), np.asarray(spacing, float)
    patch = shape.copy()
    while True:
        strides, kernels = topology(patch, spacing, settings.min_feature_size, settings.max_depth)
        div = np.prod(np.asarray(strides), axis=0).astype(int)
        patch = _round_up(patch, div)
        if int(np.prod(patch)) <= settings.max_patch_voxels:
            return patch, strides, kernels
        shrinkable = [a for a in range(3) if patch[a] - div[a] >= 1]
        if not shrinkable:
            return patch, strides, kernels
        ratio = patch / shape
        axis = max(shrinkable, key=lambda a: (round(ratio[a], 6), patch[a] * spacing[a]))
        patch[axis] -= div[axis]


def make_plan(fp: Fingerprint, sequences: list[str], settings: PlanSettings | None = None) -> Plan:
    """Derive the plan of a training set (see the module docstring for every rule)."""
    settings = settings or PlanSettings()
    full = fullres_spacing(fp, settings.anisotropy_threshold)
    spacing = full.copy()
    shape = median_shape(fp, spacing)
    patch, strides, kernels = patch_size(shape, spacing, settings)
    while (settings.min_coverage > 0 and np.prod(patch) < settings.min_coverage * np.prod(shape)
           and spacing.min() * 1.03 <= full.min() * settings.max_spacing_factor):
        coarse = spacing.max()
        fine = spacing < coarse * (1 - 1e-6)
        spacing = np.where(fine, np.minimum(spacing * 1.03, coarse), spacing) if fine.any() else spacing * 1.03
        shape = median_shape(fp, spacing)
        patch, strides, kernels = patch_size(shape, spacing, settings)
    filters = [min(settings.base_filters * 2**i, settings.max_filters) for i in range(len(strides))]
    return Plan(
        sequences=list(sequences), target_spacing=[round(float(s), 6) for s in spacing],
        median_shape=shape.tolist(), patch_size=patch.tolist(), strides=strides, kernels=kernels,
        filters=filters, batch_size=settings.batch_size, normalisation=settings.normalisation,
        fullres_spacing=[round(float(s), 6) for s in full],
        spacing_factor=round(float(spacing.min() / full.min()), 4), intensity=fp.intensity, n_cases=len(fp.cases),
        deep_supervision=max(0, min(settings.deep_supervision, len(strides) - 2)),
    )
