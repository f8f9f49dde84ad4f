"""What a cohort holds, as plain data: patients per label, sequence availability, geometry, mask coverage."""

from __future__ import annotations

from typing import Any

import pandas as pd

from sarcomri.cohort.manifest import Cohort
from sarcomri.cohort.sequences import group_name


def summarise(cohort: Cohort) -> dict[str, Any]:
    """A JSON-ready summary of a cohort.

    Keys: ``n_patients``; ``labels`` (patients per label); ``positive_label``; ``sequences`` (per sequence:
    patients having it, per label, with a mask, median/min/max spacing x/y/z in mm and size x/y/z in voxels);
    ``availability_patterns`` (each distinct set of available sequences with its patient count, most common
    first); ``patients_with_all_sequences``; ``ideal_observer_auc`` when the cohort is synthetic.
    """
    series = cohort.series.merge(cohort.patients[["patient_id", "label"]], on="patient_id", how="left")
    has_mask = series["mask"].apply(lambda m: isinstance(m, str) and bool(m)) if "mask" in series else False
    series = series.assign(has_mask=has_mask)
    sequences: dict[str, Any] = {}
    for seq, g in series.groupby("sequence", sort=False):
        entry: dict[str, Any] = {
            "patients": int(g["patient_id"].nunique()),
            "by_label": {str(k): int(v) for k, v in g["label"].value_counts().sort_index().items()},
            "with_mask": int(g["has_mask"].sum()),
        }
        for kind in ("spacing", "size"):
            cols = [f"{kind}_{a}" for a in "xyz" if f"{kind}_{a}" in g]
            if cols:
                entry[kind] = {
                    stat: [round(float(v), 3) for v in getattr(g[cols], stat)()]
                    for stat in ("median", "min", "max")
                }
        sequences[str(seq)] = entry
    avail = cohort.availability()
    patterns = (
        avail.apply(lambda r: group_name(c for c in avail.columns if r[c]) if r.any() else "(none)", axis=1)
        .value_counts()
        .sort_values(ascending=False, kind="stable")
    )
    out: dict[str, Any] = {
        "n_patients": len(cohort.patients),
        "labels": {str(k): int(v) for k, v in cohort.patients["label"].value_counts().sort_index().items()},
        "positive_label": cohort.positive_label,
        "sequences": sequences,
        "availability_patterns": [{"sequences": k, "patients": int(v)} for k, v in patterns.items()],
        "patients_with_all_sequences": int(avail.all(axis=1).sum()) if not avail.empty else 0,
    }
    for key in ("ideal_observer_auc", "task", "provenance", "units"):
        if key in cohort.meta:
            out[key] = cohort.meta[key]
    return out


def availability_by_label(cohort: Cohort) -> pd.DataFrame:
    """Sequences x labels: how many patients of each label have each sequence."""
    av = cohort.availability()
    labels = cohort.patients.set_index("patient_id")["label"].reindex(av.index)
    return av.groupby(labels).sum().T
