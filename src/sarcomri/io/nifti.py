"""NIfTI studies in a folder layout: one folder per patient, one file per sequence.

Layout (``.nii.gz`` or ``.nii``)::

    SRC/<patient>/<sequence>.nii.gz          the image of one sequence, named by its canonical name
                                             (T2axi, fsT1CEaxi, ADC, DWI_b800, T1, ...)
    SRC/<patient>/<sequence>_mask.nii.gz     optional: its mask (labels 0..255) on the same grid

    SRC/<patient>/image.nii.gz               the IBSI soft-tissue sarcoma layout (sts-t1): one image and
    SRC/<patient>/mask.nii.gz                its mask, named with ``--sequence`` (e.g. ``--sequence T1``)

``<patient>`` is the source patient id (the labels file's patient_id); it is replaced by a pseudonym.
Files outside patient folders, in deeper folders, or not NIfTI are skipped and counted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
import SimpleITK as sitk

from sarcomri.errors import InputError
from sarcomri.io.images import check_finite, check_same_grid
from sarcomri.io.labelmap import MAX_LABEL
from sarcomri.io.niftifile import check_nifti_file, read_image, read_voxels
from sarcomri.io.volume import clean_image

NIFTI_SUFFIXES = (".nii.gz", ".nii")
SEQUENCE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MASK_SUFFIX = "_mask"


@dataclass
class NiftiSeries:
    """One sequence of one patient: its image file and optional mask file."""

    sequence: str
    image: Path
    mask: Path | None = None


@dataclass
class NiftiPatient:
    """The sequences found in one patient folder."""

    source_id: str
    folder: Path
    series: list[NiftiSeries] = field(default_factory=list)


def is_nifti(path: Path) -> bool:
    """True when the file name ends in .nii or .nii.gz."""
    return path.name.lower().endswith(NIFTI_SUFFIXES)


def _stem(path: Path) -> str:
    name = path.name
    for suffix in NIFTI_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def scan_nifti(root: Path, files: list[Path], sequence: str | None = None) -> tuple[list[NiftiPatient], list[str]]:
    """Patients and their sequences from the layout above, and notes on skipped files."""
    notes: list[str] = []
    by_folder: dict[Path, dict[str, Path]] = {}
    masks: dict[Path, dict[str, Path]] = {}
    skipped = 0
    for path in files:
        rel = path.relative_to(root)
        if len(rel.parts) != 2 or not is_nifti(path):
            skipped += 1
            continue
        stem = _stem(path)
        if stem in ("image", "mask"):
            if sequence is None:
                raise InputError(path, f"{path.name} needs --sequence to name its sequence (e.g. --sequence T1)")
            stem = sequence if stem == "image" else sequence + MASK_SUFFIX
        target = masks if stem.endswith(MASK_SUFFIX) else by_folder
        name = stem[: -len(MASK_SUFFIX)] if stem.endswith(MASK_SUFFIX) else stem
        if not SEQUENCE_NAME_RE.match(name):
            raise InputError(path, f"{name!r} is not a usable sequence name (letters, digits, '_', '.', '-')")
        slot = target.setdefault(path.parent, {})
        if name in slot:
            raise InputError(path, f"two files give sequence {name} in one patient folder ({slot[name].name})")
        slot[name] = path
    if skipped:
        notes.append(f"{skipped} file(s) outside the layout SRC/<patient>/<sequence>.nii.gz were skipped")
    patients = []
    for folder in sorted(set(by_folder) | set(masks)):
        images, folder_masks = by_folder.get(folder, {}), masks.get(folder, {})
        for name, mask in folder_masks.items():
            if name not in images:
                raise InputError(mask, f"a mask without its image {name}.nii.gz in the same folder")
        patient = NiftiPatient(source_id=folder.name, folder=folder)
        patient.series = [NiftiSeries(name, images[name], folder_masks.get(name)) for name in sorted(images)]
        patients.append(patient)
    return patients, notes


def check_finite_file(path: Path) -> None:
    """Raise when a NIfTI file is truncated or corrupt, or when a floating-point one holds NaN or infinite voxels.

    The integrity check is :func:`sarcomri.io.niftifile.check_nifti_file` (nibabel too fills a truncated
    file with zeros); the values are read with nibabel because SimpleITK's NIfTI reader silently turns NaN
    and infinity into 0.
    """
    check_nifti_file(path, full=True)
    _check_finite_values(path)


def _check_finite_values(path: Path) -> None:
    """The NaN/infinity part of :func:`check_finite_file`, for a file already checked for integrity."""
    try:
        floating = np.issubdtype(nib.load(str(path)).get_data_dtype(), np.floating)
    except Exception as exc:  # noqa: BLE001 - nibabel raises many types on damaged files
        raise InputError(path, f"not a readable NIfTI image ({exc})") from None
    if not floating:
        return
    data = read_voxels(path)
    bad = data.size - int(np.count_nonzero(np.isfinite(data)))
    if bad:
        raise InputError(path, f"{bad} voxels are NaN or infinite")


def read_nifti_image(path: Path) -> sitk.Image:
    """A 3D image from a NIfTI file, without metadata; raise on unreadable, 4D or NaN images."""
    image = read_image(path)  # strict: InputError on a truncated or corrupt file
    _check_finite_values(path)
    if image.GetDimension() == 2:
        image = sitk.JoinSeries(image)
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(path, f"a {image.GetDimension()}D image with {image.GetNumberOfComponentsPerPixel()} "
                         "component(s): one 3D scalar volume per file is needed (split DWI by b-value)")
    check_finite(image, str(path))
    return clean_image(image)


def read_nifti_mask(path: Path, image: sitk.Image, image_path: Path) -> sitk.Image:
    """A label mask on ``image``'s grid as uint8; raise when grids differ or values are not labels."""
    mask = read_nifti_image(path)
    check_same_grid(image, mask, str(image_path), f"its mask {path}")
    values = sitk.GetArrayViewFromImage(mask)
    if values.size and (values.min() < 0 or values.max() > MAX_LABEL or not np.all(np.mod(values, 1) == 0)):
        raise InputError(path, f"a mask must hold whole labels 0..{MAX_LABEL} (found values from {values.min()} "
                         f"to {values.max()})")
    out = sitk.Cast(mask, sitk.sitkUInt8)
    out.CopyInformation(image)  # same grid within tolerance: use the image's exact geometry
    return out
