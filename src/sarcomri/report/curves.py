"""ROC curves per sequence: the model's curve with the readers' curves and operating points on the same axes
(the carcinosarcoma study's Figure 3), drawn from the tables the analysis wrote
(:func:`sarcomri.analysis.curves.curve_tables`): the readers' ``roc_points`` / ``operating_points`` where
readers read the sequence (on the cases every interpreter read), else the run's (the model alone, on all its
patients).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sarcomri.report.figures import Curve, roc_curve_arrays, roc_figure, save_png
from sarcomri.report.layout import Figure, Section, Table, pretty
from sarcomri.report.sources import RunInputs
from sarcomri.report.tables import MODEL, WHOLE_STUDY


def _point(fpr: float, sensitivity: float) -> tuple[float, float] | None:
    return None if pd.isna(fpr) or pd.isna(sensitivity) else (float(fpr), float(sensitivity))


def sequence_curves(points: pd.DataFrame, operating: pd.DataFrame,
                    model_name: str = MODEL) -> tuple[Curve, list[Curve]]:
    """The model's curve and the readers' curves of one sequence: its ``roc_points`` and ``operating_points``
    rows."""
    curves = []
    for r in operating.itertuples(index=False):
        fpr, sens = roc_curve_arrays(points[points["interpreter"].astype(str) == str(r.interpreter)])
        if r.interpreter == model_name:
            model = Curve(model_name, fpr, sens, _point(r.fpr, r.sensitivity), auc=float(r.auc))
        else:
            curves.append(Curve(str(r.interpreter), fpr, sens, _point(r.fpr, r.sensitivity),
                                _point(r.assisted_fpr, r.assisted_sensitivity), group=str(r.group),
                                auc=float(r.auc)))
    return model, curves


def _curve_tables(inputs: RunInputs, seq: str) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """The sequence's rows of the readers' curve tables when readers read it, else of the run's."""
    reads = inputs.reader_table("reads")
    with_readers = reads is not None and (reads["sequence"].astype(str) == seq).any()
    find = inputs.reader_table if with_readers else inputs.table
    points, operating = find("roc_points"), find("operating_points")
    if points is None or operating is None:
        return None
    mine = operating[operating["sequence"].astype(str) == seq]
    if mine.empty or not (mine["interpreter"] == MODEL).any():
        return None
    return points[points["sequence"].astype(str) == seq], mine


def roc_section(inputs: RunInputs, figures_dir: Path, rel: str = "figures") -> Section | None:
    """One ROC figure per sequence (and the whole study), with the readers where there are readers."""
    pos, neg = inputs.class_names
    figures, rows = [], []
    for seq in [*inputs.sequences, WHOLE_STUDY]:
        found = _curve_tables(inputs, seq)
        if found is None:
            continue
        model, curves = sequence_curves(*found)
        n = int(found[1]["n"].iloc[0])
        label = "whole study (summed score)" if seq == WHOLE_STUDY else seq
        name = f"roc_{_slug(seq)}.png"
        save_png(roc_figure(label, model, curves), figures_dir / name)
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

