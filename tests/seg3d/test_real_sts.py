"""Real soft-tissue sarcoma T1 data (../shared/data/sts-t1): loading, the CPU plan, one forward pass.

No training here: the 4-fold cross-validation of the CPU default on all 24 patients is documented, with its
command and figures, in docs/segmentation3d.md.
"""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from sarcomri.cohort.manifest import Cohort, CohortWriter
from sarcomri.io.images import same_grid
from sarcomri.seg3d.config import PRESETS, InferSettings, PlanSettings
from sarcomri.seg3d.data import cohort_fingerprint, load_cases
from sarcomri.seg3d.infer import Model, predict_images
from sarcomri.seg3d.model import build_network
from sarcomri.seg3d.plan import make_plan

PATIENTS = ["STS_001", "STS_002", "STS_024"]

pytestmark = pytest.mark.shared


@pytest.fixture(scope="module")
def sts_cohort(shared_data, tmp_path_factory) -> Cohort:
    src = shared_data / "sts-t1"
    if not src.is_dir():
        pytest.skip(f"{src} not found")
    root = tmp_path_factory.mktemp("sts") / "cohort"
    with CohortWriter(root, labels=["sarcoma"]) as w:
        for pid in PATIENTS:
            w.add_patient(pid, "sarcoma")
            w.add_series(pid, "T1", sitk.ReadImage(str(src / pid / "image.nii.gz")),
                         sitk.ReadImage(str(src / pid / "mask.nii.gz")))
    return Cohort.load(root)


def test_cpu_plan_of_real_data(sts_cohort):
    fp = cohort_fingerprint(sts_cohort, PATIENTS, ["T1"])
    assert fp.spacings[:, 0] == pytest.approx([3.27] * 3, abs=0.01)
    assert fp.spacings[:, 1] == pytest.approx([0.9766] * 3, abs=1e-3)
    # the tumour is bright-ish on these T1 images: every foreground voxel is above zero
    assert fp.intensity[0]["p00_5"] > 0
    settings = PlanSettings(**PRESETS["cpu"])
    plan = make_plan(fp, ["T1"], settings)
    # in-plane coarsened to the slice spacing, then every axis, up to 4 x the finest spacing or half coverage
    assert plan.target_spacing[1] == plan.target_spacing[2] >= 0.9766
    assert plan.target_spacing[0] >= 3.26 and plan.target_spacing[1] <= plan.target_spacing[0]
    assert np.prod(plan.patch_size) <= settings.max_patch_voxels
    assert (np.prod(plan.patch_size) >= settings.min_coverage * np.prod(plan.median_shape)
            or min(plan.target_spacing) * 1.03 > 0.9766 * settings.max_spacing_factor)
    # in-plane kernels are 3; along z only when the slice spacing is at most twice the in-plane one
    z_kernel = 3 if plan.target_spacing[0] <= 2 * plan.target_spacing[1] else 1
    assert plan.kernels[0] == [z_kernel, 3, 3]


def test_load_and_one_forward_pass(sts_cohort):
    fp = cohort_fingerprint(sts_cohort, PATIENTS, ["T1"])
    plan = make_plan(fp, ["T1"], PlanSettings(**PRESETS["cpu"]))
    (case,) = load_cases(sts_cohort, ["STS_024"], plan)
    ref = sitk.GetArrayFromImage(sts_cohort.read_mask("STS_024", "T1"))
    vol_ref = ref.sum() * np.prod(sts_cohort.read_mask("STS_024", "T1").GetSpacing())
    vol_plan = case.label.sum() * np.prod(plan.target_spacing)
    assert vol_plan == pytest.approx(vol_ref, rel=0.05)
    inside = case.image[0][case.image[0] != 0]  # z-scored over the non-zero voxels (padding stays 0)
    assert abs(float(inside.mean())) < 1e-3 and float(inside.std()) == pytest.approx(1.0, abs=1e-3)
    torch.manual_seed(0)
    model = Model(build_network(plan).eval(), plan)
    image = sts_cohort.read_image("STS_024", "T1")
    mask, prob = predict_images([model], [image], InferSettings(mirror=False))
    assert same_grid(mask, image) and mask.GetSize() == image.GetSize()
    assert np.isfinite(sitk.GetArrayViewFromImage(prob)).all()
