"""The decision rule: per-sequence +1/-1 votes, their sum per patient, the SS-Avg-maximising threshold on the
summed score, and a reader's call on the confidence scale.

The sarcoma study turned each sequence's likelihood into a decision (+1 sarcoma, -1 leiomyoma), summed the
decisions over the sequences a patient has, and chose the threshold on the summed score from the ROC curve
to maximise the mean of sensitivity and specificity (SS-Avg).

Every decision of the package goes through the functions here (analysis, ``predict``, the report):

* :func:`vote`: a sequence's likelihood votes +1 (positive) when it is **at or above** the cut-off, else -1;
  the model's call on one sequence is its vote;
* :func:`summed_call`: the summed score of the votes calls positive when it is **at or above** the threshold;
* :func:`reader_call`: a reader's confidence on the 6-point scale (0 = definitely positive) calls positive when
  it is **at or below** the reader cut (:func:`sarcomri.stats.readers.scale_to_decision`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from sarcomri.stats.readers import CARCINOSARCOMA_SCALE, scale_to_decision

#: The readers' 6-point confidence scale (0 = definitely the positive class, 1 = definitely the negative one).
READER_SCALE = CARCINOSARCOMA_SCALE


def _at_or_above(score: ArrayLike, cut: ArrayLike) -> np.ndarray:
    """The one rule of the model's decisions: a score at or above its cut is a positive call (booleans)."""
    return np.asarray(score, dtype=float) >= np.asarray(cut, dtype=float)


def vote(likelihood: ArrayLike, cutoff: ArrayLike) -> np.ndarray:
    """+1 where a sequence's likelihood is at or above ``cutoff`` (a positive call), else -1 (int8 array;
    a scalar likelihood gives a 0-d array, so ``int(vote(p, c))`` is the vote of one sequence)."""
    return np.where(_at_or_above(likelihood, cutoff), 1, -1).astype(np.int8)


def summed_call(score: ArrayLike, threshold: ArrayLike) -> np.ndarray:
    """True where a patient's summed vote score is at or above ``threshold`` (the study's positive call)."""
    return _at_or_above(score, threshold)


def reader_call(confidence: ArrayLike, cut: float, positive: Any, negative: Any) -> np.ndarray:
    """A reader's class calls: confidence at or below ``cut`` on :data:`READER_SCALE` is ``positive``, above it
    ``negative`` (ratings off the scale are refused)."""
    return scale_to_decision(confidence, cut, positive, negative, READER_SCALE)


def votes(likelihoods: pd.DataFrame, cutoffs: float | dict[str, float] = 0.5) -> pd.DataFrame:
    """Patients x sequences matrix of +1 (likelihood >= cut-off), -1 (below) and 0 (sequence missing).

    ``likelihoods`` has columns sequence, patient_id, likelihood (one row per pair). ``cutoffs`` is one
    value for every sequence or one per sequence.
    """
    cut = likelihoods["sequence"].map(cutoffs) if isinstance(cutoffs, dict) else cutoffs
    if isinstance(cut, pd.Series) and cut.isna().any():
        raise ValueError(f"no cut-off for sequences {sorted(likelihoods.loc[cut.isna(), 'sequence'].unique())}")
    v = vote(likelihoods["likelihood"].to_numpy(), np.asarray(cut, dtype=float))
    table = likelihoods.assign(vote=v).pivot_table(index="patient_id", columns="sequence", values="vote",
                                                   aggfunc="first", fill_value=0)
    return table[list(dict.fromkeys(likelihoods["sequence"]))].astype(np.int8)  # columns in the input's order


def best_integer_threshold(scores: np.ndarray, y: np.ndarray, include: np.ndarray | None = None) -> dict:
    """The threshold t (predict positive when score >= t) maximising SS-Avg, for many score vectors at once.

    ``scores`` is (subsets, patients) of integers, ``y`` (patients,) of 0/1, ``include`` (subsets, patients)
    of booleans (patients counted for that subset). Candidate thresholds are every integer from min - 0 to
    max + 1. Ties in SS-Avg go to the threshold with the higher sensitivity, then the lower threshold.
    Returns arrays: threshold, ss_avg, sensitivity, specificity, accuracy, n_pos, n_neg.
    """
    scores = np.atleast_2d(np.asarray(scores, dtype=np.int16))
    y = np.asarray(y).astype(bool)
    include = np.ones_like(scores, dtype=bool) if include is None else np.atleast_2d(include)
    lo, hi = int(scores.min()), int(scores.max())
    values = np.arange(lo, hi + 1)
    pos_w, neg_w = (include & y).astype(np.float32), (include & ~y).astype(np.float32)
    # counts of positives / negatives at each score value: (subsets, values)
    pos_at = np.stack([((scores == v) * pos_w).sum(1) for v in values], axis=1)
    neg_at = np.stack([((scores == v) * neg_w).sum(1) for v in values], axis=1)
    n_pos, n_neg = pos_w.sum(1), neg_w.sum(1)
    # predicted positive when score >= t: candidates t in values and hi + 1 (nothing positive)
    tp = np.concatenate([np.cumsum(pos_at[:, ::-1], axis=1)[:, ::-1], np.zeros((len(scores), 1))], axis=1)
    fp = np.concatenate([np.cumsum(neg_at[:, ::-1], axis=1)[:, ::-1], np.zeros((len(scores), 1))], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        sens = tp / n_pos[:, None]
        spec = (n_neg[:, None] - fp) / n_neg[:, None]
    ss = (sens + spec) / 2
    ss_key = np.where(np.isnan(ss), -np.inf, np.round(ss, 12))
    best_ss = ss_key.max(axis=1, keepdims=True)
    sens_key = np.where(ss_key == best_ss, np.nan_to_num(sens, nan=-1), -np.inf)
    best = np.argmax(sens_key, axis=1)  # first (lowest threshold) among ties of the highest sensitivity
    rows = np.arange(len(scores))
    thr = np.append(values, hi + 1)[best]
    tp_b, fp_b = tp[rows, best], fp[rows, best]
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = (tp_b + n_neg - fp_b) / (n_pos + n_neg)
    return {"threshold": thr, "ss_avg": ss[rows, best], "sensitivity": sens[rows, best],
            "specificity": spec[rows, best], "accuracy": acc, "n_pos": n_pos.astype(int), "n_neg": n_neg.astype(int)}


def summed_score(vote_table: pd.DataFrame, sequences: list[str] | None = None) -> pd.Series:
    """The summed votes per patient over ``sequences`` (all columns by default)."""
    cols = list(vote_table.columns) if sequences is None else sequences
    return vote_table[cols].sum(axis=1).astype(int)
