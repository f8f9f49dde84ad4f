"""Group comparisons: t tests, one-way ANOVA with Tukey HSD, Friedman with post hoc tests, Mann-Whitney U,
chi-square / Fisher, and the patient-characteristics "Table 1".

Choices (stated once, used everywhere):

* t tests are scipy's: ``paired_t`` (ttest_rel) and ``welch_t`` (ttest_ind, unequal variances).
* ``anova_tukey``: scipy's one-way ANOVA and statsmodels' ``pairwise_tukeyhsd`` (family-wise alpha).
* ``friedman_posthoc``: scipy's Friedman test, then pairwise Wilcoxon signed-rank tests (scipy defaults)
  with Holm's step-down correction (statsmodels ``multipletests``), not Nemenyi.
* Mann-Whitney U is two-sided with scipy's automatic exact/asymptotic choice.
* Categorical associations: Pearson's chi-square without continuity correction when every expected count
  is at least 5, otherwise Fisher's exact test (2 x 2: the conditional test; larger tables: scipy's
  r x c exact test, scipy >= 1.15; older scipy falls back to chi-square and says so in the test name).
* Paired binary outcomes (correct without / with the AI): McNemar's exact test, and for pairs clustered in
  patients (several readers' reads of one patient) its exact sign-flip generalisation (``clustered_mcnemar``).
* ``table1``: continuous columns as median [Q1, Q3] (quartiles by linear interpolation, R's default
  type 7) with Mann-Whitney U (two groups) or Kruskal-Wallis
  (more) p-values; categorical columns as n (%) of the group's non-missing values with the test above.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multicomp import pairwise_tukeyhsd
from statsmodels.stats.multitest import multipletests

from sarcomri.errors import InputError
from sarcomri.stats._checks import require_columns


@dataclass(frozen=True)
class TestResult:
    """One hypothesis test: its name, statistic, two-sided p-value and degrees of freedom (``df2``: the
    denominator df of an F test)."""

    test: str
    statistic: float
    p_value: float
    df: float | None = None
    df2: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-ready)."""
        return asdict(self)


def _finite(values: Sequence[float] | np.ndarray | pd.Series, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if not np.isfinite(arr).all():
        raise InputError(None, f"{name} has missing values")
    return arr


def paired_t(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> TestResult:
    """Paired t test of b - a (same subjects, same order)."""
    x, y = _finite(a, "a"), _finite(b, "b")
    if x.size != y.size:
        raise InputError(None, f"paired samples differ in length ({x.size} vs {y.size})")
    res = stats.ttest_rel(y, x)
    return TestResult("paired t", float(res.statistic), float(res.pvalue), float(res.df))


def welch_t(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> TestResult:
    """Welch's t test of mean(b) - mean(a) for independent samples with unequal variances."""
    res = stats.ttest_ind(_finite(b, "b"), _finite(a, "a"), equal_var=False)
    return TestResult("Welch t", float(res.statistic), float(res.pvalue), float(res.df))


def wilcoxon_signed_rank(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> TestResult:
    """Wilcoxon signed-rank test of the paired differences b - a (scipy defaults)."""
    x, y = _finite(a, "a"), _finite(b, "b")
    if x.size != y.size:
        raise InputError(None, f"paired samples differ in length ({x.size} vs {y.size})")
    res = stats.wilcoxon(y, x)
    return TestResult("Wilcoxon signed-rank", float(res.statistic), float(res.pvalue))


def mann_whitney(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> TestResult:
    """Two-sided Mann-Whitney U test; the statistic is U of ``a``."""
    res = stats.mannwhitneyu(_finite(a, "a"), _finite(b, "b"), alternative="two-sided")
    return TestResult("Mann-Whitney U", float(res.statistic), float(res.pvalue))


def association_test(table: np.ndarray | pd.DataFrame) -> TestResult:
    """Chi-square (no continuity correction) or, with an expected count below 5, Fisher's exact test."""
    counts = np.asarray(table, dtype=float)
    counts = counts[counts.sum(axis=1) > 0][:, counts.sum(axis=0) > 0]
    if counts.ndim != 2 or min(counts.shape) < 2:
        return TestResult("none (one level)", float("nan"), float("nan"))
    chi2, p, dof, expected = stats.chi2_contingency(counts, correction=False)
    if (expected >= 5).all():
        return TestResult("chi-square", float(chi2), float(p), float(dof))
    try:
        res = stats.fisher_exact(counts.astype(int))
    except ValueError:  # scipy < 1.15 has no r x c exact test
        return TestResult("chi-square (expected count < 5)", float(chi2), float(p), float(dof))
    return TestResult("Fisher exact", float(res.statistic), float(res.pvalue))


def anova_tukey(frame: pd.DataFrame, value: str, group: str,
                alpha: float = 0.05) -> tuple[TestResult, pd.DataFrame]:
    """One-way ANOVA and Tukey's HSD of ``value`` across ``group``.

    Returns (ANOVA F test with df = (between, within); Tukey table: group1, group2, meandiff = mean(group2)
    - mean(group1), p_adj, lower, upper, reject).
    """
    require_columns(frame, [value, group], "table")
    data = frame[[value, group]].dropna()
    samples = [g[value].to_numpy(dtype=float) for _, g in data.groupby(group, sort=True)]
    if len(samples) < 2:
        raise InputError(None, f"ANOVA needs at least two groups in {group!r}")
    res = stats.f_oneway(*samples)
    k, n = len(samples), sum(s.size for s in samples)
    anova = TestResult("one-way ANOVA", float(res.statistic), float(res.pvalue), float(k - 1), float(n - k))
    tukey = pairwise_tukeyhsd(data[value].to_numpy(dtype=float), data[group].to_numpy(), alpha=alpha)
    pairs = list(itertools.combinations(tukey.groupsunique, 2))  # statsmodels' pair order
    table = pd.DataFrame({"group1": [a for a, _ in pairs], "group2": [b for _, b in pairs],
                          "meandiff": tukey.meandiffs, "p_adj": tukey.pvalues,
                          "lower": tukey.confint[:, 0], "upper": tukey.confint[:, 1], "reject": tukey.reject})
    return anova, table


def friedman_posthoc(wide: pd.DataFrame) -> tuple[TestResult, pd.DataFrame]:
    """Friedman test over the columns (conditions) of a wide table (rows = subjects, complete), then
    pairwise Wilcoxon signed-rank tests with Holm's correction.

    Returns (Friedman chi-square with k - 1 df; post hoc table: condition1, condition2, statistic, p,
    p_holm).
    """
    if wide.isna().any().any():
        raise InputError(None, "Friedman test needs every subject measured in every condition")
    if wide.shape[1] < 3:
        raise InputError(None, "Friedman test needs at least three conditions (use Wilcoxon for two)")
    cols = list(wide.columns)
    res = stats.friedmanchisquare(*[wide[c].to_numpy(dtype=float) for c in cols])
    omnibus = TestResult("Friedman", float(res.statistic), float(res.pvalue), float(len(cols) - 1))
    rows = []
    for c1, c2 in itertools.combinations(cols, 2):
        w = wilcoxon_signed_rank(wide[c1], wide[c2])
        rows.append({"condition1": c1, "condition2": c2, "statistic": w.statistic, "p": w.p_value})
    post = pd.DataFrame(rows)
    post["p_holm"] = multipletests(post["p"], method="holm")[1]
    return omnibus, post


def _median_iqr(values: pd.Series, digits: int) -> str:
    q1, med, q3 = np.percentile(values, [25, 50, 75])
    return f"{med:.{digits}f} [{q1:.{digits}f}, {q3:.{digits}f}]"


def table1(frame: pd.DataFrame, group: str, continuous: Sequence[str] = (), categorical: Sequence[str] = (),
           digits: int = 1) -> pd.DataFrame:
    """Patient characteristics by group ("Table 1").

    One row per continuous variable (median [Q1, Q3]) and one row per level of each categorical variable
    (n (%)); columns: variable, level, one column per group (with its n in the header), p, test. The
    p-value sits on the variable's first row. Missing values are left out variable by variable.
    """
    require_columns(frame, [group, *continuous, *categorical], "patients table")
    levels = sorted(frame[group].dropna().unique().tolist(), key=str)
    if len(levels) < 2:
        raise InputError(None, f"Table 1 needs at least two groups in {group!r}")
    sizes = frame[group].value_counts()
    heads = {g: f"{g} (n={int(sizes[g])})" for g in levels}
    rows: list[dict[str, Any]] = []
    for var in continuous:
        data = frame[[group, var]].dropna()
        try:
            samples = [data.loc[data[group] == g, var].astype(float) for g in levels]
        except (TypeError, ValueError):
            raise InputError(None, f"continuous column {var!r} is not numeric") from None
        row: dict[str, Any] = {"variable": var, "level": ""}
        row.update({heads[g]: _median_iqr(s, digits) if len(s) else "" for g, s in zip(levels, samples,
                                                                                       strict=True)})
        usable = [s for s in samples if len(s)]
        if len(usable) == 2 and len(usable) == len(levels):
            test = mann_whitney(*usable)
        elif len(usable) >= 2:
            kw = stats.kruskal(*usable)
            test = TestResult("Kruskal-Wallis", float(kw.statistic), float(kw.pvalue), float(len(usable) - 1))
        else:
            test = TestResult("none", float("nan"), float("nan"))
        rows.append({**row, "p": test.p_value, "test": test.test})
    for var in categorical:
        data = frame[[group, var]].dropna()
        counts = pd.crosstab(data[var], data[group]).reindex(columns=levels, fill_value=0)
        test = association_test(counts.to_numpy())
        totals = counts.sum(axis=0)
        for i, (lvl, line) in enumerate(counts.iterrows()):
            row = {"variable": var, "level": lvl}
            for g in levels:  # a group with no value of this variable (e.g. no grade) shows a dash
                row[heads[g]] = f"{int(line[g])} ({100 * line[g] / totals[g]:.{digits}f}%)" if totals[g] else "-"
            row["p"] = test.p_value if i == 0 else float("nan")
            row["test"] = test.test if i == 0 else ""
            rows.append(row)
    return pd.DataFrame(rows, columns=["variable", "level", *heads.values(), "p", "test"])


def _sign_flip_p(differences: np.ndarray) -> float:
    """Exact two-sided p of sum(differences) under independent sign flips of the (integer) differences:
    P(|T| >= |t|), from the exact distribution of T built by convolution."""
    steps = np.abs(differences[differences != 0]).astype(int)
    if steps.size == 0:
        return 1.0
    total = int(steps.sum())
    probs = np.zeros(2 * total + 1)
    probs[total] = 1.0  # index total + t holds P(T = t)
    for a in steps:
        probs = 0.5 * (np.roll(probs, a) + np.roll(probs, -a))  # no wrap: |T| never exceeds total
    observed = abs(int(differences.sum()))
    values = np.abs(np.arange(-total, total + 1))
    return float(min(1.0, probs[values >= observed].sum()))


def clustered_mcnemar(first: Sequence[bool] | np.ndarray | pd.Series, second: Sequence[bool] | np.ndarray | pd.Series,
                      cluster: Sequence[Any] | np.ndarray | pd.Series | None = None) -> TestResult:
    """Exact test of paired binary outcomes (e.g. correct without / with the AI on the same read), McNemar's
    exact test made valid for pairs that share a cluster (e.g. several readers' reads of one patient).

    Per cluster ``d`` = (number of pairs with ``second`` only true) - (number with ``first`` only true); under
    the null hypothesis the two conditions are exchangeable within a cluster, so every ``d`` is equally likely
    to have either sign, and the two-sided p is the exact probability of a sum at least as far from 0 as the
    observed one over all 2^K sign flips (the paired permutation test of the cluster differences; Fisher-Pitman).
    With one pair per cluster (``cluster`` None) this is McNemar's exact test (statsmodels'
    ``mcnemar(exact=True)``: the two-sided binomial test of the discordant pairs). The statistic is the sum
    of ``d``, i.e. c - b of the pooled 2 x 2 table (positive: ``second`` is more often true).
    """
    a = np.asarray(first, dtype=bool)
    b = np.asarray(second, dtype=bool)
    if a.shape != b.shape or a.ndim != 1:
        raise InputError(None, f"paired outcomes differ in length ({a.size} vs {b.size})")
    if cluster is None:
        d = b.astype(int) - a.astype(int)
        name = "McNemar exact"
    else:
        keys = np.asarray(cluster, dtype=object)
        if keys.shape != a.shape:
            raise InputError(None, f"cluster has {keys.size} values but the outcomes have {a.size}")
        if pd.isna(pd.Series(keys)).any():
            raise InputError(None, "cluster has missing values")
        d = pd.Series(b.astype(int) - a.astype(int)).groupby(keys, sort=False).sum().to_numpy()
        name = "clustered McNemar exact (sign-flip)"
    return TestResult(name, float(d.sum()), _sign_flip_p(d))
