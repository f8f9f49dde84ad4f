"""Patient-level splits: stratification, reproducibility, nesting and the leakage check."""

import numpy as np
import pandas as pd
import pytest

from sarcomri.cohort import splits as sp


def _patients(n_pos=63, n_neg=200, seed=1):
    rng = np.random.default_rng(seed)
    n = n_pos + n_neg
    return pd.DataFrame(
        {
            "patient_id": [f"P{i:03d}" for i in range(n)],
            "label": ["sarcoma"] * n_pos + ["leiomyoma"] * n_neg,
            "center": rng.choice(["A", "B", "C"], size=n),
        }
    )


def test_kfold_every_patient_tested_once_per_repeat_and_stratified():
    pts = _patients()
    s = sp.kfold(pts, n_folds=6, n_repeats=3, seed=7, val_ratio=0.1)
    sp.check_no_leakage(s)
    assert len(s) == len(pts) * 6 * 3
    test = s[s.role == "test"]
    assert (test.groupby(["repeat", "patient_id"]).size() == 1).all()
    # each test fold holds 63/6 = 10 or 11 sarcomas
    lab = pts.set_index("patient_id")["label"]
    pos_per_fold = test.assign(pos=test.patient_id.map(lab) == "sarcoma").groupby(["repeat", "fold"]).pos.sum()
    assert set(pos_per_fold) <= {10, 11}
    # validation is about 10% of the training patients of each fold
    n_val = s[s.role == "val"].groupby(["repeat", "fold"]).size()
    n_tr = s[s.role == "train"].groupby(["repeat", "fold"]).size()
    assert np.allclose(n_val / (n_val + n_tr), 0.1, atol=0.01)


def test_kfold_reproducible_and_repeats_differ():
    pts = _patients()
    a = sp.kfold(pts, n_folds=6, n_repeats=2, seed=3)
    b = sp.kfold(pts, n_folds=6, n_repeats=2, seed=3)
    pd.testing.assert_frame_equal(a, b)
    t = a[a.role == "test"].set_index(["repeat", "patient_id"]).fold
    assert (t.xs(0).sort_index() != t.xs(1).sort_index()).any()
    c = sp.kfold(pts, n_folds=6, n_repeats=2, seed=4)
    assert not a.equals(c)


def test_kfold_refuses_too_few_positives():
    pts = _patients(n_pos=4, n_neg=30)
    with pytest.raises(sp.SarcomriError, match="rarest class has 4"):
        sp.kfold(pts, n_folds=6)


def test_holdout_five_to_one():
    pts = _patients(n_pos=52, n_neg=279)
    s = sp.holdout(pts, test_ratio=1 / 6, seed=0)
    sp.check_no_leakage(s)
    n_test = (s.role == "test").sum()
    assert n_test == round(331 / 6) or abs(n_test - 331 / 6) < 1
    lab = pts.set_index("patient_id")["label"]
    frac_pos = (s[s.role == "test"].patient_id.map(lab) == "sarcoma").mean()
    assert abs(frac_pos - 52 / 331) < 0.02


def test_holdout_rounds_each_class_as_the_carcinosarcoma_paper():
    pts = _patients(n_pos=52, n_neg=279)  # 0.2 of each class: 10.4 -> 10 and 55.8 -> 56, 66 of 331 as published
    s = sp.holdout(pts, test_ratio=0.2, seed=3)
    lab = s[s.role == "test"].patient_id.map(pts.set_index("patient_id")["label"])
    assert lab.value_counts().to_dict() == {"leiomyoma": 56, "sarcoma": 10}
    assert not s.equals(sp.holdout(pts, test_ratio=0.2, seed=4)) and s.equals(sp.holdout(pts, 0.2, seed=3))


def test_nested_subsets_are_nested_and_stratified():
    pts = _patients(n_pos=50, n_neg=150)
    sub = sp.nested_subsets(pts, seed=5)
    by = {f: set(g.patient_id) for f, g in sub.groupby("fraction")}
    fr = sorted(by)
    assert fr == list(sp.DEFAULT_FRACTIONS)
    for small, big in zip(fr, fr[1:], strict=False):
        assert by[small] < by[big]
    assert len(by[0.02]) == 4 and len(by[1.0]) == 200
    lab = pts.set_index("patient_id")["label"]
    for f in (0.1, 0.2, 0.5):
        frac_pos = np.mean([lab[p] == "sarcoma" for p in by[f]])
        assert abs(frac_pos - 0.25) <= 1 / len(by[f]) + 1e-9


def test_leave_group_out_by_center():
    pts = _patients()
    s = sp.leave_group_out(pts, "center")
    sp.check_no_leakage(s, kfold_complete=True)
    centers = pts.set_index("patient_id")["center"]
    for _, g in s[s.role == "test"].groupby("fold"):
        assert g.patient_id.map(centers).nunique() == 1


def test_leakage_check_catches_a_patient_in_two_roles():
    pts = _patients()
    s = sp.kfold(pts, n_folds=3, seed=0)
    leaked = s.iloc[[0]].assign(role="test")
    bad = pd.concat([s, leaked], ignore_index=True)
    with pytest.raises(sp.LeakageError, match=f"patient {s.iloc[0].patient_id} holds 2 roles"):
        sp.check_no_leakage(bad)


def test_leakage_check_catches_a_patient_tested_twice():
    pts = _patients()
    s = sp.kfold(pts, n_folds=3, seed=0)
    pid = s[(s.fold == 0) & (s.role == "test")].patient_id.iloc[0]
    s.loc[(s.fold == 1) & (s.patient_id == pid), "role"] = "test"
    with pytest.raises(sp.LeakageError, match="tested 2 times"):
        sp.check_no_leakage(s)


def test_predictions_check_catches_training_patient_in_test_rows():
    pts = _patients()
    s = sp.kfold(pts, n_folds=3, seed=0)
    ok = s[s.role == "test"].assign(split="test")
    sp.check_predictions_against_splits(ok, s)
    trained = s[(s.role == "train")].head(1).assign(split="test")
    with pytest.raises(sp.LeakageError, match="trained on the same patient"):
        sp.check_predictions_against_splits(pd.concat([ok, trained]), s)
