"""The published tables of a classification run, computed by :mod:`sarcomri.stats` and laid out for print.

* :func:`interpreter_reads`: one long table of the model's and the readers' reads per sequence on the
  cases that all of them read (``case, sequence, interpreter, group, truth, decision, score``); the model's
  score is its likelihood (decision at the study's cut-off), a reader's score is 1 - confidence (the
  confidence scale puts 0 at "definitely positive"; a rating <= 0.4 is a positive call). The whole study
  (readers' ``all`` reads) is matched with the summed score of the sequence votes and its threshold.
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

from sarcomri.errors import SarcomriError
from sarcomri.report.layout import METRIC_TITLES, Section, Table, pretty, with_cis
from sarcomri.report.sources import RunInputs
from sarcomri.stats import mrmc
from sarcomri.stats.readers import first_vs_assisted, group_metrics, scale_to_decision
from sarcomri.stats.tables import accuracy_table, confusion_table, kappa_table

MODEL = "CNN"
WHOLE_STUDY = "all"
READER_CUT = 0.4
READER_SCALE = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
FIRST, ASSISTED = "first", "ai_assisted"


def reader_decisions(reads: pd.DataFrame, positive: str, negative: str, cut: float = READER_CUT) -> np.ndarray:
    """Class calls of confidence ratings (<= ``cut`` is a positive call), via ``stats.readers``."""
    return scale_to_decision(reads["confidence"], cut, positive, negative, READER_SCALE)


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


def interpreter_reads(inputs: RunInputs, session: str = FIRST) -> tuple[pd.DataFrame, dict[str, int]]:
    """The model's and the readers' reads on the cases every interpreter read, per sequence.

    Returns the long table and, per sequence, how many of the model's cases were left out because a reader
    did not read them (the paired tests need the same cases).
    """
    model = model_reads(inputs)
    pos, neg = inputs.class_names
    dropped: dict[str, int] = {}
    if inputs.readers is None or model.empty:
        return pd.DataFrame(), dropped
    reads = inputs.readers[inputs.readers["session"] == session]
    frames = []
    for seq in [*inputs.sequences, WHOLE_STUDY]:
        mine = model[model["sequence"] == seq]
        theirs = reads[reads["sequence"] == seq]
        if mine.empty or theirs.empty:
            continue
        cases = set(mine["case"])
        for _, r in theirs.groupby("reader", sort=False):
            cases &= set(r["patient_id"])
        if not cases:
            continue
        dropped[seq] = len(mine) - len(cases)
        theirs = theirs[theirs["patient_id"].isin(cases)]
        frames.append(mine[mine["case"].isin(cases)].assign(interpreter=MODEL, group="model"))
        frames.append(pd.DataFrame({
            "case": theirs["patient_id"], "sequence": seq, "truth": theirs["truth"],
            "decision": reader_decisions(theirs, pos, neg), "score": 1.0 - theirs["confidence"].astype(float),
            "interpreter": theirs["reader"], "group": theirs["group"]}))
    if not frames:
        return pd.DataFrame(), dropped
    out = pd.concat(frames, ignore_index=True)
    return out[["case", "sequence", "interpreter", "group", "truth", "decision", "score"]], dropped


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


def reading_sessions(inputs: RunInputs, sequence: str = WHOLE_STUDY) -> Section | None:
    """First vs AI-assisted reads of the whole study: per group, per reader with tests, and MRMC."""
    reads = inputs.readers
    if reads is None:
        return None
    reads = reads[reads["sequence"] == sequence]
    if not {FIRST, ASSISTED} <= set(reads["session"]) or reads["truth"].nunique() != 2:
        return None
    pos, neg = inputs.class_names
    reads = reads.assign(decision=reader_decisions(reads, pos, neg), score=1.0 - reads["confidence"].astype(float))
    groups = reads.drop_duplicates("reader").set_index("reader")["group"].to_dict()
    per_group = pd.concat([group_metrics(reads[reads["session"] == s], "reader", "truth", "decision", pos, groups)
                           .assign(session=s) for s in (FIRST, ASSISTED)], ignore_index=True)
    per_group = per_group[["group", "session"] + [c for c in per_group.columns if c not in ("group", "session")]]
    group_cols = ["group", "session", "readers", "reads", "sensitivity", "sensitivity_lower", "sensitivity_upper",
                  "specificity", "specificity_lower", "specificity_upper", "accuracy", "accuracy_lower",
                  "accuracy_upper"]
    shown_groups = pretty(with_cis(per_group[group_cols], ["sensitivity", "specificity", "accuracy"],
                                   titles=METRIC_TITLES))
    tables = [Table("Reader groups, unaided and AI-assisted (reads pooled)", per_group, shown_groups,
                    note="Pooled CIs treat reads as independent; the MRMC analysis below accounts for readers and "
                         "cases.")]
    changes: dict[str, Any] = {}
    for metric in ("sensitivity", "specificity", "accuracy"):
        per_reader, tests = first_vs_assisted(reads, "reader", "session", "truth", "decision", pos, FIRST, ASSISTED,
                                              metric)
        changes[metric] = (per_reader, tests)
    acc_reader, acc_tests = changes["accuracy"]
    tables.append(Table("Accuracy per reader, unaided and AI-assisted", acc_reader, pretty(acc_reader)))
    test_rows = pd.concat([t.assign(metric=m) for m, (_, t) in changes.items()], ignore_index=True)
    test_rows = test_rows[["metric", "test", "mean_first", "mean_second", "mean_difference", "statistic",
                           "p_value"]].rename(columns={"mean_second": "mean_ai_assisted"})
    tables.append(Table("Change with the AI, across readers", test_rows, pretty(test_rows, p_columns=["p_value"])))
    data: dict[str, Any] = {"per_group": per_group, "changes": changes}
    try:
        res = mrmc.or_mrmc(reads, "reader", "patient_id", "session", "truth", "score", pos)
    except (SarcomriError, ValueError, np.linalg.LinAlgError) as err:  # an unbalanced design: no MRMC table
        data["mrmc_error"] = str(err)
    else:
        mods = res.modalities[res.modalities["analysis"] == "rrrc"]
        diffs = res.differences[res.differences["analysis"] == "rrrc"]
        tables.append(Table("Reader-averaged AUC (Obuchowski-Rockette, random readers and cases)", mods,
                            pretty(mods)))
        tables.append(Table("AI-assisted minus unaided reader-averaged AUC", diffs, pretty(diffs, p_columns=["p"])))
        data["mrmc"] = res
    where = "the whole study" if sequence == WHOLE_STUDY else sequence
    return Section(id="sessions", title="Unaided and AI-assisted reading",
                   intro=f"The readers' calls on {where}, first unaided, then with the AI's result.",
                   tables=tables, data=data)
