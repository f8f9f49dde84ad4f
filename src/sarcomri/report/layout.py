"""The pieces a report is made of (sections, tables, figures) and the number formats a clinician reads.

Section builders return :class:`Section` objects, or None when their inputs are absent; the HTML writer
only lays them out. Tables keep their raw frame (tests compare its numbers with :mod:`sarcomri.stats`)
and a formatted copy for print.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

import numpy as np
import pandas as pd

from sarcomri.report.columns import column_title
from sarcomri.report.htmltable import table_html
from sarcomri.stats.tables import format_ci

COUNT_COLUMNS = {"n", "threshold", "fold", "total", "tp", "fp", "fn", "tn", "reads", "readers"}
#: Degrees-of-freedom columns: whole numbers print as integers, others to one decimal, cell by cell.
DF_COLUMNS = {"df", "ddf", "df_error", "df_effect"}


def ci_title(metric: str) -> str:
    """The title of a metric's 'estimate (lower-upper)' column: 'AUC (95% CI)'."""
    return f"{column_title(metric)} (95% CI)"


METRIC_TITLES = {m: ci_title(m) for m in ("auc", "sensitivity", "specificity", "accuracy", "ss_avg", "ppv", "npv")}
#: Abbreviations defined where a page first uses them (:func:`define_abbreviations`).
ABBREVIATIONS = {"SS-Avg": "SS-Avg = mean of sensitivity and specificity.",
                 "PPV": "PPV = positive predictive value; NPV = negative predictive value.",
                 "ASSD": "ASSD = average symmetric surface distance; HD95 = 95th percentile Hausdorff distance.",
                 "MRMC": "MRMC = multi-reader multi-case analysis."}


@dataclass(frozen=True)
class Hotspot:
    """A point of a figure that names itself on hover (the page's ``title`` tooltip; no script): where it is, as
    fractions of the image's width (``left``) and height (``top``), and what it says."""

    left: float
    top: float
    title: str


@dataclass
class Figure:
    """A PNG in the report's ``figures/`` folder: ``path`` is relative to the report folder; ``src`` is what the
    page's ``<img>`` shows (a ``data:`` URI when the figure is embedded, else empty: ``path``)."""

    path: str
    caption: str
    src: str = ""
    hotspots: list[Hotspot] = field(default_factory=list)
    wide: bool = False  # laid out at the page's full width (a figure of several panels)

    @property
    def name(self) -> str:
        """The figure's file stem (its anchor on the page: ``figure-<name>``)."""
        return PurePosixPath(self.path).stem


@dataclass
class Table:
    """A table for print: ``frame`` holds the raw numbers, ``shown`` the formatted one (defaults to ``frame``)."""

    title: str
    frame: pd.DataFrame
    shown: pd.DataFrame | None = None
    note: str = ""
    collapsed: bool = False
    sortable: bool = True
    markup: str = ""  # HTML drawn instead of the generic table (matrices: sarcomri.report.matrices)

    def html(self) -> str:
        """The table as HTML: its ``markup`` when it has one, else a ``<table>``
        (:func:`sarcomri.report.htmltable.table_html`: titled headers, cells escaped, numeric columns
        right-aligned); a table without a formatted copy is formatted by :func:`pretty`."""
        if self.markup:
            return self.markup
        return table_html(pretty(self.frame) if self.shown is None else self.shown, self.sortable)


@dataclass
class Section:
    """One section of the report: an anchor id, a title, a paragraph, tables, figures, notes and titled lists."""

    id: str
    title: str
    intro: str = ""
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    lists: list[tuple[str, list[str]]] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)


def fmt_p(p: Any) -> str:
    """A p-value for print: '<0.001', '0.034', '' for NaN."""
    if p is None or not np.isfinite(float(p)):
        return ""
    p = float(p)
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def fmt_df(df: Any) -> str:
    """Degrees of freedom for print: '5' when whole, '9.9' otherwise, '' for NaN."""
    if df is None or not np.isfinite(float(df)):
        return ""
    df = float(df)
    return str(int(df)) if df.is_integer() else f"{df:.1f}"


def with_cis(frame: pd.DataFrame, metrics: Iterable[str], digits: int = 2,
             titles: dict[str, str] | None = None) -> pd.DataFrame:
    """Replace ``<m>``, ``<m>_lower``, ``<m>_upper`` by one '0.93 (0.83-0.97)' column per metric, titled
    ``titles[m]``, else :func:`ci_title` (a metric without bounds keeps its name)."""
    out = frame.copy()
    titles = titles or {}
    for m in metrics:
        if m not in out.columns:
            continue
        lo, hi = f"{m}_lower", f"{m}_upper"
        if lo in out.columns and hi in out.columns:
            text = [format_ci(float(e), float(a), float(b), digits) if pd.notna(e) else ""
                    for e, a, b in zip(out[m], out[lo], out[hi], strict=True)]
            out = out.drop(columns=[lo, hi])
            out[m] = text
            out = out.rename(columns={m: titles.get(m, ci_title(m))})
        elif m in titles:
            out = out.rename(columns={m: titles[m]})
    return out


def with_sd(frame: pd.DataFrame, metrics: Iterable[str], digits: int = 3) -> pd.DataFrame:
    """Replace ``<m>_mean`` and ``<m>_std`` by one 'mean (SD)' column per metric ('0.900 (0.016)'), titled
    '<metric>, mean (SD)'."""
    out = frame.copy()
    for m in metrics:
        mean, sd = f"{m}_mean", f"{m}_std"
        if mean not in out.columns or sd not in out.columns:
            continue
        text = [f"{a:.{digits}f} ({b:.{digits}f})" if pd.notna(a) and pd.notna(b) else ("" if pd.isna(a) else
                f"{a:.{digits}f}") for a, b in zip(out[mean], out[sd], strict=True)]
        at = out.columns.get_loc(mean)
        out = out.drop(columns=[mean, sd])
        out.insert(at, f"{column_title(m)}, mean (SD)", text)
    return out


def pretty(frame: pd.DataFrame, digits: int = 3, p_columns: Iterable[str] = (),
           digits_by: dict[str, int] | None = None) -> pd.DataFrame:
    """Numbers as text: p-value columns as :func:`fmt_p`, whole-number columns (counts, thresholds) as
    integers, degrees of freedom (:data:`DF_COLUMNS`) as integers when whole else to one decimal, other floats
    to ``digits`` decimals (``digits_by[column]`` for the columns it names)."""
    out = frame.copy()
    out.columns.name = None
    p_columns = set(p_columns)
    for col in out.columns:
        values = out[col]
        if col in p_columns:
            out[col] = [fmt_p(v) for v in values]
        elif pd.api.types.is_bool_dtype(values):
            out[col] = ["yes" if v else "no" for v in values]
        elif col in DF_COLUMNS and pd.api.types.is_numeric_dtype(values):
            out[col] = [fmt_df(v) for v in values]
        elif pd.api.types.is_integer_dtype(values):
            out[col] = [str(int(v)) for v in values]
        elif pd.api.types.is_float_dtype(values):
            finite = values[np.isfinite(values)]
            whole = len(finite) > 0 and bool((finite == np.round(finite)).all()) and (
                bool((finite.abs() > 1).any()) or col in COUNT_COLUMNS or str(col).startswith("n_"))
            d = (digits_by or {}).get(col, digits)
            out[col] = ["" if not np.isfinite(v) else (str(int(v)) if whole else f"{v:.{d}f}") for v in values]
    return out


def _define(uses: str, own: str, done: set[str]) -> list[str]:
    """The definitions of the abbreviations ``uses`` names that are not defined yet, all marked as defined now;
    one that ``own`` (the text the definition would join) defines itself ('SS-Avg (...', 'SS-Avg = ...', other
    than '(95% CI)') needs none."""
    found = [a for a in ABBREVIATIONS if a not in done and re.search(rf"(?<![\w-]){re.escape(a)}(?![\w-])", uses)]
    done.update(found)
    return [ABBREVIATIONS[a] for a in found
            if not re.search(rf"(?<![\w-]){re.escape(a)}\s*(=|\((?!95%))", own)]


def _table_text(table: Table) -> str:
    shown = table.frame if table.shown is None else table.shown
    return " ".join([table.title, *map(column_title, shown.columns), table.note])


def define_abbreviations(sections: Iterable[Section]) -> None:
    """Define each of :data:`ABBREVIATIONS` where the page first uses it, in reading order: after the section's
    intro, a figure's caption or a table's note (the table whose title, headers or note use it first)."""
    done: set[str] = set()
    for s in sections:
        s.intro = " ".join([s.intro, *_define(s.intro, s.intro, done)]).strip()
        for f in s.figures:
            f.caption = " ".join([f.caption, *_define(f.caption, f.caption, done)])
        for t in s.tables:
            t.note = " ".join([t.note, *_define(_table_text(t), t.note, done)]).strip()
        s.notes = [" ".join([n, *_define(n, n, done)]) for n in s.notes]
