"""The carcinosarcoma paper's Tables 1, 3, 4 and 5 on small hand-made frames, checked against hand counts,
scipy, statsmodels and scikit-learn."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import cohen_kappa_score, precision_score, recall_score, roc_auc_score
from statsmodels.stats.proportion import proportion_confint

from sarcomri.analysis.paper_carcinosarcoma import (
    carcinosarcoma_tables,
    characteristics,
    confusion_counts,
    interpreter_calls,
    patient_classes,
    performance,
    reader_agreement,
    write_carcinosarcoma_tables,
)
from sarcomri.analysis.voting import READER_SCALE
from sarcomri.errors import InputError
from sarcomri.report.papertables import read_paper_tables
from sarcomri.stats.roc import delong_test

CS, EC = "carcinosarcoma", "endometrial_carcinoma"
IDS = [f"P{i}" for i in range(10)]
LABEL = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
T2 = [0.9, 0.7, 0.4, 0.5, 0.2, 0.1, 0.55, 0.3, 0.45, 0.05]  # P3 sits on the cut-off: a CS call
ADC = [0.8, 0.3, 0.6, 0.2, 0.1, 0.7, 0.2, 0.3, 0.1, 0.4]
READS = {  # first-read confidence on T2axi; <= 0.4 is a CS call
    "R1": [0.0, 0.2, 0.6, 0.4, 0.8, 1.0, 0.4, 0.6, 0.8, 1.0],  # CS calls P0 P1 P3 P6: TP 3 FN 1 FP 1 TN 5
    "R2": [0.2, 0.6, 0.4, 0.8, 0.6, 0.4, 1.0, 0.8, 0.2, 1.0],  # CS calls P0 P2 P5 P8: TP 2 FN 2 FP 2 TN 4
    "R3": [0.4, 0.4, 0.8, 0.0, 1.0, 0.8, 0.6, 0.4, 1.0, 0.8],  # CS calls P0 P1 P3 P7: TP 3 FN 1 FP 1 TN 5
}
GROUP = {"R1": "specialist", "R2": "specialist", "R3": "practitioner"}


@pytest.fixture
def likelihood():
    return pd.concat([pd.DataFrame({"sequence": seq, "patient_id": IDS, "label": LABEL, "likelihood": values})
                      for seq, values in (("T2axi", T2), ("ADC", ADC))], ignore_index=True)


@pytest.fixture
def reads():
    rows = []
    for reader, conf in READS.items():
        rows.append(pd.DataFrame({"patient_id": IDS, "reader": reader, "group": GROUP[reader], "sequence": "T2axi",
                                  "session": "first", "confidence": conf}))
        # an AI-assisted session the carcinosarcoma tables must ignore
        rows.append(pd.DataFrame({"patient_id": IDS, "reader": reader, "group": GROUP[reader], "sequence": "T2axi",
                                  "session": "ai_assisted", "confidence": 0.0}))
    return pd.concat(rows, ignore_index=True)


def _calls(likelihood, reads):
    return interpreter_calls(likelihood, reads, CS, EC, cut=0.4, cutoff=0.5)


def test_table3_counts_by_hand(likelihood, reads):
    t3 = confusion_counts(_calls(likelihood, reads), CS).set_index(["sequence", "interpreter"])
    assert list(t3.columns) == ["group", "n", "TP", "FN", "FP", "TN"]
    expected = {("T2axi", "CNN"): (3, 1, 1, 5), ("T2axi", "R1"): (3, 1, 1, 5), ("T2axi", "R2"): (2, 2, 2, 4),
                ("T2axi", "R3"): (3, 1, 1, 5), ("ADC", "CNN"): (2, 2, 1, 5)}
    for key, counts in expected.items():
        assert tuple(t3.loc[key, ["TP", "FN", "FP", "TN"]]) == counts
    assert t3.loc[("T2axi", "R2"), "group"] == "specialist" and t3.loc[("ADC", "CNN"), "group"] == "model"
    # the CNN first, then the readers; the ADC sequence no reader read has the CNN alone on all its patients
    assert list(t3.index) == [("T2axi", "CNN"), ("T2axi", "R1"), ("T2axi", "R2"), ("T2axi", "R3"), ("ADC", "CNN")]
    assert t3.loc[("ADC", "CNN"), "n"] == 10


def test_table3_flipped_swaps_counts(likelihood, reads):
    calls = _calls(likelihood, reads)
    cs = confusion_counts(calls, CS).set_index(["sequence", "interpreter"])
    ec = confusion_counts(calls, EC).set_index(["sequence", "interpreter"])
    assert (ec["TP"] == cs["TN"]).all() and (ec["FN"] == cs["FP"]).all()
    assert (ec["FP"] == cs["FN"]).all() and (ec["TN"] == cs["TP"]).all()


def test_table4_against_sklearn_and_statsmodels(likelihood, reads):
    t4 = performance(_calls(likelihood, reads), CS).set_index(["sequence", "interpreter"])
    y = np.array(LABEL)
    for who, score, calls in (("CNN", np.array(T2), np.array(T2) >= 0.5),
                              ("R2", 1 - np.array(READS["R2"]), np.array(READS["R2"]) <= 0.4)):
        row = t4.loc[("T2axi", who)]
        assert row["sensitivity"] == pytest.approx(recall_score(y, calls))
        assert row["specificity"] == pytest.approx(recall_score(1 - y, ~calls))
        assert row["ppv"] == pytest.approx(precision_score(y, calls))
        assert row["npv"] == pytest.approx(precision_score(1 - y, ~calls))
        assert row["accuracy"] == pytest.approx((calls == y).mean())
        assert row["auc"] == pytest.approx(roc_auc_score(y, score))
        tp = int((calls & (y == 1)).sum())
        lo, hi = proportion_confint(tp, 4, method="wilson")
        assert (row["sensitivity_lower"], row["sensitivity_upper"]) == pytest.approx((lo, hi))
    r2 = delong_test(y, 1 - np.array(READS["R2"]), np.array(T2), 1)
    assert t4.loc[("T2axi", "R2"), "p_vs_cnn"] == pytest.approx(r2.p_value)
    assert np.isnan(t4.loc[("T2axi", "CNN"), "p_vs_cnn"]) and np.isnan(t4.loc[("ADC", "CNN"), "p_vs_cnn"])
    assert not any(c.startswith("ss_avg") for c in t4.columns)


def test_table4_orientation_flip(likelihood, reads):
    calls = _calls(likelihood, reads)
    cs = performance(calls, CS, CS).set_index(["sequence", "interpreter"])
    ec = performance(calls, CS, EC).set_index(["sequence", "interpreter"])
    for a, b in (("sensitivity", "specificity"), ("ppv", "npv")):
        for suffix in ("", "_lower", "_upper"):
            assert np.allclose(ec[a + suffix], cs[b + suffix], equal_nan=True)
            assert np.allclose(ec[b + suffix], cs[a + suffix], equal_nan=True)
    for col in ("accuracy", "auc", "auc_lower", "auc_upper", "p_vs_cnn"):
        assert np.allclose(ec[col], cs[col], equal_nan=True)
    assert cs.loc[("T2axi", "CNN"), "auc"] > 0.5  # scores were not flipped the wrong way


def test_paper_orientation_t2wi_sensitivity():
    """The paper printed EC as positive: the T2WI CNN called 52 of 56 ECs correctly (sensitivity 0.93)."""
    ids = [f"P{i}" for i in range(66)]
    label = [1] * 10 + [0] * 56  # 10 CS, 56 EC
    lik = [0.9] * 9 + [0.2] + [0.1] * 52 + [0.8] * 4
    likelihood = pd.DataFrame({"sequence": "T2axi", "patient_id": ids, "label": label, "likelihood": lik})
    tables = dict((t.name, (t, f)) for t, f in carcinosarcoma_tables(likelihood, None, None, CS, EC,
                                                                      printed_positive=EC))
    table, t4 = tables["carcinosarcoma_table4_performance"]
    assert t4.loc[0, "sensitivity"] == pytest.approx(52 / 56) and round(t4.loc[0, "sensitivity"], 2) == 0.93
    assert t4.loc[0, "specificity"] == pytest.approx(9 / 10)
    assert table.note.startswith(f"{EC} is the positive class")
    t3 = tables["carcinosarcoma_table3_confusion"][1]
    assert t3.loc[0, ["TP", "FN", "FP", "TN"]].tolist() == [52, 4, 1, 9]
    assert "carcinosarcoma_table5_kappa" not in tables and "carcinosarcoma_table1_patients" not in tables
    with pytest.raises(InputError):
        carcinosarcoma_tables(likelihood, None, None, CS, EC, printed_positive="benign")


def test_table5_kappa_matches_sklearn(likelihood, reads):
    t5 = reader_agreement(reads, likelihood, CS, EC, cut=0.4).set_index(["reader1", "reader2"])
    assert list(t5.index) == [("R1", "R2"), ("R1", "R3"), ("R2", "R3")]
    for (r1, r2), row in t5.iterrows():
        a, b = READS[r1], READS[r2]
        steps = list(range(len(READER_SCALE)))  # sklearn wants discrete labels: the scale's positions
        a_steps, b_steps = np.round(np.array(a) * 5).astype(int), np.round(np.array(b) * 5).astype(int)
        assert row["kappa"] == pytest.approx(cohen_kappa_score(a_steps, b_steps, weights="quadratic", labels=steps))
        calls_a, calls_b = np.array(a) <= 0.4, np.array(b) <= 0.4
        assert row["kappa_calls"] == pytest.approx(cohen_kappa_score(calls_a, calls_b))
        assert row["n"] == 10 and row["sequence"] == "T2axi"
        assert row["kappa_lower"] < row["kappa"] < row["kappa_upper"]
    # R1 vs R3: calls agree on 8 of 10 (kappa (0.8 - 0.52) / 0.48 = 0.583: moderate)
    assert t5.loc[("R1", "R3"), "kappa_calls"] == pytest.approx(0.28 / 0.48)
    assert t5.loc[("R1", "R3"), "agreement_calls"] == "moderate"
    unweighted = reader_agreement(reads, likelihood, CS, EC, weights=None).set_index(["reader1", "reader2"])
    r1, r2 = (np.round(np.array(READS[r]) * 5).astype(int) for r in ("R1", "R2"))
    assert unweighted.loc[("R1", "R2"), "kappa"] == pytest.approx(cohen_kappa_score(r1, r2))


def test_table5_uses_first_reads_of_the_cnn_patients(likelihood, reads):
    extra = reads[reads["patient_id"] == "P0"].assign(patient_id="X99")  # a patient the CNN has not seen
    t5 = reader_agreement(pd.concat([reads, extra]), likelihood, CS, EC)
    assert (t5["n"] == 10).all()


def test_table1_against_scipy():
    rng = np.random.default_rng(0)
    n_cs, n_ec = 30, 50
    patients = pd.DataFrame({
        "patient_id": [f"P{i}" for i in range(n_cs + n_ec)],
        "label": [CS] * n_cs + [EC] * n_ec,
        "age": np.r_[rng.normal(68, 8, n_cs).round(), rng.normal(60, 9, n_ec).round()],
        "stage": np.r_[rng.choice(["I", "III"], n_cs, p=[0.4, 0.6]), rng.choice(["I", "III"], n_ec, p=[0.7, 0.3])],
        "exophytic": ["yes"] * 3 + ["no"] * (n_cs - 3) + ["yes"] * 1 + ["no"] * (n_ec - 1),
        "grade": "",  # no value in the cohort: left out
    })
    classes = patient_classes(patients, None, CS, EC)
    t1 = characteristics(patients, classes)
    assert t1["variable"].unique().tolist() == ["age", "stage", "exophytic"]
    age = t1[t1["variable"] == "age"].iloc[0]
    ref = stats.mannwhitneyu(patients["age"][:n_cs], patients["age"][n_cs:], alternative="two-sided")
    assert age["p"] == pytest.approx(ref.pvalue) and age["test"] == "Mann-Whitney U"
    q1, med, q3 = np.percentile(patients["age"][:n_cs], [25, 50, 75])
    assert age[f"{CS} (n={n_cs})"] == f"{med:.1f} [{q1:.1f}, {q3:.1f}]"
    stage = t1[t1["variable"] == "stage"].iloc[0]
    counts = pd.crosstab(patients["stage"], patients["label"]).to_numpy()
    assert stage["test"] == "chi-square"
    assert stage["p"] == pytest.approx(stats.chi2_contingency(counts, correction=False).pvalue)
    exo = t1[t1["variable"] == "exophytic"].iloc[0]  # expected counts below 5: Fisher's exact test
    table = pd.crosstab(patients["exophytic"], patients["label"]).to_numpy()
    assert exo["test"] == "Fisher exact" and exo["p"] == pytest.approx(stats.fisher_exact(table).pvalue)
    only = characteristics(patients, classes, continuous=["age"], categorical=[])
    assert only["variable"].tolist() == ["age"]


def test_classes_from_likelihood_when_patients_lack_labels(likelihood):
    patients = pd.DataFrame({"patient_id": IDS, "age": range(10)})
    classes = patient_classes(patients, likelihood, CS, EC)
    assert classes.tolist() == [CS] * 4 + [EC] * 6


def test_write_tables_and_index(tmp_path, likelihood, reads):
    patients = pd.DataFrame({"patient_id": IDS, "label": [CS] * 4 + [EC] * 6, "age": [70, 72, 65, 68, 60, 58, 61,
                                                                                     55, 63, 59],
                             "stage": ["I", "III", "III", "I", "I", "I", "II", "I", "I", "I"]})
    names = write_carcinosarcoma_tables(likelihood, reads, patients, tmp_path, CS, EC, printed_positive=EC)
    assert names == ["carcinosarcoma_table1_patients", "carcinosarcoma_table3_confusion",
                     "carcinosarcoma_table4_performance", "carcinosarcoma_table5_kappa"]
    back = read_paper_tables(tmp_path)
    assert [t.name for t, _ in back] == names
    assert back[2][0].title == "Table 4 (carcinosarcoma paper): diagnostic performance"
    assert json.loads((tmp_path / "index.json").read_text())["tables"][0]["order"] == 11
    t3 = back[1][1].set_index(["sequence", "interpreter"])
    assert tuple(t3.loc[("T2axi", "CNN"), ["TP", "FN", "FP", "TN"]]) == (5, 1, 1, 3)  # EC positive


def test_without_reads_only_the_cnn(tmp_path, likelihood):
    names = write_carcinosarcoma_tables(likelihood, None, None, tmp_path, CS, EC)
    assert names == ["carcinosarcoma_table3_confusion", "carcinosarcoma_table4_performance"]
    t4 = read_paper_tables(tmp_path)[1][1]
    assert set(t4["interpreter"]) == {"CNN"} and t4["n"].tolist() == [10, 10]


def test_reads_of_other_sequences_leave_the_cnn_alone(likelihood, reads):
    whole = reads.assign(sequence="all")  # whole-study reads only: no sequence of the CNN's was read
    tables = {t.name: f for t, f in carcinosarcoma_tables(likelihood, whole, None, CS, EC)}
    assert set(tables) == {"carcinosarcoma_table3_confusion", "carcinosarcoma_table4_performance"}
    assert set(tables["carcinosarcoma_table4_performance"]["interpreter"]) == {"CNN"}
