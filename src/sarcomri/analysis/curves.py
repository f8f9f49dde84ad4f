"""ROC curves and operating points of the model and the readers, as tables (the carcinosarcoma study's Figure 3).

Input: a long table of reads, one row per (sequence, interpreter, case) with ``truth``, ``decision`` (the
interpreter's class call) and ``score`` (higher = more likely ``positive``): the readers' tables of
:func:`sarcomri.analysis.readers.interpreter_reads` or the model's own decisions
(:func:`sarcomri.analysis.published.decision_table`). Sequences whose cases are all of one class are left out.

* ``roc_points``: one row per (sequence, interpreter, cut-off) of :func:`sarcomri.stats.roc.roc_points`:
  threshold (``inf`` first: nobody positive), fpr (1 - specificity), sensitivity; from the strictest
  cut-off to the most lenient, ready to plot.
* ``operating_points``: one row per (sequence, interpreter): group, n (the model's cases of the sequence),
  auc (empirical, :func:`sarcomri.stats.roc.auc_ci`), fpr and sensitivity of the interpreter's own calls
  (``decision``), and for readers with an AI-assisted read of the same cases the assisted calls'
  assisted_fpr and assisted_sensitivity (NaN otherwise).
* ``roc_band``: the model's curve per sequence with its 95% confidence band: sensitivity at specificities 0,
  0.05, ..., 1 with stratified-bootstrap percentile limits (:func:`sarcomri.stats.roc_band.sensitivity_band`,
  2000 replicates, seed 0): sequence, specificity, sensitivity, lower, upper.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sarcomri.analysis.readers import MODEL
from sarcomri.stats.diagnostic import diagnostic_from_labels
from sarcomri.stats.roc import auc_ci, roc_points
from sarcomri.stats.roc_band import sensitivity_band

POINT_COLUMNS = ["sequence", "interpreter", "threshold", "fpr", "sensitivity"]
BAND_COLUMNS = ["sequence", "specificity", "sensitivity", "lower", "upper"]
OPERATING_COLUMNS = ["sequence", "interpreter", "group", "n", "auc", "fpr", "sensitivity", "assisted_fpr",
                     "assisted_sensitivity"]


def operating_point(truth: pd.Series, decision: pd.Series | np.ndarray, positive: object) -> tuple[float, float]:
    """(1 - specificity, sensitivity) of class calls against the truth."""
    res = diagnostic_from_labels(truth, decision, positive)
    return 1.0 - res.specificity.estimate, res.sensitivity.estimate


def _both(truth: pd.Series) -> bool:
    return truth.nunique() == 2


def _assisted_point(assisted: pd.DataFrame | None, reader: str, positive: object) -> tuple[float, float]:
    if assisted is None:
        return np.nan, np.nan
    mine = assisted[assisted["reader"] == reader]
    if len(mine) and _both(mine["truth"]):
        return operating_point(mine["truth"], mine["decision"], positive)
    return np.nan, np.nan


def curve_tables(reads: pd.DataFrame, positive: object,
                 assisted: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``roc_points`` and ``operating_points`` (module docstring) of every sequence of ``reads``.

    ``reads``: case, sequence, interpreter, truth, decision, score (and group; ``model`` when absent).
    ``assisted``: the readers' AI-assisted reads (patient_id, reader, sequence, truth, decision), whose calls
    on the sequence's cases give the readers' assisted operating points.
    """
    points, rows = [], []
    for seq, part in reads.groupby("sequence", sort=False):
        if not _both(part["truth"]):
            continue
        n = part.loc[part["interpreter"] == MODEL, "case"].nunique()
        aided = None
        if assisted is not None:
            aided = assisted[(assisted["sequence"] == seq) & assisted["patient_id"].isin(part["case"])]
        for who, mine in part.groupby("interpreter", sort=False):
            roc = roc_points(mine["truth"], mine["score"], positive, "<")
            points.append(roc[["threshold", "fpr", "sensitivity"]].assign(sequence=seq, interpreter=who))
            fpr, sens = operating_point(mine["truth"], mine["decision"], positive)
            a_fpr, a_sens = _assisted_point(aided, who, positive) if who != MODEL else (np.nan, np.nan)
            group = str(mine["group"].iloc[0]) if "group" in mine.columns else "model"
            rows.append({"sequence": seq, "interpreter": who, "group": group, "n": n,
                         "auc": auc_ci(mine["truth"], mine["score"], positive, "<").auc, "fpr": fpr,
                         "sensitivity": sens, "assisted_fpr": a_fpr, "assisted_sensitivity": a_sens})
    roc_table = pd.concat(points, ignore_index=True)[POINT_COLUMNS] if points else pd.DataFrame(columns=POINT_COLUMNS)
    return roc_table, pd.DataFrame(rows, columns=OPERATING_COLUMNS)


def band_table(reads: pd.DataFrame, positive: object) -> pd.DataFrame:
    """``roc_band`` (module docstring): the model's sensitivity band per sequence of ``reads``."""
    parts = []
    for seq, part in reads[reads["interpreter"] == MODEL].groupby("sequence", sort=False):
        if _both(part["truth"]):
            parts.append(sensitivity_band(part["truth"], part["score"], positive).assign(sequence=seq))
    return pd.concat(parts, ignore_index=True)[BAND_COLUMNS] if parts else pd.DataFrame(columns=BAND_COLUMNS)
