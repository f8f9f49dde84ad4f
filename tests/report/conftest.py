"""A small synthetic run folder for the report tests: a 24-patient synthetic sarcoma cohort (32 px, readers),
fake slice predictions turned into the real classification tables, tiny random models with a slice cache for
Grad-CAM, and a segmentation run folder with predicted masks and a learning-curve figure."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

PATIENTS, SEED, SIZE = 24, 3, 32
SEQUENCES = ["T2axi", "ADC"]
FOLDS, REPEATS = 3, 2


def make_cohort(root: Path):
    from sarcomri.synth.acquisition import Protocol
    from sarcomri.synth.cohort import synthesise_cohort

    return synthesise_cohort(root, task="sarcoma", n_patients=PATIENTS, seed=SEED, sequences=SEQUENCES,
                             protocol=Protocol(size=SIZE, slices=8))


def _fake_predictions(cohort, splits: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Slice probabilities that follow the ideal observer's evidence (so AUCs are high but not perfect)."""
    latent = pd.read_csv(cohort.root / "latent.csv", dtype={"patient_id": str}).set_index("patient_id")
    labels = cohort.labels_binary()
    has = cohort.availability()
    rows = []
    for seq in SEQUENCES:
        for (rep, fold), part in splits[splits["role"] == "test"].groupby(["repeat", "fold"]):
            for pid in part["patient_id"]:
                if not has.loc[pid, seq]:
                    continue
                for k in range(3):
                    z = 0.6 * latent.loc[pid, "ideal_llr"] + rng.normal(0, 1.2)
                    rows.append({"model": f"{seq}/fold{fold}-rep{rep}", "sequence": seq, "repeat": int(rep),
                                 "fold": int(fold), "split": "test", "patient_id": pid, "slice_index": k,
                                 "central": k == 1, "label": int(labels[pid]), "p_positive": 1 / (1 + np.exp(-z))})
    return pd.DataFrame(rows)


def _models_and_cache(run: Path, cohort, rng: np.random.Generator) -> None:
    import torch

    from sarcomri.data.sliceset import SliceSet
    from sarcomri.models import ModelSpec, save_model
    from sarcomri.models.registry import build_classifier

    has = cohort.availability()
    labels = cohort.labels_binary()
    for seq in SEQUENCES:
        ids = [p for p in cohort.patient_ids if has.loc[p, seq]]
        n = 3 * len(ids)
        slices = SliceSet(images=rng.normal(0, 1, (n, 1, SIZE, SIZE)).astype(np.float32),
                          labels=np.repeat([labels[p] for p in ids], 3).astype(np.int64),
                          patient_ids=np.repeat(np.array(ids, dtype=object), 3),
                          slice_index=np.tile(np.arange(3), len(ids)), central=np.tile([False, True, False], len(ids)))
        slices.save(run / "cache" / f"{seq}.npz")
        for fold in range(FOLDS):
            torch.manual_seed(fold)
            model = build_classifier("mobilenetv2_050", in_channels=1, num_classes=2)
            save_model(model, ModelSpec("mobilenetv2_050", 1, 2, SIZE), run / "models" / seq / f"fold{fold}-rep0")


def make_run(run: Path, cohort) -> Path:
    """The classification run folder, with every table of sarcomri.classification."""
    from sarcomri import classification as study
    from sarcomri.cohort.splits import kfold
    from sarcomri.config import ClassificationConfig
    from sarcomri.io.atomic import write_csv, write_parquet

    cfg = ClassificationConfig.model_validate({
        "name": "report-test", "cohort": str(cohort.root), "positive_label": "sarcoma", "sequences": SEQUENCES,
        "splits": {"folds": FOLDS, "repeats": REPEATS, "val_ratio": 0.0, "seed": SEED},
        "slices": {"size": SIZE}, "model": {"name": "mobilenetv2_050"}, "clinical_columns": ["age"]})
    study.open_run(cfg, run)
    rng = np.random.default_rng(SEED)
    splits = kfold(cohort.patients, FOLDS, REPEATS, SEED, val_ratio=0.0)
    write_csv(run / "splits.csv", splits)
    write_parquet(run / "predictions.parquet", _fake_predictions(cohort, splits, rng))
    study.ensemble_tables(run)
    study.combine_tables(run)
    study.clinical_tables(run, cohort, ["age"])
    _models_and_cache(run, cohort, rng)
    return run


def make_segmentation_run(seg: Path, cohort) -> Path:
    """Predicted T2axi masks (the reference, dilated or eroded), the per-case table and a learning curve."""
    import yaml
    from matplotlib.figure import Figure

    from sarcomri.io.atomic import write_csv
    from sarcomri.seg3d.evaluate import evaluate_folder

    pred_dir = seg / "predictions" / "T2axi"
    pred_dir.mkdir(parents=True)
    with_t2 = cohort.availability()["T2axi"]
    for i, pid in enumerate([p for p in cohort.patient_ids if with_t2[p]][:8]):
        ref = cohort.read_mask(pid, "T2axi")
        mask = sitk.Cast(ref != 0, sitk.sitkUInt8)
        mask = sitk.BinaryDilate(mask, [1, 1, 0]) if i % 2 else sitk.BinaryErode(mask, [1, 1, 0])
        sitk.WriteImage(mask, str(pred_dir / f"{pid}.nii.gz"))
    (seg / "config.yaml").write_text(yaml.safe_dump({"cohort": str(cohort.root)}))
    per_case = evaluate_folder(pred_dir, cohort, "T2axi")
    per_case.insert(3, "fold", 0)
    write_csv(seg / "tables" / "per_case.csv", per_case)
    fig = Figure(figsize=(3, 2))
    ax = fig.subplots()
    ax.plot([10, 20, 40], [0.5, 0.62, 0.7], "o-")
    ax.set(xlabel="training patients", ylabel="median Dice")
    (seg / "figures").mkdir()
    fig.savefig(seg / "figures" / "learning_curve.png")
    (seg / "figures" / "learning_curve.txt").write_text("Learning curve of the transfer-learning study.")
    return seg


@dataclass
class ReportRun:
    """The built synthetic run: cohort, run folder, segmentation run and the report's path."""

    cohort: Any
    run: Path
    seg: Path
    html: Path


@pytest.fixture(scope="session")
def report_run(tmp_path_factory) -> ReportRun:
    """The synthetic run folder with its report built once per test session."""
    from sarcomri.report import build_report

    root = tmp_path_factory.mktemp("report")
    cohort = make_cohort(root / "cohort")
    run = make_run(root / "run", cohort)
    seg = make_segmentation_run(root / "seg", cohort)
    return ReportRun(cohort, run, seg, build_report(run, segmentation_dirs=[seg]))
