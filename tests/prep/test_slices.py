"""2D preparation: tumour slices, central slice, square crops, resizing, normalisation, channels."""

import numpy as np
import pytest
import SimpleITK as sitk

from sarcomri.cohort.manifest import Cohort, CohortWriter
from sarcomri.errors import InputError
from sarcomri.prep.intensity import normalise, percentile_clip, zscore
from sarcomri.prep.prepare2d import SliceSpec, prepare_patient, slices_from_volume
from sarcomri.prep.slices import central_tumour_slice, crop, resize2d, square_box, tumour_slice_indices


def _mask(shape=(10, 40, 50)):
    m = np.zeros(shape, np.uint8)
    m[3, 10:14, 20:22] = 1  # small
    m[4, 8:20, 15:30] = 1  # large
    m[5, 9:18, 16:28] = 1
    m[6, 12:14, 20:22] = 1
    return m


def test_tumour_slices_and_central_slice():
    m = _mask()
    assert tumour_slice_indices(m).tolist() == [3, 4, 5, 6]
    # area-weighted centre: (3*8 + 4*180 + 5*108 + 6*4) / 300 = 4.36 -> slice 4
    assert central_tumour_slice(m) == 4
    with pytest.raises(ValueError, match="empty"):
        central_tumour_slice(np.zeros((3, 4, 4)))


def test_central_slice_weighted_by_area_and_ties_go_to_lower_index():
    m = np.zeros((4, 10, 10), np.uint8)
    m[1, :2, :2] = 1  # area 4
    m[2, :3, :3] = 1  # area 9
    m[0, :3, :3] = 1  # area 9 -> centre (0*9+1*4+2*9)/22 = 1.0 -> slice 1 exactly
    assert central_tumour_slice(m) == 1
    m2 = np.zeros((4, 10, 10), np.uint8)
    m2[1, :2, :2] = 1
    m2[2, :3, :2] = 1  # centre 1.6 -> 2
    assert central_tumour_slice(m2) == 2
    m3 = np.zeros((4, 10, 10), np.uint8)
    m3[1:3, :3, :3] = 1  # centre 1.5, equal areas -> the lower index
    assert central_tumour_slice(m3) == 1


def test_square_box_margin_and_crop_padding():
    m = np.zeros((40, 50), np.uint8)
    m[8:20, 15:30] = 1  # 12 x 15
    y0, y1, x0, x1 = square_box(m, margin=0.2, min_side=4)
    assert y1 - y0 == x1 - x0 == 21  # ceil(15 * 1.4)
    assert y0 <= 8 and y1 >= 20 and x0 <= 15 and x1 >= 30
    img = np.arange(40 * 50, dtype=float).reshape(40, 50)
    out = crop(img, (-5, 5, 45, 55))
    assert out.shape == (10, 10)
    assert (out[:5] == 0).all() and (out[:, 5:] == 0).all()
    assert out[5, 0] == img[0, 45]


def test_resize_exact_shape_and_nearest_for_masks():
    arr = np.random.default_rng(0).random((3, 37, 53)).astype(np.float32)
    assert resize2d(arr, 64).shape == (3, 64, 64)
    m = (np.random.default_rng(1).random((37, 53)) > 0.5).astype(np.uint8)
    r = resize2d(m, (100, 90), order=0)
    assert r.shape == (100, 90) and set(np.unique(r)) <= {0, 1}


def test_normalisations():
    rng = np.random.default_rng(0)
    a = rng.normal(100, 20, (30, 30))
    z = zscore(a)
    assert abs(z.mean()) < 1e-5 and abs(z.std() - 1) < 1e-4
    p = percentile_clip(a)
    assert p.min() == 0 and p.max() == 1
    m = np.zeros_like(a, bool)
    m[:10] = True
    zm = zscore(a, m)
    assert abs(zm[m].mean()) < 1e-5
    with pytest.raises(ValueError, match="unknown normalisation"):
        normalise(a, "minmax")


def test_slices_from_volume_modes_and_channels():
    m = _mask()
    vol = np.random.default_rng(0).normal(size=(1, *m.shape)).astype(np.float32)
    tum = slices_from_volume(vol, m, SliceSpec(("T2axi",), mode="tumour", size=32))
    assert [s.slice_index for s in tum] == [3, 4, 5, 6]
    assert tum[0].image.shape == (3, 32, 32) and tum[0].image.dtype == np.float32
    assert np.array_equal(tum[0].image[0], tum[0].image[2])  # repeated to 3 channels for ImageNet networks
    cen = slices_from_volume(vol, m, SliceSpec(("T2axi",), mode="central", size=32, channels=None))
    assert len(cen) == 1 and cen[0].slice_index == 4 and cen[0].image.shape == (1, 32, 32)
    assert cen[0].mask.any() and cen[0].mask.mean() < 0.8  # the tumour sits inside the crop with a margin
    allsl = slices_from_volume(vol, m, SliceSpec(("T2axi",), mode="all", size=16, crop_to_tumour=False))
    assert len(allsl) == 10
    with pytest.raises(InputError, match="needs a non-empty tumour mask"):
        slices_from_volume(vol, np.zeros_like(m), SliceSpec(("T2axi",)), source="P1/T2axi")


def test_prepare_patient_stacks_coregistered_sequences(tmp_path):
    m = _mask()
    rng = np.random.default_rng(0)

    def img(arr, spacing):
        im = sitk.GetImageFromArray(arr.astype(np.float32))
        im.SetSpacing(spacing)
        return im

    b0 = img(rng.normal(size=m.shape), (1.0, 1.0, 4.0))
    mk = sitk.GetImageFromArray(m)
    mk.CopyInformation(b0)
    # ADC on a coarser in-plane grid covering the same field of view
    adc = img(rng.normal(size=(10, 20, 25)), (2.0, 2.0, 4.0))
    adc.SetOrigin((0.5, 0.5, 0.0))
    with CohortWriter(tmp_path / "c", labels=["x"]) as w:
        w.add_patient("P1", "x")
        w.add_patient("P2", "x")
        w.add_series("P1", "DWI_b0", b0, mk)
        w.add_series("P1", "ADC", adc)
        w.add_series("P2", "DWI_b0", b0, mk)
    c = Cohort.load(tmp_path / "c")
    out = prepare_patient(c, "P1", SliceSpec(("DWI_b0", "ADC"), size=24, channels=None))
    assert len(out) == 4 and out[0].image.shape == (2, 24, 24)
    assert prepare_patient(c, "P2", SliceSpec(("DWI_b0", "ADC"))) == []  # lacks ADC


def test_prepare_cohort_leaves_out_patients_without_sequence_or_tumour(tiny_cohort):
    from sarcomri.prep.prepare2d import prepare_cohort

    c = Cohort.load(tiny_cohort)
    labels = c.labels_binary().to_dict()
    slices, skipped = prepare_cohort(c, SliceSpec(("T2axi", "ADC"), size=16, channels=None), labels)
    assert sorted(set(slices.patient_ids)) == [f"P{i:03d}" for i in range(0, 12, 2)]
    assert skipped["reason"].eq("lacks a sequence").all() and len(skipped) == 6
    assert slices.central.sum() == 6 and slices.images.shape[1:] == (2, 16, 16)
    with pytest.raises(InputError, match="no patient has a usable ADC series"):
        prepare_cohort(c, SliceSpec(("ADC",), size=16), labels)  # ADC has no mask of its own here


def _phantom(tumour_level: float, gain: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """A (1, z, y, x) volume: air 0, a body of tissue at 100 with a textured tumour at ``tumour_level``, all
    times a scanner ``gain``; and the tumour mask."""
    rng = np.random.default_rng(0)
    vol = np.zeros((10, 40, 50), np.float32)
    vol[:, 4:36, 5:45] = 100 + rng.normal(0, 5, (10, 32, 40))
    m = _mask()
    texture = rng.normal(0, 10, m.shape)
    vol = np.where(m > 0, tumour_level + texture, vol)
    return (gain * vol)[None].astype(np.float32), m


def test_zscore_volume_keeps_the_tumour_level_relative_to_the_body():
    bright, m = _phantom(200.0)
    dark, _ = _phantom(40.0)
    spec = dict(mode="central", size=32, channels=None)
    crop_b, crop_d = (slices_from_volume(v, m, SliceSpec(("T2axi",), **spec))[0].image for v in (bright, dark))
    vol_b, vol_d = (slices_from_volume(v, m, SliceSpec(("T2axi",), normalisation="zscore_volume", **spec))[0].image
                    for v in (bright, dark))
    inside = slices_from_volume(bright, m, SliceSpec(("T2axi",), **spec))[0].mask > 0
    # z-scored per crop, a tumour that fills most of the crop sits near 0 whatever its signal ...
    assert abs(crop_b[0][inside].mean()) < 1.5 and abs(crop_d[0][inside].mean()) < 1.5
    # ... z-scored over the body, the bright tumour stands above the body's tissue and the dark one below
    assert vol_b[0][inside].mean() > 2 and vol_d[0][inside].mean() < -1
    # and a scanner's overall gain does not matter
    scaled, _ = _phantom(200.0, gain=3.7)
    again = slices_from_volume(scaled, m, SliceSpec(("T2axi",), normalisation="zscore_volume", **spec))[0].image
    np.testing.assert_allclose(again, vol_b, atol=1e-4)
