"""Misdiagnoses: the false positives and false negatives at the study's threshold with their clinical
attributes (degeneration, margin, size, histology), as the sarcoma study analysed them; tumour size from the
mask and from three diameters.

Tumour volume from a mask is the voxel count times the voxel volume. From three orthogonal diameters
``d1, d2, d3`` the tumour is taken as an ellipsoid with half-axes ``a = d1/2, b = d2/2, c = d3/2`` and
volume ``4/3 pi a b c`` (the sarcoma paper prints 3/4, a misprint: 4/3 gives a sphere's 4/3 pi r^3).
The three diameters of a mask are its largest extents along the image axes (in mm).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from sarcomri.report.columns import words
from sarcomri.report.layout import Section, Table, pretty
from sarcomri.report.sources import RunInputs
from sarcomri.report.tables import WHOLE_STUDY, model_reads

#: Clinical columns the sarcoma study looked at among its misdiagnoses (those present are used).
ATTRIBUTES = ("histology", "degenerated", "irregular_margin", "site", "grade", "exophytic", "stage", "center",
              "diameter_mm")
MM3_PER_CM3 = 1000.0


def ellipsoid_volume(a: float, b: float, c: float) -> float:
    """Volume of an ellipsoid with half-axes a, b, c: 4/3 pi a b c (same unit cubed)."""
    return 4.0 / 3.0 * math.pi * a * b * c


def ellipsoid_volume_cm3(d1_mm: float, d2_mm: float, d3_mm: float) -> float:
    """Tumour volume (cm^3) from three orthogonal diameters in mm: the ellipsoid with half-axes d/2."""
    return ellipsoid_volume(d1_mm / 2, d2_mm / 2, d3_mm / 2) / MM3_PER_CM3


def mask_volume_cm3(mask: np.ndarray, spacing_mm: Sequence[float]) -> float:
    """Volume (cm^3) of the non-zero voxels of ``mask``: count x product of the voxel spacing (mm)."""
    return float(np.count_nonzero(mask)) * float(np.prod(spacing_mm)) / MM3_PER_CM3


def mask_diameters_mm(mask: np.ndarray, spacing_mm: Sequence[float]) -> tuple[float, ...]:
    """The mask's extent along each array axis in mm (voxels spanned x spacing); zeros for an empty mask."""
    mask = np.asarray(mask) != 0
    if not mask.any():
        return tuple(0.0 for _ in range(mask.ndim))
    out = []
    for axis, step in enumerate(spacing_mm):
        other = tuple(i for i in range(mask.ndim) if i != axis)
        hit = np.flatnonzero(mask.any(axis=other))
        out.append(float((hit[-1] - hit[0] + 1) * step))
    return tuple(out)


def tumour_sizes(cohort, patient_ids: Sequence[str], sequences: Sequence[str] = ()) -> pd.DataFrame:
    """Per patient, from the first of ``sequences`` (else any series) with a mask: sequence, mask volume,
    the three extents and their ellipsoid volume. Patients without a readable mask are left out."""
    import SimpleITK as sitk

    from sarcomri.io.niftifile import read_image

    if cohort is None or cohort.root is None:
        return pd.DataFrame()
    series = cohort.series.dropna(subset=["mask"]) if "mask" in cohort.series.columns else cohort.series.head(0)
    rank = {s: i for i, s in enumerate(sequences)}
    rows = []
    for pid in patient_ids:
        mine = series[series["patient_id"] == pid]
        if mine.empty:
            continue
        row = mine.iloc[int(np.argmin([rank.get(s, len(rank)) for s in mine["sequence"]]))]
        path = cohort.path(row["mask"])
        if not path.is_file():
            continue
        image = read_image(path)
        mask = sitk.GetArrayViewFromImage(image)
        spacing = image.GetSpacing()[::-1]  # (z, y, x) like the array
        d = mask_diameters_mm(mask, spacing)
        rows.append({"patient_id": pid, "mask_sequence": row["sequence"],
                     "volume_mask_cm3": mask_volume_cm3(mask, spacing),
                     "diameters_mm": " x ".join(f"{v:.0f}" for v in sorted(d, reverse=True)),
                     "volume_ellipsoid_cm3": ellipsoid_volume_cm3(*d) if len(d) == 3 else np.nan})
    return pd.DataFrame(rows)


def decisions(inputs: RunInputs) -> tuple[pd.DataFrame, str]:
    """The study's final call per patient and where it comes from: the summed score at its threshold, or
    (without one) the first sequence's likelihood at the cut-off. Columns: patient_id, truth, call, score."""
    reads = model_reads(inputs)
    if reads.empty:
        return reads, ""
    if (reads["sequence"] == WHOLE_STUDY).any():
        source = "the summed score of the sequence votes at the study's threshold"
        part = reads[reads["sequence"] == WHOLE_STUDY]
    else:
        seq = inputs.sequences[0]
        source = f"the {seq} likelihood at {inputs.cutoff():g}"
        part = reads[reads["sequence"] == seq]
    out = part.rename(columns={"case": "patient_id", "decision": "call"})[["patient_id", "truth", "call", "score"]]
    return out.reset_index(drop=True), source


def outcome_table(calls: pd.DataFrame, positive: str) -> pd.DataFrame:
    """``calls`` with ``outcome``: TP, FN (missed), FP (over-called) or TN."""
    pos_truth, pos_call = calls["truth"] == positive, calls["call"] == positive
    outcome = np.select([pos_truth & pos_call, pos_truth & ~pos_call, ~pos_truth & pos_call],
                        ["TP", "FN", "FP"], "TN")
    return calls.assign(outcome=outcome)


def attribute_counts(table: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Counts of each categorical attribute value per outcome (rows: attribute = value; columns: outcomes)."""
    rows = []
    for col in columns:
        if col not in table.columns or pd.api.types.is_float_dtype(table[col]):
            continue
        counts = pd.crosstab(table[col].fillna("n/a").astype(str), table["outcome"])
        for value, row in counts.iterrows():
            rows.append({"attribute": col, "value": value,
                         **{o: int(row.get(o, 0)) for o in ("FP", "TN", "FN", "TP")}})
    return pd.DataFrame(rows)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def misdiagnosis_section(inputs: RunInputs) -> Section | None:
    """False positives and false negatives with their clinical attributes and tumour sizes."""
    calls, source = decisions(inputs)
    if calls.empty:
        return None
    pos, neg = inputs.class_names
    table = outcome_table(calls, pos)
    if inputs.cohort is not None:
        clinical = inputs.cohort.patients.drop(columns=["label"], errors="ignore")
        keep = ["patient_id"] + [c for c in ATTRIBUTES if c in clinical.columns]
        table = table.merge(clinical[keep], on="patient_id", how="left")
        sizes = tumour_sizes(inputs.cohort, table["patient_id"].tolist(), inputs.sequences)
        if not sizes.empty:
            table = table.merge(sizes, on="patient_id", how="left")
    wrong = table[table["outcome"].isin(["FP", "FN"])].sort_values(["outcome", "patient_id"])
    counts = attribute_counts(table, [c for c in ATTRIBUTES if c != "diameter_mm"])
    n_fp, n_fn = int((table["outcome"] == "FP").sum()), int((table["outcome"] == "FN").sum())
    title = f"Misdiagnosed patients ({_count(n_fp, 'false positive')}, {_count(n_fn, 'false negative')})"
    tables = [Table(title, wrong, pretty(wrong, 1))]
    if not counts.empty:
        shown = pretty(counts).assign(value=[words(str(v)) for v in counts["value"]])
        tables.append(Table("Clinical attributes by outcome (patients)", counts, shown,
                            note=f"FP: {neg} called {pos}; FN: {pos} called {neg}."))
    size_cols = [c for c in ("volume_mask_cm3", "volume_ellipsoid_cm3", "diameter_mm") if c in table.columns]
    if size_cols:
        sizes = table.groupby("outcome")[size_cols].median().reindex(["FP", "TN", "FN", "TP"]).dropna(how="all")
        sizes = sizes.reset_index().rename(columns={c: f"median {c}" for c in size_cols})
        tables.append(Table("Tumour size by outcome (medians)", sizes, pretty(sizes, 1),
                            note="Mask volume = voxels x voxel volume; ellipsoid volume = 4/3 pi a b c from the mask's "
                                 "three extents (half-axes a, b, c)."))
    return Section(id="misdiagnoses", title="Misdiagnoses",
                   intro=f"Patients the model got wrong, at {source}, with their clinical attributes.",
                   tables=tables, data={"table": table, "source": source})
