"""From slice predictions to patient predictions, and leave-one-out ensembles over repeats.

Input is the grid's predictions table (one row per model, patient, sequence and slice). Nothing here runs a
network: ensembles are computed from the stored per-model predictions.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

Aggregation = Literal["mean", "central"]
MODEL_KEYS = ["model", "sequence", "repeat", "fold", "split"]


def patient_predictions(preds: pd.DataFrame, how: Aggregation = "mean") -> pd.DataFrame:
    """One row per (model, patient): the mean of the slice probabilities, or the central slice's.

    Columns: model, sequence, repeat, fold, split, patient_id, label, p_positive, n_slices.
    """
    if how == "central":
        sub = preds[preds["central"]]
        missing = set(map(tuple, preds[MODEL_KEYS + ["patient_id"]].drop_duplicates().to_numpy())) - set(
            map(tuple, sub[MODEL_KEYS + ["patient_id"]].to_numpy())
        )
        if missing:
            raise ValueError(f"{len(missing)} (model, patient) pairs have no central slice")
    elif how == "mean":
        sub = preds
    else:
        raise ValueError(f"unknown aggregation {how!r}; choose mean or central")
    out = (
        sub.groupby(MODEL_KEYS + ["patient_id"], sort=False)
        .agg(label=("label", "first"), p_positive=("p_positive", "mean"), n_slices=("p_positive", "size"))
        .reset_index()
    )
    return out


def loo_ensembles(patient_preds: pd.DataFrame, split: str = "test") -> pd.DataFrame:
    """Leave-one-out ensembles over repeats: with R repeats, R ensembles each averaging R - 1 models.

    For each sequence and patient, every repeat contributes the one model that had the patient in its
    ``split`` (in k-fold, the fold that tested it). Ensemble ``e`` averages the repeats other than ``e``: the
    patient's likelihood (the sarcoma study's "sarcoma likelihood" with R = 24). With a single repeat the
    one ensemble is that repeat's model. Columns: sequence, ensemble, patient_id, label, likelihood, n_models.
    """
    sub = patient_preds[patient_preds["split"] == split]
    dup = sub.duplicated(["sequence", "repeat", "patient_id"])
    if dup.any():
        r = sub[dup].iloc[0]
        raise ValueError(f"patient {r.patient_id} has two {split} predictions in repeat {r.repeat} of {r.sequence}")
    wide = sub.pivot_table(index=["sequence", "patient_id"], columns="repeat", values="p_positive", aggfunc="first")
    labels = sub.groupby(["sequence", "patient_id"])["label"].first()
    repeats = list(wide.columns)
    values = wide.to_numpy(dtype=float)  # (sequence-patient, R), NaN where a repeat lacks the patient
    present = ~np.isnan(values)
    total, count = np.nansum(values, axis=1), present.sum(axis=1)
    frames = []
    for j, rep in enumerate(repeats):
        if len(repeats) == 1:
            lik, n = values[:, 0], present[:, 0].astype(int)
        else:
            rem = np.where(present[:, j], values[:, j], 0.0)
            n = count - present[:, j]
            with np.errstate(invalid="ignore", divide="ignore"):
                lik = np.where(n > 0, (total - rem) / np.maximum(n, 1), np.nan)
        frames.append(pd.DataFrame({
            "sequence": wide.index.get_level_values(0), "ensemble": rep,
            "patient_id": wide.index.get_level_values(1), "label": labels.reindex(wide.index).to_numpy(),
            "likelihood": lik, "n_models": n,
        }))
    out = pd.concat(frames, ignore_index=True).dropna(subset=["likelihood"])
    order = {seq: i for i, seq in enumerate(dict.fromkeys(sub["sequence"]))}  # keep the input's sequence order
    return out.sort_values(["sequence", "ensemble", "patient_id"], key=lambda c: c.map(order) if c.name == "sequence"
                           else c, kind="stable").reset_index(drop=True)


def mean_likelihood(ensembles: pd.DataFrame) -> pd.DataFrame:
    """Per sequence and patient, the mean likelihood over the ensembles (equal to the mean over repeats)."""
    return (
        ensembles.groupby(["sequence", "patient_id"], sort=False)
        .agg(label=("label", "first"), likelihood=("likelihood", "mean"))
        .reset_index()
    )
