"""Cases for 3D segmentation: reading channels onto one grid, resampling to the plan's spacing, z-scoring,
and random training patches with foreground oversampling and light augmentation (MONAI transforms).

Arrays are channel-first in (C, z, y, x) order, as MONAI expects. A case's other sequences are resampled
onto its first sequence (the reference, whose mask is the target); then everything goes to the plan's
target spacing, keeping origin and direction: images with linear interpolation, masks by linear
interpolation of the binary mask thresholded at 0.5 (as nnU-Net resamples segmentations per label).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
import torch
from monai.data import get_track_meta, set_track_meta
from monai.transforms import (
    Compose,
    RandAdjustContrastd,
    RandCropByPosNegLabeld,
    RandFlipd,
    RandGaussianNoised,
    RandHistogramShiftd,
    RandRotated,
    RandScaleIntensityd,
    RandShiftIntensityd,
    RandZoomd,
    SpatialPadd,
)
from monai.transforms.utils import map_binary_to_indices

from sarcomri.cohort.manifest import Cohort
from sarcomri.cohort.sequences import group_name
from sarcomri.errors import InputError
from sarcomri.prep import intensity
from sarcomri.seg3d.config import DataSettings
from sarcomri.seg3d.plan import Fingerprint, Plan, fingerprint_from_arrays


@dataclass
class Case:
    """One case ready for the network: ``image`` (C, z, y, x) float32 on the plan's grid, ``label`` (1, z, y, x)
    uint8 or None, ``grid`` (the resampled reference image, whose geometry the arrays have) and
    ``original`` (the reference image as read, whose geometry a prediction is written back onto). ``prior``
    (1, z, y, x) uint8: the previous stage's tumour mask for a cascade's refining stage, else None; it is
    transformed with the image spatially but never by intensity augmentation."""

    case_id: str
    image: np.ndarray
    label: np.ndarray | None
    grid: sitk.Image
    original: sitk.Image
    prior: np.ndarray | None = None


def read_channels(cohort: Cohort, patient_id: str,
                  sequences: Sequence[str]) -> tuple[list[sitk.Image], sitk.Image | None]:
    """The images of ``sequences`` (the later ones resampled onto the first) and the first one's mask."""
    images = [cohort.read_image(patient_id, seq) for seq in sequences]
    mask = cohort.read_mask(patient_id, sequences[0])
    return on_reference_grid(images), mask


def on_reference_grid(images: Sequence[sitk.Image]) -> list[sitk.Image]:
    """Every image resampled (linear) onto the grid of the first, as float32."""
    ref = sitk.Cast(images[0], sitk.sitkFloat32)
    out = [ref]
    for img in images[1:]:
        img = sitk.Cast(img, sitk.sitkFloat32)
        if not _same_grid(img, ref):
            img = sitk.Resample(img, ref, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)
        out.append(img)
    return out


def _same_grid(a: sitk.Image, b: sitk.Image) -> bool:
    from sarcomri.io.images import same_grid

    return same_grid(a, b)


def resample_to_spacing(image: sitk.Image, spacing_zyx: Sequence[float], interpolator=sitk.sitkLinear,
                        pixel_type=sitk.sitkFloat32) -> sitk.Image:
    """``image`` on a grid of ``spacing_zyx`` mm with the same origin and direction and the same extent."""
    new_sp = np.asarray(spacing_zyx, float)[::-1]
    old_sp, old_size = np.asarray(image.GetSpacing()), np.asarray(image.GetSize())
    size = np.maximum(np.round(old_size * old_sp / new_sp), 1).astype(int)
    return sitk.Resample(image, [int(s) for s in size], sitk.Transform(), interpolator, image.GetOrigin(),
                         [float(s) for s in new_sp], image.GetDirection(), 0.0, pixel_type)


def zscore(array: np.ndarray, nonzero: bool = False) -> np.ndarray:
    """Per-channel z-score (nnU-Net's scheme for MRI) of a (C, z, y, x) array.

    With ``nonzero`` the mean and standard deviation come from the voxels where any channel is non-zero,
    and the other voxels stay 0 (nnU-Net's ``use_mask_for_norm``: zero padding does not bias the statistics).
    Statistics in float64, standard deviations floored at 1e-8 (:func:`sarcomri.prep.intensity.zscore`).
    """
    mask = np.any(array != 0, axis=0) if nonzero else None
    return np.stack([intensity.zscore(channel, mask, 1e-8, dtype=np.float64, inside_only=True) for channel in array])


def prepare_case(case_id: str, images: Sequence[sitk.Image], mask: sitk.Image | None, plan: Plan) -> Case:
    """Resample a case's channels (and mask) to the plan's spacing and normalise them (``plan.normalisation``)."""
    if len(images) != len(plan.sequences):
        raise InputError(case_id, f"{len(images)} image(s) given but the plan expects {len(plan.sequences)} "
                                  f"({group_name(plan.sequences)})")
    images = on_reference_grid(images)
    spacing = plan.target_spacing
    grid = [resample_to_spacing(img, spacing) for img in images]
    array = np.stack([sitk.GetArrayFromImage(g) for g in grid]).astype(np.float32)
    if plan.normalisation in ("zscore", "zscore_nonzero"):
        array = zscore(array, nonzero=plan.normalisation == "zscore_nonzero")
    label = None
    if mask is not None:
        m = sitk.Cast(mask > 0, sitk.sitkFloat32)
        label = (sitk.GetArrayFromImage(resample_to_spacing(m, spacing)) >= 0.5).astype(np.uint8)[None]
    return Case(case_id, array, label, grid[0], images[0])


def load_cases(cohort: Cohort, patient_ids: Sequence[str], plan: Plan) -> list[Case]:
    """Read and prepare the cases of ``patient_ids`` for ``plan.sequences`` (the case id is the patient id)."""
    cases = []
    for pid in patient_ids:
        images, mask = read_channels(cohort, pid, plan.sequences)
        cases.append(prepare_case(pid, images, mask, plan))
    return cases


def cohort_fingerprint(cohort: Cohort, patient_ids: Sequence[str], sequences: Sequence[str],
                       seed: int = 0) -> Fingerprint:
    """The fingerprint of a training set: geometry of the reference sequence, foreground intensities."""
    spacings, shapes, images, masks = [], [], [], []
    for pid in patient_ids:
        chans, mask = read_channels(cohort, pid, sequences)
        if mask is None:
            raise InputError(cohort.root, f"patient {pid} has no {sequences[0]} mask to train on")
        spacings.append(chans[0].GetSpacing()[::-1])
        shapes.append(chans[0].GetSize()[::-1])
        images.append([sitk.GetArrayFromImage(c) for c in chans])
        masks.append(sitk.GetArrayFromImage(mask))
    return fingerprint_from_arrays(list(patient_ids), spacings, shapes, images, masks, seed=seed)


def patients_with(cohort: Cohort, sequences: Sequence[str], need_mask: bool = True) -> list[str]:
    """Patients that have every sequence of ``sequences`` (and a mask on the first), in manifest order."""
    s = cohort.series
    keep = []
    for pid in cohort.patient_ids:
        rows = s[s["patient_id"] == pid]
        have = set(rows["sequence"])
        if not set(sequences) <= have:
            continue
        if need_mask:
            mask = rows.loc[rows["sequence"] == sequences[0], "mask"]
            if mask.empty or not isinstance(mask.iloc[0], str) or not mask.iloc[0]:
                continue
        keep.append(pid)
    return keep


# ------------------------------------------------------------------------------------------------- patches
def train_transforms(plan: Plan, settings: DataSettings | None = None) -> Compose:
    """Pad to the patch, crop one patch (``foreground_ratio`` centred on tumour voxels, the rest on
    background voxels), then flips, an in-plane rotation, zoom, intensity scale/shift, gamma, noise and
    a histogram shift.

    With ``plan.prior`` the item's ``prior`` (the previous stage's mask) follows every spatial transform
    (nearest-neighbour) and then is perturbed by :class:`~sarcomri.seg3d.prior.RandPriorPerturbd` (nnU-Net's
    cascade augmentation), so that the refining stage does not simply copy it."""
    s = settings or DataSettings()
    patch = plan.patch_size
    keys = ["image", "label", "prior"] if plan.prior else ["image", "label"]
    nearest = ("nearest",) * (len(keys) - 1)
    ops = [
        SpatialPadd(keys, spatial_size=patch, mode="constant"),
        RandCropByPosNegLabeld(keys, label_key="label", spatial_size=patch, pos=s.foreground_ratio,
                               neg=1.0 - s.foreground_ratio, num_samples=1, fg_indices_key="fg",
                               bg_indices_key="bg", allow_smaller=False),
    ]
    if s.flip:
        ops += [RandFlipd(keys, prob=0.5, spatial_axis=a) for a in range(3)]
    if s.rotate_degrees > 0 and s.rotate_prob > 0:
        r = float(np.deg2rad(s.rotate_degrees))
        other = r if s.rotate_axes == "all" else 0.0
        ops.append(RandRotated(keys, range_x=r, range_y=other, range_z=other, prob=s.rotate_prob,
                               mode=("bilinear", *nearest),
                               padding_mode="zeros", keep_size=True))
    if s.zoom > 0 and s.zoom_prob > 0:
        ops.append(RandZoomd(keys, prob=s.zoom_prob, min_zoom=1 - s.zoom, max_zoom=1 + s.zoom,
                             mode=("trilinear", *nearest), padding_mode="constant", keep_size=True))
    if s.scale_intensity > 0:
        ops.append(RandScaleIntensityd("image", factors=s.scale_intensity, prob=0.5))
    if s.shift_intensity > 0:
        ops.append(RandShiftIntensityd("image", offsets=s.shift_intensity, prob=0.5))
    if s.gamma_prob > 0:
        ops.append(RandAdjustContrastd("image", prob=s.gamma_prob, gamma=(0.7, 1.5)))
    if s.noise_std > 0:
        ops.append(RandGaussianNoised("image", prob=0.15, std=s.noise_std))
    if s.histogram_shift_prob > 0:
        ops.append(RandHistogramShiftd("image", num_control_points=(5, 10), prob=s.histogram_shift_prob))
    if plan.prior:
        from sarcomri.seg3d.prior import RandPriorPerturbd

        ops.append(RandPriorPerturbd("prior", prob=s.prior_perturb_prob))
    return Compose(ops)


def sampling_item(case: Case, plan: Plan) -> dict:
    """The dict a :func:`train_transforms` pipeline reads: the case padded to at least the patch size (the
    pipeline's own padding is then a no-op) and its foreground/background voxel indices, computed once."""
    if case.label is None:
        raise InputError(case.case_id, "a training case needs a mask")
    if plan.prior and case.prior is None:
        raise InputError(case.case_id, "a refining stage's training case needs the previous stage's mask")
    keys = ["image", "label", "prior"] if plan.prior else ["image", "label"]
    pad = SpatialPadd(keys, spatial_size=plan.patch_size, mode="constant")
    item = {k: _plain(v) for k, v in pad({"image": case.image, "label": case.label, "prior": case.prior}).items()
            if k in keys}
    fg, bg = map_binary_to_indices(item["label"], None, 0)
    return {**item, "fg": np.asarray(fg), "bg": np.asarray(bg)}


def _plain(x) -> np.ndarray:
    """A MONAI MetaTensor, tensor or array as a plain numpy array."""
    if isinstance(x, torch.Tensor):
        x = x.as_tensor() if hasattr(x, "as_tensor") else x
        return x.numpy()
    return np.asarray(x)


@contextmanager
def plain_tensors() -> Iterator[None]:
    """MONAI's transforms without metadata tracking (plain tensors, no MetaTensor bookkeeping) for the duration,
    then the previous setting: the same patches at a third of the cost (8.7 -> 3.3 ms per batch of two on the
    sts-t1 plan), which brings the training's data share from about 4 % to under 2 % of a step."""
    before = get_track_meta()
    set_track_meta(False)
    try:
        yield
    finally:
        set_track_meta(before)


class PatchSampler:
    """Batches of training patches: cases drawn uniformly, then one patch each through the transforms.

    ``reseed(seed)`` fixes every random choice of what follows (case draws and transforms), so an epoch's
    batches depend only on the seed it is given.
    """

    def __init__(self, cases: Sequence[Case], plan: Plan, settings: DataSettings | None = None):
        self.items = [sampling_item(c, plan) for c in cases]
        self.transforms = train_transforms(plan, settings)
        self.batch_size = plan.batch_size
        self.rng = np.random.default_rng(0)

    def reseed(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.transforms.set_random_state(seed=int(seed % 2**32))

    def patch(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """One (image, label) patch of case ``index``: (C, z, y, x) float32 and (1, z, y, x) int64."""
        with plain_tensors():
            out = self.transforms(dict(self.items[index]))
        out = out[0] if isinstance(out, list) else out
        image = _plain(out["image"])
        if "prior" in out:
            image = np.concatenate([image, _plain(out["prior"]).astype(np.float32)])
        return (torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)),
                torch.from_numpy(np.ascontiguousarray(_plain(out["label"])).astype(np.int64)))

    def batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """A batch: (B, C, z, y, x) images and (B, 1, z, y, x) labels."""
        idx = self.rng.integers(0, len(self.items), self.batch_size)
        pairs = [self.patch(int(i)) for i in idx]
        return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])
