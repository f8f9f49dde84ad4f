"""A 3D segmentation study: patient-level cross-validation from config to the per-case table.

Run folder (every stage skipped when its outputs exist, so an interrupted run resumes)::

    <run>/config.yaml, versions.json, inputs.json (each artifact's key: :mod:`sarcomri.runrecord`)
    <run>/splits.csv                         patient_id, repeat, fold, role (one table for every model)
    <run>/models/<seq>/fold<k>-rep0/         model.json, weights.pt, plan.json, history.csv (checkpoint.pt while
                                             training), timing.json (wall and CPU seconds of training and
                                             prediction); before sarcomri's one model format, model.pt
    <run>/predictions/<seq>/<patient>.nii.gz out-of-fold masks on each patient's original grid
    <run>/tables/per_case.csv                case, patient_id, sequence, fold and the metrics
    <run>/tables/summary.csv, paper.csv      medians (IQR) per sequence
    <run>/tables/per_fold.csv                mean and median Dice and HD95 per (sequence, fold)
    <run>/tables/timing.csv                  timing.json of every fold
    <run>/paper/segmentation_overall.csv     the soft-tissue sarcoma study's layout (raw numbers): n and median,
    <run>/paper/segmentation_by_site.csv     Q1, Q3 of Dice, F2, ASSD and HD95 (mm) per model, overall, by site
    <run>/paper/segmentation_by_histology.csv and by histology (when patients.csv has those columns); index.json

Each fold is planned from its own training patients (no geometry or intensity of a test patient reaches
the plan), trained with a seed derived from (seed, fold), and predicts only its test patients. With
``workers`` > 1 the folds run in that many spawned processes at once (each with ``train.threads`` threads,
by default the cores divided among the workers); the results do not depend on it.

The splits are keyed by the eligible patients and their stratification columns, a fold's model by its
training patients' series content and the plan, train and data settings, a mask by its model and the
patient's images (:func:`fold_keys`); the tables are always recomputed. A rerun after the cohort changed stops
and says what changed, or (``rerun_changed``) recomputes only what the change affects.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import SimpleITK as sitk

from sarcomri.classification import open_run, versions
from sarcomri.cohort.manifest import Cohort
from sarcomri.cohort.sequences import group_name
from sarcomri.cohort.splits import check_no_leakage, kfold
from sarcomri.errors import InputError
from sarcomri.fingerprint import CohortFingerprint, key
from sarcomri.fingerprint import cohort_fingerprint as content_fingerprint
from sarcomri.io.atomic import atomic_path, write_csv, write_json
from sarcomri.models.folder import is_model_folder, save_model
from sarcomri.runrecord import RunRecord
from sarcomri.runs import SPLITS, SegmentationRun
from sarcomri.runs.kinds import FINAL_MODEL
from sarcomri.seg3d.cascade import REFINE_DIR
from sarcomri.seg3d.config import Seg3DConfig
from sarcomri.seg3d.data import cohort_fingerprint, load_cases, patients_with, read_channels
from sarcomri.seg3d.evaluate import PAPER_TABLE_NAMES, evaluate_folder, paper_layouts, paper_table, summarise_by
from sarcomri.seg3d.infer import Model, predict_images
from sarcomri.seg3d.plan import make_plan
from sarcomri.seg3d.slices import SLICES_DIR, train_slices
from sarcomri.seg3d.train import CHECKPOINT, fit, refine_training_cases
from sarcomri.train.executors import cores, exit_with_parent
from sarcomri.train.threads import torch_threads

Progress = Callable[[dict[str, Any]], None]
#: Versions of the code that makes the splits, a fold's model and a mask: bump one when that code changes its
#: output, so that run folders made before are recomputed (or stop) instead of mixing old and new results.
SPLITS_FORMAT, MODEL_FORMAT, PREDICTION_FORMAT = "seg3d-splits-1", "seg3d-model-1", "seg3d-mask-1"


def _eligible_patients(cfg: Seg3DConfig, cohort: Cohort) -> pd.DataFrame:
    """The patients.csv rows of every patient that any model can train on."""
    eligible = set().union(*(patients_with(cohort, g) for g in cfg.channel_groups()))
    return cohort.patients[cohort.patients["patient_id"].isin(eligible)]


def splits_key(cfg: Seg3DConfig, cohort: Cohort) -> str:
    """The key of ``splits.csv``: the fold settings and the eligible patients with their stratification values."""
    patients = _eligible_patients(cfg, cohort)
    columns = [c for c in cfg.stratify_by if c in patients.columns]
    return key(SPLITS_FORMAT, cfg.folds, cfg.seed, cfg.stratify_by,
               patients[["patient_id", *columns]].astype(str).to_numpy().tolist())


def study_splits(cfg: Seg3DConfig, cohort: Cohort, run_dir: Path, reuse: bool = True) -> pd.DataFrame:
    """Patient-level folds over every patient that any model can train on; read back when already written
    (and ``reuse``), else made (written by :func:`run_crossval` once the run folder's inputs are checked)."""
    path = SegmentationRun(run_dir).splits_path
    if reuse and path.is_file():
        table = pd.read_csv(path, dtype={"patient_id": str})
    else:
        patients = _eligible_patients(cfg, cohort)
        if len(patients) < cfg.folds:
            raise InputError(cohort.root, f"{len(patients)} patient(s) have the sequences and masks of "
                                          f"{cfg.sequences}: too few for {cfg.folds} folds")
        table = kfold(patients, n_folds=cfg.folds, n_repeats=1, seed=cfg.seed, val_ratio=0.0,
                      stratify_by=cfg.stratify_by)
    check_no_leakage(table)
    return table


def fold_keys(cfg: Seg3DConfig, fp: CohortFingerprint, jobs: list, run_dir: Path) -> dict[str, str]:
    """The key of each fold's model folder (its training patients' series, plan, train and data settings) and of
    each out-of-fold mask (the model's key, the inference settings, the patient's images)."""
    out = {}
    for group, fold, train_ids, test_ids, model_dir, pred_dir in jobs:
        members = []
        for rep, folder in enumerate(member_dirs(cfg, model_dir)):
            members.append(key(MODEL_FORMAT, group, fold, train_ids, fp.series_key(train_ids, group), cfg.seed,
                               cfg.plan_settings(), cfg.train, cfg.data, *([cfg.cascade] if cfg.cascade else []),
                               *([("slices", cfg.slices)] if cfg.slices else []),
                               *([rep] if rep else [])))
            out[str(folder.relative_to(run_dir))] = members[-1]
        model = members[0] if len(members) == 1 else key(*members)
        for pid in test_ids:
            images = [fp.series.get(f"{pid}/{s}", {}).get("image") for s in group]
            out[str((pred_dir / f"{pid}.nii.gz").relative_to(run_dir))] = key(PREDICTION_FORMAT, model, cfg.infer,
                                                                                images)
    return out


def fold_seed(seed: int, fold: int, member: int = 0) -> int:
    """The training seed of one fold's model (its ``member``-th with ``members`` > 1)."""
    entropy = [seed, fold, 0x5E9, *([member] if member else [])]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0] % 2**31)


def member_dirs(cfg: Seg3DConfig, model_dir: str | Path) -> list[Path]:
    """The folders of a fold's models: ``fold<k>-rep0`` and, with ``members`` > 1, ``fold<k>-rep1``, ... (the final
    model, and any folder not named ``*-rep0``, is one model)."""
    model_dir = Path(model_dir)
    if cfg.members == 1 or not model_dir.name.endswith("-rep0"):
        return [model_dir]
    stem = model_dir.name[: -len("-rep0")]
    return [model_dir.with_name(f"{stem}-rep{r}") for r in range(cfg.members)]


def _model_done(cfg: Seg3DConfig, folder: Path) -> bool:
    """Whether one model is finished: its folder, and with a cascade or a slice stage theirs too."""
    return (is_model_folder(folder) and (cfg.cascade is None or is_model_folder(folder / REFINE_DIR))
            and (cfg.slices is None or is_model_folder(folder / SLICES_DIR)))


def fold_done(cfg: Seg3DConfig, model_dir: str | Path) -> bool:
    """Whether a fold's models (:func:`member_dirs`) are all finished."""
    return all(_model_done(cfg, d) for d in member_dirs(cfg, model_dir))


def train_fold(cfg: Seg3DConfig, cohort: Cohort, group: tuple[str, ...], train_ids: list[str], model_dir: Path,
               fold: int, progress: Progress | None = None) -> None:
    """Plan from the training patients, train (resuming from a checkpoint), save the model folder; with a
    cascade, then train its refining stage into ``refine/``, and with a slice stage its 2D network into
    ``slices/`` (:mod:`sarcomri.seg3d.slices`; a finished stage is not retrained). With
    ``members`` > 1 a fold's models are trained one after the other, each with a seed of its own; the
    fingerprint, plans and training cases are made once for all of them."""
    todo = [(m, d) for m, d in enumerate(member_dirs(cfg, model_dir)) if not _model_done(cfg, d)]
    if not todo:
        return
    fp = cohort_fingerprint(cohort, train_ids, group, seed=cfg.seed)
    plan = make_plan(fp, list(group), cfg.plan_settings())
    cases: list = []
    for member, folder in todo:
        settings = cfg.train.model_copy(update={"seed": fold_seed(cfg.train.seed, fold, member)})
        which = (fold if member == 0 else f"{fold}-{member}") if fold < cfg.folds else FINAL_MODEL
        meta = {"fold": which, "seed": settings.seed, "train_patients": list(train_ids),
                "config": cfg.model_dump(mode="json"), "versions": versions()}
        if not is_model_folder(folder):
            cases = cases or load_cases(cohort, train_ids, plan)
            _train_stage(cases, plan, settings, cfg, folder, folder, meta, "train", progress,
                         {"model": group_name(group), "fold": which})
        if cfg.cascade is not None and not is_model_folder(folder / REFINE_DIR):
            fine = make_plan(fp, list(group), cfg.refine_plan_settings())
            fine.prior = True
            clock = (time.perf_counter(), time.process_time())
            with torch_threads(settings.threads):
                prior_cases = refine_training_cases(cfg, cohort, train_ids, group, Model.load(folder), fine)
            _record_time(folder, "prior", clock, cases=len(prior_cases))
            refine = cfg.refine_train().model_copy(update={"seed": settings.seed + 1})
            _train_stage(prior_cases, fine, refine, cfg, folder / REFINE_DIR, folder,
                         {**meta, "seed": refine.seed, "cascade": cfg.cascade.model_dump(mode="json")}, "refine",
                         progress, {"model": f"{group_name(group)} refine", "fold": which})
        if cfg.slices is not None and not is_model_folder(folder / SLICES_DIR):
            clock = (time.perf_counter(), time.process_time())
            tag = {"model": f"{group_name(group)} slices", "fold": which}
            train_slices(cohort, group, train_ids, cfg.slices, settings.seed + 2, folder / SLICES_DIR, meta,
                         settings.threads, (lambda e, tag=tag: progress({**e, **tag})) if progress else None)
            _record_time(folder, "slices", clock)


def _train_stage(cases: list, plan, settings, cfg: Seg3DConfig, model_dir: Path, timing_dir: Path, meta: dict,
                 stage: str, progress: Progress | None, what: dict) -> None:
    """Train one stage's network on ``cases`` (resuming from a checkpoint) and save its model folder, with the
    time it took under ``stage`` in ``timing_dir``'s timing.json (the fold's)."""
    clock = (time.perf_counter(), time.process_time())
    if progress:
        progress({"event": "fold_start", **what, "steps": settings.epochs * settings.iterations, "plan": plan})
    with torch_threads(settings.threads):  # timing.json records the threads training ran with
        result = fit(cases, plan, settings, cfg.data, checkpoint_dir=model_dir,
                     progress=(lambda e: progress({"event": "step", **e})) if progress else None)
        save_model(result.network, plan, model_dir, history=result.history, meta=meta)
        (model_dir / CHECKPOINT).unlink(missing_ok=True)
        _record_time(timing_dir, stage, clock, resumed=result.resumed_from is not None)


def predict_fold(cfg: Seg3DConfig, cohort: Cohort, group: tuple[str, ...], test_ids: list[str], model_dir: Path,
                 pred_dir: Path, progress: Progress | None = None) -> None:
    """Write the out-of-fold masks of ``test_ids`` (skipping those already written), with the mean probability of
    the fold's models (``members``)."""
    todo = [p for p in test_ids if not (pred_dir / f"{p}.nii.gz").is_file()]
    if not todo:
        return
    clock = (time.perf_counter(), time.process_time())
    models = [Model.load(d) for d in member_dirs(cfg, model_dir)]
    with torch_threads(cfg.infer.threads):  # timing.json records the threads inference ran with
        for pid in todo:
            images, _ = read_channels(cohort, pid, group)
            mask, _ = predict_images(models, images, cfg.infer, case_id=pid)
            with atomic_path(pred_dir / f"{pid}.nii.gz", overwrite=True) as tmp:
                sitk.WriteImage(mask, str(tmp), useCompression=True)
            if progress:
                progress({"event": "predicted", "patient_id": pid})
        _record_time(model_dir, "predict", clock, cases=len(todo))


TIMING = "timing.json"
#: How worker processes start: spawn (a fresh interpreter: safe with PyTorch's thread pools and CUDA).
MP_CONTEXT = "spawn"


def _record_time(model_dir: Path, stage: str, clock: tuple[float, float], **extra) -> None:
    """Add ``<stage>_wall_s`` and ``<stage>_cpu_s`` (this process's CPU time, all its threads) to timing.json."""
    import torch

    path = model_dir / TIMING
    data = json.loads(path.read_text()) if path.is_file() else {}
    data.update({f"{stage}_wall_s": round(time.perf_counter() - clock[0], 2),
                 f"{stage}_cpu_s": round(time.process_time() - clock[1], 2),
                 f"{stage}_threads": torch.get_num_threads(), **{f"{stage}_{k}": v for k, v in extra.items()}})
    write_json(path, data, overwrite=True)


def _fold_job(cfg_json: dict, group: tuple[str, ...], train_ids: list[str], test_ids: list[str], model_dir: str,
              pred_dir: str, fold: int, threads: int) -> int:
    """Train (unless done) and predict one fold in a worker process; returns the fold."""
    with torch_threads(threads):
        cfg = Seg3DConfig(**cfg_json)
        cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={"threads": threads}),
                                     "infer": cfg.infer.model_copy(update={"threads": threads})})
        cohort = Cohort.load(cfg.cohort)
        if not fold_done(cfg, model_dir):
            train_fold(cfg, cohort, group, train_ids, Path(model_dir), fold)
        predict_fold(cfg, cohort, group, test_ids, Path(model_dir), Path(pred_dir))
    return fold


def run_crossval(cfg: Seg3DConfig, run_dir: str | Path, progress: Progress | None = None,
                 rerun_changed: bool = False) -> pd.DataFrame:
    """Train and predict every (sequence set, fold), then evaluate; returns the per-case table.

    Splits, models and masks made from another cohort content stop the run with a message saying what
    changed, unless ``rerun_changed``: then what the change affects is deleted and recomputed
    (:mod:`sarcomri.runrecord`)."""
    run_dir = open_run(cfg, run_dir)
    cohort = Cohort.load(cfg.cohort)
    record = RunRecord.load(run_dir)
    fp = content_fingerprint(cohort, previous=record.cohort)
    split_key = splits_key(cfg, cohort)
    splits = study_splits(cfg, cohort, run_dir, reuse=record.matches(SPLITS, split_key))
    jobs, fold_of = _plan_folds(cfg, cohort, splits, run_dir)
    record.reconcile(fp, {SPLITS: split_key, **fold_keys(cfg, fp, jobs, run_dir)}, rerun_changed)
    run = SegmentationRun(run_dir, cfg)
    if not run.splits_path.is_file():
        write_csv(run.splits_path, splits, overwrite=True)
    for group in cfg.channel_groups():
        run.predictions_dir(group).mkdir(parents=True, exist_ok=True)
    todo = [j for j in jobs
            if not fold_done(cfg, j[4]) or any(not (j[5] / f"{p}.nii.gz").is_file() for p in j[3])]
    if cfg.workers > 1 and len(todo) > 1:
        _run_parallel(cfg, todo, progress)
    else:
        for group, fold, train_ids, test_ids, model_dir, pred_dir in todo:
            if not fold_done(cfg, model_dir):
                train_fold(cfg, cohort, group, train_ids, model_dir, fold, progress)
            predict_fold(cfg, cohort, group, test_ids, model_dir, pred_dir, progress)
    return _tables(cfg, cohort, jobs, fold_of, run_dir)


def _plan_folds(cfg: Seg3DConfig, cohort: Cohort, splits: pd.DataFrame, run_dir: Path) -> tuple[list, dict]:
    """Every (sequence set, fold) job as (group, fold, train ids, test ids, model folder, prediction folder),
    and the fold of each (sequence set, test patient)."""
    jobs, fold_of, run = [], {}, SegmentationRun(run_dir, cfg)
    for group in cfg.channel_groups():
        name = group_name(group)
        eligible = set(patients_with(cohort, group))
        for fold in sorted(splits["fold"].unique()):
            sub = splits[splits["fold"] == fold]
            train_ids = sorted(set(sub.loc[sub["role"] != "test", "patient_id"]) & eligible)
            test_ids = sorted(set(sub.loc[sub["role"] == "test", "patient_id"]) & eligible)
            fold_of.update({(name, p): int(fold) for p in test_ids})
            jobs.append((group, int(fold), train_ids, test_ids, run.model_folder(name, fold),
                         run.predictions_dir(name)))
        if cfg.final:  # every patient; "fold" cfg.folds gives it a seed of its own
            jobs.append((group, cfg.folds, sorted(eligible & set(splits["patient_id"])), [], run.final_folder(name),
                         run.predictions_dir(name)))
    return jobs, fold_of


def _tables(cfg: Seg3DConfig, cohort: Cohort, jobs: list, fold_of: dict, run_dir: Path) -> pd.DataFrame:
    """Evaluate every sequence set's out-of-fold masks and write the tables; returns the per-case table."""
    tables, run = [], SegmentationRun(run_dir, cfg)
    for group in cfg.channel_groups():
        name = group_name(group)
        table = evaluate_folder(run.predictions_dir(name), cohort, name)
        table.insert(3, "fold", [fold_of[(name, p)] for p in table["patient_id"]])
        tables.append(table)
    per_case = pd.concat(tables, ignore_index=True)
    write_csv(run.table_path("per_case"), per_case, overwrite=True)
    write_csv(run.table_path("summary"), summarise_by(per_case, ["sequence"]), overwrite=True)
    write_csv(run.table_path("paper"), paper_table(per_case), overwrite=True)
    write_csv(run.table_path("per_fold"), per_fold(per_case), overwrite=True)
    write_csv(run.table_path("timing"), timing_table(jobs), overwrite=True)
    write_paper_tables(run.paper_dir, per_case, cohort.patients)
    return per_case


PAPER_TITLES = {
    None: "Soft-tissue sarcoma segmentation study layout: Dice, F2, ASSD and HD95 (mm) per sequence and "
          "sequence combination, median (IQR)",
    "site": "Soft-tissue sarcoma segmentation study layout: the same by anatomical site, median (IQR)",
    "histology": "Soft-tissue sarcoma segmentation study layout: the same by histology, median (IQR)",
}
PAPER_NOTE = ("Out-of-fold masks of this run's patient-level cross-validation, one 3D U-Net per sequence or "
              "combination of co-registered sequences (model). n: cases; ASSD and HD95 over the n_distance cases "
              "where both masks are non-empty; F2 = F-beta with beta 2 on voxels (recall weighted).")


def write_paper_tables(paper_dir: Path, per_case: pd.DataFrame, patients: pd.DataFrame) -> list[Path]:
    """Write the overall, by-site and by-histology tables (:func:`sarcomri.seg3d.evaluate.paper_layouts`) into a
    run's ``paper/`` folder; returns their paths."""
    from sarcomri.report.papertables import PaperTable, write_paper_table

    out = []
    for k, (stratum, frame) in enumerate(paper_layouts(per_case, patients).items()):
        entry = PaperTable(PAPER_TABLE_NAMES[stratum], PAPER_TITLES[stratum], PAPER_NOTE, order=40 + k)
        out.append(write_paper_table(paper_dir, entry, frame))
    return out


def _run_parallel(cfg: Seg3DConfig, todo: list, progress: Progress | None) -> None:
    workers = min(cfg.workers, len(todo))
    threads = cfg.train.threads or max(1, cores() // workers)
    cfg_json = cfg.model_dump(mode="json")
    with ProcessPoolExecutor(workers, mp_context=mp.get_context(MP_CONTEXT), initializer=exit_with_parent) as pool:
        futures = {}
        for group, fold, train_ids, test_ids, model_dir, pred_dir in todo:
            fut = pool.submit(_fold_job, cfg_json, group, train_ids, test_ids, str(model_dir), str(pred_dir), fold,
                              threads)
            futures[fut] = (group_name(group), fold)
        for fut in as_completed(futures):
            fut.result()
            if progress:
                name, fold = futures[fut]
                progress({"event": "fold_done", "model": name, "fold": fold})


def per_fold(per_case: pd.DataFrame) -> pd.DataFrame:
    """Mean and median Dice and HD95 per (sequence, fold), and over all folds (fold ``all``)."""
    rows = []
    for (seq, fold), sub in list(per_case.groupby(["sequence", "fold"])) + [
            ((seq, "all"), sub) for seq, sub in per_case.groupby("sequence")]:
        rows.append({"sequence": seq, "fold": fold, "n": len(sub),
                     "dice_mean": sub["dice"].mean(), "dice_median": sub["dice"].median(),
                     "hd95_mean_mm": sub["hd95_mm"].mean(), "hd95_median_mm": sub["hd95_mm"].median()})
    return pd.DataFrame(rows)


def timing_table(jobs: list) -> pd.DataFrame:
    """The timing.json of every fold's model folder (missing folds left out)."""
    rows = []
    for group, fold, *_, model_dir, _pred in jobs:
        path = Path(model_dir) / TIMING
        if path.is_file():
            rows.append({"sequence": group_name(group), "fold": fold, **json.loads(path.read_text())})
    return pd.DataFrame(rows)

