"""Group tests against statsmodels, scipy's independent Tukey, textbook formulas and classic examples."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats
from statsmodels.formula.api import ols

from sarcomri.errors import InputError
from sarcomri.stats import groups


@pytest.fixture()
def three_groups() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    sizes = [12, 9, 15]
    return pd.DataFrame({
        "sequence": np.repeat(["T2WI", "DWI", "ADC"], sizes),
        "auc": np.concatenate([rng.normal(m, 0.05, s) for m, s in zip([0.85, 0.78, 0.80], sizes, strict=True)]),
    })


def test_anova_matches_statsmodels_ols(three_groups):
    anova, _ = groups.anova_tukey(three_groups, "auc", "sequence")
    ref = sm.stats.anova_lm(ols("auc ~ C(sequence)", data=three_groups).fit())
    assert anova.statistic == pytest.approx(ref.loc["C(sequence)", "F"])
    assert anova.p_value == pytest.approx(ref.loc["C(sequence)", "PR(>F)"])
    assert (anova.df, anova.df2) == (2, 33)


def test_tukey_matches_scipy_tukey_hsd(three_groups):
    _, tukey = groups.anova_tukey(three_groups, "auc", "sequence")
    names = sorted(three_groups["sequence"].unique())
    samples = [three_groups.loc[three_groups["sequence"] == g, "auc"] for g in names]
    ref = stats.tukey_hsd(*samples)
    ci = ref.confidence_interval(0.95)
    for _, row in tukey.iterrows():
        i, j = names.index(row["group1"]), names.index(row["group2"])
        # statsmodels' meandiff is mean(group2) - mean(group1); scipy's statistic[i, j] is mean_i - mean_j
        assert row["meandiff"] == pytest.approx(-ref.statistic[i, j])
        assert row["p_adj"] == pytest.approx(ref.pvalue[i, j], abs=2e-3)  # both approximate the studentised range
        assert (row["lower"], row["upper"]) == pytest.approx((-ci.high[i, j], -ci.low[i, j]), abs=1e-3)
    assert len(tukey) == 3


def test_friedman_matches_textbook_formula_and_holm():
    rng = np.random.default_rng(1)
    wide = pd.DataFrame(rng.normal(size=(12, 4)) + [0, 0.3, 0.6, 1.0], columns=["a", "b", "c", "d"])
    omnibus, post = groups.friedman_posthoc(wide)
    n, k = wide.shape
    ranks = wide.rank(axis=1).sum(axis=0)
    chi2 = 12 / (n * k * (k + 1)) * (ranks**2).sum() - 3 * n * (k + 1)
    assert omnibus.statistic == pytest.approx(chi2) and omnibus.df == 3
    assert omnibus.p_value == pytest.approx(stats.chi2.sf(chi2, 3))
    # Holm by hand: sorted p times (m - rank), running maximum, capped at 1
    p = post["p"].to_numpy()
    order = np.argsort(p)
    adj = np.minimum(1, np.maximum.accumulate(p[order] * (len(p) - np.arange(len(p)))))
    np.testing.assert_allclose(post["p_holm"].to_numpy()[order], adj)
    assert len(post) == 6


def test_mann_whitney_u_counts_pairs():
    a = np.array([1.1, 2.3, 2.3, 4.0, 5.2])
    b = np.array([0.5, 2.3, 3.1, 3.3, 6.0, 7.1])
    u = ((a[:, None] > b[None, :]) + 0.5 * (a[:, None] == b[None, :])).sum()
    res = groups.mann_whitney(a, b)
    assert res.statistic == u and 0 < res.p_value <= 1


def test_association_tests():
    # Fisher's lady tasting tea: two-sided p = 34/70
    tea = groups.association_test([[3, 1], [1, 3]])
    assert tea.test == "Fisher exact" and tea.p_value == pytest.approx(34 / 70)
    table = np.array([[30, 20], [15, 35]])
    exp = table.sum(1)[:, None] * table.sum(0)[None, :] / table.sum()
    chi = groups.association_test(table)
    assert chi.test == "chi-square" and chi.statistic == pytest.approx(((table - exp) ** 2 / exp).sum())


def test_table1():
    patients = pd.DataFrame({
        "label": ["sarcoma"] * 6 + ["leiomyoma"] * 8,
        "age": [61, 55, 70, 48, 66, 59, 44, 39, 51, 47, 42, 50, 45, np.nan],
        "menopause": ["post"] * 5 + ["pre"] + ["pre"] * 6 + ["post"] * 2,
    })
    t1 = groups.table1(patients, "label", continuous=["age"], categorical=["menopause"], digits=2)
    assert list(t1.columns) == ["variable", "level", "leiomyoma (n=8)", "sarcoma (n=6)", "p", "test"]
    age = t1[t1["variable"] == "age"].iloc[0]
    assert age["sarcoma (n=6)"] == "60.00 [56.00, 64.75]"  # quartiles as R's default (type 7)
    ref = stats.mannwhitneyu([44, 39, 51, 47, 42, 50, 45], [61, 55, 70, 48, 66, 59])
    assert age["p"] == pytest.approx(ref.pvalue) and age["test"] == "Mann-Whitney U"
    meno = t1[t1["variable"] == "menopause"].set_index("level")
    assert meno.loc["post", "sarcoma (n=6)"] == "5 (83.33%)"
    assert meno.loc["post", "test"] == "Fisher exact"
    assert meno.loc["post", "p"] == pytest.approx(stats.fisher_exact([[2, 5], [6, 1]]).pvalue)


def test_bad_inputs():
    with pytest.raises(InputError, match="three conditions"):
        groups.friedman_posthoc(pd.DataFrame({"a": [1, 2], "b": [2, 3]}))
    with pytest.raises(InputError, match="differ in length"):
        groups.paired_t([1, 2, 3], [1, 2])
    with pytest.raises(InputError, match="no column"):
        groups.table1(pd.DataFrame({"label": [1, 2]}), "label", continuous=["age"])
