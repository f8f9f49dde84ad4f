"""Fixtures of the 3D segmentation tests: tiny synthetic cohorts with a bright blob as the tumour."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from sarcomri.cohort.manifest import CohortWriter
from sarcomri.seg3d.plan import Plan


def blob_volume(rng: np.random.Generator, shape=(12, 32, 32), spacing=(1.2, 1.2, 3.0), origin=(-20.0, 15.0, 40.0),
                radius_mm: float = 7.0) -> tuple[sitk.Image, sitk.Image]:
    """A noisy volume (z, y, x array) with a bright ellipsoid (in mm) and its mask, on a shared grid."""
    z, y, x = np.indices(shape).astype(float)
    c = np.array(shape) / 2 + rng.uniform(-2, 2, 3)
    sp_zyx = np.asarray(spacing)[::-1]
    d2 = sum(((g - ci) * s) ** 2 for g, ci, s in zip((z, y, x), c, sp_zyx, strict=True))
    mask = (d2 <= radius_mm**2).astype(np.uint8)
    img = rng.normal(100, 10, shape) + 80 * mask
    image = sitk.GetImageFromArray(img.astype(np.float32))
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    m = sitk.GetImageFromArray(mask)
    m.CopyInformation(image)
    return image, m


def assert_only_stage_retrained(cfg, run: Path, stage_dir: str) -> None:
    """Run ``cfg``'s cross-validation into ``run``, delete the first fold's ``stage_dir`` (a second stage's folder
    inside the model folder) and the out-of-fold masks, run again: the fold's first stage is kept, and the
    second comes back with the same weights (same seed)."""
    import shutil

    import torch

    from sarcomri.models.folder import read_weights
    from sarcomri.seg3d.crossval import run_crossval

    run_crossval(cfg, run)
    fold = sorted((run / "models" / "T1").glob("fold*-rep0"))[0]
    weights = (fold / "weights.pt").stat().st_mtime_ns
    before = read_weights(fold / stage_dir)
    shutil.rmtree(fold / stage_dir)
    for p in (run / "predictions" / "T1").glob("*.nii.gz"):
        p.unlink()
    run_crossval(cfg, run)
    assert (fold / "weights.pt").stat().st_mtime_ns == weights  # the first stage is kept
    again = read_weights(fold / stage_dir)  # same seed, same second stage
    assert again.keys() == before.keys()
    assert all(torch.equal(again[k], before[k]) for k in again)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Every test here on one thread: the networks are tiny, and on a shared small CPU a second thread mostly
    spins (measured: several times slower under load), then the previous setting comes back."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture()
def blob_cohort(tmp_path) -> Path:
    """8 patients (centers A/B), T1 and T2 (T2 with its own mask), 12 x 32 x 32 voxels of 1.2 x 1.2 x 3 mm."""
    rng = np.random.default_rng(3)
    root = tmp_path / "blobs"
    with CohortWriter(root, labels=["sarcoma"], positive_label=None) as w:
        for i in range(8):
            pid = f"S{i:02d}"
            w.add_patient(pid, "sarcoma", center="AB"[i % 2], site=["thigh", "arm"][i // 4])
            image, mask = blob_volume(rng)
            w.add_series(pid, "T1", image, mask)
            t2 = sitk.GetImageFromArray(sitk.GetArrayFromImage(image) * 0.5 + 30)
            t2.CopyInformation(image)
            w.add_series(pid, "T2", t2, mask)
    return root


@pytest.fixture()
def tiny_plan() -> Plan:
    """A three-level plan small enough to train in seconds (patch 8 x 16 x 16, filters 4, 8, 16)."""
    return Plan(sequences=["T1"], target_spacing=[3.0, 1.2, 1.2], median_shape=[12, 32, 32], patch_size=[8, 16, 16],
                strides=[[1, 1, 1], [2, 2, 2], [2, 2, 2]], kernels=[[3, 3, 3]] * 3, filters=[4, 8, 16], batch_size=2)
