"""A stratified sample of a cohort's patients, written as a cohort of its own (a study's ``patients``: the smoke
scale on a user's cohort, or a pilot on part of it)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sarcomri.cohort.manifest import Cohort, CohortWriter
from sarcomri.cohort.schema import READERS_CSV
from sarcomri.cohort.splits import stratified_order
from sarcomri.errors import InputError
from sarcomri.io.atomic import write_csv


def sample_ids(patients: pd.DataFrame, n: int, seed: int = 0, stratify_by: tuple[str, ...] = ("label",)) -> list[str]:
    """``n`` patient ids keeping the strata's proportions (every class represented when ``n`` allows), in the
    cohort's order; all of them when the cohort has no more than ``n``."""
    if n >= len(patients):
        return patients["patient_id"].astype(str).tolist()
    by = tuple(c for c in stratify_by if c in patients.columns)
    frame = patients.set_index(patients["patient_id"].astype(str))
    keep = set(stratified_order(frame, seed, by)[:n]) if by else set(frame.index[:n])
    return [p for p in frame.index if p in keep]


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
