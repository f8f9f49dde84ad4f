"""The sarcoma paper's tables on a small hand-made study: reader groups without / with the AI, the model
against the groups, the overlap of errors, the misdiagnosed patients and the top sequence combinations."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sarcomri.analysis.combinations import search_combinations, top_k_summary
from sarcomri.analysis.paper_sarcoma import (
    error_overlap,
    group_majority_wrong,
    misdiagnosed_cases,
    model_decisions,
    model_vs_groups,
    reader_decisions,
    session_comparison,
    top_combinations,
    write_sarcoma_tables,
)
from sarcomri.analysis.voting import votes
from sarcomri.report.papertables import read_paper_tables

POS, NEG = "sarcoma", "leiomyoma"
IDS = ["S0", "S1", "L0", "L1", "L2", "L3"]
LABEL = [1, 1, 0, 0, 0, 0]
# votes: S0 +3, S1 +1, L0 -1, L1..L3 -3: the summed score separates the classes at 0 or 1
LIK = {"T2axi": [0.9, 0.8, 0.7, 0.1, 0.2, 0.3], "ADC": [0.6, 0.5, 0.4, 0.2, 0.1, 0.3],
       "DWI_b1000": [0.7, 0.2, 0.1, 0.4, 0.3, 0.2]}
# the study's calls as summed_score.csv holds them: S1 missed (FN), L0 over-called (FP)
CALLS = [True, False, True, False, False, False]
# readers' correctness per patient (IDS order), unaided and with the AI
RIGHT = {
    ("A1", "specialist"): ([1, 0, 1, 0, 1, 0], [1, 1, 1, 1, 1, 1]),
    ("A2", "specialist"): ([1, 0, 1, 0, 1, 1], [1, 1, 1, 0, 1, 1]),
    ("A3", "specialist"): ([0, 1, 1, 0, 1, 1], [1, 1, 1, 0, 1, 1]),
    ("B1", "practitioner"): ([0, 0, 0, 1, 1, 0], [1, 1, 1, 1, 1, 1]),
}


@pytest.fixture
def likelihood():
    return pd.concat([pd.DataFrame({"sequence": s, "patient_id": IDS, "label": LABEL, "likelihood": v})
                      for s, v in LIK.items()], ignore_index=True)


@pytest.fixture
def summed():
    return pd.DataFrame({"patient_id": IDS, "label": LABEL, "summed_score": [3, 1, -1, -3, -3, -3],
                         "n_sequences": 3, "call_positive": CALLS})


@pytest.fixture
def reads():
    rows = []
    truth_pos = np.array(LABEL) == 1
    for (reader, group), sessions in RIGHT.items():
        for session, right in zip(("first", "ai_assisted"), sessions, strict=True):
            calls_pos = np.where(np.array(right) == 1, truth_pos, ~truth_pos)
            rows.append(pd.DataFrame({"patient_id": IDS, "reader": reader, "group": group, "sequence": "all",
                                      "session": session, "confidence": np.where(calls_pos, 0.2, 0.8)}))
    # per-sequence reads are not the whole-study reads the sarcoma paper's readers made
    rows.append(pd.DataFrame({"patient_id": IDS, "reader": "A1", "group": "specialist", "sequence": "T2axi",
                              "session": "first", "confidence": 0.0}))
    return pd.concat(rows, ignore_index=True)


@pytest.fixture
def study(likelihood, summed, reads):
    model = model_decisions(likelihood, POS, NEG, 0.5, summed)
    return model, reader_decisions(reads, model, POS, NEG, cut=0.4)


def test_model_decisions_use_the_summed_calls(likelihood, summed):
    model = model_decisions(likelihood, POS, NEG, 0.5, summed).set_index("patient_id")
    assert model["call"].tolist() == [POS, NEG, POS, NEG, NEG, NEG]
    assert model.loc["S0", "mean_likelihood"] == pytest.approx((0.9 + 0.6 + 0.7) / 3)
    recomputed = model_decisions(likelihood, POS, NEG, 0.5).set_index("patient_id")
    assert recomputed.loc[IDS, "summed_score"].tolist() == [3, 1, -1, -3, -3, -3]
    assert recomputed.loc[IDS, "call"].tolist() == [POS, POS, NEG, NEG, NEG, NEG]  # threshold 0 or 1: perfect


def test_reader_decisions_take_whole_study_reads(study):
    _, calls = study
    assert len(calls) == 4 * 2 * 6 and set(calls["session"]) == {"first", "ai_assisted"}


def test_sessions_by_hand(study):
    _, calls = study
    t = session_comparison(calls, POS).set_index(["group", "metric"])
    spec = t.loc[("specialist", "sensitivity")]
    assert (spec["readers"], spec["n_reads"], spec["without_ai"], spec["with_ai"]) == (3, 6, 0.5, 1.0)
    # per-patient differences S0 +1, S1 +2: sign flips give |T| >= 3 with probability 1/2
    assert spec["p_value"] == pytest.approx(0.5) and spec["test"].startswith("clustered McNemar")
    sp = t.loc[("specialist", "specificity")]
    assert (sp["without_ai"], sp["with_ai"], sp["p_value"]) == pytest.approx((8 / 12, 10 / 12, 0.5))
    acc = t.loc[("specialist", "accuracy")]
    assert (acc["without_ai"], acc["with_ai"], acc["p_value"]) == pytest.approx((11 / 18, 16 / 18, 2 / 16))
    ss = t.loc[("specialist", "ss_avg")]
    assert ss["without_ai"] == pytest.approx((0.5 + 8 / 12) / 2) and np.isnan(ss["p_value"]) and ss["test"] == ""
    assert ss["difference"] == pytest.approx(ss["with_ai"] - ss["without_ai"])
    # one reader: McNemar's exact test, two-sided binomial of the discordant reads
    b1 = t.loc[("practitioner", "accuracy")]
    assert b1["p_value"] == pytest.approx(stats.binomtest(4, 4, 0.5).pvalue) == pytest.approx(0.125)
    assert t.loc[("practitioner", "sensitivity"), "p_value"] == pytest.approx(0.5)


def test_no_assisted_session_no_session_table(study):
    _, calls = study
    assert session_comparison(calls[calls["session"] == "first"], POS).empty


def test_model_vs_groups_by_hand(study):
    model, calls = study
    t = model_vs_groups(calls, model, POS).set_index(["group", "metric"])
    sens = t.loc[("specialist", "sensitivity")]
    assert (sens["n_patients"], sens["n_reads"], sens["model"], sens["readers"]) == (6, 6, 0.5, 0.5)
    assert sens["p_value"] == pytest.approx(1.0)  # differences S0 -1, S1 +1
    spec = t.loc[("specialist", "specificity")]
    assert (spec["model"], spec["readers"]) == pytest.approx((0.75, 8 / 12))
    assert spec["difference"] == pytest.approx(0.75 - 8 / 12)
    # practitioner B1 vs the model, one read per patient: McNemar exact on the patients
    acc = t.loc[("practitioner", "accuracy")]
    model_right = np.array(CALLS) == (np.array(LABEL) == 1)
    b1_right = np.array(RIGHT[("B1", "practitioner")][0]) == 1
    b, c = int((model_right & ~b1_right).sum()), int((~model_right & b1_right).sum())
    assert acc["p_value"] == pytest.approx(stats.binomtest(min(b, c), b + c, 0.5).pvalue)
    assert acc["model"] == pytest.approx(4 / 6) and acc["readers"] == pytest.approx(2 / 6)
    assert np.isnan(t.loc[("practitioner", "ss_avg"), "p_value"])


def test_error_overlap_by_hand(study):
    model, calls = study
    t = error_overlap(calls, model).set_index(["group", "truth"])
    cols = ["patients", "model_only", "readers_only", "both", "neither"]
    assert t.loc[("specialist", NEG), cols].tolist() == [4, 1, 1, 0, 2]
    assert t.loc[("specialist", POS), cols].tolist() == [2, 0, 0, 1, 1]
    assert t.loc[("practitioner", POS), cols].tolist() == [2, 0, 1, 1, 0]
    assert t.loc[("practitioner", NEG), cols].tolist() == [4, 0, 1, 1, 2]


def test_majority_is_strict():
    calls = pd.DataFrame({"patient_id": ["P"] * 2, "reader": ["a", "b"], "group": "g", "session": "first",
                          "truth": POS, "call": [POS, NEG]})
    row = group_majority_wrong(calls).iloc[0]
    assert (row["readers"], row["wrong"], row["misdiagnosed"]) == (2, 1, False)


def test_misdiagnosed_cases(study):
    model, calls = study
    patients = pd.DataFrame({"patient_id": IDS, "label": [POS] * 2 + [NEG] * 4, "degenerated": ["", "", "yes", "no",
                                                                                               "no", "yes"],
                             "diameter_mm": [80.0, 95.0, 60.0, 40.0, 30.0, 55.0], "site": "uterine corpus"})
    t = misdiagnosed_cases(model, calls, patients)
    assert t["patient_id"].tolist() == ["L0", "L1", "L3", "S0", "S1"]
    assert t.set_index("patient_id")["misdiagnosed_by"].to_dict() == {
        "L0": "model+practitioner", "L1": "specialist", "L3": "practitioner", "S0": "practitioner",
        "S1": "model+specialist+practitioner"}
    assert {"A1", "A2", "A3", "B1", "degenerated", "diameter_mm", "site"} <= set(t.columns)
    assert "label" not in t.columns
    row = t.set_index("patient_id").loc["L1"]
    assert (row["A1"], row["B1"], row["model_call"], row["diameter_mm"]) == (POS, NEG, NEG, 40.0)
    alone = misdiagnosed_cases(model, None, None)
    assert alone["patient_id"].tolist() == ["L0", "S1"] and set(alone["misdiagnosed_by"]) == {"model"}


def test_top_combinations(likelihood):
    top, n = top_combinations(likelihood, None, 0.5, k=3)
    assert n == 3
    lik = likelihood.assign(patient_id=likelihood["patient_id"].astype(str))
    ref = top_k_summary(search_combinations(votes(lik, 0.5), lik.groupby("patient_id")["label"].first()), 3)
    pd.testing.assert_frame_equal(top.drop(columns="rank"), ref)
    assert top["rank"].tolist()[:3] == [1, 2, 3] and pd.isna(top["rank"].iloc[-1])
    assert top["ss_avg"].iloc[-1] == pytest.approx(top["ss_avg"].iloc[:3].mean())


def test_write_all_tables(tmp_path, likelihood, summed, reads):
    patients = pd.DataFrame({"patient_id": IDS, "degenerated": ["", "", "yes", "no", "no", "yes"]})
    names = write_sarcoma_tables(likelihood, reads, patients, tmp_path, POS, NEG, summed=summed, top_k=10)
    assert names == ["sarcoma_table1_combinations", "sarcoma_readers_sessions", "sarcoma_model_vs_readers",
                     "sarcoma_figure2_error_overlap", "sarcoma_misdiagnosed"]
    back = read_paper_tables(tmp_path)
    assert [t.name for t, _ in back] == names
    first = back[0][0]
    assert "2^3 - 1 = 7 non-empty combinations" in first.note and "top 7" in first.note
    assert len(back[0][1]) == 8  # 7 combinations and their average
    assert json.loads((tmp_path / "index.json").read_text())["tables"][-1]["name"] == "sarcoma_misdiagnosed"


def test_without_reads(tmp_path, likelihood, summed):
    names = write_sarcoma_tables(likelihood, None, None, tmp_path, POS, NEG, summed=summed)
    assert names == ["sarcoma_table1_combinations", "sarcoma_misdiagnosed"]
