"""Radiomics reliability: the ICC(2,1) of first-order features between manual and automatic masks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from sarcomri.radiomics.reliability import ICC_FORM, feature_icc, paired_features, reliability_table
from sarcomri.stats.agreement import icc


def _cases(n: int = 8, seed: int = 0):
    """Images with a heterogeneous lesion whose mean and size vary between patients, and the manual mask."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        shape = (6, 24, 24)
        z, y, x = np.indices(shape)
        r = 4 + i % 4
        manual = ((z - 3) ** 2 * 4 + (y - 12) ** 2 + (x - 12) ** 2 <= r**2)
        image = rng.normal(1.0 + 0.1 * i, 0.2, shape) + 0.8 * (1 - manual)  # lesion darker, like ADC
        out.append((f"P{i}", image, manual, (5.0, 1.0, 1.0)))
    return out


def test_identical_masks_give_an_icc_of_one_for_every_feature():
    cases = [(cid, img, m, m.copy(), sp) for cid, img, m, sp in _cases()]
    table = reliability_table(cases, bin_width=0.05)
    assert len(table) >= 20 and (table["icc_form"] == ICC_FORM).all()
    defined = table.dropna(subset=["icc"])
    assert len(defined) == len(table)
    np.testing.assert_allclose(defined["icc"], 1.0, atol=1e-9)
    assert (table["n"] == 8).all() and (table["n_excluded"] == 0).all()


def test_perturbed_masks_lower_the_icc_and_empty_ones_are_excluded():
    rng = np.random.default_rng(1)
    cases = []
    for cid, img, m, sp in _cases():
        auto = ndimage.binary_dilation(m, iterations=int(rng.integers(1, 3))) if cid != "P7" else np.zeros_like(m)
        cases.append((cid, img, m, auto, sp))
    table = reliability_table(cases, bin_width=0.05).set_index("feature")
    assert (table["n"] == 7).all() and (table["n_excluded"] == 1).all()
    for feature in ("mean", "volume_mm3", "maximum", "percentile_90"):
        assert table.loc[feature, "icc"] < 0.99
        assert table.loc[feature, "lower"] <= table.loc[feature, "icc"] <= table.loc[feature, "upper"]
    # dilation pulls in bright background: the automatic mean is higher
    assert table.loc["mean", "mean_automatic"] > table.loc["mean", "mean_manual"]


def test_feature_icc_is_the_agreement_modules_icc_2_1():
    cases = [(cid, img, m, ndimage.binary_erosion(m), sp) for cid, img, m, sp in _cases()]
    long = paired_features(cases, bin_width=0.05)
    ours = feature_icc(long).set_index("feature").loc["median", "icc"]
    sub = long[long["feature"] == "median"].rename(columns={"case": "target", "mask": "rater"})
    ref = icc(sub, "target", "rater", "value")
    assert ours == pytest.approx(float(ref.loc[ref["form"] == "ICC(2,1)", "icc"].iloc[0]), rel=1e-12)


def test_an_empty_manual_mask_is_refused():
    cid, img, m, sp = _cases(1)[0]
    with pytest.raises(Exception, match="manual mask is empty"):
        paired_features([(cid, img, np.zeros_like(m), m, sp)])
    assert feature_icc(pd.DataFrame(columns=["case", "mask", "feature", "value"])).empty
