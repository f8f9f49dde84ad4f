"""Resampling, normalisation and patch sampling (foreground oversampling) of 3D cases."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from sarcomri.cohort.manifest import Cohort
from sarcomri.seg3d.config import DataSettings
from sarcomri.seg3d.data import (
    Case,
    PatchSampler,
    load_cases,
    patients_with,
    prepare_case,
    resample_to_spacing,
    zscore,
)
from sarcomri.seg3d.plan import Plan

NO_AUG = DataSettings(flip=False, rotate_prob=0.0, scale_intensity=0.0, shift_intensity=0.0)


def _plan(patch=(16, 16, 16), spacing=(1.0, 1.0, 1.0), batch=4) -> Plan:
    return Plan(sequences=["T1"], target_spacing=list(spacing), median_shape=[64, 64, 64], patch_size=list(patch),
                strides=[[1, 1, 1], [2, 2, 2], [2, 2, 2]], kernels=[[3, 3, 3]] * 3, filters=[4, 8, 16],
                batch_size=batch)


def test_resample_keeps_origin_direction_and_extent():
    img = sitk.Image(40, 30, 10, sitk.sitkFloat32)
    img.SetSpacing((0.5, 0.5, 3.0))
    img.SetOrigin((10.0, -5.0, 2.0))
    img.SetDirection((0.0, 1.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 1.0))
    out = resample_to_spacing(img, (3.0, 1.0, 1.0))
    assert out.GetSize() == (20, 15, 10)  # 40 * 0.5 / 1, 30 * 0.5 / 1, 10 * 3 / 3
    assert out.GetSpacing() == pytest.approx((1.0, 1.0, 3.0))
    assert out.GetOrigin() == img.GetOrigin()
    assert out.GetDirection() == img.GetDirection()


def test_zscore_per_channel():
    rng = np.random.default_rng(0)
    a = np.stack([rng.normal(5, 3, (4, 5, 6)), rng.normal(-2, 0.1, (4, 5, 6))])
    z = zscore(a)
    assert z.dtype == np.float32
    assert np.allclose(z.reshape(2, -1).mean(1), 0, atol=1e-5)
    assert np.allclose(z.reshape(2, -1).std(1), 1, atol=1e-4)


def test_zscore_over_nonzero_voxels():
    a = np.array([[[[0.0, 0.0, 1.0, 3.0]]], [[[0.0, 5.0, 5.0, 5.0]]]])  # 2 channels, 1 x 1 x 4 voxels
    z = zscore(a, nonzero=True)
    # voxels 1..3 are non-zero in some channel: channel 0 values 0, 1, 3 (mean 4/3, sd sqrt(14/9))
    expected0 = (np.array([0.0, 1.0, 3.0]) - 4 / 3) / np.sqrt(14 / 9)
    assert z[0, 0, 0, 0] == 0 and z[1, 0, 0, 0] == 0
    assert np.allclose(z[0, 0, 0, 1:], expected0, atol=1e-6)
    assert np.allclose(z[1, 0, 0, 1:], 0.0)  # constant channel: centred, sd floor


def test_prepare_case_resamples_image_and_mask(blob_cohort):
    cohort = Cohort.load(blob_cohort)
    plan = _plan(spacing=(3.0, 2.4, 2.4))
    (case,) = load_cases(cohort, ["S00"], plan)
    assert case.image.shape == (1, 12, 16, 16) and case.label.shape == (1, 12, 16, 16)
    ref = sitk.GetArrayFromImage(cohort.read_mask("S00", "T1"))
    # the tumour volume in mm3 survives the halving of the in-plane resolution within 20%
    vol_ref = ref.sum() * 1.2 * 1.2 * 3.0
    vol_case = case.label.sum() * 2.4 * 2.4 * 3.0
    assert vol_case == pytest.approx(vol_ref, rel=0.2)
    assert case.original.GetSize() == (32, 32, 12)


def test_two_channels_use_the_first_sequence_grid(blob_cohort):
    cohort = Cohort.load(blob_cohort)
    plan = _plan(spacing=(3.0, 1.2, 1.2))
    plan.sequences = ["T1", "T2"]
    case = load_cases(cohort, ["S01"], plan)[0]
    assert case.image.shape == (2, 12, 32, 32)
    # T2 is 0.5 * T1 + 30: after z-scoring both channels are the same image
    assert np.allclose(case.image[0], case.image[1], atol=1e-4)
    assert patients_with(cohort, ["T1", "T2"]) == [f"S{i:02d}" for i in range(8)]


def _corner_blob_case() -> Case:
    """64^3 voxels with a 2^3 tumour near one corner: a background-centred 16^3 patch rarely reaches it."""
    label = np.zeros((1, 64, 64, 64), np.uint8)
    label[0, 4:6, 4:6, 4:6] = 1
    image = np.random.default_rng(0).normal(size=(1, 64, 64, 64)).astype(np.float32)
    grid = sitk.GetImageFromArray(image[0])
    return Case("blob", image, label, grid, grid)


def _fraction_with_tumour(ratio: float, n: int = 300) -> float:
    settings = NO_AUG.model_copy(update={"foreground_ratio": ratio})
    sampler = PatchSampler([_corner_blob_case()], _plan(batch=1), settings)
    sampler.reseed(7)
    hits = 0
    for _ in range(n):
        image, label = sampler.patch(0)
        assert image.shape == (1, 16, 16, 16) and label.shape == (1, 16, 16, 16)
        hits += int(label.sum() > 0)
    return hits / n


def test_foreground_oversampling_ratio():
    # a background-centred patch contains the blob only when its centre lies in the corner region: about
    # (8 + 2)^3 / 64^3 = 0.4% of background voxels, so the hit rate is the foreground ratio (binomial sd 0.027)
    assert _fraction_with_tumour(1.0, n=100) == 1.0
    assert _fraction_with_tumour(0.0, n=100) < 0.03
    assert abs(_fraction_with_tumour(1 / 3) - 1 / 3) < 0.09


def test_sampler_is_reproducible_and_augments():
    case = _corner_blob_case()
    plan = _plan(batch=2)
    a, b = PatchSampler([case], plan), PatchSampler([case], plan)
    a.reseed(11)
    b.reseed(11)
    for _ in range(3):
        xa, ya = a.batch()
        xb, yb = b.batch()
        assert xa.shape == (2, 1, 16, 16, 16) and ya.dtype.is_floating_point is False
        assert np.array_equal(xa.numpy(), xb.numpy()) and np.array_equal(ya.numpy(), yb.numpy())
    b.reseed(12)
    assert not np.array_equal(a.batch()[0].numpy(), b.batch()[0].numpy())


def test_patches_without_metadata_tracking_are_the_same_and_the_setting_comes_back():
    from monai.data import get_track_meta
    from monai.transforms import Compose

    from sarcomri.seg3d.data import plain_tensors

    case = _corner_blob_case()
    settings = DataSettings(rotate_prob=1.0, zoom=0.2, zoom_prob=1.0)  # every spatial transform runs
    sampler = PatchSampler([case], _plan(batch=2), settings)
    tracked = PatchSampler([case], _plan(batch=2), settings)
    tracked.transforms = Compose(tracked.transforms.transforms)  # the same pipeline, called with tracking on
    sampler.reseed(3)
    tracked.reseed(3)
    assert get_track_meta()
    for _ in range(3):
        x, y = sampler.batch()
        assert get_track_meta()  # restored after each patch
        expected = [tracked.transforms(dict(tracked.items[0])) for _ in range(2)]
        xt = torch.stack([torch.as_tensor(np.asarray(e[0]["image"] if isinstance(e, list) else e["image"]))
                          for e in expected])
        assert np.array_equal(x.numpy(), xt.numpy())
    with pytest.raises(RuntimeError), plain_tensors():
        assert not get_track_meta()
        raise RuntimeError("a transform failed")
    assert get_track_meta()


def test_prepare_case_refuses_wrong_channel_count(blob_cohort):
    from sarcomri.errors import InputError

    cohort = Cohort.load(blob_cohort)
    img = cohort.read_image("S00", "T1")
    plan = _plan()
    plan.sequences = ["T1", "T2"]
    with pytest.raises(InputError, match="expects 2"):
        prepare_case("S00", [img], None, plan)


def test_histogram_shift_remaps_intensities_monotonically():
    """``histogram_shift_prob``: the same patch, its intensities remapped by a non-linear but order-keeping curve
    with the same minimum and maximum, the label untouched."""
    case = _corner_blob_case()
    plain = PatchSampler([case], _plan(batch=1), NO_AUG)
    shifted = PatchSampler([case], _plan(batch=1), NO_AUG.model_copy(update={"histogram_shift_prob": 1.0}))
    plain.reseed(3)
    shifted.reseed(3)
    for _ in range(3):
        (x, y), (xs, ys) = plain.patch(0), shifted.patch(0)
        assert torch.equal(y, ys)
        a, b = x.numpy().ravel(), xs.numpy().ravel()
        assert not np.allclose(a, b, atol=1e-3)  # remapped ...
        order = np.argsort(a, kind="stable")
        assert np.all(np.diff(b[order]) >= -1e-5)  # ... keeping the order of the intensities
        assert np.isclose(a.min(), b.min(), atol=1e-5) and np.isclose(a.max(), b.max(), atol=1e-5)
    with pytest.raises(ValueError):
        DataSettings(histogram_shift_prob=1.5)
