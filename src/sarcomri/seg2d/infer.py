"""Slice-wise inference: every slice of a case through the network, the tumour probabilities reassembled
into a 3D mask on the case's original grid (see :mod:`sarcomri.seg2d.data`), written as NIfTI."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk
import torch
from torch import nn

from sarcomri.errors import InputError
from sarcomri.io.atomic import atomic_path
from sarcomri.models.folder import task_of
from sarcomri.seg2d.config import DataSettings2D, InferSettings2D
from sarcomri.seg2d.data import CaseSlices, prepare_case, reassemble
from sarcomri.seg2d.model import Seg2DSpec
from sarcomri.seg2d.train import load_network
from sarcomri.seg3d.patient import ImageLike, PatientSegmentation, read_input_image


@dataclass
class Segmenter:
    """A trained 2D network with the input preparation it was trained with."""

    network: nn.Module
    data: DataSettings2D
    spec: Seg2DSpec
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, folder: str | Path) -> Segmenter:
        """Read a 2D model folder (:mod:`sarcomri.models.folder`)."""
        net, spec, meta = load_network(folder)
        return cls(net, spec.data, spec, meta)


@torch.no_grad()
def predict_slices(network: nn.Module, slices: np.ndarray, batch_size: int = 32,
                   device: torch.device | str = "cpu") -> np.ndarray:
    """Tumour probabilities (Z, S, S) of prepared slices (Z, C, S, S), in evaluation mode."""
    network.eval()
    network.to(device)
    out = []
    for i in range(0, len(slices), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(slices[i:i + batch_size])).to(device)
        out.append(torch.sigmoid(network(x))[:, 0].float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0,) + slices.shape[2:], np.float32)


def predict_case(network: nn.Module, case: CaseSlices, settings: InferSettings2D | None = None,
                 device: torch.device | str = "cpu") -> tuple[sitk.Image, sitk.Image]:
    """The mask (uint8 0/1) and tumour probability of a prepared case, on its reference grid."""
    s = settings or InferSettings2D()
    prob = predict_slices(network, case.image, s.batch_size, device)
    return reassemble(prob, case.reference, s.threshold, s.largest_component)


def predict_images(segmenter: Segmenter, images: Sequence[sitk.Image], settings: InferSettings2D | None = None,
                   case_id: str = "case") -> tuple[sitk.Image, sitk.Image]:
    """Segment one patient from its images (the model's sequences in order; later ones are resampled onto
    the first): mask and probability on the first image's grid."""
    case = prepare_case(case_id, images, None, segmenter.data)
    return predict_case(segmenter.network, case, settings)


def is_2d_model(folder: str | Path) -> bool:
    """True when ``folder`` holds a 2D segmentation model (the ``task`` of its ``model.json``; in a folder of
    before the one model format, a ``model.pt`` with a 2D spec rather than a 3D plan)."""
    return task_of(folder) == "seg2d"


def segment_patient_2d(segmenter: Segmenter, images: Mapping[str, ImageLike],
                       settings: InferSettings2D | None = None, case_id: str = "patient") -> PatientSegmentation:
    """Segment one new patient with a 2D model: ``images`` maps sequence names to SimpleITK images, NIfTI
    files or DICOM series folders; the model's sequences are taken in its order (extra keys ignored), the
    later ones resampled onto the first. The result has the same form as the 3D
    :func:`sarcomri.seg3d.predict.segment_patient`'s."""
    seqs = list(segmenter.data.sequences)
    missing = [s for s in seqs if s not in images]
    if missing:
        raise InputError(case_id, f"the model needs the sequence(s) {missing}; given {sorted(images)}")
    read = [read_input_image(images[s], s) for s in seqs]
    mask, prob = predict_images(segmenter, read, settings, case_id)
    return PatientSegmentation(mask, prob, seqs, 1)


def write_mask(mask: sitk.Image, path: str | Path) -> Path:
    """Write a mask as compressed NIfTI, atomically."""
    with atomic_path(path, overwrite=True) as tmp:
        sitk.WriteImage(mask, str(tmp), useCompression=True)
    return Path(path)
