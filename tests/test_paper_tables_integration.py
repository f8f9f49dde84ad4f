"""Both papers' tables on a demo-like synthetic study: simulated readers (two groups, two sessions, whole-study
and per-sequence reads) and model likelihoods that follow the simulated AI; the tables agree with each other and
with the project's reader tables."""

import numpy as np
import pandas as pd
import pytest

from sarcomri.analysis.paper_carcinosarcoma import write_carcinosarcoma_tables
from sarcomri.analysis.paper_sarcoma import write_sarcoma_tables
from sarcomri.analysis.readers import reader_tables
from sarcomri.report.papertables import read_paper_tables
from sarcomri.synth import latent
from sarcomri.synth.readers import simulate_arrays

SEQUENCES = ["T2axi", "ADC", "DWI_b1000"]


def _study(task: str, n: int = 48, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    model = latent.model_for(task)
    rng = np.random.default_rng(seed)
    positive = np.arange(n) % 4 == 0
    drawn = {True: latent.draw_class(model, True, int(positive.sum()), rng),
             False: latent.draw_class(model, False, int((~positive).sum()), rng)}
    data = {k: np.empty(n) for k in model.latents}
    for k in model.latents:
        data[k][positive], data[k][~positive] = drawn[True][k], drawn[False][k]
    reads, p_ai = simulate_arrays(task, data, positive, np.arange(n), seed, [SEQUENCES] * n)
    ids = np.array([f"P{i:03d}" for i in range(n)])
    reads.insert(0, "patient_id", ids[reads.pop("row").to_numpy()])
    logit = np.log(p_ai / (1 - p_ai))
    likelihood = pd.concat([pd.DataFrame({
        "sequence": s, "patient_id": ids, "label": positive.astype(int),
        "likelihood": 1 / (1 + np.exp(-(logit + rng.normal(0, 1.0, n))))}) for s in SEQUENCES], ignore_index=True)
    patients = pd.DataFrame({"patient_id": ids, "age": rng.integers(35, 80, n),
                             "stage": rng.choice(["I", "II", "III"], n), "diameter_mm": rng.uniform(20, 120, n),
                             "degenerated": np.where(positive, "", rng.choice(["yes", "no"], n))})
    return likelihood, reads, patients


@pytest.fixture(scope="module")
def carcinosarcoma_study():
    return _study("carcinosarcoma")


@pytest.fixture(scope="module")
def sarcoma_study():
    return _study("sarcoma", seed=1)


def test_carcinosarcoma_tables_agree(tmp_path, carcinosarcoma_study):
    likelihood, reads, patients = carcinosarcoma_study
    pos, neg = "carcinosarcoma", "endometrial_carcinoma"
    write_carcinosarcoma_tables(likelihood, reads, patients, tmp_path, pos, neg, printed_positive=neg)
    tables = {t.name: f for t, f in read_paper_tables(tmp_path)}
    t3 = tables["carcinosarcoma_table3_confusion"].set_index(["sequence", "interpreter"])
    t4 = tables["carcinosarcoma_table4_performance"].set_index(["sequence", "interpreter"])
    assert (t3[["TP", "FN", "FP", "TN"]].sum(axis=1) == t3["n"]).all()
    assert np.allclose(t4["sensitivity"], t3["TP"] / (t3["TP"] + t3["FN"]))
    assert np.allclose(t4["npv"], t3["TN"] / (t3["TN"] + t3["FN"]))
    assert set(t4.index.get_level_values("sequence")) == set(SEQUENCES)
    assert len(t4) == 3 * 7  # the CNN and six readers per sequence
    # the project's reader tables (carcinosarcoma positive): the same numbers in the other orientation
    ref = reader_tables(likelihood, reads, pos, neg)["accuracy"].set_index(["sequence", "interpreter"])
    ref = ref.loc[t4.index]
    assert np.allclose(t4["specificity"], ref["sensitivity"]) and np.allclose(t4["sensitivity"], ref["specificity"])
    assert np.allclose(t4["auc"], ref["auc"]) and np.allclose(t4["p_vs_cnn"], ref["p_vs_model"], equal_nan=True)
    t5 = tables["carcinosarcoma_table5_kappa"]
    assert len(t5) == 3 * 15 and t5["agreement"].isin(["poor", "slight", "fair", "moderate", "substantial",
                                                          "almost perfect"]).all()
    t1 = tables["carcinosarcoma_table1_patients"]
    assert t1["variable"].unique().tolist() == ["age", "stage"]


def test_sarcoma_tables_agree(tmp_path, sarcoma_study):
    likelihood, reads, patients = sarcoma_study
    pos, neg = "sarcoma", "leiomyoma"
    names = write_sarcoma_tables(likelihood, reads, patients, tmp_path, pos, neg)
    assert len(names) == 5
    tables = {t.name: f for t, f in read_paper_tables(tmp_path)}
    sessions = tables["sarcoma_readers_sessions"].set_index(["group", "metric"])
    ref = reader_tables(likelihood, reads, pos, neg)["sessions"].set_index(["group", "session"])
    for group in ("specialist", "practitioner"):
        for metric in ("sensitivity", "specificity", "accuracy", "ss_avg"):
            assert sessions.loc[(group, metric), "without_ai"] == pytest.approx(ref.loc[(group, "first"), metric])
            assert sessions.loc[(group, metric), "with_ai"] == pytest.approx(ref.loc[(group, "ai_assisted"), metric])
        assert 0 < sessions.loc[(group, "accuracy"), "p_value"] <= 1
    versus = tables["sarcoma_model_vs_readers"]
    assert versus.groupby("metric")["model"].nunique().eq(1).all()  # every group read every patient
    overlap = tables["sarcoma_figure2_error_overlap"]
    assert (overlap[["model_only", "readers_only", "both", "neither"]].sum(axis=1) == overlap["patients"]).all()
    wrong = tables["sarcoma_misdiagnosed"]
    model_errors = (wrong["misdiagnosed_by"].str.split("+").map(lambda by: "model" in by)).sum()
    per_class = overlap[overlap["group"] == "specialist"]
    assert model_errors == per_class["model_only"].sum() + per_class["both"].sum()
    top = tables["sarcoma_table1_combinations"]
    assert len(top) == 8 and top["sequences"].iloc[-1] == "average of top 7"
