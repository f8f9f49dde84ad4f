"""Reader-study helpers: scale cuts, per-reader/per-group metrics, first vs AI-assisted read tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sarcomri.errors import InputError
from sarcomri.stats import readers


def test_carcinosarcoma_scale_cut():
    ratings = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 0.4000000001]
    out = readers.scale_to_decision(ratings, cut=0.4, at_or_below="CS", above="EC",
                                    scale=readers.CARCINOSARCOMA_SCALE)
    assert list(out) == ["CS", "CS", "CS", "EC", "EC", "EC", "CS"]
    with pytest.raises(InputError, match="not on the scale"):
        readers.scale_to_decision([0.0, 3.0], 0.4, "CS", "EC", scale=readers.CARCINOSARCOMA_SCALE)


def _reads(name: str, tp: int, fn: int, tn: int, fp: int) -> pd.DataFrame:
    truth = ["EC"] * (tp + fn) + ["CS"] * (tn + fp)
    call = ["EC"] * tp + ["CS"] * fn + ["CS"] * tn + ["EC"] * fp
    return pd.DataFrame({"reader": name, "case": range(len(truth)), "truth": truth, "call": call})


@pytest.fixture()
def reads() -> pd.DataFrame:
    return pd.concat([_reads("S1", 52, 4, 7, 3), _reads("S2", 50, 6, 8, 2), _reads("P1", 40, 16, 5, 5)])


def test_reader_metrics_counts_and_estimates(reads):
    table = readers.reader_metrics(reads, "reader", "truth", "call", positive="EC").set_index("reader")
    assert table.loc["S1", ["tp", "fn", "tn", "fp"]].tolist() == [52, 4, 7, 3]
    assert round(table.loc["S1", "sensitivity"], 2) == 0.93
    assert round(table.loc["S1", "specificity"], 2) == 0.70
    assert round(table.loc["S1", "accuracy"], 2) == 0.89
    assert table.loc["P1", "sensitivity"] == pytest.approx(40 / 56)
    assert table.loc["S2", "reads"] == 66


def test_group_metrics_pool_reads_and_average_readers(reads):
    groups = {"S1": "specialist", "S2": "specialist", "P1": "practitioner"}
    table = readers.group_metrics(reads, "reader", "truth", "call", "EC", groups).set_index("group")
    spec = table.loc["specialist"]
    assert (spec["readers"], spec["reads"], spec["tp"], spec["tn"]) == (2, 132, 102, 15)
    assert spec["sensitivity"] == pytest.approx(102 / 112)
    assert spec["mean_specificity"] == pytest.approx((7 / 10 + 8 / 10) / 2)
    with pytest.raises(InputError, match="without a group"):
        readers.group_metrics(reads, "reader", "truth", "call", "EC", {"S1": "specialist"})


def test_wilcoxon_matches_published_example():
    # Darwin's Zea mays differences (Fisher 1935), scipy.stats.wilcoxon documentation: T = 24, p = 0.04126
    d = np.array([6, 8, 14, 16, 23, 24, 28, 29, 41, -48, 49, 56, 60, -67, 75])
    res = readers.compare_reads(np.zeros_like(d), d, test="wilcoxon")
    assert res.statistic == 24 and res.p_value == pytest.approx(0.041259765625)


def test_t_tests_match_textbook_formulas():
    first = np.array([0.80, 0.76, 0.71, 0.85, 0.69, 0.74])
    second = np.array([0.86, 0.79, 0.80, 0.86, 0.77, 0.75])
    d = second - first
    t = d.mean() / (d.std(ddof=1) / np.sqrt(d.size))
    paired = readers.compare_reads(first, second, "paired-t")
    assert paired.statistic == pytest.approx(t) and paired.df == 5
    assert paired.mean_difference == pytest.approx(d.mean())
    va, vb = first.var(ddof=1) / 6, second.var(ddof=1) / 6
    welch = readers.compare_reads(first, second, "welch")
    assert welch.statistic == pytest.approx((second.mean() - first.mean()) / np.sqrt(va + vb))
    assert welch.df == pytest.approx((va + vb) ** 2 / (va**2 / 5 + vb**2 / 5))
    with pytest.raises(InputError, match="same readers"):
        readers.compare_reads(first, second[:4], "paired-t")


def test_first_vs_assisted(reads):
    second = pd.concat([_reads("S1", 54, 2, 8, 2), _reads("S2", 52, 4, 8, 2), _reads("P1", 48, 8, 7, 3)])
    both = pd.concat([reads.assign(session="first"), second.assign(session="AI")])
    per_reader, tests = readers.first_vs_assisted(both, "reader", "session", "truth", "call", "EC",
                                                  first="first", assisted="AI")
    row = per_reader.set_index("reader").loc["P1"]
    assert row["first"] == pytest.approx(45 / 66) and row["assisted"] == pytest.approx(55 / 66)
    assert list(tests["test"]) == ["paired-t", "welch", "wilcoxon"]
    assert (tests["mean_difference"] > 0).all()
