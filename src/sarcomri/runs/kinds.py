"""The run kinds of single commands: classification (``sarcomri classify run``), 3D segmentation (``sarcomri
segment train``) and the 2D transfer-learning study (``sarcomri segment transfer-study``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from sarcomri.cohort.manifest import Cohort
from sarcomri.config import ClassificationConfig
from sarcomri.errors import InputError
from sarcomri.prep.prepare2d import SliceSpec
from sarcomri.runs.base import (
    CACHE,
    DONE,
    MODELS,
    PREDICTIONS,
    PREDICTIONS_DIR,
    READERS,
    READERS_DIR,
    TABLES,
    DecisionRule,
    Run,
    folder_name,
    negative_label,
    resolve_positive_label,
    slice_spec,
)
from sarcomri.seg2d.config import TransferStudyConfig
from sarcomri.seg3d.config import Seg3DConfig


class ClassificationRun(Run):
    """A classification run (``sarcomri classify run``, or ``<study>/classification``)."""

    kind = "classification"
    config_model = ClassificationConfig
    command = "sarcomri classify run CONFIG"

    @classmethod
    def with_settings(cls, path: str | Path, config: Mapping[str, Any]) -> ClassificationRun:
        """The run at ``path`` with the config given as a mapping (e.g. ``cfg.model_dump()``; the name may be left
        out), for writers that hold the settings before or without a config.yaml."""
        return cls(path, ClassificationConfig.model_validate({"name": Path(path).name or "run", **config}))

    @property
    def predictions_path(self) -> Path:
        """``predictions.parquet``: one row per (model, patient, sequence, slice)."""
        return self.path / PREDICTIONS

    def sequence_splits_path(self, sequence: str) -> Path:
        """``splits/<sequence>.csv``: the splits of a sequence with its own validation ratio (``per_sequence``
        or the ablation's choice): the test patients of ``splits.csv``, its own validation patients."""
        return self.path / "splits" / f"{sequence}.csv"

    def ablation_folder(self, sequence: str, val_ratio: float | None = None) -> Path:
        """``ablation/<sequence>/`` (the ablation models of one sequence), or with ``val_ratio`` the folder of
        one ablation model, ``ablation/<sequence>/val<ratio>/``."""
        folder = self.path / "ablation" / sequence
        return folder if val_ratio is None else folder / f"val{val_ratio:g}"

    def cache_path(self, sequence: str) -> Path:
        """``cache/<sequence>.npz``: the prepared slices of one sequence (a SliceSet)."""
        return self.path / CACHE / f"{sequence}.npz"

    def skipped_path(self, sequence: str) -> Path:
        """``cache/<sequence>.skipped.csv``: the patients the cache left out, and why."""
        return self.cache_path(sequence).with_suffix(".skipped.csv")

    def profile_path(self, sequence: str) -> Path:
        """``cache/<sequence>.profile.csv``: each patient's intensity profile (:mod:`sarcomri.prep.profile`)."""
        return self.cache_path(sequence).with_suffix(".profile.csv")

    def model_dir(self, sequence: str) -> Path:
        """``models/<sequence>/``: the sequence's models."""
        return self.models_dir / sequence

    def model_folder(self, sequence: str, fold: int, repeat: int) -> Path:
        """``models/<sequence>/fold<k>-rep<r>/``: one job's model."""
        return self.model_dir(sequence) / f"fold{int(fold)}-rep{int(repeat)}"

    @property
    def left_out_path(self) -> Path:
        """``tables/sequences_left_out.csv``: the sequences the grid could not train (sequence, reason)."""
        return self.table_path("sequences_left_out")

    def trained_sequences(self) -> list[str]:
        """The config's sequences less those the grid left out (too few patients of a class in a fold)."""
        import pandas as pd

        left = set(pd.read_csv(self.left_out_path)["sequence"]) if self.left_out_path.is_file() else set()
        return [s for s in self.config.sequences if s not in left]

    def models(self, sequence: str, finished: bool = True) -> list[Path]:
        """The sequence's model folders, sorted: the finished ones (with ``DONE``), or every one."""
        folder = self.model_dir(sequence)
        found = sorted(p for p in folder.glob("*") if p.is_dir()) if folder.is_dir() else []
        return [p for p in found if (p / DONE).is_file()] if finished else found

    @property
    def readers_tables_dir(self) -> Path:
        """``readers/tables/``: the model-vs-readers tables of a bare classification run (a study keeps its own
        in ``<study>/readers/tables``)."""
        return self.path / READERS_DIR / TABLES

    @property
    def readers_candidates(self) -> list[Path]:
        """Where a classification run may keep a readers table: ``readers.csv``, ``tables/readers.csv``."""
        return [self.path / READERS, self.tables_dir / READERS]

    # ------------------------------------------------------- the run's rules
    def positive_label(self, cohort: Cohort | None = None) -> str:
        """The positive class (:func:`resolve_positive_label`), with ``cohort`` or the run's own."""
        cohort = cohort if cohort is not None else Cohort.read(self.cohort_dir)
        return resolve_positive_label(self.config.positive_label, cohort.meta)

    def class_names(self, cohort: Cohort | None = None) -> tuple[str, str]:
        """(positive, negative) class names."""
        cohort = cohort if cohort is not None else Cohort.read(self.cohort_dir)
        positive = self.positive_label(cohort)
        return positive, negative_label(positive, cohort.meta)

    def cohort(self, check_files: bool = True) -> Cohort:
        """The run's cohort with the run's positive label in its meta (what training calls class 1)."""
        cohort = super().cohort(check_files)
        cohort.meta["positive_label"] = self.positive_label(cohort)
        return cohort

    def slice_spec(self, sequence: str) -> SliceSpec:
        """How the run cuts one sequence's (or channel group's) slices: the one place a SliceSpec is built
        from a config, for the training cache and for ``predict``."""
        return slice_spec(sequence, self.config.slices)

    def decision_rule(self, reader_cut: float | None = None) -> DecisionRule:
        """The vote cut-off and summed-score threshold of ``tables/summed_threshold.csv``."""
        path = self.table_path("summed_threshold")
        if not path.is_file():
            raise InputError(self.path, f"no {path.relative_to(self.path).as_posix()}: run `sarcomri classify "
                                        "combine` first")
        row = pd.read_csv(path).iloc[0]
        cutoff = row.get("vote_cutoff")
        return DecisionRule(float(row["threshold"]), None if cutoff is None or pd.isna(cutoff) else float(cutoff),
                            reader_cut)


#: The folder name of a 3D segmentation run's model trained on every patient.
FINAL_MODEL = "final"


class SegmentationRun(Run):
    """A 3D segmentation run (``sarcomri segment train``, or ``<study>/segmentation``)."""

    kind = "segmentation"
    config_model = Seg3DConfig
    command = "sarcomri segment train CONFIG"

    def model_dir(self, group: str | tuple[str, ...]) -> Path:
        """``models/<seq>/``: the fold models of one sequence (or ``'+'``-joined group)."""
        return self.models_dir / folder_name(group)

    def model_folder(self, group: str | tuple[str, ...], fold: int) -> Path:
        """``models/<seq>/fold<k>-rep0/``: one fold's model."""
        return self.model_dir(group) / f"fold{int(fold)}-rep0"

    def final_folder(self, group: str | tuple[str, ...]) -> Path:
        """``models/<seq>/final/``: the model trained on every patient (``segment train --final``)."""
        return self.model_dir(group) / FINAL_MODEL

    def model_groups(self) -> list[str]:
        """The names of the sequence groups the run has models for, sorted."""
        return sorted(p.name for p in self.models_dir.iterdir() if p.is_dir()) if self.models_dir.is_dir() else []

    def predictions_dir(self, group: str | tuple[str, ...]) -> Path:
        """``predictions/<seq>/``: the out-of-fold masks (``<patient>.nii.gz``)."""
        return self.path / PREDICTIONS_DIR / folder_name(group)


class TransferRun(Run):
    """A transfer-learning study of 2D segmentation (``sarcomri segment transfer-study``, ``<study>/transfer``)."""

    kind = "transfer"
    config_model = TransferStudyConfig
    command = "sarcomri segment transfer-study CONFIG"

    @property
    def learning_curve_path(self) -> Path:
        """``figures/learning_curve.png``: median Dice by the number of target training patients."""
        return self.figures_dir / "learning_curve.png"

    @staticmethod
    def model_rel(name: str, n_target: int | None = None) -> str:
        """A model's folder relative to the run: ``models/source`` for the source model (``n_target`` None),
        else ``models/<name>/n<k>`` with k, the target training patients, zero-padded to three digits. (These
        strings also name the models in the run's inputs.json.)"""
        return f"{MODELS}/{name}" if n_target is None else f"{MODELS}/{name}/n{n_target:03d}"

    @staticmethod
    def predictions_rel(model_rel: str) -> str:
        """The folder of a model's test predictions and metrics: ``predictions/...`` beside ``models/...``."""
        return model_rel.replace(f"{MODELS}/", f"{PREDICTIONS_DIR}/", 1)

    def model_folder(self, name: str, n_target: int | None = None) -> Path:
        """A model's folder (see :meth:`model_rel`)."""
        return self.path / self.model_rel(name, n_target)


