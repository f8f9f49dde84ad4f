"""AUC, DeLong and ROC points against pROC's published aSAH values, scikit-learn and an O(n^2) DeLong."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score, roc_curve

from sarcomri.errors import InputError
from sarcomri.stats import roc


@pytest.fixture(scope="module")
def asah(shared_data) -> pd.DataFrame:
    return pd.read_csv(shared_data / "stats" / "aSAH.csv")


def test_asah_aucs_match_proc(asah):
    truth = asah["outcome_poor"]
    assert round(roc.auc(truth, asah["wfns"], positive=1), 4) == 0.8237
    assert round(roc.auc(truth, asah["s100b"], positive=1), 4) == 0.7314
    assert round(roc.auc(truth, asah["ndka"], positive=1), 4) == 0.6120


def test_asah_delong_ci_of_ndka_matches_proc(asah):
    res = roc.auc_ci(asah["outcome_poor"], asah["ndka"], positive=1)
    assert (round(res.lower, 4), round(res.upper, 4)) == (0.5012, 0.7227)
    assert (res.n_cases, res.n_controls) == (41, 72)


@pytest.mark.parametrize(
    "a,b,z,p",
    [("wfns", "s100b", 2.2090, 0.02718), ("wfns", "ndka", 2.7978, 0.005146), ("ndka", "s100b", -1.3908, 0.1643)],
)
def test_asah_paired_delong_matches_proc(asah, a, b, z, p):
    res = roc.delong_test(asah["outcome_poor"], asah[a], asah[b], positive=1)
    assert round(res.statistic, 4) == z
    assert float(f"{res.p_value:.4g}") == p
    assert res.lower < res.difference < res.upper


def test_pairwise_table_agrees_with_single_tests(asah):
    aucs, tests = roc.delong_pairwise(asah["outcome_poor"], {c: asah[c] for c in ("wfns", "s100b", "ndka")}, 1)
    assert list(aucs["score"]) == ["wfns", "s100b", "ndka"]
    assert aucs.set_index("score").loc["ndka", "lower"] == pytest.approx(0.5012, abs=5e-5)
    row = tests.set_index(["score1", "score2"]).loc[("s100b", "ndka")]
    assert row["z"] == pytest.approx(1.3908, abs=5e-5)  # the reverse order of pROC's ndka vs s100b


def test_direction_is_explicit_and_respected(asah):
    truth = asah["outcome_poor"]
    assert roc.auc(truth, -asah["ndka"], positive=1, direction=">") == pytest.approx(0.6119579945799457)
    assert roc.auc(truth, asah["ndka"], positive=1, direction=">") == pytest.approx(1 - 0.6119579945799457)
    # the positive class decides which group are the cases
    assert roc.auc(truth, asah["ndka"], positive=0) == pytest.approx(1 - 0.6119579945799457)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auc_matches_sklearn_with_ties(seed):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, 300)
    scores = rng.integers(0, 6, 300) + truth  # heavy ties
    assert roc.auc(truth, scores, positive=1) == pytest.approx(roc_auc_score(truth, scores))
    assert roc.auc(truth, scores, positive=1, direction=">") == pytest.approx(roc_auc_score(truth, -scores))


def _delong_quadratic(cases: np.ndarray, controls: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong et al. (1988) by the definition: psi kernels over all case-control pairs."""
    psi = [(x[:, None] > y[None, :]) + 0.5 * (x[:, None] == y[None, :]) for x, y in zip(cases, controls, strict=True)]
    v10 = np.array([p.mean(axis=1) for p in psi])
    v01 = np.array([p.mean(axis=0) for p in psi])
    m, n = cases.shape[1], controls.shape[1]
    aucs = np.array([p.mean() for p in psi])
    return aucs, np.cov(v10) / m + np.cov(v01) / n


def test_fast_delong_equals_quadratic_definition():
    rng = np.random.default_rng(11)
    truth = rng.integers(0, 2, 150).astype(bool)
    s1 = np.round(rng.normal(truth * 0.8, 1.0), 1)  # rounded: ties within and across classes
    s2 = rng.integers(0, 4, 150) + truth
    s3 = s1 + rng.normal(0, 0.5, 150)
    both = np.vstack([s1, s2, s3])
    fast_aucs, fast_cov = roc.delong_covariance(both[:, truth], both[:, ~truth])
    ref_aucs, ref_cov = _delong_quadratic(both[:, truth], both[:, ~truth])
    np.testing.assert_allclose(fast_aucs, ref_aucs, rtol=1e-12)
    np.testing.assert_allclose(fast_cov, ref_cov, rtol=1e-10, atol=1e-15)


def test_bootstrap_ci_is_seeded_and_close_to_delong(asah):
    truth, ndka = asah["outcome_poor"], asah["ndka"]
    a = roc.auc_ci(truth, ndka, 1, method="bootstrap", n_boot=1000, seed=7)
    b = roc.auc_ci(truth, ndka, 1, method="bootstrap", n_boot=1000, seed=7)
    c = roc.auc_ci(truth, ndka, 1, method="bootstrap", n_boot=1000, seed=8)
    assert (a.lower, a.upper) == (b.lower, b.upper)
    assert (a.lower, a.upper) != (c.lower, c.upper)
    # pROC's stratified bootstrap CI of ndka is about 0.50-0.72, like the DeLong one
    assert a.lower == pytest.approx(0.5012, abs=0.02) and a.upper == pytest.approx(0.7227, abs=0.02)
    boot = roc.bootstrap_aucs(*roc.cases_and_controls(truth, ndka, 1), n_boot=500, seed=1)
    assert boot.shape == (500, 1)
    assert boot.mean() == pytest.approx(0.612, abs=0.01)


def test_unpaired_test_formula():
    rng = np.random.default_rng(5)
    t1, t2 = rng.integers(0, 2, 80), rng.integers(0, 2, 120)
    s1, s2 = rng.normal(t1, 1), rng.normal(0.5 * t2, 1)
    res = roc.delong_test_unpaired(t1, s1, t2, s2, positive=1)
    r1, r2 = roc.auc_ci(t1, s1, 1), roc.auc_ci(t2, s2, 1)
    d = (r1.auc - r2.auc) / np.sqrt(r1.variance + r2.variance)
    df = (r1.variance + r2.variance) ** 2 / (r1.variance**2 / 79 + r2.variance**2 / 119)
    assert res.statistic == pytest.approx(d) and res.df == pytest.approx(df)
    from scipy import stats

    assert res.p_value == pytest.approx(2 * stats.t.sf(abs(d), df))
    same = roc.delong_test_unpaired(t1, s1, t1, s1, positive=1)
    assert same.statistic == 0 and same.p_value == pytest.approx(1.0)


@pytest.mark.parametrize("direction", ["<", ">"])
def test_roc_points_match_sklearn_curve(direction):
    rng = np.random.default_rng(2)
    truth = rng.integers(0, 2, 200)
    scores = np.round(rng.normal(truth, 1.0), 1)
    pts = roc.roc_points(truth, scores, 1, direction)
    sign = 1 if direction == "<" else -1
    fpr, tpr, thr = roc_curve(truth, sign * scores, drop_intermediate=False)
    np.testing.assert_allclose(pts["fpr"], fpr)
    np.testing.assert_allclose(pts["sensitivity"], tpr)
    np.testing.assert_allclose(sign * pts["threshold"].to_numpy()[1:], thr[1:])
    assert np.trapezoid(pts["sensitivity"], pts["fpr"]) == pytest.approx(roc.auc(truth, scores, 1, direction))


def test_ss_avg_threshold_tie_goes_to_higher_sensitivity():
    truth = [1, 1, 0, 0]
    scores = [2.0, 4.0, 1.0, 3.0]
    # cut-off 4: sens 0.5, spec 1.0; cut-off 2: sens 1.0, spec 0.5 -> both SS-Avg 0.75
    assert roc.ss_avg_threshold(truth, scores, 1) == 2.0
    assert roc.ss_avg_threshold(truth, [-s for s in scores], 1, direction=">") == -2.0
    threshold, res = roc.ss_avg_cutoff(truth, scores, 1)
    assert threshold == 2.0 and res.ss_avg.estimate == 0.75 and res.sensitivity.estimate == 1.0


def test_ss_avg_threshold_is_the_maximum(asah):
    truth, s100b = asah["outcome_poor"], asah["s100b"]
    pts = roc.roc_points(truth, s100b, 1)
    threshold = roc.ss_avg_threshold(truth, s100b, 1)
    table = roc.metrics_at_thresholds(truth, s100b, 1, [threshold, 0.205])
    assert table.loc[0, "ss_avg"] == pytest.approx(pts["ss_avg"].max())
    # pROC's coords(..., "best") on s100b: threshold 0.205 (midpoint), sensitivity 0.6341, specificity 0.8056
    assert (table.loc[1, "sensitivity"], table.loc[1, "specificity"]) == pytest.approx((26 / 41, 58 / 72))
    assert table.loc[0, "ss_avg"] == pytest.approx(table.loc[1, "ss_avg"])


def test_roc_needs_both_classes():
    with pytest.raises(InputError, match="one case and one control"):
        roc.auc([1, 1, 1], [0.1, 0.2, 0.3], positive=1)
    with pytest.raises(InputError, match="missing or infinite"):
        roc.auc([0, 1, 1], [0.1, np.nan, 0.3], positive=1)
    with pytest.raises(InputError, match="'delong' or 'bootstrap'"):
        roc.auc_ci([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4], positive=1, method="hanley")


def test_one_case_gives_the_auc_without_a_variance():
    import math

    from sarcomri.stats.roc import auc_ci, delong_test

    truth = [1, 0, 0, 0, 0]
    a = auc_ci(truth, [0.9, 0.1, 0.95, 0.3, 0.2], 1)
    assert a.auc == 0.75 and math.isnan(a.lower) and math.isnan(a.upper) and math.isnan(a.se)
    t = delong_test(truth, [0.9, 0.1, 0.95, 0.3, 0.2], [0.5, 0.1, 0.2, 0.3, 0.4], 1)
    assert (t.auc1, t.auc2) == (0.75, 1.0) and math.isnan(t.p_value)
