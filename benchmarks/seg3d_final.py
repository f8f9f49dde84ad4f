"""New patients: a fold ensemble or one model trained on every patient? Measured by nesting inside a finished run.

A finished ``segment train`` run gives, for each outer fold, a model trained on all of its training patients and
its out-of-fold masks: the stand-in for the *final* model (one model on all the data a user has). Here each
outer fold's training patients are split again into ``folds - 1`` patient-level inner folds with the run's own
config; the inner models (each on (k - 2)/(k - 1) of them) predict the outer test patients as an ensemble: the
stand-in for the *fold ensemble*. Both are scored on the same outer test patients, which neither saw. With 4
folds the ensemble's members see 12 patients and the single model 18 (on the 24 sts-t1 patients), as the real
choice compares 4 models on 18 with one on 24.

Run (resumable; ``--workers`` inner models at once, one thread each):
    nice .venv/bin/python benchmarks/seg3d_final.py RUN --out runs/seg3d-final-vs-ensemble [--workers 2]
Prints per outer fold and overall the mean and median Dice and HD95 of both, and the paired Dice difference
(target: choose the one with the higher mean Dice; a tie within 0.01 goes to the ensemble, nnU-Net's default).
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import pandas as pd

from sarcomri.cohort.manifest import Cohort
from sarcomri.cohort.splits import check_no_leakage, kfold
from sarcomri.config import load_config
from sarcomri.io.atomic import write_csv
from sarcomri.models.folder import is_model_folder
from sarcomri.seg3d.config import Seg3DConfig
from sarcomri.seg3d.crossval import fold_done, train_fold
from sarcomri.seg3d.data import read_channels
from sarcomri.seg3d.evaluate import case_metrics
from sarcomri.seg3d.infer import Model, predict_images
from sarcomri.train.threads import torch_threads


def inner_jobs(cfg: Seg3DConfig, cohort: Cohort, splits: pd.DataFrame, out: Path) -> list[tuple]:
    """(outer fold, inner fold, inner training ids, model folder) of every inner model."""
    jobs = []
    for outer in sorted(splits["fold"].unique()):
        sub = splits[splits["fold"] == outer]
        train_ids = sorted(sub.loc[sub["role"] != "test", "patient_id"])
        patients = cohort.patients[cohort.patients["patient_id"].isin(train_ids)]
        inner = kfold(patients, n_folds=cfg.folds - 1, n_repeats=1, seed=cfg.seed + 1 + int(outer), val_ratio=0.0,
                      stratify_by=cfg.stratify_by)
        check_no_leakage(inner)
        test_ids = set(sub.loc[sub["role"] == "test", "patient_id"])
        for k in sorted(inner["fold"].unique()):
            ids = sorted(inner.loc[(inner["fold"] == k) & (inner["role"] != "test"), "patient_id"])
            assert not set(ids) & test_ids  # the outer test patients are never trained on
            jobs.append((int(outer), int(k), ids, out / f"outer{outer}" / f"inner{k}"))
    return jobs


def _train(cfg_json: dict, ids: list[str], folder: str, fold: int) -> str:
    with torch_threads(1):
        cfg = Seg3DConfig(**cfg_json)
        cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={"threads": 1})})
        if not fold_done(cfg, folder):
            train_fold(cfg, Cohort.load(cfg.cohort), tuple(cfg.channel_groups()[0]), ids, Path(folder), fold)
    return folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", type=Path, help="a finished `segment train` run (one sequence set)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    start = time.perf_counter()
    cfg = load_config(args.run / "config.yaml", Seg3DConfig)
    cohort = Cohort.load(cfg.cohort)
    group = cfg.channel_groups()[0]
    splits = pd.read_csv(args.run / "splits.csv", dtype={"patient_id": str})
    run_table = pd.read_csv(args.run / "tables" / "per_case.csv", dtype={"patient_id": str})
    jobs = inner_jobs(cfg, cohort, splits, args.out)
    todo = [j for j in jobs if not fold_done(cfg, j[3])]
    with ProcessPoolExecutor(max_workers=args.workers, mp_context=get_context("spawn")) as pool:
        list(pool.map(_train, [cfg.model_dump(mode="json")] * len(todo), [j[2] for j in todo],
                      [str(j[3]) for j in todo], [100 + 10 * j[0] + j[1] for j in todo]))
    rows = []
    with torch_threads(1):
        for outer in sorted(splits["fold"].unique()):
            models = [Model.load(j[3]) for j in jobs if j[0] == outer and is_model_folder(j[3])]
            test_ids = sorted(splits.loc[(splits["fold"] == outer) & (splits["role"] == "test"), "patient_id"])
            for pid in test_ids:
                images, ref = read_channels(cohort, pid, group)
                mask, _ = predict_images(models, images, cfg.infer, case_id=pid)
                m = case_metrics(mask, ref)
                single = run_table[run_table["patient_id"] == pid].iloc[0]
                rows.append({"fold": int(outer), "patient_id": pid, "dice_single": float(single["dice"]),
                             "dice_ensemble": m["dice"], "hd95_single": float(single["hd95_mm"]),
                             "hd95_ensemble": m["hd95_mm"]})
    table = pd.DataFrame(rows)
    write_csv(args.out / "per_case.csv", table, overwrite=True)  # this script's own table, rewritten each run
    cols = ["dice_single", "dice_ensemble", "hd95_single", "hd95_ensemble"]
    per_fold = table.groupby("fold")[cols].mean()
    per_fold.loc["all (mean)"] = table[cols].mean()
    per_fold.loc["all (median)"] = table[cols].median()
    print(per_fold.round(3).to_string())
    diff = table["dice_ensemble"] - table["dice_single"]
    outer_train = int((splits[(splits["fold"] == 0)]["role"] != "test").sum())
    print(f"paired Dice difference ensemble - single: mean {diff.mean():+.3f}, ensemble better in "
          f"{int((diff > 0).sum())} of {len(diff)} patients; each of the {cfg.folds - 1} members trains on "
          f"{len(jobs[0][2])} patients, the single model on {outer_train}")
    print(f"{time.perf_counter() - start:.0f} s wall")


if __name__ == "__main__":
    main()
