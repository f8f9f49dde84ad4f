"""Patient-level splits: repeated stratified k-fold, hold-out, learning-curve subsets, and a leakage check.

Every split is by patient: a table of ``patient_id, repeat, fold, role`` (``role`` in train/val/test) with one
row per patient for every (repeat, fold). The same seed gives the same table. :func:`check_no_leakage`
proves that no patient holds two roles in one fold and, for k-fold, that each patient is tested exactly once
per repeat.

Several examinations of one person: when patients.csv has a ``subject_id`` column (one row per examination,
the rows of one person sharing it; a row without one is a subject of its own), every scheme splits subjects,
not rows: all rows of a subject share each fold and role, strata are the subject's first row's, and the table
carries a ``subject_id`` column by which :func:`check_no_leakage` also refuses a subject split across roles.

K-fold folds are stratified by patient count (``balance="patients"``) or made as uniform as possible in tumour
slices (``balance="slices"``, the sarcoma study: :func:`slice_balanced_folds`). :func:`resplit_validation`
carves a sequence's own validation patients from each fold's training patients, the test patients unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold, train_test_split

from sarcomri.errors import SarcomriError, few

ROLES = ("train", "val", "test")
SPLIT_COLUMNS = ["patient_id", "repeat", "fold", "role"]
#: The patients.csv column that groups several examinations (rows) of one person.
SUBJECT = "subject_id"
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


def subject_units(patients: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, list[str]] | None]:
    """The units a split assigns: ``patients`` itself (and None) without a ``subject_id`` column; else one row
    per subject (its first row, ``patient_id`` set to the subject) and each subject's patient ids in table order.
    A row with an empty ``subject_id`` is a subject of its own, named by its patient_id."""
    if SUBJECT not in patients.columns:
        return patients, None
    given = patients[SUBJECT].astype("string").str.strip()
    subject = given.where(given.notna() & (given != ""), patients["patient_id"].astype("string")).astype(str)
    members: dict[str, list[str]] = {}
    for sid, pid in zip(subject, patients["patient_id"].astype(str), strict=True):
        members.setdefault(sid, []).append(pid)
    units = patients.assign(patient_id=subject.to_numpy()).drop_duplicates("patient_id").reset_index(drop=True)
    return units, members


def _expand(frame: pd.DataFrame, members: dict[str, list[str]] | None) -> pd.DataFrame:
    """A table over subjects (``patient_id`` holding the subject) as one over their rows, with ``subject_id``."""
    if members is None:
        return frame
    out = frame.rename(columns={"patient_id": SUBJECT})
    out["patient_id"] = out[SUBJECT].map(members)
    out = out.explode("patient_id", ignore_index=True)
    return out[["patient_id", *[c for c in out.columns if c != "patient_id"]]]


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
    balance: Literal["patients", "slices"] = "patients",
    slice_counts: Mapping[str, int] | None = None,
) -> pd.DataFrame:
    """Repeated stratified k-fold by patient (the sarcoma study: 6 folds x 24 repeats).

    In each (repeat, fold) the patients of that fold are ``test``; the others are ``train``, of which a
    stratified ``val_ratio`` share becomes ``val`` (for choosing the epoch). Strata are the joint values of
    ``stratify_by`` (add ``center`` to balance hospitals across folds). ``balance="slices"`` assigns the folds
    by :func:`slice_balanced_folds` from ``slice_counts`` (patient_id: tumour slices; a subject counts the sum
    of its rows') instead of scikit-learn's StratifiedKFold.
    """
    if n_folds < 2:
        raise SarcomriError(f"k-fold needs at least 2 folds, got {n_folds}")
    if balance == "slices" and slice_counts is None:
        raise SarcomriError("slice-balanced folds need the tumour slice count of every patient")
    patients, members = subject_units(patients)
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
    counts = None
    if balance == "slices":
        rows_of = members or {pid: [pid] for pid in ids}
        missing = [p for unit in ids for p in rows_of[unit] if p not in slice_counts]
        if missing:
            raise SarcomriError(f"no tumour slice count for {few(missing)}")
        counts = np.array([sum(int(slice_counts[p]) for p in rows_of[unit]) for unit in ids])
    rows = []
    for r in range(n_repeats):
        if counts is None:
            skf = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=_child_seed(seed, r))
            parts = list(skf.split(ids, stratum.to_numpy()))
        else:
            fold_of = slice_balanced_folds(stratum.to_numpy(), counts, n_folds, _child_seed(seed, r))
            parts = [(np.flatnonzero(fold_of != k), np.flatnonzero(fold_of == k)) for k in range(n_folds)]
        for k, (tr_idx, te_idx) in enumerate(parts):
            tr, va = _split_validation(ids[tr_idx], stratum, val_ratio, _child_seed(seed, r, k))
            rows.extend(_rows(r, k, tr, va, ids[te_idx]))
    return _sorted(_expand(pd.DataFrame(rows, columns=SPLIT_COLUMNS), members))


def slice_balanced_folds(stratum: np.ndarray, counts: np.ndarray, n_folds: int, seed: int,
                         max_passes: int = 100) -> np.ndarray:
    """The fold of each unit (patient or subject) so that the folds' tumour slice totals are as uniform as a
    greedy search makes them, the folds stratified as in StratifiedKFold (each stratum's units spread so that
    their numbers per fold differ by at most one).

    The rule: (1) a seeded random order of the units, grouped by stratum, dealt to the folds in turn (one
    counter across strata, so fold sizes also differ by at most one); (2) passes over the units in a seeded
    random order, each unit swapped with the unit of its own stratum in another fold whose swap lowers the sum
    of squared fold slice totals the most (swaps keep every fold's stratum counts), until a pass swaps nothing
    or ``max_passes``. The seed makes the repeats differ; each repeat ends where no single swap helps.
    """
    stratum, counts = np.asarray(stratum), np.asarray(counts, dtype=np.int64)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(counts))
    order = order[np.argsort(stratum[order], kind="stable")]
    fold_of = np.empty(len(counts), dtype=np.int64)
    fold_of[order] = np.arange(len(counts)) % n_folds
    totals = np.bincount(fold_of, weights=counts, minlength=n_folds).astype(np.int64)
    for _ in range(max_passes):
        swapped = False
        for i in rng.permutation(len(counts)):
            a = fold_of[i]
            cand = np.flatnonzero((stratum == stratum[i]) & (fold_of != a))
            if cand.size == 0:
                continue
            d = counts[cand] - counts[i]  # what fold a gains (and fold b loses) by the swap
            change = 2 * d * (totals[a] - totals[fold_of[cand]]) + 2 * d * d
            best = int(np.argmin(change))
            if change[best] >= 0:
                continue
            j, b = cand[best], fold_of[cand[best]]
            totals[a] += d[best]
            totals[b] -= d[best]
            fold_of[i], fold_of[j] = b, a
            swapped = True
        if not swapped:
            break
    return fold_of


def holdout(
    patients: pd.DataFrame,
    test_ratio: float = 1 / 6,
    seed: int = 0,
    val_ratio: float = 0.0,
    stratify_by: Sequence[str] = ("label",),
) -> pd.DataFrame:
    """A stratified hold-out by patient: each stratum (class) gives ``test_ratio`` of its patients to the test
    set, rounded half up (at least one, never all), drawn at random with ``seed``. The carcinosarcoma study's
    split, 0.2 of 52 carcinosarcomas and 279 endometrial carcinomas, is 10 + 56 = 66 test patients, as published.

    Returned with ``repeat=0, fold=0`` so that every stage reads one format.
    """
    if not 0 < test_ratio < 1:
        raise SarcomriError(f"test_ratio must lie in (0, 1), got {test_ratio}")
    patients, members = subject_units(patients)
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
    tr, te = _stratified_holdout(ids, stratum.to_numpy(), test_ratio, seed)
    tr, va = _split_validation(tr, stratum, val_ratio, _child_seed(seed, 1))
    rows = _rows(0, 0, tr, va, te)
    return _sorted(_expand(pd.DataFrame(rows, columns=SPLIT_COLUMNS), members))


def _stratified_holdout(ids: np.ndarray, stratum: np.ndarray, ratio: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and test ids: from each stratum, ``ratio`` of its members (half up; at least one, never all)."""
    rng = np.random.default_rng(seed)
    test = []
    for value in sorted(set(stratum.tolist()), key=str):
        members = ids[stratum == value]
        k = min(max(1, int(math.floor(ratio * len(members) + 0.5))), len(members) - 1)
        test.extend(rng.permutation(members)[:k])
    chosen = set(test)
    return np.sort(np.array([i for i in ids if i not in chosen], dtype=object)), np.sort(np.array(test, dtype=object))


def leave_group_out(
    patients: pd.DataFrame, group: str = "center", val_ratio: float = 0.0, seed: int = 0
) -> pd.DataFrame:
    """One fold per value of ``group`` (e.g. leave-one-hospital-out external validation); a subject goes with
    its first row's group."""
    if group not in patients.columns:
        raise SarcomriError(f"patients.csv has no column '{group}'")
    patients, members = subject_units(patients)
    stratum = strata(patients, ("label",))
    rows = []
    for k, value in enumerate(sorted(patients[group].astype(str).unique())):
        in_group = patients[group].astype(str) == value
        te = patients.loc[in_group, "patient_id"].to_numpy(dtype=object)
        tr, va = _split_validation(
            patients.loc[~in_group, "patient_id"].to_numpy(dtype=object), stratum, val_ratio, _child_seed(seed, k)
        )
        rows.extend(_rows(0, k, tr, va, te))
    return _sorted(_expand(pd.DataFrame(rows, columns=SPLIT_COLUMNS), members))


def resplit_validation(
    splits: pd.DataFrame,
    patients: pd.DataFrame,
    val_ratio: float,
    seed: int = 0,
    stratify_by: Sequence[str] = ("label",),
) -> pd.DataFrame:
    """``splits`` with each (repeat, fold)'s validation patients carved again, ``val_ratio`` of that fold's
    training patients (train and val together), stratified, seeded from (``seed``, repeat, fold); the test rows
    are kept as they are, so the models of several sequences are tested on the same patients. Subjects stay
    whole (:func:`subject_units`). With the k-fold's own seed and ratio this gives back :func:`kfold`'s table."""
    units, members = subject_units(patients)
    stratum = strata(units, stratify_by)
    if stratum.value_counts().min() < 2:
        stratum = strata(units, ("label",))
    unit_of = {p: u for u, rows in (members or {}).items() for p in rows}
    order = units["patient_id"].tolist()
    frames = []
    for (r, k), fold in splits.groupby(["repeat", "fold"], sort=True):
        pool = {unit_of.get(p, p) for p in fold.loc[fold["role"] != "test", "patient_id"]}
        unknown = sorted(pool - set(order))
        if unknown:
            raise SarcomriError(f"the splits name patients that patients.csv lacks ({few(unknown)})")
        tr, va = _split_validation(np.array([u for u in order if u in pool], dtype=object), stratum, val_ratio,
                                   _child_seed(seed, int(r), int(k)))
        carved = _expand(pd.DataFrame(_rows(int(r), int(k), tr, va, []), columns=SPLIT_COLUMNS), members)
        frames += [carved, fold[fold["role"] == "test"][list(carved.columns)]]
    return _sorted(pd.concat(frames, ignore_index=True))


def nested_subsets(
    patients: pd.DataFrame,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    seed: int = 0,
    stratify_by: Sequence[str] = ("label",),
) -> pd.DataFrame:
    """Nested training-size subsets for learning curves: each fraction's patients contain the smaller ones.

    Patients are put in one stratified random order (each stratum shuffled, then interleaved by relative
    rank) and the subset at fraction ``f`` is the first ``ceil(f * N)`` patients (at least one; subjects, with all
    their rows, when patients.csv has a ``subject_id``). Returns
    ``patient_id, fraction`` with one row per patient and fraction it belongs to.
    """
    fr = sorted({float(f) for f in fractions})
    if not fr or fr[0] <= 0 or fr[-1] > 1:
        raise SarcomriError(f"fractions must lie in (0, 1], got {list(fractions)}")
    units, members = subject_units(patients)
    order = stratified_order(units, seed, stratify_by)
    n = len(order)
    rows = []
    for f in fr:
        k = max(1, math.ceil(round(f * n, 9)))
        rows.extend((pid, f) for unit in order[:k] for pid in (members or {}).get(unit, [unit]))
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
    """Prove that no patient holds two roles in one (repeat, fold), nor (with a ``subject_id`` column) a
    subject's rows; raise :class:`LeakageError` otherwise.

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
    if SUBJECT in splits.columns:
        roles = splits.groupby(["repeat", "fold", SUBJECT])["role"].agg(lambda r: sorted(set(r)))
        split = roles[roles.map(len) > 1]
        if len(split):
            (rep, fold, subject), held = next(iter(split.items()))
            raise LeakageError(f"subject {subject} is split across roles {held} in repeat {rep}, fold {fold}")
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
