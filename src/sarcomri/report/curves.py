"""ROC curves per sequence: the model's curve with the readers' curves and operating points on the same axes
(the carcinosarcoma study's Figure 3), drawn from the tables the analysis wrote
(:func:`sarcomri.analysis.curves.curve_tables`): the readers' ``roc_points`` / ``operating_points`` where
readers read the sequence (on the cases every interpreter read), else the run's (the model alone, on all its
patients).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure as MplFigure

from sarcomri.report.columns import AI_ASSISTED, UNAIDED, cell_text, words
from sarcomri.report.figures import Curve, point_fractions, reader_tag, roc_curve_arrays, roc_figure, save_png
from sarcomri.report.layout import Figure, Hotspot, Section, Table, pretty
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


def _curve_tables(inputs: RunInputs, seq: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None] | None:
    """The sequence's rows of the readers' curve tables when readers read it, else of the run's: roc_points,
    operating_points and the model's roc_band (None where the analysis wrote none)."""
    reads = inputs.reader_table("reads")
    with_readers = reads is not None and (reads["sequence"].astype(str) == seq).any()
    find = inputs.reader_table if with_readers else inputs.table
    points, operating, band = find("roc_points"), find("operating_points"), find("roc_band")
    if points is None or operating is None:
        return None
    mine = operating[operating["sequence"].astype(str) == seq]
    if mine.empty or not (mine["interpreter"] == MODEL).any():
        return None
    if band is not None:
        band = band[band["sequence"].astype(str) == seq]
    return points[points["sequence"].astype(str) == seq], mine, band if band is not None and len(band) else None


#: A score with at most this many distinct values gets a note that its ROC curve is coarse.
FEW_LEVELS = 10


def levels_note(model: Curve) -> str:
    """A note when the model's score takes few values (its ROC curve has a corner per value, joined by straight
    segments where scores tie); empty otherwise. The count is the curve's points less the (0, 0) start."""
    levels = len(model.fpr) - 1
    if levels > FEW_LEVELS:
        return ""
    return (f" The {model.name}'s score takes only {levels} distinct values here, so its curve joins {levels + 1} "
            "points with straight lines: read it as a few operating points, not a smooth curve.")


def curve_caption(label: str, model: Curve, curves: list[Curve], n: int) -> str:
    """The caption of one ROC figure: the model's AUC and patients, the readers' tags and markers, the model's
    cut-off, and :func:`levels_note`."""
    text = f"{label}: ROC of the {model.name} ({n} patients, AUC {model.auc:.3f})"
    if curves:
        tags = ", ".join(f"{reader_tag(c.name)} = {words(c.name)}" for c in curves)
        text += f" and {len(curves)} readers ({tags}); filled dots: unaided calls"
        if any(c.assisted_point is not None for c in curves):
            text += ", open dots: AI-assisted calls, arrows from the one to the other"
    return f"{text}; the star is the {model.name}'s cut-off.{levels_note(model)}"


def roc_section(inputs: RunInputs, figures_dir: Path, rel: str = "figures") -> Section | None:
    """One ROC figure per sequence (and the whole study), with the readers where there are readers."""
    pos, neg = inputs.class_names
    figures, rows = [], []
    for seq in [*inputs.sequences, WHOLE_STUDY]:
        found = _curve_tables(inputs, seq)
        if found is None:
            continue
        model, curves = sequence_curves(*found[:2])
        if found[2] is not None:
            model.band = (1 - found[2]["specificity"].to_numpy(float), found[2]["lower"].to_numpy(float),
                          found[2]["upper"].to_numpy(float))
        n = int(found[1]["n"].iloc[0])
        label = "whole study (summed score)" if seq == WHOLE_STUDY else seq
        name = f"roc_{_slug(seq)}.png"
        fig = roc_figure(label, model, curves)
        spots = roc_hotspots(fig, model, curves)
        save_png(fig, figures_dir / name)
        figures.append(Figure(f"{rel}/{name}", curve_caption(label, model, curves, n), hotspots=spots))
        rows.append({"sequence": seq, "interpreter": MODEL, "n": n, "auc": model.auc})
        rows += [{"sequence": seq, "interpreter": c.name, "n": n, "auc": c.auc} for c in curves]
    if not figures:
        return None
    aucs = pd.DataFrame(rows)
    return Section(id="roc", title="ROC curves", figures=figures,
                   intro=f"Receiver operating characteristic of the model for {pos} vs {neg}, per sequence, with the "
                         "readers' curves and operating points on the same axes.",
                   tables=[Table("AUC of each curve", aucs, pretty(aucs), collapsed=True)], data={"aucs": aucs})


def _point_text(fpr: float, sensitivity: float) -> str:
    return f"sensitivity {sensitivity:.2f}, specificity {1 - fpr:.2f}"


def roc_hotspots(fig: MplFigure, model: Curve, readers: list[Curve]) -> list[Hotspot]:
    """A hover label for each call drawn on an ROC figure: the model's cut-off and every reader's unaided and
    AI-assisted call (name, session, sensitivity and specificity)."""
    ax = fig.axes[0]
    calls = []
    if model.point is not None:
        calls.append((model.point, f"{model.name} at its cut-off: {_point_text(*model.point)}"))
    for r in readers:
        who = f"{reader_tag(r.name)} ({cell_text('interpreter', r.name)})"
        if r.point is not None:
            calls.append((r.point, f"{who}, {UNAIDED}: {_point_text(*r.point)}"))
        if r.assisted_point is not None:
            calls.append((r.assisted_point, f"{who}, {AI_ASSISTED}: {_point_text(*r.assisted_point)}"))
    where = point_fractions(fig, ax, [p for p, _ in calls])
    return [Hotspot(round(x, 4), round(y, 4), text) for (x, y), (_, text) in zip(where, calls, strict=True)]


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in str(text))

