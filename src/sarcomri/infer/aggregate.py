"""From slice predictions to patient predictions, and leave-one-out ensembles over repeats.

Input is the grid's predictions table (one row per model, patient, sequence and slice). Nothing here runs a
network: ensembles are computed from the stored per-model predictions.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

Aggregation = Literal["mean", "central"]
#: How the models of an ensemble make a patient's likelihood: the mean of their probabilities, or the share of
#: them calling the positive class (probability >= :data:`CALL_CUTOFF`).
Likelihood = Literal["mean_probability", "vote_share"]
MODEL_KEYS = ["model", "sequence", "repeat", "fold", "split"]
CALL_CUTOFF = 0.5


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


def loo_ensembles(patient_preds: pd.DataFrame, split: str = "test",
                  likelihood: Likelihood = "mean_probability") -> pd.DataFrame:
    """Leave-one-out ensembles over repeats: with R repeats, R ensembles each of R - 1 models.

    For each sequence and patient, every repeat contributes the one model that had the patient in its
    ``split`` (in k-fold, the fold that tested it). Ensemble ``e`` combines the repeats other than ``e`` into the
    patient's likelihood (the sarcoma study's "sarcoma likelihood" with R = 24): with ``mean_probability`` the
    mean of their probabilities, with ``vote_share`` the share of them with probability >= 0.5 (the paper's
    wording allows both; which it used is not confirmed). With a single repeat the one ensemble is that
    repeat's model. Columns: sequence, ensemble, patient_id, label, likelihood, n_models.
    """
    if likelihood not in ("mean_probability", "vote_share"):
        raise ValueError(f"unknown ensemble likelihood {likelihood!r}; choose mean_probability or vote_share")
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
    if likelihood == "vote_share":
        values = np.where(present, (values >= CALL_CUTOFF).astype(float), np.nan)
    frames = []
    for j, rep in enumerate(repeats):
        if len(repeats) == 1:
            lik, n = values[:, 0], present[:, 0].astype(int)
        else:  # summed afresh, not total minus one: no rounding moves a likelihood across 0.5
            others = np.delete(values, j, axis=1)
            n = (~np.isnan(others)).sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                lik = np.where(n > 0, np.nansum(others, axis=1) / np.maximum(n, 1), np.nan)
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


def accuracy_ss_avg(labels: np.ndarray, scores: np.ndarray, cutoff: float = CALL_CUTOFF) -> tuple[float, float]:
    """Accuracy and SS-Avg ((sensitivity + specificity) / 2) of calling ``scores >= cutoff`` positive; SS-Avg is
    NaN when the labels hold one class only."""
    y, call = np.asarray(labels, dtype=int) == 1, np.asarray(scores, dtype=float) >= cutoff
    if y.size == 0:
        return float("nan"), float("nan")
    accuracy = float(np.mean(call == y))
    if y.all() or not y.any():
        return accuracy, float("nan")
    return accuracy, float((np.mean(call[y]) + np.mean(~call[~y])) / 2)


SINGLE_VS_ENSEMBLE_COLUMNS = ["sequence", "kind", "n", "accuracy_min", "accuracy_median", "accuracy_max",
                              "ss_avg_min", "ss_avg_median", "ss_avg_max"]


def single_vs_ensemble(patient_preds: pd.DataFrame, ensembles: pd.DataFrame, split: str = "test",
                       cutoff: float = CALL_CUTOFF) -> pd.DataFrame:
    """Single models against leave-one-out ensembles (the sarcoma study's Figure 1), per sequence: the accuracy
    and SS-Avg at ``cutoff`` of every single model (each repeat's fold model on its own ``split`` patients) and of
    every ensemble (:func:`loo_ensembles`, all its patients), as minimum, median and maximum over them (NaN
    SS-Avgs, from a model tested on one class, left out). Two rows per sequence, ``kind`` ``single model`` and
    ``ensemble``; ``n`` counts the models or ensembles. Columns: :data:`SINGLE_VS_ENSEMBLE_COLUMNS`."""
    rows = []
    singles = patient_preds[patient_preds["split"] == split]
    order = list(dict.fromkeys([*singles["sequence"], *ensembles["sequence"]]))
    for seq in order:
        for kind, frame, by, score in (("single model", singles, "model", "p_positive"),
                                       ("ensemble", ensembles, "ensemble", "likelihood")):
            groups = frame[frame["sequence"] == seq].groupby(by, sort=False)
            metrics = np.array([accuracy_ss_avg(g["label"].to_numpy(), g[score].to_numpy(), cutoff)
                                for _, g in groups]).reshape(-1, 2)
            row: dict = {"sequence": seq, "kind": kind, "n": len(metrics)}
            for j, name in enumerate(("accuracy", "ss_avg")):
                found = metrics[:, j][~np.isnan(metrics[:, j])]
                stats = (found.min(), np.median(found), found.max()) if found.size else (np.nan,) * 3
                row.update({f"{name}_{s}": float(v) for s, v in zip(("min", "median", "max"), stats, strict=True)})
            rows.append(row)
    return pd.DataFrame(rows, columns=SINGLE_VS_ENSEMBLE_COLUMNS)
