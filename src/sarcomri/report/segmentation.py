"""The segmentation section: per-case table, medians by sequence, site and histology, mask overlays of
representative cases, and the figures other stages left in the run folder (learning curves).

A segmentation run folder (``sarcomri segment train``, :mod:`sarcomri.seg3d.crossval`) holds::

    config.yaml                              its ``cohort`` folder
    tables/per_case.csv                      case, patient_id, sequence, fold, dice, ... (the metrics)
    tables/paper.csv                         medians (IQR) per sequence (recomputed when absent)
    predictions/<sequence>/<case>.nii.gz     out-of-fold masks on the patients' own grids
    figures/*.png                            e.g. learning curves (caption: a <stem>.txt beside it, else the name)
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from sarcomri.cohort.manifest import Cohort
from sarcomri.cohort.sequences import parse_group
from sarcomri.io.niftifile import read_image
from sarcomri.report.figures import overlay_figure, save_png
from sarcomri.report.layout import Figure, Section, Table, pretty
from sarcomri.report.sources import read_tables
from sarcomri.runs import SegmentationRun, TransferRun
from sarcomri.seg3d.evaluate import paper_table, parse_case

STRATA = ("site", "histology")
#: Per-case columns left out of the printed table (voxel counts; they stay in tables/per_case.csv).
PER_CASE_HIDDEN = ("tp", "fp", "fn", "pred_voxels", "ref_voxels", "both_empty")
SEG3D_COLUMNS = {"case", "patient_id", "sequence", "dice", "empty_pred", "empty_ref"}


def found_figures(folder: Path, figures_dir: Path, rel: str, prefix: str) -> list[Figure]:
    """Copy ``folder/*.png`` into the report's figures (as ``<prefix>_<name>``) with their captions."""
    out = []
    if not folder.is_dir():
        return out
    for png in sorted(folder.glob("*.png")):
        if png.name.startswith("."):
            continue
        caption_file = png.with_suffix(".txt")
        caption = caption_file.read_text().strip() if caption_file.is_file() else png.stem.replace("_", " ")
        name = f"{prefix}_{png.name}"
        shutil.copyfile(png, figures_dir / name)
        out.append(Figure(f"{rel}/{name}", caption))
    return out


def per_case_shown(per_case: pd.DataFrame) -> pd.DataFrame:
    """The per-case table as printed: without :data:`PER_CASE_HIDDEN`, and without the patient column when every
    case is its patient."""
    hidden = [c for c in PER_CASE_HIDDEN if c in per_case.columns]
    if {"case", "patient_id"} <= set(per_case.columns) and (per_case["case"] == per_case["patient_id"]).all():
        hidden.append("patient_id")
    return per_case.drop(columns=hidden)


def representative(per_case: pd.DataFrame) -> pd.DataFrame:
    """Per sequence, the cases of highest, median and lowest Dice (fewer when there are fewer cases)."""
    picks = []
    for _, g in per_case.dropna(subset=["dice"]).groupby("sequence", sort=False):
        g = g.sort_values("dice", ascending=False, kind="stable").reset_index(drop=True)
        idx = sorted({0, len(g) // 2, len(g) - 1})
        labels = {0: "best", len(g) // 2: "median", len(g) - 1: "worst"}
        picks.append(g.iloc[idx].assign(which=[labels[i] for i in idx]))
    return pd.concat(picks, ignore_index=True) if picks else per_case.head(0)


def _pred_path(seg_dir: Path, sequence: str, case: str) -> Path | None:
    for ending in (".nii.gz", ".nii"):
        path = SegmentationRun(seg_dir).predictions_dir(sequence) / f"{case}{ending}"
        if path.is_file():
            return path
    return None


def overlay_panels(seg_dir: Path, cohort: Cohort, cases: pd.DataFrame) -> list[dict]:
    """One panel per case: the slice with the largest reference area, reference and prediction outlines."""
    import SimpleITK as sitk

    panels = []
    for r in cases.itertuples():
        pred_path = _pred_path(seg_dir, r.sequence, r.case)
        if pred_path is None:
            continue
        pid, case_seq = parse_case(r.case, cohort)
        seq = case_seq or parse_group(str(r.sequence))[0]
        try:
            image, ref = cohort.read_image(pid, seq), cohort.read_mask(pid, seq)
        except KeyError:  # the patient lacks the sequence; a damaged file raises InputError
            continue
        if ref is None:
            continue
        img = sitk.GetArrayFromImage(image)
        if img.ndim == 4:  # a vector image: first component
            img = img[..., 0]
        ref_a = sitk.GetArrayFromImage(ref) != 0
        pred_a = sitk.GetArrayFromImage(read_image(pred_path)) != 0
        if img.shape != ref_a.shape or ref_a.shape != pred_a.shape:
            continue
        area = ref_a.sum(axis=(1, 2)) + (0 if ref_a.any() else pred_a.sum(axis=(1, 2)))
        z = int(np.argmax(area))
        sx, sy = image.GetSpacing()[:2]
        panels.append({"image": img[z], "reference": ref_a[z], "prediction": pred_a[z], "aspect": sy / sx,
                       "title": f"{pid} {seq} ({r.which})\nDice {r.dice:.2f}, slice {z + 1}/{img.shape[0]}"})
    return panels


def segmentation_section(seg_dirs: Sequence[str | Path], figures_dir: Path, rel: str = "figures",
                         cohort: Cohort | None = None) -> Section | None:
    """The section for one or more segmentation run folders (None when none has a per-case table): per model
    (sequence or combination) the median (IQR) of Dice, F2, ASSD and HD95 overall, then by site and by histology
    (patients.csv columns, when the cohort has them), the per-case table and overlays."""
    from sarcomri.seg3d.evaluate import format_paper, paper_numbers

    tables, figures, data = [], [], {}
    many = len(seg_dirs) > 1
    for k, seg_dir in enumerate(map(Path, seg_dirs)):
        name = seg_dir.name if many else ""
        prefix = f"seg{k}"
        seg_run = SegmentationRun(seg_dir)
        found = read_tables(seg_run.tables_dir)
        per_case = found.get("per_case")
        if per_case is not None and not per_case.empty and SEG3D_COLUMNS <= set(per_case.columns):
            seg_cohort = seg_run.find_cohort(cohort)
            data[str(seg_dir)] = per_case
            tag = f" ({name})" if name else ""
            paper = found.get("paper")
            if paper is None:
                paper = paper_table(per_case)
            tables.append(Table(f"Segmentation per sequence{tag}: median (IQR)", paper, pretty(paper)))
            patients = seg_cohort.patients if seg_cohort is not None else None
            for col in STRATA:
                if patients is None or col not in patients.columns:
                    continue
                by_col = format_paper(paper_numbers(per_case, col, patients))
                tables.append(Table(f"Segmentation per sequence by {col}{tag}: median (IQR)", by_col,
                                    pretty(by_col)))
            shown = pretty(per_case_shown(per_case), digits_by={"pred_volume_mm3": 0, "ref_volume_mm3": 0})
            tables.append(Table(f"Per case{tag}", per_case, shown, collapsed=True,
                                note="Voxel counts are in the run's tables/per_case.csv."))
            if seg_cohort is not None and "dice" in per_case.columns:
                panels = overlay_panels(seg_dir, seg_cohort, representative(per_case))
                if panels:
                    fname = f"{prefix}_overlays.png"
                    save_png(overlay_figure(panels), figures_dir / fname)
                    figures.append(Figure(f"{rel}/{fname}", f"Representative cases{tag}: reference mask in blue, "
                                                            "prediction in orange, on the slice of largest tumour "
                                                            "area."))
        figures += found_figures(seg_run.figures_dir, figures_dir, rel, prefix)
    if not tables and not figures:
        return None
    return Section(id="segmentation", title="Segmentation", tables=tables, figures=figures, data=data,
                   intro="Overlap and surface distances of the predicted tumour masks against the reference "
                         "(Dice, F2, ASSD and HD95 in mm; distances over cases where both masks are non-empty).")


def transfer_section(transfer_dir: str | Path, figures_dir: Path, rel: str = "figures") -> Section | None:
    """The transfer-learning study (:mod:`sarcomri.seg2d.transfer`): its paper table, the ANOVA across models,
    the k-fold stability (when cross-validated), the ADC feature reliability and its figures (the learning
    curve). The paper-format tables of ``paper/`` are the "As published" section's."""
    run = TransferRun(transfer_dir)
    found = read_tables(run.tables_dir)
    tables = []
    for name, title in (("paper", "Dice (mean / median) by model, target training size and test set"),
                        ("anova", "ANOVA across models"), ("tukey", "Tukey's pairwise comparisons"),
                        ("cv_stability", "k-fold stability: validation Dice of the folds, the best fold kept"),
                        ("reliability", "ICC of first-order features, manual vs automatic masks")):
        t = found.get(name)
        if t is not None and not t.empty:
            tables.append(Table(title, t, pretty(t, p_columns=[c for c in ("p", "p_adj") if c in t.columns]),
                                collapsed=name in ("tukey", "reliability")))
    figures = found_figures(run.figures_dir, figures_dir, rel, "transfer")
    for f in figures:
        f.wide = f.name.endswith("learning_curve")  # one panel per test set: the page's full width
    if not tables and not figures:
        return None
    return Section(id="transfer", title="Transfer learning", tables=tables, figures=figures,
                   intro="Segmentation models trained on the target cancer alone, transferred from the source cancer "
                         "with frozen layers, or trained on both, by the number of target training patients.")
