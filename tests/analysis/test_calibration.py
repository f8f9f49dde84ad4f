"""Calibration tables: the reliability curve equals sklearn's calibration_curve (uniform bins), with counts and
Wilson intervals; the Brier score equals sklearn's, beside the prevalence-only reference."""

import numpy as np
import pandas as pd
import pytest
from sklearn.calibration import calibration_curve
from statsmodels.stats.proportion import proportion_confint

from sarcomri.analysis.calibration import calibration_tables


def _likelihood() -> pd.DataFrame:
    rng = np.random.default_rng(4)
    p = np.concatenate([rng.beta(2, 5, 40), rng.beta(5, 2, 20), [0.2, 0.4, 1.0, 0.0]])  # edges land in bins
    y = (rng.uniform(size=p.size) < p).astype(int)
    return pd.concat([pd.DataFrame({"sequence": "T2", "label": y, "likelihood": p}),
                      pd.DataFrame({"sequence": "ADC", "label": y[::-1], "likelihood": p})], ignore_index=True)


def test_the_reliability_curve_is_sklearns_with_counts_and_intervals():
    frame = _likelihood()
    tables = calibration_tables(frame)
    for seq, part in frame.groupby("sequence"):
        mine = tables["calibration"][tables["calibration"]["sequence"] == seq]
        observed, predicted = calibration_curve(part["label"], part["likelihood"], n_bins=5, strategy="uniform")
        np.testing.assert_allclose(mine["observed"], observed)
        np.testing.assert_allclose(mine["mean_likelihood"], predicted)
        assert mine["n"].sum() == len(part)
        row = mine.iloc[0]
        k = round(row["observed"] * row["n"])
        assert (row["lower"], row["upper"]) == pytest.approx(proportion_confint(k, row["n"], method="wilson"))


def test_the_brier_score_is_sklearns_beside_the_prevalence_reference():
    from sklearn.metrics import brier_score_loss

    frame = _likelihood()
    brier = calibration_tables(frame)["brier"].set_index("sequence")
    t2 = frame[frame["sequence"] == "T2"]
    assert brier.loc["T2", "brier"] == pytest.approx(brier_score_loss(t2["label"], t2["likelihood"]))
    prevalence = t2["label"].mean()
    assert brier.loc["T2", "brier_prevalence"] == pytest.approx(prevalence * (1 - prevalence))
    assert brier.loc["T2", "n"] == len(t2)
