"""Reader studies: confidence scales to decisions, per-reader and per-group metrics, first vs AI-assisted reads.

The carcinosarcoma study asked readers for a 6-point confidence (0, 0.2, ..., 1.0) where 0 means
"definitely carcinosarcoma" and 1.0 "definitely endometrial carcinoma", and counted 0 to 0.4 as a
carcinosarcoma call: ``scale_to_decision(r, cut=0.4, at_or_below="CS", above="EC",
scale=CARCINOSARCOMA_SCALE)``.

Per-group metrics pool the reads of all readers of a group into one confusion matrix (so each read counts
once) and also give the mean of the readers' own estimates. Pooled CIs treat reads as independent and are
therefore too narrow for inference about readers; use :mod:`sarcomri.stats.mrmc` for that.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from sarcomri.errors import InputError
from sarcomri.stats._checks import require_columns, shown
from sarcomri.stats.diagnostic import confusion_matrix, diagnostic_metrics
from sarcomri.stats.groups import paired_t, welch_t, wilcoxon_signed_rank

CARCINOSARCOMA_SCALE = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
READ_TESTS = ("paired-t", "welch", "wilcoxon")
_TOL = 1e-9  # ratings stored as 0.4000000001 still count as 0.4


def scale_to_decision(ratings: Sequence[float] | np.ndarray | pd.Series, cut: float, at_or_below: Any,
                      above: Any, scale: Sequence[float] | None = None) -> np.ndarray:
    """Decisions from confidence ratings: rating <= ``cut`` gives ``at_or_below``, otherwise ``above``.

    With ``scale`` given, every rating must be one of its points (within 1e-9), which catches ratings
    recorded on a different scale (0-5 instead of 0-1, percentages, ...).
    """
    values = np.asarray(ratings, dtype=float)
    if not np.isfinite(values).all():
        raise InputError(None, "confidence ratings have missing values")
    if scale is not None:
        points = np.asarray(scale, dtype=float)
        off = ~np.isclose(values[:, None], points[None, :], rtol=0, atol=_TOL).any(axis=1)
        if off.any():
            raise InputError(None, f"ratings not on the scale {tuple(scale)}: "
                                   f"{', '.join(map(str, pd.unique(values[off])[:5]))}")
    return np.where(values <= cut + _TOL, np.asarray(at_or_below, dtype=object), np.asarray(above, dtype=object))


def _metrics_row(truth: pd.Series, decision: pd.Series, positive: Any, method: str, alpha: float) -> dict:
    return diagnostic_metrics(confusion_matrix(truth, decision, positive), method, alpha).to_row()


def reader_metrics(frame: pd.DataFrame, reader: str, truth: str, decision: str, positive: Any,
                   method: str = "wilson", alpha: float = 0.05) -> pd.DataFrame:
    """One row per reader: reads, counts and every diagnostic metric with its CI (``to_row`` columns)."""
    require_columns(frame, [reader, truth, decision], "reads table")
    rows = []
    for name, reads in frame.groupby(reader, sort=False):
        rows.append({reader: name, "reads": len(reads),
                     **_metrics_row(reads[truth], reads[decision], positive, method, alpha)})
    return pd.DataFrame(rows)


def group_metrics(frame: pd.DataFrame, reader: str, truth: str, decision: str, positive: Any,
                  groups: Mapping[Any, str], method: str = "wilson", alpha: float = 0.05) -> pd.DataFrame:
    """One row per reader group (e.g. specialists vs general practitioners).

    Columns: group, readers, reads, the pooled counts and metrics with CIs, and mean_<metric> = the mean
    of the readers' own sensitivity, specificity, accuracy and SS-Avg. ``groups`` maps reader -> group;
    every reader in ``frame`` must have a group.
    """
    require_columns(frame, [reader, truth, decision], "reads table")
    missing = sorted({str(r) for r in frame[reader].unique() if r not in groups})
    if missing:
        raise InputError(None, f"readers without a group: {', '.join(missing)}")
    per_reader = reader_metrics(frame, reader, truth, decision, positive, method, alpha)
    per_reader["group"] = per_reader[reader].map(groups)
    tagged = frame.assign(_group=frame[reader].map(groups))
    rows = []
    for name, reads in tagged.groupby("_group", sort=False):
        mine = per_reader[per_reader["group"] == name]
        row = {"group": name, "readers": len(mine), "reads": len(reads),
               **_metrics_row(reads[truth], reads[decision], positive, method, alpha)}
        for metric in ("sensitivity", "specificity", "accuracy", "ss_avg"):
            row[f"mean_{metric}"] = float(mine[metric].mean())
        rows.append(row)
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class ReadComparison:
    """A test of first-read vs second-read (e.g. AI-assisted) values of one metric across readers."""

    test: str
    statistic: float
    df: float | None
    p_value: float
    n_first: int
    n_second: int
    mean_first: float
    mean_second: float
    mean_difference: float

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-ready)."""
        return asdict(self)


def compare_reads(first: Sequence[float] | np.ndarray, second: Sequence[float] | np.ndarray,
                  test: str = "paired-t") -> ReadComparison:
    """Compare per-reader values (e.g. accuracy) of two reading sessions.

    'paired-t': scipy.stats.ttest_rel (same readers, in the same order); 'welch': ttest_ind with unequal
    variances (different readers); 'wilcoxon': signed-rank test of the paired differences (scipy's
    defaults: exact p for small samples without ties or zeros, zero differences dropped by 'wilcox').
    ``mean_difference`` is mean(second) - mean(first).
    """
    if test not in READ_TESTS:
        raise InputError(None, f"test must be one of {', '.join(READ_TESTS)}, not {test!r}")
    a, b = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise InputError(None, "read values have missing values")
    if test != "welch" and a.size != b.size:
        raise InputError(None, f"a paired test needs the same readers in both reads ({a.size} vs {b.size})")
    runner = {"paired-t": paired_t, "welch": welch_t, "wilcoxon": wilcoxon_signed_rank}[test]
    res = runner(a, b)
    return ReadComparison(test=test, statistic=res.statistic, df=res.df, p_value=res.p_value,
                          n_first=a.size, n_second=b.size, mean_first=float(a.mean()),
                          mean_second=float(b.mean()), mean_difference=float(b.mean() - a.mean()))


def first_vs_assisted(frame: pd.DataFrame, reader: str, session: str, truth: str, decision: str,
                      positive: Any, first: Any, assisted: Any,
                      metric: str = "accuracy") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-reader ``metric`` at the first and the assisted read, and the three tests of the change.

    ``frame`` has one row per (reader, session, case); ``session`` holds ``first`` or ``assisted``.
    Returns (per_reader: reader, first, assisted, difference; tests: one row per test).
    """
    require_columns(frame, [reader, session, truth, decision], "reads table")
    values = {}
    for label in (first, assisted):
        reads = frame[frame[session] == label]
        if reads.empty:
            raise InputError(None, f"no reads with {session} = {shown(label)}")
        values[label] = reader_metrics(reads, reader, truth, decision, positive).set_index(reader)[metric]
    both = pd.concat({"first": values[first], "assisted": values[assisted]}, axis=1)
    lonely = both.index[both.isna().any(axis=1)].tolist()
    if lonely:
        raise InputError(None, f"readers missing from one session: {', '.join(map(str, lonely))}")
    both["difference"] = both["assisted"] - both["first"]
    tests = pd.DataFrame([compare_reads(both["first"], both["assisted"], t).to_dict() for t in READ_TESTS])
    return both.reset_index(), tests
