"""The two-stage cascade: the box and prior helpers, the prior's perturbation, a refining stage trained in a
cross-validation (its folder, its plan, its inputs), inference that redraws only inside the box, and a resumed
run that keeps the finished first stage."""

import numpy as np
import pytest
import SimpleITK as sitk

from sarcomri.seg3d.cascade import REFINE_DIR, crop, prior_on_grid, roi_box, training_case
from sarcomri.seg3d.config import Seg3DConfig
from sarcomri.seg3d.crossval import fold_done, run_crossval
from sarcomri.seg3d.data import Case, PatchSampler
from sarcomri.seg3d.infer import Model, find_models, predict_images
from sarcomri.seg3d.plan import Plan
from sarcomri.seg3d.prior import RandPriorPerturbd, ball, binary_operator, drop_component

from .conftest import assert_only_stage_retrained

TINY = {
    "name": "tiny", "sequences": ["T1"], "folds": 2,
    "plan": {"max_patch_voxels": 8 * 16 * 16, "min_coverage": 0.0, "base_filters": 4, "max_filters": 16},
    "train": {"epochs": 1, "iterations": 2, "lr": 0.01, "threads": 1},
    "infer": {"mirror": False},
    "cascade": {"plan": {"max_spacing_factor": 1.0}, "margin_mm": 6.0, "epochs": 1, "iterations": 3},
}


def test_roi_box_widens_the_mask_box_by_the_margin_in_mm_and_clips():
    mask = np.zeros((10, 20, 20), bool)
    mask[4:6, 8:10, 15:17] = True
    box = roi_box(mask, spacing_zyx=[3.0, 1.0, 1.0], margin_mm=4.0)
    # 4 mm: 2 slices of 3 mm (ceil), 4 voxels of 1 mm; the x side is clipped at 20
    assert box == (slice(2, 8), slice(4, 14), slice(11, 20))
    assert roi_box(np.zeros((3, 3, 3), bool), [1, 1, 1], 5.0) is None


def test_prior_on_grid_resamples_and_thresholds():
    prob = np.zeros((4, 8, 8), np.float32)
    prob[1:3, 2:6, 2:6] = 0.8
    img = sitk.GetImageFromArray(prob)
    img.SetSpacing((2.0, 2.0, 3.0))
    fine = sitk.Image(16, 16, 4, sitk.sitkFloat32)
    fine.SetSpacing((1.0, 1.0, 3.0))
    fine.SetOrigin((-0.5, -0.5, 0.0))
    prior = prior_on_grid(img, fine, 0.5)
    assert prior.shape == (1, 4, 16, 16) and prior.dtype == np.uint8
    assert prior[0, 1:3].any() and not prior[0, 0].any() and not prior[0, 3].any()
    assert prior.sum() == pytest.approx(2 * 8 * 8, rel=0.3)  # the 4 x 4 coarse square is about 8 x 8 fine voxels


def test_training_case_is_cropped_around_prior_and_reference_mask():
    image = np.random.default_rng(0).normal(size=(1, 10, 30, 30)).astype(np.float32)
    label = np.zeros((1, 10, 30, 30), np.uint8)
    label[0, 4:6, 3:6, 3:6] = 1
    prior = np.zeros_like(label)
    prior[0, 4:6, 20:24, 20:24] = 1  # the coarse stage found something else too
    case = Case("c", image, label, sitk.Image(30, 30, 10, sitk.sitkFloat32), sitk.Image(30, 30, 10, sitk.sitkFloat32))
    out = training_case(case, prior, margin_mm=2.0, spacing_zyx=[1.0, 1.0, 1.0])
    assert out.image.shape == (1, 6, 25, 25) and out.prior.shape == out.label.shape == (1, 6, 25, 25)
    assert out.label.sum() == label.sum() and out.prior.sum() == prior.sum()
    np.testing.assert_array_equal(crop(case, (slice(2, 8), slice(1, 26), slice(1, 26))).image, out.image)


def test_binary_operators_and_component_drop():
    mask = np.zeros((9, 9, 9), bool)
    mask[4, 4, 4] = True
    assert binary_operator(mask, "dilation", 1).sum() == ball(1).sum() == 7
    assert binary_operator(mask, "erosion", 1).sum() == 0
    two = np.zeros((20, 20, 20), bool)
    two[1:3, 1:3, 1:3] = True  # 8 voxels: small
    two[5:19, 5:19, 5:19] = True  # 2744 voxels: over 15 % of 8000
    dropped = drop_component(two, np.random.RandomState(0))
    assert dropped.sum() == 14**3  # only the small one could go


def test_prior_perturbation_is_seeded_and_leaves_the_image_alone():
    prior = np.zeros((1, 12, 12, 12), np.uint8)
    prior[0, 3:9, 3:9, 3:9] = 1
    t = RandPriorPerturbd("prior", prob=1.0, max_radius=2, drop_prob=0.0)
    outs = []
    for _ in range(2):
        t.set_random_state(seed=5)
        outs.append([t({"prior": prior, "image": prior.astype(np.float32)}) for _ in range(4)])
    for a, b in zip(*outs, strict=True):
        np.testing.assert_array_equal(a["prior"], b["prior"])
        np.testing.assert_array_equal(a["image"], prior)  # never touched
    assert any(not np.array_equal(o["prior"], prior) for o in outs[0])


def test_patch_sampler_appends_the_prior_as_the_last_channel(tiny_plan):
    plan = Plan(**{**tiny_plan.to_dict(), "prior": True})
    assert plan.in_channels == 2
    rng = np.random.default_rng(1)
    label = np.zeros((1, 12, 32, 32), np.uint8)
    label[0, 4:8, 10:20, 10:20] = 1
    grid = sitk.Image(32, 32, 12, sitk.sitkFloat32)
    case = Case("c", rng.normal(size=(1, 12, 32, 32)).astype(np.float32) + 5, label, grid, grid, prior=label.copy())
    sampler = PatchSampler([case], plan)
    sampler.reseed(0)
    x, y = sampler.batch()
    assert x.shape == (2, 2, 8, 16, 16) and y.shape == (2, 1, 8, 16, 16)
    assert set(np.unique(x[:, 1].numpy())) <= {0.0, 1.0}  # binary, not intensity-augmented
    no_prior = Case("c", case.image, label, grid, grid)
    with pytest.raises(Exception, match="previous stage's mask"):
        PatchSampler([no_prior], plan)


@pytest.mark.slow
def test_crossval_trains_a_refining_stage_and_predicts_through_it(blob_cohort, tmp_path):
    cfg = Seg3DConfig(**{**TINY, "cohort": str(blob_cohort)})
    run = tmp_path / "run"
    table = run_crossval(cfg, run)
    assert len(table) == 8
    folds = sorted((run / "models" / "T1").glob("fold*-rep0"))
    assert len(folds) == 2
    for fold in folds:
        assert fold_done(cfg, fold)
        coarse, refine = Model.load(fold), Model.load(fold / REFINE_DIR)
        assert refine.plan.prior and not coarse.plan.prior
        assert refine.plan.in_channels == 2 and coarse.plan.in_channels == 1
        assert refine.meta["cascade"]["margin_mm"] == 6.0
        assert coarse.refiner is not None
        timing = (fold / "timing.json").read_text()
        assert "refine_wall_s" in timing and "prior_cases" in timing
    models = find_models(run / "models" / "T1")
    assert len(models) == 2 and all(m.refiner is not None for m in models)  # refine/ is not a third member

    # inference: outside the box around the coarse mask the probability is 0
    image = sitk.ReadImage(str(blob_cohort / "images" / "S00" / "T1.nii.gz"))
    coarse_only = [Model(m.network, m.plan, m.folder, m.meta) for m in models]
    _, p_coarse = predict_images(coarse_only, [image], cfg.infer)
    mask, p_cascade = predict_images(models, [image], cfg.infer)
    assert mask.GetSize() == image.GetSize()
    pc, pf = sitk.GetArrayFromImage(p_coarse), sitk.GetArrayFromImage(p_cascade)
    if (pc >= 0.5).any():
        box = roi_box(pc >= 0.5, image.GetSpacing()[::-1], 6.0 + 2 * max(image.GetSpacing()))
        outside = np.ones(pc.shape, bool)
        outside[box] = False
        assert not pf[outside].any()
        assert not np.allclose(pf, pc)  # the refining stage redrew it
    else:  # an empty coarse mask keeps the coarse probability
        np.testing.assert_array_equal(pf, pc)


@pytest.mark.slow
def test_a_run_without_its_refining_stage_trains_only_that_stage(blob_cohort, tmp_path):
    cfg = Seg3DConfig(**{**TINY, "cohort": str(blob_cohort)})
    assert_only_stage_retrained(cfg, tmp_path / "run", REFINE_DIR)
