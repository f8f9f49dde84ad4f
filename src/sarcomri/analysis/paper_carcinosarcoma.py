"""The carcinosarcoma paper's tables (carcinosarcoma vs endometrial carcinoma; one CNN per sequence and three
radiologists on a 6-point scale per sequence), from a classification run's likelihoods and the readers' reads.

Inputs are data frames, nothing is read from a path: ``likelihood`` (``tables/likelihood.csv``: patient_id,
sequence, label 1 = ``positive``, likelihood), ``reads`` (``readers.csv``: patient_id, reader, group,
sequence, session, confidence, 0 = definitely ``positive``) and ``patients`` (``patients.csv``: patient_id,
label and the clinical columns).

* Table 1: patients' characteristics per class (:func:`sarcomri.stats.groups.table1`): continuous columns as
  median [Q1, Q3] with the two-sided Mann-Whitney U p; categorical columns as n (%) with Pearson's chi-square
  (no continuity correction) when every expected count is at least 5, else Fisher's exact test (2 x 2 or
  r x c); the ``test`` column names the test used for each variable.
* Table 3: the confusion counts TP, FN, FP, TN of the CNN and of each reader per sequence.
* Table 4: sensitivity, specificity, accuracy, PPV and NPV with Wilson 95% CIs
  (:mod:`sarcomri.stats.diagnostic`), AUC with its DeLong CI, and the paired DeLong p of each reader's AUC
  against the CNN's on the same cases.
* Table 5: pairwise Cohen's kappa between the readers per sequence with the Landis-Koch label.

Decisions: the CNN calls ``positive`` when its likelihood is at or above ``cutoff``; a reader when the
confidence is at or below ``cut`` (:mod:`sarcomri.analysis.voting`). Only first (unaided) reads are used.
Per sequence that some reader read, every interpreter is counted on the cases all of them read (the paired
tests need the same cases); on the other sequences the CNN on all its cases.

Orientation: ``printed_positive`` chooses the class printed as positive (default ``positive``). The paper
printed endometrial carcinoma as positive (T2WI CNN sensitivity 52/56 = 0.93), which swaps sensitivity with
specificity and PPV with NPV, and TP/FN with TN/FP. Scores stay oriented to ``positive`` (higher = more
likely ``positive``) and the ROC direction flips to '>' with the printed class, so the AUC is the same in
both orientations. Every note says which class is positive.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sarcomri.analysis.readers import FIRST, MODEL, interpreter_frame
from sarcomri.analysis.voting import READER_SCALE, reader_call, vote
from sarcomri.errors import InputError
from sarcomri.report.papertables import PaperTable, write_paper_table
from sarcomri.stats.agreement import kappa_pairs, landis_koch
from sarcomri.stats.diagnostic import confusion_matrix, diagnostic_metrics
from sarcomri.stats.groups import table1
from sarcomri.stats.roc import auc_ci, delong_test

PAPER = "carcinosarcoma paper"
#: Tables are ordered ORDER + the paper's table number, so that two papers' tables in one folder do not mix.
ORDER = 10
PREFIX = "carcinosarcoma_"
#: Clinical columns Table 1 shows by default, those the cohort has.
CONTINUOUS = ("age",)
CATEGORICAL = ("stage", "histology", "grade", "exophytic")
METRICS = ("sensitivity", "specificity", "accuracy", "ppv", "npv")
CALL_COLUMNS = ["sequence", "interpreter", "group", "case", "truth", "decision", "score"]


def model_calls(likelihood: pd.DataFrame, positive: str, negative: str, cutoff: float = 0.5) -> pd.DataFrame:
    """The CNN's call per (sequence, patient): likelihood at or above ``cutoff`` is ``positive``.
    Columns: :data:`CALL_COLUMNS` (score = the likelihood, higher = more likely ``positive``)."""
    return pd.DataFrame({
        "sequence": likelihood["sequence"].to_numpy(), "interpreter": MODEL, "group": "model",
        "case": likelihood["patient_id"].astype(str).to_numpy(),
        "truth": np.where(likelihood["label"].astype(int) == 1, positive, negative),
        "decision": np.where(vote(likelihood["likelihood"], cutoff) == 1, positive, negative),
        "score": likelihood["likelihood"].astype(float).to_numpy()})


def interpreter_calls(likelihood: pd.DataFrame, reads: pd.DataFrame | None, positive: str, negative: str,
                      cut: float = 0.4, cutoff: float = 0.5) -> pd.DataFrame:
    """The CNN's and every reader's first-read calls per (sequence, interpreter, case) (:data:`CALL_COLUMNS`).

    On a sequence some reader read, every interpreter on the cases all of them read
    (:func:`sarcomri.analysis.readers.interpreter_frame`); on the others the CNN on all its cases. Reader
    scores are 1 - confidence, so higher means more likely ``positive`` for every interpreter.
    """
    model = model_calls(likelihood, positive, negative, cutoff)
    if reads is None or reads.empty:
        return model
    shared = interpreter_frame(likelihood, reads, positive, negative, cut, cutoff)
    groups = _reader_groups(reads)
    shared = shared.assign(group=shared["interpreter"].map(groups).fillna("model"))
    alone = model[~model["sequence"].isin(set(shared["sequence"]))]
    return pd.concat([shared[CALL_COLUMNS], alone], ignore_index=True)


def _reader_groups(reads: pd.DataFrame) -> pd.Series:
    """Reader name (as text) -> group name (as text; 'reader' when the reads have no group column)."""
    first = reads.drop_duplicates("reader")
    groups = first["group"].astype(str).to_numpy() if "group" in first.columns else "reader"
    return pd.Series(groups, index=first["reader"].astype(str).to_numpy(), dtype=object)


def _parts(calls: pd.DataFrame) -> list[tuple[tuple[Any, Any, Any], pd.DataFrame]]:
    """(sequence, interpreter, group) blocks in the table's order: sequences as they come, the CNN first."""
    out = []
    for seq, part in calls.groupby("sequence", sort=False):
        order = [MODEL, *[i for i in dict.fromkeys(part["interpreter"]) if i != MODEL]]
        for who in order:
            mine = part[part["interpreter"] == who]
            if len(mine):
                out.append(((seq, who, mine["group"].iloc[0]), mine))
    return out


def confusion_counts(calls: pd.DataFrame, printed_positive: str) -> pd.DataFrame:
    """Table 3: one row per (sequence, interpreter): sequence, interpreter, group, n, TP, FN, FP, TN with
    ``printed_positive`` as the positive class."""
    rows = []
    for (seq, who, group), part in _parts(calls):
        cm = confusion_matrix(part["truth"], part["decision"], printed_positive)
        rows.append({"sequence": seq, "interpreter": who, "group": group, "n": cm.n,
                     "TP": cm.tp, "FN": cm.fn, "FP": cm.fp, "TN": cm.tn})
    return pd.DataFrame(rows, columns=["sequence", "interpreter", "group", "n", "TP", "FN", "FP", "TN"])


def _auc_columns(part: pd.DataFrame, model: pd.DataFrame | None, printed_positive: str,
                 direction: str, alpha: float) -> dict[str, float]:
    """AUC with DeLong CI and the paired DeLong p against the CNN (NaN where a class has fewer than two
    cases, or for the CNN itself)."""
    out = {"auc": np.nan, "auc_lower": np.nan, "auc_upper": np.nan, "p_vs_cnn": np.nan}
    is_pos = (part["truth"] == printed_positive).to_numpy()
    if is_pos.sum() < 2 or (~is_pos).sum() < 2:
        return out
    a = auc_ci(part["truth"], part["score"], printed_positive, direction, alpha=alpha)
    out.update(auc=a.auc, auc_lower=a.lower, auc_upper=a.upper)
    if model is not None:
        both = part[["case", "truth", "score"]].merge(model[["case", "score"]], on="case", suffixes=("", "_cnn"))
        if len(both) == len(part):
            test = delong_test(both["truth"], both["score"], both["score_cnn"], printed_positive, direction, alpha)
            out["p_vs_cnn"] = test.p_value
    return out


def performance(calls: pd.DataFrame, positive: str, printed_positive: str | None = None, method: str = "wilson",
                alpha: float = 0.05) -> pd.DataFrame:
    """Table 4: one row per (sequence, interpreter): sequence, interpreter, group, n, then sensitivity,
    specificity, accuracy, ppv, npv each with ``_lower`` / ``_upper`` ((1 - alpha) CIs by ``method``), auc,
    auc_lower, auc_upper (DeLong) and p_vs_cnn (paired DeLong, reader vs CNN on the same cases).

    ``positive`` is the class the scores point to (higher = more likely); ``printed_positive`` (default
    ``positive``) the class counted as positive.
    """
    printed = positive if printed_positive is None else printed_positive
    direction = "<" if printed == positive else ">"
    rows = []
    for (seq, who, group), part in _parts(calls):
        res = diagnostic_metrics(confusion_matrix(part["truth"], part["decision"], printed), method, alpha).to_row()
        model = calls[(calls["sequence"] == seq) & (calls["interpreter"] == MODEL)] if who != MODEL else None
        row: dict[str, Any] = {"sequence": seq, "interpreter": who, "group": group, "n": len(part)}
        row.update({k: res[k] for m in METRICS for k in (m, f"{m}_lower", f"{m}_upper")})
        row.update(_auc_columns(part, model, printed, direction, alpha))
        rows.append(row)
    return pd.DataFrame(rows)


def _first_reads(reads: pd.DataFrame, likelihood: pd.DataFrame) -> pd.DataFrame:
    """First reads of the patients and sequences the CNN has, confidence rounded to the scale's 0.1 steps."""
    first = reads[(reads["session"] == FIRST) & reads["sequence"].isin(set(likelihood["sequence"]))
                  & reads["patient_id"].astype(str).isin(set(likelihood["patient_id"].astype(str)))]
    return first.assign(patient_id=first["patient_id"].astype(str), reader=first["reader"].astype(str),
                        confidence=first["confidence"].astype(float).round(6))


def reader_agreement(reads: pd.DataFrame, likelihood: pd.DataFrame, positive: str, negative: str,
                     cut: float = 0.4, weights: str | None = "quadratic", alpha: float = 0.05) -> pd.DataFrame:
    """Table 5: pairwise Cohen's kappa between the readers per sequence (first reads of the CNN's patients;
    each pair on the cases both read).

    ``kappa`` (CI ``kappa_lower`` / ``kappa_upper``, ``agreement`` its Landis-Koch label) is on the 6-point
    confidence with ``weights`` ('quadratic' by default; None for unweighted), the weights placing the six
    scale points at equal steps as ``sklearn.metrics.cohen_kappa_score(..., labels=scale)`` does;
    ``kappa_calls`` (``agreement_calls``) is the unweighted kappa of the binary calls at ``cut``.
    Columns: sequence, reader1, reader2, n, kappa, kappa_lower, kappa_upper, agreement, kappa_calls,
    agreement_calls.
    """
    columns = ["sequence", "reader1", "reader2", "n", "kappa", "kappa_lower", "kappa_upper", "agreement",
               "kappa_calls", "agreement_calls"]
    first = _first_reads(reads, likelihood)
    rows = []
    for seq, part in first.groupby("sequence", sort=False):
        if part["reader"].nunique() < 2:
            continue
        ratings = part.pivot(index="patient_id", columns="reader", values="confidence")
        ratings = ratings[list(dict.fromkeys(part["reader"]))]
        calls = ratings.apply(lambda c: pd.Series(_calls(c, cut, positive, negative), index=c.index))
        on_scale = kappa_pairs(ratings, weights, READER_SCALE, alpha)
        on_calls = kappa_pairs(calls, None, [positive, negative], alpha)
        for r, c in zip(on_scale.to_dict("records"), on_calls.to_dict("records"), strict=True):
            rows.append({"sequence": seq, "reader1": r["rater1"], "reader2": r["rater2"], "n": r["n"],
                         "kappa": r["kappa"], "kappa_lower": r["lower"], "kappa_upper": r["upper"],
                         "agreement": landis_koch(r["kappa"]), "kappa_calls": c["kappa"],
                         "agreement_calls": landis_koch(c["kappa"])})
    return pd.DataFrame(rows, columns=columns)


def _calls(confidence: pd.Series, cut: float, positive: str, negative: str) -> np.ndarray:
    """Reader calls of a column of ratings, missing ratings kept missing."""
    out = np.full(len(confidence), None, dtype=object)
    known = confidence.notna().to_numpy()
    out[known] = reader_call(confidence[known], cut, positive, negative)
    return out


def patient_classes(patients: pd.DataFrame, likelihood: pd.DataFrame | None, positive: str,
                    negative: str) -> pd.Series:
    """Each patient's class name: ``patients``' label column where it holds the class names, else the
    likelihood table's label (1 = ``positive``); patients with neither get NaN."""
    if "label" in patients.columns and set(patients["label"].dropna().astype(str)) <= {positive, negative}:
        return patients["label"].astype(object)
    if likelihood is None or likelihood.empty:
        raise InputError(None, "patients table has no class label and no likelihoods to take it from")
    first = likelihood.drop_duplicates("patient_id")
    names = pd.Series(np.where(first["label"].astype(int) == 1, positive, negative),
                      index=first["patient_id"].astype(str).to_numpy())
    return patients["patient_id"].astype(str).map(names).astype(object)


def characteristics(patients: pd.DataFrame, classes: pd.Series, continuous: Sequence[str] | None = None,
                    categorical: Sequence[str] | None = None, digits: int = 1) -> pd.DataFrame:
    """Table 1: per class (``classes``, aligned with ``patients``) the continuous columns as median [Q1, Q3]
    with the Mann-Whitney U p and the categorical columns as n (%) with the chi-square / Fisher p
    (:func:`sarcomri.stats.groups.table1`). Columns default to :data:`CONTINUOUS` and :data:`CATEGORICAL`,
    those ``patients`` has with some value; empty strings count as missing."""
    def present(names: Sequence[str]) -> list[str]:
        return [c for c in names if c in patients.columns and patients[c].replace("", np.nan).notna().any()]

    cont = present(CONTINUOUS if continuous is None else continuous)
    cat = present(CATEGORICAL if categorical is None else categorical)
    frame = patients[cont + cat].copy()
    for c in cat:
        frame[c] = frame[c].replace("", np.nan).astype(object)
    frame["class"] = classes.to_numpy()
    return table1(frame, "class", cont, cat, digits)


def carcinosarcoma_tables(likelihood: pd.DataFrame, reads: pd.DataFrame | None, patients: pd.DataFrame | None,
                          positive: str, negative: str, cut: float = 0.4, cutoff: float = 0.5,
                          printed_positive: str | None = None, kappa_weights: str | None = "quadratic",
                          continuous: Sequence[str] | None = None,
                          categorical: Sequence[str] | None = None) -> list[tuple[PaperTable, pd.DataFrame]]:
    """The paper's Tables 1, 3, 4 and 5 (module docstring) as (PaperTable, frame) pairs; Table 1 only with
    ``patients``, Table 5 only with reads of at least two readers."""
    printed = positive if printed_positive is None else printed_positive
    if printed not in (positive, negative):
        raise InputError(None, f"printed positive class must be {positive!r} or {negative!r}, not {printed!r}")
    other = negative if printed == positive else positive
    side = f"{printed} is the positive class, {other} the negative one"
    out = []
    if patients is not None and not patients.empty:
        classes = patient_classes(patients, likelihood, positive, negative)
        t1 = characteristics(patients, classes, continuous, categorical)
        out.append((PaperTable(f"{PREFIX}table1_patients", f"Table 1 ({PAPER}): patients' characteristics",
                               "Median [Q1, Q3] with the two-sided Mann-Whitney U p; n (%) with Pearson's chi-square "
                               "p (no continuity correction), or Fisher's exact p when an expected count is below 5 "
                               "(the test column says which).", ORDER + 1), t1))
    calls = interpreter_calls(likelihood, reads, positive, negative, cut, cutoff)
    rule = (f"The CNN calls {positive} at likelihood >= {cutoff:g}; a reader at confidence <= {cut:g} "
            f"(first reads).")
    cases = ("On a sequence the readers read, every interpreter on the cases all of them read; otherwise the "
             "CNN on all its patients.")
    out.append((PaperTable(f"{PREFIX}table3_confusion", f"Table 3 ({PAPER}): confusion matrices of the CNN and the "
                           "radiologists", f"{side}. {rule} {cases}", ORDER + 3), confusion_counts(calls, printed)))
    out.append((PaperTable(f"{PREFIX}table4_performance", f"Table 4 ({PAPER}): diagnostic performance",
                           f"{side}. {rule} Sensitivity, specificity, accuracy, PPV and NPV with Wilson 95% CIs; AUC "
                           f"with DeLong 95% CI (the same in either orientation); p_vs_cnn: paired DeLong test of the "
                           f"reader's AUC (score 1 - confidence) against the CNN's. {cases}", ORDER + 4),
                performance(calls, positive, printed)))
    if reads is not None and not reads.empty:
        kappa = reader_agreement(reads, likelihood, positive, negative, cut, kappa_weights)
        if not kappa.empty:
            kind = "unweighted" if kappa_weights is None else f"{kappa_weights}-weighted"
            out.append((PaperTable(f"{PREFIX}table5_kappa", f"Table 5 ({PAPER}): inter-reader agreement "
                                   "(Cohen's kappa)",
                                   f"kappa: {kind} Cohen's kappa of the 6-point confidence (scale points at equal "
                                   f"steps), 95% CI from the large-sample SE; kappa_calls: unweighted kappa of the "
                                   f"calls at confidence <= {cut:g}. Landis-Koch labels: poor < 0, slight 0-0.20, "
                                   "fair 0.21-0.40, moderate 0.41-0.60, substantial 0.61-0.80, almost perfect "
                                   "0.81-1. First reads; each pair on the cases both read.", ORDER + 5), kappa))
    return out


def write_carcinosarcoma_tables(likelihood: pd.DataFrame, reads: pd.DataFrame | None,
                                patients: pd.DataFrame | None, out_dir: str | Path, positive: str, negative: str,
                                cut: float = 0.4, cutoff: float = 0.5, printed_positive: str | None = None,
                                kappa_weights: str | None = "quadratic", continuous: Sequence[str] | None = None,
                                categorical: Sequence[str] | None = None) -> list[str]:
    """Write :func:`carcinosarcoma_tables` into ``out_dir`` (a run's ``paper/`` folder) with
    :func:`sarcomri.report.papertables.write_paper_table`; returns the names of the tables written."""
    tables = carcinosarcoma_tables(likelihood, reads, patients, positive, negative, cut, cutoff, printed_positive,
                                   kappa_weights, continuous, categorical)
    for table, frame in tables:
        write_paper_table(out_dir, table, frame)
    return [table.name for table, _ in tables]
