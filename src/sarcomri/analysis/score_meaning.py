"""What a patient's summed vote score means in the study it came from (the patient page of ``sarcomri predict``).

From the study's own out-of-fold scores (``tables/summed_score.csv``: one row per patient, the summed +1/-1
votes of its sequences and its label):

* per score level, how many of the study's patients scored it and how many of them had the positive class,
  with the observed rate and its 95% Wilson score interval (:func:`sarcomri.stats.diagnostic.proportion_ci`),
  e.g. "3 of 36 patients scoring -2 were sarcomas, 8% (3-22%)";
* sensitivity, specificity, PPV and NPV of the study's call (score at or above the threshold) with Wilson
  intervals (:func:`sarcomri.stats.diagnostic.diagnostic_metrics`);
* the range the score can take (-n..+n for n voting sequences) and the range the study's patients took.

The threshold was chosen on these same patients (to maximise SS-Avg), so the metrics at it are optimistic for
a new patient; :data:`CAVEAT` says so wherever they are shown.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from sarcomri.analysis.voting import summed_call
from sarcomri.errors import InputError
from sarcomri.stats.diagnostic import ConfusionMatrix, diagnostic_metrics, proportion_ci

CAVEAT = ("The threshold was chosen on the study's own patients, so the sensitivity, specificity and predictive "
          "values at it are optimistic for a new patient; the rates per score are out-of-fold (each patient was "
          "scored by models that did not train on it), and PPV and NPV hold only at the study's prevalence.")


@dataclass(frozen=True)
class ScoreLevel:
    """The study's patients with one summed score: how many, how many positive, the rate and its 95% CI."""

    score: int
    patients: int
    positives: int
    rate: float
    lower: float
    upper: float


@dataclass(frozen=True)
class ScoreMeaning:
    """The study's score levels, its call at the threshold and the score's ranges."""

    levels: list[ScoreLevel]
    threshold: float
    at_threshold: dict[str, dict[str, Any]]  # sensitivity, specificity, ppv, npv: estimate, lower, upper, n/N
    possible: tuple[int, int]  # the range the score can take
    observed: tuple[int, int]  # the range the study's patients took
    patients: int
    positives: int

    def level(self, score: int) -> ScoreLevel | None:
        """The level of ``score``, None when no study patient had it."""
        return next((lv for lv in self.levels if lv.score == score), None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (``result.json``'s ``score_meaning``)."""
        out = asdict(self)
        out["possible"], out["observed"] = list(self.possible), list(self.observed)
        out["caveat"] = CAVEAT
        return out


def score_meaning(scores: pd.DataFrame, threshold: float, voting_sequences: int) -> ScoreMeaning:
    """The meaning of each summed score from the study's ``scores`` (columns ``summed_score`` and ``label``, 1 the
    positive class) at the study's ``threshold``; ``voting_sequences``: how many sequences vote."""
    missing = {"summed_score", "label"} - set(scores.columns)
    if missing:
        raise InputError(None, f"the study's summed scores lack the column(s) {sorted(missing)}")
    frame = scores[["summed_score", "label"]].dropna()
    if frame.empty:
        raise InputError(None, "the study has no summed scores to say what a score means")
    score = frame["summed_score"].to_numpy()
    if not np.all(score == np.round(score)):
        raise InputError(None, "summed scores must be whole numbers (sums of +1/-1 votes)")
    label = frame["label"].astype(int).to_numpy()
    if not set(np.unique(label)) <= {0, 1}:
        raise InputError(None, "labels must be 0 (negative) or 1 (positive)")
    levels = []
    for value in np.unique(score):
        at = score == value
        n, k = int(at.sum()), int(label[at].sum())
        lower, upper = proportion_ci(k, n)
        levels.append(ScoreLevel(int(value), n, k, k / n, lower, upper))
    call, pos = summed_call(score, threshold), label == 1
    result = diagnostic_metrics(ConfusionMatrix(tp=int((call & pos).sum()), fp=int((call & ~pos).sum()),
                                                fn=int((~call & pos).sum()), tn=int((~call & ~pos).sum())))
    at_threshold = {m: {"estimate": e.estimate, "lower": e.lower, "upper": e.upper, "numerator": e.numerator,
                        "denominator": e.denominator}
                    for m, e in (("sensitivity", result.sensitivity), ("specificity", result.specificity),
                                 ("ppv", result.ppv), ("npv", result.npv))}
    return ScoreMeaning(levels, float(threshold), at_threshold, (-voting_sequences, voting_sequences),
                        (int(score.min()), int(score.max())), len(frame), int(label.sum()))
