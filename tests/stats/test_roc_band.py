"""The ROC confidence band: its point curve is the empirical ROC's best sensitivity at each specificity (sklearn's
roc_curve), and its stratified-bootstrap intervals cover the true binormal sensitivity about 95% of the time."""

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import roc_curve

from sarcomri.errors import InputError
from sarcomri.stats.roc_band import sensitivity_at, sensitivity_band


def test_the_curve_is_the_empirical_rocs_best_point_at_each_specificity():
    rng = np.random.default_rng(1)
    truth = np.r_[np.ones(30), np.zeros(45)]
    scores = np.round(np.r_[rng.normal(1.0, 1, 30), rng.normal(0, 1, 45)], 1)  # ties included
    band = sensitivity_band(truth, scores, 1, n_boot=200)
    fpr, tpr, _ = roc_curve(truth, scores)
    for s, sens in zip(band["specificity"], band["sensitivity"], strict=True):
        assert sens == pytest.approx(tpr[fpr <= 1 - s + 1e-12].max()), s
    assert (band["lower"] <= band["sensitivity"] + 1e-12).all() and (band["sensitivity"] <= band["upper"] + 1e-12).all()
    assert band["sensitivity"].iloc[0] == 1.0 and band["specificity"].iloc[-1] == 1.0


def test_the_band_covers_the_true_binormal_curve():
    rng = np.random.default_rng(7)
    mu, s = 1.2, 0.8
    true = 1 - norm.cdf(norm.ppf(s) - mu)
    covered = 0
    runs = 150
    for i in range(runs):
        truth = np.r_[np.ones(60), np.zeros(60)]
        scores = np.r_[rng.normal(mu, 1, 60), rng.normal(0, 1, 60)]
        band = sensitivity_band(truth, scores, 1, specificities=np.array([s]), n_boot=400, seed=i)
        covered += band["lower"].iloc[0] <= true <= band["upper"].iloc[0]
    assert 0.85 <= covered / runs <= 1.0


def test_sensitivity_at_counts_ties_as_negative_and_refuses_small_bootstraps():
    cases, controls = np.array([[1.0, 2.0, 3.0]]), np.array([[0.0, 2.0]])
    # specificity 0.5: above the lowest control (0.0): all cases; 1.0: above 2.0: only the case at 3.0
    np.testing.assert_allclose(sensitivity_at(cases, controls, np.array([0.0, 0.5, 1.0])), [[1.0, 1.0, 1 / 3]])
    with pytest.raises(InputError, match="at least 100"):
        sensitivity_band([1, 0], [1.0, 0.0], 1, n_boot=10)


def test_the_model_band_table_and_the_roc_figure_draw_it():
    import pandas as pd

    from sarcomri.analysis.curves import band_table
    from sarcomri.report.figures import Curve, roc_figure

    rng = np.random.default_rng(3)
    truth = np.r_[np.ones(20), np.zeros(30)]
    reads = pd.DataFrame({"case": range(50), "sequence": "T2", "interpreter": "CNN", "truth": truth,
                          "score": np.r_[rng.normal(1, 1, 20), rng.normal(0, 1, 30)]})
    reads = pd.concat([reads, reads.assign(interpreter="reader1", score=rng.normal(size=50))], ignore_index=True)
    band = band_table(reads, 1)
    direct = sensitivity_band(truth, reads.loc[reads["interpreter"] == "CNN", "score"], 1)
    np.testing.assert_allclose(band[["sensitivity", "lower", "upper"]], direct[["sensitivity", "lower", "upper"]])
    assert set(band["sequence"]) == {"T2"}  # the model's band only
    model = Curve("CNN", np.array([0, 0.5, 1]), np.array([0, 0.8, 1]), auc=0.8,
                  band=(1 - band["specificity"].to_numpy(), band["lower"].to_numpy(), band["upper"].to_numpy()))
    fig = roc_figure("T2", model)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "CNN 95% CI (bootstrap)" in labels and fig.axes[0].collections  # the filled band
