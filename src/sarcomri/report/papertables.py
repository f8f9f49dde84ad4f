"""Tables in the published papers' formats: written by the stage that computes them, rendered by the report.

A run folder's ``paper/`` (:attr:`sarcomri.runs.Run.paper_dir`) holds one CSV per table and ``index.json``,
the tables' titles, notes and order::

    <run>/paper/index.json          {"tables": [{"name", "title", "note", "order"}, ...]}
    <run>/paper/<name>.csv          the table as printed (raw numbers; the report formats them)

Each stage writes its own (classification, readers, segmentation, transfer); the report's "As published"
section shows every run folder's tables in ``order``. The numbers are those of the run; the title says which
table of which paper the layout follows, the note says what differs (e.g. which class is positive).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from sarcomri.io.atomic import write_csv, write_json

INDEX = "index.json"


@dataclass(frozen=True)
class PaperTable:
    """One table of a paper's layout: ``name`` is its file stem, ``order`` its place among the run's tables."""

    name: str
    title: str
    note: str = ""
    order: int = 0


#: Tables longer than this many rows are folded (a summary line that opens them), so the page stays readable.
FOLD_ROWS = 40


def write_paper_table(folder: str | Path, table: PaperTable, frame: pd.DataFrame) -> Path:
    """Write ``frame`` as ``<folder>/<name>.csv`` and record ``table`` in ``<folder>/index.json`` (replacing an
    earlier entry and file of the same name). ``folder`` is a run's ``paper_dir``. Returns the CSV's path."""
    if not table.name or "/" in table.name or table.name.startswith("."):
        raise ValueError(f"a paper table needs a plain file name, not {table.name!r}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = write_csv(folder / f"{table.name}.csv", frame, overwrite=True)
    entries = [e for e in _read_index(folder) if e.name != table.name] + [table]
    entries.sort(key=lambda e: (e.order, e.name))
    write_json(folder / INDEX, {"tables": [asdict(e) for e in entries]}, overwrite=True)
    return path


def _read_index(folder: Path) -> list[PaperTable]:
    path = folder / INDEX
    if not path.is_file():
        return []
    return [PaperTable(**entry) for entry in json.loads(path.read_text())["tables"]]


def read_paper_tables(folder: str | Path) -> list[tuple[PaperTable, pd.DataFrame]]:
    """The tables of ``folder`` in order (those whose CSV is missing are left out); empty without an index."""
    folder = Path(folder)
    out = []
    for entry in _read_index(folder):
        csv = folder / f"{entry.name}.csv"
        if csv.is_file():
            out.append((entry, pd.read_csv(csv, keep_default_na=False, na_values=[""])))
    return out


def paper_section(folders: list[Path]):
    """The report's "As published" section: the paper-format tables of every folder in ``folders`` (a study's
    ``paper/`` and its parts'), in order; None when none has any. p-value columns (``p``, ``p_*``) print as
    p-values."""
    from sarcomri.report.layout import Section, Table, pretty

    tables = []
    for folder in folders:
        for entry, frame in read_paper_tables(folder):
            p_columns = [c for c in frame.columns if c == "p" or str(c).startswith("p_")]
            tables.append(Table(entry.title, frame, pretty(frame, p_columns=p_columns), note=entry.note,
                                collapsed=len(frame) > FOLD_ROWS))
    if not tables:
        return None
    return Section(id="published", title="As published", tables=tables,
                   intro="The study's results laid out as the paper's tables (each title names the table it follows; "
                         "the note says which class is positive and what differs).")
