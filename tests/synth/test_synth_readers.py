"""Synthetic readers against the published reader-study figures (large simulated samples)."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score, roc_auc_score

from sarcomri.stats.readers import CARCINOSARCOMA_SCALE, scale_to_decision
from sarcomri.synth import latent, readers

N = 12_000


def _reads(task: str, sequences=None, n: int = N, prevalence: float = 0.25):
    model = latent.model_for(task)
    rng = np.random.default_rng(5)
    npos = int(n * prevalence)
    p, q = latent.draw_class(model, True, npos, rng), latent.draw_class(model, False, n - npos, rng)
    data = {k: np.concatenate([p[k], q[k]]) for k in model.latents}
    pos = np.r_[np.ones(npos, bool), np.zeros(n - npos, bool)]
    seqs = [list(sequences)] * n if sequences else None
    reads, p_ai = readers.simulate_arrays(task, data, pos, np.arange(n), 0, seqs)
    reads["truth"] = pos[reads["row"]]
    reads["call"] = scale_to_decision(reads["confidence"], 0.4, True, False, CARCINOSARCOMA_SCALE).astype(bool)
    return reads, p_ai, pos


@pytest.fixture(scope="module")
def sarcoma_reads():
    return _reads("sarcoma")


# Published (SYNTHETIC.md): (group, session) -> (sensitivity, specificity)
SARCOMA_TARGETS = {
    ("specialist", "first"): (0.710, 0.938), ("practitioner", "first"): (0.476, 0.915),
    ("specialist", "ai_assisted"): (0.831, 0.917), ("practitioner", "ai_assisted"): (0.878, 0.937),
}


@pytest.mark.parametrize("key", list(SARCOMA_TARGETS))
def test_sarcoma_reader_sensitivity_specificity(sarcoma_reads, key):
    reads, _, pos = sarcoma_reads
    r = reads[(reads.group == key[0]) & (reads.session == key[1]) & (reads.sequence == "all")]
    sens, spec = r.call[r.truth].mean(), 1 - r.call[~r.truth].mean()
    # 3000 positive and 9000 negative patients: patient-level SE <= 0.009 (sens) and 0.003 (spec); the
    # readers' fixed offsets bias the pooled value by under 0.01
    assert sens == pytest.approx(SARCOMA_TARGETS[key][0], abs=0.03)
    assert spec == pytest.approx(SARCOMA_TARGETS[key][1], abs=0.015)


def test_simulated_ai_matches_published_ensemble(sarcoma_reads):
    _, p_ai, pos = sarcoma_reads
    assert np.mean(p_ai[pos] >= 0.5) == pytest.approx(0.898, abs=0.025)
    assert np.mean(p_ai[~pos] < 0.5) == pytest.approx(0.917, abs=0.015)


def test_confidence_scale_and_orientation(sarcoma_reads):
    reads, _, _ = sarcoma_reads
    assert set(np.round(reads.confidence, 1)) <= set(readers.SCALE)
    first = reads[reads.session == "first"]
    # 0 = definitely the positive class: positives get lower ratings
    assert first.confidence[first.truth].mean() < first.confidence[~first.truth].mean() - 0.2
    assert set(reads.session) == {"first", "ai_assisted"}


def test_readers_err_on_the_same_cases_as_the_ideal_observer(sarcoma_reads):
    """False positives concentrate on leiomyomas that look malignant (high ideal-observer evidence)."""
    reads, _, pos = sarcoma_reads
    r = reads[(reads.session == "first") & (reads.sequence == "all") & ~reads.truth]
    model = latent.model_for("sarcoma")
    rng = np.random.default_rng(5)
    latent.draw_class(model, True, int(N * 0.25), rng)
    neg = latent.draw_class(model, False, N - int(N * 0.25), rng)
    degenerated = np.isin(neg["component"], [2, 3])[r.row.to_numpy() - int(N * 0.25)]
    fp = r.call.to_numpy()
    assert degenerated[fp].mean() > 0.5 > degenerated.mean()


def test_carcinosarcoma_per_sequence_reader_auc_and_kappa():
    seqs = ["T2axi", "ADC", "fsT1CEaxi", "DWI_b1000"]
    reads, _, _ = _reads("carcinosarcoma", seqs, n=8000, prevalence=0.16)
    first = reads[(reads.session == "first") & (reads.sequence != "all")]
    aucs = first.groupby(["reader", "sequence"]).apply(lambda d: roc_auc_score(d.truth, -d.confidence))
    # published per-sequence reader AUCs 0.49 to 0.92
    assert aucs.min() < 0.62 and aucs.max() > 0.85
    assert 0.45 < aucs.min() and aucs.max() < 0.95
    kappas = []
    for _, d in first.groupby("sequence"):
        wide = d.pivot(index="row", columns="reader", values="call")
        kappas += [cohen_kappa_score(wide[a], wide[b]) for a, b in itertools.combinations(wide.columns, 2)]
    # published pairwise kappa mostly 0.01 to 0.59
    assert np.mean((np.array(kappas) > 0.01) & (np.array(kappas) < 0.59)) > 0.9


def test_calibration_rejects_unreachable_aided_figures():
    ai = readers.AIModel.from_sens_spec(0.6, 0.6)
    with pytest.raises(ValueError, match="cannot be reached"):
        readers.ReaderGroup.from_figures("x", 2, 0.5, 0.9, 0.99, 0.99, ai)


def test_given_ai_probabilities_shift_aided_reads():
    model = latent.model_for("sarcoma")
    rng = np.random.default_rng(1)
    d = latent.draw_class(model, False, 2000, rng)
    pos = np.zeros(2000, bool)
    confident_benign = readers.simulate_arrays("sarcoma", d, pos, np.arange(2000), 0,
                                               ai_probability=np.full(2000, 0.02))[0]
    confident_malignant = readers.simulate_arrays("sarcoma", d, pos, np.arange(2000), 0,
                                                  ai_probability=np.full(2000, 0.98))[0]
    a = confident_benign[confident_benign.session == "ai_assisted"].confidence.mean()
    b = confident_malignant[confident_malignant.session == "ai_assisted"].confidence.mean()
    assert a > b + 0.2
    pd.testing.assert_frame_equal(confident_benign[confident_benign.session == "first"].reset_index(drop=True),
                                  confident_malignant[confident_malignant.session == "first"].reset_index(drop=True))


def test_readers_of_a_cohort_with_a_trained_models_probabilities(tmp_path):
    from sarcomri.synth.acquisition import Protocol
    from sarcomri.synth.cohort import synthesise_cohort

    c = synthesise_cohort(tmp_path / "c", "sarcoma", 6, seed=3, protocol=Protocol(240.0, 32, 6))
    stored = pd.read_csv(c.root / "readers.csv")
    again, _ = readers.read_cohort(c.root)
    pd.testing.assert_frame_equal(again, stored, check_dtype=False)  # same seed, same reads
    truth = c.patients.set_index("patient_id")["label"].eq("sarcoma").astype(float)
    _, ai = readers.read_cohort(c.root, ai_probability=truth.clip(0.02, 0.98))
    assert list(ai.ai_call) == list(c.patients.label)
    with pytest.raises(ValueError, match="missing"):
        readers.read_cohort(c.root, ai_probability=truth.iloc[:2])
