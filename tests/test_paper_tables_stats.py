"""The statistics the paper tables add: Landis-Koch labels and the exact (clustered) McNemar test."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar

from sarcomri.errors import InputError
from sarcomri.stats.agreement import landis_koch
from sarcomri.stats.groups import clustered_mcnemar


@pytest.mark.parametrize(("kappa", "label"), [
    (-0.01, "poor"), (-1.0, "poor"), (0.0, "slight"), (0.2, "slight"), (0.1 + 0.1, "slight"),
    (0.20000000000000004, "slight"), (0.2001, "fair"), (0.21, "fair"), (0.4, "fair"), (0.41, "moderate"),
    (0.6, "moderate"), (0.61, "substantial"), (0.8, "substantial"), (0.81, "almost perfect"),
    (1.0, "almost perfect"), (float("nan"), ""),
])
def test_landis_koch_bands(kappa, label):
    assert landis_koch(kappa) == label


def _table(a, b):
    return pd.crosstab(a, b).reindex(index=[False, True], columns=[False, True], fill_value=0).to_numpy()


@pytest.mark.parametrize("seed", range(6))
def test_unclustered_equals_statsmodels_exact_mcnemar(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(4, 80))
    a, b = rng.random(n) < 0.6, rng.random(n) < rng.uniform(0.4, 0.9)
    res = clustered_mcnemar(a, b)
    assert res.test == "McNemar exact"
    assert res.p_value == pytest.approx(mcnemar(_table(a, b), exact=True).pvalue, rel=1e-12)
    assert res.statistic == int((b & ~a).sum()) - int((a & ~b).sum())


def test_mcnemar_hand_counts():
    # b = 1 (first only), c = 6 (second only): p = 2 * P(Bin(7, 1/2) <= 1) = 2 * 8 / 128 = 0.125
    first = [True] + [False] * 6 + [True, False]
    second = [False] + [True] * 6 + [True, False]
    res = clustered_mcnemar(first, second)
    assert res.p_value == pytest.approx(0.125) and res.statistic == 5
    assert clustered_mcnemar([True, False], [True, False]).p_value == 1.0  # no discordant pair


def test_clustered_equals_exact_paired_permutation_test():
    rng = np.random.default_rng(3)
    n_patients, readers = 11, 3
    cluster = np.repeat([f"P{i}" for i in range(n_patients)], readers)
    a = rng.random(cluster.size) < 0.5
    b = rng.random(cluster.size) < 0.75
    res = clustered_mcnemar(a, b, cluster)
    da = pd.Series(a.astype(int)).groupby(cluster).sum().to_numpy()
    db = pd.Series(b.astype(int)).groupby(cluster).sum().to_numpy()
    ref = stats.permutation_test((db, da), lambda x, y, axis: np.sum(x - y, axis=axis), vectorized=True,
                                 permutation_type="samples", n_resamples=np.inf, alternative="two-sided")
    assert res.p_value == pytest.approx(ref.pvalue, rel=1e-12)
    assert res.statistic == pytest.approx(ref.statistic) and res.test.startswith("clustered")


def test_one_pair_clusters_reduce_to_mcnemar():
    rng = np.random.default_rng(5)
    a, b = rng.random(30) < 0.5, rng.random(30) < 0.7
    assert clustered_mcnemar(a, b, np.arange(30)).p_value == pytest.approx(clustered_mcnemar(a, b).p_value)


def test_clustered_mcnemar_refuses_mismatch():
    with pytest.raises(InputError):
        clustered_mcnemar([True, False], [True])
    with pytest.raises(InputError):
        clustered_mcnemar([True, False], [True, True], ["a"])
