"""Votes, integer-score thresholds and the combination search against brute-force references."""

import itertools

import numpy as np
import pandas as pd
import pytest

from sarcomri.analysis.combinations import search_combinations, subset_masks, top_k_summary
from sarcomri.analysis.voting import best_integer_threshold, summed_score, votes


def _brute_threshold(score, y):
    """Loop over thresholds; ties -> higher sensitivity, then lower threshold."""
    best = None
    for t in range(score.min(), score.max() + 2):
        pred = score >= t
        sens = (pred & (y == 1)).sum() / (y == 1).sum()
        spec = (~pred & (y == 0)).sum() / (y == 0).sum()
        key = (round((sens + spec) / 2, 12), sens, -t)
        if best is None or key > best[0]:
            best = (key, t, (sens + spec) / 2, sens, spec, ((pred == (y == 1)).mean()))
    return best[1:]


def test_votes_matrix_and_summed_score():
    lik = pd.DataFrame({"sequence": ["T2axi", "ADC", "T2axi", "ADC", "T2sag"],
                        "patient_id": ["A", "A", "B", "B", "A"], "likelihood": [0.7, 0.2, 0.5, 0.9, 0.49]})
    v = votes(lik, 0.5)
    assert v.loc["A"].to_dict() == {"ADC": -1, "T2axi": 1, "T2sag": -1}
    assert v.loc["B"].to_dict() == {"ADC": 1, "T2axi": 1, "T2sag": 0}
    assert summed_score(v).to_dict() == {"A": -1, "B": 2}
    v2 = votes(lik, {"T2axi": 0.8, "ADC": 0.1, "T2sag": 0.4})
    assert v2.loc["A"].to_dict() == {"ADC": 1, "T2axi": -1, "T2sag": 1}
    with pytest.raises(ValueError, match="no cut-off"):
        votes(lik, {"T2axi": 0.5})


def test_best_integer_threshold_matches_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(50):
        y = (rng.random(40) < 0.3).astype(int)
        if y.sum() in (0, 40):
            continue
        score = rng.integers(-4, 5, 40) + 2 * y
        got = best_integer_threshold(score[None], y)
        t, ss, sens, spec, acc = _brute_threshold(score, y)
        assert got["threshold"][0] == t
        assert got["ss_avg"][0] == pytest.approx(ss) and got["sensitivity"][0] == pytest.approx(sens)
        assert got["specificity"][0] == pytest.approx(spec) and got["accuracy"][0] == pytest.approx(acc)


def test_subset_masks_count_and_order():
    m = subset_masks(15)
    assert m.shape == (32767, 15) and len({r.tobytes() for r in m}) == 32767
    assert m[0].tolist() == [True] + [False] * 14


def test_search_matches_a_loop_over_subsets_with_missing_sequences():
    rng = np.random.default_rng(1)
    n, seqs = 60, ["T2axi", "T2sag", "ADC", "fsT1CEaxi"]
    y = pd.Series((rng.random(n) < 0.35).astype(int), index=[f"P{i}" for i in range(n)])
    v = np.where(rng.random((n, 4)) < 0.7 + 0.2 * y.to_numpy()[:, None] - 0.4 * (1 - y.to_numpy()[:, None]), 1, -1)
    v[rng.random((n, 4)) < 0.15] = 0  # missing sequences
    table = pd.DataFrame(v, index=y.index, columns=seqs)
    res = search_combinations(table, y, chunk=5).set_index("sequences")
    assert len(res) == 15
    for k in range(1, 5):
        for combo in itertools.combinations(seqs, k):
            sub = table[list(combo)]
            keep = (sub != 0).any(axis=1)
            score, yy = sub[keep].sum(axis=1).to_numpy(), y[keep].to_numpy()
            t, ss, sens, spec, acc = _brute_threshold(score, yy)
            row = res.loc["+".join(s for s in seqs if s in combo)]
            assert row.n_patients == keep.sum() and row.threshold == t
            assert row.ss_avg == pytest.approx(ss) and row.accuracy == pytest.approx(acc)
    top = top_k_summary(res.reset_index(), 3)
    assert top.iloc[-1].ss_avg == pytest.approx(res.ss_avg.iloc[:3].mean())
