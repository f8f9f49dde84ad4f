"""Confusion-matrix metrics and their CIs against published values and scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score
from sklearn.metrics import confusion_matrix as sk_confusion_matrix

from sarcomri.errors import InputError
from sarcomri.stats.diagnostic import (
    ConfusionMatrix,
    confusion_at_threshold,
    confusion_matrix,
    diagnostic_at_threshold,
    diagnostic_from_labels,
    diagnostic_metrics,
    proportion_ci,
)


def _cases(tp: int, fn: int, tn: int, fp: int, pos: str = "EC", neg: str = "CS"):
    truth = [pos] * (tp + fn) + [neg] * (tn + fp)
    pred = [pos] * tp + [neg] * fn + [neg] * tn + [pos] * fp
    return truth, pred


def test_carcinosarcoma_t2wi_cnn_point_estimates():
    # Carcinosarcoma study, Table 3 -> Table 4, T2WI CNN, EC positive: 52/56 EC, 7/10 CS correct.
    truth, pred = _cases(tp=52, fn=4, tn=7, fp=3)
    res = diagnostic_from_labels(truth, pred, positive="EC")
    assert res.confusion == ConfusionMatrix(tp=52, fp=3, fn=4, tn=7)
    assert round(res.sensitivity.estimate, 2) == 0.93
    assert round(res.specificity.estimate, 2) == 0.70
    assert round(res.accuracy.estimate, 2) == 0.89
    assert (res.sensitivity.numerator, res.sensitivity.denominator) == (52, 56)
    assert (res.accuracy.numerator, res.accuracy.denominator) == (59, 66)
    assert res.ppv.estimate == pytest.approx(52 / 55)
    assert res.npv.estimate == pytest.approx(7 / 11)


def test_positive_class_is_honoured_not_guessed():
    truth, pred = _cases(tp=52, fn=4, tn=7, fp=3)
    res = diagnostic_from_labels(truth, pred, positive="CS")
    assert res.sensitivity.estimate == pytest.approx(7 / 10)
    assert res.specificity.estimate == pytest.approx(52 / 56)


@pytest.mark.parametrize(
    "x,n,wilson,exact",
    [  # Newcombe (1998) Stat Med 17:857, Table II
        (81, 263, (0.2553, 0.3662), (0.2527, 0.3676)),
        (15, 148, (0.0624, 0.1605), (0.0578, 0.1617)),
        (0, 20, (0.0, 0.1611), (0.0, 0.1684)),
        (1, 29, (0.0061, 0.1718), (0.0009, 0.1776)),
    ],
)
def test_proportion_ci_matches_newcombe(x, n, wilson, exact):
    assert proportion_ci(x, n) == pytest.approx(wilson, abs=5e-5)
    assert proportion_ci(x, n, "clopper-pearson") == pytest.approx(exact, abs=5e-5)


@pytest.mark.parametrize(
    "a,m,b,n,ci",
    [  # Newcombe (1998) Stat Med 17:873, method 10 (hybrid score) for the difference a/m - b/n
        (56, 70, 48, 80, (0.0524, 0.3339)),
        (9, 10, 3, 10, (0.1705, 0.8090)),
    ],
)
def test_ss_avg_interval_is_newcombe_for_youden(a, m, b, n, ci):
    # sensitivity a/m, false-positive rate b/n: Youden J = a/m - b/n and SS-Avg = (J + 1) / 2.
    res = diagnostic_metrics(ConfusionMatrix(tp=a, fn=m - a, fp=b, tn=n - b))
    assert res.ss_avg.estimate == pytest.approx((a / m + 1 - b / n) / 2)
    assert 2 * res.ss_avg.lower - 1 == pytest.approx(ci[0], abs=5e-5)
    assert 2 * res.ss_avg.upper - 1 == pytest.approx(ci[1], abs=5e-5)
    assert res.ss_avg.numerator is None


def test_against_sklearn_on_random_labels():
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 2, 200)
    pred = np.where(rng.random(200) < 0.8, truth, 1 - truth)
    cm = confusion_matrix(truth, pred, positive=1)
    tn, fp, fn, tp = sk_confusion_matrix(truth, pred, labels=[0, 1]).ravel()
    assert (cm.tp, cm.fp, cm.fn, cm.tn) == (tp, fp, fn, tn)
    res = diagnostic_metrics(cm)
    assert res.ss_avg.estimate == pytest.approx(balanced_accuracy_score(truth, pred))
    frame = res.to_frame()
    assert list(frame.index) == ["sensitivity", "specificity", "accuracy", "ppv", "npv", "ss_avg"]
    assert (frame["lower"] <= frame["estimate"]).all() and (frame["estimate"] <= frame["upper"]).all()


def test_threshold_rule_follows_proc():
    truth = [0, 0, 1, 1, 1]
    scores = [0.1, 0.5, 0.5, 0.7, 0.2]
    # '<': positive when score >= threshold
    assert confusion_at_threshold(truth, scores, 1, 0.5) == ConfusionMatrix(tp=2, fp=1, fn=1, tn=1)
    # '>': positive when score <= threshold
    assert confusion_at_threshold(truth, scores, 1, 0.2, direction=">") == ConfusionMatrix(1, 1, 2, 1)
    res = diagnostic_at_threshold(truth, scores, 1, 0.5, method="clopper-pearson")
    assert res.method == "clopper-pearson"
    assert res.to_dict()["sensitivity"]["numerator"] == 2


def test_empty_denominator_gives_nan_not_error():
    res = diagnostic_metrics(ConfusionMatrix(tp=0, fp=0, fn=5, tn=5))
    assert np.isnan(res.ppv.estimate) and np.isnan(res.ppv.lower)
    assert res.to_dict()["ppv"]["estimate"] is None


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(InputError, match="does not occur"):
        confusion_matrix([0, 1, 1], [0, 1, 0], positive="1")
    with pytest.raises(InputError, match="3 classes"):
        confusion_matrix([0, 1, 2], [0, 1, 0], positive=1)
    with pytest.raises(InputError, match="not found in truth"):
        confusion_matrix(["EC", "CS"], ["EC", "cs"], positive="EC")
    with pytest.raises(InputError, match="non-negative"):
        ConfusionMatrix(tp=-1, fp=0, fn=0, tn=0)
    with pytest.raises(InputError, match="CI method"):
        proportion_ci(1, 2, "wald")
    with pytest.raises(InputError, match="direction"):
        confusion_at_threshold([0, 1], [0.1, 0.2], 1, 0.5, direction="auto")


def test_subgroup_with_one_true_class_accepts_the_other_label():
    cm = confusion_matrix(["EC", "EC", "EC"], ["EC", "CS", "EC"], positive="EC")
    assert cm == ConfusionMatrix(tp=2, fp=0, fn=1, tn=0)
