"""The planner against numbers worked out by hand from nnU-Net's rules."""

from __future__ import annotations

import numpy as np
import pytest

from sarcomri.seg3d.config import PRESETS, PlanSettings
from sarcomri.seg3d.plan import (
    Plan,
    fingerprint_from_arrays,
    fullres_spacing,
    make_plan,
    median_shape,
    patch_size,
    topology,
)


def _fp(spacings, shapes):
    return fingerprint_from_arrays([f"c{i}" for i in range(len(shapes))], spacings, shapes)


def test_median_spacing_and_shape_isotropic():
    fp = _fp([(1.0, 1.0, 1.0), (1.0, 1.0, 1.0), (2.0, 2.0, 2.0)], [(40, 50, 60), (60, 70, 80), (20, 25, 30)])
    assert fullres_spacing(fp).tolist() == [1.0, 1.0, 1.0]
    # at 1 mm the shapes are (40,50,60), (60,70,80), (40,50,60): median (40, 50, 60)
    assert median_shape(fp, [1.0, 1.0, 1.0]).tolist() == [40, 50, 60]


def test_anisotropic_axis_takes_its_10th_percentile():
    # z spacing 5 mm vs 0.5 mm in-plane (ratio 10 > 3) and 20 slices vs 512 voxels (20 * 3 < 512):
    # nnU-Net's rule sets z to the 10th percentile of z spacings: sorted 4, 4.5, 5, 5, 6 -> 4 + 0.4 * 0.5 = 4.2
    zs = [4.0, 5.0, 6.0, 5.0, 4.5]
    fp = _fp([(z, 0.5, 0.5) for z in zs], [(20, 512, 512)] * 5)
    assert fullres_spacing(fp) == pytest.approx([4.2, 0.5, 0.5])


def test_anisotropic_spacing_without_anisotropic_voxels_keeps_the_median():
    # 3.27 mm vs 0.977 mm (ratio 3.35 > 3) but 60 slices * 3 = 180 is not below 150 in-plane voxels
    fp = _fp([(3.27, 0.977, 0.977), (3.27, 0.977, 0.977), (3.0, 1.1, 1.1)], [(60, 150, 150)] * 3)
    assert fullres_spacing(fp) == pytest.approx([3.27, 0.977, 0.977])


def test_topology_of_an_anisotropic_fullres_patch():
    # worked by hand: z (3.27 mm) is more than twice the finest (0.977) -> in-plane first, kernel 1 along z;
    # then all axes until z would fall below 8 voxels (15 -> 7) and in-plane below 8 (10 -> 5)
    strides, kernels = topology([60, 160, 160], [3.27, 0.977, 0.977], min_feature_size=8, max_depth=6)
    assert strides == [[1, 1, 1], [1, 2, 2], [2, 2, 2], [2, 2, 2], [1, 2, 2]]
    assert kernels[0] == [1, 3, 3] and all(k == [3, 3, 3] for k in kernels[1:])


def test_topology_stops_at_max_depth():
    strides, _ = topology([128, 128, 128], [1.0, 1.0, 1.0], min_feature_size=8, max_depth=3)
    assert strides == [[1, 1, 1], [2, 2, 2], [2, 2, 2]]


def test_patch_meets_the_budget_and_the_divisor():
    settings = PlanSettings(max_patch_voxels=48 * 64 * 64, min_feature_size=8, max_depth=5)
    patch, strides, _ = patch_size([60, 150, 150], [3.27, 0.977, 0.977], settings)
    div = np.prod(np.asarray(strides), axis=0)
    assert np.prod(patch) <= 48 * 64 * 64
    assert (patch % div == 0).all()
    # the axis with the largest patch-to-median ratio is shrunk first: the ratios end within one step
    ratio = patch / np.array([60, 150, 150])
    assert ratio.max() - ratio.min() < 0.1
    assert 0.3 < ratio.min() <= ratio.max() < 0.7


def test_small_images_get_the_whole_image_as_patch():
    settings = PlanSettings(max_patch_voxels=10**6)
    patch, strides, _ = patch_size([32, 32, 32], [1.0, 1.0, 1.0], settings)
    assert patch.tolist() == [32, 32, 32]
    assert strides == [[1, 1, 1], [2, 2, 2], [2, 2, 2]]  # 32 -> 16 -> 8, not to 4


def test_coarsening_in_plane_until_the_patch_covers_half_the_image():
    fp = _fp([(3.27, 0.977, 0.977)] * 5, [(60, 150, 150)] * 5)
    settings = PlanSettings(**{**PRESETS["cpu"], "max_patch_voxels": 48 * 64 * 64})
    plan = make_plan(fp, ["T1"], settings)
    assert plan.fullres_spacing == pytest.approx([3.27, 0.977, 0.977])
    assert plan.target_spacing[0] == pytest.approx(3.27)  # the coarse axis is kept
    assert plan.target_spacing[1] == plan.target_spacing[2] > 0.977
    assert np.prod(plan.patch_size) <= settings.max_patch_voxels
    assert np.prod(plan.patch_size) >= settings.min_coverage * np.prod(plan.median_shape)
    # one 3% step less would not have been enough (the coarsening stops at the first spacing that works)
    finer = np.asarray(plan.target_spacing) / np.array([1.0, 1.03, 1.03])
    p_finer, _, _ = patch_size(median_shape(fp, finer), finer, settings)
    assert np.prod(p_finer) < settings.min_coverage * np.prod(median_shape(fp, finer))
    assert plan.filters == [16, 32, 64, 128][: len(plan.strides)]
    assert plan.deep_supervision == min(2, len(plan.strides) - 2)  # heads only where the decoder has levels


def test_cpu_preset_coarsens_every_axis_up_to_four_times_the_finest_spacing():
    # sts-t1-like geometry: in-plane is coarsened to the slice spacing first, then all axes together, until the
    # patch covers half the image or the spacing reaches 4 x the finest median spacing (here the limit)
    fp = _fp([(3.27, 0.977, 0.977)] * 5, [(60, 150, 150)] * 5)
    settings = PlanSettings(**PRESETS["cpu"])
    plan = make_plan(fp, ["T1"], settings)
    sp = np.asarray(plan.target_spacing)
    assert sp[0] == sp[1] == sp[2] > 3.27
    assert 0.977 * settings.max_spacing_factor / 1.03 < sp[0] <= 0.977 * settings.max_spacing_factor
    assert np.prod(plan.patch_size) <= settings.max_patch_voxels
    assert plan.patch_size == [40, 28, 32] and plan.filters == [16, 32, 64]


def test_gpu_preset_keeps_the_median_spacing():
    fp = _fp([(3.27, 0.977, 0.977)] * 5, [(60, 150, 150)] * 5)
    plan = make_plan(fp, ["T1"], PlanSettings(**PRESETS["gpu"]))
    assert plan.target_spacing == pytest.approx([3.27, 0.977, 0.977])
    assert plan.spacing_factor == 1.0
    assert plan.filters == [32, 64, 128, 256, 320]


def test_plan_json_round_trip(tmp_path):
    fp = fingerprint_from_arrays(["a", "b"], [(2.0, 1.0, 1.0)] * 2, [(30, 60, 60)] * 2,
                                 images=[[np.arange(10.0)], [np.arange(10.0) + 1]],
                                 masks=[np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1])] * 2)
    # foreground values 5..9 and 6..10: mean 7.5, median 7.5
    assert fp.intensity[0]["mean"] == pytest.approx(7.5)
    assert fp.intensity[0]["median"] == pytest.approx(7.5)
    plan = make_plan(fp, ["T1"])
    plan.save(tmp_path)
    again = Plan.load(tmp_path)
    assert again == plan
    assert again.in_channels == 1
