"""Reading a CSV table a user gives (labels, splits, reads, scores): every failure is one :class:`InputError`
naming the file, never a traceback."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from sarcomri.errors import InputError


def read_csv_table(path: str | Path, columns: Iterable[str] = (),
                   dtype: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """The CSV table at ``path``; raises :class:`InputError` naming the file when it is missing, is not a readable
    CSV table, or lacks one of ``columns`` (the message lists the columns it has)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such file")
    try:
        frame = pd.read_csv(path, dtype=dict(dtype) if dtype else None)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as err:
        raise InputError(path, f"not a readable CSV table ({' '.join(str(err).split())})") from None
    except OSError as err:
        raise InputError(path, f"cannot be read ({err.strerror})") from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(path, f"no column(s) {', '.join(map(repr, missing))} "
                               f"(columns: {', '.join(map(str, frame.columns))})")
    return frame
