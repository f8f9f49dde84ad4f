"""A whole study's run folder (``sarcomri study run``): the cohort it made and its parts."""

from __future__ import annotations

from pathlib import Path

from sarcomri.cohort.manifest import Cohort
from sarcomri.config import ClassificationConfig
from sarcomri.runs.base import AI_READS, READERS, READERS_DIR, SEEDS, TABLES, DecisionRule, Run, resolve_positive_label
from sarcomri.runs.kinds import ClassificationRun, SegmentationRun, TransferRun
from sarcomri.seg3d.config import Seg3DConfig
from sarcomri.study_config import StudyConfig


class StudyRun(Run):
    """A whole study (``sarcomri study run``): the cohort it made, and its classification, readers,
    segmentation, transfer and report parts."""

    kind = "study"
    config_model = StudyConfig
    command = "sarcomri study run CONFIG"

    @property
    def classification(self) -> ClassificationRun:
        return ClassificationRun(self.path / "classification")

    @property
    def segmentation(self) -> SegmentationRun:
        return SegmentationRun(self.path / "segmentation")

    @property
    def transfer(self) -> TransferRun:
        return TransferRun(self.path / "transfer")

    @property
    def readers_dir(self) -> Path:
        """``readers/``: the reads, the AI's reads and the model-vs-readers tables."""
        return self.path / READERS_DIR

    @property
    def readers_csv(self) -> Path:
        return self.readers_dir / READERS

    @property
    def ai_csv(self) -> Path:
        return self.readers_dir / AI_READS

    def readers_table(self, name: str) -> Path:
        """``readers/tables/<name>.csv``."""
        return self.readers_dir / TABLES / f"{name}.csv"

    @property
    def synthetic_dir(self) -> Path:
        """``synthetic/``: the synthesised cohort (with its ground truth)."""
        return self.path / "synthetic"

    @property
    def dicom_dir(self) -> Path:
        """``dicom/``: the synthetic cohort written as DICOM (a DICOM round trip)."""
        return self.path / "dicom"

    @property
    def ingested_dir(self) -> Path:
        """``cohort/``: the DICOM ingested back, de-identified (a DICOM round trip)."""
        return self.path / "cohort"

    @property
    def id_map_path(self) -> Path:
        """``id_map.csv``: synthetic id -> the study cohort's pseudonym."""
        return self.path / "id_map.csv"

    @property
    def seeds_path(self) -> Path:
        return self.path / SEEDS

    @property
    def stages_path(self) -> Path:
        from sarcomri.stages import LEDGER

        return self.path / LEDGER

    @property
    def summary_path(self) -> Path:
        """``study.json``: where the results are and the headline figures."""
        return self.path / "study.json"

    @property
    def nnunet_dir(self) -> Path:
        """``nnunet/``: the segmentation's cohort as nnU-Net raw datasets on its folds (``nnunet:`` section)."""
        return self.path / "nnunet"

    @property
    def sample_dir(self) -> Path:
        """``sample/``: the stratified sample of the cohort's patients a study with ``patients`` runs on."""
        return self.path / "sample"

    @property
    def full_cohort_dir(self) -> Path:
        """The cohort the study starts from: the configured folder, else the ingested source or DICOM round trip,
        else the synthetic one."""
        cfg = self.config
        if cfg.cohort:
            return Path(cfg.cohort)
        return self.ingested_dir if cfg.source is not None or cfg.dicom_roundtrip else self.synthetic_dir

    @property
    def cohort_dir(self) -> Path:
        """The study's cohort: :attr:`full_cohort_dir`, or its sample when the study sets ``patients``."""
        return self.sample_dir if self.config.samples() else self.full_cohort_dir

    @property
    def cohort_readers_csv(self) -> Path:
        """The study cohort's own reads (``<cohort>/readers.csv``)."""
        return self.cohort_dir / READERS

    def relative(self, path: Path) -> str:
        """``path`` relative to the study folder (as a stage names its folders and outputs)."""
        return path.relative_to(self.path).as_posix()

    def classification_config(self) -> ClassificationConfig:
        """The classification section on the study's cohort."""
        return self.config.classification_config(str(self.cohort_dir.resolve()))

    def segmentation_config(self) -> Seg3DConfig:
        """The segmentation section on the study's cohort."""
        return self.config.segmentation_config(str(self.cohort_dir.resolve()))

    def positive_label(self, cohort: Cohort | None = None) -> str:
        """The positive class (:func:`resolve_positive_label`) of the classification section and the cohort."""
        cohort = cohort if cohort is not None else Cohort.read(self.cohort_dir)
        return resolve_positive_label(self.config.classification_config("cohort").positive_label, cohort.meta)

    def decision_rule(self) -> DecisionRule:
        """The classification's vote cut-off and threshold, and the readers' cut of the study config."""
        return self.classification.decision_rule(reader_cut=self.config.readers.cut)


