"""ROC curves per sequence: the model's curve with the readers' curves and operating points on the same axes
(the carcinosarcoma study's Figure 3). Every point and AUC comes from :mod:`sarcomri.stats.roc` and
:mod:`sarcomri.stats.diagnostic`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from sarcomri.report.figures import Curve, roc_curve_arrays, roc_figure, save_png
from sarcomri.report.layout import Figure, Section, Table, pretty
from sarcomri.report.sources import RunInputs
from sarcomri.report.tables import ASSISTED, MODEL, WHOLE_STUDY, interpreter_reads, model_reads, reader_decisions
from sarcomri.stats.diagnostic import diagnostic_from_labels
from sarcomri.stats.roc import auc_ci, roc_points


def _point(truth: pd.Series, decision: pd.Series | np.ndarray, positive: str) -> tuple[float, float]:
    res = diagnostic_from_labels(truth, decision, positive)
    return 1.0 - res.specificity.estimate, res.sensitivity.estimate


def _has_both(truth: pd.Series) -> bool:
    return truth.nunique() == 2


def sequence_curves(reads: pd.DataFrame, positive: str, assisted: pd.DataFrame | None = None,
                    model_name: str = MODEL) -> tuple[Curve, list[Curve]]:
    """The model's curve and the readers' curves of one sequence's reads (``interpreter_reads`` rows)."""
    mine = reads[reads["interpreter"] == model_name]
    fpr, sens = roc_curve_arrays(roc_points(mine["truth"], mine["score"], positive, "<"))
    auc = auc_ci(mine["truth"], mine["score"], positive, "<").auc
    model = Curve(model_name, fpr, sens, _point(mine["truth"], mine["decision"], positive), auc=auc)
    curves = []
    for name, r in reads[reads["interpreter"] != model_name].groupby("interpreter", sort=False):
        f, s = roc_curve_arrays(roc_points(r["truth"], r["score"], positive, "<"))
        aided = None
        if assisted is not None:
            a = assisted[assisted["reader"] == name]
            if len(a) and _has_both(a["truth"]):
                aided = _point(a["truth"], a["decision"], positive)
        curves.append(Curve(str(name), f, s, _point(r["truth"], r["decision"], positive), aided,
                            group=str(r["group"].iloc[0]), auc=auc_ci(r["truth"], r["score"], positive, "<").auc))
    return model, curves


def roc_section(inputs: RunInputs, figures_dir: Path, rel: str = "figures") -> Section | None:
    """One ROC figure per sequence (and the whole study), with the readers where there are readers."""
    pos, neg = inputs.class_names
    reads, _ = interpreter_reads(inputs)
    assisted_all = None
    if inputs.readers is not None:
        assisted_all = inputs.readers[inputs.readers["session"] == ASSISTED]
        assisted_all = assisted_all.assign(decision=reader_decisions(assisted_all, pos, neg))
    model_only = model_reads(inputs)
    figures, rows = [], []
    for seq in [*inputs.sequences, WHOLE_STUDY]:
        part = reads[reads["sequence"] == seq] if not reads.empty else reads
        if part.empty:  # no readers for this sequence: the model alone, on all its cases
            mine = model_only[model_only["sequence"] == seq]
            if mine.empty or not _has_both(mine["truth"]):
                continue
            part = mine.assign(interpreter=MODEL, group="model")
        if not _has_both(part["truth"]):
            continue
        aided = None
        if assisted_all is not None:
            aided = assisted_all[(assisted_all["sequence"] == seq) & assisted_all["patient_id"].isin(part["case"])]
        model, curves = sequence_curves(part, pos, aided)
        label = "whole study (summed score)" if seq == WHOLE_STUDY else seq
        name = f"roc_{_slug(seq)}.png"
        save_png(roc_figure(label, model, curves), figures_dir / name)
        n = part.loc[part["interpreter"] == MODEL, "case"].nunique()
        readers_text = f" and {len(curves)} readers (filled dots: unaided calls; open: AI-assisted)" if curves else ""
        figures.append(Figure(f"{rel}/{name}", f"{label}: ROC of the {MODEL} ({n} patients, AUC {model.auc:.3f})"
                                               f"{readers_text}; the star is the {MODEL}'s cut-off."))
        rows.append({"sequence": seq, "interpreter": MODEL, "n": n, "auc": model.auc})
        rows += [{"sequence": seq, "interpreter": c.name, "n": n, "auc": c.auc} for c in curves]
    if not figures:
        return None
    aucs = pd.DataFrame(rows)
    return Section(id="roc", title="ROC curves", figures=figures,
                   intro=f"Receiver operating characteristic of the model for {pos} vs {neg}, per sequence, with the "
                         "readers' curves and operating points on the same axes.",
                   tables=[Table("AUC of each curve", aucs, pretty(aucs), collapsed=True)], data={"aucs": aucs})


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in str(text))
