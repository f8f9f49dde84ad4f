"""Agreement between raters: Cohen's kappa (unweighted, linear, quadratic), the pairwise kappa matrix,
Fleiss' kappa, and the intraclass correlation in its six Shrout-Fleiss / McGraw-Wong forms.

* Cohen's kappa comes from :func:`statsmodels.stats.inter_rater.cohens_kappa`. Its CI is kappa +/- z * ASE
  with the large-sample (non-null) standard error of Fleiss, Cohen & Everitt (1969), the ASE that SAS
  PROC FREQ prints; the p-value tests kappa = 0 with the ASE under the null. Weighted kappa uses
  disagreement weights |i - j| (linear) or (i - j)^2 (quadratic) of the category *positions* in the
  given order, as :func:`sklearn.metrics.cohen_kappa_score` does.
* Fleiss' kappa (Fleiss 1971) comes from :func:`statsmodels.stats.inter_rater.fleiss_kappa`; its z test
  uses the null standard error of Fleiss, Nee & Landis (1979), as R's ``irr::kappam.fleiss``.
* The ICC is computed from the two-way ANOVA mean squares of a complete, balanced targets x raters table
  (Shrout & Fleiss 1979; McGraw & Wong 1996), with F tests and exact / Satterthwaite CIs; it reproduces
  ``pingouin.intraclass_corr``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats import inter_rater

from sarcomri.errors import InputError
from sarcomri.stats._checks import require_columns, shown

WEIGHTS = (None, "linear", "quadratic")


@dataclass(frozen=True)
class KappaResult:
    """Cohen's kappa with its ASE, (1 - alpha) CI and the z test of kappa = 0."""

    kappa: float
    se: float
    lower: float
    upper: float
    z: float
    p_value: float
    n: int
    weights: str | None

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-ready)."""
        return asdict(self)


def _categories(values: Sequence[Sequence[Any]], categories: Sequence[Any] | None, weights: str | None) -> list:
    seen = pd.unique(pd.Series(np.concatenate([np.asarray(v, dtype=object) for v in values])))
    if pd.isna(pd.Series(seen)).any():
        raise InputError(None, "ratings have missing values")
    if categories is not None:
        unknown = [v for v in seen if v not in list(categories)]
        if unknown:
            raise InputError(None, f"ratings not among the given categories: {', '.join(map(shown, unknown))}")
        return list(categories)
    if weights is not None and not all(isinstance(v, int | float | np.number) for v in seen):
        raise InputError(None, "weighted kappa needs ordered categories: pass categories=[...] in order")
    try:
        return sorted(seen)
    except TypeError:
        return list(seen)


def cohen_kappa(rater1: Sequence[Any] | np.ndarray | pd.Series, rater2: Sequence[Any] | np.ndarray | pd.Series,
                weights: str | None = None, categories: Sequence[Any] | None = None,
                alpha: float = 0.05) -> KappaResult:
    """Cohen's kappa of two raters' labels on the same cases.

    ``weights``: None (unweighted), 'linear' or 'quadratic'. ``categories`` fixes the category order
    (required for weighted kappa of non-numeric labels; numbers are sorted).
    """
    if weights not in WEIGHTS:
        raise InputError(None, f"kappa weights must be none, 'linear' or 'quadratic', not {weights!r}")
    a, b = np.asarray(rater1, dtype=object), np.asarray(rater2, dtype=object)
    if a.shape != b.shape or a.ndim != 1:
        raise InputError(None, f"the two raters rated different numbers of cases ({a.size} vs {b.size})")
    cats = _categories([a, b], categories, weights)
    index = {c: i for i, c in enumerate(cats)}
    table = np.zeros((len(cats), len(cats)))
    np.add.at(table, ([index[v] for v in a], [index[v] for v in b]), 1)
    n = int(table.sum())
    if n == 0:
        raise InputError(None, "no ratings to compare")
    with np.errstate(divide="ignore", invalid="ignore"):
        if weights is None:
            res = inter_rater.cohens_kappa(table)
        else:
            res = inter_rater.cohens_kappa(table, weights=np.arange(len(cats)), wt=weights)
        # a degenerate table (e.g. one rater always says the same) can give a negative variance: SE is NaN
        kappa, se, se0 = float(res["kappa"]), float(np.sqrt(res["var_kappa"])), float(np.sqrt(res["var_kappa0"]))
    if not np.isfinite(kappa):  # every rating in one category: chance agreement is 1
        return KappaResult(math.nan, math.nan, math.nan, math.nan, math.nan, math.nan, n, weights)
    half = float(stats.norm.ppf(1 - alpha / 2)) * se
    z = kappa / se0 if se0 > 0 else math.nan
    p = float(2 * stats.norm.sf(abs(z))) if np.isfinite(z) else math.nan
    return KappaResult(kappa, se, kappa - half, kappa + half, z, p, n, weights)


def long_to_wide(frame: pd.DataFrame, case: str, rater: str, rating: str) -> pd.DataFrame:
    """Long table (one row per case and rater) to wide (one row per case, one column per rater).

    A (case, rater) pair that occurs twice is refused; missing pairs become missing values.
    """
    require_columns(frame, [case, rater, rating], "ratings table")
    dup = frame.duplicated([case, rater])
    if dup.any():
        first_case, first_rater = frame.loc[dup, case].iloc[0], frame.loc[dup, rater].iloc[0]
        raise InputError(None, f"case {shown(first_case)} is rated twice by rater {shown(first_rater)}")
    return frame.pivot(index=case, columns=rater, values=rating)


def kappa_pairs(ratings: pd.DataFrame | Mapping[str, Sequence[Any]], weights: str | None = None,
                categories: Sequence[Any] | None = None, alpha: float = 0.05) -> pd.DataFrame:
    """Cohen's kappa with CI and z test for every pair of raters (columns of a wide table).

    Each pair uses the cases both rated. Columns: rater1, rater2, kappa, se, lower, upper, z, p_value, n.
    """
    wide = pd.DataFrame(ratings)
    names = list(wide.columns)
    if len(names) < 2:
        raise InputError(None, f"agreement needs at least two raters (found {len(names)})")
    rows = []
    for i, r1 in enumerate(names):
        for r2 in names[i + 1:]:
            both = wide[[r1, r2]].dropna()
            res = cohen_kappa(both[r1], both[r2], weights, categories, alpha)
            rows.append({"rater1": r1, "rater2": r2, **{k: v for k, v in res.to_dict().items() if k != "weights"}})
    return pd.DataFrame(rows)


def kappa_matrix(ratings: pd.DataFrame | Mapping[str, Sequence[Any]], weights: str | None = None,
                 categories: Sequence[Any] | None = None) -> pd.DataFrame:
    """Square matrix of pairwise Cohen's kappa between all raters (model and readers alike).

    ``ratings``: wide table or mapping, one column per rater, rows = the same cases. Each pair uses the
    cases both rated. The diagonal is 1.
    """
    wide = pd.DataFrame(ratings)
    names = list(wide.columns)
    out = pd.DataFrame(np.eye(len(names)), index=names, columns=names)
    for _, row in kappa_pairs(wide, weights, categories).iterrows():
        out.loc[row["rater1"], row["rater2"]] = out.loc[row["rater2"], row["rater1"]] = row["kappa"]
    out.index.name = out.columns.name = "rater"
    return out


@dataclass(frozen=True)
class FleissResult:
    """Fleiss' kappa for m raters with the z test of kappa = 0 (null SE of Fleiss, Nee & Landis 1979)."""

    kappa: float
    se0: float
    z: float
    p_value: float
    subjects: int
    raters: int

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-ready)."""
        return asdict(self)


def fleiss_kappa(ratings: pd.DataFrame | Mapping[str, Sequence[Any]]) -> FleissResult:
    """Fleiss' kappa (1971) of a wide table: one row per subject, one column per rater, no missing values."""
    wide = pd.DataFrame(ratings)
    if wide.isna().any().any():
        raise InputError(None, "Fleiss' kappa needs every subject rated by every rater (missing ratings found)")
    codes, _ = pd.factorize(pd.Series(wide.to_numpy().ravel()), sort=False)
    counts, _ = inter_rater.aggregate_raters(codes.reshape(wide.shape))
    kappa = float(inter_rater.fleiss_kappa(counts, method="fleiss"))
    n_sub, n_rat = wide.shape
    p = counts.sum(axis=0) / (n_sub * n_rat)
    pq = float((p * (1 - p)).sum())
    var0 = 2 / (pq**2 * n_sub * n_rat * (n_rat - 1)) * (pq**2 - float((p * (1 - p) * (1 - 2 * p)).sum()))
    se0 = math.sqrt(var0) if var0 > 0 else math.nan
    z = kappa / se0 if se0 and np.isfinite(se0) else math.nan
    pval = float(2 * stats.norm.sf(abs(z))) if np.isfinite(z) else math.nan
    return FleissResult(kappa, se0, z, pval, n_sub, n_rat)


ICC_FORMS = pd.DataFrame(
    [
        ("ICC(1,1)", "ICC(1)", "one-way random", "absolute agreement", "single rater"),
        ("ICC(2,1)", "ICC(A,1)", "two-way random", "absolute agreement", "single rater"),
        ("ICC(3,1)", "ICC(C,1)", "two-way mixed", "consistency", "single rater"),
        ("ICC(1,k)", "ICC(k)", "one-way random", "absolute agreement", "mean of k raters"),
        ("ICC(2,k)", "ICC(A,k)", "two-way random", "absolute agreement", "mean of k raters"),
        ("ICC(3,k)", "ICC(C,k)", "two-way mixed", "consistency", "mean of k raters"),
    ],
    columns=["form", "mcgraw_wong", "model", "type", "unit"],
)


def icc(frame: pd.DataFrame, targets: str, raters: str, ratings: str, alpha: float = 0.05) -> pd.DataFrame:
    """The six ICC forms from a long table (one row per target and rater), with F test and (1 - alpha) CI.

    Columns: form (Shrout-Fleiss name), mcgraw_wong, model, type, unit, icc, F, df1, df2, p, lower, upper.
    ICC(2,*) and ICC(3,*) share F = MS_targets / MS_error; ICC(1,*) uses MS_within. The ICC(2,*) CI uses
    McGraw & Wong's Satterthwaite approximation. Every target must be rated once by every rater. lower and upper
    are NaN where the CI is undefined: a degenerate F (no error or within-target variance) or, with few targets and
    a negative ICC(2,*), a Satterthwaite df so small that the approximate interval would not contain the estimate.
    """
    wide = long_to_wide(frame, targets, raters, ratings)
    if wide.isna().any().any():
        raise InputError(None, "ICC needs a complete design: every target rated by every rater")
    try:
        x = wide.to_numpy(dtype=float)
    except (TypeError, ValueError):
        raise InputError(None, f"ratings column {ratings!r} must be numeric") from None
    n, k = x.shape
    if n < 2 or k < 2:
        raise InputError(None, f"ICC needs at least two targets and two raters (found {n} and {k})")
    grand = x.mean()
    ss_rows = k * ((x.mean(axis=1) - grand) ** 2).sum()
    ss_cols = n * ((x.mean(axis=0) - grand) ** 2).sum()
    ss_err = ((x - grand) ** 2).sum() - ss_rows - ss_cols
    msr, msc = ss_rows / (n - 1), ss_cols / (k - 1)
    mse = ss_err / ((n - 1) * (k - 1))
    msw = (ss_cols + ss_err) / (n * (k - 1))

    icc1 = (msr - msw) / (msr + (k - 1) * msw)
    icc2 = (msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n)
    icc3 = (msr - mse) / (msr + (k - 1) * mse)
    values = [icc1, icc2, icc3, (msr - msw) / msr, (msr - mse) / (msr + (msc - mse) / n), (msr - mse) / msr]

    df1, df_w, df_e = n - 1, n * (k - 1), (n - 1) * (k - 1)
    f1, f3 = msr / msw, msr / mse
    q = 1 - alpha / 2
    f1l, f1u = f1 / stats.f.ppf(q, df1, df_w), f1 * stats.f.ppf(q, df_w, df1)
    f3l, f3u = f3 / stats.f.ppf(q, df1, df_e), f3 * stats.f.ppf(q, df_e, df1)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = k * icc2 / (n * (1 - icc2))
        b = 1 + k * icc2 * (n - 1) / (n * (1 - icc2))
        v = (a * msc + b * mse) ** 2 / ((a * msc) ** 2 / (k - 1) + (b * mse) ** 2 / df_e)
        # The ICC(2,1) bounds are g(F) = the estimate's formula with MS_error scaled by F, so they bracket the
        # estimate (g(1)) only when both F quantiles are >= 1. With few targets and a negative estimate the
        # Satterthwaite df v collapses towards 0 (a < 0 cancels b), F(v, n-1)'s upper quantile falls below 1 and
        # the "CI" lies beside the estimate (2 targets: ICC -0.111, CI [-0.111, -0.111]): undefined, so NaN.
        if np.isfinite(v) and v > 0:
            f2u, f2l = stats.f.ppf(q, df1, v), stats.f.ppf(q, v, df1)
        else:
            f2u = f2l = np.nan
        if not (f2u >= 1 and f2l >= 1):
            f2u = f2l = np.nan
        l2 = n * (msr - f2u * mse) / (f2u * (k * msc + (k * n - k - n) * mse) + n * msr)
        u2 = n * (f2l * msr - mse) / (k * msc + (k * n - k - n) * mse + n * f2l * msr)
        # ICC(2,k) = k x / (1 + (k - 1) x) of ICC(2,1): monotone only above x = -1/(k - 1), where it has a pole
        l2k, u2k = ((l2 * k / (1 + l2 * (k - 1)), u2 * k / (1 + u2 * (k - 1))) if l2 > -1 / (k - 1)
                    else (np.nan, np.nan))
        bounds = [
            ((f1l - 1) / (f1l + k - 1), (f1u - 1) / (f1u + k - 1)),
            (l2, u2),
            ((f3l - 1) / (f3l + k - 1), (f3u - 1) / (f3u + k - 1)),
            (1 - 1 / f1l, 1 - 1 / f1u),
            (l2k, u2k),
            (1 - 1 / f3l, 1 - 1 / f3u),
        ]
    # a CI that is not finite or does not contain its estimate (degenerate F: no within-target or error variance)
    # is undefined
    bounds = [(lo, hi) if np.isfinite(lo) and np.isfinite(hi) and lo - 1e-12 <= est <= hi + 1e-12
              else (np.nan, np.nan) for (lo, hi), est in zip(bounds, values, strict=True)]
    out = ICC_FORMS.copy()
    out["icc"] = values
    out["F"] = [f1, f3, f3] * 2
    out["df1"] = df1
    out["df2"] = [df_w, df_e, df_e] * 2
    out["p"] = [stats.f.sf(f1, df1, df_w), stats.f.sf(f3, df1, df_e), stats.f.sf(f3, df1, df_e)] * 2
    out["lower"] = [lo for lo, _ in bounds]
    out["upper"] = [hi for _, hi in bounds]
    return out


#: Landis & Koch (1977) agreement labels: (upper bound of the band, label), lowest band first.
LANDIS_KOCH = ((0.0, "poor"), (0.20, "slight"), (0.40, "fair"), (0.60, "moderate"), (0.80, "substantial"),
               (1.0, "almost perfect"))


def landis_koch(kappa: float) -> str:
    """The Landis & Koch (1977) label of a kappa: poor (< 0), slight (0-0.20), fair (0.21-0.40), moderate
    (0.41-0.60), substantial (0.61-0.80), almost perfect (0.81-1).

    Each band includes its upper bound (0.20 is slight, 0.2001 fair) and 0 itself is slight; the value is
    rounded to 12 decimals first, so that a kappa computed as 0.20000000000000004 is still slight. NaN gives
    an empty label.
    """
    value = float(kappa)
    if math.isnan(value):
        return ""
    value = round(value, 12)
    if value < 0:
        return "poor"
    for upper, label in LANDIS_KOCH[1:]:
        if value <= upper:
            return label
    return LANDIS_KOCH[-1][1]
