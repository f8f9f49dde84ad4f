"""One patient's segmentation, 2D or 3D: how its input images may be given and what a segmentation returns
(:func:`sarcomri.seg3d.predict.segment_patient`, :func:`sarcomri.seg2d.infer.segment_patient_2d`, nnU-Net model
folders). Kept apart from the inference modules so that the 2D and 3D ones can use each other's."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from sarcomri.errors import InputError
from sarcomri.io.niftifile import read_image

ImageLike = sitk.Image | str | Path


@dataclass
class PatientSegmentation:
    """The result of :func:`~sarcomri.seg3d.predict.segment_patient`: ``mask`` (uint8, 1 = tumour) and
    ``probability`` (float32) on the grid of the first input sequence, the sequences used, and the number of
    models averaged."""

    mask: sitk.Image
    probability: sitk.Image
    sequences: list[str]
    n_models: int

    @property
    def volume_ml(self) -> float:
        """The tumour volume of the mask in mL."""
        voxels = float(np.count_nonzero(sitk.GetArrayViewFromImage(self.mask)))
        return voxels * float(np.prod(self.mask.GetSpacing())) / 1000.0


def read_input_image(value: ImageLike, what: str = "image") -> sitk.Image:
    """A SimpleITK image from an image, a NIfTI (or other SimpleITK-readable) file, or a DICOM series folder."""
    if isinstance(value, sitk.Image):
        return value
    path = Path(value)
    if path.is_dir():
        from sarcomri.io.dicomseg import load_series

        return load_series(path).image
    if not path.is_file():
        raise InputError(path, f"no such file ({what})")
    return read_image(path)
