"""Slice-to-patient aggregation and leave-one-out ensembles, checked against hand computations."""

import numpy as np
import pandas as pd
import pytest

from sarcomri.infer.aggregate import loo_ensembles, mean_likelihood, patient_predictions


def _preds():
    rows = []
    # 3 repeats x 2 folds; patients A, B tested in fold 0, C in fold 1; each has 3 slices
    p = {("A", 0): [0.9, 0.7, 0.8], ("A", 1): [0.6, 0.6, 0.6], ("A", 2): [0.3, 0.5, 0.4],
         ("B", 0): [0.1, 0.2, 0.3], ("B", 1): [0.2, 0.2, 0.2], ("B", 2): [0.5, 0.5, 0.5],
         ("C", 0): [0.5, 0.6, 0.7], ("C", 1): [0.9, 0.9, 0.9], ("C", 2): [0.8, 0.8, 0.8]}
    for (pid, r), probs in p.items():
        fold = 0 if pid in "AB" else 1
        for s, pr in enumerate(probs):
            rows.append(dict(model=f"T2axi/fold{fold}-rep{r}", sequence="T2axi", repeat=r, fold=fold, split="test",
                             patient_id=pid, slice_index=s + 10, central=s == 1, label=int(pid != "B"), p_positive=pr))
    return pd.DataFrame(rows)


def test_patient_mean_and_central():
    pp = patient_predictions(_preds(), "mean").set_index(["patient_id", "repeat"])
    assert pp.loc[("A", 0), "p_positive"] == pytest.approx(0.8)
    assert pp.loc[("C", 0), "n_slices"] == 3
    pc = patient_predictions(_preds(), "central").set_index(["patient_id", "repeat"])
    assert pc.loc[("A", 0), "p_positive"] == pytest.approx(0.7) and pc.loc[("A", 0), "n_slices"] == 1


def test_loo_ensembles_average_the_other_repeats():
    pp = patient_predictions(_preds(), "mean")
    ens = loo_ensembles(pp).set_index(["patient_id", "ensemble"])
    # A's per-repeat means: 0.8, 0.6, 0.4
    assert ens.loc[("A", 0), "likelihood"] == pytest.approx((0.6 + 0.4) / 2)
    assert ens.loc[("A", 1), "likelihood"] == pytest.approx((0.8 + 0.4) / 2)
    assert ens.loc[("A", 2), "likelihood"] == pytest.approx((0.8 + 0.6) / 2)
    assert (ens["n_models"] == 2).all() and len(ens) == 9
    mean = mean_likelihood(loo_ensembles(pp)).set_index("patient_id")
    assert mean.loc["A", "likelihood"] == pytest.approx(0.6)  # mean of LOO means = mean of repeats


def test_loo_with_single_repeat_is_the_model_and_duplicates_are_refused():
    pp = patient_predictions(_preds(), "mean")
    one = loo_ensembles(pp[pp.repeat == 0])
    assert one.set_index("patient_id").loc["A", "likelihood"] == pytest.approx(0.8)
    dup = pd.concat([pp, pp[pp.patient_id == "A"]])
    with pytest.raises(ValueError, match="two test predictions"):
        loo_ensembles(dup)


def test_loo_skips_a_repeat_missing_the_patient():
    pp = patient_predictions(_preds(), "mean")
    pp = pp[~((pp.patient_id == "C") & (pp.repeat == 2))]
    ens = loo_ensembles(pp).set_index(["patient_id", "ensemble"])
    assert ens.loc[("C", 0), "likelihood"] == pytest.approx(0.9) and ens.loc[("C", 0), "n_models"] == 1
    assert ens.loc[("C", 1), "likelihood"] == pytest.approx(0.6)
    assert np.isclose(ens.loc[("C", 0), "likelihood"], 0.9)
