"""Per-sequence tables and the clinical combined model."""

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import PredefinedSplit, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sarcomri.analysis.clinical import combined_predictions
from sarcomri.analysis.scoring import per_ensemble_table, per_sequence_table, summarise_ensembles
from sarcomri.errors import SarcomriError


def _lik(seed=0, n=80):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    rows = []
    for seq, sep in (("T2axi", 0.9), ("ADC", 0.3)):
        p = 1 / (1 + np.exp(-(rng.normal(0, 1, n) + sep * (2 * y - 1))))
        rows.append(pd.DataFrame({"sequence": seq, "patient_id": [f"P{i}" for i in range(n)], "label": y,
                                  "likelihood": p}))
    return pd.concat(rows, ignore_index=True)


def test_per_sequence_table_matches_sklearn_and_counts():
    lik = _lik()
    t = per_sequence_table(lik).set_index("sequence")
    for seq, g in lik.groupby("sequence"):
        assert t.loc[seq, "auc"] == pytest.approx(roc_auc_score(g.label, g.likelihood))
        pred = g.likelihood >= 0.5
        assert t.loc[seq, "tp"] == int((pred & (g.label == 1)).sum())
        assert t.loc[seq, "sensitivity"] == pytest.approx((pred & (g.label == 1)).sum() / g.label.sum())
        assert t.loc[seq, "auc_lower"] < t.loc[seq, "auc"] <= t.loc[seq, "auc_upper"]
    assert t.loc["T2axi", "auc"] > t.loc["ADC", "auc"]
    opt = per_sequence_table(lik, cutoff=None).set_index("sequence")
    assert (opt["cutoff"] == opt["optimal_cutoff"]).all()
    assert (opt["ss_avg"] >= t["ss_avg"] - 1e-12).all()


def test_ensemble_summary_mean_and_sd():
    a, b = _lik(1).assign(ensemble=0), _lik(2).assign(ensemble=1)
    per = per_ensemble_table(pd.concat([a, b]))
    s = summarise_ensembles(per).set_index("sequence")
    aucs = per[per.sequence == "T2axi"].auc
    assert s.loc["T2axi", "auc_mean"] == pytest.approx(aucs.mean())
    assert s.loc["T2axi", "auc_std"] == pytest.approx(aucs.std()) and s.loc["T2axi", "n_ensembles"] == 2


def test_combined_model_is_out_of_fold_logistic_regression():
    rng = np.random.default_rng(3)
    n = 90
    ids = [f"P{i}" for i in range(n)]
    y = pd.Series((rng.random(n) < 0.4).astype(int), index=ids)
    lik = pd.Series(np.clip(0.5 + 0.2 * (2 * y - 1) + rng.normal(0, 0.2, n), 0, 1), index=ids)
    clin = pd.DataFrame({"age": rng.normal(55, 8, n) + 5 * y, "center": rng.choice(["A", "B", "C"], n)}, index=ids)
    folds = pd.Series(np.arange(n) % 3, index=ids)
    got = combined_predictions(lik, clin, y, folds, ["age", "center"])
    x = pd.get_dummies(clin[["age", "center"]], drop_first=True).astype(float)
    x.insert(0, "image_likelihood", lik)
    ref = cross_val_predict(make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)), x.to_numpy(),
                            y.to_numpy(), cv=PredefinedSplit(folds.to_numpy()), method="predict_proba")[:, 1]
    assert np.allclose(got.to_numpy(), ref)
    clin.loc["P0", "age"] = np.nan
    with pytest.raises(SarcomriError, match="missing values"):
        combined_predictions(lik, clin, y, folds, ["age"])


def test_combined_likelihood_is_the_mean_over_a_patients_sequences():
    import pandas as pd

    from sarcomri.analysis.scoring import COMBINED, combined_likelihood, combined_table

    lik = pd.DataFrame({"sequence": ["A", "B", "A", "A", "B", "B"], "patient_id": ["p1", "p1", "p2", "p3", "p3", "p4"],
                        "label": [1, 1, 0, 1, 1, 0], "likelihood": [0.9, 0.5, 0.2, 0.4, 0.6, 0.1]})
    both = combined_likelihood(lik).set_index("patient_id")
    assert both.loc["p1", "likelihood"] == pytest.approx(0.7) and both.loc["p2", "n_sequences"] == 1
    row = combined_table(lik).iloc[0]
    assert row["sequence"] == COMBINED and row["n"] == 4 and row["auc"] == pytest.approx(1.0)
