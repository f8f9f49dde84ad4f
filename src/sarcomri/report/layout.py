"""The pieces a report is made of (sections, tables, figures) and the number formats a clinician reads.

Section builders return :class:`Section` objects, or None when their inputs are absent; the HTML writer
only lays them out. Tables keep their raw frame (tests compare its numbers with :mod:`sarcomri.stats`)
and a formatted copy for print.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from sarcomri.stats.tables import format_ci

COUNT_COLUMNS = {"n", "threshold", "fold", "total", "tp", "fp", "fn", "tn", "reads", "readers"}
METRIC_TITLES = {"auc": "AUC (95% CI)", "sensitivity": "sensitivity (95% CI)", "specificity": "specificity (95% CI)",
                 "accuracy": "accuracy (95% CI)", "ss_avg": "SS-Avg (95% CI)", "ppv": "PPV (95% CI)",
                 "npv": "NPV (95% CI)"}


@dataclass
class Figure:
    """A PNG in the report's ``figures/`` folder: ``path`` is relative to the report folder."""

    path: str
    caption: str


@dataclass
class Table:
    """A table for print: ``frame`` holds the raw numbers, ``shown`` the formatted one (defaults to ``frame``)."""

    title: str
    frame: pd.DataFrame
    shown: pd.DataFrame | None = None
    note: str = ""
    collapsed: bool = False

    def html(self) -> str:
        """The table as an HTML ``<table>`` (cells escaped, no index)."""
        shown = self.frame if self.shown is None else self.shown
        return shown.to_html(index=False, escape=True, na_rep="", border=0, classes="data",
                             float_format=lambda v: f"{v:.3f}")


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


def with_cis(frame: pd.DataFrame, metrics: Iterable[str], digits: int = 2,
             titles: dict[str, str] | None = None) -> pd.DataFrame:
    """Replace ``<m>``, ``<m>_lower``, ``<m>_upper`` by one '0.93 (0.83-0.97)' column per metric."""
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
        out = out.rename(columns={m: titles.get(m, m)})
    return out


def pretty(frame: pd.DataFrame, digits: int = 3, p_columns: Iterable[str] = ()) -> pd.DataFrame:
    """Numbers as text: p-value columns as :func:`fmt_p`, whole-number columns (counts, thresholds) as
    integers, other floats to ``digits`` decimals."""
    out = frame.copy()
    out.columns.name = None
    p_columns = set(p_columns)
    for col in out.columns:
        values = out[col]
        if col in p_columns:
            out[col] = [fmt_p(v) for v in values]
        elif pd.api.types.is_bool_dtype(values):
            out[col] = ["yes" if v else "no" for v in values]
        elif pd.api.types.is_integer_dtype(values):
            out[col] = [str(int(v)) for v in values]
        elif pd.api.types.is_float_dtype(values):
            finite = values[np.isfinite(values)]
            whole = len(finite) > 0 and bool((finite == np.round(finite)).all()) and (
                bool((finite.abs() > 1).any()) or col in COUNT_COLUMNS or str(col).startswith("n_"))
            out[col] = ["" if not np.isfinite(v) else (str(int(v)) if whole else f"{v:.{digits}f}") for v in values]
    return out
