"""Do models of different runs fail on different patients? The fold ensemble of several finished runs, scored.

For finished ``segment train`` runs of one sequence with the same ``splits.csv`` (the same folds: different seeds,
augmentation or settings), each test patient is predicted by its fold's models of every run, their tumour
probabilities averaged (``predict_images``, the first run's ``infer:`` settings: threshold, body and component
rules, changed by ``--infer KEY=VALUE``), and scored against the reference with the run's own metrics. With one run
it reproduces that run's ``tables/per_case.csv``. Prints one line per run (its own table) and one for the ensemble,
and writes the ensemble's masks and ``per_case.csv`` under ``--out`` (a new or empty folder).

Run: nice .venv/bin/python benchmarks/seg3d_ensemble.py RUN [RUN ...] --out runs/seg3d-ensemble [--infer mirror=false]
Target: the issue's goal, a mean Dice >= 0.75 and a median HD95 <= 12 mm, none below 0.3, within 30 minutes of
training (all runs together).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import SimpleITK as sitk
from seg3d_runs import TARGET, summary, with_changes

from sarcomri.cohort.manifest import Cohort
from sarcomri.cohort.splits import check_no_leakage
from sarcomri.config import load_config
from sarcomri.io.atomic import atomic_path, write_csv
from sarcomri.seg3d.config import Seg3DConfig
from sarcomri.seg3d.evaluate import case_metrics
from sarcomri.seg3d.infer import Model, predict_images
from sarcomri.train.threads import torch_threads


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", type=Path, nargs="+", help="finished `segment train` runs with the same splits")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--infer", action="append", default=[], metavar="KEY=VALUE",
                    help="change one of the first run's infer: settings, e.g. mirror=false (repeatable)")
    args = ap.parse_args()
    cfg = load_config(args.runs[0] / "config.yaml", Seg3DConfig)
    infer = with_changes(cfg.infer, args.infer)
    group = cfg.channel_groups()[0]
    if len(cfg.channel_groups()) != 1:
        raise SystemExit("runs of one sequence (group), please")
    splits = pd.read_csv(args.runs[0] / "splits.csv", dtype={"patient_id": str})
    check_no_leakage(splits)
    for run in args.runs[1:]:
        if not pd.read_csv(run / "splits.csv", dtype={"patient_id": str}).equals(splits):
            raise SystemExit(f"{run} has other folds than {args.runs[0]}")
    if args.out.exists() and any(args.out.iterdir()):
        raise SystemExit(f"{args.out} is not empty: give a new --out (nothing there is overwritten)")
    cohort = Cohort.load(cfg.cohort)
    name = "+".join(group)
    masks = args.out / "masks"
    masks.mkdir(parents=True)
    rows = []
    test = splits[splits["role"] == "test"]
    with torch_threads(1):
        for fold, patients in test.groupby("fold")["patient_id"]:
            models = [Model.load(run / "models" / name / f"fold{fold}-rep0") for run in args.runs]
            for p in sorted(patients):
                images = [cohort.read_image(p, s) for s in group]
                mask, _ = predict_images(models, images, infer, case_id=p)
                with atomic_path(masks / f"{p}.nii.gz") as tmp:
                    sitk.WriteImage(mask, str(tmp))
                rows.append({"patient_id": p, "fold": fold, **case_metrics(mask, cohort.read_mask(p, group[0]))})
    ensemble = pd.DataFrame(rows)
    write_csv(args.out / "per_case.csv", ensemble)
    lines = [summary(str(run), pd.read_csv(run / "tables" / "per_case.csv")) for run in args.runs]
    lines.append(summary(f"ensemble of {len(args.runs)}", ensemble))
    print(pd.DataFrame(lines).round(3).to_string(index=False))
    print(TARGET)


if __name__ == "__main__":
    main()
