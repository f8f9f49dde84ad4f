"""Obuchowski-Rockette MRMC against the published Van Dyke analysis and independent reductions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sarcomri.errors import InputError
from sarcomri.stats import mrmc, roc


@pytest.fixture(scope="module")
def vandyke(shared_data) -> pd.DataFrame:
    return pd.read_csv(shared_data / "stats" / "vandyke.csv")


@pytest.fixture(scope="module")
def jack(vandyke) -> mrmc.MRMCResult:
    return mrmc.or_mrmc(vandyke, "reader", "case", "treatment", "truth", "rating", positive=1)


def test_vandyke_rrrc_jackknife_matches_published(jack):
    means = jack.aucs.mean(axis=1)
    assert (round(means.loc[1], 4), round(means.loc[2], 4)) == (0.8970, 0.9408)
    test = jack.tests.set_index("analysis").loc["rrrc"]
    assert round(test["statistic"], 3) == 4.456
    assert round(test["df2"], 2) == 15.26
    assert round(test["p"], 4) == 0.0517
    assert (jack.n_cases, jack.n_controls) == (45, 69)


def test_vandyke_difference_ci(jack):
    diff = jack.differences.set_index("analysis").loc["rrrc"]
    assert diff["difference"] == pytest.approx(0.8970 - 0.9408, abs=1e-4)
    # with t = 2 the two-sided t test of the difference is the F test: same p, CI just covers 0
    assert diff["p"] == pytest.approx(jack.tests.set_index("analysis").loc["rrrc", "p"])
    half = stats.t.ppf(0.975, diff["df"]) * diff["se"]
    assert (diff["lower"], diff["upper"]) == pytest.approx((diff["difference"] - half, diff["difference"] + half))
    assert diff["lower"] < 0 < diff["upper"]
    # the published F and ddf pin the CI: SE = |difference| / sqrt(F), half-width = t(0.975, ddf) * SE
    published_half = stats.t.ppf(0.975, 15.26) * (0.9408 - 0.8970) / np.sqrt(4.456)
    assert diff["lower"] == pytest.approx(-0.0438 - published_half, abs=2e-4)
    assert diff["upper"] == pytest.approx(-0.0438 + published_half, abs=2e-4)


def test_rrfc_is_the_paired_t_test_over_readers(jack):
    t = stats.ttest_rel(jack.aucs.loc[1], jack.aucs.loc[2])
    test = jack.tests.set_index("analysis").loc["rrfc"]
    assert test["statistic"] == pytest.approx(t.statistic**2)
    assert test["p"] == pytest.approx(t.pvalue)
    assert test["df2"] == 4


def test_frrc_with_delong_is_delong_test_of_reader_average(vandyke):
    res = mrmc.or_mrmc(vandyke, "reader", "case", "treatment", "truth", "rating", 1, covariance="delong")
    cube = vandyke.pivot_table(index=["treatment", "reader"], columns="case", values="rating").to_numpy()
    truth = vandyke.groupby("case")["truth"].first().to_numpy() == 1
    aucs, cov = roc.delong_covariance(cube[:, truth], cube[:, ~truth])
    contrast = np.r_[np.full(5, 0.2), np.full(5, -0.2)]
    z = contrast @ aucs / np.sqrt(contrast @ cov @ contrast)
    test = res.tests.set_index("analysis").loc["frrc"]
    assert test["statistic"] == pytest.approx(z**2)
    assert test["p"] == pytest.approx(2 * stats.norm.sf(abs(z)))


def test_jackknife_shortcut_equals_brute_force(vandyke):
    sub = vandyke[vandyke["case"].isin(list(range(1, 21)) + list(range(70, 86)))]
    cube = sub.pivot_table(index=["treatment", "reader"], columns="case", values="rating").to_numpy()
    truth = sub.groupby("case")["truth"].first().to_numpy()
    aucs, cov = mrmc.auc_covariance(cube[:, truth == 1], cube[:, truth == 0], "jackknife")
    n = truth.size
    loo = np.array([[roc.auc(np.delete(truth, k), np.delete(row, k), 1) for k in range(n)] for row in cube])
    centred = loo - loo.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(cov, (n - 1) / n * centred @ centred.T, rtol=1e-10, atol=1e-15)


def test_json_is_plain(jack):
    import json

    out = json.loads(json.dumps(jack.to_dict()))
    frrc = [t for t in out["tests"] if t["analysis"] == "frrc"][0]
    assert frrc["df2"] is None  # chi-square: no denominator df
    assert len(out["aucs"]) == 10


def test_incomplete_or_duplicated_designs_are_refused(vandyke):
    with pytest.raises(InputError, match="fully crossed"):
        mrmc.or_mrmc(vandyke.iloc[1:], "reader", "case", "treatment", "truth", "rating", 1)
    with pytest.raises(InputError, match="twice"):
        mrmc.or_mrmc(pd.concat([vandyke, vandyke.iloc[:1]]), "reader", "case", "treatment", "truth", "rating", 1)
    with pytest.raises(InputError, match="covariance"):
        mrmc.or_mrmc(vandyke, "reader", "case", "treatment", "truth", "rating", 1, covariance="bootstrap")
