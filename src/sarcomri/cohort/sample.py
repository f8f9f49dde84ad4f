"""A stratified sample of a cohort's patients, written as a cohort of its own (a study's ``patients``: the smoke
scale on a user's cohort, or a pilot on part of it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from sarcomri.cohort.manifest import Cohort, CohortWriter
from sarcomri.cohort.schema import READERS_CSV
from sarcomri.errors import InputError
from sarcomri.io.atomic import write_csv


def stratum_quotas(sizes: pd.Series, n: int) -> pd.Series:
    """How many of ``n`` to draw from each stratum of ``sizes``: proportional, largest remainders first (the rarer
    stratum on a tie), at least one from every stratum when ``n`` allows, never more than a stratum has."""
    share = sizes / sizes.sum() * n
    quota = share.astype(int).clip(upper=sizes)
    if n >= len(sizes):
        quota = quota.clip(lower=1)
    rest = pd.DataFrame({"rest": share - share.astype(int), "size": sizes})
    order = rest.sort_values(["rest", "size"], ascending=[False, True], kind="stable").index  # ties: rarer first
    while quota.sum() < n:
        for key in order:
            if quota.sum() < n and quota[key] < sizes[key]:
                quota[key] += 1
    while quota.sum() > n:  # the minimum of one took more than n allows: trim the largest
        quota[quota.idxmax()] -= 1
    return quota


def sample_ids(patients: pd.DataFrame, n: int, seed: int = 0, stratify_by: tuple[str, ...] = ("label",)) -> list[str]:
    """``n`` patient ids keeping the strata's proportions (:func:`stratum_quotas`: every stratum represented when
    ``n`` allows), drawn at random with ``seed`` within each stratum, in the cohort's order; all of them when
    the cohort has no more than ``n``."""
    ids = patients["patient_id"].astype(str)
    if n >= len(patients):
        return ids.tolist()
    by = [c for c in stratify_by if c in patients.columns]
    stratum = patients[by].astype(str).agg("|".join, axis=1) if by else pd.Series("all", index=patients.index)
    quota = stratum_quotas(stratum.value_counts().sort_index(), n)
    rng = np.random.default_rng(seed)
    keep: set[str] = set()
    for key, k in quota.items():
        members = ids[stratum == key].to_numpy()
        keep.update(rng.permutation(members)[:k])
    return [p for p in ids if p in keep]


def write_sample(cohort: Cohort, patient_ids: list[str], out: str | Path, overwrite: bool = False) -> Path:
    """Write the cohort restricted to ``patient_ids`` (images, masks, clinical columns and the readers' reads of
    those patients) as a new cohort folder ``out``; cohort.json records what it is a sample of."""
    if not patient_ids:
        raise InputError(cohort.root, "a sample needs at least one patient")
    part = cohort.subset(patient_ids)
    meta = {k: v for k, v in cohort.meta.items() if k not in ("schema_version", "labels", "positive_label", "rows")}
    meta["sample"] = {"patients": len(part.patients), "of": len(cohort.patients)}
    labels = cohort.meta.get("labels") or sorted(part.patients["label"].astype(str).unique())
    with CohortWriter(out, labels=list(labels), positive_label=cohort.positive_label, overwrite=overwrite,
                      meta=meta) as writer:
        for row in part.patients.to_dict("records"):
            clinical = {k: v for k, v in row.items() if k not in ("patient_id", "label") and not pd.isna(v)}
            writer.add_patient(str(row["patient_id"]), str(row["label"]), **clinical)
        for row in part.series.to_dict("records"):
            pid, seq = str(row["patient_id"]), str(row["sequence"])
            writer.add_series(pid, seq, cohort.read_image(pid, seq), cohort.read_mask(pid, seq))
        reads = cohort.root / READERS_CSV if cohort.root is not None else None
        if reads is not None and reads.is_file():
            table = pd.read_csv(reads, dtype={"patient_id": str})
            write_csv(writer.tmp / READERS_CSV, table[table["patient_id"].isin(set(patient_ids))], into_cohort=True)
    return Path(out)
