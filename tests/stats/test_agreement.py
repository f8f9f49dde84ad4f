"""Kappa and ICC against SAS, Fleiss (1971), R irr, scikit-learn, statsmodels and pingouin."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pingouin
import pytest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats import inter_rater

from sarcomri.errors import InputError
from sarcomri.stats import agreement as ag

# SAS PROC FREQ agreement example (also statsmodels' reference): rater 1 in rows, rater 2 in columns.
SAS_TABLE = [[0, 4, 1], [0, 8, 0], [0, 1, 5]]

# Fleiss (1971): 30 patients, 6 psychiatrists, 5 diagnoses (R irr's `diagnoses`).
DIAGNOSES = [
    [4, 4, 4, 4, 4, 4], [2, 2, 2, 5, 5, 5], [2, 3, 3, 3, 3, 5], [5, 5, 5, 5, 5, 5], [2, 2, 2, 4, 4, 4],
    [1, 1, 3, 3, 3, 3], [3, 3, 3, 3, 5, 5], [1, 1, 3, 3, 3, 4], [1, 1, 4, 4, 4, 4], [5, 5, 5, 5, 5, 5],
    [1, 4, 4, 4, 4, 4], [1, 2, 4, 4, 4, 4], [2, 2, 2, 3, 3, 3], [1, 4, 4, 4, 4, 4], [2, 2, 4, 4, 4, 5],
    [3, 3, 3, 3, 3, 5], [1, 1, 1, 4, 5, 5], [1, 1, 1, 1, 1, 2], [2, 2, 4, 4, 4, 4], [1, 3, 3, 5, 5, 5],
    [5, 5, 5, 5, 5, 5], [2, 4, 4, 4, 4, 4], [2, 2, 4, 5, 5, 5], [1, 1, 4, 4, 4, 4], [1, 4, 4, 4, 4, 5],
    [2, 2, 2, 2, 2, 4], [1, 1, 1, 1, 5, 5], [2, 2, 4, 4, 4, 4], [1, 3, 3, 3, 3, 3], [5, 5, 5, 5, 5, 5],
]


def _expand(table):
    r1, r2 = [], []
    for i, row in enumerate(table):
        for j, count in enumerate(row):
            r1 += [i] * count
            r2 += [j] * count
    return r1, r2


def test_cohen_kappa_matches_sas_printout():
    r1, r2 = _expand(SAS_TABLE)
    res = ag.cohen_kappa(r1, r2)
    assert [round(v, 4) for v in (res.kappa, res.se, res.lower, res.upper)] == [0.4842, 0.1380, 0.2137, 0.7547]
    assert round(res.z, 4) == 3.2626 and round(res.p_value, 4) == 0.0011
    lin = ag.cohen_kappa(r1, r2, weights="linear")
    assert [round(v, 4) for v in (lin.kappa, lin.se, lin.lower, lin.upper)] == [0.4701, 0.1457, 0.1845, 0.7558]


@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
def test_cohen_kappa_point_matches_sklearn(weights):
    rng = np.random.default_rng(4)
    scale = np.array([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])  # the carcinosarcoma study's 6-point confidence scale
    a = rng.integers(0, 6, 120)
    b = np.where(rng.random(120) < 0.6, a, rng.integers(0, 6, 120))
    res = ag.cohen_kappa(scale[a], scale[b], weights=weights)  # sklearn wants integer class codes
    assert res.kappa == pytest.approx(cohen_kappa_score(a, b, weights=weights))
    assert res.lower < res.kappa < res.upper


def test_weighted_kappa_uses_given_category_order():
    order = ["low", "mid", "high"]
    a = ["low", "mid", "high", "high", "mid", "low", "high"]
    b = ["mid", "mid", "high", "mid", "low", "low", "low"]
    res = ag.cohen_kappa(a, b, weights="linear", categories=order)
    assert res.kappa == pytest.approx(cohen_kappa_score(a, b, weights="linear", labels=order))
    with pytest.raises(InputError, match="ordered categories"):
        ag.cohen_kappa(a, b, weights="linear")


def test_kappa_matrix_is_symmetric_pairwise_kappa():
    rng = np.random.default_rng(8)
    truth = rng.integers(0, 2, 66)
    wide = pd.DataFrame({name: np.where(rng.random(66) < p, truth, 1 - truth)
                         for name, p in [("CNN", 0.9), ("R1", 0.8), ("R2", 0.75), ("R3", 0.7)]})
    mat = ag.kappa_matrix(wide)
    assert list(mat.index) == ["CNN", "R1", "R2", "R3"]
    assert np.allclose(mat.to_numpy(), mat.to_numpy().T) and np.allclose(np.diag(mat), 1)
    assert mat.loc["R1", "R3"] == pytest.approx(cohen_kappa_score(wide["R1"], wide["R3"]))
    long = wide.reset_index().melt(id_vars="index", var_name="rater", value_name="call")
    np.testing.assert_allclose(ag.kappa_matrix(ag.long_to_wide(long, "index", "rater", "call")), mat)


def test_fleiss_kappa_matches_fleiss_1971_and_irr():
    res = ag.fleiss_kappa(pd.DataFrame(DIAGNOSES))
    assert round(res.kappa, 3) == 0.430  # Fleiss (1971)
    assert round(res.z, 1) == 17.7  # R irr::kappam.fleiss(diagnoses)
    counts, _ = inter_rater.aggregate_raters(np.array(DIAGNOSES))
    assert res.kappa == pytest.approx(inter_rater.fleiss_kappa(counts))
    labelled = pd.DataFrame(DIAGNOSES).replace({1: "depression", 2: "PD", 3: "schizo", 4: "neurosis", 5: "other"})
    assert ag.fleiss_kappa(labelled).kappa == pytest.approx(res.kappa)


def _long_ratings(seed: int, n: int = 15, k: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    truth = rng.normal(50, 10, n)
    bias = rng.normal(0, 3, k)
    rows = [(f"t{i}", f"r{j}", truth[i] + bias[j] + rng.normal(0, 4)) for i in range(n) for j in range(k)]
    return pd.DataFrame(rows, columns=["target", "rater", "score"])


@pytest.mark.parametrize("seed", [0, 1])
def test_icc_matches_pingouin(seed, monkeypatch):
    monkeypatch.setitem(pingouin.options, "round", None)
    monkeypatch.setitem(pingouin.options, "round.column.CI95", None)
    data = _long_ratings(seed)
    ours = ag.icc(data, "target", "rater", "score")
    ref = pingouin.intraclass_corr(data, targets="target", raters="rater", ratings="score")
    mapping = dict(zip(["ICC(1,1)", "ICC(A,1)", "ICC(C,1)", "ICC(1,k)", "ICC(A,k)", "ICC(C,k)"],
                       ["ICC(1,1)", "ICC(2,1)", "ICC(3,1)", "ICC(1,k)", "ICC(2,k)", "ICC(3,k)"], strict=True))
    ref["form"] = ref["Type"].map(mapping)
    merged = ours.merge(ref, on="form", validate="one_to_one")
    assert len(merged) == 6
    np.testing.assert_allclose(merged["icc"], merged["ICC"], rtol=1e-10)
    for _, row in merged.iterrows():
        assert row["df1_x"] == row["df1_y"] and row["df2_x"] == row["df2_y"]
        assert row["F_x"] == pytest.approx(row["F_y"], rel=1e-10)
        assert row["p"] == pytest.approx(row["pval"], rel=1e-8)
        assert (row["lower"], row["upper"]) == pytest.approx(tuple(row["CI95"]), rel=1e-8)


def test_icc_names_are_unambiguous():
    out = ag.icc(_long_ratings(3), "target", "rater", "score")
    row = out.set_index("form").loc["ICC(2,1)"]
    assert (row["mcgraw_wong"], row["model"], row["type"], row["unit"]) == (
        "ICC(A,1)", "two-way random", "absolute agreement", "single rater")
    assert out.set_index("form").loc["ICC(3,1)", "type"] == "consistency"


def test_icc_refuses_incomplete_designs():
    data = _long_ratings(0).iloc[1:]
    with pytest.raises(InputError, match="complete design"):
        ag.icc(data, "target", "rater", "score")
    with pytest.raises(InputError, match="rated twice"):
        ag.icc(pd.concat([_long_ratings(0), _long_ratings(0).iloc[:1]]), "target", "rater", "score")


def test_kappa_pairs_carry_the_sas_ci():
    r1, r2 = _expand(SAS_TABLE)
    pairs = ag.kappa_pairs(pd.DataFrame({"A": r1, "B": r2, "C": r1}))
    ab = pairs.set_index(["rater1", "rater2"]).loc[("A", "B")]
    assert (round(ab["lower"], 4), round(ab["upper"], 4)) == (0.2137, 0.7547)
    assert pairs.set_index(["rater1", "rater2"]).loc[("A", "C"), "kappa"] == pytest.approx(1.0)


def _wide_to_long(x) -> pd.DataFrame:
    return pd.DataFrame([(f"t{i}", f"r{j}", float(v)) for i, row in enumerate(x) for j, v in enumerate(row)],
                        columns=["target", "rater", "score"])


def _pingouin_icc(data: pd.DataFrame, monkeypatch) -> pd.DataFrame:
    monkeypatch.setitem(pingouin.options, "round", None)
    monkeypatch.setitem(pingouin.options, "round.column.CI95", None)
    ref = pingouin.intraclass_corr(data, targets="target", raters="rater", ratings="score")
    ref["form"] = ref["Type"].str.replace("(A,", "(2,").str.replace("(C,", "(3,")
    return ref.set_index("form")


def test_icc_ci_with_two_targets_contains_the_estimate_or_is_nan(monkeypatch):
    # two targets, a negative ICC(2,1): the Satterthwaite df collapses and the McGraw-Wong interval (pingouin's)
    # lies beside its estimate
    data = _wide_to_long([[6, 3, 2], [-1, 4, 7]])
    ours = ag.icc(data, "target", "rater", "score").set_index("form")
    ref = _pingouin_icc(data, monkeypatch)
    lo, hi = ref.loc["ICC(2,1)", "CI95"]
    assert ref.loc["ICC(2,1)", "ICC"] == pytest.approx(-1.48) and not lo <= -1.48 <= hi  # the bug, reproduced
    assert ours.loc["ICC(2,1)", "icc"] == pytest.approx(-1.48, rel=1e-12)
    assert np.isnan(ours.loc["ICC(2,1)", "lower"]) and np.isnan(ours.loc["ICC(2,1)", "upper"])
    assert np.isnan(ours.loc["ICC(2,k)", "lower"]) and np.isnan(ours.loc["ICC(2,k)", "upper"])
    for form in ("ICC(1,1)", "ICC(3,1)", "ICC(1,k)", "ICC(3,k)"):  # exact F intervals: defined, as pingouin's
        row = ours.loc[form]
        assert row["lower"] <= row["icc"] <= row["upper"]
        assert (row["lower"], row["upper"]) == pytest.approx(tuple(ref.loc[form, "CI95"]), rel=1e-10)


@pytest.mark.parametrize("n", [2, 3])
def test_icc_ci_always_contains_the_estimate_or_is_nan(n, monkeypatch):
    undefined = 0
    for seed in range(40):
        rng = np.random.default_rng(seed)
        x = rng.normal(0, 1, (n, 3)) + rng.normal(0, rng.uniform(0, 2), (n, 1))
        data = _wide_to_long(x)
        ours = ag.icc(data, "target", "rater", "score").set_index("form")
        ref = _pingouin_icc(data, monkeypatch)
        for form, row in ours.iterrows():
            if np.isnan(row["lower"]):
                assert np.isnan(row["upper"])
                undefined += 1
                continue
            assert row["lower"] - 1e-12 <= row["icc"] <= row["upper"] + 1e-12, (seed, form)
            # where defined, the interval is McGraw & Wong's (pingouin's) unchanged
            assert (row["lower"], row["upper"]) == pytest.approx(tuple(ref.loc[form, "CI95"]), rel=1e-9)
    assert 0 < undefined < 40 * 6 / 2  # some tiny designs are undefined, most are not
    # three targets, three raters with clear between-target spread: every CI is defined
    ok = ag.icc(_wide_to_long([[1, 1.2, 0.9], [5, 5.5, 4.8], [9, 8.7, 9.4]]), "target", "rater", "score")
    assert ok["lower"].notna().all() and (ok["lower"] <= ok["icc"]).all() and (ok["icc"] <= ok["upper"]).all()
