"""Patient-level splits: repeated stratified k-fold, hold-out, learning-curve subsets, and a leakage check.

Every split is by patient: a table of ``patient_id, repeat, fold, role`` (``role`` in train/val/test) with one
row per patient for every (repeat, fold). The same seed gives the same table. :func:`check_no_leakage`
proves that no patient holds two roles in one fold and, for k-fold, that each patient is tested exactly once
per repeat.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold, train_test_split

from sarcomri.errors import SarcomriError

ROLES = ("train", "val", "test")
SPLIT_COLUMNS = ["patient_id", "repeat", "fold", "role"]
DEFAULT_FRACTIONS = (0.02, 0.05, 0.10, 0.20, 0.50, 1.00)


class LeakageError(SarcomriError):
    """A patient appears in two roles of one fold, or a model saw a patient it is tested on."""


def strata(patients: pd.DataFrame, by: Sequence[str] = ("label",)) -> pd.Series:
    """One stratum label per patient: the listed columns joined (e.g. label x center), indexed by patient_id."""
    missing = [c for c in by if c not in patients.columns]
    if missing:
        raise SarcomriError(f"patients.csv has no column(s) {missing} to stratify by")
    key = patients[list(by)].astype(str).agg("|".join, axis=1)
    return pd.Series(key.to_numpy(), index=patients["patient_id"].to_numpy(), name="stratum")


def _split_validation(
    train_ids: np.ndarray, stratum: pd.Series, val_ratio: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split training patients into train and validation, stratified when every stratum allows it."""
    if val_ratio <= 0:
        return train_ids, np.array([], dtype=object)
    if val_ratio >= 1:
        raise SarcomriError(f"val_ratio must lie in [0, 1), got {val_ratio}")
    n_val = max(1, int(round(val_ratio * len(train_ids))))
    if n_val >= len(train_ids):
        raise SarcomriError(f"a training fold of {len(train_ids)} patient(s) is too small to keep {n_val} for "
                            "validation: use more patients or a validation ratio of 0")
    y = stratum.loc[train_ids].to_numpy()
    counts = pd.Series(y).value_counts()
    stratify = y if counts.min() >= 2 and n_val >= counts.size else None
    tr, va = train_test_split(train_ids, test_size=n_val, stratify=stratify, random_state=seed)
    return np.sort(tr), np.sort(va)


def kfold(
    patients: pd.DataFrame,
    n_folds: int = 6,
    n_repeats: int = 1,
    seed: int = 0,
    val_ratio: float = 0.0,
    stratify_by: Sequence[str] = ("label",),
) -> pd.DataFrame:
    """Repeated stratified k-fold by patient (the sarcoma study: 6 folds x 24 repeats).

    In each (repeat, fold) the patients of that fold are ``test``; the others are ``train``, of which a
    stratified ``val_ratio`` share becomes ``val`` (for choosing the epoch). Strata are the joint values of
    ``stratify_by`` (add ``center`` to balance hospitals across folds).
    """
    if n_folds < 2:
        raise SarcomriError(f"k-fold needs at least 2 folds, got {n_folds}")
    ids = patients["patient_id"].to_numpy(dtype=object)
    stratum = strata(patients, stratify_by)
    smallest = int(stratum.value_counts().min())
    if smallest < n_folds:
        # fall back to the label alone before refusing
        stratum = strata(patients, ("label",))
        smallest = int(stratum.value_counts().min())
        if smallest < n_folds:
            raise SarcomriError(
                f"the rarest class has {smallest} patients: too few for {n_folds} stratified folds"
            )
    rows = []
    for r in range(n_repeats):
        skf = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=_child_seed(seed, r))
        for k, (tr_idx, te_idx) in enumerate(skf.split(ids, stratum.to_numpy())):
            tr, va = _split_validation(ids[tr_idx], stratum, val_ratio, _child_seed(seed, r, k))
            rows.extend(_rows(r, k, tr, va, ids[te_idx]))
    return _sorted(pd.DataFrame(rows, columns=SPLIT_COLUMNS))


def holdout(
    patients: pd.DataFrame,
    test_ratio: float = 1 / 6,
    seed: int = 0,
    val_ratio: float = 0.0,
    stratify_by: Sequence[str] = ("label",),
) -> pd.DataFrame:
    """A stratified hold-out by patient (the carcinosarcoma study's 5:1 split is ``test_ratio=1/6``).

    Returned with ``repeat=0, fold=0`` so that every stage reads one format.
    """
    if not 0 < test_ratio < 1:
        raise SarcomriError(f"test_ratio must lie in (0, 1), got {test_ratio}")
    ids = patients["patient_id"].to_numpy(dtype=object)
    stratum = strata(patients, stratify_by)
    if stratum.value_counts().min() < 2:
        stratum = strata(patients, ("label",))
    n_test = int(np.ceil(test_ratio * len(ids)))
    if len(ids) - n_test < 1 or n_test < stratum.nunique() or len(ids) - n_test < stratum.nunique():
        raise SarcomriError(f"{len(ids)} patient(s) are too few for a stratified hold-out of {test_ratio:.3g} "
                            f"over {stratum.nunique()} strata")
    if stratum.value_counts().min() < 2:
        raise SarcomriError(f"the rarest class has {int(stratum.value_counts().min())} patient(s): too few for a "
                            "stratified hold-out")
    tr, te = train_test_split(ids, test_size=test_ratio, stratify=stratum.to_numpy(), random_state=seed)
    tr, va = _split_validation(tr, stratum, val_ratio, _child_seed(seed, 1))
    rows = _rows(0, 0, tr, va, te)
    return _sorted(pd.DataFrame(rows, columns=SPLIT_COLUMNS))


def leave_group_out(
    patients: pd.DataFrame, group: str = "center", val_ratio: float = 0.0, seed: int = 0
) -> pd.DataFrame:
    """One fold per value of ``group`` (e.g. leave-one-hospital-out external validation)."""
    if group not in patients.columns:
        raise SarcomriError(f"patients.csv has no column '{group}'")
    stratum = strata(patients, ("label",))
    rows = []
    for k, value in enumerate(sorted(patients[group].astype(str).unique())):
        in_group = patients[group].astype(str) == value
        te = patients.loc[in_group, "patient_id"].to_numpy(dtype=object)
        tr, va = _split_validation(
            patients.loc[~in_group, "patient_id"].to_numpy(dtype=object), stratum, val_ratio, _child_seed(seed, k)
        )
        rows.extend(_rows(0, k, tr, va, te))
    return _sorted(pd.DataFrame(rows, columns=SPLIT_COLUMNS))


def nested_subsets(
    patients: pd.DataFrame,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    seed: int = 0,
    stratify_by: Sequence[str] = ("label",),
) -> pd.DataFrame:
    """Nested training-size subsets for learning curves: each fraction's patients contain the smaller ones.

    Patients are put in one stratified random order (each stratum shuffled, then interleaved by relative
    rank) and the subset at fraction ``f`` is the first ``ceil(f * N)`` patients (at least one). Returns
    ``patient_id, fraction`` with one row per patient and fraction it belongs to.
    """
    fr = sorted({float(f) for f in fractions})
    if not fr or fr[0] <= 0 or fr[-1] > 1:
        raise SarcomriError(f"fractions must lie in (0, 1], got {list(fractions)}")
    order = stratified_order(patients, seed, stratify_by)
    n = len(order)
    rows = []
    for f in fr:
        k = max(1, math.ceil(round(f * n, 9)))
        rows.extend((pid, f) for pid in order[:k])
    return pd.DataFrame(rows, columns=["patient_id", "fraction"])


def stratified_order(patients: pd.DataFrame, seed: int = 0, stratify_by: Sequence[str] = ("label",)) -> list[str]:
    """A random order of patients whose every prefix keeps the strata's proportions as far as possible."""
    rng = np.random.default_rng(seed)
    stratum = strata(patients, stratify_by)
    keys, ranks = [], []
    for _, members in stratum.groupby(stratum, sort=True):
        ids = rng.permutation(members.index.to_numpy(dtype=object))
        m = len(ids)
        keys.extend(ids)
        ranks.extend((np.arange(m) + rng.uniform(0.0, 1.0, m)) / m)
    return [keys[i] for i in np.argsort(np.asarray(ranks), kind="stable")]


def check_no_leakage(splits: pd.DataFrame, kfold_complete: bool | None = None) -> None:
    """Prove that no patient holds two roles in one (repeat, fold); raise :class:`LeakageError` otherwise.

    With ``kfold_complete`` (default: when a repeat has several folds) also check that, within each repeat,
    every patient is tested exactly once, as k-fold cross-validation requires.
    """
    missing = set(SPLIT_COLUMNS) - set(splits.columns)
    if missing:
        raise LeakageError(f"splits table lacks columns {sorted(missing)}")
    bad_roles = set(splits["role"]) - set(ROLES)
    if bad_roles:
        raise LeakageError(f"unknown roles {sorted(bad_roles)}")
    dup = splits.duplicated(["repeat", "fold", "patient_id"], keep=False)
    if dup.any():
        row = splits[dup].iloc[0]
        roles = sorted(splits[dup & (splits["patient_id"] == row["patient_id"])]["role"].unique())
        raise LeakageError(  # row["repeat"], not row.repeat: that is Series.repeat
            f"patient {row['patient_id']} holds {len(roles)} roles {roles} in repeat {row['repeat']}, "
            f"fold {row['fold']}"
        )
    if kfold_complete is None:
        kfold_complete = bool((splits.groupby("repeat")["fold"].nunique() > 1).all())
    if kfold_complete:
        tested = splits[splits["role"] == "test"].groupby(["repeat", "patient_id"]).size()
        if (tested != 1).any():
            (rep, pid), n = next((k, v) for k, v in tested.items() if v != 1)
            raise LeakageError(f"patient {pid} is tested {n} times in repeat {rep}")
        all_ids = set(splits["patient_id"])
        for rep, sub in splits[splits["role"] == "test"].groupby("repeat"):
            never = all_ids - set(sub["patient_id"])
            if never:
                raise LeakageError(f"patients {sorted(never)[:5]} are never tested in repeat {rep}")


def check_predictions_against_splits(predictions: pd.DataFrame, splits: pd.DataFrame) -> None:
    """Prove that every test prediction of a (repeat, fold) model is for a patient the model did not train on."""
    test = predictions[predictions["split"] == "test"][["repeat", "fold", "patient_id"]].drop_duplicates()
    seen = splits[splits["role"].isin(["train", "val"])][["repeat", "fold", "patient_id"]]
    clash = test.merge(seen, on=["repeat", "fold", "patient_id"])
    if not clash.empty:
        r = clash.iloc[0]
        raise LeakageError(
            f"{len(clash)} test predictions come from models trained on the same patient "
            f"(first: patient {r.patient_id}, repeat {r.repeat}, fold {r.fold})"
        )


def _rows(repeat: int, fold: int, train, val, test) -> list[tuple]:
    """Split-table rows of one (repeat, fold)."""
    return [(pid, repeat, fold, role) for role, ids in (("train", train), ("val", val), ("test", test)) for pid in ids]


def _child_seed(seed: int, *keys: int) -> int:
    """A reproducible 32-bit seed derived from ``seed`` and integer keys."""
    return int(np.random.SeedSequence([seed, *keys]).generate_state(1)[0])


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    role_rank = frame["role"].map({r: i for i, r in enumerate(ROLES)})
    return (
        frame.assign(_r=role_rank)
        .sort_values(["repeat", "fold", "_r", "patient_id"])
        .drop(columns="_r")
        .reset_index(drop=True)
    )
