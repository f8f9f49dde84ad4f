"""The model against the radiologists: the published reader tables from the study's likelihoods and reads.

Inputs are two long tables: the model's per-sequence ensemble likelihood (``tables/likelihood.csv``:
patient_id, sequence, label 0/1, likelihood) and the reads (``readers.csv``: patient_id, reader, group,
sequence, session, confidence on the 6-point scale 0..1 where **0 is definitely the positive class**).

* the carcinosarcoma study's Tables 3-5 per sequence: confusion matrices, sensitivity / specificity /
  accuracy with Wilson CIs and AUC with the paired DeLong p-value against the model, and the Cohen's kappa
  matrix of the model and every reader (first reads only, on the cases both the model and the reader have);
* the sarcoma study's first vs AI-assisted reading: per-group metrics of each session (whole-study reads,
  sequence ``all``), per-reader accuracy before and after, and the paired t, Welch and Wilcoxon tests.

The model's decision is its vote, likelihood >= ``model_cutoff``; a reader's is confidence <= ``cut``
(positive): :mod:`sarcomri.analysis.voting`. Reader scores for the AUC are ``1 - confidence`` so that higher
always means more likely positive. Only sequences some reader read are compared; interpreters are listed
model first, then the readers in the order of the reads table.

The whole study (sequence ``all``) compares the summed score of the votes, called at its threshold, with
the readers' whole-study reads: :func:`interpreter_reads` and :func:`whole_study_tables`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sarcomri.analysis.voting import READER_SCALE, reader_call, vote
from sarcomri.stats.readers import first_vs_assisted, group_metrics
from sarcomri.stats.tables import accuracy_table, confusion_table, kappa_ci_table, kappa_table

MODEL = "CNN"
SCALE = READER_SCALE
FIRST, ASSISTED = "first", "ai_assisted"
WHOLE_STUDY = "all"


def interpreter_frame(likelihood: pd.DataFrame, reads: pd.DataFrame, positive: str, negative: str,
                      cut: float = 0.4, model_cutoff: float = 0.5) -> pd.DataFrame:
    """One row per (sequence, interpreter, case) for :mod:`sarcomri.stats.tables`: the model and the first
    reads of every reader on the sequences the model has and some reader read, restricted to the cases all of
    them read. Columns: sequence, interpreter, case, truth, score, decision."""
    model = pd.DataFrame({
        "sequence": likelihood["sequence"], "interpreter": MODEL, "case": likelihood["patient_id"].astype(str),
        "truth": np.where(likelihood["label"].astype(int) == 1, positive, negative),
        "score": likelihood["likelihood"].astype(float),
        "decision": np.where(vote(likelihood["likelihood"], model_cutoff) == 1, positive, negative),
    })
    first = reads[(reads["session"] == FIRST) & reads["sequence"].isin(model["sequence"].unique())]
    truth = model.drop_duplicates("case").set_index("case")["truth"]
    first = first[first["patient_id"].astype(str).isin(truth.index)]
    readers = pd.DataFrame({
        "sequence": first["sequence"].to_numpy(), "interpreter": first["reader"].astype(str).to_numpy(),
        "case": first["patient_id"].astype(str).to_numpy(),
        "score": 1.0 - first["confidence"].astype(float).to_numpy(),
        "decision": reader_call(first["confidence"], cut, positive, negative),
    })
    readers["truth"] = readers["case"].map(truth).to_numpy()
    frame = pd.concat([model, readers[model.columns]], ignore_index=True)
    parts = []
    for _, part in frame.groupby("sequence", sort=False):
        if part["interpreter"].nunique() < 2:  # no reader read this sequence: nothing to compare
            continue
        shared = set(part.loc[part["interpreter"] == MODEL, "case"])
        for who, one in part.groupby("interpreter", sort=False):
            if who != MODEL:
                shared &= set(one["case"])
        parts.append(part[part["case"].isin(shared)])
    return pd.concat(parts, ignore_index=True) if parts else frame.head(0)


def interpreter_order(frame: pd.DataFrame) -> list[str]:
    """The model first, then the readers in the order they appear in ``frame`` (the published tables' order)."""
    return [MODEL, *dict.fromkeys(frame.loc[frame["interpreter"] != MODEL, "interpreter"])]


def published_tables(frame: pd.DataFrame, positive: str) -> dict[str, pd.DataFrame]:
    """The carcinosarcoma study's Tables 3-5 of an :func:`interpreter_frame`: ``confusion`` (counts per true
    class), ``accuracy`` (Wilson CIs; AUC with DeLong CI and the paired DeLong p against the model) and
    ``kappa`` (Cohen's kappa between all interpreters), per sequence, and ``kappa_ci`` (the same kappas per
    pair with their 95% CIs)."""
    return {
        "confusion": confusion_table(frame, positive),
        "accuracy": accuracy_table(frame, positive, MODEL),
        "kappa": kappa_table(frame, order=interpreter_order(frame)).reset_index(),
        "kappa_ci": kappa_ci_table(frame, order=interpreter_order(frame)),
    }


def reader_tables(likelihood: pd.DataFrame, reads: pd.DataFrame, positive: str, negative: str,
                  cut: float = 0.4, model_cutoff: float = 0.5) -> dict[str, pd.DataFrame]:
    """The model-vs-readers tables (keys: confusion, accuracy, kappa) and, when the reads have an AI-assisted
    session, the reading tables (sessions, per_reader, tests)."""
    frame = interpreter_frame(likelihood, reads, positive, negative, cut, model_cutoff)
    out = published_tables(frame, positive)
    out.update(session_tables(reads, likelihood, positive, negative, cut))
    return out


def session_tables(reads: pd.DataFrame, likelihood: pd.DataFrame, positive: str, negative: str,
                   cut: float = 0.4) -> dict[str, pd.DataFrame]:
    """First vs AI-assisted whole-study reads: per-group metrics per session, per-reader accuracy, tests (none
    when both sessions are not there, or the patients the model scored hold a single class)."""
    whole = reads[reads["sequence"] == WHOLE_STUDY]
    if not {FIRST, ASSISTED} <= set(whole["session"]):
        return {}
    first_rows = likelihood.drop_duplicates("patient_id")
    truth = pd.Series(first_rows["label"].to_numpy(), index=first_rows["patient_id"].astype(str))
    whole = whole[whole["patient_id"].astype(str).isin(truth.index)].copy()
    whole["truth"] = np.where(whole["patient_id"].astype(str).map(truth).astype(int) == 1, positive, negative)
    if whole["truth"].nunique() < 2:  # the reads the model can be compared on hold one class: no diagnostic table
        return {}
    whole["decision"] = reader_call(whole["confidence"], cut, positive, negative)
    groups = dict(zip(whole["reader"], whole["group"], strict=False))
    sessions = pd.concat([group_metrics(whole[whole["session"] == s], "reader", "truth", "decision", positive, groups)
                          .assign(session=s) for s in (FIRST, ASSISTED)], ignore_index=True)
    per_reader, tests = first_vs_assisted(whole, "reader", "session", "truth", "decision", positive, FIRST, ASSISTED)
    per_reader["group"] = per_reader["reader"].map(groups)
    return {"sessions": sessions, "per_reader": per_reader, "tests": tests}


def whole_study_frame(summed: pd.DataFrame, reads: pd.DataFrame, positive: str, negative: str, cut: float,
                      threshold: float) -> pd.DataFrame:
    """:func:`interpreter_frame` of the whole study (sequence ``all``): the summed score of the votes
    (``summed_score.csv``: patient_id, label, summed_score) called at ``threshold``, against the readers'
    whole-study first reads."""
    whole = pd.DataFrame({"patient_id": summed["patient_id"], "sequence": WHOLE_STUDY, "label": summed["label"],
                          "likelihood": summed["summed_score"].astype(float)})
    return interpreter_frame(whole, reads, positive, negative, cut, threshold)


def interpreter_reads(likelihood: pd.DataFrame, reads: pd.DataFrame, positive: str, negative: str, cut: float = 0.4,
                      model_cutoff: float = 0.5, summed: pd.DataFrame | None = None,
                      threshold: float | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The model's and the readers' first reads on the cases every interpreter read, per sequence and (with
    ``summed`` and ``threshold``) for the whole study, and how many of the model's cases that leaves out.

    Returns ``reads`` (columns: case, sequence, interpreter, group, truth, decision, score; ``group`` is the
    reader's group, ``model`` for the model) and ``left_out`` (sequence, model_cases, shared_cases, left_out:
    the model's cases some reader did not read, which the paired tests cannot use).
    """
    frames = [interpreter_frame(likelihood, reads, positive, negative, cut, model_cutoff)]
    model_cases = likelihood.groupby("sequence", sort=False)["patient_id"].nunique()
    if summed is not None and threshold is not None:
        frames.append(whole_study_frame(summed, reads, positive, negative, cut, threshold))
        model_cases[WHOLE_STUDY] = summed["patient_id"].nunique()
    frame = pd.concat(frames, ignore_index=True)
    groups = reads.drop_duplicates("reader").set_index("reader")["group"].astype(str)
    frame["group"] = frame["interpreter"].map(groups).fillna("model")
    shared = frame[frame["interpreter"] == MODEL].groupby("sequence", sort=False)["case"].nunique()
    left = pd.DataFrame({"sequence": shared.index.astype(str), "model_cases": model_cases.reindex(shared.index)
                         .fillna(shared).astype(int).to_numpy(), "shared_cases": shared.to_numpy()})
    left["left_out"] = left["model_cases"] - left["shared_cases"]
    return frame[["case", "sequence", "interpreter", "group", "truth", "decision", "score"]], left


def mrmc_tables(reads: pd.DataFrame, likelihood: pd.DataFrame, positive: str,
                negative: str) -> dict[str, pd.DataFrame]:
    """The Obuchowski-Rockette MRMC comparison of the reader-averaged AUCs of the whole-study reads, first vs
    AI-assisted (:func:`sarcomri.stats.mrmc.or_mrmc`, reader score = 1 - confidence): ``mrmc_modalities`` (AUC
    per session with CI) and ``mrmc_differences`` (the difference with CI and p), every analysis (``rrrc``:
    random readers and cases). Empty when the reads have no second session or the design is unbalanced."""
    from sarcomri.errors import SarcomriError
    from sarcomri.stats import mrmc

    whole = reads[(reads["sequence"] == WHOLE_STUDY) & reads["patient_id"].isin(set(likelihood["patient_id"]))]
    if not {FIRST, ASSISTED} <= set(whole["session"]):
        return {}
    labels = likelihood.drop_duplicates("patient_id").set_index("patient_id")["label"]
    whole = whole.assign(truth=np.where(whole["patient_id"].map(labels).astype(int) == 1, positive, negative),
                         score=1.0 - whole["confidence"].astype(float))
    try:
        res = mrmc.or_mrmc(whole, "reader", "patient_id", "session", "truth", "score", positive)
    except (SarcomriError, ValueError, np.linalg.LinAlgError):  # an unbalanced design: no MRMC table
        return {}
    return {"mrmc_modalities": res.modalities, "mrmc_differences": res.differences}
