"""The demo's check of the new patient's mask against the synthetic truth (the study itself is run end to end
by tests/e2e)."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from sarcomri.cohort.manifest import CohortWriter
from sarcomri.demo import mask_against_truth


def _image(array: np.ndarray, spacing=(2.0, 2.0, 5.0)) -> sitk.Image:
    img = sitk.GetImageFromArray(array)
    img.SetSpacing(spacing)
    img.SetOrigin((-30.0, -20.0, 4.0))
    return img


def test_mask_against_truth_scores_the_prediction_on_the_truth_grid(tmp_path):
    truth = np.zeros((6, 20, 20), np.uint8)
    truth[2:4, 5:15, 5:15] = 1  # 200 voxels of 20 mm3: 4 mL
    with CohortWriter(tmp_path / "synthetic", labels=["sarcoma", "leiomyoma"]) as w:
        w.add_patient("SARC-0001", "sarcoma")
        w.add_series("SARC-0001", "DWI_b1000", _image(np.ones((6, 20, 20), np.float32)), _image(truth))
    same = tmp_path / "same.nii.gz"
    sitk.WriteImage(_image(truth), str(same))
    m = mask_against_truth(tmp_path, same, "DWI_b1000")
    assert m["dice"] == 1.0 and m["hd95_mm"] == 0.0
    assert m["true_ml"] == pytest.approx(4.0) and m["predicted_ml"] == pytest.approx(4.0)
    # half the tumour, written on a finer grid (1 mm in-plane): taken back onto the truth's grid
    half = np.zeros((6, 40, 40), np.uint8)
    half[2:4, 10:30, 10:20] = 1
    finer = tmp_path / "finer.nii.gz"
    sitk.WriteImage(_image(half, (1.0, 1.0, 5.0)), str(finer))
    m = mask_against_truth(tmp_path, finer, "DWI_b1000")
    assert m["predicted_ml"] == pytest.approx(2.0) and m["dice"] == pytest.approx(2 * 100 / 300)
