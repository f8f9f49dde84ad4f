"""A 3D segmentation study: patient-level cross-validation from config to the per-case table.

Run folder (every stage skipped when its outputs exist, so an interrupted run resumes)::

    <run>/config.yaml, versions.json
    <run>/splits.csv                         patient_id, repeat, fold, role (one table for every model)
    <run>/models/<seq>/fold<k>-rep0/         plan.json, model.pt, history.csv (checkpoint.pt while training)
    <run>/predictions/<seq>/<patient>.nii.gz out-of-fold masks on each patient's original grid
    <run>/tables/per_case.csv                case, patient_id, sequence, fold and the metrics
    <run>/tables/summary.csv, paper.csv      medians (IQR) per sequence

Each fold is planned from its own training patients (no geometry or intensity of a test patient reaches
the plan), trained with a seed derived from (seed, fold), and predicts only its test patients.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import SimpleITK as sitk

from sarcomri.classification import open_run, versions
from sarcomri.cohort.manifest import Cohort
from sarcomri.cohort.splits import check_no_leakage, kfold
from sarcomri.errors import InputError
from sarcomri.io.atomic import atomic_path, write_csv
from sarcomri.seg3d.config import Seg3DConfig
from sarcomri.seg3d.data import cohort_fingerprint, load_cases, patients_with, read_channels
from sarcomri.seg3d.evaluate import evaluate_folder, paper_table, summarise_by
from sarcomri.seg3d.infer import load_model, predict_images
from sarcomri.seg3d.plan import make_plan
from sarcomri.seg3d.train import CHECKPOINT, fit, is_model_folder, save_model

Progress = Callable[[dict[str, Any]], None]


def study_splits(cfg: Seg3DConfig, cohort: Cohort, run_dir: Path) -> pd.DataFrame:
    """Patient-level folds over every patient that any model can train on; read back when already written."""
    path = run_dir / "splits.csv"
    if path.is_file():
        table = pd.read_csv(path, dtype={"patient_id": str})
    else:
        eligible = set().union(*(patients_with(cohort, g) for g in cfg.channel_groups()))
        if len(eligible) < cfg.folds:
            raise InputError(cohort.root, f"{len(eligible)} patient(s) have the sequences and masks of "
                                          f"{cfg.sequences}: too few for {cfg.folds} folds")
        patients = cohort.patients[cohort.patients["patient_id"].isin(eligible)]
        table = kfold(patients, n_folds=cfg.folds, n_repeats=1, seed=cfg.seed, val_ratio=0.0,
                      stratify_by=cfg.stratify_by)
        write_csv(path, table)
    check_no_leakage(table)
    return table


def fold_seed(seed: int, fold: int) -> int:
    """The training seed of one fold."""
    return int(np.random.SeedSequence([seed, fold, 0x5E9]).generate_state(1)[0] % 2**31)


def train_fold(cfg: Seg3DConfig, cohort: Cohort, group: tuple[str, ...], train_ids: list[str], model_dir: Path,
               fold: int, progress: Progress | None = None) -> None:
    """Plan from the training patients, train (resuming from a checkpoint), save the model folder."""
    fp = cohort_fingerprint(cohort, train_ids, group, seed=cfg.seed)
    plan = make_plan(fp, list(group), cfg.plan_settings())
    cases = load_cases(cohort, train_ids, plan)
    settings = cfg.train.model_copy(update={"seed": fold_seed(cfg.train.seed, fold)})
    total = settings.epochs * settings.iterations
    if progress:
        progress({"event": "fold_start", "model": "+".join(group), "fold": fold, "steps": total, "plan": plan})
    result = fit(cases, plan, settings, cfg.data, checkpoint_dir=model_dir,
                 progress=(lambda e: progress({"event": "step", **e})) if progress else None)
    save_model(model_dir, result.network, plan, result.history,
               meta={"fold": fold, "seed": settings.seed, "train_patients": list(train_ids),
                     "config": cfg.model_dump(mode="json"), "versions": versions()})
    (model_dir / CHECKPOINT).unlink(missing_ok=True)


def predict_fold(cfg: Seg3DConfig, cohort: Cohort, group: tuple[str, ...], test_ids: list[str], model_dir: Path,
                 pred_dir: Path, progress: Progress | None = None) -> None:
    """Write the out-of-fold masks of ``test_ids`` (skipping those already written)."""
    todo = [p for p in test_ids if not (pred_dir / f"{p}.nii.gz").is_file()]
    if not todo:
        return
    model = load_model(model_dir)
    for pid in todo:
        images, _ = read_channels(cohort, pid, group)
        mask, _ = predict_images([model], images, cfg.infer, case_id=pid)
        with atomic_path(pred_dir / f"{pid}.nii.gz") as tmp:
            sitk.WriteImage(mask, str(tmp), useCompression=True)
        if progress:
            progress({"event": "predicted", "patient_id": pid})


def run_crossval(cfg: Seg3DConfig, run_dir: str | Path, progress: Progress | None = None) -> pd.DataFrame:
    """Train and predict every (sequence set, fold), then evaluate; returns the per-case table."""
    run_dir = open_run(cfg, run_dir)
    cohort = Cohort.load(cfg.cohort)
    splits = study_splits(cfg, cohort, run_dir)
    tables = []
    for group in cfg.channel_groups():
        name = "+".join(group)
        eligible = set(patients_with(cohort, group))
        pred_dir = run_dir / "predictions" / name
        pred_dir.mkdir(parents=True, exist_ok=True)
        fold_of = {}
        for fold in sorted(splits["fold"].unique()):
            sub = splits[splits["fold"] == fold]
            train_ids = sorted(set(sub.loc[sub["role"] != "test", "patient_id"]) & eligible)
            test_ids = sorted(set(sub.loc[sub["role"] == "test", "patient_id"]) & eligible)
            fold_of.update(dict.fromkeys(test_ids, int(fold)))
            model_dir = run_dir / "models" / name / f"fold{fold}-rep0"
            if not is_model_folder(model_dir):
                train_fold(cfg, cohort, group, train_ids, model_dir, int(fold), progress)
            predict_fold(cfg, cohort, group, test_ids, model_dir, pred_dir, progress)
        table = evaluate_folder(pred_dir, cohort, name)
        table.insert(3, "fold", table["patient_id"].map(fold_of).astype(int))
        tables.append(table)
    per_case = pd.concat(tables, ignore_index=True)
    write_csv(run_dir / "tables" / "per_case.csv", per_case)
    write_csv(run_dir / "tables" / "summary.csv", summarise_by(per_case, ["sequence"]))
    write_csv(run_dir / "tables" / "paper.csv", paper_table(per_case))
    return per_case

