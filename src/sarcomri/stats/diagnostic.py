"""Diagnostic accuracy from a 2x2 confusion matrix: sensitivity, specificity, accuracy, PPV, NPV, SS-Avg.

Every proportion comes with a two-sided confidence interval from :func:`statsmodels.stats.proportion.
proportion_confint`: Wilson score by default, Clopper-Pearson ("exact") on request.

SS-Avg (the sarcoma studies' name) is the mean of sensitivity and specificity, i.e. balanced accuracy
(``sklearn.metrics.balanced_accuracy_score``). It is not a single binomial proportion, so its interval is
the MOVER interval (Newcombe 1998, method 10; Zou & Donner 2008) built from the sensitivity and specificity
intervals of the chosen method: with Wilson limits it equals Newcombe's hybrid score interval for Youden's
J = sens + spec - 1 mapped to (J + 1) / 2. Its ``numerator`` and ``denominator`` are None.

The positive class is always explicit: pass ``positive``; nothing is guessed from the data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from sarcomri.errors import InputError
from sarcomri.stats._checks import binary_truth, check_direction, finite_scores, shown

CI_METHODS = {"wilson": "wilson", "clopper-pearson": "beta"}
METRICS = ("sensitivity", "specificity", "accuracy", "ppv", "npv", "ss_avg")


@dataclass(frozen=True)
class ConfusionMatrix:
    """Counts of a binary decision against the truth: true/false positives and negatives."""

    tp: int
    fp: int
    fn: int
    tn: int

    def __post_init__(self) -> None:
        for name in ("tp", "fp", "fn", "tn"):
            value = getattr(self, name)
            if int(value) != value or value < 0:
                raise InputError(None, f"{name} must be a non-negative whole number, not {shown(value)}")
            object.__setattr__(self, name, int(value))

    @property
    def positives(self) -> int:
        """Cases whose truth is the positive class (TP + FN)."""
        return self.tp + self.fn

    @property
    def negatives(self) -> int:
        """Cases whose truth is the negative class (TN + FP)."""
        return self.tn + self.fp

    @property
    def n(self) -> int:
        """All cases."""
        return self.tp + self.fp + self.fn + self.tn


@dataclass(frozen=True)
class Estimate:
    """One metric: point estimate, CI bounds and (for proportions) numerator / denominator."""

    metric: str
    estimate: float
    lower: float
    upper: float
    numerator: int | None
    denominator: int | None


@dataclass(frozen=True)
class DiagnosticResult:
    """Sensitivity, specificity, accuracy, PPV, NPV and SS-Avg of one confusion matrix, with CIs."""

    confusion: ConfusionMatrix
    method: str
    alpha: float
    sensitivity: Estimate
    specificity: Estimate
    accuracy: Estimate
    ppv: Estimate
    npv: Estimate
    ss_avg: Estimate

    def estimates(self) -> list[Estimate]:
        """The six metrics in the order of :data:`METRICS`."""
        return [getattr(self, m) for m in METRICS]

    def to_frame(self) -> pd.DataFrame:
        """One row per metric: estimate, lower, upper, numerator, denominator (index: metric)."""
        frame = pd.DataFrame([asdict(e) for e in self.estimates()]).set_index("metric")
        return frame.astype({"numerator": "Int64", "denominator": "Int64"})

    def to_row(self) -> dict[str, Any]:
        """Flat dict for one table row: tp, fp, fn, tn, then <metric>, <metric>_lower, <metric>_upper."""
        row: dict[str, Any] = asdict(self.confusion)
        for e in self.estimates():
            row.update({e.metric: e.estimate, f"{e.metric}_lower": e.lower, f"{e.metric}_upper": e.upper})
        return row

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: the counts, the CI method and one entry per metric."""
        out: dict[str, Any] = {"confusion": asdict(self.confusion), "ci_method": self.method,
                               "confidence": 1 - self.alpha}
        for e in self.estimates():
            out[e.metric] = {k: _nan_to_none(v) for k, v in asdict(e).items() if k != "metric"}
        return out


def _nan_to_none(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def proportion_ci(numerator: int, denominator: int, method: str = "wilson",
                  alpha: float = 0.05) -> tuple[float, float]:
    """Two-sided CI of ``numerator / denominator``: 'wilson' (default) or 'clopper-pearson'.

    An empty denominator gives (nan, nan).
    """
    if method not in CI_METHODS:
        raise InputError(None, f"CI method must be one of {', '.join(CI_METHODS)}, not {method!r}")
    if denominator == 0:
        return math.nan, math.nan
    from statsmodels.stats.proportion import proportion_confint  # here: importing statsmodels takes 0.7 s

    lower, upper = proportion_confint(numerator, denominator, alpha=alpha, method=CI_METHODS[method])
    return float(lower), float(upper)


def _proportion(metric: str, num: int, den: int, method: str, alpha: float) -> Estimate:
    lower, upper = proportion_ci(num, den, method, alpha)
    return Estimate(metric, num / den if den else math.nan, lower, upper, num, den)


def _mover_mean(a: Estimate, b: Estimate) -> tuple[float, float, float]:
    """Mean of two independent proportions with its MOVER interval (Zou & Donner 2008)."""
    est = (a.estimate + b.estimate) / 2
    lower = est - math.hypot(a.estimate - a.lower, b.estimate - b.lower) / 2
    upper = est + math.hypot(a.upper - a.estimate, b.upper - b.estimate) / 2
    return est, lower, upper


def diagnostic_metrics(confusion: ConfusionMatrix, method: str = "wilson",
                       alpha: float = 0.05) -> DiagnosticResult:
    """All six metrics of a confusion matrix with (1 - alpha) CIs by ``method`` ('wilson' or 'clopper-pearson').

    sensitivity = TP/(TP+FN), specificity = TN/(TN+FP), accuracy = (TP+TN)/N, PPV = TP/(TP+FP),
    NPV = TN/(TN+FN), SS-Avg = (sensitivity + specificity)/2 with a MOVER interval.
    """
    c = confusion
    sens = _proportion("sensitivity", c.tp, c.positives, method, alpha)
    spec = _proportion("specificity", c.tn, c.negatives, method, alpha)
    ss = Estimate("ss_avg", *_mover_mean(sens, spec), None, None)
    return DiagnosticResult(
        confusion=c, method=method, alpha=alpha, sensitivity=sens, specificity=spec,
        accuracy=_proportion("accuracy", c.tp + c.tn, c.n, method, alpha),
        ppv=_proportion("ppv", c.tp, c.tp + c.fp, method, alpha),
        npv=_proportion("npv", c.tn, c.tn + c.fn, method, alpha),
        ss_avg=ss,
    )


def confusion_matrix(truth: Sequence[Any] | np.ndarray | pd.Series,
                     predicted: Sequence[Any] | np.ndarray | pd.Series, positive: Any) -> ConfusionMatrix:
    """Confusion matrix of predicted labels against true labels, ``positive`` naming the positive class.

    Both arrays use the same class labels; a predicted label other than ``positive`` counts as negative,
    but a predicted label that is not one of the truth's classes is refused (it is usually a typo), unless
    the truth holds a single class, when one other predicted label is accepted.
    """
    is_pos = binary_truth(truth, positive)
    pred = pd.Series(np.asarray(predicted, dtype=object))
    if len(pred) != len(is_pos):
        raise InputError(None, f"predicted has {len(pred)} values but truth has {len(is_pos)}")
    if pred.isna().any():
        raise InputError(None, "predicted has missing values")
    known = set(pd.unique(pd.Series(np.asarray(truth, dtype=object)))) | {positive}
    unknown = [v for v in pd.unique(pred) if v not in known]
    if len(known) == 1 and len(unknown) == 1:  # a subgroup holding one true class: the other label is fine
        unknown = []
    if unknown:
        raise InputError(None, f"predicted has labels not found in truth: {', '.join(map(shown, unknown))}")
    says_pos = (pred == positive).to_numpy(dtype=bool)
    return ConfusionMatrix(tp=int((is_pos & says_pos).sum()), fp=int((~is_pos & says_pos).sum()),
                           fn=int((is_pos & ~says_pos).sum()), tn=int((~is_pos & ~says_pos).sum()))


def call_positive(scores: np.ndarray, threshold: float, direction: str = "<") -> np.ndarray:
    """Boolean decisions at a cut-off, following pROC: with '<' a case is called positive when
    score >= threshold; with '>' (controls have higher scores) when score <= threshold."""
    check_direction(direction)
    return scores >= threshold if direction == "<" else scores <= threshold


def confusion_at_threshold(truth: Sequence[Any] | np.ndarray | pd.Series,
                           scores: Sequence[float] | np.ndarray | pd.Series, positive: Any,
                           threshold: float, direction: str = "<") -> ConfusionMatrix:
    """Confusion matrix of continuous scores dichotomised at ``threshold`` (see :func:`call_positive`)."""
    is_pos = binary_truth(truth, positive)
    says_pos = call_positive(finite_scores(scores, len(is_pos)), threshold, direction)
    return ConfusionMatrix(tp=int((is_pos & says_pos).sum()), fp=int((~is_pos & says_pos).sum()),
                           fn=int((is_pos & ~says_pos).sum()), tn=int((~is_pos & ~says_pos).sum()))


def diagnostic_from_labels(truth: Sequence[Any] | np.ndarray | pd.Series,
                           predicted: Sequence[Any] | np.ndarray | pd.Series, positive: Any,
                           method: str = "wilson", alpha: float = 0.05) -> DiagnosticResult:
    """Metrics with CIs of predicted labels against true labels."""
    return diagnostic_metrics(confusion_matrix(truth, predicted, positive), method, alpha)


def diagnostic_at_threshold(truth: Sequence[Any] | np.ndarray | pd.Series,
                            scores: Sequence[float] | np.ndarray | pd.Series, positive: Any,
                            threshold: float, direction: str = "<", method: str = "wilson",
                            alpha: float = 0.05) -> DiagnosticResult:
    """Metrics with CIs of scores dichotomised at a fixed cut-off."""
    return diagnostic_metrics(confusion_at_threshold(truth, scores, positive, threshold, direction),
                              method, alpha)
