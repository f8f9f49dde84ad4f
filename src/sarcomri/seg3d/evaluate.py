"""Evaluation of predicted tumour masks against a cohort's reference masks: a per-case table and summaries.

The metrics are :func:`sarcomri.stats.segmentation.segmentation_metrics` (Dice, IoU, F2, sensitivity,
precision, HD95, ASSD, HD in mm, with its empty-mask policy) and the summaries
:func:`sarcomri.stats.segmentation.summarise_segmentation` (medians and IQRs; distances over cases where
both masks are non-empty). A prediction folder holds ``<case>.nii.gz`` files whose case identifier is the
patient id (as written by ``sarcomri segment train/predict``), ``<patient>_<sequence>``, or any case name of
a dataset exported with :func:`sarcomri.io.nnunet.export_nnunet` (e.g. ``STS_0001``): the export's
``cases.csv`` or ``dataset.json`` maps it back to its patient and sequence, given explicitly or found in the
prediction folder (``nnUNetv2_predict`` copies dataset.json there). The tumour is every non-zero voxel of
either mask.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

from sarcomri.cohort.manifest import Cohort
from sarcomri.cohort.sequences import parse_group
from sarcomri.errors import InputError
from sarcomri.io.images import same_grid
from sarcomri.io.niftifile import read_image
from sarcomri.stats.segmentation import METRIC_KEYS, segmentation_metrics, summarise_segmentation

NIFTI_ENDINGS = (".nii.gz", ".nii")
CASE_COLUMNS = ["case", "patient_id", "sequence"]
#: The paper's columns: medians (IQR) of Dice, F2, ASSD and HD95 per sequence.
PAPER_METRICS = (("dice", "Dice"), ("f2", "F2"), ("assd_mm", "ASSD (mm)"), ("hd95_mm", "HD95 (mm)"))


def case_metrics(pred: sitk.Image, ref: sitk.Image, what: str = "prediction") -> dict:
    """Metrics of one predicted mask against its reference (both non-zero = tumour), on the same grid."""
    if not same_grid(pred, ref):
        raise InputError(what, f"not on the grid of its reference mask (size {pred.GetSize()} vs {ref.GetSize()}, "
                               f"spacing {tuple(round(s, 4) for s in pred.GetSpacing())} vs "
                               f"{tuple(round(s, 4) for s in ref.GetSpacing())}); predict on the original images")
    p = sitk.GetArrayViewFromImage(pred) != 0
    r = sitk.GetArrayViewFromImage(ref) != 0
    return segmentation_metrics(p, r, ref.GetSpacing()[::-1])


def prediction_files(pred_dir: str | Path) -> dict[str, Path]:
    """``{case: path}`` of the NIfTI files in a folder (nnU-Net's extra files are ignored)."""
    pred_dir = Path(pred_dir)
    if not pred_dir.is_dir():
        raise InputError(pred_dir, "not a folder of predicted masks")
    out = {}
    for path in sorted(pred_dir.iterdir()):
        for ending in NIFTI_ENDINGS:
            if path.is_file() and path.name.endswith(ending) and not path.name.startswith("."):
                out[path.name[: -len(ending)]] = path
                break
    if not out:
        raise InputError(pred_dir, "holds no predicted masks (<case>.nii.gz)")
    return out


def reference_sequence(cohort: Cohort, sequence: str | None) -> str:
    """The sequence whose masks are the reference: the one given (first of ``'A+B'``), or the cohort's only
    sequence with masks."""
    if sequence:
        first = parse_group(sequence)[0]
        if first not in cohort.sequences:
            raise InputError(cohort.root, f"has no sequence {first!r} (it has {', '.join(cohort.sequences)})")
        return first
    with_masks = cohort.series.dropna(subset=["mask"])["sequence"].unique().tolist()
    if len(with_masks) != 1:
        raise InputError(cohort.root, f"masks exist for {with_masks or 'no sequence'}: name the reference "
                                      "sequence (--sequence)")
    return with_masks[0]


def parse_case(case: str, cohort: Cohort) -> tuple[str, str | None]:
    """``(patient_id, sequence)`` of a case identifier: a patient id, or ``<patient>_<sequence>`` (nnU-Net
    export with one case per sequence); the sequence is None for a bare patient id."""
    if case in set(cohort.patient_ids):
        return case, None
    for seq in sorted(cohort.sequences, key=len, reverse=True):
        pid = case[: -len(seq) - 1]
        if case.endswith(f"_{seq}") and pid in set(cohort.patient_ids):
            return pid, seq
    raise KeyError(case)


def case_map(pred_dir: str | Path, cases: pd.DataFrame | str | Path | None = None) -> dict[str, tuple[str, str]]:
    """``{case: (patient_id, sequence)}`` from ``cases`` (a table, an nnU-Net export folder, its cases.csv or
    dataset.json), else from a dataset.json or cases.csv in ``pred_dir``; empty when there is none."""
    from sarcomri.io.nnunet import read_case_map

    if cases is None:
        table = read_case_map(pred_dir)
    elif isinstance(cases, pd.DataFrame):
        table = cases
    else:
        table = read_case_map(cases)
        if table is None:
            raise InputError(cases, "holds no case table (an nnU-Net export folder, its cases.csv or dataset.json)")
    if table is None:
        return {}
    return {str(c): (str(p), str(q)) for c, p, q in table[["case", "patient_id", "sequence"]].itertuples(index=False)}


def evaluate_folder(pred_dir: str | Path, cohort: Cohort, sequence: str | None = None,
                    cases: pd.DataFrame | str | Path | None = None) -> pd.DataFrame:
    """The per-case table of a folder of predicted masks: ``case, patient_id, sequence`` and the metrics.

    Files are ``<patient_id>.nii.gz`` (reference: the masks of ``sequence``, the first of ``'T1+T2'`` for a
    two-channel model, by default the cohort's only sequence with masks), ``<patient_id>_<sequence>.nii.gz``
    (reference: that sequence's mask), or cases of an nnU-Net export mapped by ``cases`` (see :func:`case_map`;
    reference: the first sequence of the case).
    """
    files = prediction_files(pred_dir)
    mapping = case_map(pred_dir, cases)
    patients = set(cohort.patient_ids)
    rows = []
    for case, path in files.items():
        if case in mapping:
            pid, case_seq = mapping[case]
            if pid not in patients:
                raise InputError(path, f"case {case!r} is patient {pid}, who is not in the cohort {cohort.root}")
            ref_seq, label = parse_group(case_seq)[0], case_seq
            ref = cohort.read_mask(pid, ref_seq) if _has_series(cohort, pid, ref_seq) else None
            if ref is None:
                raise InputError(path, f"patient {pid} has no {ref_seq} mask to compare with")
            rows.append({"case": case, "patient_id": pid, "sequence": label,
                         **case_metrics(read_image(path), ref, str(path))})
            continue
        try:
            pid, case_seq = parse_case(case, cohort)
        except KeyError:
            hint = " (an nnU-Net case name? give the exported dataset folder: --dataset)" if mapping == {} else ""
            raise InputError(path, f"case {case!r} is not a patient of the cohort {cohort.root} (files must be "
                                   f"named <patient_id>.nii.gz or <patient_id>_<sequence>.nii.gz){hint}") from None
        if case_seq is None:
            ref_seq = reference_sequence(cohort, sequence)
            label = sequence or ref_seq
        else:
            ref_seq = label = case_seq
        ref = cohort.read_mask(pid, ref_seq) if _has_series(cohort, pid, ref_seq) else None
        if ref is None:
            raise InputError(path, f"patient {pid} has no {ref_seq} mask to compare with")
        rows.append({"case": case, "patient_id": pid, "sequence": label,
                     **case_metrics(read_image(path), ref, str(path))})
    return pd.DataFrame(rows, columns=CASE_COLUMNS + list(METRIC_KEYS))


def _has_series(cohort: Cohort, patient_id: str, sequence: str) -> bool:
    try:
        cohort.series_row(patient_id, sequence)
    except KeyError:
        return False
    return True


def summarise_by(table: pd.DataFrame, by: Sequence[str] = (), patients: pd.DataFrame | None = None,
                 metrics: Sequence[str] | None = None) -> pd.DataFrame:
    """Medians, IQRs, means and counts per metric, per group of ``by`` (columns of the table or of
    ``patients``, e.g. site, histology, center, sequence); one row per (group, metric)."""
    by = list(by)
    data = table
    if patients is not None:
        extra = [c for c in patients.columns if c not in table.columns or c == "patient_id"]
        data = table.merge(patients[extra], on="patient_id", how="left")
    missing = [c for c in by if c not in data.columns]
    if missing:
        raise InputError(None, f"cannot stratify by {missing}: not a column of the per-case table or patients.csv")
    groups = data.groupby(by, dropna=False, sort=True) if by else [((), data)]
    frames = []
    for key, sub in groups:
        summary = summarise_segmentation(sub, metrics).reset_index()
        key = key if isinstance(key, tuple) else (key,)
        for col, value in zip(by, key, strict=True):
            summary.insert(by.index(col), col, value)
        frames.append(summary)
    return pd.concat(frames, ignore_index=True)


def paper_table(table: pd.DataFrame, by: str = "sequence", digits: int = 2) -> pd.DataFrame:
    """The published format: per ``by`` value, the number of cases and the median (IQR) of Dice, F2,
    ASSD and HD95 (distances over cases with both masks non-empty)."""
    summary = summarise_by(table, [by], metrics=[m for m, _ in PAPER_METRICS])
    rows = []
    for value, sub in summary.groupby(by, sort=False):
        s = sub.set_index("metric")
        row = {by: value, "n": int(s["n_cases"].iloc[0])}
        for metric, title in PAPER_METRICS:
            med, q1, q3 = s.loc[metric, ["median", "q1", "q3"]]
            row[title] = _fmt(med, q1, q3, digits)
        rows.append(row)
    return pd.DataFrame(rows)


def _fmt(med: float, q1: float, q3: float, digits: int) -> str:
    if not np.isfinite(med):
        return "n/a"
    return f"{med:.{digits}f} ({q1:.{digits}f}-{q3:.{digits}f})"


#: The soft-tissue sarcoma study's subgroups (columns of patients.csv) reported beside the overall table.
PAPER_STRATA = ("site", "histology")
#: File stems of the paper tables (the run's ``paper/`` folder): overall, by site, by histology.
PAPER_TABLE_NAMES = {None: "segmentation_overall", "site": "segmentation_by_site",
                     "histology": "segmentation_by_histology"}


def paper_numbers(table: pd.DataFrame, stratum: str | None = None, patients: pd.DataFrame | None = None
                  ) -> pd.DataFrame:
    """The published layout with raw numbers: per model (``sequence``, e.g. ``T1+T2FS``) and, with ``stratum``,
    per value of that patients.csv column (site, histology), the number of cases ``n``, the cases with both masks
    non-empty ``n_distance`` (over which ASSD and HD95 are taken), and ``<metric>_median``, ``_q1``, ``_q3`` of
    Dice, F2, ASSD (mm) and HD95 (mm). Models keep their order of first appearance; strata are sorted."""
    by = ["sequence"] + ([stratum] if stratum else [])
    summary = summarise_by(table, by, patients, metrics=[m for m, _ in PAPER_METRICS])
    order = {name: k for k, name in enumerate(dict.fromkeys(table["sequence"]))}
    rows = []
    for key, sub in summary.groupby(by, sort=False, dropna=False):
        s = sub.set_index("metric")
        row = dict(zip(by, key if isinstance(key, tuple) else (key,), strict=True))
        row["n"] = int(s["n_cases"].iloc[0])
        row["n_distance"] = int(s.loc["hd95_mm", "n"])
        for metric, _title in PAPER_METRICS:
            for stat in ("median", "q1", "q3"):
                row[f"{metric}_{stat}"] = float(s.loc[metric, stat])
        rows.append(row)
    out = pd.DataFrame(rows)
    out = out.sort_values(by, key=lambda c: c.map(order) if c.name == "sequence" else c.astype(str), kind="stable")
    return out.rename(columns={"sequence": "model"}).reset_index(drop=True)


def paper_layouts(table: pd.DataFrame, patients: pd.DataFrame | None = None) -> dict[str | None, pd.DataFrame]:
    """:func:`paper_numbers` overall (key None) and by every :data:`PAPER_STRATA` column ``patients`` has."""
    out: dict[str | None, pd.DataFrame] = {None: paper_numbers(table)}
    for col in PAPER_STRATA:
        if patients is not None and col in patients.columns:
            out[col] = paper_numbers(table, col, patients)
    return out


def format_paper(numbers: pd.DataFrame, digits: int = 2) -> pd.DataFrame:
    """:func:`paper_numbers` as printed: ``median (Q1-Q3)`` per metric under its title (Dice, F2, ASSD (mm),
    HD95 (mm)), the grouping columns and ``n`` kept."""
    keep = [c for c in numbers.columns if not any(c.startswith(f"{m}_") for m, _ in PAPER_METRICS)]
    out = numbers[keep].drop(columns=["n_distance"], errors="ignore").copy()
    for metric, title in PAPER_METRICS:
        out[title] = [_fmt(m, a, b, digits) for m, a, b in
                      numbers[[f"{metric}_median", f"{metric}_q1", f"{metric}_q3"]].itertuples(index=False)]
    return out
