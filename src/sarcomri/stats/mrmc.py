"""Multi-reader multi-case (MRMC) ROC analysis: Obuchowski-Rockette (OR) with Hillis degrees of freedom.

The figure of merit is the empirical (trapezoidal) AUC of every reader in every modality. Its covariance
across (modality, reader) over cases comes from DeLong's structural components (n - 1 denominators) or
from the case jackknife, cov = (N - 1)/N * sum_k (theta_(k) - mean)(theta_(k) - mean)^T over all N cases
(each leave-one-out AUC follows exactly from the placement values). From that matrix:
Var = mean variance, Cov1 = mean covariance of the same reader across modalities, Cov2 = different readers
in the same modality, Cov3 = different readers and modalities. With t modalities, r readers,
MS(T) = r * sum_i (theta_i. - theta_..)^2 / (t - 1) and MS(TR) the modality x reader interaction:

* random readers and random cases (``rrrc``; Hillis 2007): F = MS(T) / (MS(TR) + r max(Cov2 - Cov3, 0)),
  df = (t - 1, ddf_H), ddf_H = (MS(TR) + r max(Cov2 - Cov3, 0))^2 / (MS(TR)^2 / ((t - 1)(r - 1)));
* fixed readers, random cases (``frrc``): X2 = (t - 1) MS(T) / (Var - Cov1 + (r - 1) max(Cov2 - Cov3, 0)),
  chi-square with t - 1 df (the CIs use the normal quantile);
* random readers, fixed cases (``rrfc``): F = MS(T) / MS(TR), df = (t - 1, (t - 1)(r - 1)).

Each analysis also gives the CI of every difference of reader-averaged AUCs (SE^2 = 2/r times the
denominator above, with the matching t or z quantile) and the CI of each modality's reader-averaged AUC
(Hillis 2007: MS(R)_i / r + max(Cov2_i, 0) with its Satterthwaite df for rrrc; (Var_i + (r - 1)
max(Cov2_i, 0)) / r for frrc; MS(R)_i / r with r - 1 df for rrfc). These are the conventions of
RJafroc's and MRMCaov's OR analyses.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from sarcomri.errors import InputError
from sarcomri.stats._checks import binary_truth, require_columns, shown
from sarcomri.stats._json import jsonable
from sarcomri.stats.roc import delong_placements

ANALYSES = ("rrrc", "frrc", "rrfc")
COVARIANCES = ("jackknife", "delong")


@dataclass(frozen=True)
class MRMCResult:
    """OR analysis: AUCs per reader and modality, variance components and the three analyses.

    ``tests``: one row per analysis (statistic, df1, df2, p). ``differences``: one row per analysis and
    pair of modalities (difference = AUC(modality1) - AUC(modality2), se, df, lower, upper, p).
    ``modalities``: one row per analysis and modality (auc, se, df, lower, upper). ``df = inf`` marks
    a normal quantile.
    """

    aucs: pd.DataFrame
    components: dict[str, float]
    tests: pd.DataFrame
    differences: pd.DataFrame
    modalities: pd.DataFrame
    covariance: str
    n_cases: int
    n_controls: int
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with the same content (infinite df, meaning a normal quantile, written as null)."""
        aucs = self.aucs.stack().rename("auc").reset_index()
        return jsonable({"covariance": self.covariance, "n_cases": self.n_cases, "n_controls": self.n_controls,
                         "confidence": self.confidence, "aucs": aucs, "components": self.components,
                         "tests": self.tests, "differences": self.differences, "modalities": self.modalities})


def _score_cube(frame: pd.DataFrame, reader: str, case: str, modality: str, truth: str, score: str,
                positive: Any) -> tuple[np.ndarray, np.ndarray, list, list]:
    """Scores as (modalities, readers, cases), the case truth, and the modality and reader labels."""
    require_columns(frame, [reader, case, modality, truth, score], "MRMC table")
    dup = frame.duplicated([modality, reader, case])
    if dup.any():
        m, r, c = (frame.loc[dup, col].iloc[0] for col in (modality, reader, case))
        raise InputError(None, f"reader {shown(r)} rated case {shown(c)} twice in modality {shown(m)}")
    per_case = frame.groupby(case)[truth].nunique()
    if (per_case > 1).any():
        raise InputError(None, f"case {shown(per_case.index[per_case > 1][0])} has more than one truth value")
    truth_by_case = frame.groupby(case, sort=True)[truth].first()
    is_pos = binary_truth(truth_by_case.to_numpy(), positive, name=truth)
    modalities = sorted(frame[modality].unique().tolist())
    readers = sorted(frame[reader].unique().tolist())
    cube = frame.pivot_table(index=[modality, reader], columns=case, values=score, aggfunc="first")
    full = pd.MultiIndex.from_product([modalities, readers], names=[modality, reader])
    cube = cube.reindex(index=full, columns=truth_by_case.index)
    if cube.isna().any().any():
        raise InputError(None, "MRMC needs a fully crossed design: every reader scores every case in every "
                               f"modality ({int(cube.isna().sum().sum())} (modality, reader, case) scores missing)")
    if len(modalities) < 2 or len(readers) < 2:
        raise InputError(None, f"MRMC needs at least two modalities and two readers "
                               f"(found {len(modalities)} and {len(readers)})")
    values = cube.to_numpy(dtype=float).reshape(len(modalities), len(readers), -1)
    return values, is_pos, modalities, readers


def auc_covariance(cases: np.ndarray, controls: np.ndarray, method: str) -> tuple[np.ndarray, np.ndarray]:
    """AUCs (k,) and their covariance (k, k) over cases, by 'jackknife' or 'delong'."""
    aucs, v10, v01 = delong_placements(cases, controls)
    m, n = v10.shape[1], v01.shape[1]
    if method == "delong":
        return aucs, np.cov(v10) / m + np.cov(v01) / n
    if method != "jackknife":
        raise InputError(None, f"covariance must be 'jackknife' or 'delong', not {method!r}")
    # leaving out case i: (m AUC - v10_i) / (m - 1); leaving out control j: (n AUC - v01_j) / (n - 1)
    loo = np.concatenate([(m * aucs[:, None] - v10) / (m - 1), (n * aucs[:, None] - v01) / (n - 1)], axis=1)
    total = m + n
    centred = loo - loo.mean(axis=1, keepdims=True)
    return aucs, (total - 1) / total * centred @ centred.T


def _components(theta: np.ndarray, cov: np.ndarray) -> dict[str, Any]:
    t, r = theta.shape
    idx = list(itertools.product(range(t), range(r)))
    same_r = np.array([[a[1] == b[1] and a[0] != b[0] for b in idx] for a in idx])
    same_t = np.array([[a[0] == b[0] and a[1] != b[1] for b in idx] for a in idx])
    neither = np.array([[a[0] != b[0] and a[1] != b[1] for b in idx] for a in idx])
    comp = {"var": float(np.mean(np.diag(cov))), "cov1": float(cov[same_r].mean()),
            "cov2": float(cov[same_t].mean()), "cov3": float(cov[neither].mean())}
    mod_mean, grand = theta.mean(axis=1), theta.mean()
    inter = theta - mod_mean[:, None] - theta.mean(axis=0)[None, :] + grand
    comp["ms_t"] = float(r * ((mod_mean - grand) ** 2).sum() / (t - 1))
    comp["ms_r"] = float(t * ((theta.mean(axis=0) - grand) ** 2).sum() / (r - 1))
    comp["ms_tr"] = float((inter**2).sum() / ((t - 1) * (r - 1)))
    blocks = [cov[i * r:(i + 1) * r, i * r:(i + 1) * r] for i in range(t)]
    off = ~np.eye(r, dtype=bool)
    comp["per_modality"] = [{"var": float(np.mean(np.diag(b))), "cov2": float(b[off].mean()),
                             "ms_r": float(theta[i].var(ddof=1))} for i, b in enumerate(blocks)]
    return comp


def _quantile(df: float, alpha: float) -> float:
    return float(stats.norm.ppf(1 - alpha / 2)) if math.isinf(df) else float(stats.t.ppf(1 - alpha / 2, df))


def _analyses(theta: np.ndarray, comp: dict[str, Any], alpha: float, labels: list) -> tuple[list, list, list]:
    t, r = theta.shape
    ms_t, ms_tr = comp["ms_t"], comp["ms_tr"]
    c23 = max(comp["cov2"] - comp["cov3"], 0.0)
    denom = {"rrrc": ms_tr + r * c23, "frrc": comp["var"] - comp["cov1"] + (r - 1) * c23, "rrfc": ms_tr}
    ddf_h = denom["rrrc"] ** 2 / (ms_tr**2 / ((t - 1) * (r - 1))) if ms_tr > 0 else math.inf
    ddf = {"rrrc": ddf_h, "frrc": math.inf, "rrfc": float((t - 1) * (r - 1))}
    tests, diffs, mods = [], [], []
    for a in ANALYSES:
        if a == "frrc":
            stat = (t - 1) * ms_t / denom[a]
            tests.append({"analysis": a, "statistic": stat, "df1": t - 1, "df2": math.inf,
                          "p": float(stats.chi2.sf(stat, t - 1))})
        else:
            stat = ms_t / denom[a]
            tests.append({"analysis": a, "statistic": stat, "df1": t - 1, "df2": ddf[a],
                          "p": float(stats.f.sf(stat, t - 1, ddf[a]))})
        se_diff = math.sqrt(2 / r * denom[a])
        q = _quantile(ddf[a], alpha)
        means = theta.mean(axis=1)
        for i, j in itertools.combinations(range(t), 2):
            d = float(means[i] - means[j])
            z = d / se_diff
            p = 2 * (stats.norm.sf(abs(z)) if math.isinf(ddf[a]) else stats.t.sf(abs(z), ddf[a]))
            diffs.append({"analysis": a, "modality1": labels[i], "modality2": labels[j], "difference": d,
                          "se": se_diff, "df": ddf[a], "lower": d - q * se_diff, "upper": d + q * se_diff,
                          "p": float(p)})
        for i, pm in enumerate(comp["per_modality"]):
            c2 = max(pm["cov2"], 0.0)
            if a == "rrrc":
                var_i = pm["ms_r"] / r + c2
                df_i = (pm["ms_r"] + r * c2) ** 2 / (pm["ms_r"] ** 2 / (r - 1)) if pm["ms_r"] > 0 else math.inf
            elif a == "frrc":
                var_i, df_i = (pm["var"] + (r - 1) * c2) / r, math.inf
            else:
                var_i, df_i = pm["ms_r"] / r, float(r - 1)
            se_i = math.sqrt(var_i)
            qi = _quantile(df_i, alpha)
            mods.append({"analysis": a, "modality": labels[i], "auc": float(means[i]), "se": se_i,
                         "df": df_i, "lower": means[i] - qi * se_i, "upper": means[i] + qi * se_i})
    return tests, diffs, mods


def or_mrmc(frame: pd.DataFrame, reader: str, case: str, modality: str, truth: str, score: str,
            positive: Any, covariance: str = "jackknife", alpha: float = 0.05) -> MRMCResult:
    """Obuchowski-Rockette analysis of a long table with one row per (modality, reader, case).

    Higher scores must mean "more likely positive" (direction '<'); ``positive`` names the positive truth
    value. Returns all three analyses (``rrrc``, ``frrc``, ``rrfc``); see the module docstring.
    """
    if covariance not in COVARIANCES:
        raise InputError(None, f"covariance must be 'jackknife' or 'delong', not {covariance!r}")
    cube, is_pos, modalities, readers = _score_cube(frame, reader, case, modality, truth, score, positive)
    if is_pos.sum() < 2 or (~is_pos).sum() < 2:
        raise InputError(None, "MRMC needs at least two positive and two negative cases")
    t, r, _ = cube.shape
    flat = cube.reshape(t * r, -1)
    aucs, cov = auc_covariance(flat[:, is_pos], flat[:, ~is_pos], covariance)
    theta = aucs.reshape(t, r)
    comp = _components(theta, cov)
    tests, diffs, mods = _analyses(theta, comp, alpha, modalities)
    auc_table = pd.DataFrame(theta, index=pd.Index(modalities, name=modality),
                             columns=pd.Index(readers, name=reader))
    summary = {k: v for k, v in comp.items() if k != "per_modality"}
    return MRMCResult(aucs=auc_table, components=summary, tests=pd.DataFrame(tests),
                      differences=pd.DataFrame(diffs), modalities=pd.DataFrame(mods), covariance=covariance,
                      n_cases=int(is_pos.sum()), n_controls=int((~is_pos).sum()), confidence=1 - alpha)
