"""The decision rule (one place) and the tables the report prints: decisions, model card, curves, readers."""

import numpy as np
import pandas as pd
import pytest

from sarcomri.analysis.curves import curve_tables
from sarcomri.analysis.published import decision_table, is_current, model_card_table, model_cutoff, reader_report
from sarcomri.analysis.voting import reader_call, summed_call, vote, votes
from sarcomri.stats.diagnostic import diagnostic_from_labels
from sarcomri.stats.roc import auc_ci, roc_points


def test_the_rule_at_the_cut():
    assert vote([0.49, 0.5, 0.51], 0.5).tolist() == [-1, 1, 1]  # at the cut-off is a positive vote
    assert int(vote(0.7, 0.7)) == 1 and int(vote(0.69, 0.7)) == -1
    assert summed_call([-1, 0, 1], 0).tolist() == [False, True, True]
    assert reader_call([0.0, 0.4, 0.6, 1.0], 0.4, "CS", "EC").tolist() == ["CS", "CS", "EC", "EC"]
    assert reader_call([0.4, 0.6], 0.6, "CS", "EC").tolist() == ["CS", "CS"]
    with pytest.raises(Exception, match="scale"):
        reader_call([0.5], 0.4, "CS", "EC")
    lik = pd.DataFrame({"patient_id": ["a", "a", "b"], "sequence": ["T2", "ADC", "T2"], "likelihood": [0.5, 0.2, 0.9]})
    v = votes(lik, {"T2": 0.6, "ADC": 0.1})
    assert v.loc["a", "T2"] == -1 and v.loc["a", "ADC"] == 1 and v.loc["b", "ADC"] == 0


@pytest.fixture
def run_tables():
    rng = np.random.default_rng(1)
    n = 30
    ids = [f"P{i:02d}" for i in range(n)]
    label = (np.arange(n) % 3 == 0).astype(int)
    lik = pd.concat([pd.DataFrame({"patient_id": ids, "sequence": s, "label": label,
                                   "likelihood": np.clip(0.35 + 0.3 * label + rng.normal(0, 0.2, n), 0, 1)})
                     for s in ("T2", "ADC")], ignore_index=True)
    score = lik.assign(v=vote(lik["likelihood"], 0.5)).groupby("patient_id", sort=False)["v"].sum()
    summed = pd.DataFrame({"patient_id": score.index, "label": label, "summed_score": score.to_numpy()})
    summed["call_positive"] = summed_call(summed["summed_score"], 0)
    return lik, summed


def test_decisions_and_model_card_are_the_stats_of_the_rule(run_tables):
    lik, summed = run_tables
    thr = pd.DataFrame([{"threshold": 0, "vote_cutoff": 0.5}])
    assert model_cutoff(None, thr) == 0.5 and model_cutoff(pd.DataFrame({"cutoff": [0.3]}), None) == 0.3
    d = decision_table(lik, 0.5, summed, 0)
    assert set(d["sequence"]) == {"T2", "ADC", "all"}
    seq = d[d["sequence"] == "T2"]
    assert (seq["call_positive"] == (seq["score"] >= 0.5)).all()
    whole = d[d["sequence"] == "all"]
    assert (whole["call_positive"].to_numpy() == summed["call_positive"].to_numpy()).all()
    card = model_card_table(None, d).iloc[-1]
    res = diagnostic_from_labels(summed["label"], summed["call_positive"].astype(int), 1)
    a = auc_ci(summed["label"], summed["summed_score"], 1)
    assert card["model"] == "summed score (all sequences)" and card["n"] == len(summed)
    assert card["auc"] == pytest.approx(a.auc) and card["auc_lower"] == pytest.approx(a.lower)
    assert card["sensitivity_upper"] == pytest.approx(res.sensitivity.upper)


def test_curves_are_roc_points_and_the_calls(run_tables):
    lik, _ = run_tables
    t2 = lik[lik["sequence"] == "T2"]
    reads = pd.DataFrame({"case": t2["patient_id"], "sequence": "T2", "interpreter": "CNN", "truth": t2["label"],
                          "decision": (vote(t2["likelihood"], 0.5) == 1).astype(int), "score": t2["likelihood"]})
    points, operating = curve_tables(reads, 1)
    want = roc_points(t2["label"], t2["likelihood"], 1)
    assert np.allclose(points["fpr"], want["fpr"]) and np.allclose(points["sensitivity"], want["sensitivity"])
    row = operating.iloc[0]
    assert row["auc"] == pytest.approx(auc_ci(t2["label"], t2["likelihood"], 1).auc) and row["n"] == len(t2)
    res = diagnostic_from_labels(reads["truth"], reads["decision"], 1)
    assert (row["fpr"], row["sensitivity"]) == pytest.approx((1 - res.specificity.estimate, res.sensitivity.estimate))


def test_reader_report_uses_its_cut(run_tables):
    lik, summed = run_tables
    rng = np.random.default_rng(2)
    ids = lik["patient_id"].unique()
    reads = pd.concat([pd.DataFrame({"patient_id": ids, "reader": r, "group": "g", "sequence": s, "session": ss,
                                     "confidence": rng.choice([0.0, 0.2, 0.4, 0.6, 0.8, 1.0], len(ids))})
                       for r in ("R1", "R2") for s in ("T2", "ADC", "all") for ss in ("first", "ai_assisted")],
                      ignore_index=True)
    at04 = reader_report(lik, reads, "pos", "neg", 0.4, 0.5, summed, 0)
    at06 = reader_report(lik, reads, "pos", "neg", 0.6, 0.5, summed, 0)
    wanted = {"accuracy", "whole_accuracy", "kappa", "sessions", "roc_points", "operating_points", "left_out"}
    assert wanted <= set(at06)
    r1 = at06["reads"][(at06["reads"]["interpreter"] == "R1") & (at06["reads"]["sequence"] == "ADC")]
    raw = reads[(reads["reader"] == "R1") & (reads["sequence"] == "ADC") & (reads["session"] == "first")]
    assert ((raw.set_index("patient_id").loc[r1["case"], "confidence"].to_numpy() <= 0.6)
            == (r1["decision"] == "pos").to_numpy()).all()
    assert not at04["accuracy"]["sensitivity"].equals(at06["accuracy"]["sensitivity"])
    assert at06["whole_accuracy"]["sequence"].eq("all").all() and at06["left_out"]["left_out"].eq(0).all()


def test_definition_currency():
    found = pd.DataFrame([{"reader_cut": "0.6", "summed_threshold": "", "positive": "pos", "inputs_key": "k"}])
    settings = {"reader_cut": 0.6, "summed_threshold": float("nan"), "positive": "pos"}
    assert is_current(found, settings, "k")
    assert not is_current(found, {**settings, "reader_cut": 0.4}, "k") and not is_current(found, settings, "other")
    assert not is_current(None, settings, "k")


def test_reader_report_leaves_out_a_sequence_with_one_class(run_tables):
    lik, summed = run_tables
    positives = set(lik.loc[(lik["sequence"] == "ADC") & (lik["label"] == 1), "patient_id"])
    lik = lik[~((lik["sequence"] == "ADC") & lik["patient_id"].isin(positives))]  # ADC: negatives only
    ids = lik["patient_id"].unique()
    rng = np.random.default_rng(3)
    reads = pd.concat([pd.DataFrame({"patient_id": ids, "reader": r, "group": "g", "sequence": s, "session": "first",
                                     "confidence": rng.choice([0.0, 0.2, 0.4, 0.6, 0.8, 1.0], len(ids))})
                       for r in ("R1", "R2") for s in ("T2", "ADC")], ignore_index=True)
    out = reader_report(lik, reads, "pos", "neg", 0.4, 0.5, summed, 0)
    assert set(out["accuracy"]["sequence"]) == {"T2"} and set(out["confusion"]["sequence"]) == {"T2"}
    assert set(out["reads"]["sequence"]) >= {"T2", "ADC"}  # the reads themselves are all kept
