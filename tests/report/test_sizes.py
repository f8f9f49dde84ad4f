"""Tumour size: the ellipsoid volume is 4/3 pi a b c (the sarcoma paper's 3/4 is a misprint); mask volumes."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from sarcomri.report.misdiagnosis import (
    attribute_counts,
    ellipsoid_volume,
    ellipsoid_volume_cm3,
    mask_diameters_mm,
    mask_volume_cm3,
    outcome_table,
)


def test_ellipsoid_of_equal_axes_is_the_sphere():
    r = 3.0
    assert ellipsoid_volume(r, r, r) == pytest.approx(4 / 3 * math.pi * r**3, rel=1e-15)
    assert ellipsoid_volume(r, r, r) == pytest.approx(113.097335529, rel=1e-9)
    assert ellipsoid_volume(r, r, r) != pytest.approx(3 / 4 * math.pi * r**3)  # the printed misprint
    # a 20 mm sphere (diameters) is 4.18879 cm^3
    assert ellipsoid_volume_cm3(20, 20, 20) == pytest.approx(4.18879020, rel=1e-8)
    assert ellipsoid_volume_cm3(40, 20, 10) == pytest.approx(4 / 3 * math.pi * 20 * 10 * 5 / 1000)


def test_mask_volume_and_diameters_of_a_voxelised_sphere():
    spacing = (2.0, 0.5, 0.5)  # z, y, x in mm, anisotropic like MRI
    r = 15.0
    z, y, x = np.meshgrid(*(np.arange(n) * s for n, s in zip((40, 100, 100), spacing, strict=True)), indexing="ij")
    mask = (z - 40) ** 2 + (y - 25) ** 2 + (x - 25) ** 2 <= r**2
    sphere_cm3 = 4 / 3 * math.pi * r**3 / 1000
    assert mask_volume_cm3(mask, spacing) == pytest.approx(sphere_cm3, rel=0.03)
    d = mask_diameters_mm(mask, spacing)
    assert d == pytest.approx((2 * r + 2.0, 2 * r + 0.5, 2 * r + 0.5), abs=2.0)  # voxels spanned x spacing
    assert ellipsoid_volume_cm3(*d) == pytest.approx(sphere_cm3, rel=0.15)
    assert mask_volume_cm3(np.zeros((3, 3, 3)), spacing) == 0 and mask_diameters_mm(np.zeros((2, 2)), (1, 1)) == (0, 0)


def test_outcomes_and_attribute_counts():
    calls = pd.DataFrame({"patient_id": list("ABCDE"), "truth": ["s", "s", "l", "l", "l"],
                          "call": ["s", "l", "s", "l", "l"], "degenerated": [None, None, "yes", "yes", "no"]})
    table = outcome_table(calls, "s")
    assert list(table["outcome"]) == ["TP", "FN", "FP", "TN", "TN"]
    counts = attribute_counts(table, ["degenerated"]).set_index("value")
    assert counts.loc["yes", ["FP", "TN", "FN", "TP"]].tolist() == [1, 1, 0, 0]
    assert counts.loc["n/a", "TP"] == 1
