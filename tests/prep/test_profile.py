"""Intensity profiles: the tumour-to-body ratio and the body's spread, scale-free, on volumes of known make-up."""

import numpy as np
import pytest

from sarcomri.prep.profile import intensity_profile


def _volume(scale: float = 1.0):
    rng = np.random.default_rng(0)
    vol = np.zeros((8, 40, 40))
    vol[:, 5:35, 5:35] = rng.uniform(90, 110, (8, 30, 30))  # body about 100
    mask = np.zeros(vol.shape, bool)
    mask[3:5, 15:25, 15:25] = True
    vol[mask] = 250  # tumour 2.5 x the body
    return vol * scale, mask


def test_the_profile_measures_the_contrast_and_is_scale_free():
    vol, mask = _volume()
    got = intensity_profile(vol, mask)
    assert got["tumour_to_body"] == pytest.approx(2.5, rel=0.02)
    body = vol[vol > 0]
    want_range = (np.percentile(body, 99) - np.percentile(body, 1)) / np.median(body)
    assert got["body_range"] == pytest.approx(want_range)
    scaled = intensity_profile(*_volume(1000.0))
    assert scaled == pytest.approx(got)


def test_undefined_parts_are_nan():
    vol, _ = _volume()
    assert np.isnan(intensity_profile(vol, None)["tumour_to_body"])
    assert np.isnan(intensity_profile(-vol, None)["body_range"])  # no positive body median
