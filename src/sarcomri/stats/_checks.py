"""Input checks shared by the statistics modules: one clear message per problem."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from sarcomri.errors import InputError

DIRECTIONS = ("<", ">")


def shown(value: Any) -> str:
    """How a message quotes a value from the data: its ``repr`` with numpy scalars as plain Python values
    (``0`` and ``'a'``, not ``np.int64(0)`` and ``np.str_('a')``)."""
    if isinstance(value, np.generic):
        value = value.item()
    return repr(value)


def check_direction(direction: str) -> str:
    """Return ``direction`` when it is '<' (controls < cases) or '>' (controls > cases)."""
    if direction not in DIRECTIONS:
        raise InputError(None, f"direction must be '<' (controls < cases) or '>' (controls > cases), "
                               f"not {direction!r}")
    return direction


def _missing(values: pd.Series) -> bool:
    return bool(values.isna().any())


def binary_truth(truth: Sequence[Any] | np.ndarray | pd.Series, positive: Any, name: str = "truth") -> np.ndarray:
    """Boolean array, True where ``truth`` equals the explicit ``positive`` class.

    ``truth`` may hold at most two classes and must contain ``positive`` (a positive class absent from
    the data is almost always a typo or a type mismatch such as "1" vs 1).
    """
    series = pd.Series(np.asarray(truth, dtype=object))
    if _missing(series):
        raise InputError(None, f"{name} has missing values")
    classes = list(pd.unique(series))
    if positive not in classes:
        raise InputError(None, f"positive class {shown(positive)} does not occur in {name} "
                               f"(classes found: {', '.join(map(shown, classes))})")
    if len(classes) > 2:
        raise InputError(None, f"{name} has {len(classes)} classes ({', '.join(map(shown, classes))}); "
                               "a diagnostic analysis needs two")
    return (series == positive).to_numpy(dtype=bool)


def finite_scores(scores: Sequence[float] | np.ndarray | pd.Series, n: int | None = None,
                  name: str = "scores") -> np.ndarray:
    """Scores as a float array of length ``n``, refusing NaN and infinities."""
    try:
        values = np.asarray(scores, dtype=float)
    except (TypeError, ValueError) as err:
        raise InputError(None, f"{name} must be numeric ({err})") from None
    if values.ndim != 1:
        raise InputError(None, f"{name} must be one-dimensional")
    if n is not None and values.size != n:
        raise InputError(None, f"{name} has {values.size} values but truth has {n}")
    if not np.isfinite(values).all():
        raise InputError(None, f"{name} has {int((~np.isfinite(values)).sum())} missing or infinite values")
    return values


def require_columns(frame: pd.DataFrame, columns: Sequence[str], what: str = "table") -> None:
    """Raise InputError naming every requested column that ``frame`` lacks."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(None, f"{what} has no column(s) {', '.join(map(repr, missing))} "
                               f"(columns: {', '.join(map(str, frame.columns))})")
