"""What the commands print with: a data frame as a rich table, and the progress bar of a training loop."""

from __future__ import annotations

import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table


def print_table(con: Console, frame: pd.DataFrame, title: str, digits: int = 3) -> None:
    """Print ``frame`` as a table: numeric columns right-aligned, floats with ``digits`` decimals."""
    table = Table(title=title)
    for col in frame.columns:
        table.add_column(str(col), justify="right" if pd.api.types.is_numeric_dtype(frame[col]) else "left")
    for row in frame.itertuples(index=False):
        table.add_row(*(f"{v:.{digits}f}" if isinstance(v, float) else escape(str(v)) for v in row))
    con.print(table)


def training_progress(con: Console) -> Progress:
    """A progress bar per task with its steps, the last loss (field ``loss``), elapsed and remaining time."""
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("loss {task.fields[loss]}"), TimeElapsedColumn(), TimeRemainingColumn(), console=con)


#: Options of the root command (``sarcomri --verbose ...``), set by its callback on every invocation.
ROOT_OPTIONS: dict[str, bool] = {"verbose": False}


def verbose_asked(flag: bool = False) -> bool:
    """True when the command's own ``--verbose`` (``flag``) or the root ``sarcomri --verbose`` was given."""
    return bool(flag) or ROOT_OPTIONS["verbose"]
