"""Export a cohort as an nnU-Net v2 raw dataset, with patient-grouped cross-validation splits.

Layout written (nnU-Net v2 ``documentation/dataset_format.md``)::

    OUT/Dataset<ID:03d>_<Name>/
      dataset.json          channel_names {"0": "T1", ...}, labels {"background": 0, "tumour": 1},
                            numTraining, file_ending ".nii.gz", and "sarcomri_cases" {case: [patient_id,
                            sequence]} (nnU-Net keeps extra keys and copies dataset.json beside its
                            predictions, so ``sarcomri segment evaluate`` maps predicted cases back)
      imagesTr/<case>_0000.nii.gz, <case>_0001.nii.gz, ...   one file per input channel
      labelsTr/<case>.nii.gz                                 0 = background, 1 = tumour (uint8)
      splits_final.json     [{"train": [cases], "val": [cases]}, ...]  patient-grouped folds
      cases.csv             case, patient_id, sequence (to map predictions back to the cohort)

Two layouts of the sequences: ``channels`` (one case per patient, the sequences as co-registered channels,
the later ones resampled onto the first, whose mask is the label; case = patient id) and ``cases`` (one
single-channel case per patient and sequence, case = ``<patient>_<sequence>``, for a sequence-agnostic
model). nnU-Net's own splits are random over cases, which would put two sequences of one patient on both
sides of a fold; ``splits_final.json`` is built from patient-level folds (:func:`sarcomri.cohort.splits.kfold`)
instead: copy it to ``nnUNet_preprocessed/Dataset<ID>_<Name>/`` after ``nnUNetv2_plan_and_preprocess``.

:func:`export_run_folds` exports the cohort of a 3D segmentation run (``sarcomri segment train``, a study's
``segmentation/``) once per model of the run (``T1``, ``T1+T2FS``, ...) with ``splits_final.json`` holding
exactly the run's cross-validation folds (its ``splits.csv``: a fold's test patients are nnU-Net's ``val``), so
that nnU-Net trained on a GPU is compared with the run's networks on identical folds
(``sarcomri export nnunet --folds-from RUN``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd
import SimpleITK as sitk

from sarcomri.cohort.manifest import Cohort
from sarcomri.cohort.sequences import group_name
from sarcomri.cohort.splits import LeakageError, check_no_leakage, kfold
from sarcomri.errors import InputError, SarcomriError
from sarcomri.io import atomic

DATASET_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
FILE_ENDING = ".nii.gz"
LABELS = {"background": 0, "tumour": 1}
CASES_KEY = "sarcomri_cases"  # dataset.json: {case: [patient_id, sequence]}


@dataclass
class NnunetExport:
    """What was written: the dataset folder, its cases (case, patient_id, sequence), the folds, and the
    patients left out (no mask or a missing sequence)."""

    folder: Path
    cases: pd.DataFrame
    splits: list[dict[str, list[str]]]
    skipped: list[str]


def dataset_folder_name(dataset_id: int, name: str) -> str:
    """``Dataset<ID:03d>_<Name>``, refusing what nnU-Net cannot parse."""
    if not 1 <= int(dataset_id) <= 999:
        raise SarcomriError(f"nnU-Net dataset ids are integers from 1 to 999, got {dataset_id}")
    if not DATASET_NAME_RE.match(name):
        raise SarcomriError(f"dataset name {name!r}: use letters, digits, '_' and '-' (e.g. STST1)")
    return f"Dataset{int(dataset_id):03d}_{name}"


def _case_table(cohort: Cohort, sequences: Sequence[str], layout: str,
                case_names: str = "patient", name: str = "") -> tuple[pd.DataFrame, list[str]]:
    avail = cohort.availability()
    s = cohort.series.set_index(["patient_id", "sequence"])
    rows, skipped = [], []
    for pid in cohort.patient_ids:
        if layout == "channels":
            has_all = all(seq in avail.columns and avail.loc[pid, seq] for seq in sequences)
            if not has_all or not isinstance(s.loc[(pid, sequences[0]), "mask"], str):
                skipped.append(pid)
                continue
            rows.append({"case": pid, "patient_id": pid, "sequence": group_name(sequences)})
        else:
            kept = [seq for seq in sequences if seq in avail.columns and avail.loc[pid, seq]
                    and isinstance(s.loc[(pid, seq), "mask"], str)]
            if not kept:
                skipped.append(pid)
            rows.extend({"case": f"{pid}_{seq}", "patient_id": pid, "sequence": seq} for seq in kept)
    if case_names == "numbered":
        for i, row in enumerate(rows, start=1):
            row["case"] = f"{name}_{i:04d}"
    return pd.DataFrame(rows, columns=["case", "patient_id", "sequence"]), skipped


def patient_grouped_splits(cases: pd.DataFrame, patients: pd.DataFrame, n_folds: int = 5, seed: int = 0,
                           stratify_by: Sequence[str] = ("label",)) -> list[dict[str, list[str]]]:
    """nnU-Net folds (``[{"train": [...], "val": [...]}]``) whose validation cases are the cases of one
    patient-level fold: every case of a patient is on the same side of every fold."""
    pts = patients[patients["patient_id"].isin(set(cases["patient_id"]))]
    table = kfold(pts, n_folds=n_folds, n_repeats=1, seed=seed, val_ratio=0.0, stratify_by=stratify_by)
    check_no_leakage(table)
    out = []
    for fold in sorted(table["fold"].unique()):
        val_p = set(table[(table["fold"] == fold) & (table["role"] == "test")]["patient_id"])
        in_val = cases["patient_id"].isin(val_p)
        out.append({"train": sorted(cases.loc[~in_val, "case"]), "val": sorted(cases.loc[in_val, "case"])})
    check_splits_grouped(out, cases)
    return out


def splits_from_folds(cases: pd.DataFrame, folds: pd.DataFrame) -> list[dict[str, list[str]]]:
    """nnU-Net folds from a patient-level fold table (``patient_id, fold, role``, e.g. a run's ``splits.csv``;
    its first repeat): fold k's ``val`` is every case of the patients whose role is ``test`` in fold k, ``train``
    every other case. Raises :class:`InputError` when a case's patient is not in the table."""
    table = folds[folds["repeat"] == folds["repeat"].min()] if "repeat" in folds.columns else folds
    check_no_leakage(table)
    patients = set(table["patient_id"].astype(str))
    missing = sorted(set(cases["patient_id"].astype(str)) - patients)
    if missing:
        raise InputError(None, f"patient(s) {', '.join(missing[:3])} are in no fold of the given splits")
    out = []
    for fold in sorted(table["fold"].unique()):
        val_p = set(table.loc[(table["fold"] == fold) & (table["role"] == "test"), "patient_id"].astype(str))
        in_val = cases["patient_id"].astype(str).isin(val_p)
        out.append({"train": sorted(cases.loc[~in_val, "case"]), "val": sorted(cases.loc[in_val, "case"])})
    check_splits_grouped(out, cases)
    return out


def check_splits_grouped(splits: list[dict[str, list[str]]], cases: pd.DataFrame) -> None:
    """Raise :class:`LeakageError` unless, in every fold, no patient has cases in both train and val and
    every case is validated exactly once over the folds."""
    patient = dict(zip(cases["case"], cases["patient_id"], strict=True))
    seen_val: dict[str, int] = {}
    for k, fold in enumerate(splits):
        unknown = [c for c in fold["train"] + fold["val"] if c not in patient]
        if unknown:
            raise LeakageError(f"fold {k} names unknown cases {unknown[:3]}")
        both = {patient[c] for c in fold["train"]} & {patient[c] for c in fold["val"]}
        if both:
            raise LeakageError(f"fold {k}: patient(s) {sorted(both)[:3]} have cases in both train and val")
        for c in fold["val"]:
            seen_val[c] = seen_val.get(c, 0) + 1
    wrong = [c for c in patient if seen_val.get(c, 0) != 1]
    if wrong:
        raise LeakageError(f"case {wrong[0]} is validated {seen_val.get(wrong[0], 0)} times over the folds")


def _on_grid(image: sitk.Image, reference: sitk.Image) -> sitk.Image:
    from sarcomri.io.images import same_grid

    if same_grid(image, reference):
        out = sitk.Image(image)
        out.CopyInformation(reference)
        return out
    return sitk.Resample(image, reference, sitk.Transform(), sitk.sitkLinear, 0.0, image.GetPixelID())


def _tumour_label(mask: sitk.Image, image: sitk.Image, mask_path: Path) -> sitk.Image:
    """The nnU-Net label (1 where the mask is not 0) with its image's exact geometry; :class:`InputError` when the
    mask lies on another grid, where taking the image's geometry would move or stretch the tumour."""
    from sarcomri.io.images import grid_differences

    diffs = grid_differences(image, mask)
    if diffs:
        raise InputError(mask_path, f"not on its image's grid ({'; '.join(diffs)}, mask vs image): not exported "
                                    "(`sarcomri cohort validate` lists every such problem)")
    label = sitk.Cast(mask != 0, sitk.sitkUInt8)
    label.CopyInformation(image)  # equal within tolerance: the image's exact values, as nnU-Net requires
    return label


def export_nnunet(
    cohort: Cohort,
    out: str | Path,
    dataset_id: int,
    name: str,
    sequences: Sequence[str],
    layout: Literal["channels", "cases"] = "channels",
    case_names: Literal["patient", "numbered"] = "patient",
    n_folds: int = 5,
    seed: int = 0,
    stratify_by: Sequence[str] = ("label",),
    overwrite: bool = False,
    folds: pd.DataFrame | None = None,
    meta: dict | None = None,
) -> NnunetExport:
    """Write ``cohort`` as the nnU-Net v2 raw dataset ``OUT/Dataset<ID>_<Name>`` (see the module docstring).

    Patients without the reference mask (or, for ``channels``, without every sequence) are left out and
    listed in ``skipped``. ``folds``: a patient-level fold table to copy into ``splits_final.json``
    (:func:`splits_from_folds`) instead of making ``n_folds`` folds; ``meta``: extra dataset.json keys. The
    folder appears only when complete.
    """
    sequences = list(sequences)
    if not sequences:
        raise SarcomriError("name at least one sequence to export")
    missing = [s for s in sequences if s not in cohort.sequences]
    if missing:
        raise InputError(cohort.root, f"has no sequence {missing[0]!r} (it has {', '.join(cohort.sequences)})")
    if layout not in ("channels", "cases"):
        raise SarcomriError(f"layout must be 'channels' or 'cases', got {layout!r}")
    if case_names not in ("patient", "numbered"):
        raise SarcomriError(f"case_names must be 'patient' or 'numbered', got {case_names!r}")
    dest = Path(out) / dataset_folder_name(dataset_id, name)
    cases, skipped = _case_table(cohort, sequences, layout, case_names, name)
    if folds is not None:
        splits = splits_from_folds(cases, folds)
    elif cases["patient_id"].nunique() < n_folds:
        raise InputError(cohort.root, f"{cases['patient_id'].nunique()} patient(s) with masks: too few for "
                                      f"{n_folds} folds")
    else:
        splits = patient_grouped_splits(cases, cohort.patients, n_folds, seed, stratify_by)
    channel_names = {str(i): s for i, s in enumerate(sequences)} if layout == "channels" else {"0": "MRI"}
    with atomic.atomic_directory(dest, overwrite=overwrite, replaceable=lambda d: (d / "dataset.json").is_file(),
                                 protect=[cohort.root] if cohort.root else []) as tmp:
        (tmp / "imagesTr").mkdir()
        (tmp / "labelsTr").mkdir()
        for rec in cases.to_dict("records"):
            seqs = sequences if layout == "channels" else [rec["sequence"]]
            ref = cohort.read_image(rec["patient_id"], seqs[0])
            for c, seq in enumerate(seqs):
                img = ref if c == 0 else _on_grid(cohort.read_image(rec["patient_id"], seq), ref)
                sitk.WriteImage(img, str(tmp / "imagesTr" / f"{rec['case']}_{c:04d}{FILE_ENDING}"),
                                useCompression=True)
            mask = cohort.read_mask(rec["patient_id"], seqs[0])
            label = _tumour_label(mask, ref, cohort.path(cohort.series_row(rec["patient_id"], seqs[0])["mask"]))
            sitk.WriteImage(label, str(tmp / "labelsTr" / f"{rec['case']}{FILE_ENDING}"), useCompression=True)
        atomic.write_json(tmp / "dataset.json", {
            "channel_names": channel_names, "labels": LABELS, "numTraining": len(cases),
            "file_ending": FILE_ENDING, "name": name,
            "description": f"sarcomri export of {cohort.root}: {layout} of {group_name(sequences)}",
            CASES_KEY: {c: [p, q] for c, p, q in cases[["case", "patient_id", "sequence"]].itertuples(index=False)},
            **(meta or {}),
        })
        atomic.write_json(tmp / "splits_final.json", splits)
        atomic.write_csv(tmp / "cases.csv", cases)
    return NnunetExport(dest, cases, splits, skipped)


def read_case_map(path: str | Path) -> pd.DataFrame | None:
    """The ``case, patient_id, sequence`` table of an export, from a dataset folder, its ``dataset.json`` (also
    the copy nnU-Net writes beside its predictions) or its ``cases.csv``; None when ``path`` holds none."""
    import json

    path = Path(path)
    candidates = [path] if path.is_file() else [path / "cases.csv", path / "dataset.json"]
    for candidate in candidates:
        if not candidate.is_file():
            continue
        if candidate.suffix == ".csv":
            table = pd.read_csv(candidate, dtype=str)
            if {"case", "patient_id", "sequence"} <= set(table.columns):
                return table[["case", "patient_id", "sequence"]]
            raise InputError(candidate, "a case table needs the columns case, patient_id, sequence")
        if candidate.suffix == ".json":
            try:
                data = json.loads(candidate.read_text())
            except ValueError as exc:
                raise InputError(candidate, f"not JSON: {exc}") from None
            mapping = data.get(CASES_KEY) if isinstance(data, dict) else None
            if mapping:
                return pd.DataFrame([(c, str(p), str(q)) for c, (p, q) in mapping.items()],
                                    columns=["case", "patient_id", "sequence"])
    return None


def run_dataset_name(name: str, group: Sequence[str], several: bool) -> str:
    """The dataset name of one model of a run: ``name``, or ``<name>_<seq>-<seq>`` when the run has several."""
    return f"{name}_{'-'.join(group)}" if several else name


def export_run_folds(
    run_dir: str | Path,
    out: str | Path,
    dataset_id: int,
    name: str,
    sequences: str | None = None,
    case_names: Literal["patient", "numbered"] = "patient",
    overwrite: bool = False,
) -> list[NnunetExport]:
    """Export the cohort of the 3D segmentation run ``run_dir`` once per model of the run (or only the model
    ``sequences``, e.g. ``"T1+T2FS"``), sequences as channels, with ``splits_final.json`` holding the run's own
    folds (``splits.csv``). Datasets are numbered from ``dataset_id`` in the order of the run's ``sequences``
    and named ``<name>_<seq>-<seq>`` (just ``name`` for a single model); dataset.json records the run
    (``sarcomri_folds_from``)."""
    from sarcomri.cohort.sequences import parse_group
    from sarcomri.runs import SegmentationRun

    run = SegmentationRun(run_dir)
    cfg = run.config
    if not run.splits_path.is_file():
        raise InputError(run.path, "has no splits.csv yet: run `sarcomri segment train` (it writes the folds "
                                   "before training) and export again")
    folds = pd.read_csv(run.splits_path, dtype={"patient_id": str})
    groups = cfg.channel_groups()
    if sequences is not None:
        wanted = parse_group(sequences)
        if wanted not in groups:
            raise InputError(run.path, f"has no model {group_name(wanted)!r} (its models: "
                                       f"{', '.join(group_name(g) for g in groups)})")
        groups = [wanted]
    cohort = run.cohort()
    meta = {"sarcomri_folds_from": str(run.path)}
    return [export_nnunet(cohort, out, dataset_id + k, run_dataset_name(name, g, len(groups) > 1), list(g),
                          case_names=case_names, overwrite=overwrite, folds=folds, meta=meta)
            for k, g in enumerate(groups)]
