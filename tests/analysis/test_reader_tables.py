"""Model-vs-readers tables from a study's likelihoods and a long reads table."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from sarcomri.analysis.readers import MODEL, interpreter_frame, reader_tables


@pytest.fixture
def study():
    rng = np.random.default_rng(0)
    n = 40
    ids = [f"P{i:02d}" for i in range(n)]
    label = (np.arange(n) % 4 == 0).astype(int)
    lik = []
    for seq in ("T2axi", "ADC"):
        p = np.clip(0.3 + 0.4 * label + rng.normal(0, 0.2, n), 0, 1)
        lik.append(pd.DataFrame({"patient_id": ids, "sequence": seq, "label": label, "likelihood": p}))
    likelihood = pd.concat(lik, ignore_index=True)
    reads = []
    for reader, group, skill in (("R1", "specialist", 0.9), ("R2", "practitioner", 0.7)):
        for session, bonus in (("first", 0.0), ("ai_assisted", 0.1)):
            for seq in ("T2axi", "ADC", "all"):
                right = rng.random(n) < skill + bonus
                positive_call = np.where(right, label == 1, label == 0)
                conf = np.where(positive_call, rng.choice([0.0, 0.2, 0.4], n), rng.choice([0.6, 0.8, 1.0], n))
                reads.append(pd.DataFrame({"patient_id": ids, "reader": reader, "group": group, "sequence": seq,
                                           "session": session, "confidence": conf}))
    return likelihood, pd.concat(reads, ignore_index=True)


def test_interpreter_frame_maps_scale_and_model(study):
    likelihood, reads = study
    frame = interpreter_frame(likelihood, reads, "sarcoma", "leiomyoma", cut=0.4)
    assert set(frame["interpreter"]) == {MODEL, "R1", "R2"} and set(frame["sequence"]) == {"T2axi", "ADC"}
    r1 = frame[(frame["interpreter"] == "R1") & (frame["sequence"] == "ADC")].set_index("case")
    raw = reads[(reads["reader"] == "R1") & (reads["sequence"] == "ADC") & (reads["session"] == "first")]
    raw = raw.set_index("patient_id")
    assert ((raw["confidence"] <= 0.4) == (r1.loc[raw.index, "decision"] == "sarcoma")).all()
    assert np.allclose(r1.loc[raw.index, "score"], 1 - raw["confidence"])


def test_tables_numbers(study):
    likelihood, reads = study
    t = reader_tables(likelihood, reads, "sarcoma", "leiomyoma")
    acc = t["accuracy"].set_index(["sequence", "interpreter"])
    t2 = likelihood[likelihood["sequence"] == "T2axi"]
    assert acc.loc[("T2axi", MODEL), "auc"] == pytest.approx(roc_auc_score(t2["label"], t2["likelihood"]))
    assert np.isnan(acc.loc[("T2axi", MODEL), "p_vs_model"]) and 0 < acc.loc[("T2axi", "R1"), "p_vs_model"] <= 1
    calls = t2["likelihood"] >= 0.5
    assert acc.loc[("T2axi", MODEL), "sensitivity"] == pytest.approx(calls[t2["label"] == 1].mean())
    kappa = t["kappa"].set_index(["sequence", "interpreter"])
    assert kappa.loc[("ADC", MODEL), MODEL] == pytest.approx(1.0)
    pairs = t["kappa_ci"].set_index(["sequence", "rater1", "rater2"])  # the same kappas, each with its CI
    for (seq, r1, r2), row in pairs.iterrows():
        assert row["kappa"] == pytest.approx(kappa.loc[(seq, r2), r1])
        assert row["lower"] <= row["kappa"] <= row["upper"]
    assert len(pairs) == kappa.index.get_level_values("sequence").value_counts().map(lambda k: k * (k - 1) // 2).sum()
    conf = t["confusion"]
    assert conf.groupby(["sequence", "interpreter"])["total"].sum().eq(40).all()
    sessions = t["sessions"].set_index(["group", "session"])
    assert set(sessions.index) == {(g, s) for g in ("specialist", "practitioner") for s in ("first", "ai_assisted")}
    per_reader = t["per_reader"].set_index("reader")
    assert per_reader.loc["R1", "difference"] == pytest.approx(per_reader.loc["R1", "assisted"]
                                                                - per_reader.loc["R1", "first"])
    assert set(t["tests"]["test"]) == {"paired-t", "welch", "wilcoxon"}


def test_no_assisted_session_gives_only_model_tables(study):
    likelihood, reads = study
    t = reader_tables(likelihood, reads[reads["session"] == "first"], "sarcoma", "leiomyoma")
    assert set(t) == {"confusion", "accuracy", "kappa", "kappa_ci"}
