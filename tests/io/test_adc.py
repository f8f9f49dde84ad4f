"""ADC fitting: exact recovery on noiseless mono-exponential signals, background and units."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from sarcomri.errors import InputError
from sarcomri.prep.adc import ADC_SCALE, adc_map, fit_adc


def test_recovers_known_adc_from_noiseless_signals():
    rng = np.random.default_rng(0)
    adc_true = rng.uniform(0.3e-3, 3.0e-3, size=(4, 5, 6))  # mm^2/s
    s0 = rng.uniform(200, 1000, size=adc_true.shape)
    b = np.array([0.0, 50.0, 400.0, 800.0])
    signals = s0 * np.exp(-b[:, None, None, None] * adc_true)
    out = fit_adc(signals, b, noise_fraction=0.0)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, adc_true * 1e6, rtol=1e-5)  # 1e-6 mm^2/s


def test_two_b_values_give_the_log_ratio():
    s = np.array([[[1000.0]], [[300.0]]])
    out = fit_adc(s[:, None], [100, 900], noise_fraction=0.0)
    assert out.item() == pytest.approx(np.log(1000 / 300) / 800 * ADC_SCALE, rel=1e-6)


def test_background_and_non_positive_signals_are_zero():
    b = [50.0, 800.0]
    body = np.full((1, 4), 1000.0)
    signals = np.stack([body, body * np.exp(-750 * 1e-3)])
    signals[:, 0, 0] = [20.0, 5.0]  # below 0.1 x p99 of the b50 image: background
    signals[1, 0, 1] = 0.0  # log undefined
    signals[1, 0, 2] = 1500.0  # rises with b: negative fit, clipped
    out = fit_adc(signals, b)
    assert out[0, 0] == 0 and out[0, 1] == 0 and out[0, 2] == 0
    assert out[0, 3] == pytest.approx(1000.0, rel=1e-5)


def test_adc_map_keeps_geometry_and_needs_one_grid():
    a = sitk.GetImageFromArray(np.full((2, 3, 4), 500.0, dtype=np.float32))
    a.SetSpacing((0.5, 0.6, 3.0))
    a.SetOrigin((1.0, 2.0, 3.0))
    b = sitk.GetImageFromArray(np.full((2, 3, 4), 500.0 * np.exp(-0.7), dtype=np.float32))
    b.CopyInformation(a)
    out = adc_map({0.0: a, 700.0: b})
    assert out.GetSpacing() == a.GetSpacing() and out.GetOrigin() == a.GetOrigin()
    np.testing.assert_allclose(sitk.GetArrayFromImage(out), 1000.0, rtol=1e-5)
    b.SetSpacing((1.0, 1.0, 1.0))
    with pytest.raises(InputError, match="not on the grid"):
        adc_map({0.0: a, 700.0: b})
    with pytest.raises(InputError, match="two or more b-values"):
        adc_map({0.0: a})
