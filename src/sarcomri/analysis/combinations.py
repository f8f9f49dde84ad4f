"""Exhaustive search over sequence combinations (the sarcoma study's Table 1).

For S sequences there are 2^S - 1 non-empty subsets (15 sequences: 32,767). Each subset's score per patient
is the sum of that patient's +1/-1 votes over the subset's sequences it has; patients with none of the
subset's sequences are left out of that subset. Each subset gets the SS-Avg-maximising threshold on its
summed score, and is ranked by SS-Avg. The thresholds are chosen on the same patients they are scored on, so
the top of the table is optimistic: report it as exploratory, as the study did.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sarcomri.analysis.voting import best_integer_threshold
from sarcomri.cohort.sequences import group_name


def subset_masks(n: int) -> np.ndarray:
    """(2^n - 1, n) boolean matrix of every non-empty subset of n items (bit j of the row number = item j)."""
    if not 1 <= n <= 20:
        raise ValueError(f"combination search supports 1 to 20 sequences, got {n}")
    codes = np.arange(1, 2**n, dtype=np.int64)
    return ((codes[:, None] >> np.arange(n)) & 1).astype(bool)


def search_combinations(
    vote_table: pd.DataFrame, labels: pd.Series, chunk: int = 4096, min_patients: int = 1
) -> pd.DataFrame:
    """Score every non-empty subset of the vote table's sequences.

    ``vote_table`` is patients x sequences with +1/-1 votes and 0 where missing; ``labels`` maps patient_id
    to 1 (positive) or 0. Returns one row per subset: sequences ('+'-joined), n_sequences, threshold,
    ss_avg, sensitivity, specificity, accuracy, n_patients, sorted by SS-Avg (then accuracy, then fewer
    sequences).
    """
    seqs = list(vote_table.columns)
    v = vote_table.to_numpy(dtype=np.int16)  # (patients, S)
    avail = (v != 0).astype(np.int16)
    y = labels.reindex(vote_table.index).to_numpy()
    if np.isnan(y.astype(float)).any():
        raise ValueError("a patient in the vote table has no label")
    masks = subset_masks(len(seqs))
    parts = []
    for start in range(0, len(masks), chunk):
        m = masks[start : start + chunk].astype(np.int16)
        scores = m @ v.T  # (subsets, patients)
        include = (m @ avail.T) > 0
        best = best_integer_threshold(scores, y, include)
        parts.append(pd.DataFrame({
            "code": np.arange(start, start + len(m)) + 1, "n_sequences": m.sum(1),
            **{k: best[k] for k in ("threshold", "ss_avg", "sensitivity", "specificity", "accuracy")},
            "n_patients": best["n_pos"] + best["n_neg"],
        }))
    table = pd.concat(parts, ignore_index=True)
    table = table[table["n_patients"] >= min_patients]
    names = np.array(seqs)
    table.insert(0, "sequences", [group_name(names[masks[c - 1]]) for c in table["code"]])
    return (
        table.drop(columns="code")
        .sort_values(["ss_avg", "accuracy", "n_sequences"], ascending=[False, False, True], kind="stable")
        .reset_index(drop=True)
    )


def top_k_summary(table: pd.DataFrame, k: int = 10) -> pd.DataFrame:
    """The top-k combinations and a final 'average' row, as in the sarcoma study's Table 1."""
    top = table.head(k).copy()
    avg = top[["ss_avg", "sensitivity", "specificity", "accuracy"]].mean()
    avg_row = pd.DataFrame([{"sequences": f"average of top {len(top)}", **avg.to_dict()}])
    return pd.concat([top, avg_row], ignore_index=True)
