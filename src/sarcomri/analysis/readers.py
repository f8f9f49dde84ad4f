"""The model against the radiologists: the published reader tables from the study's likelihoods and reads.

Inputs are two long tables: the model's per-sequence ensemble likelihood (``tables/likelihood.csv``:
patient_id, sequence, label 0/1, likelihood) and the reads (``readers.csv``: patient_id, reader, group,
sequence, session, confidence on the 6-point scale 0..1 where **0 is definitely the positive class**).

* the carcinosarcoma study's Tables 3-5 per sequence: confusion matrices, sensitivity / specificity /
  accuracy with Wilson CIs and AUC with the paired DeLong p-value against the model, and the Cohen's kappa
  matrix of the model and every reader (first reads only, on the cases both the model and the reader have);
* the sarcoma study's first vs AI-assisted reading: per-group metrics of each session (whole-study reads,
  sequence ``all``), per-reader accuracy before and after, and the paired t, Welch and Wilcoxon tests.

The model's decision is likelihood >= ``model_cutoff``; a reader's is confidence <= ``cut`` (positive).
Reader scores for the AUC are ``1 - confidence`` so that higher always means more likely positive.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sarcomri.stats.readers import first_vs_assisted, group_metrics, scale_to_decision
from sarcomri.stats.tables import accuracy_table, confusion_table, kappa_table

MODEL = "CNN"
SCALE = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
FIRST, ASSISTED = "first", "ai_assisted"


def interpreter_frame(likelihood: pd.DataFrame, reads: pd.DataFrame, positive: str, negative: str,
                      cut: float = 0.4, model_cutoff: float = 0.5) -> pd.DataFrame:
    """One row per (sequence, interpreter, case) for :mod:`sarcomri.stats.tables`: the model and the first
    reads of every reader on the sequences the model has, restricted to cases both have."""
    model = pd.DataFrame({
        "sequence": likelihood["sequence"], "interpreter": MODEL, "case": likelihood["patient_id"].astype(str),
        "truth": np.where(likelihood["label"].astype(int) == 1, positive, negative),
        "score": likelihood["likelihood"].astype(float),
        "decision": np.where(likelihood["likelihood"] >= model_cutoff, positive, negative),
    })
    first = reads[(reads["session"] == FIRST) & reads["sequence"].isin(model["sequence"].unique())]
    truth = model.drop_duplicates("case").set_index("case")["truth"]
    first = first[first["patient_id"].astype(str).isin(truth.index)]
    readers = pd.DataFrame({
        "sequence": first["sequence"].to_numpy(), "interpreter": first["reader"].astype(str).to_numpy(),
        "case": first["patient_id"].astype(str).to_numpy(),
        "score": 1.0 - first["confidence"].astype(float).to_numpy(),
        "decision": scale_to_decision(first["confidence"], cut, positive, negative, SCALE),
    })
    readers["truth"] = readers["case"].map(truth).to_numpy()
    frame = pd.concat([model, readers[model.columns]], ignore_index=True)
    parts = []
    for _, part in frame.groupby("sequence", sort=False):
        shared = set(part.loc[part["interpreter"] == MODEL, "case"])
        for who, one in part.groupby("interpreter", sort=False):
            if who != MODEL:
                shared &= set(one["case"])
        parts.append(part[part["case"].isin(shared)])
    return pd.concat(parts, ignore_index=True)


def reader_tables(likelihood: pd.DataFrame, reads: pd.DataFrame, positive: str, negative: str,
                  cut: float = 0.4, model_cutoff: float = 0.5) -> dict[str, pd.DataFrame]:
    """The model-vs-readers tables (keys: confusion, accuracy, kappa) and, when the reads have an AI-assisted
    session, the reading tables (sessions, per_reader, tests)."""
    frame = interpreter_frame(likelihood, reads, positive, negative, cut, model_cutoff)
    order = [MODEL, *sorted(set(frame["interpreter"]) - {MODEL})]
    out = {
        "confusion": confusion_table(frame, positive),
        "accuracy": accuracy_table(frame, positive, MODEL),
        "kappa": kappa_table(frame, order=order).reset_index(),
    }
    out.update(session_tables(reads, likelihood, positive, negative, cut))
    return out


def session_tables(reads: pd.DataFrame, likelihood: pd.DataFrame, positive: str, negative: str,
                   cut: float = 0.4) -> dict[str, pd.DataFrame]:
    """First vs AI-assisted whole-study reads: per-group metrics per session, per-reader accuracy, tests."""
    whole = reads[reads["sequence"] == "all"]
    if not {FIRST, ASSISTED} <= set(whole["session"]):
        return {}
    first_rows = likelihood.drop_duplicates("patient_id")
    truth = pd.Series(first_rows["label"].to_numpy(), index=first_rows["patient_id"].astype(str))
    whole = whole[whole["patient_id"].astype(str).isin(truth.index)].copy()
    whole["truth"] = np.where(whole["patient_id"].astype(str).map(truth).astype(int) == 1, positive, negative)
    whole["decision"] = scale_to_decision(whole["confidence"], cut, positive, negative, SCALE)
    groups = dict(zip(whole["reader"], whole["group"], strict=False))
    sessions = pd.concat([group_metrics(whole[whole["session"] == s], "reader", "truth", "decision", positive, groups)
                          .assign(session=s) for s in (FIRST, ASSISTED)], ignore_index=True)
    per_reader, tests = first_vs_assisted(whole, "reader", "session", "truth", "decision", positive, FIRST, ASSISTED)
    per_reader["group"] = per_reader["reader"].map(groups)
    return {"sessions": sessions, "per_reader": per_reader, "tests": tests}
