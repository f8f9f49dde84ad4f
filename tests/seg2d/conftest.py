"""Fixtures of the 2D segmentation tests: a tiny two-site cohort of DWI-like volumes with a bright blob."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from sarcomri.cohort.manifest import CohortWriter
from sarcomri.seg2d.config import DataSettings2D, NetworkSettings, TrainSettings2D

#: A network small enough to train in a fraction of a second per step on 32 px slices.
TINY_NET = NetworkSettings(arch="deeplabv3plus", encoder="tu-mobilenetv2_035", decoder_channels=16)
TINY_DATA = DataSettings2D(image_size=32, background_ratio=0.5, augmentation="none")
TINY_TRAIN = TrainSettings2D(epochs=1, batch_size=8, lr=1e-3, seed=0, threads=1, device="cpu")


def blob_case(rng: np.random.Generator, centre_yx: tuple[float, float], shape=(6, 28, 32),
              spacing=(2.5, 2.5, 5.0), radius_mm: float = 9.0) -> tuple[list[sitk.Image], sitk.Image]:
    """b0, b1000 and ADC volumes (z, y, x arrays; 2.5 x 2.5 x 5 mm) with a blob of tumour and its mask."""
    z, y, x = np.indices(shape).astype(float)
    cz = shape[0] / 2 - 0.5 + rng.uniform(-0.5, 0.5)
    cy, cx = (np.asarray(centre_yx) + rng.uniform(-2, 2, 2))
    d2 = ((z - cz) * spacing[2]) ** 2 + ((y - cy) * spacing[1]) ** 2 + ((x - cx) * spacing[0]) ** 2
    mask = (d2 <= radius_mm**2).astype(np.uint8)
    fg = mask.astype(float)
    b0 = rng.normal(200, 20, shape) + 150 * fg
    b1000 = rng.normal(40, 8, shape) + 120 * fg
    adc = rng.normal(1500, 100, shape) - 700 * fg
    images = []
    for arr in (b0, b1000, adc):
        img = sitk.GetImageFromArray(arr.astype(np.float32))
        img.SetSpacing(spacing)
        img.SetOrigin((-40.0, -35.0, 10.0))
        images.append(img)
    m = sitk.GetImageFromArray(mask)
    m.CopyInformation(images[0])
    return images, m


def write_pair_cohort(root: Path, n_cervix: int = 6, n_corpus: int = 8, seed: int = 0) -> Path:
    """A cohort of ``n_cervix`` blobs low in the slice and ``n_corpus`` blobs in the centre (``site`` column)."""
    rng = np.random.default_rng(seed)
    with CohortWriter(root, labels=["tumour"], positive_label=None) as w:
        for i in range(n_cervix + n_corpus):
            site = "cervix" if i < n_cervix else "corpus"
            pid = f"T{i:03d}"
            w.add_patient(pid, "tumour", site=site)
            images, mask = blob_case(rng, (20.0, 16.0) if site == "cervix" else (13.0, 16.0))
            for seq, img in zip(("DWI_b0", "DWI_b1000", "ADC"), images, strict=True):
                w.add_series(pid, seq, img, mask)
    return root


@pytest.fixture()
def pair_cohort(tmp_path) -> Path:
    """6 cervix and 8 corpus patients, DWI_b0/DWI_b1000/ADC of 6 x 28 x 32 voxels with masks."""
    return write_pair_cohort(tmp_path / "pair")
