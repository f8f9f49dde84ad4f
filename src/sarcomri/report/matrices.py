"""Matrices drawn as HTML for print: each interpreter's confusion matrix as a 2 x 2 grid, and the kappa matrix as
a lower triangle shaded by agreement with its Landis-Koch label.

Both read the readers' tables as written (:mod:`sarcomri.analysis.published`: ``confusion`` and ``kappa``, with
their whole-study rows, and ``kappa_ci`` for the kappas' 95% CIs where the readers stage wrote it); nothing is
computed but the label of a kappa
(:func:`sarcomri.stats.agreement.landis_koch`) and its shade. The HTML is plain (no script) and escaped.
"""

from __future__ import annotations

from html import escape

import numpy as np
import pandas as pd

from sarcomri.report.columns import cell_text, column_title
from sarcomri.stats.agreement import LANDIS_KOCH, landis_koch

#: Shades of agreement, lowest band first (Landis-Koch bands; a sequential blue scale, readable without colour).
KAPPA_SHADES = ("#f2f2f2", "#e3eef8", "#c6dbef", "#9ecae1", "#4f94c8", "#1f5f9e")
#: The Landis-Koch bands in words, for the legend.
LANDIS_KOCH_TEXT = ("Landis-Koch: poor < 0, slight 0-0.20, fair 0.21-0.40, moderate 0.41-0.60, substantial "
                    "0.61-0.80, almost perfect 0.81-1.")


def _sequence_heading(sequence: str) -> str:
    return f'<h4 class="matrix-heading">{escape(cell_text("sequence", str(sequence)))}</h4>'


def confusion_grid(part: pd.DataFrame, positive: str, negative: str) -> str:
    """One interpreter's 2 x 2 grid (rows: true class, columns: call; positive first) from its ``confusion``
    rows; the correct calls are marked (class ``hit``)."""
    rows = part.set_index(part["truth"].astype(str))
    calls = [f"predicted {positive}", f"predicted {negative}"]
    head = "".join(f'<th scope="col">{escape(c)}</th>' for c in (positive, negative))
    body = []
    for truth in (positive, negative):
        cells = "".join(
            f'<td class="num{" hit" if call == f"predicted {truth}" else ""}">'
            f'{"" if truth not in rows.index else int(rows.loc[truth, call])}</td>' for call in calls)
        body.append(f'<tr><th scope="row">{escape(truth)}</th>{cells}</tr>')
    who = escape(cell_text("interpreter", str(part["interpreter"].iloc[0])))
    return (f'<table class="matrix confusion"><caption>{who}</caption><thead><tr><td class="corner">true \\ '
            f'called</td>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>')


def confusion_html(frame: pd.DataFrame, positive: str, negative: str) -> str:
    """Every interpreter's 2 x 2 grid, side by side, one row of grids per sequence (the frame's order)."""
    out = []
    for seq, rows in frame.groupby("sequence", sort=False):
        grids = [confusion_grid(part, positive, negative) for _, part in rows.groupby("interpreter", sort=False)]
        out.append(_sequence_heading(seq) + '<div class="matrices">' + "".join(grids) + "</div>")
    return "\n".join(out)


def kappa_shade(kappa: float) -> str:
    """The background of a kappa cell: one of :data:`KAPPA_SHADES` by Landis-Koch band."""
    label = landis_koch(kappa)
    bands = [name for _, name in LANDIS_KOCH]
    return KAPPA_SHADES[bands.index(label)] if label in bands else "transparent"


def _kappa_cell(value: float, ci: tuple[float, float] | None = None) -> str:
    if not np.isfinite(value):
        return '<td class="num"></td>'
    dark = KAPPA_SHADES.index(kappa_shade(value)) >= 4
    style = f"background:{kappa_shade(value)};{'color:#fff;' if dark else ''}"
    interval = f'<span class="ci">({ci[0]:.2f} to {ci[1]:.2f})</span>' if ci is not None and all(
        np.isfinite(ci)) else ""
    return (f'<td class="num kappa" style="{style}">{value:.2f}{interval}'
            f'<span class="band">{escape(landis_koch(value))}</span></td>')


def kappa_intervals(cis: pd.DataFrame | None, sequence: str) -> dict[frozenset[str], tuple[float, float]]:
    """The CI of each pair of interpreters of ``sequence`` in a ``kappa_ci`` table (empty without one)."""
    if cis is None or cis.empty:
        return {}
    rows = cis[cis["sequence"].astype(str) == str(sequence)]
    return {frozenset((str(a), str(b))): (float(lo), float(hi))
            for a, b, lo, hi in zip(rows["rater1"], rows["rater2"], rows["lower"], rows["upper"], strict=True)}


def kappa_triangle(part: pd.DataFrame, cis: dict[frozenset[str], tuple[float, float]] | None = None) -> str:
    """One sequence's kappa matrix as its lower triangle: a row per interpreter, a column per other
    interpreter before it, each cell the kappa with its 95% CI (where ``cis`` has it: pair -> (lower, upper))
    and its Landis-Koch label, shaded by band."""
    cis = cis or {}
    names = [str(n) for n in part["interpreter"]]
    values = part.set_index(part["interpreter"].astype(str))
    head = "".join(f'<th scope="col">{escape(column_title(n))}</th>' for n in names[:-1])
    body = []
    for i, row in enumerate(names[1:], start=1):
        cells = "".join(_kappa_cell(float(values.loc[row, col]), cis.get(frozenset((row, col))))
                        for col in names[:i])
        cells += '<td class="blank"></td>' * (len(names) - 1 - i)
        body.append(f'<tr><th scope="row">{escape(cell_text("interpreter", row))}</th>{cells}</tr>')
    return (f'<table class="matrix kappa-matrix"><thead><tr><td></td>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table>')


def kappa_html(frame: pd.DataFrame, cis: pd.DataFrame | None = None) -> str:
    """The kappa matrices of every sequence (the frame's order) as lower triangles, with the CIs of ``cis``
    (a ``kappa_ci`` table) where given."""
    return "\n".join(_sequence_heading(seq) + kappa_triangle(rows, kappa_intervals(cis, seq))
                     for seq, rows in frame.groupby("sequence", sort=False))
