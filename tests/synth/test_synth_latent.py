"""The latent model against the published figures, and the ideal observer's correctness and difficulty."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from sarcomri.synth import latent
from sarcomri.synth.tasks import TASKS, is_positive

N = 40_000  # per class: binomial SE of a 33% share is 0.0024


def _sample(task: str, positive: bool, n: int = N, seed: int = 7) -> dict[str, np.ndarray]:
    return latent.draw_class(latent.model_for(task), positive, n, np.random.default_rng(seed))


def _share(draw, model_cls, pred) -> float:
    return float(np.mean([pred(model_cls.components[k]) for k in draw["component"]]))


def test_leiomyoma_mix_matches_published_shares():
    neg = latent.model_for("sarcoma").negative
    d = _sample("sarcoma", False)
    # 33% degenerated, 5.5% irregular margins, 4.5% both (SYNTHETIC.md); 4 SE tolerance
    assert _share(d, neg, lambda c: c.attrs["degenerated"]) == pytest.approx(0.33, abs=0.01)
    assert _share(d, neg, lambda c: c.attrs["irregular_margin"]) == pytest.approx(0.055, abs=0.005)
    assert _share(d, neg, lambda c: c.attrs["degenerated"] and c.attrs["irregular_margin"]) == pytest.approx(
        0.045, abs=0.005)


def test_leiomyosarcoma_is_57_percent_of_sarcomas():
    pos = latent.model_for("sarcoma").positive
    d = _sample("sarcoma", True)
    assert _share(d, pos, lambda c: c.attrs["histology"] == "leiomyosarcoma") == pytest.approx(0.57, abs=0.01)


def test_sarcoma_looks_malignant_and_degenerated_leiomyoma_sits_between():
    pos, neg = _sample("sarcoma", True), _sample("sarcoma", False)
    degen = np.isin(neg["component"], [2, 3])  # LEIOMYOMA_MIX order: ordinary, ordinary+irregular, degenerated...
    ordinary = ~degen
    for name, sign in (("diameter_mm", 1), ("margin", 1), ("t2_ratio", 1), ("heterogeneity", 1), ("necrosis", 1),
                       ("adc", -1)):
        s, o, g = (np.median(pos[name]), np.median(neg[name][ordinary]), np.median(neg[name][degen]))
        assert sign * (s - o) > 0, name
        if name in ("t2_ratio", "heterogeneity", "necrosis"):
            assert sign * (g - o) > 0 and sign * (s - g) > 0, name  # the mimic sits between
    # overlap: no single latent variable separates the classes well
    for name in latent.model_for("sarcoma").latents:
        auc = roc_auc_score(np.r_[np.ones(N), np.zeros(N)], np.r_[pos[name], neg[name]])
        assert 0.2 < auc < 0.85, name


def test_carcinosarcoma_enhancement_cut_reproduces_published_sens_spec():
    pos, neg = _sample("carcinosarcoma", True), _sample("carcinosarcoma", False)
    # enhancement integral ratio >= 0.67: sensitivity 76%, specificity 84%, AUC 0.83 (SYNTHETIC.md)
    assert np.mean(pos["enhancement"] >= 0.67) == pytest.approx(0.76, abs=0.01)
    assert np.mean(neg["enhancement"] < 0.67) == pytest.approx(0.84, abs=0.01)
    auc = roc_auc_score(np.r_[np.ones(N), np.zeros(N)], np.r_[pos["enhancement"], neg["enhancement"]])
    assert auc == pytest.approx(0.83, abs=0.01)


def test_carcinosarcoma_adc_equal_overall_but_above_high_grade_carcinoma():
    pos, neg = _sample("carcinosarcoma", True), _sample("carcinosarcoma", False)
    assert abs(pos["adc"].mean() - neg["adc"].mean()) < 0.03
    high_grade = neg["component"] >= 1  # grade 2 and 3
    assert pos["adc"].mean() - neg["adc"][high_grade].mean() > 0.04
    assert 0.12 <= pos["exophytic"].mean() <= 0.75  # 12 to 75% of carcinosarcomas in published series


@pytest.mark.parametrize("task", ["sarcoma", "carcinosarcoma"])
def test_ideal_observer_auc_in_the_published_band(task):
    auc = latent.ideal_observer(task).auc
    assert 0.90 <= auc <= 0.95


@pytest.mark.parametrize("task", ["sarcoma", "carcinosarcoma"])
def test_likelihood_ratio_is_calibrated(task):
    """With equal class sizes, P(positive | llr) = sigmoid(llr): checks the densities against frequencies."""
    model = latent.model_for(task)
    pos, neg = _sample(task, True, 30_000, 11), _sample(task, False, 30_000, 12)
    llr = np.r_[latent.log_likelihood_ratio(model, pos), latent.log_likelihood_ratio(model, neg)]
    y = np.r_[np.ones(30_000), np.zeros(30_000)]
    bins = np.quantile(llr, np.linspace(0, 1, 11))
    idx = np.clip(np.digitize(llr, bins[1:-1]), 0, 9)
    for b in range(10):
        sel = idx == b
        predicted = np.mean(1 / (1 + np.exp(-llr[sel])))
        observed = y[sel].mean()
        se = np.sqrt(max(observed * (1 - observed), 0.01) / sel.sum())
        assert observed == pytest.approx(predicted, abs=4 * se + 0.01)


def test_ideal_observer_beats_a_fitted_classifier():
    model = latent.model_for("sarcoma")
    train = [_sample("sarcoma", f, 8000, s) for f, s in ((True, 21), (False, 22))]
    test = [_sample("sarcoma", f, 20000, s) for f, s in ((True, 23), (False, 24))]

    def features(d):
        return np.column_stack([np.log(np.clip(d[k], 1e-3, None)) for k in model.latents])

    clf = LogisticRegression(max_iter=2000).fit(np.r_[features(train[0]), features(train[1])],
                                                np.r_[np.ones(8000), np.zeros(8000)])
    y = np.r_[np.ones(20000), np.zeros(20000)]
    fitted = roc_auc_score(y, clf.decision_function(np.r_[features(test[0]), features(test[1])]))
    ideal = roc_auc_score(y, np.r_[latent.log_likelihood_ratio(model, test[0]),
                                   latent.log_likelihood_ratio(model, test[1])])
    assert ideal >= fitted - 0.003
    assert ideal == pytest.approx(latent.ideal_observer("sarcoma").auc, abs=0.006)


def test_class_sequence_has_exact_prevalence_for_any_size():
    task = TASKS["sarcoma"]
    for phase in (0.0, 0.37, 0.99):
        flags = [is_positive(i, task.prevalence, phase) for i in range(263)]
        assert sum(flags) in (62, 63, 64)  # 63 sarcomas of 263
        assert any(flags[:5])  # even five patients hold a positive
