"""2D inputs for the classifiers and 2D segmenters: per patient, slices of one or several sequences.

A :class:`SliceSpec` says which sequences become channels (one sequence repeated to 3 channels for ImageNet
networks, or co-registered sequences such as b0/b1000/ADC as channels), which slices (every tumour slice,
the central tumour slice, or every slice), the crop (a square around the tumour, or with ``crop_to_tumour``
False the whole field of view less its background margins, made square: :func:`~sarcomri.prep.slices.body_box`)
and the output size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import SimpleITK as sitk

from sarcomri.cohort.manifest import Cohort
from sarcomri.cohort.sequences import group_name, parse_group
from sarcomri.errors import InputError
from sarcomri.io.images import same_grid
from sarcomri.prep.intensity import Normalisation, normalise, zscore_body
from sarcomri.prep.slices import (
    body_box,
    body_threshold,
    central_tumour_slice,
    crop,
    resize2d,
    square_box,
    tumour_slice_indices,
)

SliceMode = Literal["tumour", "central", "all"]


@dataclass(frozen=True)
class SliceSpec:
    """How to turn a patient's series into 2D network inputs."""

    sequences: tuple[str, ...]
    mode: SliceMode = "tumour"
    size: int = 128
    margin: float = 0.25
    crop_to_tumour: bool = True
    normalisation: Normalisation = "zscore"
    channels: int | None = 3  # repeat a single sequence to this many channels; None keeps one per sequence

    def __post_init__(self):
        if not self.sequences:
            raise ValueError("a SliceSpec needs at least one sequence")


@dataclass
class PreparedSlice:
    """One 2D input: ``image`` is (C, H, W) float32, ``mask`` (H, W) uint8 on the same crop."""

    patient_id: str
    slice_index: int
    image: np.ndarray
    mask: np.ndarray
    sequences: tuple[str, ...] = field(default_factory=tuple)
    central: bool = False


def load_channels(cohort: Cohort, patient_id: str, sequences: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray | None]:
    """Channels-first (C, z, y, x) array of the sequences on the first one's grid, and a tumour mask.

    Sequences on other grids are resampled linearly onto the first's. The mask is the first sequence's own
    mask, else another listed sequence's resampled with nearest neighbour, else None.
    """
    ref = cohort.read_image(patient_id, sequences[0])
    chans = [sitk.GetArrayFromImage(ref).astype(np.float32)]
    mask_img = cohort.read_mask(patient_id, sequences[0])
    for seq in sequences[1:]:
        img = cohort.read_image(patient_id, seq)
        if not same_grid(img, ref):
            img = sitk.Resample(img, ref, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)
        chans.append(sitk.GetArrayFromImage(img).astype(np.float32))
        if mask_img is None:
            other = cohort.read_mask(patient_id, seq)
            if other is not None:
                mask_img = sitk.Resample(other, ref, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    mask = None if mask_img is None else (sitk.GetArrayFromImage(mask_img) > 0).astype(np.uint8)
    return np.stack(chans), mask


def prepare_patient(cohort: Cohort, patient_id: str, spec: SliceSpec) -> list[PreparedSlice]:
    """The 2D inputs of one patient under ``spec`` (an empty list when the patient lacks a sequence)."""
    available = set(cohort.series.loc[cohort.series["patient_id"] == patient_id, "sequence"])
    if not set(spec.sequences) <= available:
        return []
    vol, mask = load_channels(cohort, patient_id, spec.sequences)
    return slices_from_volume(vol, mask, spec, patient_id, source=f"{patient_id}/{group_name(spec.sequences)}")


def slices_from_volume(
    vol: np.ndarray, mask: np.ndarray | None, spec: SliceSpec, patient_id: str = "", source: str = ""
) -> list[PreparedSlice]:
    """Cut the slices of a (C, z, y, x) volume under ``spec``; see :class:`SliceSpec`."""
    needs_mask = spec.mode != "all" or spec.crop_to_tumour
    if needs_mask and (mask is None or not mask.any()):
        raise InputError(source, f"slice mode '{spec.mode}' needs a non-empty tumour mask")
    if mask is None:
        mask = np.zeros(vol.shape[1:], np.uint8)
    if spec.mode == "tumour":
        indices = tumour_slice_indices(mask)
    elif spec.mode == "central":
        indices = np.array([central_tumour_slice(mask)])
    else:
        indices = np.arange(vol.shape[1])
    centre = central_tumour_slice(mask) if mask.any() else -1
    if spec.normalisation == "zscore_volume":
        vol = np.stack([zscore_body(c, body_threshold(c)) for c in vol])
    threshold = None if spec.crop_to_tumour else body_threshold(vol[0])
    out = []
    for z in indices:
        img, m = vol[:, z], mask[z]
        if spec.crop_to_tumour:
            box = square_box(m if m.any() else mask.max(axis=0), spec.margin)
            img, m = crop(img, box, mode="edge"), crop(m, box)
        else:  # the whole field of view: background margins removed, padded to a square with the background
            box = body_box(img[0], threshold)
            img, m = crop(img, box, mode="minimum"), crop(m, box)
        img = np.stack([normalise(c, spec.normalisation) for c in img])
        img = resize2d(img, spec.size, order=1).astype(np.float32)
        m = resize2d(m, spec.size, order=0).astype(np.uint8)
        if spec.channels and img.shape[0] == 1:
            img = np.repeat(img, spec.channels, axis=0)
        out.append(PreparedSlice(patient_id, int(z), img, m, tuple(spec.sequences), central=bool(z == centre)))
    return out


def prepare_cohort(cohort: Cohort, spec: SliceSpec, labels: dict[str, int], progress: bool = False):
    """The slices of every patient that has the spec's sequences, and the patients left out and why.

    ``labels`` maps patient_id to the integer class. Returns ``(SliceSet, skipped)`` where ``skipped`` is a
    DataFrame (patient_id, reason): patients lacking a sequence (a model per sequence only sees the patients
    that have it, as in multi-hospital data) or whose series shows no tumour (an empty mask on that grid).
    """
    import pandas as pd
    from rich.progress import track

    from sarcomri.data.sliceset import SliceSet

    parts, skipped = [], []
    ids = [p for p in cohort.patient_ids if p in labels]
    it = track(ids, description=f"preparing {group_name(spec.sequences)}") if progress else ids
    for pid in it:
        try:
            sl = prepare_patient(cohort, pid, spec)
        except InputError as err:
            skipped.append((pid, err.problem))
            continue
        if not sl:
            skipped.append((pid, "lacks a sequence"))
            continue
        parts.append(SliceSet(
            images=np.stack([s.image for s in sl]), labels=np.full(len(sl), labels[pid], dtype=np.int64),
            patient_ids=np.array([pid] * len(sl), dtype=object), slice_index=np.array([s.slice_index for s in sl]),
            masks=np.stack([s.mask for s in sl]), central=np.array([s.central for s in sl]),
        ))
    if not parts:
        raise InputError(cohort.root, f"no patient has a usable {group_name(spec.sequences)} series")
    return SliceSet.concatenate(parts), pd.DataFrame(skipped, columns=["patient_id", "reason"])


def tumour_slice_counts(cohort: Cohort, sequences: list[str] | tuple[str, ...]) -> dict[str, int]:
    """Per patient, the number of slices with tumour in the masks of ``sequences`` (single names; a
    ``'+'``-joined group counts each of its sequences), summed over those the patient has a mask of; 0 for a
    patient with none. What slice-balanced folds balance (:func:`sarcomri.cohort.splits.slice_balanced_folds`)."""
    names = list(dict.fromkeys(s for group in sequences for s in parse_group(group)))
    counts = dict.fromkeys(cohort.patient_ids, 0)
    have = cohort.series[cohort.series["sequence"].isin(names)]
    for pid, seq in have[["patient_id", "sequence"]].itertuples(index=False):
        mask = cohort.read_mask(pid, seq)
        if mask is not None and pid in counts:
            counts[pid] += int(tumour_slice_indices(sitk.GetArrayFromImage(mask) > 0).size)
    return counts
