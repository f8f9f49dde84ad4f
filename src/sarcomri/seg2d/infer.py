"""Slice-wise inference: every slice of a case through the network, the tumour probabilities reassembled
into a 3D mask on the case's original grid (see :mod:`sarcomri.seg2d.data`), written as NIfTI."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk
import torch
from torch import nn

from sarcomri.io.atomic import atomic_path
from sarcomri.seg2d.config import DataSettings2D, InferSettings2D
from sarcomri.seg2d.data import CaseSlices, prepare_case, reassemble
from sarcomri.seg2d.train import load_network


@dataclass
class Segmenter:
    """A trained 2D network with the input preparation it was trained with."""

    network: nn.Module
    data: DataSettings2D
    spec: dict[str, Any]

    @classmethod
    def load(cls, folder: str | Path) -> Segmenter:
        """Read a model folder written by :func:`sarcomri.seg2d.train.save_model`."""
        net, spec, _ = load_network(folder)
        return cls(net, DataSettings2D(**spec["data"]), spec)


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


def write_mask(mask: sitk.Image, path: str | Path) -> Path:
    """Write a mask as compressed NIfTI, atomically."""
    with atomic_path(path) as tmp:
        sitk.WriteImage(mask, str(tmp), useCompression=True)
    return Path(path)
