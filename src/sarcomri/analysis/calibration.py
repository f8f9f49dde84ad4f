"""Calibration of the model's likelihoods per sequence: the reliability curve and the Brier score.

From ``likelihood.csv`` (one out-of-fold ensemble likelihood per patient and sequence, label 1 = positive):

* ``calibration.csv``: per sequence and likelihood bin (:data:`BINS` equal-width bins over [0, 1], binned as
  :func:`sklearn.calibration.calibration_curve` with ``strategy="uniform"`` bins, empty bins left out): the
  patients in the bin, their mean likelihood, the observed rate of the positive class and its 95% Wilson interval;
* ``brier.csv``: per sequence the Brier score (:func:`sklearn.metrics.brier_score_loss`), the patients and the
  prevalence, and the Brier score of always predicting the prevalence (the reference a useful model beats).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import brier_score_loss

from sarcomri.stats.diagnostic import proportion_ci

#: Equal-width likelihood bins of the reliability curve (few patients: few bins).
BINS = 5


def calibration_tables(likelihood: pd.DataFrame, bins: int = BINS) -> dict[str, pd.DataFrame]:
    """``calibration`` and ``brier`` (module docstring) from ``likelihood`` (sequence, label, likelihood)."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    curve, scores = [], []
    for seq, part in likelihood.groupby("sequence", sort=False):
        y = part["label"].astype(int).to_numpy()
        p = part["likelihood"].astype(float).to_numpy()
        ids = np.searchsorted(edges[1:-1], p)  # as sklearn's calibration_curve bins
        for b in range(bins):
            inside = ids == b
            n = int(inside.sum())
            if not n:
                continue
            k = int(y[inside].sum())
            lower, upper = proportion_ci(k, n)
            curve.append({"sequence": seq, "bin_low": edges[b], "bin_high": edges[b + 1], "n": n,
                          "mean_likelihood": float(p[inside].mean()), "observed": k / n, "lower": lower,
                          "upper": upper})
        prevalence = float(y.mean())
        scores.append({"sequence": seq, "n": len(y), "prevalence": prevalence,
                       "brier": float(brier_score_loss(y, p)),
                       "brier_prevalence": float(brier_score_loss(y, np.full(len(y), prevalence)))})
    return {"calibration": pd.DataFrame(curve), "brier": pd.DataFrame(scores)}
