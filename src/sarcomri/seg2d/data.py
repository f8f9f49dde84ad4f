"""Cases as slices for a 2D network, and slice-wise predictions reassembled onto the original 3D grid.

A case's channels are its sequences, the later ones resampled (linear) onto the grid of the first, the
*reference*; the reference mask is resampled (nearest neighbour) onto that grid when it lies on another.
Each channel is z-scored (over the whole volume by default: "per image" = one sequence of one patient), then
every axial slice (the array's first axis, SimpleITK's z) is zero-padded to a centred square and resized to
``image_size`` (bilinear; masks bilinear then thresholded at 0.5). Reassembly inverts exactly those steps:
the tumour probability of each slice is resized back to the square (bilinear), the padding cut off, the
slices stacked, and the result thresholded and given the reference image's origin, spacing and direction.
When the padded square already has ``image_size`` pixels, the round trip is the identity.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
import torch
import torch.nn.functional as F

from sarcomri.cohort.manifest import Cohort
from sarcomri.errors import InputError
from sarcomri.prep import intensity
from sarcomri.seg2d.config import DataSettings2D
from sarcomri.seg3d.data import on_reference_grid
from sarcomri.seg3d.postprocess import largest_component


@dataclass
class CaseSlices:
    """One case ready for a 2D network: ``image`` (Z, C, S, S) float32 slices, ``label`` (Z, S, S) uint8 or
    None, ``reference`` (the first sequence's image as read: the grid a prediction is written on) and
    ``mask`` (the reference mask on that grid, uint8, or None)."""

    case_id: str
    image: np.ndarray
    label: np.ndarray | None
    reference: sitk.Image
    mask: sitk.Image | None = None

    @property
    def tumour_slices(self) -> np.ndarray:
        """Indices of the slices whose (resized) mask holds tumour."""
        if self.label is None:
            return np.zeros(0, int)
        return np.flatnonzero(self.label.reshape(len(self.label), -1).any(axis=1))


def read_case(cohort: Cohort, patient_id: str, sequences: Sequence[str],
              mask_sequence: str | None = None) -> tuple[list[sitk.Image], sitk.Image | None]:
    """The images of ``sequences`` on the first one's grid, and the mask of ``mask_sequence`` (default: the
    first sequence) on that grid too (None when the patient has no mask there)."""
    try:
        images = on_reference_grid([cohort.read_image(patient_id, s) for s in sequences])
    except KeyError as err:
        raise InputError(cohort.root, f"patient {patient_id}: {err.args[0]}") from None
    mask = cohort.read_mask(patient_id, mask_sequence or sequences[0])
    if mask is not None:
        mask = on_grid(mask, images[0], nearest=True)
    return images, mask


def on_grid(image: sitk.Image, reference: sitk.Image, nearest: bool = False) -> sitk.Image:
    """``image`` on ``reference``'s grid (unchanged when already there): nearest neighbour for a mask (uint8)."""
    from sarcomri.io.images import same_grid

    if nearest:
        image = sitk.Cast(image > 0, sitk.sitkUInt8)
        if same_grid(image, reference):
            out = sitk.Image(image)
            out.CopyInformation(reference)
            return out
        return sitk.Resample(image, reference, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    image = sitk.Cast(image, sitk.sitkFloat32)
    if same_grid(image, reference):
        return image
    return sitk.Resample(image, reference, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)


def normalise(array: np.ndarray, mode: str = "zscore") -> np.ndarray:
    """Z-score a (C, Z, Y, X) array per channel: over the whole volume (``zscore``) or per slice
    (``zscore_slice``); a constant image or slice (standard deviation at most 1e-8) becomes 0. Statistics in
    float64 (:func:`sarcomri.prep.intensity.zscore`)."""
    if mode not in ("zscore", "zscore_slice"):
        raise InputError(None, f"unknown normalisation {mode!r}")
    axes = (1, 2, 3) if mode == "zscore" else (2, 3)
    return intensity.zscore(array, eps=1e-8, axes=axes, dtype=np.float64, flat="zero")


def square_pad(ny: int, nx: int) -> tuple[int, int, int]:
    """(side, top, left): the centred square that holds a ``ny`` x ``nx`` slice."""
    side = max(ny, nx)
    return side, (side - ny) // 2, (side - nx) // 2


def to_slices(volume: np.ndarray, size: int, is_mask: bool = False) -> np.ndarray:
    """(Z, Y, X) or (C, Z, Y, X) to (Z, S, S) or (Z, C, S, S): padded to a centred square, resized to ``size``."""
    vol = np.asarray(volume, np.float32)
    chan_first = vol.ndim == 4
    x = torch.from_numpy(np.ascontiguousarray(vol.transpose(1, 0, 2, 3) if chan_first else vol[:, None]))
    ny, nx = x.shape[-2:]
    side, top, left = square_pad(ny, nx)
    x = F.pad(x, (left, side - nx - left, top, side - ny - top))
    if side != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    out = x.numpy()
    if is_mask:
        return (out[:, 0] >= 0.5).astype(np.uint8)
    return out if chan_first else out[:, 0]


def from_slices(slices: np.ndarray, ny: int, nx: int) -> np.ndarray:
    """(Z, S, S) to (Z, ny, nx): the inverse of :func:`to_slices` (resize to the square, cut the padding)."""
    x = torch.from_numpy(np.ascontiguousarray(np.asarray(slices, np.float32)))[:, None]
    side, top, left = square_pad(ny, nx)
    if x.shape[-1] != side:
        x = F.interpolate(x, size=(side, side), mode="bilinear", align_corners=False)
    return x[:, 0, top:top + ny, left:left + nx].numpy()


def reassemble(prob_slices: np.ndarray, reference: sitk.Image, threshold: float = 0.5,
               keep_largest: bool = False) -> tuple[sitk.Image, sitk.Image]:
    """Slice-wise tumour probabilities (Z, S, S) to a 3D mask (uint8 0/1) and probability map on
    ``reference``'s grid (same size, origin, spacing, direction)."""
    nz, ny, nx = sitk.GetArrayViewFromImage(reference).shape[-3:]
    if len(prob_slices) != nz:
        raise InputError(None, f"{len(prob_slices)} slices predicted for an image of {nz} slices")
    prob = np.clip(from_slices(prob_slices, ny, nx), 0.0, 1.0)
    prob_img = sitk.GetImageFromArray(prob.astype(np.float32))
    prob_img.CopyInformation(reference)
    mask = sitk.GetImageFromArray((prob >= threshold).astype(np.uint8))
    mask.CopyInformation(reference)
    if keep_largest:
        mask = largest_component(mask)
        mask.CopyInformation(reference)
    return mask, prob_img


def prepare_case(case_id: str, images: Sequence[sitk.Image], mask: sitk.Image | None,
                 settings: DataSettings2D) -> CaseSlices:
    """Normalise and slice a case whose ``images`` share the first one's grid (see :func:`read_case`)."""
    if len(images) != len(settings.sequences):
        raise InputError(case_id, f"{len(images)} image(s) given for {len(settings.sequences)} sequence(s)")
    images = on_reference_grid(images)
    array = np.stack([sitk.GetArrayFromImage(img) for img in images]).astype(np.float32)
    if array.ndim != 4:
        raise InputError(case_id, f"expected 3D images, got an array of shape {array.shape[1:]}")
    x = to_slices(normalise(array, settings.normalisation), settings.image_size)
    label = None
    if mask is not None:
        mask = on_grid(mask, images[0], nearest=True)
        label = to_slices(sitk.GetArrayFromImage(mask) > 0, settings.image_size, is_mask=True)
    return CaseSlices(case_id, x, label, images[0], mask)


def load_case(cohort: Cohort, patient_id: str, settings: DataSettings2D, case_id: str | None = None) -> CaseSlices:
    """Read and prepare one patient of a cohort."""
    images, mask = read_case(cohort, patient_id, settings.sequences, settings.reference_mask)
    if mask is None:
        raise InputError(cohort.root, f"patient {patient_id} has no {settings.reference_mask} mask")
    return prepare_case(case_id or patient_id, images, mask, settings)


def eligible_patients(cohort: Cohort, settings: DataSettings2D, require_tumour: bool = True) -> list[str]:
    """Patients with every input sequence and a mask on the reference-mask sequence, in manifest order;
    with ``require_tumour`` only those whose mask holds at least one tumour voxel (a study cannot train on
    or score a patient without a tumour in the series)."""
    s = cohort.series
    keep = []
    for pid in cohort.patient_ids:
        rows = s[s["patient_id"] == pid]
        if not set(settings.sequences) <= set(rows["sequence"]):
            continue
        m = rows.loc[rows["sequence"] == settings.reference_mask, "mask"]
        if m.empty or not isinstance(m.iloc[0], str) or not m.iloc[0]:
            continue
        if require_tumour and not sitk.GetArrayFromImage(cohort.read_mask(pid, settings.reference_mask)).any():
            continue
        keep.append(pid)
    return keep


def training_indices(case: CaseSlices, background_ratio: float, seed: int) -> np.ndarray:
    """The slices of a case used for training: every tumour slice and ``round(background_ratio x tumour
    slices)`` others (at least one when the ratio is positive and some exist), drawn with ``seed``."""
    tumour = case.tumour_slices
    others = np.setdiff1d(np.arange(len(case.image)), tumour)
    k = min(len(others), int(round(background_ratio * len(tumour))))
    if background_ratio > 0 and k == 0 and len(others):
        k = 1
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x2D5E]))
    chosen = np.sort(rng.choice(others, k, replace=False)) if k else np.zeros(0, int)
    return np.sort(np.concatenate([tumour, chosen]).astype(int))


@dataclass
class SliceData:
    """Training slices of several cases: ``x`` (N, C, S, S) float32, ``y`` (N, S, S) uint8, and per slice its
    case id and slice index."""

    x: np.ndarray
    y: np.ndarray
    case_ids: list[str]
    slice_index: np.ndarray

    def __len__(self) -> int:
        return len(self.x)

    @property
    def channels(self) -> int:
        return int(self.x.shape[1])


def slice_data(cases: Sequence[CaseSlices], background_ratio: float = 0.5, seed: int = 0) -> SliceData:
    """Stack the training slices (:func:`training_indices`) of ``cases``; the background draw of each case
    depends only on ``seed`` and the case id, not on which other cases are included."""
    xs, ys, ids, idx = [], [], [], []
    for case in cases:
        if case.label is None:
            raise InputError(case.case_id, "a training case needs a mask")
        sel = training_indices(case, background_ratio, zlib.crc32(case.case_id.encode()) ^ seed)
        xs.append(case.image[sel])
        ys.append(case.label[sel])
        ids.extend([case.case_id] * len(sel))
        idx.append(sel)
    if not ids:
        raise InputError(None, "no training slice: the training cases hold no tumour")
    return SliceData(np.concatenate(xs), np.concatenate(ys), ids, np.concatenate(idx))
