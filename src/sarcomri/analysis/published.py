"""The numbers the report prints, as tables computed by the analysis stage that owns their data.

The report (:mod:`sarcomri.report`) renders these tables and computes nothing. Two stages write them:

* the classification run (:func:`sarcomri.classification.report_tables`, called by ``combine_tables``) writes
  :func:`model_tables` into ``<run>/tables/``:

  - ``decisions.csv``: the model's call per patient: patient_id, sequence, label (1 = positive), score,
    cut, call_positive. Per sequence the score is the ensemble likelihood and the call its vote
    (likelihood >= cut, the vote cut-off); for sequence ``all`` the score is the summed vote score and the
    call the study's (summed score >= cut, the SS-Avg threshold), as in ``summed_score.csv``.
  - ``roc_points.csv`` and ``operating_points.csv``: the model's ROC curve and operating point per sequence
    (and ``all``) on all its patients (:func:`sarcomri.analysis.curves.curve_tables`), and ``roc_band.csv`` its
    95% confidence band (:func:`sarcomri.analysis.curves.band_table`).
  - ``model_card.csv``: the model card's metrics: one row per sequence's likelihood (from
    ``per_sequence.csv``: AUC with DeLong CI; sensitivity, specificity, accuracy at the cut-off with Wilson
    CIs) and one for the summed score at its threshold (the same definitions).
  - ``calibration.csv`` and ``brier.csv``: the likelihoods' reliability curve and Brier score per sequence
    (:mod:`sarcomri.analysis.calibration`).

* the readers stage (:func:`sarcomri.classification.reader_report_tables`; the study's ``readers`` stage)
  writes :func:`reader_report` into the readers' ``tables/`` folder: ``reads.csv`` and ``left_out.csv``
  (:func:`sarcomri.analysis.readers.interpreter_reads`), ``confusion``, ``accuracy`` and ``kappa`` (Tables 3-5
  per sequence; ``kappa_ci`` the kappas per pair with 95% CIs) and ``whole_confusion``, ``whole_accuracy``,
  ``whole_kappa``, ``whole_kappa_ci`` (the same for the whole study:
  summed score vs whole-study reads), ``sessions``, ``per_reader`` and ``tests`` (first vs AI-assisted reads),
  ``mrmc_modalities`` and ``mrmc_differences``, and ``roc_points`` / ``operating_points`` of the model and
  the readers on the cases every interpreter read, with ``roc_band`` the model's band on those cases.

Each folder also gets ``definition.csv``: one row with the settings its tables were computed with
(``cutoff``; for the readers ``reader_cut``, ``model_cutoff``, ``summed_threshold``, ``positive``,
``negative``), ``inputs_key`` (a key of the content of the tables and reads they were computed from) and
``tables`` (the '+'-joined names written). Tables whose definition does not match what they would be
computed from now are stale (:func:`is_current`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from sarcomri.analysis.curves import band_table, curve_tables
from sarcomri.analysis.readers import (
    ASSISTED,
    MODEL,
    WHOLE_STUDY,
    interpreter_reads,
    mrmc_tables,
    published_tables,
    session_tables,
)
from sarcomri.analysis.voting import reader_call, vote
from sarcomri.stats.diagnostic import diagnostic_from_labels
from sarcomri.stats.roc import auc_ci

DEFAULT_CUTOFF = 0.5
DECISION_COLUMNS = ["patient_id", "sequence", "label", "score", "cut", "call_positive"]
CARD_METRICS = ("auc", "sensitivity", "specificity", "accuracy")


def model_cutoff(per_sequence: pd.DataFrame | None, summed_threshold: pd.DataFrame | None) -> float:
    """The likelihood cut-off of the model's call on one sequence: the vote cut-off of the run
    (``summed_threshold.csv``'s vote_cutoff), else ``per_sequence.csv``'s cutoff, else 0.5."""
    for table, column in ((summed_threshold, "vote_cutoff"), (per_sequence, "cutoff")):
        if table is not None and column in table.columns and table[column].notna().any():
            return float(table[column].dropna().iloc[0])
    return DEFAULT_CUTOFF


def decision_table(likelihood: pd.DataFrame, cutoff: float, summed: pd.DataFrame | None = None,
                   threshold: float | None = None) -> pd.DataFrame:
    """``decisions.csv`` (module docstring) from ``likelihood.csv`` and ``summed_score.csv``."""
    frames = [pd.DataFrame({
        "patient_id": likelihood["patient_id"], "sequence": likelihood["sequence"],
        "label": likelihood["label"].astype(int), "score": likelihood["likelihood"].astype(float), "cut": cutoff,
        "call_positive": vote(likelihood["likelihood"], cutoff) == 1})]
    if summed is not None and "call_positive" in summed.columns:
        frames.append(pd.DataFrame({
            "patient_id": summed["patient_id"], "sequence": WHOLE_STUDY, "label": summed["label"].astype(int),
            "score": summed["summed_score"].astype(float), "cut": np.nan if threshold is None else float(threshold),
            "call_positive": summed["call_positive"].astype(bool)}))
    return pd.concat(frames, ignore_index=True)[DECISION_COLUMNS]


def model_card_table(per_sequence: pd.DataFrame | None, decisions: pd.DataFrame) -> pd.DataFrame:
    """``model_card.csv`` (module docstring): model, n and auc, sensitivity, specificity, accuracy with their
    ``_lower`` / ``_upper`` 95% CI bounds."""
    columns = ["model", "n", *[m for k in CARD_METRICS for m in (k, f"{k}_lower", f"{k}_upper")]]
    rows = []
    for r in ([] if per_sequence is None else per_sequence.to_dict("records")):
        rows.append({"model": f"{r['sequence']} likelihood", "n": r.get("n"), **{m: r.get(m) for m in columns[2:]}})
    whole = decisions[decisions["sequence"] == WHOLE_STUDY]
    if len(whole) and whole["label"].nunique() == 2:
        res = diagnostic_from_labels(whole["label"], whole["call_positive"].astype(int), 1).to_row()
        a = auc_ci(whole["label"], whole["score"], 1, "<")
        rows.append({"model": "summed score (all sequences)", "n": len(whole), "auc": a.auc, "auc_lower": a.lower,
                     "auc_upper": a.upper, **{m: res[m] for m in columns[5:]}})
    return pd.DataFrame(rows, columns=columns)


def model_tables(likelihood: pd.DataFrame, per_sequence: pd.DataFrame | None = None,
                 summed: pd.DataFrame | None = None, summed_threshold: pd.DataFrame | None = None) -> dict:
    """The classification run's report tables (module docstring): decisions, roc_points, operating_points,
    roc_band, model_card, calibration, brier."""
    from sarcomri.analysis.calibration import calibration_tables

    threshold = None
    if summed_threshold is not None and len(summed_threshold):
        threshold = float(summed_threshold["threshold"].iloc[0])
    decisions = decision_table(likelihood, model_cutoff(per_sequence, summed_threshold), summed, threshold)
    reads = pd.DataFrame({"case": decisions["patient_id"], "sequence": decisions["sequence"], "interpreter": MODEL,
                          "group": "model", "truth": decisions["label"],
                          "decision": decisions["call_positive"].astype(int), "score": decisions["score"]})
    roc, points = curve_tables(reads, 1)
    return {"decisions": decisions, "roc_points": roc, "operating_points": points, "roc_band": band_table(reads, 1),
            "model_card": model_card_table(per_sequence, decisions), **calibration_tables(likelihood)}


def _two_classes(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of the sequences whose compared patients hold both classes (a diagnostic table needs both)."""
    if frame.empty:
        return frame
    both = frame.groupby("sequence")["truth"].transform("nunique") == 2
    return frame[both]


def reader_report(likelihood: pd.DataFrame, reads: pd.DataFrame, positive: str, negative: str, cut: float,
                  model_cut: float = DEFAULT_CUTOFF, summed: pd.DataFrame | None = None,
                  threshold: float | None = None) -> dict[str, pd.DataFrame]:
    """The readers stage's report tables (module docstring) from the model's likelihoods (and summed score at
    its threshold) and the long reads table; the model-vs-readers tables over the sequences whose compared
    patients hold both classes (a sequence with one class, e.g. no carcinosarcoma among a small test set's ADC
    patients, is left out of them)."""
    frame, left = interpreter_reads(likelihood, reads, positive, negative, cut, model_cut, summed, threshold)
    out: dict[str, pd.DataFrame] = {"reads": frame, "left_out": left}
    compared = _two_classes(frame)
    if len(compared):
        per_seq, whole = compared[compared["sequence"] != WHOLE_STUDY], compared[compared["sequence"] == WHOLE_STUDY]
        out.update(published_tables(per_seq, positive) if len(per_seq) else {})
        out.update({f"whole_{k}": t for k, t in (published_tables(whole, positive) if len(whole) else {}).items()})
    out.update(session_tables(reads, likelihood, positive, negative, cut))
    out.update(mrmc_tables(reads, likelihood, positive, negative))
    labels = likelihood.drop_duplicates("patient_id").set_index("patient_id")["label"]
    aided = reads[(reads["session"] == ASSISTED) & reads["patient_id"].isin(labels.index)]
    aided = aided.assign(truth=np.where(aided["patient_id"].map(labels).astype(int) == 1, positive, negative),
                         decision=reader_call(aided["confidence"], cut, positive, negative))
    out["roc_points"], out["operating_points"] = curve_tables(frame, positive, aided)
    out["roc_band"] = band_table(frame, positive)
    return out


def definition(settings: dict[str, Any], inputs_key: str | None, tables: list[str]) -> pd.DataFrame:
    """``definition.csv``: the settings, the key of the inputs and the names of the tables written."""
    return pd.DataFrame([{**settings, "inputs_key": inputs_key, "tables": "+".join(tables)}])


def is_current(found: pd.DataFrame | None, settings: dict[str, Any], inputs_key: str | None) -> bool:
    """Whether a folder's ``definition.csv`` (``found``, cells as text) matches ``settings`` and ``inputs_key``
    (floats to 1e-12, NaN equal to an empty cell); no definition is not current."""
    if found is None or found.empty:
        return False
    row = found.iloc[0].to_dict()
    for name, want in {**settings, "inputs_key": inputs_key}.items():
        have = row.get(name)
        if isinstance(want, float):
            if not np.isclose(_number(have), want, rtol=0, atol=1e-12, equal_nan=True):
                return False
        elif have is None or str(have) != str(want):
            return False
    return True


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")
