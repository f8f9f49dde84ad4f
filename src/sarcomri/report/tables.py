"""The published tables of a classification run, computed by :mod:`sarcomri.stats` and laid out for print.

* :func:`interpreter_reads`: one long table of the model's and the readers' first reads per sequence on the
  cases that all of them read (:func:`sarcomri.analysis.readers.interpreter_frame`: the model's score is its
  likelihood, called positive at the study's cut-off; a reader's is 1 - confidence, since the 6-point scale
  puts 0 at "definitely positive", called positive at <= 0.4), plus the whole study: the summed score of the
  sequence votes at its threshold against the readers' ``all`` reads.
* :func:`model_vs_readers`: the carcinosarcoma study's Tables 3-5 (confusion matrices, accuracy with CIs,
  AUC and DeLong p-values against the model, the kappa matrix).
* :func:`run_tables`: the sarcoma study's per-sequence, ensemble, combination and clinical tables.
* :func:`reading_sessions`: first vs AI-assisted reads: per-group metrics, the per-reader change with the
  paired tests, and the Obuchowski-Rockette MRMC comparison of reader-averaged AUCs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from sarcomri.analysis.readers import ASSISTED, FIRST, MODEL, SCALE
from sarcomri.errors import SarcomriError
from sarcomri.report.layout import METRIC_TITLES, Section, Table, pretty, with_cis
from sarcomri.report.sources import RunInputs
from sarcomri.stats import mrmc
from sarcomri.stats.readers import scale_to_decision
from sarcomri.stats.tables import accuracy_table, confusion_table, kappa_table

WHOLE_STUDY = "all"
READER_CUT = 0.4
__all__ = ["ASSISTED", "FIRST", "MODEL", "READER_CUT", "WHOLE_STUDY", "interpreter_reads", "model_reads",
           "model_vs_readers", "reader_decisions", "reading_sessions", "run_tables"]


def reader_decisions(reads: pd.DataFrame, positive: str, negative: str, cut: float = READER_CUT) -> np.ndarray:
    """Class calls of confidence ratings (<= ``cut`` is a positive call), via ``stats.readers``."""
    return scale_to_decision(reads["confidence"], cut, positive, negative, SCALE)


def model_reads(inputs: RunInputs) -> pd.DataFrame:
    """The model's reads per sequence (and ``all`` from the summed score): case, sequence, truth, decision, score."""
    pos, neg = inputs.class_names
    frames = []
    lik = inputs.table("likelihood")
    if lik is not None:
        cut = inputs.cutoff()
        frames.append(pd.DataFrame({
            "case": lik["patient_id"], "sequence": lik["sequence"], "truth": np.where(lik["label"] == 1, pos, neg),
            "decision": np.where(lik["likelihood"] >= cut, pos, neg), "score": lik["likelihood"].astype(float)}))
    summed = inputs.table("summed_score")
    if summed is not None and "call_positive" in summed.columns:
        frames.append(pd.DataFrame({
            "case": summed["patient_id"], "sequence": WHOLE_STUDY, "truth": np.where(summed["label"] == 1, pos, neg),
            "decision": np.where(summed["call_positive"].astype(bool), pos, neg),
            "score": summed["summed_score"].astype(float)}))
    if not frames:
        return pd.DataFrame(columns=["case", "sequence", "truth", "decision", "score"])
    return pd.concat(frames, ignore_index=True)


def interpreter_reads(inputs: RunInputs) -> tuple[pd.DataFrame, dict[str, int]]:
    """The model's and the readers' reads on the cases every interpreter read, per sequence (first reads by
    :func:`sarcomri.analysis.readers.interpreter_frame`), plus the whole study: the summed score at its
    threshold against the readers' ``all`` reads. Columns: case, sequence, interpreter, group, truth, decision,
    score.

    Returns the long table and, per sequence, how many of the model's cases were left out because a reader
    did not read them (the paired tests need the same cases).
    """
    from sarcomri.analysis.readers import interpreter_frame

    reads, lik = inputs.readers, inputs.table("likelihood")
    if reads is None or lik is None:
        return pd.DataFrame(), {}
    pos, neg = inputs.class_names
    frames = [interpreter_frame(lik, reads, pos, neg, READER_CUT, inputs.cutoff())]
    summed, thr = inputs.table("summed_score"), inputs.table("summed_threshold")
    if summed is not None and thr is not None and len(thr):
        whole = pd.DataFrame({"patient_id": summed["patient_id"], "sequence": WHOLE_STUDY, "label": summed["label"],
                              "likelihood": summed["summed_score"].astype(float)})
        frames.append(interpreter_frame(whole, reads, pos, neg, READER_CUT, float(thr["threshold"].iloc[0])))
    frame = pd.concat(frames, ignore_index=True)
    frame = frame[frame.groupby("sequence")["interpreter"].transform("nunique") > 1]  # sequences with readers
    groups = reads.drop_duplicates("reader").set_index("reader")["group"].astype(str)
    frame["group"] = frame["interpreter"].map(groups).fillna("model")
    model_cases = model_reads(inputs).groupby("sequence")["case"].nunique()
    kept = frame[frame["interpreter"] == MODEL].groupby("sequence")["case"].nunique()
    dropped = {str(s): int(model_cases.get(s, n) - n) for s, n in kept.items()}
    return frame[["case", "sequence", "interpreter", "group", "truth", "decision", "score"]], dropped


def _binary(frame: pd.DataFrame) -> bool:
    return frame.groupby("sequence")["truth"].nunique().min() == 2


def model_vs_readers(inputs: RunInputs) -> Section | None:
    """Tables 3-5 of the carcinosarcoma study: the model against the readers per sequence (first reads)."""
    frame, dropped = interpreter_reads(inputs)
    if frame.empty or not _binary(frame):
        return None
    pos, _ = inputs.class_names
    confusion = confusion_table(frame, pos)
    accuracy = accuracy_table(frame, pos, MODEL)
    order = [MODEL, *dict.fromkeys(frame.loc[frame["interpreter"] != MODEL, "interpreter"])]
    kappa = kappa_table(frame, order=order).reset_index()
    shown = with_cis(accuracy.drop(columns=["tp", "fp", "fn", "tn"]),
                     ["sensitivity", "specificity", "accuracy", "ss_avg", "auc"], titles=METRIC_TITLES)
    shown = pretty(shown.rename(columns={"p_vs_model": "DeLong p vs CNN"}), p_columns=["DeLong p vs CNN"])
    notes = [f"The CNN calls {pos} at likelihood >= {inputs.cutoff():g} on each sequence; on the whole study "
             "('all') its score is the summed +1/-1 vote of the sequences at the study's threshold. Readers call "
             f"{pos} at a confidence of {READER_CUT} or less (0 = definitely {pos}); their AUC uses the "
             "6-point confidence."]
    left = {s: n for s, n in dropped.items() if n}
    if left:
        notes.append("Cases the readers did not all read are left out of these tables: "
                     + ", ".join(f"{s}: {n}" for s, n in left.items()) + ".")
    return Section(
        id="readers", title="The model and the readers",
        intro="Confusion matrices, accuracy with 95% CIs (Wilson; AUC with DeLong CI) and the paired DeLong test of "
              "each reader's AUC against the CNN's on the same cases, and Cohen's kappa between all interpreters.",
        tables=[Table("Confusion matrices (rows: true class)", confusion, pretty(confusion)),
                Table("Diagnostic accuracy", accuracy, shown),
                Table("Cohen's kappa between interpreters", kappa, pretty(kappa))],
        notes=notes, data={"reads": frame, "accuracy": accuracy, "kappa": kappa, "confusion": confusion})


def _table(inputs: RunInputs, name: str) -> pd.DataFrame | None:
    t = inputs.table(name)
    return None if t is None or t.empty else t


def run_tables(inputs: RunInputs) -> Section | None:
    """The sarcoma study's tables of the run: per sequence, ensembles, summed score, combinations, clinical."""
    tables = []
    per = _table(inputs, "per_sequence")
    if per is not None:
        cols = [c for c in per.columns if c not in ("tp", "fp", "fn", "tn", "optimal_cutoff")]
        shown = with_cis(per[cols], ["auc", "sensitivity", "specificity", "accuracy", "ppv", "npv", "ss_avg"],
                         titles=METRIC_TITLES)
        tables.append(Table("Per sequence: patient-level leave-one-out ensemble likelihood", per, pretty(shown),
                            note="AUC with DeLong CI; the other metrics at the fixed cut-off with Wilson CIs."))
    ens = _table(inputs, "ensemble_summary")
    if ens is not None:
        tables.append(Table("Spread over the leave-one-out ensembles (mean and SD)", ens, pretty(ens)))
    thr = _table(inputs, "summed_threshold")
    if thr is not None:
        tables.append(Table("Summed score of the sequence votes: the SS-Avg threshold", thr, pretty(thr),
                            note="The threshold is chosen on the patients it is scored on (optimistic)."))
    top = next((_table(inputs, n) for n in sorted(inputs.tables) if n.startswith("combinations_top")), None)
    if top is not None:
        tables.append(Table("Best sequence combinations (exploratory)", top, pretty(top),
                            note="Each subset's threshold is chosen on the same patients it is scored on: the top "
                                 "rows are optimistic."))
    clin = _table(inputs, "clinical_combined")
    if clin is not None:
        shown = with_cis(clin, ["auc_image", "auc_combined"],
                         titles={"auc_image": "AUC image only", "auc_combined": "AUC image + clinical"})
        tables.append(Table("Images with clinical variables", clin, pretty(shown, p_columns=["delong_p"])))
    if not tables:
        return None
    return Section(id="tables", title="Classification tables", tables=tables,
                   intro="Patient-level results of the per-sequence models, their votes and the sequence combinations.")


def reading_sessions(inputs: RunInputs) -> Section | None:
    """First vs AI-assisted reads of the whole study (:func:`sarcomri.analysis.readers.session_tables`: per
    group and session, per-reader accuracy, paired t / Welch / Wilcoxon tests) and the Obuchowski-Rockette
    MRMC comparison of the reader-averaged AUCs."""
    from sarcomri.analysis.readers import session_tables

    reads, lik = inputs.readers, inputs.table("likelihood")
    if reads is None or lik is None:
        return None
    pos, neg = inputs.class_names
    found = session_tables(reads, lik, pos, neg, READER_CUT)
    if not found:
        return None
    groups, per_reader, tests = found["sessions"], found["per_reader"], found["tests"]
    metrics = ("sensitivity", "specificity", "accuracy")
    bounds = ("", "_lower", "_upper")
    group_cols = ["group", "session", "readers", "reads"] + [f"{m}{e}" for m in metrics for e in bounds]
    shown_groups = pretty(with_cis(groups[group_cols], metrics, titles=METRIC_TITLES))
    test_cols = ["test", "mean_first", "mean_second", "mean_difference", "statistic", "df", "p_value"]
    tests = tests[[c for c in test_cols if c in tests.columns]].rename(columns={"mean_second": "mean_ai_assisted"})
    tables = [Table("Reader groups, unaided and AI-assisted (reads pooled)", groups, shown_groups,
                    note="Pooled CIs treat reads as independent; the MRMC analysis below accounts for readers and "
                         "cases."),
              Table("Accuracy per reader, unaided and AI-assisted", per_reader, pretty(per_reader)),
              Table("Change of the readers' accuracy with the AI", tests, pretty(tests, p_columns=["p_value"]))]
    data: dict[str, Any] = {"sessions": groups, "per_reader": per_reader, "tests": tests}
    whole = reads[(reads["sequence"] == WHOLE_STUDY) & reads["patient_id"].isin(set(lik["patient_id"]))]
    whole = whole.assign(score=1.0 - whole["confidence"].astype(float))
    try:
        res = mrmc.or_mrmc(whole, "reader", "patient_id", "session", "truth", "score", pos)
    except (SarcomriError, ValueError, np.linalg.LinAlgError) as err:  # an unbalanced design: no MRMC table
        data["mrmc_error"] = str(err)
    else:
        mods = res.modalities[res.modalities["analysis"] == "rrrc"]
        diffs = res.differences[res.differences["analysis"] == "rrrc"]
        tables.append(Table("Reader-averaged AUC (Obuchowski-Rockette, random readers and cases)", mods,
                            pretty(mods)))
        tables.append(Table("Difference of the reader-averaged AUCs", diffs, pretty(diffs, p_columns=["p"])))
        data["mrmc"] = res
    return Section(id="sessions", title="Unaided and AI-assisted reading", tables=tables, data=data,
                   intro="The readers' calls on the whole study, first unaided, then with the AI's result.")
