"""The published tables from a constructed per-case table with the carcinosarcoma study's Table 3 counts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score

from sarcomri.errors import InputError
from sarcomri.stats import roc, tables
from sarcomri.stats.readers import CARCINOSARCOMA_SCALE, scale_to_decision

N_EC, N_CS = 56, 10


def _interpreter(name: str, sequence: str, tp: int, tn: int, rng: np.random.Generator,
                 reader: bool) -> pd.DataFrame:
    """Per-case rows whose decisions give exactly tp of the EC and tn of the CS cases right."""
    truth = np.array(["EC"] * N_EC + ["CS"] * N_CS)
    says_ec = np.r_[np.arange(N_EC) < tp, np.arange(N_CS) >= tn]
    if reader:  # 6-point confidence, 1.0 = definitely EC, 0-0.4 read as carcinosarcoma
        score = np.where(says_ec, rng.choice([0.6, 0.8, 1.0], truth.size), rng.choice([0.0, 0.2, 0.4], truth.size))
        decision = scale_to_decision(score, 0.4, "CS", "EC", scale=CARCINOSARCOMA_SCALE)
    else:
        score = np.where(says_ec, rng.uniform(0.5, 1.0, truth.size), rng.uniform(0.0, 0.5, truth.size))
        decision = np.where(score >= 0.5, "EC", "CS")
    return pd.DataFrame({"case": [f"p{i:02d}" for i in range(truth.size)], "sequence": sequence,
                         "interpreter": name, "truth": truth, "decision": decision, "score": score})


@pytest.fixture(scope="module")
def predictions() -> pd.DataFrame:
    rng = np.random.default_rng(2)
    parts = [
        _interpreter("CNN", "T2WI", 52, 7, rng, reader=False),  # the study's T2WI CNN
        _interpreter("R1", "T2WI", 50, 6, rng, reader=True),
        _interpreter("R2", "T2WI", 47, 8, rng, reader=True),
        _interpreter("CNN", "DWI", 49, 8, rng, reader=False),
        _interpreter("R1", "DWI", 51, 5, rng, reader=True),
        _interpreter("R2", "DWI", 45, 7, rng, reader=True),
    ]
    return pd.concat(parts, ignore_index=True)


def test_table3_counts(predictions):
    t3 = tables.confusion_table(predictions, positive="EC").set_index(["sequence", "interpreter", "truth"])
    cnn = t3.loc[("T2WI", "CNN")]
    assert cnn.loc["EC", ["predicted EC", "predicted CS", "total"]].tolist() == [52, 4, 56]
    assert cnn.loc["CS", ["predicted EC", "predicted CS", "total"]].tolist() == [3, 7, 10]
    assert len(t3) == 12


def test_table4_reproduces_point_estimates_from_table3(predictions):
    t4 = tables.accuracy_table(predictions, positive="EC", model="CNN").set_index(["sequence", "interpreter"])
    cnn = t4.loc[("T2WI", "CNN")]
    assert (round(cnn["sensitivity"], 2), round(cnn["specificity"], 2), round(cnn["accuracy"], 2)) == (
        0.93, 0.70, 0.89)
    assert (cnn["tp"], cnn["tn"], cnn["n"]) == (52, 7, 66)
    assert np.isnan(cnn["p_vs_model"])
    assert cnn["sensitivity_lower"] < 52 / 56 < cnn["sensitivity_upper"]
    r1 = predictions[(predictions["sequence"] == "T2WI") & (predictions["interpreter"] == "R1")]
    model = predictions[(predictions["sequence"] == "T2WI") & (predictions["interpreter"] == "CNN")]
    assert t4.loc[("T2WI", "R1"), "auc"] == pytest.approx(roc.auc(r1["truth"], r1["score"], "EC"))
    ref = roc.delong_test(model["truth"], r1["score"].to_numpy(), model["score"].to_numpy(), "EC")
    assert t4.loc[("T2WI", "R1"), "p_vs_model"] == pytest.approx(ref.p_value)
    assert tables.format_ci(cnn["sensitivity"], cnn["sensitivity_lower"], cnn["sensitivity_upper"]).startswith(
        "0.93 (")


def test_table4_pairs_cases_by_id_not_by_row_order(predictions):
    shuffled = predictions.sample(frac=1.0, random_state=0)
    a = tables.accuracy_table(predictions, positive="EC", model="CNN").set_index(["sequence", "interpreter"])
    b = tables.accuracy_table(shuffled, positive="EC", model="CNN").set_index(["sequence", "interpreter"])
    assert b.loc[a.index, "p_vs_model"].to_numpy() == pytest.approx(a["p_vs_model"].to_numpy(), nan_ok=True)


def test_table5_kappa_matrix(predictions):
    t5 = tables.kappa_table(predictions, order=["CNN", "R1", "R2"])
    block = t5.loc["T2WI"]
    assert list(block.columns) == ["CNN", "R1", "R2"]
    wide = predictions[predictions["sequence"] == "T2WI"].pivot(index="case", columns="interpreter",
                                                                  values="decision")
    assert block.loc["CNN", "R2"] == pytest.approx(cohen_kappa_score(wide["CNN"], wide["R2"]))


def test_ss_avg_table(predictions):
    table = tables.ss_avg_table(predictions, positive="EC", by=["sequence", "interpreter"])
    assert table["ss_avg"].is_monotonic_decreasing
    row = table.set_index(["sequence", "interpreter"]).loc[("DWI", "CNN")]
    assert row["ss_avg"] == pytest.approx((49 / 56 + 8 / 10) / 2)


def test_missing_model_or_duplicates_are_refused(predictions):
    with pytest.raises(InputError, match="model 'ResNet'"):
        tables.accuracy_table(predictions, positive="EC", model="ResNet")
    with pytest.raises(InputError, match="more than one prediction"):
        tables.confusion_table(pd.concat([predictions, predictions.iloc[:1]]), positive="EC")
