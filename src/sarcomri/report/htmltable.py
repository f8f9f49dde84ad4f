"""A formatted table as HTML: titled headers, words for code values, numeric columns right-aligned.

The table is plain HTML (``<thead>`` / ``<tbody>``), readable with JavaScript off; the report's inline script
makes a ``table.sortable`` sortable by clicking a header (see ``templates/report.html.j2``). A column is numeric
(class ``num``: right-aligned, sorted as numbers) when every non-empty cell is a number as the report prints one:
``12``, ``0.034``, ``<0.001``, ``0.87 (0.79-0.94)``, ``45.0 [38.0, 52.0]``, ``12 (50.0%)``.
"""

from __future__ import annotations

import math
import re
from html import escape
from typing import Any

import pandas as pd

from sarcomri.report.columns import ID_COLUMNS, cell_text, column_title

#: A number as printed, optionally followed by a bracketed interval or percentage.
NUMERIC_CELL = re.compile(r"^[<>≤≥]?[-−+]?\d+(?:\.\d+)?%?(?:\s*[(\[][^)\]]*[)\]])?$")
#: From this many columns on, a table is set in a smaller type (class ``wide``).
WIDE = 10


def cell_value(value: Any) -> str:
    """A cell as text: empty for None / NaN, floats to 3 decimals (callers format numbers first; this is the
    guard against a raw float reaching the page), anything else as ``str``."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:.3f}"
    return str(value)


def is_numeric(cells: list[str]) -> bool:
    """True when the column's non-empty cells are all printed numbers (and there is at least one)."""
    filled = [c for c in cells if c.strip()]
    return bool(filled) and all(NUMERIC_CELL.match(c.strip()) for c in filled)


def table_html(frame: pd.DataFrame, sortable: bool = True) -> str:
    """``frame`` (formatted cells) as an HTML table: headers by :func:`column_title`, cells by :func:`cell_text`,
    numeric columns (:func:`is_numeric`) of class ``num``, identifiers (never wrapped) of class ``id``; the table
    of class ``sortable`` when ``sortable``, ``wide`` from :data:`WIDE` columns on."""
    columns = list(frame.columns)
    body = [[cell_text(col, cell_value(v)) for col, v in zip(columns, row, strict=True)]
            for row in frame.itertuples(index=False, name=None)]
    numeric = [is_numeric([r[k] for r in body]) for k in range(len(columns))]
    kinds = ["num" if numeric[k] else "id" if str(c) in ID_COLUMNS else "" for k, c in enumerate(columns)]
    classes = ["data"] + (["sortable"] if sortable and len(body) > 1 else []) + (
        ["wide"] if len(columns) >= WIDE else [])

    def cls(k: int) -> str:
        return f' class="{kinds[k]}"' if kinds[k] else ""

    head = "".join(f'<th scope="col"{cls(k)}>{escape(column_title(c))}</th>' for k, c in enumerate(columns))
    rows = "\n".join("<tr>" + "".join(f"<td{cls(k)}>{escape(v)}</td>" for k, v in enumerate(r)) + "</tr>"
                     for r in body)
    return f'<table class="{" ".join(classes)}">\n<thead><tr>{head}</tr></thead>\n<tbody>\n{rows}\n</tbody>\n</table>'
