"""One job of a classification grid: train one model for one sequence, fold and repeat, then predict.

A job reads the run folder's slice cache and splits (the sequence's own, ``splits/<sequence>.csv``, when it has
its own validation ratio), trains for the sequence's epochs (``per_sequence``), and writes into
``models/<sequence>/fold<k>-rep<r>/``:
``weights.pt`` and ``model.json`` (how to rebuild the network), ``model.onnx`` (the network for ONNX Runtime,
so that ``sarcomri predict`` need not export it: :mod:`sarcomri.infer.export`), ``history.json`` (metrics per
epoch), ``predictions.parquet`` (its test and validation patients' slices) and, last, ``DONE``. A rerun skips
folders with ``DONE``; a job killed in the middle resumes from its ``checkpoint.pt``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from sarcomri.io.atomic import write_json, write_parquet, write_text
from sarcomri.runs import DONE, JOB_PREDICTIONS, ClassificationRun
from sarcomri.train.config import TrainConfig

if TYPE_CHECKING:
    from sarcomri.config import ClassificationConfig

logger = logging.getLogger(__name__)

PREDICTION_COLUMNS = [
    "model", "sequence", "repeat", "fold", "split", "patient_id", "slice_index", "central", "label", "p_positive",
]


@dataclass(frozen=True, order=True)
class Job:
    """Train one model on one sequence (or channel group) for one (repeat, fold)."""

    sequence: str
    repeat: int
    fold: int

    @property
    def name(self) -> str:
        return f"{self.sequence}/fold{self.fold}-rep{self.repeat}"

    def folder(self, run_dir: str | Path) -> Path:
        return ClassificationRun(run_dir).model_folder(self.sequence, self.fold, self.repeat)

    def is_done(self, run_dir: str | Path) -> bool:
        return (self.folder(run_dir) / DONE).is_file()


def cache_path(run_dir: str | Path, sequence: str) -> Path:
    """Where the prepared slices of one sequence (or channel group) are cached."""
    return ClassificationRun(run_dir).cache_path(sequence)


def job_splits_path(run_dir: str | Path, config: ClassificationConfig, sequence: str) -> Path:
    """The splits a sequence's jobs read: ``splits/<sequence>.csv`` when the sequence has its own validation
    ratio, else ``splits.csv``."""
    run = ClassificationRun(run_dir)
    return run.splits_path if config.own_val_ratio(sequence) is None else run.sequence_splits_path(sequence)


def job_seed(base: int, job: Job, sequence_index: int) -> int:
    """A seed per job, so that jobs are independent of the order and process they run in."""
    return int(np.random.SeedSequence([base, sequence_index, job.repeat, job.fold]).generate_state(1)[0] % 2**31)


def run_job(job: Job, run_dir: str, config: ClassificationConfig, sequence_index: int = 0,
            threads: int | None = None, progress: Any = None) -> str:
    """Train, choose the epoch, predict; returns the job name. Importable at top level for worker processes.

    ``threads`` (an executor's share of the cores) applies unless the train config sets its own; the previous
    thread count comes back afterwards."""
    from sarcomri.train.threads import torch_threads

    tcfg = config.train_for(job.sequence).model_copy(update={"seed": job_seed(config.train.seed, job, sequence_index)})
    with torch_threads(tcfg.threads or threads):  # training's threads, for its predictions too
        return _train_and_predict(job, run_dir, config, tcfg, progress)


def build_network(config: ClassificationConfig, slices: Any) -> tuple[Any, Any]:
    """The config's untrained classifier for the inputs of a :class:`~sarcomri.data.sliceset.SliceSet` (its
    channels and size), and its :class:`~sarcomri.models.spec.ModelSpec`; seed PyTorch first."""
    from sarcomri.models.registry import build_classifier
    from sarcomri.models.spec import ModelSpec

    mcfg = config.model
    spec = ModelSpec(name=mcfg.name, in_channels=int(slices.images.shape[1]), num_classes=2,
                     input_size=int(slices.images.shape[-1]))
    model = build_classifier(spec.name, in_channels=spec.in_channels, num_classes=2,
                             pretrained_weights=mcfg.weights, allow_download=mcfg.allow_download,
                             drop_rate=mcfg.drop_rate)
    return model, spec


def _train_and_predict(job: Job, run_dir: str, config: ClassificationConfig, tcfg: TrainConfig, progress: Any) -> str:
    """The body of :func:`run_job`, under its thread count."""
    import torch

    from sarcomri.data.sliceset import SliceSet
    from sarcomri.models.folder import save_model
    from sarcomri.train.classifier import fit_classifier, predict_proba

    folder = job.folder(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    slices = SliceSet.load(cache_path(run_dir, job.sequence))
    splits = pd.read_csv(job_splits_path(run_dir, config, job.sequence), dtype={"patient_id": str})
    fold = splits[(splits["repeat"] == job.repeat) & (splits["fold"] == job.fold)]
    ids = {role: fold.loc[fold["role"] == role, "patient_id"].tolist() for role in ("train", "val", "test")}
    train, val, test = (slices.subset(ids[r]) for r in ("train", "val", "test"))
    if len(np.unique(train.labels)) < 2:
        raise RuntimeError(f"{job.name}: the training fold has a single class")

    torch.manual_seed(tcfg.seed)
    model, spec = build_network(config, slices)
    result = fit_classifier(model, train, val if len(val) else None, tcfg, checkpoint_dir=folder, progress=progress)

    rows = []
    for split, part in (("test", test), ("val", val)):
        if not len(part):
            continue
        p = predict_proba(model, part.images, channels_last=tcfg.channels_last)[:, 1]
        frame = part.index_frame().assign(p_positive=p.astype(np.float64), split=split)
        rows.append(frame)
    preds = pd.concat(rows, ignore_index=True)
    preds = preds.assign(model=job.name, sequence=job.sequence, repeat=job.repeat, fold=job.fold)[PREDICTION_COLUMNS]
    save_model(model.to(memory_format=torch.contiguous_format), spec, folder)
    export_onnx(folder)
    write_json(folder / "history.json", {"best_epoch": result.best_epoch, "history": result.history,
                                         "train_patients": len(ids["train"]), "val_patients": len(ids["val"]),
                                         "test_patients": len(ids["test"]), "seed": tcfg.seed}, overwrite=True)
    write_parquet(folder / JOB_PREDICTIONS, preds, overwrite=True)
    write_text(folder / DONE, json.dumps({"job": job.name}) + "\n", overwrite=True)
    (folder / "checkpoint.pt").unlink(missing_ok=True)
    return job.name


def export_onnx(folder: Path) -> None:
    """Write a finished model's ``model.onnx`` (a few hundredths of a second per model once its architecture is
    traced), so that the first ``sarcomri predict`` after training only loads it. A network that cannot be
    exported is logged and left to ``predict``, which exports on demand and says why it cannot."""
    from sarcomri.infer.export import export_saved_model

    try:
        export_saved_model(folder)
    except Exception as err:  # noqa: BLE001 - the exporter raises many types; training's result stands without it
        logger.warning("%s/%s: not exported to ONNX (%s); `sarcomri predict` will try again", folder.parent.name,
                       folder.name, err)
