"""The published tables, from one long table of per-case predictions of a model and of readers.

The input has one row per (sequence, interpreter, case): ``case``, ``sequence`` (or None for a single
group), ``interpreter`` (the model, e.g. "CNN", or a reader), ``truth`` (the true class), ``decision``
(the interpreter's class call) and, for AUCs, ``score`` (model probability or reader confidence, higher
meaning more likely ``positive`` unless ``direction`` is '>').

* :func:`confusion_table`: the carcinosarcoma study's Table 3, one 2 x 2 confusion matrix per sequence and
  interpreter (rows: true class; columns: predicted class).
* :func:`accuracy_table`: its Table 4, sensitivity, specificity and accuracy (Wilson CIs), AUC (DeLong CI)
  and the paired DeLong p-value of each reader against the model on the same cases and sequence.
* :func:`kappa_table`: its Table 5, pairwise Cohen's kappa between all interpreters, per sequence.
* :func:`ss_avg_table`: the sarcoma study's table of sensitivity, specificity and SS-Avg per group.
* :func:`format_ci`: "0.93 (0.83-0.97)" strings for print.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from sarcomri.errors import InputError
from sarcomri.stats._checks import binary_truth, require_columns, shown
from sarcomri.stats.agreement import kappa_matrix
from sarcomri.stats.diagnostic import confusion_matrix, diagnostic_metrics
from sarcomri.stats.roc import auc_ci, delong_test

_ALL = "all"


def _grouped(frame: pd.DataFrame, sequence: str | None) -> list[tuple[Any, pd.DataFrame]]:
    if sequence is None:
        return [(_ALL, frame)]
    return list(frame.groupby(sequence, sort=False))


def _check(frame: pd.DataFrame, columns: list[str | None], key: list[str | None]) -> None:
    require_columns(frame, [c for c in columns if c is not None], "predictions table")
    key_cols = [c for c in key if c is not None]
    dup = frame.duplicated(key_cols)
    if dup.any():
        first = frame.loc[dup, key_cols].iloc[0].tolist()
        raise InputError(None, f"more than one prediction for {dict(zip(key_cols, first, strict=True))}")


def confusion_table(frame: pd.DataFrame, positive: Any, case: str = "case", sequence: str | None = "sequence",
                    interpreter: str = "interpreter", truth: str = "truth",
                    decision: str = "decision") -> pd.DataFrame:
    """Table 3: rows (sequence, interpreter, true class), columns 'predicted <class>' counts, plus total.

    The positive class comes first in both directions, e.g. rows EC then CS for EC positive.
    """
    _check(frame, [case, sequence, interpreter, truth, decision], [sequence, interpreter, case])
    binary_truth(frame[truth], positive, truth)
    negatives = [c for c in pd.unique(frame[truth]) if c != positive]
    neg = negatives[0] if negatives else "negative"
    pred_pos, pred_neg = f"predicted {positive}", f"predicted {neg}"
    rows = []
    for seq, part in _grouped(frame, sequence):
        for who, reads in part.groupby(interpreter, sort=False):
            cm = confusion_matrix(reads[truth], reads[decision], positive)
            base = {"sequence": seq, "interpreter": who}
            rows.append({**base, "truth": positive, pred_pos: cm.tp, pred_neg: cm.fn, "total": cm.positives})
            rows.append({**base, "truth": neg, pred_pos: cm.fp, pred_neg: cm.tn, "total": cm.negatives})
    return pd.DataFrame(rows)


def format_ci(estimate: float, lower: float, upper: float, digits: int = 2) -> str:
    """'0.93 (0.83-0.97)': an estimate with its CI, for printed tables (empty for NaN)."""
    if not np.isfinite(estimate):
        return ""
    return f"{estimate:.{digits}f} ({lower:.{digits}f}-{upper:.{digits}f})"


def accuracy_table(frame: pd.DataFrame, positive: Any, model: str, case: str = "case",
                   sequence: str | None = "sequence", interpreter: str = "interpreter", truth: str = "truth",
                   decision: str = "decision", score: str | None = "score", direction: str = "<",
                   method: str = "wilson", alpha: float = 0.05) -> pd.DataFrame:
    """Table 4: one row per (sequence, interpreter) with counts, sensitivity, specificity, accuracy (CIs),
    AUC with its DeLong CI and ``p_vs_model``, the paired DeLong p-value against ``model``'s AUC on the
    same cases (NaN on the model's own row). Without ``score`` the AUC columns are left out.
    """
    _check(frame, [case, sequence, interpreter, truth, decision, score], [sequence, interpreter, case])
    rows = []
    for seq, part in _grouped(frame, sequence):
        if score is not None and model not in set(part[interpreter]):
            raise InputError(None, f"the model {shown(model)} has no predictions for sequence {shown(seq)}")
        ref = part[part[interpreter] == model].set_index(case) if score is not None else None
        for who, reads in part.groupby(interpreter, sort=False):
            res = diagnostic_metrics(confusion_matrix(reads[truth], reads[decision], positive), method, alpha)
            row: dict[str, Any] = {"sequence": seq, "interpreter": who, "n": len(reads), **res.to_row()}
            row = {k: v for k, v in row.items() if not k.startswith(("ppv", "npv"))}
            if score is not None and ref is not None:
                a = auc_ci(reads[truth], reads[score], positive, direction, alpha=alpha)
                row.update({"auc": a.auc, "auc_lower": a.lower, "auc_upper": a.upper, "p_vs_model": np.nan})
                if who != model:
                    mine = reads.set_index(case)
                    if set(mine.index) != set(ref.index):
                        raise InputError(None, f"{shown(who)} and the model {shown(model)} read different cases "
                                               f"in sequence {shown(seq)}; the paired DeLong test needs the same "
                                               "cases")
                    both = ref[[truth, score]].join(mine[[score]].rename(columns={score: f"{score}_reader"}))
                    test = delong_test(both[truth], both[f"{score}_reader"], both[score], positive, direction)
                    row["p_vs_model"] = test.p_value
            rows.append(row)
    return pd.DataFrame(rows)


def kappa_table(frame: pd.DataFrame, case: str = "case", sequence: str | None = "sequence",
                interpreter: str = "interpreter", decision: str = "decision", weights: str | None = None,
                order: Sequence[str] | None = None) -> pd.DataFrame:
    """Table 5: pairwise Cohen's kappa between all interpreters; rows indexed by (sequence, interpreter).

    ``order`` fixes the interpreter order (e.g. the model first, then the readers).
    """
    _check(frame, [case, sequence, interpreter, decision], [sequence, interpreter, case])
    blocks = {}
    for seq, part in _grouped(frame, sequence):
        wide = part.pivot(index=case, columns=interpreter, values=decision)
        if order is not None:
            wide = wide[[o for o in order if o in wide.columns]]
        blocks[seq] = kappa_matrix(wide, weights)
    return pd.concat(blocks, names=["sequence", "interpreter"])


def kappa_ci_table(frame: pd.DataFrame, case: str = "case", sequence: str | None = "sequence",
                   interpreter: str = "interpreter", decision: str = "decision", weights: str | None = None,
                   order: Sequence[str] | None = None, alpha: float = 0.05) -> pd.DataFrame:
    """Table 5's kappas in long form with their (1 - alpha) CIs: one row per sequence and pair of interpreters
    (in ``order``): sequence, rater1, rater2, kappa, se, lower, upper, z, p_value, n
    (:func:`~sarcomri.stats.agreement.kappa_pairs`)."""
    from sarcomri.stats.agreement import kappa_pairs

    _check(frame, [case, sequence, interpreter, decision], [sequence, interpreter, case])
    parts = []
    for seq, part in _grouped(frame, sequence):
        wide = part.pivot(index=case, columns=interpreter, values=decision)
        if order is not None:
            wide = wide[[o for o in order if o in wide.columns]]
        parts.append(kappa_pairs(wide, weights, alpha=alpha).assign(sequence=seq))
    out = pd.concat(parts, ignore_index=True)
    return out[["sequence", *[c for c in out.columns if c != "sequence"]]]


def ss_avg_table(frame: pd.DataFrame, positive: Any, by: Sequence[str] = ("sequence",), truth: str = "truth",
                 decision: str = "decision", method: str = "wilson", alpha: float = 0.05) -> pd.DataFrame:
    """The sarcoma study's table: per group (e.g. sequence, or model and sequence) the counts,
    sensitivity, specificity and SS-Avg with CIs, sorted by SS-Avg (best first)."""
    require_columns(frame, [*by, truth, decision], "predictions table")
    rows = []
    for key, part in frame.groupby(list(by), sort=False):
        res = diagnostic_metrics(confusion_matrix(part[truth], part[decision], positive), method, alpha)
        keys = key if isinstance(key, tuple) else (key,)
        row = dict(zip(by, keys, strict=True))
        full = res.to_row()
        row.update({k: full[k] for k in ("tp", "fp", "fn", "tn")})
        for m in ("sensitivity", "specificity", "ss_avg"):
            row.update({m: full[m], f"{m}_lower": full[f"{m}_lower"], f"{m}_upper": full[f"{m}_upper"]})
        rows.append(row)
    return pd.DataFrame(rows).sort_values("ss_avg", ascending=False, kind="stable").reset_index(drop=True)
