"""k-fold cross-validation of a transfer-study model on its own training patients: the folds, the models'
stability (per-fold validation Dice) and the paper's choice of the fold model with the best validation Dice.

Folds are by patient: each training patient (a ``(domain, patient_id)`` key; an aggregated model has both
domains) is validated in exactly one fold and trained on in the others, which
:func:`sarcomri.cohort.splits.check_no_leakage` proves on the fold table (its validation role read as the
fold's test role). Patients are assigned per domain in a seeded random order, round robin over the folds, so
that every fold holds the domains in about their proportions. Pure functions of tables; the training is
:func:`sarcomri.seg2d.transfer.train_job_cv`'s.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sarcomri.cohort.splits import check_no_leakage
from sarcomri.errors import InputError

#: Columns of the per-fold table (``cv.csv`` in a model folder; ``tables/cv_folds.csv`` for the study).
FOLD_COLUMNS = ["model", "n_target_train", "fold", "n_train", "n_val", "val_dice", "val_dice_sd", "chosen"]


def n_folds(n_patients: int, folds: int) -> int:
    """The folds a model with ``n_patients`` training patients gets: ``folds``, at most one per patient;
    0 (no cross-validation) below two patients."""
    k = min(int(folds), int(n_patients))
    return k if k >= 2 else 0


def key_id(key: tuple[str, str]) -> str:
    """``domain/patient_id``: a training patient's id, unique across two cohorts."""
    return f"{key[0]}/{key[1]}"


def cv_folds(train: list[tuple[str, str]], folds: int, seed: int = 0) -> pd.DataFrame:
    """The fold table of a model's training patients: ``patient_id`` (``domain/patient``), ``repeat`` (0),
    ``fold``, ``role`` (``train`` or ``val``), one row per patient and fold; checked for leakage (no patient in
    two roles of a fold, every patient validated exactly once)."""
    ids = sorted(dict.fromkeys(key_id(k) for k in train))
    k = n_folds(len(ids), folds)
    if k == 0:
        raise InputError(None, f"{len(ids)} training patient(s): too few for cross-validation")
    rng = np.random.default_rng(seed)
    fold_of: dict[str, int] = {}
    turn = 0
    for domain in sorted({i.split("/", 1)[0] for i in ids}):
        members = [i for i in ids if i.split("/", 1)[0] == domain]
        for pid in rng.permutation(np.asarray(members, dtype=object)):
            fold_of[str(pid)] = turn % k
            turn += 1
    rows = [(pid, 0, f, "val" if fold_of[pid] == f else "train") for f in range(k) for pid in ids]
    table = pd.DataFrame(rows, columns=["patient_id", "repeat", "fold", "role"])
    check_no_leakage(table.replace({"role": {"val": "test"}}), kfold_complete=True)
    return table


def fold_patients(table: pd.DataFrame, fold: int, role: str) -> list[tuple[str, str]]:
    """The ``(domain, patient_id)`` keys of one fold's ``train`` or ``val`` patients."""
    ids = table.loc[(table["fold"] == fold) & (table["role"] == role), "patient_id"]
    return [tuple(i.split("/", 1)) for i in ids]  # type: ignore[misc]


def choose_fold(per_fold: pd.DataFrame) -> int:
    """The fold of highest mean validation Dice (the lowest fold number on ties; NaN never wins)."""
    dice = per_fold.set_index("fold")["val_dice"].astype(float)
    if dice.isna().all():
        return int(dice.index.min())
    best = dice.max()
    return int(min(f for f, d in dice.items() if d == best))


def fold_stability(per_fold: pd.DataFrame) -> pd.DataFrame:
    """The stability of every cross-validated model: per (model, n_target_train), the number of folds and the
    mean, SD (n - 1), minimum and maximum of the folds' mean validation Dice, the chosen fold and its Dice."""
    cols = ["model", "n_target_train", "folds", "mean", "sd", "min", "max", "chosen_fold", "chosen_dice"]
    if per_fold.empty:
        return pd.DataFrame(columns=cols)
    rows = []
    for (model, n), g in per_fold.groupby(["model", "n_target_train"], sort=False):
        d = g["val_dice"].astype(float)
        chosen = g[g["chosen"].astype(bool)]
        rows.append({"model": model, "n_target_train": int(n), "folds": len(g), "mean": d.mean(),
                     "sd": d.std(ddof=1) if len(g) > 1 else np.nan, "min": d.min(), "max": d.max(),
                     "chosen_fold": int(chosen["fold"].iloc[0]) if len(chosen) else -1,
                     "chosen_dice": float(chosen["val_dice"].iloc[0]) if len(chosen) else np.nan})
    return pd.DataFrame(rows, columns=cols)
