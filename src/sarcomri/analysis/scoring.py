"""Per-sequence and per-ensemble performance tables from patient-level likelihoods.

Every number comes from :mod:`sarcomri.stats` (DeLong CIs, Wilson CIs). Likelihoods are probabilities of the
positive class (label 1), so the ROC direction is ``'<'`` (controls lower than cases).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sarcomri.stats.diagnostic import diagnostic_at_threshold
from sarcomri.stats.roc import auc_ci, ss_avg_threshold


def performance_row(labels: np.ndarray, scores: np.ndarray, cutoff: float | None = 0.5) -> dict:
    """AUC with DeLong CI, the SS-Avg-optimal cut-off, and metrics at ``cutoff`` (the optimal one when None).

    Columns of the row: n, n_pos, auc, auc_lower, auc_upper, optimal_cutoff, cutoff, then the diagnostic
    metrics with Wilson CIs (sensitivity, specificity, accuracy, ppv, npv, ss_avg and their _lower/_upper).
    With a single case or a single control the AUC has no DeLong variance: its CI is left empty (NaN).
    """
    labels, scores = np.asarray(labels, dtype=int), np.asarray(scores, dtype=float)
    row: dict = {"n": len(labels), "n_pos": int(labels.sum())}
    if 0 < labels.sum() < len(labels):
        a = auc_ci(labels, scores, positive=1, direction="<")  # no CI (NaN) with a single case or control
        row.update(auc=a.auc, auc_lower=a.lower, auc_upper=a.upper)
        best = ss_avg_threshold(labels, scores, positive=1, direction="<")
        row.update(optimal_cutoff=best)
        cut = best if cutoff is None else cutoff
        row["cutoff"] = cut
        row.update(diagnostic_at_threshold(labels, scores, 1, cut, "<").to_row())
    else:
        row.update(auc=np.nan, auc_lower=np.nan, auc_upper=np.nan, optimal_cutoff=np.nan, cutoff=cutoff)
    return row


def per_sequence_table(likelihoods: pd.DataFrame, cutoff: float | None = 0.5) -> pd.DataFrame:
    """One row per sequence from (sequence, patient_id, label, likelihood) rows."""
    rows = []
    for seq, g in likelihoods.groupby("sequence", sort=False):
        rows.append({"sequence": seq, **performance_row(g["label"].to_numpy(), g["likelihood"].to_numpy(), cutoff)})
    return pd.DataFrame(rows)


COMBINED = "mean of sequences"


def combined_likelihood(likelihoods: pd.DataFrame) -> pd.DataFrame:
    """Per patient the mean likelihood over the sequences the patient has (a fixed rule: nothing is fitted,
    so its AUC is not optimistic); columns patient_id, label, likelihood, n_sequences."""
    g = likelihoods.groupby("patient_id", sort=False)
    return pd.DataFrame({"label": g["label"].first(), "likelihood": g["likelihood"].mean(),
                         "n_sequences": g["likelihood"].size()}).reset_index()


def combined_table(likelihoods: pd.DataFrame, cutoff: float | None = 0.5) -> pd.DataFrame:
    """One row, like :func:`per_sequence_table`'s, for the patient-level mean of the sequence likelihoods."""
    both = combined_likelihood(likelihoods)
    return pd.DataFrame([{"sequence": COMBINED,
                          **performance_row(both["label"].to_numpy(), both["likelihood"].to_numpy(), cutoff)}])


def per_ensemble_table(ensembles: pd.DataFrame, cutoff: float = 0.5) -> pd.DataFrame:
    """Per sequence and ensemble: AUC and metrics at ``cutoff``; then the mean and SD over ensembles."""
    rows = []
    for (seq, ens), g in ensembles.groupby(["sequence", "ensemble"], sort=False):
        r = performance_row(g["label"].to_numpy(), g["likelihood"].to_numpy(), cutoff)
        rows.append({"sequence": seq, "ensemble": ens, **r})
    return pd.DataFrame(rows)


def summarise_ensembles(per_ensemble: pd.DataFrame) -> pd.DataFrame:
    """Mean and SD over the leave-one-out ensembles of AUC, sensitivity, specificity, accuracy and SS-Avg."""
    cols = [c for c in ("auc", "sensitivity", "specificity", "accuracy", "ss_avg") if c in per_ensemble]
    agg = per_ensemble.groupby("sequence", sort=False)[cols].agg(["mean", "std"])
    agg.columns = [f"{c}_{s}" for c, s in agg.columns]
    return agg.reset_index().assign(n_ensembles=per_ensemble.groupby("sequence", sort=False).size().to_numpy())
