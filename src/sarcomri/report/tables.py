"""The published tables of a classification run, laid out for print from the tables the analysis wrote.

Nothing here computes a number: each table is read from the run's ``tables/`` or the readers' ``tables/``
(:mod:`sarcomri.analysis.published`; see :mod:`sarcomri.report.derived` for a folder made before them).

* :func:`model_reads`: the model's calls per sequence and on the whole study (``decisions.csv``), with the
  class names.
* :func:`model_vs_readers`: the carcinosarcoma study's Tables 3-5 (confusion matrices, accuracy with CIs,
  AUC and DeLong p-values against the model, the kappa matrix) per sequence (``confusion``, ``accuracy``,
  ``kappa``) and for the whole study (``whole_*``), on the cases every interpreter read (``left_out``).
* :func:`run_tables`: the sarcoma study's per-sequence, ensemble, combination and clinical tables.
* :func:`reading_sessions`: unaided vs AI-assisted reads: per-group metrics, the per-reader change with the
  paired tests (``sessions``, ``per_reader``, ``tests``), and the Obuchowski-Rockette MRMC comparison of
  reader-averaged AUCs (``mrmc_modalities``, ``mrmc_differences``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from sarcomri.analysis.readers import ASSISTED, FIRST, MODEL, WHOLE_STUDY
from sarcomri.report.columns import words
from sarcomri.report.layout import METRIC_TITLES, Section, Table, pretty, with_cis, with_sd
from sarcomri.report.matrices import LANDIS_KOCH_TEXT, confusion_html, kappa_html
from sarcomri.report.sources import RunInputs

__all__ = ["ASSISTED", "FIRST", "MODEL", "WHOLE_STUDY", "model_reads", "model_vs_readers", "reading_sessions",
           "run_tables"]


def model_reads(inputs: RunInputs) -> pd.DataFrame:
    """The model's reads per sequence (and ``all``, the summed score) from ``decisions.csv``: case, sequence,
    truth, decision (class names), score."""
    pos, neg = inputs.class_names
    found = inputs.table("decisions")
    if found is None or found.empty:
        return pd.DataFrame(columns=["case", "sequence", "truth", "decision", "score"])
    return pd.DataFrame({"case": found["patient_id"], "sequence": found["sequence"],
                         "truth": np.where(found["label"] == 1, pos, neg),
                         "decision": np.where(found["call_positive"].astype(bool), pos, neg),
                         "score": found["score"].astype(float)})


def _stacked(inputs: RunInputs, name: str) -> pd.DataFrame | None:
    """A readers' table per sequence with its whole-study rows (``whole_<name>``) below."""
    parts = [t for t in (inputs.reader_table(name), inputs.reader_table(f"whole_{name}")) if t is not None]
    return pd.concat(parts, ignore_index=True) if parts else None


def model_vs_readers(inputs: RunInputs) -> Section | None:
    """Tables 3-5 of the carcinosarcoma study: the model against the readers per sequence (unaided reads)."""
    confusion, accuracy, kappa = (_stacked(inputs, n) for n in ("confusion", "accuracy", "kappa"))
    if confusion is None or accuracy is None or kappa is None:
        return None
    pos, neg = inputs.class_names
    shown = with_cis(accuracy.drop(columns=["tp", "fp", "fn", "tn"]),
                     ["sensitivity", "specificity", "accuracy", "ss_avg", "auc"], titles=METRIC_TITLES)
    shown = pretty(shown.rename(columns={"p_vs_model": "DeLong p vs CNN"}), p_columns=["DeLong p vs CNN"])
    model_cut, reader_cut = inputs.reader_setting("model_cutoff"), inputs.reader_setting("reader_cut")
    model_cut = inputs.cutoff() if model_cut is None else model_cut
    notes = [f"The CNN calls {pos} at likelihood >= {model_cut:g} on each sequence; on the whole study "
             "('all') its score is the summed +1/-1 vote of the sequences at the study's threshold. Readers call "
             f"{pos} at a confidence of {reader_cut:g} or less (0 = definitely {pos}); their AUC uses the "
             "6-point confidence."]
    left = inputs.reader_table("left_out")
    left = {} if left is None else {s: int(n) for s, n in zip(left["sequence"], left["left_out"], strict=True) if n}
    if left:
        notes.append("Cases the readers did not all read are left out of these tables: "
                     + ", ".join(f"{s}: {n}" for s, n in left.items()) + ".")
    return Section(
        id="readers", title="The model and the readers",
        intro="Confusion matrices, accuracy with 95% CIs (Wilson; AUC with DeLong CI) and the paired DeLong test of "
              "each reader's AUC against the CNN's on the same cases, and Cohen's kappa between all interpreters.",
        tables=[Table("Confusion matrices (rows: true class; columns: call; correct calls shaded)", confusion,
                      pretty(confusion), markup=confusion_html(confusion, pos, neg)),
                Table("Diagnostic accuracy", accuracy, shown),
                Table("Cohen's kappa between interpreters", kappa, pretty(kappa),
                      markup=kappa_html(kappa, _stacked(inputs, "kappa_ci")),
                      note=f"Cohen's kappa of the interpreters' calls with its 95% CI (the large-sample standard error "
                           f"of Fleiss, Cohen & Everitt), each cell shaded by its agreement band. "
                           f"{LANDIS_KOCH_TEXT}")],
        notes=notes, data={"reads": inputs.reader_table("reads"), "accuracy": accuracy, "kappa": kappa,
                           "confusion": confusion})


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
        shown = with_sd(ens, ["auc", "sensitivity", "specificity", "accuracy", "ss_avg"])
        tables.append(Table("Spread over the leave-one-out ensembles (mean and SD)", ens, pretty(shown)))
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


def mrmc_shown(modalities: pd.DataFrame, differences: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The MRMC tables of one analysis for print: the reader-averaged AUC per reading and the difference
    between readings ("AI-assisted - unaided"), each with its 95% CI; SE and df kept."""
    mods = modalities.drop(columns=["analysis"]).rename(columns={"lower": "auc_lower", "upper": "auc_upper"})
    mods = with_cis(mods, ["auc"])
    diffs = differences.rename(columns={"lower": "difference_lower", "upper": "difference_upper"})
    diffs.insert(0, "comparison", [f"{words(str(a))} - {words(str(b))}"
                                   for a, b in zip(diffs["modality1"], diffs["modality2"], strict=True)])
    diffs = with_cis(diffs.drop(columns=["analysis", "modality1", "modality2"]), ["difference"], digits=3)
    return pretty(mods), pretty(diffs, p_columns=["p"])


def reading_sessions(inputs: RunInputs) -> Section | None:
    """Unaided vs AI-assisted reads of the whole study (per group and session, per-reader accuracy, paired t /
    Welch / Wilcoxon tests) and the Obuchowski-Rockette MRMC comparison of the reader-averaged AUCs, from the
    readers' tables (:func:`sarcomri.analysis.readers.session_tables` and ``mrmc_tables``)."""
    groups, per_reader, tests = (inputs.reader_table(n) for n in ("sessions", "per_reader", "tests"))
    if groups is None or per_reader is None or tests is None:
        return None
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
    modalities, differences = inputs.reader_table("mrmc_modalities"), inputs.reader_table("mrmc_differences")
    if modalities is not None and differences is not None:  # absent: an unbalanced design, no MRMC table
        mods = modalities[modalities["analysis"] == "rrrc"]
        diffs = differences[differences["analysis"] == "rrrc"]
        shown_mods, shown_diffs = mrmc_shown(mods, diffs)
        tables.append(Table("Reader-averaged AUC (Obuchowski-Rockette MRMC, random readers and cases)", mods,
                            shown_mods))
        tables.append(Table("Difference of the reader-averaged AUCs", diffs, shown_diffs,
                            note="df: the Hillis denominator degrees of freedom."))
        data["mrmc"] = {"modalities": modalities, "differences": differences}
    return Section(id="sessions", title="Unaided and AI-assisted reading", tables=tables, data=data,
                   intro="The readers' calls on the whole study, first unaided, then with the AI's result.")
