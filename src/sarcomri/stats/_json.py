"""Turn statistics results into JSON-ready Python objects (NaN and infinities become null)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd


def jsonable(obj: Any) -> Any:
    """Recursively convert numpy scalars/arrays, DataFrames and dicts; non-finite floats become None."""
    if isinstance(obj, pd.DataFrame):
        return [jsonable(row) for row in obj.to_dict(orient="records")]
    if isinstance(obj, pd.Series):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | np.ndarray):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if obj is pd.NA:
        return None
    return obj
