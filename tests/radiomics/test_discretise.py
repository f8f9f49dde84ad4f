"""Discretisation against pyradiomics' documented formula and numpy.histogram."""

from __future__ import annotations

import numpy as np
import pytest

from sarcomri.errors import InputError
from sarcomri.radiomics.discretise import (
    discretise_fixed_count,
    discretise_fixed_width,
    n_bins_fixed_width,
)


def test_fixed_width_follows_the_documented_formula():
    """pyradiomics: X_b = floor(X / W) - floor(min(X) / W) + 1 (edges on multiples of W from zero)."""
    rng = np.random.default_rng(2)
    for width in (25.0, 0.05, 3.0):
        # values away from bin edges (offset 0.1..0.9 of a bin) so the formula has no rounding ambiguity
        k = rng.integers(-40, 60, size=300)
        x = (k + rng.uniform(0.1, 0.9, size=k.size)) * width
        bins, n = discretise_fixed_width(x, width)
        expected = np.floor(x / width) - np.floor(x.min() / width) + 1
        np.testing.assert_array_equal(bins, expected)
        assert n == int(np.floor(x.max() / width) - np.floor(x.min() / width)) + 1
        assert n == n_bins_fixed_width(x, width)


def test_values_on_edges_are_unchanged_with_width_one():
    # pyradiomics' own example: unique values 1..5 with bin width 1 keep their values (the maximum on an
    # edge opens its own bin, as numpy.digitize does)
    x = np.array([1, 2, 3, 4, 5, 5, 3], float)
    bins, n = discretise_fixed_width(x, 1.0)
    np.testing.assert_array_equal(bins, x.astype(int))
    assert n == 5
    # negative intensities: the lowest edge is floor(min / W) * W
    bins, n = discretise_fixed_width(np.array([-7.5, 0.0, 12.0]), 5.0)
    np.testing.assert_array_equal(bins, [1, 3, 5])
    assert n == 5


def test_fixed_count_matches_numpy_histogram():
    rng = np.random.default_rng(3)
    for n_bins in (1, 8, 32):
        x = rng.normal(300, 80, size=1000)
        bins, n = discretise_fixed_count(x, n_bins)
        assert n == n_bins and bins.min() >= 1 and bins.max() == n_bins
        counts, _ = np.histogram(x, bins=n_bins)  # last bin closed: the maximum is in bin N
        np.testing.assert_array_equal(np.bincount(bins, minlength=n_bins + 1)[1:], counts)
    assert set(discretise_fixed_count(np.full(5, 2.0), 16)[0]) == {1}


def test_bad_settings_are_refused():
    x = np.array([1.0, 2.0, 3.0])
    for width in (0.0, -1.0, float("nan")):
        with pytest.raises(InputError, match="bin width"):
            discretise_fixed_width(x, width)
    with pytest.raises(InputError, match="bin count"):
        discretise_fixed_count(x, 0)
    with pytest.raises(InputError, match="bins"):
        discretise_fixed_width(np.array([0.0, 1.0]), 1e-6)
    with pytest.raises(InputError, match="empty"):
        discretise_fixed_width(np.array([]), 1.0)
