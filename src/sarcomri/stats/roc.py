"""ROC analysis: empirical AUC, DeLong variance and tests, stratified bootstrap, ROC points, cut-offs.

Conventions follow R's pROC (Robin et al. 2011) so that numbers can be compared with published ones:

* ``direction`` is fixed explicitly, never guessed: '<' means controls have lower scores than cases
  (a case is called positive when score >= threshold); '>' means controls have higher scores (positive
  when score <= threshold).
* The AUC is the empirical (trapezoidal) area, i.e. the Mann-Whitney probability P(case > control) with
  ties counted one half (for '>', P(case < control)).
* DeLong variance uses the structural components with an n - 1 denominator (pROC's ``var(method=
  "delong")``) computed in O(n log n) from mid-ranks (Sun & Xu 2014, IEEE SPL 21:1389). The CI is
  AUC +/- z * SE on the AUC scale, clipped to [0, 1].
* The paired test of two correlated AUCs is DeLong's Z with a two-sided normal p-value and the CI of the
  difference AUC1 - AUC2 (not clipped); the unpaired test is pROC's D statistic with a Welch-type df and a
  Student t p-value.
* The bootstrap CI resamples cases and controls separately (stratified) with a seeded generator and
  takes percentiles.

ROC points (:func:`roc_points`) list every observed score as a cut-off, from the strictest (nobody called
positive: +inf for '<', -inf for '>') to the most lenient. The SS-Avg cut-off (:func:`ss_avg_threshold`)
maximises (sensitivity + specificity) / 2, i.e. Youden's J; ties are compared exactly (integer counts,
not floating point) and go to the highest sensitivity. Two distinct observed cut-offs never share both
sensitivity and specificity, so this rule always picks one cut-off.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from sarcomri.errors import InputError
from sarcomri.stats._checks import binary_truth, check_direction, finite_scores
from sarcomri.stats.diagnostic import DiagnosticResult, diagnostic_at_threshold

ArrayLike = Sequence[Any] | np.ndarray | pd.Series


@dataclass(frozen=True)
class AUCResult:
    """An AUC with its CI: ``method`` is 'delong' or 'bootstrap' (``variance`` is DeLong's either way)."""

    auc: float
    variance: float
    se: float
    lower: float
    upper: float
    n_cases: int
    n_controls: int
    direction: str
    method: str
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-ready)."""
        return asdict(self)


@dataclass(frozen=True)
class AUCComparison:
    """A test of AUC1 = AUC2: ``statistic`` is Z (paired) or D (unpaired, with ``df``)."""

    auc1: float
    auc2: float
    difference: float
    se: float
    statistic: float
    df: float | None
    p_value: float
    lower: float
    upper: float
    method: str
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-ready)."""
        return asdict(self)


def oriented_scores(truth: ArrayLike, scores: Sequence[ArrayLike], positive: Any, direction: str = "<",
                    names: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Scores of cases (k, m) and controls (k, n) for k score sets on the same subjects, oriented so that
    cases are expected higher (scores negated for '>')."""
    check_direction(direction)
    is_pos = binary_truth(truth, positive)
    if is_pos.all() or not is_pos.any():
        raise InputError(None, "ROC analysis needs at least one case and one control "
                               f"(found {int(is_pos.sum())} cases, {int((~is_pos).sum())} controls)")
    names = list(names) if names is not None else [f"scores{i + 1}" for i in range(len(scores))]
    matrix = np.vstack([finite_scores(s, len(is_pos), name) for s, name in zip(scores, names, strict=True)])
    if direction == ">":
        matrix = -matrix
    return matrix[:, is_pos], matrix[:, ~is_pos]


def cases_and_controls(truth: ArrayLike, scores: ArrayLike, positive: Any,
                       direction: str = "<") -> tuple[np.ndarray, np.ndarray]:
    """Scores of cases and controls (1-D), oriented so that cases are expected higher."""
    cases, controls = oriented_scores(truth, [scores], positive, direction, names=["scores"])
    return cases[0], controls[0]


def delong_placements(cases: np.ndarray, controls: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AUCs and DeLong placement values of k score sets on the same cases and controls.

    ``cases`` is (k, m), ``controls`` (k, n), already oriented so that cases are expected higher.
    Returns (aucs (k,), v10 (k, m), v01 (k, n)): v10[i] is the share of controls below case i (ties
    one half), v01[j] the share of cases above control j. Mid-ranks make this O((m + n) log(m + n)).
    """
    cases = np.atleast_2d(cases)
    controls = np.atleast_2d(controls)
    m, n = cases.shape[1], controls.shape[1]
    rank_x = stats.rankdata(cases, axis=1)
    rank_y = stats.rankdata(controls, axis=1)
    rank_z = stats.rankdata(np.concatenate([cases, controls], axis=1), axis=1)
    v10 = (rank_z[:, :m] - rank_x) / n
    v01 = 1.0 - (rank_z[:, m:] - rank_y) / m
    aucs = v10.mean(axis=1)
    return aucs, v10, v01


def delong_covariance(cases: np.ndarray, controls: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AUCs (k,) and their DeLong covariance matrix (k, k): S10 / m + S01 / n (n - 1 denominators)."""
    aucs, v10, v01 = delong_placements(cases, controls)
    m, n = v10.shape[1], v01.shape[1]
    if m < 2 or n < 2:
        raise InputError(None, f"DeLong variance needs at least two cases and two controls (found {m} and {n})")
    s10 = np.atleast_2d(np.cov(v10))
    s01 = np.atleast_2d(np.cov(v01))
    return aucs, s10 / m + s01 / n


def auc(truth: ArrayLike, scores: ArrayLike, positive: Any, direction: str = "<") -> float:
    """Empirical AUC (ties one half) with an explicit positive class and direction."""
    cases, controls = cases_and_controls(truth, scores, positive, direction)
    return float(delong_placements(cases, controls)[0][0])


def _z(alpha: float) -> float:
    return float(stats.norm.ppf(1 - alpha / 2))


def bootstrap_aucs(cases: np.ndarray, controls: np.ndarray, n_boot: int = 2000, seed: int = 0,
                   chunk: int = 250) -> np.ndarray:
    """AUCs of ``n_boot`` stratified bootstrap resamples (cases and controls resampled separately).

    ``cases`` and ``controls`` are (k, m) and (k, n) score sets on the same subjects (the same resample
    is applied to every set, so differences stay paired); returns (n_boot, k).
    """
    cases = np.atleast_2d(cases)
    controls = np.atleast_2d(controls)
    k, m = cases.shape
    n = controls.shape[1]
    rng = np.random.default_rng(seed)
    out = np.empty((n_boot, k))
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        ic = rng.integers(0, m, size=(b, m))
        ik = rng.integers(0, n, size=(b, n))
        for j in range(k):
            both = np.concatenate([cases[j][ic], controls[j][ik]], axis=1)
            ranks = stats.rankdata(both, axis=1)[:, :m]
            out[start:start + b, j] = (ranks.sum(axis=1) - m * (m + 1) / 2) / (m * n)
    return out


def auc_ci(truth: ArrayLike, scores: ArrayLike, positive: Any, direction: str = "<",
           method: str = "delong", alpha: float = 0.05, n_boot: int = 2000, seed: int = 0) -> AUCResult:
    """AUC with a (1 - alpha) CI: 'delong' (default, pROC's ci.auc) or stratified 'bootstrap' percentiles.

    With a single case or a single control the AUC is defined but its variance is not: the variance, standard
    error and CI are NaN (a small test set, e.g. one carcinosarcoma among the test patients of one sequence)."""
    cases, controls = cases_and_controls(truth, scores, positive, direction)
    if min(cases.size, controls.size) < 2 and method in ("delong", "bootstrap"):
        value = float(delong_placements(cases, controls)[0][0])
        return AUCResult(auc=value, variance=math.nan, se=math.nan, lower=math.nan, upper=math.nan,
                         n_cases=cases.size, n_controls=controls.size, direction=direction, method=method,
                         confidence=1 - alpha)
    aucs, cov = delong_covariance(cases, controls)
    value, var = float(aucs[0]), float(cov[0, 0])
    se = math.sqrt(max(var, 0.0))
    if method == "delong":
        half = _z(alpha) * se
        lower, upper = max(0.0, value - half), min(1.0, value + half)
    elif method == "bootstrap":
        boot = bootstrap_aucs(cases, controls, n_boot=n_boot, seed=seed)[:, 0]
        lower, upper = (float(q) for q in np.quantile(boot, [alpha / 2, 1 - alpha / 2]))
    else:
        raise InputError(None, f"AUC CI method must be 'delong' or 'bootstrap', not {method!r}")
    return AUCResult(auc=value, variance=var, se=se, lower=lower, upper=upper, n_cases=cases.size,
                     n_controls=controls.size, direction=direction, method=method, confidence=1 - alpha)


def delong_test(truth: ArrayLike, scores1: ArrayLike, scores2: ArrayLike, positive: Any,
                direction: str = "<", alpha: float = 0.05) -> AUCComparison:
    """DeLong's test of two correlated AUCs (two scores on the same cases), as pROC's roc.test(paired).

    Z = (AUC1 - AUC2) / sqrt(var1 + var2 - 2 cov); two-sided normal p-value; CI of AUC1 - AUC2.
    With a single case or control there is no DeLong variance: the AUCs are given, every other field is NaN.
    """
    cases, controls = oriented_scores(truth, [scores1, scores2], positive, direction)
    if min(cases.shape[1], controls.shape[1]) < 2:
        a1, a2 = (float(a) for a in delong_placements(cases, controls)[0])
        nan = math.nan
        return AUCComparison(auc1=a1, auc2=a2, difference=a1 - a2, se=nan, statistic=nan, df=None, p_value=nan,
                             lower=nan, upper=nan, method="delong-paired", confidence=1 - alpha)
    aucs, cov = delong_covariance(cases, controls)
    return _compare(aucs, cov, alpha)


def compare_aucs(aucs: np.ndarray, cov: np.ndarray, i: int, j: int, alpha: float = 0.05) -> AUCComparison:
    """Paired DeLong comparison of AUC i and AUC j given all AUCs and their joint DeLong covariance."""
    idx = [i, j]
    return _compare(np.asarray(aucs)[idx], np.asarray(cov)[np.ix_(idx, idx)], alpha)


def _compare(aucs: np.ndarray, cov: np.ndarray, alpha: float) -> AUCComparison:
    diff = float(aucs[0] - aucs[1])
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    se = math.sqrt(max(var, 0.0))
    if se == 0.0:
        z = 0.0 if diff == 0.0 else math.copysign(math.inf, diff)
    else:
        z = diff / se
    p = float(2 * stats.norm.sf(abs(z)))
    half = _z(alpha) * se
    return AUCComparison(auc1=float(aucs[0]), auc2=float(aucs[1]), difference=diff, se=se, statistic=z,
                         df=None, p_value=p, lower=diff - half, upper=diff + half,
                         method="delong-paired", confidence=1 - alpha)


def delong_test_unpaired(truth1: ArrayLike, scores1: ArrayLike, truth2: ArrayLike, scores2: ArrayLike,
                         positive: Any, direction: str = "<", alpha: float = 0.05) -> AUCComparison:
    """Test of two AUCs from independent samples (pROC's unpaired DeLong test).

    D = (AUC1 - AUC2) / sqrt(V1 + V2) with V the DeLong variances, df = (V1 + V2)^2 /
    (V1^2 / (N1 - 1) + V2^2 / (N2 - 1)) with N the sample sizes, two-sided Student t p-value; the CI of
    the difference uses the same t quantile.
    """
    c1, k1 = cases_and_controls(truth1, scores1, positive, direction)
    c2, k2 = cases_and_controls(truth2, scores2, positive, direction)
    a1, v1 = delong_covariance(c1, k1)
    a2, v2 = delong_covariance(c2, k2)
    var1, var2 = float(v1[0, 0]), float(v2[0, 0])
    diff = float(a1[0] - a2[0])
    se = math.sqrt(var1 + var2)
    d = diff / se if se > 0 else (0.0 if diff == 0 else math.copysign(math.inf, diff))
    n1, n2 = c1.size + k1.size, c2.size + k2.size
    df = (var1 + var2) ** 2 / (var1 ** 2 / (n1 - 1) + var2 ** 2 / (n2 - 1)) if se > 0 else math.inf
    p = float(2 * stats.t.sf(abs(d), df))
    half = float(stats.t.ppf(1 - alpha / 2, df)) * se
    return AUCComparison(auc1=float(a1[0]), auc2=float(a2[0]), difference=diff, se=se, statistic=d,
                         df=float(df), p_value=p, lower=diff - half, upper=diff + half,
                         method="delong-unpaired", confidence=1 - alpha)


def delong_pairwise(truth: ArrayLike, scores: dict[str, ArrayLike], positive: Any, direction: str = "<",
                    alpha: float = 0.05) -> tuple[pd.DataFrame, pd.DataFrame]:
    """AUCs with DeLong CIs of several scores on the same cases, and every paired DeLong comparison.

    Returns (aucs: one row per score with auc, se, lower, upper; tests: one row per pair with
    auc1, auc2, difference, lower, upper, z, p). Pairs follow the order of ``scores``.
    """
    if not scores:
        raise InputError(None, "no scores given")
    names = list(scores)
    cases, controls = oriented_scores(truth, [scores[k] for k in names], positive, direction, names)
    aucs, cov = delong_covariance(cases, controls)
    z = _z(alpha)
    se = np.sqrt(np.clip(np.diag(cov), 0, None))
    table = pd.DataFrame({"score": names, "auc": aucs, "se": se, "lower": np.clip(aucs - z * se, 0, 1),
                          "upper": np.clip(aucs + z * se, 0, 1)})
    rows = []
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            r = compare_aucs(aucs, cov, i, j, alpha)
            rows.append({"score1": names[i], "score2": names[j], "auc1": r.auc1, "auc2": r.auc2,
                         "difference": r.difference, "lower": r.lower, "upper": r.upper,
                         "z": r.statistic, "p": r.p_value})
    tests = pd.DataFrame(rows, columns=["score1", "score2", "auc1", "auc2", "difference", "lower", "upper",
                                        "z", "p"])
    return table, tests


# ------------------------------------------------------------------ ROC points and cut-offs
def roc_points(truth: ArrayLike, scores: ArrayLike, positive: Any, direction: str = "<") -> pd.DataFrame:
    """One row per cut-off: threshold, tp, fp, fn, tn, sensitivity, specificity, fpr, ss_avg.

    Rows run from the strictest cut-off (nobody positive) to the most lenient (everybody positive), so
    (fpr, sensitivity) is ready for plotting and its trapezoidal area equals the empirical AUC.
    """
    cases, controls = cases_and_controls(truth, scores, positive, direction)
    oriented = np.unique(np.concatenate([cases, controls]))[::-1]  # descending in the oriented scale
    cases_sorted, controls_sorted = np.sort(cases), np.sort(controls)
    m, n = cases.size, controls.size
    tp = m - np.searchsorted(cases_sorted, oriented, side="left")
    fp = n - np.searchsorted(controls_sorted, oriented, side="left")
    thresholds = oriented if direction == "<" else -oriented
    start = np.inf if direction == "<" else -np.inf
    frame = pd.DataFrame({
        "threshold": np.concatenate([[start], thresholds]),
        "tp": np.concatenate([[0], tp]).astype(int),
        "fp": np.concatenate([[0], fp]).astype(int),
    })
    frame["fn"] = m - frame["tp"]
    frame["tn"] = n - frame["fp"]
    frame["sensitivity"] = frame["tp"] / m
    frame["specificity"] = frame["tn"] / n
    frame["fpr"] = 1 - frame["specificity"]
    frame["ss_avg"] = (frame["sensitivity"] + frame["specificity"]) / 2
    return frame


def ss_avg_threshold(truth: ArrayLike, scores: ArrayLike, positive: Any, direction: str = "<") -> float:
    """The observed cut-off that maximises SS-Avg; ties go to the highest sensitivity (see the module docstring)."""
    points = roc_points(truth, scores, positive, direction)
    m = int(points["tp"].iloc[0] + points["fn"].iloc[0])
    n = int(points["fp"].iloc[0] + points["tn"].iloc[0])
    twice_mn_ss = points["tp"].to_numpy() * n + points["tn"].to_numpy() * m  # = 2 m n SS-Avg, exact
    best = np.flatnonzero(twice_mn_ss == twice_mn_ss.max())
    pick = best[np.argmax(points["tp"].to_numpy()[best])]
    return float(points["threshold"].iloc[pick])


def ss_avg_cutoff(truth: ArrayLike, scores: ArrayLike, positive: Any, direction: str = "<",
                  method: str = "wilson", alpha: float = 0.05) -> tuple[float, DiagnosticResult]:
    """The SS-Avg-optimal cut-off and the metrics (with CIs) at it.

    The metrics are optimistic on the data that chose the cut-off; report them from held-out data.
    """
    threshold = ss_avg_threshold(truth, scores, positive, direction)
    return threshold, diagnostic_at_threshold(truth, scores, positive, threshold, direction, method, alpha)


def metrics_at_thresholds(truth: ArrayLike, scores: ArrayLike, positive: Any,
                          thresholds: Iterable[float] | Sequence[float], direction: str = "<",
                          method: str = "wilson", alpha: float = 0.05) -> pd.DataFrame:
    """One row per fixed cut-off: counts and every metric with its CI (columns of ``to_row``)."""
    rows = []
    for t in thresholds:
        res = diagnostic_at_threshold(truth, scores, positive, float(t), direction, method, alpha)
        rows.append({"threshold": float(t), **res.to_row()})
    return pd.DataFrame(rows)
