"""Reliability of radiomic features under automatic segmentation: first-order features of one image (e.g.
the ADC map) inside the manual and inside the automatic mask of every patient, and the intraclass
correlation per feature (the transfer-learning study's radiomics analysis).

The two masks are the two "raters" of a two-way design (patients x masks) and the ICC reported is
**ICC(2,1)** of Shrout & Fleiss, McGraw & Wong's ICC(A,1): two-way random effects, absolute agreement,
single measurement (:func:`sarcomri.stats.agreement.icc`, which also gives its 95% CI). Features are those
of :func:`sarcomri.radiomics.firstorder.firstorder_features` (IBSI intensity statistics, energy, entropy,
uniformity) plus the ROI volume. A patient whose automatic mask is empty has no features there and is
left out (``n_excluded`` counts them); so is a patient whose feature is undefined (NaN) for one of the two
masks, feature by feature. Identical masks give an ICC of exactly 1. Pure numpy; nothing here imports torch.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from sarcomri.errors import InputError
from sarcomri.radiomics.firstorder import firstorder_features
from sarcomri.stats.agreement import icc

#: The ICC form reported (Shrout-Fleiss name, as in :data:`sarcomri.stats.agreement.ICC_FORMS`).
ICC_FORM = "ICC(2,1)"
#: The 14 first-order ADC features of the transfer-learning paper's reliability table, as project names
#: (:mod:`sarcomri.radiomics.firstorder`) -> pyradiomics names, in the table's order. The paper's own list
#: could not be consulted: these are the 14 pyradiomics first-order features most often reported (every one
#: computed here to IBSI/pyradiomics definitions; kurtosis is pyradiomics' Pearson kurtosis, entropy is on the
#: fixed bin width). An assumption of the preset, documented in docs/segmentation2d.md.
PAPER_ADC_FEATURES: dict[str, str] = {
    "percentile_10": "10Percentile", "percentile_90": "90Percentile", "energy": "Energy", "entropy": "Entropy",
    "interquartile_range": "InterquartileRange", "kurtosis_pearson": "Kurtosis", "maximum": "Maximum",
    "mean_absolute_deviation": "MeanAbsoluteDeviation", "mean": "Mean", "median": "Median", "minimum": "Minimum",
    "range": "Range", "skewness": "Skewness", "variance": "Variance",
}
#: Bookkeeping outputs of ``firstorder_features`` that are not features.
NOT_FEATURES = ("n_voxels", "n_bins")
MASKS = ("manual", "automatic")


def mask_features(image: np.ndarray, mask: np.ndarray, spacing_zyx: Sequence[float], scale: float = 1.0,
                  bin_width: float | None = None, bin_count: int | None = None) -> dict[str, float] | None:
    """First-order features of ``image`` inside ``mask`` (None when the mask is empty)."""
    if not np.any(np.asarray(mask)):
        return None
    feats = firstorder_features(image, mask, spacing_zyx, bin_width=bin_width, bin_count=bin_count, scale=scale)
    return {k: v for k, v in feats.items() if k not in NOT_FEATURES}


def paired_features(cases: Iterable[tuple[str, np.ndarray, np.ndarray, np.ndarray, Sequence[float]]],
                    scale: float = 1.0, bin_width: float | None = None,
                    bin_count: int | None = None) -> pd.DataFrame:
    """Long table of features: one row per (case, mask, feature) with ``value``.

    ``cases`` yields ``(case_id, image, manual_mask, automatic_mask, spacing_zyx)`` (arrays on one grid).
    A case whose manual mask is empty is refused; one whose automatic mask is empty has only manual rows.
    """
    rows = []
    for case_id, image, manual, auto, spacing in cases:
        if np.shape(image) != np.shape(manual) or np.shape(image) != np.shape(auto):
            raise InputError(case_id, f"image {np.shape(image)} and masks {np.shape(manual)}, {np.shape(auto)} "
                                      "are not on one grid")
        ref = mask_features(image, manual, spacing, scale, bin_width, bin_count)
        if ref is None:
            raise InputError(case_id, "the manual mask is empty")
        got = mask_features(image, auto, spacing, scale, bin_width, bin_count)
        for which, feats in (("manual", ref), ("automatic", got)):
            if feats is not None:
                rows.extend({"case": case_id, "mask": which, "feature": k, "value": float(v)} for k, v in feats.items())
    return pd.DataFrame(rows, columns=["case", "mask", "feature", "value"])


def feature_icc(long: pd.DataFrame, form: str = ICC_FORM, alpha: float = 0.05) -> pd.DataFrame:
    """The ICC of every feature between the manual and the automatic mask, from :func:`paired_features`.

    Columns: feature, icc_form, icc, lower, upper (the (1 - alpha) CI), F, p, n (cases used), n_excluded,
    mean_manual, mean_automatic. A feature with fewer than two usable cases, or no variation between cases,
    has icc NaN."""
    if long.empty:
        return pd.DataFrame(columns=["feature", "icc_form", "icc", "lower", "upper", "F", "p", "n", "n_excluded",
                                     "mean_manual", "mean_automatic"])
    all_cases = long["case"].nunique()
    wide_all = long.pivot_table(index="case", columns=["feature", "mask"], values="value", aggfunc="first")
    rows = []
    for feature in dict.fromkeys(long["feature"]):
        wide = wide_all[feature].reindex(columns=list(MASKS)).replace([np.inf, -np.inf], np.nan).dropna()
        x = wide.to_numpy(dtype=float)
        row = {"feature": feature, "icc_form": form, "icc": np.nan, "lower": np.nan, "upper": np.nan,
               "F": np.nan, "p": np.nan, "n": len(wide), "n_excluded": all_cases - len(wide),
               "mean_manual": x[:, 0].mean() if len(x) else np.nan,
               "mean_automatic": x[:, 1].mean() if len(x) else np.nan}
        if len(x) >= 2 and x.std() > 0:
            tidy = pd.DataFrame({"case": np.repeat(wide.index.to_numpy(), 2), "mask": np.tile(list(MASKS), len(x)),
                                 "value": x.ravel()})
            with np.errstate(all="ignore"):
                table = icc(tidy, "case", "mask", "value", alpha=alpha)
            hit = table[table["form"] == form].iloc[0]
            row.update(icc=float(hit["icc"]), lower=float(hit["lower"]), upper=float(hit["upper"]),
                       F=float(hit["F"]), p=float(hit["p"]))
        rows.append(row)
    return pd.DataFrame(rows)


def reliability_table(cases: Iterable[tuple[str, np.ndarray, np.ndarray, np.ndarray, Sequence[float]]],
                      scale: float = 1.0, bin_width: float | None = None, bin_count: int | None = None,
                      form: str = ICC_FORM) -> pd.DataFrame:
    """Features inside manual and automatic masks of every case and the ICC per feature (one call)."""
    return feature_icc(paired_features(cases, scale, bin_width, bin_count), form)
