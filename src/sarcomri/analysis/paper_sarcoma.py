"""The sarcoma paper's tables (uterine sarcoma vs leiomyoma; an ensemble of CNNs whose per-sequence votes are
summed; reader groups of specialists and general practitioners reading without and with the AI's result),
from a classification run's tables and the readers' reads.

Inputs are data frames, nothing is read from a path: ``likelihood`` (``tables/likelihood.csv``: patient_id,
sequence, label 1 = ``positive``, likelihood), optionally ``summed`` (``summed_score.csv``: patient_id, label,
summed_score, call_positive) and ``combinations`` (``combinations.csv``), ``reads`` (``readers.csv``:
patient_id, reader, group, sequence, session, confidence, 0 = definitely ``positive``; the whole-study reads,
sequence ``all``, are used) and ``patients`` (``patients.csv``: the clinical columns).

* Top-k sequence combinations with their average (:func:`sarcomri.analysis.combinations.top_k_summary`) out
  of the 2^n - 1 non-empty subsets of the n sequences.
* Reader groups without and with the AI: sensitivity, specificity, accuracy and SS-Avg of the pooled paired
  reads of each group, and the exact clustered McNemar p of the change
  (:func:`sarcomri.stats.groups.clustered_mcnemar`: the reads of one patient by the group's readers form a
  cluster, so the p-value allows for their correlation; with one reader it is McNemar's exact test). SS-Avg
  is not a proportion and gets no test.
* The model against each group's unaided reads, the same metrics and test on the same patients (the model's
  outcome paired with each reader's).
* Overlap of the model's and the readers' errors per class (the paper's Figure 2e/f): a patient is
  misdiagnosed by a group when a strict majority of the group's readers who read it called it wrongly.
* Misdiagnosed patients (by the model or a group's majority) with the model's score, every reader's
  unaided call and the clinical attributes the cohort has.

The model's decision is the study's: the summed vote score at its SS-Avg threshold (``summed``'s
call_positive; without ``summed`` it is recomputed from ``likelihood`` at ``cutoff`` as
:func:`sarcomri.classification.combine_tables` does). A reader calls ``positive`` at confidence <= ``cut``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sarcomri.analysis.combinations import search_combinations, top_k_summary
from sarcomri.analysis.readers import ASSISTED, FIRST, WHOLE_STUDY
from sarcomri.analysis.voting import best_integer_threshold, reader_call, summed_call, summed_score, votes
from sarcomri.errors import InputError
from sarcomri.report.papertables import PaperTable, write_paper_table
from sarcomri.stats.groups import clustered_mcnemar

PAPER = "sarcoma paper"
#: Tables are ordered ORDER + the paper's table number, so that two papers' tables in one folder do not mix.
ORDER = 20
PREFIX = "sarcoma_"
#: Clinical columns the misdiagnosed-patients table shows, those the cohort has.
ATTRIBUTES = ("histology", "degenerated", "irregular_margin", "diameter_mm", "age", "stage", "grade",
              "exophytic", "site", "center")
#: Metrics of the reader tables: (name, which truth the proportion counts; None for all patients).
PROPORTIONS = (("sensitivity", True), ("specificity", False), ("accuracy", None))
SESSION_NAMES = {FIRST: "without AI", ASSISTED: "with AI"}


def model_decisions(likelihood: pd.DataFrame, positive: str, negative: str, cutoff: float = 0.5,
                    summed: pd.DataFrame | None = None) -> pd.DataFrame:
    """The model's call per patient: patient_id, truth, mean_likelihood (over the patient's sequences),
    summed_score, call (``summed``'s call_positive; without it the SS-Avg threshold of the summed votes at
    ``cutoff``, recomputed from ``likelihood``)."""
    lik = likelihood.assign(patient_id=likelihood["patient_id"].astype(str))
    mean = lik.groupby("patient_id", sort=False)["likelihood"].mean()
    if summed is None or "call_positive" not in summed.columns:
        labels = lik.groupby("patient_id")["label"].first()
        score = summed_score(votes(lik, cutoff))
        y = labels.reindex(score.index).to_numpy()
        threshold = int(best_integer_threshold(score.to_numpy()[None], y)["threshold"][0])
        summed = pd.DataFrame({"patient_id": score.index, "label": y, "summed_score": score.to_numpy(),
                               "call_positive": summed_call(score.to_numpy(), threshold)})
    s = summed.assign(patient_id=summed["patient_id"].astype(str))
    return pd.DataFrame({
        "patient_id": s["patient_id"].to_numpy(),
        "truth": np.where(s["label"].astype(int) == 1, positive, negative),
        "mean_likelihood": s["patient_id"].map(mean).to_numpy(),
        "summed_score": s["summed_score"].to_numpy(),
        "call": np.where(s["call_positive"].astype(bool), positive, negative)})


def reader_decisions(reads: pd.DataFrame, model: pd.DataFrame, positive: str, negative: str,
                     cut: float = 0.4) -> pd.DataFrame:
    """The whole-study reads (sequence ``all``) of the model's patients with their truth and call: patient_id,
    reader, group, session, truth, call."""
    whole = reads[(reads["sequence"] == WHOLE_STUDY)]
    whole = whole.assign(patient_id=whole["patient_id"].astype(str), reader=whole["reader"].astype(str),
                         group=whole["group"].astype(str))
    truth = model.set_index("patient_id")["truth"]
    whole = whole[whole["patient_id"].isin(truth.index)]
    return pd.DataFrame({
        "patient_id": whole["patient_id"].to_numpy(), "reader": whole["reader"].to_numpy(),
        "group": whole["group"].to_numpy(), "session": whole["session"].to_numpy(),
        "truth": whole["patient_id"].map(truth).to_numpy(),
        "call": reader_call(whole["confidence"], cut, positive, negative)})


def _proportion_rows(truth: np.ndarray, patient: np.ndarray, first: np.ndarray, second: np.ndarray,
                     positive: str) -> list[dict[str, Any]]:
    """Per metric of :data:`PROPORTIONS`: n_reads, the share correct in ``first`` and ``second`` (paired
    booleans: correct or not) and the clustered McNemar test with ``patient`` as cluster; then SS-Avg
    without a test."""
    rows, values = [], {}
    for metric, which in PROPORTIONS:
        keep = np.ones(len(truth), bool) if which is None else (truth == positive) == which
        if not keep.any():
            values[metric] = (np.nan, np.nan)
            rows.append({"metric": metric, "n_reads": 0, "first": np.nan, "second": np.nan, "p_value": np.nan,
                         "test": ""})
            continue
        a, b = first[keep], second[keep]
        test = clustered_mcnemar(a, b, patient[keep])
        values[metric] = (float(a.mean()), float(b.mean()))
        rows.append({"metric": metric, "n_reads": int(keep.sum()), "first": values[metric][0],
                     "second": values[metric][1], "p_value": test.p_value, "test": test.test})
    (se1, se2), (sp1, sp2) = values["sensitivity"], values["specificity"]
    rows.append({"metric": "ss_avg", "n_reads": len(truth), "first": (se1 + sp1) / 2, "second": (se2 + sp2) / 2,
                 "p_value": np.nan, "test": ""})
    return rows


def session_comparison(calls: pd.DataFrame, positive: str) -> pd.DataFrame:
    """Each group without and with the AI: one row per (group, metric) with readers, n_reads, without_ai,
    with_ai, difference (with - without), p_value and test; on the reads made in both sessions (paired by
    reader and patient). Empty without both sessions."""
    columns = ["group", "readers", "metric", "n_reads", "without_ai", "with_ai", "difference", "p_value", "test"]
    if not {FIRST, ASSISTED} <= set(calls["session"]):
        return pd.DataFrame(columns=columns)
    rows = []
    for group, part in calls.groupby("group", sort=False):
        pairs = part[part["session"] == FIRST].merge(part[part["session"] == ASSISTED],
                                                     on=["reader", "patient_id", "truth"], suffixes=("", "_ai"))
        truth = pairs["truth"].to_numpy()
        for row in _proportion_rows(truth, pairs["patient_id"].to_numpy(), (pairs["call"] == truth).to_numpy(),
                                    (pairs["call_ai"] == truth).to_numpy(), positive):
            rows.append({"group": group, "readers": pairs["reader"].nunique(), "metric": row["metric"],
                         "n_reads": row["n_reads"], "without_ai": row["first"], "with_ai": row["second"],
                         "difference": row["second"] - row["first"], "p_value": row["p_value"],
                         "test": row["test"]})
    return pd.DataFrame(rows, columns=columns)


def model_vs_groups(calls: pd.DataFrame, model: pd.DataFrame, positive: str) -> pd.DataFrame:
    """The model against each group's unaided reads on the patients the group read: one row per (group,
    metric) with n_patients, n_reads, model, readers, difference (model - readers), p_value and test (the
    model's outcome on a patient paired with each of the group's reads of it; clustered McNemar by patient).
    The model's value is its share correct over the group's reads, i.e. over the patients when every reader
    read every patient."""
    columns = ["group", "metric", "n_patients", "n_reads", "model", "readers", "difference", "p_value", "test"]
    model_right = (model["call"] == model["truth"]).set_axis(model["patient_id"].to_numpy())
    rows = []
    for group, part in calls[calls["session"] == FIRST].groupby("group", sort=False):
        truth, patient = part["truth"].to_numpy(), part["patient_id"].to_numpy()
        for row in _proportion_rows(truth, patient, part["patient_id"].map(model_right).to_numpy(dtype=bool),
                                    (part["call"] == part["truth"]).to_numpy(), positive):
            rows.append({"group": group, "metric": row["metric"], "n_patients": part["patient_id"].nunique(),
                         "n_reads": row["n_reads"], "model": row["first"], "readers": row["second"],
                         "difference": row["first"] - row["second"], "p_value": row["p_value"],
                         "test": row["test"]})
    return pd.DataFrame(rows, columns=columns)


def group_majority_wrong(calls: pd.DataFrame) -> pd.DataFrame:
    """Per (group, patient) of the unaided reads: readers, wrong (how many called it wrongly) and
    misdiagnosed (a strict majority wrong)."""
    unaided = calls[calls["session"] == FIRST]
    out = (unaided.assign(wrong=unaided["call"] != unaided["truth"])
           .groupby(["group", "patient_id"], sort=False)["wrong"].agg(readers="size", wrong="sum").reset_index())
    out["misdiagnosed"] = 2 * out["wrong"] > out["readers"]
    return out


def error_overlap(calls: pd.DataFrame, model: pd.DataFrame) -> pd.DataFrame:
    """Figure 2e/f: per group and true class, the patients misdiagnosed by the model only, by the group only
    (strict majority of its readers, unaided), by both, and by neither. Columns: group, truth, patients,
    model_only, readers_only, both, neither."""
    wrong_model = model.set_index("patient_id").eval("call != truth")
    truth = model.set_index("patient_id")["truth"]
    rows = []
    majority = group_majority_wrong(calls)
    for group, part in majority.groupby("group", sort=False):
        m = part["patient_id"].map(wrong_model).astype(bool).to_numpy()
        r = part["misdiagnosed"].to_numpy(dtype=bool)
        t = part["patient_id"].map(truth).to_numpy()
        for cls in dict.fromkeys(truth):
            k = t == cls
            rows.append({"group": group, "truth": cls, "patients": int(k.sum()),
                         "model_only": int((k & m & ~r).sum()), "readers_only": int((k & ~m & r).sum()),
                         "both": int((k & m & r).sum()), "neither": int((k & ~m & ~r).sum())})
    return pd.DataFrame(rows, columns=["group", "truth", "patients", "model_only", "readers_only", "both", "neither"])


def misdiagnosed_cases(model: pd.DataFrame, calls: pd.DataFrame | None, patients: pd.DataFrame | None,
                       attributes: Sequence[str] = ATTRIBUTES) -> pd.DataFrame:
    """Patients misdiagnosed by the model or by a group's majority (unaided): patient_id, truth,
    misdiagnosed_by ('+'-joined: model and/or the groups), mean_likelihood, summed_score, model_call, one
    column per reader with the unaided call, then the ``attributes`` the patients table has. Sorted by
    truth, then patient_id."""
    table = model.rename(columns={"call": "model_call"})
    by = {pid: ["model"] for pid in table.loc[table["model_call"] != table["truth"], "patient_id"]}
    if calls is not None and not calls.empty:
        majority = group_majority_wrong(calls)
        for group, pid in majority.loc[majority["misdiagnosed"], ["group", "patient_id"]].itertuples(index=False):
            by.setdefault(pid, []).append(str(group))
        unaided = calls[calls["session"] == FIRST]
        wide = unaided.pivot(index="patient_id", columns="reader", values="call")
        wide = wide[list(dict.fromkeys(unaided["reader"]))]
        table = table.merge(wide.reset_index(), on="patient_id", how="left")
    table = table[table["patient_id"].isin(by)]
    table.insert(2, "misdiagnosed_by", table["patient_id"].map(lambda p: "+".join(by[p])))
    if patients is not None and not patients.empty:
        keep = [c for c in attributes if c in patients.columns and c not in table.columns]
        clinical = patients.assign(patient_id=patients["patient_id"].astype(str))[["patient_id", *keep]]
        table = table.merge(clinical, on="patient_id", how="left")
    return table.sort_values(["truth", "patient_id"], kind="stable").reset_index(drop=True)


def top_combinations(likelihood: pd.DataFrame, combinations: pd.DataFrame | None = None, cutoff: float = 0.5,
                     k: int = 10) -> tuple[pd.DataFrame, int]:
    """The top-``k`` sequence combinations by SS-Avg with an 'average of top k' row
    (:func:`sarcomri.analysis.combinations.top_k_summary`), ranked 1..k, and the number of sequences n whose
    2^n - 1 subsets were searched. ``combinations`` (``combinations.csv``) is searched again from
    ``likelihood`` at ``cutoff`` when not given."""
    n = int(likelihood["sequence"].nunique())
    if combinations is None:
        lik = likelihood.assign(patient_id=likelihood["patient_id"].astype(str))
        labels = lik.groupby("patient_id")["label"].first()
        combinations = search_combinations(votes(lik, cutoff), labels)
    top = top_k_summary(combinations, k)
    top.insert(0, "rank", pd.array([*range(1, len(top)), None], dtype="Int64"))
    return top, n


def sarcoma_tables(likelihood: pd.DataFrame, reads: pd.DataFrame | None, patients: pd.DataFrame | None,
                   positive: str, negative: str, cut: float = 0.4, cutoff: float = 0.5,
                   summed: pd.DataFrame | None = None, combinations: pd.DataFrame | None = None,
                   top_k: int = 10) -> list[tuple[PaperTable, pd.DataFrame]]:
    """The paper's tables (module docstring) as (PaperTable, frame) pairs; the reader tables only with
    whole-study reads (sequence ``all``), the session table only with both sessions."""
    out = []
    top, n = top_combinations(likelihood, combinations, cutoff, top_k)
    out.append((PaperTable(f"{PREFIX}table1_combinations", f"Table 1 ({PAPER}): top-{top_k} sequence combinations",
                           f"All 2^{n} - 1 = {2**n - 1:,} non-empty combinations of the {n} sequences were searched; "
                           f"each combination's summed vote score (votes at likelihood >= {cutoff:g}) is called at "
                           "its SS-Avg-maximising threshold, chosen on the same patients (exploratory, optimistic). "
                           f"The last row averages the top {min(top_k, len(top) - 1)}.", ORDER + 1), top))
    model = model_decisions(likelihood, positive, negative, cutoff, summed)
    rule = (f"{positive} is the positive class. The model: the summed vote score at its SS-Avg threshold; "
            f"a reader calls {positive} at confidence <= {cut:g} (whole-study reads).")
    calls = None
    if reads is not None and not reads.empty:
        calls = reader_decisions(reads, model, positive, negative, cut)
        calls = calls if len(calls) else None
    test = ("p: exact clustered McNemar test (sign-flip of the per-patient differences; the reads of one patient "
            "form a cluster), two-sided; SS-Avg = (sensitivity + specificity) / 2, not tested.")
    if calls is not None:
        sessions = session_comparison(calls, positive)
        if not sessions.empty:
            out.append((PaperTable(f"{PREFIX}readers_sessions", f"Reader study ({PAPER}): reader groups without and "
                                   "with the AI", f"{rule} Pooled reads of each group, paired by reader and patient. "
                                   f"{test}", ORDER + 2), sessions))
        out.append((PaperTable(f"{PREFIX}model_vs_readers", f"Reader study ({PAPER}): the model against each reader "
                               "group (unaided)", f"{rule} The model's outcome on a patient paired with each of the "
                               f"group's reads of it. {test}", ORDER + 3), model_vs_groups(calls, model, positive)))
        out.append((PaperTable(f"{PREFIX}figure2_error_overlap", f"Figure 2e/f ({PAPER}): overlap of the model's "
                               "and the readers' misdiagnoses", f"{rule} Patients per true class; a group "
                               "misdiagnoses a patient when a strict majority of its readers (unaided) call it "
                               "wrongly.", ORDER + 4), error_overlap(calls, model)))
    out.append((PaperTable(f"{PREFIX}misdiagnosed", f"Misdiagnosed patients ({PAPER})",
                           f"{rule} Patients the model or a group's majority (unaided) got wrong, with each "
                           "reader's unaided call and the clinical attributes.", ORDER + 5),
                misdiagnosed_cases(model, calls, patients)))
    return out


def write_sarcoma_tables(likelihood: pd.DataFrame, reads: pd.DataFrame | None, patients: pd.DataFrame | None,
                         out_dir: str | Path, positive: str, negative: str, cut: float = 0.4, cutoff: float = 0.5,
                         summed: pd.DataFrame | None = None, combinations: pd.DataFrame | None = None,
                         top_k: int = 10) -> list[str]:
    """Write :func:`sarcoma_tables` into ``out_dir`` (a run's ``paper/`` folder) with
    :func:`sarcomri.report.papertables.write_paper_table`; returns the names of the tables written."""
    if top_k < 1:
        raise InputError(None, f"top_k must be at least 1, not {top_k}")
    tables = sarcoma_tables(likelihood, reads, patients, positive, negative, cut, cutoff, summed, combinations, top_k)
    for table, frame in tables:
        write_paper_table(out_dir, table, frame)
    return [table.name for table, _ in tables]
