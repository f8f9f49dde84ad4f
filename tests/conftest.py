"""Shared fixtures: the real test data in ../shared/data (skipped with a message when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SARCOMRI_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real de-identified test data; tests using it skip when it is absent."""
    if not (SHARED_DATA / "README.md").is_file():
        pytest.skip(f"real test data not found at {SHARED_DATA} (set SARCOMRI_SHARED_DATA or clone beside ../shared)")
    return SHARED_DATA


@pytest.fixture()
def tiny_cohort(tmp_path) -> Path:
    """A written 12-patient cohort (4 sarcoma, 8 leiomyoma; T2axi for all, ADC for some, masks on T2axi)."""
    import numpy as np
    import SimpleITK as sitk

    from sarcomri.cohort.manifest import CohortWriter

    rng = np.random.default_rng(0)
    root = tmp_path / "tiny"
    with CohortWriter(root, labels=["leiomyoma", "sarcoma"], positive_label="sarcoma") as w:
        for i in range(12):
            pid = f"P{i:03d}"
            w.add_patient(pid, "sarcoma" if i < 4 else "leiomyoma", age=40 + i, center="ABC"[i % 3])
            img = sitk.GetImageFromArray(rng.normal(100, 10, (6, 16, 16)).astype(np.float32))
            img.SetSpacing((1.5, 1.5, 5.0))
            m = np.zeros((6, 16, 16), np.uint8)
            m[2:4, 5:10, 6:11] = 1
            mask = sitk.GetImageFromArray(m)
            mask.CopyInformation(img)
            w.add_series(pid, "T2axi", img, mask)
            if i % 2 == 0:
                w.add_series(pid, "ADC", img)
    return root
