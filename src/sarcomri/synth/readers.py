"""Synthetic readers: 6-point confidence per patient and sequence, unaided and with the AI's result.

Confidence scale of the carcinosarcoma study: 0, 0.2, 0.4, 0.6, 0.8, 1.0, where **0 means definitely the
positive class** (carcinosarcoma or sarcoma) and **1.0 definitely the negative class** (endometrial carcinoma
or leiomyoma). A rating of 0.4 or less is a positive call (``sarcomri.stats.readers.scale_to_decision`` with
``cut=0.4``).

Model (a binormal reader whose errors follow the images). For patient ``p`` with class ``y`` (1 positive)
and sequence ``s`` (or ``all`` for the whole study), reader ``r`` forms

    z = mu_rs * y + RHO * d_ps + sqrt(1 - RHO^2) * eps,      eps ~ N(0, 1)

where ``d_ps`` is the patient's *look*: the normal score, within its own class, of the ideal observer's log
likelihood ratio over the latent variables sequence ``s`` shows (so ``d`` is N(0, 1) in each class, a
degenerated leiomyoma looks malignant to every reader and the AI alike). ``z | y`` is then N(mu y, 1)
exactly, and a reader who calls positive when ``z > t`` has specificity Phi(t) and sensitivity
Phi(mu - t): ``mu`` and ``t`` follow from published figures in closed form. Per-sequence reads scale ``mu``
by the ratio of that sequence's ideal-observer d' to the whole study's, times a legibility factor (ADC maps
and DWI are harder to read), at the same threshold.

The AI's evidence is ``e = a - t_ai`` with ``a = mu_ai * y + RHO_AI * d + sqrt(1 - RHO_AI^2) * eps_ai`` and its
probability ``Phi(e)`` (or, when a per-patient probability ``p`` is given, ``e = Phi^-1(p)``). The AI-aided
read is ``z + lambda * e`` (the reader moves toward the AI's answer) against a new threshold; ``lambda``
and the threshold are solved so that the aided sensitivity and specificity match the published figures.
Readers within a group differ by fixed, symmetric offsets of ``mu`` and ``t``.

Published figures used (SYNTHETIC.md): sarcoma study, unaided specialists 71.0% / 93.8%, practitioners
47.6% / 91.5%; with the AI 83.1% / 91.7% and 87.8% / 93.7%; the AI (ensemble) 89.8% / 91.7%. Carcinosarcoma
study: per-sequence reader AUCs 0.49 to 0.92, CNN AUC 0.80 to 0.94 (groups here: AUC 0.90 and 0.78 on the
whole study, AI AUC 0.90; assumed specificities).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import optimize, stats

from sarcomri.cohort.sequences import parse_group
from sarcomri.synth import latent

SCALE = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
#: Cut points of z - t (in SDs) between adjacent confidence levels, from "definitely positive" down.
CUTS = (1.2, 0.5, 0.0, -0.5, -1.2)
RHO, RHO_AI = 0.5, 0.5
MAX_READERS = 16
SLOTS = ("all", "T2axi", "T2sag", "T2cor", "fsT2axi", "T1axi", "T1sag", "fsT1axi", "fsT1sag", "fsT1CEaxi",
         "fsT1CEsag", "fsT1CEcor", "dynamicaxi", "dynamicsag", "DWI_b0", "DWI_b1000", "ADC")
LEGIBILITY = {"T1": 0.8, "fsT1": 0.8, "DWI_b0": 0.7, "DWI_b1000": 0.7, "ADC": 0.35}
_SHAPE = ("diameter_mm", "margin", "exophytic", "necrosis", "heterogeneity")
VISIBLE = {
    "T2": _SHAPE + ("t2_ratio",), "fsT2": _SHAPE + ("t2_ratio",), "T1": _SHAPE, "fsT1": _SHAPE,
    "fsT1CE": _SHAPE + ("enhancement",), "dynamic": _SHAPE + ("enhancement",), "DWI_b0": _SHAPE + ("t2_ratio",),
    "DWI_b1000": _SHAPE + ("t2_ratio", "adc"), "ADC": _SHAPE + ("adc",),
}


def visible_latents(sequence: str, task: str) -> tuple[str, ...] | None:
    """The latent variables ``sequence`` shows (what the renderer uses for it); None for ``all``."""
    if sequence == "all":
        return None
    from sarcomri.synth.acquisition import family_of

    names = latent.model_for(task).latents
    return tuple(n for n in names if n in VISIBLE[family_of(sequence)])


@dataclass(frozen=True)
class ReaderGroup:
    """A group of readers: d' ``mu`` and threshold ``t`` of the unaided whole-study read; AI weight and aided
    threshold."""

    name: str
    n_readers: int
    mu: float
    t: float
    ai_weight: float
    t_aided: float

    @classmethod
    def from_figures(cls, name: str, n_readers: int, sens: float, spec: float, aided_sens: float,
                     aided_spec: float, ai: AIModel) -> ReaderGroup:
        """Calibrate to published unaided and AI-aided sensitivity and specificity (closed form + root)."""
        t = float(stats.norm.ppf(spec))
        mu = t + float(stats.norm.ppf(sens))
        target = float(stats.norm.ppf(aided_sens) + stats.norm.ppf(aided_spec))
        r = RHO * RHO_AI

        def sep(lam: float) -> float:
            return (mu + lam * ai.mu) / np.sqrt(1 + lam**2 + 2 * lam * r)

        grid = np.linspace(0, 20, 2001)
        peak = grid[int(np.argmax([sep(g) for g in grid]))]
        if sep(peak) < target or sep(0.0) > target:
            raise ValueError(f"{name}: aided {aided_sens}/{aided_spec} cannot be reached with this AI "
                             f"(separation {sep(0.0):.2f} to {sep(peak):.2f}, need {target:.2f})")
        lam = float(optimize.brentq(lambda x: sep(x) - target, 0.0, peak)) if target > sep(0.0) else 0.0
        sd = np.sqrt(1 + lam**2 + 2 * lam * r)
        t_aided = -lam * ai.t + sd * float(stats.norm.ppf(aided_spec))
        return cls(name, n_readers, mu, t, lam, float(t_aided))

    @classmethod
    def from_auc(cls, name: str, n_readers: int, auc: float, spec: float, ai_weight: float, ai: AIModel
                 ) -> ReaderGroup:
        """A group given its whole-study AUC and specificity; the aided read keeps the specificity."""
        t = float(stats.norm.ppf(spec))
        mu = float(np.sqrt(2) * stats.norm.ppf(auc))
        sd = np.sqrt(1 + ai_weight**2 + 2 * ai_weight * RHO * RHO_AI)
        return cls(name, n_readers, mu, t, ai_weight, float(-ai_weight * ai.t + sd * t))


@dataclass(frozen=True)
class AIModel:
    """The simulated AI: d' ``mu`` and threshold ``t`` (its probability of the positive class is Phi(a - t))."""

    mu: float
    t: float

    @classmethod
    def from_sens_spec(cls, sens: float, spec: float) -> AIModel:
        t = float(stats.norm.ppf(spec))
        return cls(t + float(stats.norm.ppf(sens)), t)


AI = {"sarcoma": AIModel.from_sens_spec(0.898, 0.917),
      "carcinosarcoma": AIModel(float(np.sqrt(2) * stats.norm.ppf(0.90)), float(stats.norm.ppf(0.85)))}


def default_groups(task: str) -> tuple[ReaderGroup, ...]:
    """The reader groups calibrated to the published figures of ``task``."""
    ai = AI[task]
    if task == "sarcoma":
        return (ReaderGroup.from_figures("specialist", 3, 0.710, 0.938, 0.831, 0.917, ai),
                ReaderGroup.from_figures("practitioner", 3, 0.476, 0.915, 0.878, 0.937, ai))
    return (ReaderGroup.from_auc("specialist", 3, 0.90, 0.85, 0.3, ai),
            ReaderGroup.from_auc("practitioner", 3, 0.78, 0.80, 1.0, ai))


def _offsets(k: int) -> np.ndarray:
    return np.linspace(-1.0, 1.0, k) if k > 1 else np.zeros(1)


def _confidence(z: np.ndarray, t: np.ndarray | float, sd: float = 1.0) -> np.ndarray:
    u = (z - t) / sd
    level = np.zeros(u.shape, dtype=int)
    for c in CUTS:
        level += u <= c
    return np.asarray(SCALE)[level]


def look(task: str, sequence: str, data: dict[str, np.ndarray], positive: np.ndarray) -> np.ndarray:
    """Within-class normal scores of the ideal observer's log LR over what ``sequence`` shows."""
    vis = visible_latents(sequence, task)
    io = latent.ideal_observer(task, vis)
    llr = latent.log_likelihood_ratio(latent.model_for(task), data, vis)
    return io.within_class_score(llr, positive)


def simulate_arrays(task: str, data: dict[str, np.ndarray], positive: np.ndarray, indices: np.ndarray,
                    seed: int, sequences: list[list[str]] | None = None, groups=None,
                    ai_probability: np.ndarray | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """Reads of every reader for patients given as latent arrays; returns (reads, AI probability).

    Patient ``indices`` seed each patient's reader noise (``SeedSequence((seed, task code), (i, 300))``), so
    a patient's reads do not depend on the cohort size. ``sequences`` lists each patient's sequences
    (default: only the whole-study read ``all``).
    """
    from sarcomri.synth.tasks import TASKS

    groups = tuple(groups or default_groups(task))
    if sum(g.n_readers for g in groups) > MAX_READERS:
        raise ValueError(f"at most {MAX_READERS} readers")
    n = len(positive)
    y = np.asarray(positive, bool).astype(float)
    ent = [int(seed), TASKS[task].code]
    noise = np.empty((n, MAX_READERS, len(SLOTS)))
    noise_ai = np.empty(n)
    for row, i in enumerate(indices):
        rng = np.random.default_rng(np.random.SeedSequence(ent, spawn_key=(int(i), 300)))
        noise_ai[row] = rng.standard_normal()
        noise[row] = rng.standard_normal((MAX_READERS, len(SLOTS)))
    seq_lists = sequences or [[] for _ in range(n)]
    wanted = ["all"] + sorted({s for lst in seq_lists for s in lst}, key=SLOTS.index)
    looks = {s: look(task, s, data, positive) for s in wanted}
    ai = AI[task]
    if ai_probability is None:
        a = ai.mu * y + RHO_AI * looks["all"] + np.sqrt(1 - RHO_AI**2) * noise_ai
        evidence = a - ai.t
    else:
        evidence = stats.norm.ppf(np.clip(np.asarray(ai_probability, float), 1e-4, 1 - 1e-4))
    d_all = np.sqrt(2) * stats.norm.ppf(latent.ideal_observer(task).auc)
    frames = []
    reader_no = 0
    for g in groups:
        offs = _offsets(g.n_readers)
        for j in range(g.n_readers):
            name = f"{g.name}{j + 1}"
            for s in wanted:
                has = np.ones(n, bool) if s == "all" else np.array([s in lst for lst in seq_lists])
                if not has.any():
                    continue
                ratio = 1.0
                if s != "all":
                    from sarcomri.synth.acquisition import family_of

                    d_s = np.sqrt(2) * stats.norm.ppf(latent.ideal_observer(task, visible_latents(s, task)).auc)
                    ratio = d_s / d_all * LEGIBILITY.get(family_of(s), 1.0)
                mu = g.mu * ratio * (1 + 0.06 * offs[j])
                t = g.t + 0.05 * offs[::-1][j]
                z = mu * y + RHO * looks[s] + np.sqrt(1 - RHO**2) * noise[:, reader_no, SLOTS.index(s)]
                za = z + g.ai_weight * evidence
                sd_a = np.sqrt(1 + g.ai_weight**2 + 2 * g.ai_weight * RHO * RHO_AI)
                t_a = g.t_aided + (t - g.t) * sd_a
                for session, conf in (("first", _confidence(z, t)), ("ai_assisted", _confidence(za, t_a, sd_a))):
                    frames.append(pd.DataFrame({"row": np.nonzero(has)[0], "reader": name, "group": g.name,
                                                "sequence": s, "session": session, "confidence": conf[has]}))
            reader_no += 1
    reads = pd.concat(frames, ignore_index=True)
    return reads, stats.norm.cdf(evidence)


def simulate(table: pd.DataFrame, task: str, seed: int, groups=None, ai_probability=None
             ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """readers.csv and ai.csv of a cohort from its latent table (rows in patient-index order).

    ``ai_probability``: a given AI's probability of the positive class per patient (a mapping or Series
    indexed by patient_id, e.g. a trained model's patient-level output); by default the simulated AI.
    """
    model = latent.model_for(task)
    positive = (table["label"] == model.positive.label).to_numpy()
    data = {k: table[k].to_numpy(float) for k in model.latents}
    seqs = [list(parse_group(s)) if isinstance(s, str) and s else [] for s in table.get("sequences", [""] * len(table))]
    ids = table["patient_id"].to_numpy()
    given = None
    if ai_probability is not None:
        given = pd.Series(ai_probability).reindex(ids).to_numpy(float)
        if np.isnan(given).any():
            raise ValueError(f"AI probabilities missing for {int(np.isnan(given).sum())} patient(s)")
    reads, p_ai = simulate_arrays(task, data, positive, np.arange(len(table)), seed, seqs, groups, given)
    reads.insert(0, "patient_id", ids[reads.pop("row").to_numpy()])
    labels = np.where(p_ai >= 0.5, model.positive.label, model.negative.label)
    ai = pd.DataFrame({"patient_id": ids, "p_positive": np.round(p_ai, 4), "ai_call": labels})
    return reads, ai


def read_cohort(root, ai_probability=None, groups=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Simulate the readers of an existing synthetic cohort folder again, e.g. with a trained model's
    probabilities as the AI (``ai_probability`` indexed by patient_id). Returns (reads, ai)."""
    import json
    from pathlib import Path

    root = Path(root)
    meta = json.loads((root / "cohort.json").read_text())
    table = pd.read_csv(root / "latent.csv", dtype={"patient_id": str})
    return simulate(table, meta["task"], int(meta["provenance"]["seed"]), groups, ai_probability)


def describe(task: str, groups=None) -> dict:
    """cohort.json's description of the simulated readers."""
    return {
        "scale": list(SCALE),
        "orientation": "0 = definitely positive class, 1.0 = definitely negative; <= 0.4 is a positive call",
        "sessions": ["first", "ai_assisted"],
        "groups": [asdict(g) for g in (groups or default_groups(task))],
        "ai": asdict(AI[task]),
        "model": "binormal readers whose errors follow the ideal observer's within-class evidence; "
                 "see sarcomri.synth.readers",
    }
