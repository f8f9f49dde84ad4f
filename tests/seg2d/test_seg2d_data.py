"""Slices and their reassembly onto the original grid, normalisation, training-slice choice, and the paper's
augmentation (six images per slice)."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from sarcomri.cohort.manifest import Cohort
from sarcomri.seg2d import augment
from sarcomri.seg2d.config import DataSettings2D
from sarcomri.seg2d.data import (
    eligible_patients,
    from_slices,
    load_case,
    normalise,
    prepare_case,
    read_case,
    reassemble,
    slice_data,
    to_slices,
    training_indices,
)
from sarcomri.stats.segmentation import segmentation_metrics


def _odd_mask() -> sitk.Image:
    """A mask on a non-square, anisotropic, off-origin, oblique grid (z, y, x = 7, 21, 30)."""
    m = np.zeros((7, 21, 30), np.uint8)
    m[2:5, 5:15, 8:22] = 1
    m[3, 12:18, 20:27] = 1
    img = sitk.GetImageFromArray(m)
    img.SetSpacing((0.8, 1.3, 4.0))
    img.SetOrigin((-12.5, 40.0, 7.25))
    c, s = np.cos(0.4), np.sin(0.4)
    img.SetDirection((c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0))
    return img


def _geometry(img: sitk.Image) -> tuple:
    return img.GetSize(), img.GetSpacing(), img.GetOrigin(), img.GetDirection()


def test_round_trip_at_the_padded_size_is_exact_and_keeps_the_geometry():
    ref = _odd_mask()
    arr = sitk.GetArrayFromImage(ref)
    slices = to_slices(arr, 30, is_mask=True)  # the padded square is 30 x 30: no resampling
    assert slices.shape == (7, 30, 30) and slices.sum() == arr.sum()
    mask, prob = reassemble(slices.astype(np.float32), ref)
    assert _geometry(mask) == _geometry(ref) and _geometry(prob) == _geometry(ref)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(mask), arr)


@pytest.mark.parametrize("size, min_dice", [(64, 0.97), (16, 0.75)])
def test_round_trip_through_a_resized_network_grid_recovers_the_mask(size, min_dice):
    ref = _odd_mask()
    arr = sitk.GetArrayFromImage(ref)
    mask, _ = reassemble(to_slices(arr, size).astype(np.float32), ref)
    assert _geometry(mask) == _geometry(ref)
    dice = segmentation_metrics(sitk.GetArrayFromImage(mask), arr, (4.0, 1.3, 0.8))["dice"]
    assert min_dice <= dice <= 1.0


def test_from_slices_inverts_the_padding_of_a_tall_slice():
    vol = np.arange(2 * 9 * 4, dtype=np.float32).reshape(2, 9, 4)
    np.testing.assert_allclose(from_slices(to_slices(vol, 9), 9, 4), vol)


def test_volume_zscore_gives_each_channel_mean_0_and_sd_1():
    rng = np.random.default_rng(0)
    a = np.stack([rng.normal(100, 10, (4, 8, 8)), rng.normal(0.001, 0.0002, (4, 8, 8)), np.full((4, 8, 8), 3.0)])
    z = normalise(a)
    np.testing.assert_allclose(z[:2].mean(axis=(1, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(z[:2].std(axis=(1, 2, 3)), 1, atol=1e-4)
    assert np.all(z[2] == 0)  # a constant image carries no information
    zs = normalise(a, "zscore_slice")
    np.testing.assert_allclose(zs[0].mean(axis=(1, 2)), 0, atol=1e-5)


def test_channels_are_resampled_onto_the_first_sequence(pair_cohort):
    co = Cohort.load(pair_cohort)
    adc = co.read_image("T000", "ADC")
    half = sitk.Resample(adc, [16, 14, 6], sitk.Transform(), sitk.sitkLinear, adc.GetOrigin(),
                         [s * f for s, f in zip(adc.GetSpacing(), (2, 2, 1), strict=True)], adc.GetDirection())
    images, mask = read_case(co, "T000", ["DWI_b0", "DWI_b1000", "ADC"])
    case = prepare_case("T000", [images[0], images[1], half], mask, DataSettings2D(image_size=32))
    assert case.image.shape == (6, 3, 32, 32) and case.label.shape == (6, 32, 32)
    assert case.reference.GetSize() == (32, 28, 6)
    # the coarse ADC still shows the tumour darker than its surroundings on the reference grid
    tumour = case.label.astype(bool)
    assert case.image[:, 2][tumour].mean() < case.image[:, 2][~tumour].mean() - 1


def test_training_slices_are_every_tumour_slice_plus_a_share_of_the_others(pair_cohort):
    co = Cohort.load(pair_cohort)
    case = load_case(co, "T000", DataSettings2D(image_size=32))
    tumour = set(case.tumour_slices.tolist())
    assert tumour and len(tumour) < 6
    chosen = training_indices(case, 0.5, seed=1)
    assert tumour <= set(chosen.tolist())
    assert len(chosen) - len(tumour) == max(1, round(0.5 * len(tumour)))
    assert set(training_indices(case, 0.0, seed=1).tolist()) == tumour
    assert len(training_indices(case, 10.0, seed=1)) == 6
    data = slice_data([case, load_case(co, "T001", DataSettings2D(image_size=32))], 0.5)
    assert len(data) == len(data.case_ids) == len(data.y) and set(data.case_ids) == {"T000", "T001"}


def test_patients_without_tumour_voxels_are_not_eligible(pair_cohort, tmp_path):
    co = Cohort.load(pair_cohort)
    settings = DataSettings2D()
    assert eligible_patients(co, settings) == co.patient_ids
    ref = co.read_mask("T003", "DWI_b0")
    empty = sitk.Image(ref.GetSize(), sitk.sitkUInt8)
    empty.CopyInformation(ref)
    sitk.WriteImage(empty, str(co.path(co.series_row("T003", "DWI_b0")["mask"])))
    assert "T003" not in eligible_patients(co, settings)
    assert "T003" in eligible_patients(co, settings, require_tumour=False)


def test_paper_augmentation_makes_six_images_per_slice():
    slices, ops = augment.expand(5)
    assert len(slices) == len(ops) == 30
    for s in range(5):
        assert sorted(ops[slices == s].tolist()) == [0, 1, 2, 3, 4, 5]
    assert [a for a, _ in augment.PAPER_TRANSFORMS] == [0, 20, -20, 60, -60, 0]
    assert [f for _, f in augment.PAPER_TRANSFORMS] == [False] * 5 + [True]
    assert len(augment.expand(5, "none")[0]) == 5


def test_augmentation_identity_flip_and_rotation_direction():
    x = torch.zeros(6, 2, 33, 33)
    x[:, :, 16, 26] = 1.0  # a point right of the centre (row 16, column 26)
    y = torch.zeros(6, 33, 33)
    y[:, 12:21, 20:30] = 1
    xa, ya = augment.apply(x, y, np.arange(6))
    assert torch.equal(xa[0], x[0]) and torch.equal(ya[0], y[0])
    assert torch.equal(xa[5], torch.flip(x[5], dims=[-1])) and torch.equal(ya[5], torch.flip(y[5], dims=[-1]))
    # +60 degrees turns counter-clockwise as displayed: the point moves up (smaller row) and towards the centre
    r, c = np.unravel_index(int(torch.argmax(xa[3, 0])), (33, 33))
    assert abs(r - (16 - 10 * np.sin(np.pi / 3))) <= 1 and abs(c - (16 + 10 * np.cos(np.pi / 3))) <= 1
    r, c = np.unravel_index(int(torch.argmax(xa[2, 0])), (33, 33))  # -20: down
    assert r > 16
    # rotations keep the mask's area (within resampling) and leave the input untouched
    for i in range(1, 5):
        assert abs(float(ya[i].sum()) - 90) <= 8
    assert float(x.sum()) == 12.0
