"""First-order radiomics against the IBSI digital phantom consensus values, scipy.stats and hand counts."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
from scipy import stats

from sarcomri.errors import InputError
from sarcomri.radiomics import ADC_UNIT_SCALE, BinningWarning, firstorder_features, histogram_features
from sarcomri.radiomics.firstorder import IBSI_CODES, discretise, intensity_statistics, roi_values

# reference_values.csv "feature" column -> our key, per IBSI family
STAT_NAMES = {
    "mean": "mean", "variance": "variance", "skewness": "skewness", "(excess) kurtosis": "kurtosis_excess",
    "median": "median", "minimum": "minimum", "10th percentile": "percentile_10",
    "90th percentile": "percentile_90", "maximum": "maximum", "interquartile range": "interquartile_range",
    "range": "range", "mean absolute deviation": "mean_absolute_deviation",
    "robust mean absolute deviation": "robust_mean_absolute_deviation",
    "median absolute deviation": "median_absolute_deviation",
    "coefficient of variation": "coefficient_of_variation",
    "quartile coefficient of dispersion": "quartile_coefficient_of_dispersion", "energy": "energy",
    "root mean square": "root_mean_square",
}
HIST_NAMES = {k: f"histogram_{v}" for k, v in STAT_NAMES.items() if k not in ("energy", "root mean square")}
HIST_NAMES.update({
    "mode": "histogram_mode", "entropy": "histogram_entropy", "uniformity": "histogram_uniformity",
    "maximum histogram gradient": "histogram_max_gradient",
    "maximum histogram gradient intensity": "histogram_max_gradient_intensity",
    "minimum histogram gradient": "histogram_min_gradient",
    "minimum histogram gradient intensity": "histogram_min_gradient_intensity",
})


def _phantom(shared_data):
    import SimpleITK as sitk

    folder = shared_data / "radiomics" / "ibsi-digital-phantom"
    image = sitk.ReadImage(str(folder / "image" / "phantom.nii.gz"))
    mask = sitk.ReadImage(str(folder / "mask" / "mask.nii.gz"))
    with open(folder / "reference_values.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    spacing_zyx = tuple(reversed(image.GetSpacing()))
    return sitk.GetArrayFromImage(image), sitk.GetArrayFromImage(mask), spacing_zyx, rows


def _tolerance(row) -> float:
    """The published tolerance when there is one, else half a unit in the 3rd significant digit (IBSI
    reports consensus values to three significant digits)."""
    try:
        return float(row["tolerance"])
    except ValueError:
        ref = float(row["value"])
        return 1e-9 if ref == 0 else 0.5 * 10 ** (math.floor(math.log10(abs(ref))) - 2)


def _check_family(rows, family, names, feats):
    family_rows = [r for r in rows if r["family"] == family]
    assert len(family_rows) == len(names), f"{family}: {len(family_rows)} rows, mapping has {len(names)}"
    for row in family_rows:
        key = names[row["feature"]]
        ref = float(row["value"])
        assert abs(feats[key] - ref) <= _tolerance(row), f"{row['feature']} ({row['ibsi_code']}): {feats[key]} vs {ref}"


def test_ibsi_phantom_intensity_statistics(shared_data):
    image, mask, spacing, rows = _phantom(shared_data)
    # IBSI phantom: intensities are already discrete (1..6), so a bin width of 1 leaves them unchanged
    feats = firstorder_features(image, mask, spacing, bin_width=1)
    _check_family(rows, "Intensity-based statistical features", STAT_NAMES, feats)
    for key, code in IBSI_CODES.items():  # our code table agrees with the published one
        if key not in ("entropy", "uniformity"):
            assert any(r["ibsi_code"] == code for r in rows), key
    # entropy and uniformity are the histogram family's (discretised intensities)
    ref = {r["feature"]: float(r["value"]) for r in rows if r["family"] == "Intensity histogram features"}
    assert feats["entropy"] == pytest.approx(ref["entropy"], abs=0.005)
    assert feats["uniformity"] == pytest.approx(ref["uniformity"], abs=0.0005)
    # voxel-counting volume (morphological family) = our ROI volume; total energy = 8 mm3 x 567
    vol = next(r for r in rows if r["ibsi_code"] == "YEKZ")
    assert feats["volume_mm3"] == pytest.approx(float(vol["value"]))
    assert feats["total_energy"] == pytest.approx(8.0 * 567.0)
    assert feats["kurtosis_pearson"] == pytest.approx(feats["kurtosis_excess"] + 3.0)


def test_ibsi_phantom_intensity_histogram_family(shared_data):
    image, mask, _, rows = _phantom(shared_data)
    bins, n_bins = discretise(roi_values(image, mask), bin_width=1)
    _check_family(rows, "Intensity histogram features", HIST_NAMES, histogram_features(bins, n_bins))


def test_moments_against_scipy():
    rng = np.random.default_rng(0)
    x = rng.gamma(2.0, 300.0, size=500)
    f = intensity_statistics(x)
    assert f["skewness"] == pytest.approx(stats.skew(x, bias=True), rel=1e-12)
    assert f["kurtosis_excess"] == pytest.approx(stats.kurtosis(x, fisher=True, bias=True), rel=1e-12)
    assert f["kurtosis_pearson"] == pytest.approx(stats.kurtosis(x, fisher=False, bias=True), rel=1e-12)
    assert f["variance"] == pytest.approx(np.var(x), rel=1e-12)
    assert f["coefficient_of_variation"] == pytest.approx(stats.variation(x), rel=1e-12)
    assert f["interquartile_range"] == pytest.approx(stats.iqr(x), rel=1e-12)


def test_robust_and_median_deviations_by_hand():
    x = np.arange(1.0, 11.0)  # P10 = 1.9, P90 = 9.1 -> voxels 2..9, mean 5.5
    f = intensity_statistics(x)
    assert (f["percentile_10"], f["percentile_90"]) == pytest.approx((1.9, 9.1))
    assert f["robust_mean_absolute_deviation"] == pytest.approx((3.5 + 2.5 + 1.5 + 0.5) * 2 / 8)
    assert f["median_absolute_deviation"] == pytest.approx(np.mean(np.abs(x - 5.5)))  # mean of |x - median|
    assert f["mean_absolute_deviation"] == pytest.approx(2.5)
    assert f["quartile_coefficient_of_dispersion"] == pytest.approx((7.75 - 3.25) / (7.75 + 3.25))


def test_energy_uses_the_voxel_array_shift_and_voxel_volume():
    image = np.array([[[1.0, 2.0, 50.0]]])
    mask = np.array([[[1, 1, 0]]])
    with pytest.warns(BinningWarning, match="2 bins"):  # two voxels, two bins: legitimate but flagged
        f = firstorder_features(image, mask, (3.0, 0.5, 0.5), bin_width=1, voxel_array_shift=10)
    assert f["energy"] == pytest.approx(11**2 + 12**2)
    assert f["root_mean_square"] == pytest.approx(math.sqrt((121 + 144) / 2))
    assert f["total_energy"] == pytest.approx(0.75 * (121 + 144))
    assert f["mean"] == pytest.approx(1.5)  # the shift touches only energy, total energy and RMS
    assert math.isnan(f["robust_mean_absolute_deviation"])  # P10 = 1.1, P90 = 1.9: no voxel in between
    # two equally filled bins: entropy 1 bit, uniformity 1/2
    assert (f["entropy"], f["uniformity"]) == pytest.approx((1.0, 0.5))


def test_adc_units_give_the_same_features_after_scaling():
    rng = np.random.default_rng(1)
    adc_1e3 = rng.normal(1.1, 0.25, (6, 12, 12)).clip(0.2)  # 10^-3 mm2/s
    mask = np.zeros(adc_1e3.shape, np.uint8)
    mask[1:5, 3:10, 2:11] = 1
    ref = firstorder_features(adc_1e3, mask, (4.0, 1.5, 1.5), bin_width=0.05)
    for unit, stored in (("mm2/s", adc_1e3 * 1e-3), ("1e-6 mm2/s", adc_1e3 * 1e3)):
        got = firstorder_features(stored, mask, (4.0, 1.5, 1.5), bin_width=0.05, scale=ADC_UNIT_SCALE[unit])
        for key in ("mean", "percentile_90", "energy", "entropy", "uniformity", "n_bins"):
            assert got[key] == pytest.approx(ref[key], rel=1e-9), (unit, key)
    assert 5 < ref["n_bins"] < 100
    # pyradiomics' default bin width (25) on ADC in 10^-3 mm2/s: one bin -> warned
    with pytest.warns(BinningWarning, match="bin width 25"):
        firstorder_features(adc_1e3, mask, (4.0, 1.5, 1.5))
    # a width meant for 10^-3 mm2/s on a map in 10^-6 mm2/s without scaling: far too many bins -> refused
    with pytest.raises(InputError, match="bins"):
        firstorder_features(adc_1e3 * 1e3, mask, (4.0, 1.5, 1.5), bin_width=0.05)


def test_undefined_values_are_nan_and_bad_input_is_refused():
    image = np.full((2, 3, 3), 7.0)
    mask = np.ones((2, 3, 3), np.uint8)
    f = firstorder_features(image, mask, (1, 1, 1), bin_width=1)
    assert math.isnan(f["skewness"]) and math.isnan(f["kurtosis_excess"])
    assert f["variance"] == 0 and f["entropy"] == 0 and f["uniformity"] == 1
    with pytest.raises(InputError, match="empty"):
        firstorder_features(image, np.zeros_like(mask), (1, 1, 1))
    bad = image.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        firstorder_features(bad, mask, (1, 1, 1))
    with pytest.raises(InputError, match="not both"):
        firstorder_features(image, mask, (1, 1, 1), bin_width=1, bin_count=8)
    with pytest.raises(InputError, match="spacing"):
        firstorder_features(image, mask, (1, 1), bin_width=1)
    with pytest.raises(InputError, match="label 3"):
        firstorder_features(image, mask, (1, 1, 1), label=3)


def test_histogram_mode_tie_and_gradient_by_hand():
    bins = np.array([1, 1, 1, 2, 4, 4, 4, 5, 5])  # modes 1 and 4 (3 each); mean 3 -> 4 is closer
    f = histogram_features(bins, n_bins=6)
    assert f["histogram_mode"] == 4
    # counts H = [3, 1, 0, 3, 2, 0]; H' = [-2, -1.5, 1, 1, -1.5, -2]
    assert f["histogram_max_gradient"] == 1 and f["histogram_max_gradient_intensity"] == 3  # lowest on ties
    assert f["histogram_min_gradient"] == -2 and f["histogram_min_gradient_intensity"] == 1
    equidistant = histogram_features(np.array([1, 1, 3, 3]), n_bins=3)  # mean 2: lower mode chosen
    assert equidistant["histogram_mode"] == 1
